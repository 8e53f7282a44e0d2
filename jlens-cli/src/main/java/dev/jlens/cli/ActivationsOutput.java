package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * Writes a cache as {@code activations.safetensors} (opened in Python with safetensors.numpy.load_file)
 * plus {@code activations.json} describing how it was made. Pooled hooks are {@code {hook}} of shape
 * [n_prompts, d]; with pooling "all" each prompt i has {@code p{i}.{hook}} [len_i, d] and
 * {@code p{i}.input_ids}.
 */
final class ActivationsOutput {

    private ActivationsOutput() {
    }

    static void write(Path dir, HookedModel model, List<int[]> ids, ActivationCache cache, List<String> hooks,
                      String promptSource, String promptSha256) {
        SafetensorsWriter w = new SafetensorsWriter();
        w.putMetadata("format", "jlens-activations");
        w.putMetadata("pooling", cache.pooling().cliName());
        if (cache.pooling() == Pooling.ALL) {
            for (int i = 0; i < ids.size(); i++) {
                long[] li = new long[ids.get(i).length];
                for (int t = 0; t < li.length; t++) li[t] = ids.get(i)[t];
                w.putI64("p" + i + ".input_ids", li, li.length);
                for (String h : hooks) putTensor(w, "p" + i + "." + h, cache.perPrompt(h).get(i));
                if (cache.has("logits")) putTensor(w, "p" + i + ".logits", cache.perPrompt("logits").get(i));
            }
        } else {
            for (String h : hooks) putTensor(w, h, cache.pooled(h));
        }
        w.write(dir.resolve("activations.safetensors"));

        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode meta = om.createObjectNode();
        meta.put("jlens_version", JlensCli.VERSION);
        meta.put("model", model.location().id());
        meta.put("model_path", model.location().dir() == null ? null : model.location().dir().toString());
        meta.put("revision", model.location().revision());
        meta.put("architecture", model.info().architecture());
        meta.put("d_model", model.info().dModel());
        meta.put("n_layers", model.info().nLayers());
        var hk = meta.putArray("hooks");
        hooks.forEach(hk::add);
        meta.put("pooling", cache.pooling().cliName());
        meta.put("logits", cache.has("logits"));
        meta.put("prompt_count", ids.size());
        meta.put("prompts", promptSource);
        meta.put("prompts_sha256", promptSha256);
        meta.put("created", Instant.now().toString());
        meta.put("complete", true);
        try {
            AtomicFiles.writeString(dir.resolve("activations.json"), om.writeValueAsString(meta) + "\n");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void putTensor(SafetensorsWriter w, String name, FloatTensor t) {
        int[] s = t.shape();
        long[] shape = new long[s.length];
        for (int i = 0; i < s.length; i++) shape[i] = s[i];
        w.putF32(name, t.data(), shape);
    }
}
