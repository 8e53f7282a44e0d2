package dev.jlens.model.olmo2;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.QkNorm;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.CausalSpec.Residual;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.RopeScaling;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * OLMo-2 ({@code Olmo2ForCausalLM}, HF's modeling_olmo2.py): no norm before either branch but an RMSNorm on
 * each branch's output, {@code h = x + norm(attn(x))}, {@code out = h + norm(mlp(h))}; q and k are RMS-normalised
 * over the whole projection (all heads at once) before RoPE; SwiGLU MLP, untied lm_head. OLMoE (the
 * mixture-of-experts sibling) is refused by its num_experts field.
 */
public final class Olmo2 {

    public static final ModelFamily FAMILY = CausalLm.family("olmo2", List.of("Olmo2ForCausalLM"), List.of("olmo2"), Olmo2::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("model.layers.{l}.",
            EMBED, "model.embed_tokens", Q, "self_attn.q_proj", K, "self_attn.k_proj", V, "self_attn.v_proj",
            Q_NORM, "self_attn.q_norm", K_NORM, "self_attn.k_norm", O, "self_attn.o_proj",
            POST_ATTN_NORM, "post_attention_layernorm", GATE, "mlp.gate_proj", UP, "mlp.up_proj", DOWN, "mlp.down_proj",
            POST_MLP_NORM, "post_feedforward_layernorm", FINAL_NORM, "model.norm", UNEMBED, "lm_head");

    private Olmo2() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        cfg.refuse("num_experts", "a mixture-of-experts MLP (OLMoE)");
        boolean bias = cfg.getBool("attention_bias", false);
        CausalSpec.Builder b = CausalSpec.builder(cfg, weights, "olmo2", "Olmo2ForCausalLM").decoderDims(0)
                .residual(new Residual(false, false, true))
                .norm(CausalSpec.Norm.rms(cfg.getDouble("rms_norm_eps", 1e-5)))
                .qkv(QkvLayout.SEPARATE, bias).outBias(bias).qkNorm(QkNorm.FULL_WIDTH)
                .mlp(CausalSpec.Mlp.gated(Activation.fromConfig(cfg.getString("hidden_act", "silu"), cfg.file().toString())))
                .tied(cfg.getBool("tie_word_embeddings", false))
                .names(NAMES);
        var rope = RopeScaling.halfSplit(cfg, b.headDim());
        return b.rotary(l -> rope).build();
    }
}
