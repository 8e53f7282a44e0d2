package dev.jlens.model.gptneox;

import dev.jlens.JlensException;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.RotaryEmbedding;
import dev.jlens.model.CausalLm;
import dev.jlens.model.CausalSpec;
import dev.jlens.model.CausalSpec.Norm;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.model.CausalSpec.Residual;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;

import java.util.List;

import static dev.jlens.model.TensorRole.*;

/**
 * GPT-NeoX / Pythia ({@code GPTNeoXForCausalLM}, HF's modeling_gpt_neox.py): LayerNorms with bias, one fused
 * query_key_value weight whose rows are q|k|v per head, partial rotary (rotary_pct of each head), and by
 * default the parallel residual x + attn(ln1(x)) + mlp(ln2(x)); untied embed_out.
 */
public final class GptNeoX {

    public static final ModelFamily FAMILY =
            CausalLm.family("gpt_neox", List.of("GPTNeoXForCausalLM"), List.of("gpt_neox"), GptNeoX::spec);

    private static final CausalSpec.Names NAMES = CausalSpec.Names.of("gpt_neox.layers.{l}.",
            EMBED, "gpt_neox.embed_in", FINAL_NORM, "gpt_neox.final_layer_norm", UNEMBED, "embed_out",
            ATTN_NORM, "input_layernorm", QKV, "attention.query_key_value", O, "attention.dense",
            MLP_NORM, "post_attention_layernorm", UP, "mlp.dense_h_to_4h", DOWN, "mlp.dense_4h_to_h");

    private GptNeoX() {
    }

    static CausalSpec spec(ModelConfig cfg, TensorSource weights) {
        int d = cfg.requireInt("hidden_size");
        int nHeads = cfg.requireInt("num_attention_heads");
        if (d % nHeads != 0) {
            throw new JlensException(cfg.file() + ": hidden_size " + d + " is not divisible by num_attention_heads " + nHeads);
        }
        double rotaryPct = cfg.getDouble("rotary_pct", 1.0);
        if (rotaryPct < 0 || rotaryPct > 1) throw cfg.invalid("rotary_pct", "a fraction between 0 and 1");
        int rotaryDims = (int) (d / nHeads * rotaryPct);
        double base = cfg.getDouble("rotary_emb_base", cfg.getDouble("rope_theta", 10000));
        if (cfg.getBool("tie_word_embeddings", false)) {
            throw new JlensException(cfg.file() + ": tie_word_embeddings=true is not a GPT-NeoX layout jlens knows "
                    + "(Pythia keeps embed_out separate)");
        }
        if (cfg.has("rope_scaling")) {
            throw new JlensException(cfg.file() + ": rope_scaling is set; GPT-NeoX rope scaling is not supported yet");
        }
        RotaryEmbedding rope = RotaryEmbedding.halfSplit(rotaryDims, base);
        return CausalSpec.builder(cfg, weights, "gpt_neox", "GPTNeoXForCausalLM")
                .dims("num_hidden_layers", d, nHeads, nHeads, 0, cfg.getInt("intermediate_size", 4 * d),
                        cfg.requireInt("vocab_size"), cfg.getInt("max_position_embeddings", 2048))
                .norm(Norm.layer(cfg.getDouble("layer_norm_eps", 1e-5)))
                .qkv(QkvLayout.FUSED_PER_HEAD, true)
                .outBias(true)
                .rotary(l -> rope)
                .mlp(CausalSpec.Mlp.plain(Activation.fromConfig(cfg.getString("hidden_act", "gelu"), cfg.file().toString()), true))
                .residual(cfg.getBool("use_parallel_residual", true) ? Residual.PARALLEL : Residual.SEQUENTIAL)
                .names(NAMES)
                .build();
    }
}
