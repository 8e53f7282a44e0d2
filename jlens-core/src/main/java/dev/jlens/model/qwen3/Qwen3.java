package dev.jlens.model.qwen3;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.Norm;
import dev.jlens.model.CausalSpec.QkNorm;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.RopeScaling;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * Qwen3 ({@code Qwen3ForCausalLM}, HF's modeling_qwen3.py): Llama's block with an RMSNorm over each head of q
 * and of k before RoPE, and a head_dim that need not be hidden_size / heads (Qwen3-0.6B: 1024 wide, 16 heads of
 * 128). The mixture-of-experts Qwen3-MoE is refused by its num_experts field.
 */
public final class Qwen3 {

    public static final ModelFamily FAMILY =
            CausalLm.family("qwen3", List.of("Qwen3ForCausalLM"), List.of("qwen3"), Qwen3::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("model.layers.{l}.",
            EMBED, "model.embed_tokens", FINAL_NORM, "model.norm", UNEMBED, "lm_head", ATTN_NORM, "input_layernorm",
            Q, "self_attn.q_proj", K, "self_attn.k_proj", V, "self_attn.v_proj", O, "self_attn.o_proj",
            Q_NORM, "self_attn.q_norm", K_NORM, "self_attn.k_norm", MLP_NORM, "post_attention_layernorm",
            GATE, "mlp.gate_proj", UP, "mlp.up_proj", DOWN, "mlp.down_proj");

    private Qwen3() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        cfg.refuse("num_experts", "a mixture-of-experts MLP (Qwen3-MoE)");
        boolean bias = cfg.getBool("attention_bias", false);
        // Sliding attention only with use_sliding_window (false in the released configs), from max_window_layers on.
        int window = cfg.getBool("use_sliding_window", false) ? cfg.getInt("sliding_window", 0) : 0;
        int firstSliding = cfg.getInt("max_window_layers", 28);
        // Qwen3Config's head_dim defaults to 128 whatever the width.
        CausalSpec.Builder b = CausalSpec.builder(cfg, weights, "qwen3", "Qwen3ForCausalLM").decoderDims(cfg.getInt("head_dim", 128))
                .norm(Norm.rms(cfg.getDouble("rms_norm_eps", 1e-6)))
                .qkv(QkvLayout.SEPARATE, bias).outBias(bias).qkNorm(QkNorm.PER_HEAD)
                .window(l -> l >= firstSliding ? window : 0)
                .mlp(CausalSpec.Mlp.gated(Activation.fromConfig(cfg.getString("hidden_act", "silu"), cfg.file().toString())))
                .tied(cfg.getBool("tie_word_embeddings", false))
                .names(NAMES);
        var rope = RopeScaling.halfSplit(cfg, b.headDim());
        return b.rotary(l -> rope).build();
    }
}
