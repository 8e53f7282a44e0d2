package dev.jlens.model.phi3;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.RopeScaling;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * Phi-3 / Phi-3.5 / Phi-4-mini ({@code Phi3ForCausalLM}, HF's modeling_phi3.py): a Llama-shaped block whose q, k
 * and v come from one qkv_proj (rows all of q, then k, then v) and whose gate and up come from one gate_up_proj
 * (gate rows first); RoPE on the first partial_rotary_factor of each head (Phi-4-mini: 0.75); Mistral's sliding
 * window when sliding_window is set. The long-context rope_scaling kinds (longrope, su) and Phi-3.5-MoE are
 * refused with an error naming the field.
 */
public final class Phi3 {

    public static final ModelFamily FAMILY =
            CausalLm.family("phi3", List.of("Phi3ForCausalLM"), List.of("phi3"), Phi3::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("model.layers.{l}.",
            EMBED, "model.embed_tokens", ATTN_NORM, "input_layernorm", QKV, "self_attn.qkv_proj", O, "self_attn.o_proj",
            MLP_NORM, "post_attention_layernorm", GATE_UP, "mlp.gate_up_proj", DOWN, "mlp.down_proj",
            FINAL_NORM, "model.norm", UNEMBED, "lm_head");

    private Phi3() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        cfg.refuse("num_local_experts", "a mixture-of-experts MLP (Phi-3.5-MoE)");
        var scaling = cfg.json().get("rope_scaling");
        if (scaling != null && scaling.isObject()) {
            String type = scaling.path("rope_type").asText(scaling.path("type").asText(""));
            if (type.equals("longrope") || type.equals("su")) {
                throw new dev.jlens.JlensException(cfg.file() + ": field \"rope_scaling\" has type \"" + type
                        + "\" (Phi-3's long-context RoPE, short_factor/long_factor per frequency), which jlens does not "
                        + "run; the 4k-context models (rope_scaling null) are supported");
            }
        }
        int maxPos = cfg.getInt("max_position_embeddings", 4096);
        int window = cfg.getInt("sliding_window", 0);
        CausalSpec.Builder b = CausalSpec.builder(cfg, weights, "phi3", "Phi3ForCausalLM").decoderDims(cfg.getInt("head_dim", 0))
                .norm(CausalSpec.Norm.rms(cfg.getDouble("rms_norm_eps", 1e-5)))
                .qkv(QkvLayout.FUSED, false)
                .window(l -> window < maxPos ? window : 0)
                .mlp(new CausalSpec.Mlp(true, true, Activation.fromConfig(cfg.getString("hidden_act", "silu"),
                        cfg.file().toString()), false))
                .tied(cfg.getBool("tie_word_embeddings", false))
                .names(NAMES);
        double fraction = cfg.getDouble("partial_rotary_factor", 1.0);
        if (fraction <= 0 || fraction > 1) throw cfg.invalid("partial_rotary_factor", "a fraction in (0, 1]");
        // HF: int(head_dim * partial_rotary_factor) rotary dimensions.
        int rotaryDims = (int) (b.headDim() * fraction);
        if (rotaryDims % 2 != 0) throw cfg.invalid("partial_rotary_factor", "a fraction giving an even number of dims");
        var rope = RopeScaling.halfSplit(cfg, rotaryDims);
        return b.rotary(l -> rope).build();
    }
}
