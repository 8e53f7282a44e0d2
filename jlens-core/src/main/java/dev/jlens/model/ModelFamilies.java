package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.model.bert.BertModel;
import dev.jlens.model.gpt2.Gpt2;
import dev.jlens.model.gptneox.GptNeoX;
import dev.jlens.model.gemma.Gemma;
import dev.jlens.model.llama.Llama;
import dev.jlens.model.olmo2.Olmo2;
import dev.jlens.model.phi3.Phi3;
import dev.jlens.model.qwen3.Qwen3;

import java.util.ArrayList;
import java.util.List;

/** The architectures jlens can run, looked up from config.json. */
public final class ModelFamilies {

    private static final List<ModelFamily> ALL = List.of(
            GptNeoX.FAMILY,
            Gpt2.FAMILY,
            Llama.FAMILY,
            Qwen3.FAMILY,
            Gemma.FAMILY,
            Phi3.FAMILY,
            Olmo2.FAMILY,
            BertModel.FAMILY
    );

    private ModelFamilies() {
    }

    public static List<ModelFamily> all() {
        return ALL;
    }

    public static ModelFamily forConfig(ModelConfig config) {
        List<String> archs = config.architectures();
        for (ModelFamily f : ALL) {
            for (String a : archs) if (f.architectures().contains(a)) return f;
        }
        String type = config.getString("model_type", null);
        if (archs.isEmpty() && type != null) {
            for (ModelFamily f : ALL) if (f.modelTypes().contains(type)) return f;
        }
        // Mixture-of-experts relatives of supported families (Qwen3-MoE, Mixtral, Phi-3.5-MoE, OLMoE) have their
        // own architectures; name the field that makes them different rather than only the class.
        for (String moe : List.of("num_experts", "num_local_experts")) config.refuse(moe, "a mixture-of-experts MLP");
        List<String> supported = new ArrayList<>();
        for (ModelFamily f : ALL) supported.addAll(f.architectures());
        throw new JlensException(config.file() + ": architecture " + (archs.isEmpty() ? "model_type=" + type : archs)
                + " is not supported; jlens runs " + String.join(", ", supported));
    }
}
