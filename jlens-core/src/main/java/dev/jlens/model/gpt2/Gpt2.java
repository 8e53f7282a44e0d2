package dev.jlens.model.gpt2;

import dev.jlens.JlensException;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.Norm;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * GPT-2 ({@code GPT2LMHeadModel}, HF's modeling_gpt2.py): token plus learned position embeddings, LayerNorms
 * with bias, Conv1D weights stored [in, out] (c_attn's columns are q|k|v), no rotary, gelu_new MLP, and an
 * unembedding tied to wte unless tie_word_embeddings is false.
 */
public final class Gpt2 {

    public static final ModelFamily FAMILY =
            CausalLm.family("gpt2", List.of("GPT2LMHeadModel", "GPT2Model"), List.of("gpt2"), Gpt2::spec);

    private Gpt2() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        int d = cfg.requireInt("n_embd");
        int nHeads = cfg.requireInt("n_head");
        if (d % nHeads != 0) throw new JlensException(cfg.file() + ": n_embd " + d + " is not divisible by n_head " + nHeads);
        int headDim = d / nHeads;
        // HF divides the scores by sqrt(head_dim) unless scale_attn_weights is off, and additionally by
        // layer_idx + 1 with scale_attn_by_inverse_layer_idx. reorder_and_upcast_attn only changes the
        // precision of half-precision runs; jlens computes attention in float32 anyway.
        boolean bySqrt = cfg.getBool("scale_attn_weights", true);
        boolean byInverseLayer = cfg.getBool("scale_attn_by_inverse_layer_idx", false);
        // GPT2LMHeadModel checkpoints name the trunk "transformer."; GPT2Model ones (and the original OpenAI
        // uploads) have no prefix.
        String pre = weights != null && !weights.contains("transformer.wte.weight") && weights.contains("wte.weight")
                ? "" : "transformer.";
        String arch = cfg.architectures().isEmpty() ? "GPT2LMHeadModel" : cfg.architectures().getFirst();
        return CausalSpec.builder(cfg, weights, "gpt2", arch)
                .dims("n_layer", d, nHeads, nHeads, 0, cfg.getInt("n_inner", 4 * d), // n_inner null: 4·n_embd
                        cfg.requireInt("vocab_size"), cfg.getInt("n_positions", 1024))
                .norm(Norm.layer(cfg.getDouble("layer_norm_epsilon", 1e-5)))
                .qkv(QkvLayout.FUSED, true)
                .outBias(true)
                .scale(l -> (bySqrt ? 1.0 / Math.sqrt(headDim) : 1.0) / (byInverseLayer ? l + 1 : 1))
                .mlp(CausalSpec.Mlp.plain(Activation.fromConfig(cfg.getString("activation_function", "gelu_new"),
                        cfg.file().toString()), true))
                .learnedPositions(true)
                .tied(cfg.getBool("tie_word_embeddings", true))
                .names(CausalSpec.Names.conv1d(pre + "h.{l}.", EMBED, pre + "wte", POS_EMBED, pre + "wpe",
                        FINAL_NORM, pre + "ln_f", UNEMBED, "lm_head", ATTN_NORM, "ln_1", QKV, "attn.c_attn",
                        O, "attn.c_proj", MLP_NORM, "ln_2", UP, "mlp.c_fc", DOWN, "mlp.c_proj"))
                .build();
    }
}
