package dev.jlens.model.gemma;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.RotaryEmbedding;
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
 * Gemma 2 and Gemma 3 text ({@code Gemma2ForCausalLM}, {@code Gemma3ForCausalLM}; HF's modeling_gemma2.py and
 * modeling_gemma3.py): token embeddings × float32(√d_model); four RMSNorms per block that scale by (1 + w), one
 * before and one after each branch; gated GELU-tanh MLP; scores scaled by query_pre_attn_scalar^-0.5; sliding and
 * global layers alternating (Gemma 2: even layers slide; Gemma 3: every sliding_window_pattern-th layer is
 * global, or as layer_types lists them); tied unembedding. Gemma 2 soft-caps the scores and the logits;
 * Gemma 3 normalises each head of q and k ((1 + w) too) and gives its sliding layers their own RoPE base
 * (rope_local_base_freq, unscaled) and its global layers rope_theta with rope_scaling. Gemma 3's multimodal
 * checkpoints (Gemma3ForConditionalGeneration, with a vision_config) are refused: jlens runs the text model.
 */
public final class Gemma {

    private static final String GEMMA2 = "Gemma2ForCausalLM", GEMMA3 = "Gemma3ForCausalLM";

    public static final ModelFamily FAMILY = CausalLm.family("gemma",
            List.of(GEMMA2, GEMMA3, "Gemma3ForConditionalGeneration"), List.of("gemma2", "gemma3_text", "gemma3"), Gemma::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("model.layers.{l}.",
            EMBED, "model.embed_tokens", ATTN_NORM, "input_layernorm", Q, "self_attn.q_proj", K, "self_attn.k_proj",
            V, "self_attn.v_proj", Q_NORM, "self_attn.q_norm", K_NORM, "self_attn.k_norm", O, "self_attn.o_proj",
            POST_ATTN_NORM, "post_attention_layernorm", MLP_NORM, "pre_feedforward_layernorm", GATE, "mlp.gate_proj",
            UP, "mlp.up_proj", DOWN, "mlp.down_proj", POST_MLP_NORM, "post_feedforward_layernorm", FINAL_NORM, "model.norm");

    private Gemma() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        cfg.refuse("vision_config", "Gemma 3's vision tower (Gemma3ForConditionalGeneration); load a text-only "
                + "Gemma3ForCausalLM checkpoint such as google/gemma-3-1b-it");
        boolean gemma3 = cfg.architectures().contains(GEMMA3)
                || cfg.architectures().isEmpty() && cfg.getString("model_type", "").equals("gemma3_text");
        boolean bias = cfg.getBool("attention_bias", false);
        int window = cfg.getInt("sliding_window", 4096), pattern = cfg.getInt("sliding_window_pattern", 6);
        int d = cfg.requireInt("hidden_size");
        CausalSpec.Builder b = CausalSpec.builder(cfg, weights, "gemma", gemma3 ? GEMMA3 : GEMMA2).decoderDims(cfg.getInt("head_dim", 256))
                .norm(CausalSpec.Norm.rms(cfg.getDouble("rms_norm_eps", 1e-6)).onePlusWeight())
                .qkv(QkvLayout.SEPARATE, bias).outBias(bias).qkNorm(gemma3 ? QkNorm.PER_HEAD : QkNorm.NONE)
                .scale(Math.pow(cfg.getDouble("query_pre_attn_scalar", 256), -0.5))
                .softcap(cfg.getDouble("attn_logit_softcapping", 0))
                .finalSoftcap(cfg.getDouble("final_logit_softcapping", 0))
                .mlp(CausalSpec.Mlp.gated(Activation.fromConfig(cfg.getString("hidden_activation",
                        cfg.getString("hidden_act", "gelu_pytorch_tanh")), cfg.file().toString())))
                .residual(new Residual(false, true, true))
                .embedScale((float) Math.sqrt(d))
                .tied(true)
                .names(NAMES);
        boolean[] sliding = new boolean[cfg.requireInt("num_hidden_layers")];
        JsonNode types = cfg.json().get("layer_types");
        for (int l = 0; l < sliding.length; l++) {
            if (types != null && types.isArray()) sliding[l] = types.path(l).asText().equals("sliding_attention");
            else sliding[l] = gemma3 ? (l + 1) % pattern != 0 : l % 2 == 0;
        }
        b.window(l -> sliding[l] ? window : 0);
        RotaryEmbedding global = RopeScaling.halfSplit(cfg, b.headDim());
        if (!gemma3) return b.rotary(l -> global).build();
        RotaryEmbedding local = RotaryEmbedding.halfSplit(b.headDim(), cfg.getDouble("rope_local_base_freq", 10000));
        RotaryEmbedding scaledGlobal = new RotaryEmbedding(b.headDim(),
                RopeScaling.invFreq(cfg, b.headDim(), cfg.getDouble("rope_theta", 1_000_000), cfg.json().get("rope_scaling")),
                RotaryEmbedding.Layout.HALF_SPLIT);
        return b.rotary(l -> sliding[l] ? local : scaledGlobal).build();
    }
}
