package dev.jlens.model.llama;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.Norm;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.RopeScaling;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * Llama and its close relatives Qwen2 and Mistral ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM},
 * {@code MistralForCausalLM}; HF's modeling_llama.py): RMSNorms, separate q/k/v projections with grouped-query
 * attention, rotate-half RoPE (with rope_scaling), SwiGLU MLP down(silu(gate(x)) · up(x)), and lm_head or the
 * tied embed_tokens. Qwen2 has q/k/v biases; Mistral slides its attention window.
 */
public final class Llama {

    public static final ModelFamily FAMILY = CausalLm.family("llama",
            List.of("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"), List.of("llama", "qwen2", "mistral"),
            Llama::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("model.layers.{l}.",
            EMBED, "model.embed_tokens", FINAL_NORM, "model.norm", UNEMBED, "lm_head", ATTN_NORM, "input_layernorm",
            Q, "self_attn.q_proj", K, "self_attn.k_proj", V, "self_attn.v_proj", O, "self_attn.o_proj",
            MLP_NORM, "post_attention_layernorm", GATE, "mlp.gate_proj", UP, "mlp.up_proj", DOWN, "mlp.down_proj");

    private Llama() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        String arch = architecture(cfg);
        boolean qwen2 = arch.equals("Qwen2ForCausalLM"), mistral = arch.equals("MistralForCausalLM");
        int nHeads = cfg.requireInt("num_attention_heads");
        int headDim = cfg.getInt("head_dim", 0);
        // Qwen2 always has q/k/v biases and no o_proj bias; Llama has all four only with attention_bias;
        // Mistral has none.
        boolean llamaBias = !qwen2 && !mistral && cfg.getBool("attention_bias", false);
        int maxPos = cfg.getInt("max_position_embeddings", 2048);
        int window = slidingWindow(cfg, qwen2, mistral);
        int firstSliding = qwen2 ? cfg.getInt("max_window_layers", 28) : 0;
        CausalSpec.Builder b = CausalSpec.builder(cfg, weights, "llama", arch)
                .dims("num_hidden_layers", cfg.requireInt("hidden_size"), nHeads,
                        cfg.getInt("num_key_value_heads", nHeads), headDim, cfg.requireInt("intermediate_size"),
                        cfg.requireInt("vocab_size"), maxPos)
                .norm(Norm.rms(cfg.getDouble("rms_norm_eps", 1e-6)))
                .qkv(QkvLayout.SEPARATE, qwen2 || llamaBias)
                .outBias(llamaBias)
                .window(l -> window > 0 && window < maxPos && l >= firstSliding ? window : 0)
                .mlp(new CausalSpec.Mlp(true, false, Activation.fromConfig(cfg.getString("hidden_act", "silu"),
                        cfg.file().toString()), !qwen2 && !mistral && cfg.getBool("mlp_bias", false)))
                .tied(cfg.getBool("tie_word_embeddings", false))
                .names(NAMES);
        if (b.headDim() % 2 != 0) throw cfg.invalid("head_dim", "an even number (RoPE rotates pairs), not " + b.headDim());
        var rope = RopeScaling.halfSplit(cfg, b.headDim());
        return b.rotary(l -> rope).build();
    }

    private static String architecture(ModelConfig cfg) {
        for (String a : cfg.architectures()) if (FAMILY.architectures().contains(a)) return a;
        return switch (cfg.getString("model_type", "llama")) {
            case "qwen2" -> "Qwen2ForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            default -> "LlamaForCausalLM";
        };
    }

    /**
     * The sliding attention window in tokens, or 0 for none. Mistral slides whenever sliding_window is set;
     * Qwen2 only with use_sliding_window (false in its released configs, which still carry a sliding_window
     * value) and then only from layer max_window_layers on.
     */
    private static int slidingWindow(ModelConfig cfg, boolean qwen2, boolean mistral) {
        if (!(mistral || qwen2 && cfg.getBool("use_sliding_window", false))) return 0;
        return cfg.has("sliding_window") ? cfg.requireInt("sliding_window") : 0;
    }
}
