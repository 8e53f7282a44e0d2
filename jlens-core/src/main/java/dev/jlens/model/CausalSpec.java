package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.RotaryEmbedding;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;

/**
 * Everything that makes one causal family different from another, as small declarative parts: a family file
 * reads config.json into one of these and names its tensors; {@link CausalLm} does the rest. Build one with
 * {@link #builder}; the defaults are a pre-norm, sequential, untied decoder with separate bias-free q/k/v.
 *
 * @param family       jlens' family name ("llama")
 * @param architecture the HF class ("Qwen2ForCausalLM")
 * @param dims         sizes
 * @param norm         the kind of every norm in the model (block, final, q/k)
 * @param attention    q/k/v layout, biases, scale, soft-capping, q/k norm, and per layer the window and rotary
 * @param mlp          plain or gated, activation, biases
 * @param residual     how the two branches join the residual stream
 * @param embedding    embedding scale, learned positions, tied unembedding, final soft-capping
 * @param names        the family's tensor names
 */
public record CausalSpec(String family, String architecture, Dims dims, Norm norm, Attention attention, Mlp mlp,
                         Residual residual, Embedding embedding, Names names) {

    /** @param headDim values per attention head (not always dModel / nHeads: Qwen3, Gemma) */
    public record Dims(int nLayers, int dModel, int nHeads, int nKvHeads, int headDim, int dMlp, int vocab,
                       int maxPositions) {
    }

    /**
     * @param layerNorm LayerNorm (mean and variance, with bias) rather than RMSNorm
     * @param onePlus   RMSNorm scales by (1 + w) (Gemma)
     */
    public record Norm(boolean layerNorm, float eps, boolean onePlus) {
        public static Norm layer(double eps) {
            return new Norm(true, (float) eps, false);
        }

        public static Norm rms(double eps) {
            return new Norm(false, (float) eps, false);
        }

        public Norm onePlusWeight() {
            return new Norm(layerNorm, eps, true);
        }
    }

    /** How q, k and v come out of the checkpoint. */
    public enum QkvLayout {
        /** Three projections, one each for q, k and v. */
        SEPARATE,
        /** One fused weight whose output rows are all of q, then k, then v (GPT-2, Phi-3). */
        FUSED,
        /** One fused weight whose output rows are q|k|v per head (GPT-NeoX). */
        FUSED_PER_HEAD
    }

    /** A norm on q and k after their projections, before rotary. */
    public enum QkNorm {
        NONE,
        /** Over each head's d_head values (Qwen3, Gemma 3). */
        PER_HEAD,
        /** Over the whole projection, before it is split into heads (OLMo-2). */
        FULL_WIDTH
    }

    /**
     * @param scale    per layer: multiplies q·k
     * @param softcap  cap·tanh(s/cap) on scores, 0 for none (Gemma 2)
     * @param window   per layer: sliding window in tokens, 0 for global attention
     * @param rotary   per layer: the rotary embedding (RotaryEmbedding.NONE without)
     */
    public record Attention(QkvLayout qkv, boolean qkvBias, boolean outBias, float[] scale, float softcap, QkNorm qkNorm,
                            int[] window, RotaryEmbedding[] rotary) {
        public Attention {
            scale = scale.clone();
            window = window.clone();
            rotary = rotary.clone();
        }

        /** Layer l's attention as the backend runs it. */
        public AttentionSpec layer(Dims d, int l) {
            return new AttentionSpec(d.nHeads(), d.nKvHeads(), d.headDim(), scale[l], true, window[l], softcap);
        }

        public RotaryEmbedding rotary(int l) {
            return rotary[l];
        }

        public int window(int l) {
            return window[l];
        }
    }

    /** @param fusedGateUp gate and up in one weight, gate rows first (Phi-3) */
    public record Mlp(boolean gated, boolean fusedGateUp, Activation act, boolean bias) {
        /** up → act → down (GPT-2, GPT-NeoX). */
        public static Mlp plain(Activation act, boolean bias) {
            return new Mlp(false, false, act, bias);
        }

        /** down(act(gate(x)) · up(x)) (Llama's SwiGLU, Gemma's GeGLU). */
        public static Mlp gated(Activation act) {
            return new Mlp(true, false, act, false);
        }
    }

    /**
     * @param parallel  x + attn(ln1(x)) + mlp(ln2(x)) (GPT-NeoX/Pythia) instead of attention, then MLP
     * @param preNorms  a norm before each branch (every family but OLMo-2)
     * @param postNorms a norm on each branch's output before it joins the residual (Gemma 2/3, OLMo-2)
     */
    public record Residual(boolean parallel, boolean preNorms, boolean postNorms) {
        public static final Residual SEQUENTIAL = new Residual(false, true, false);
        public static final Residual PARALLEL = new Residual(true, true, false);
    }

    /**
     * @param scale            token embeddings × scale (Gemma: √d_model, rounded to float32), 1 for none
     * @param learnedPositions a learned position table added to the embedding (GPT-2)
     * @param tied             the unembedding is the embedding table
     * @param finalSoftcap     cap·tanh(logit/cap), 0 for none (Gemma 2)
     */
    public record Embedding(float scale, boolean learnedPositions, boolean tied, float finalSoftcap) {
    }

    /**
     * A family's tensor names: the module path of each role in layer l (l is -1 outside the blocks), or null
     * where the family has no such tensor; ".weight" and ".bias" are appended. {@code conv1d}: linear weights
     * are stored [in, out] (GPT-2).
     */
    public record Names(Module module, boolean conv1d) {
        @FunctionalInterface
        public interface Module {
            String of(TensorRole role, int layer);
        }

        /**
         * A name table: {@code block} is the module path of layer {l}'s block (e.g. "decoder.blocks.{l}."), then
         * pairs of a role and its path, relative to the block for block roles and whole for the embedding,
         * final norm and unembedding:
         * <pre>{@code Names.of("decoder.blocks.{l}.", EMBED, "decoder.tok_emb", Q, "attn.query", ...)}</pre>
         */
        public static Names of(String block, Object... roleAndPath) {
            return table(block, false, roleAndPath);
        }

        /** As {@link #of}, for checkpoints whose linear weights are stored [in, out] (GPT-2's Conv1D). */
        public static Names conv1d(String block, Object... roleAndPath) {
            return table(block, true, roleAndPath);
        }

        private static Names table(String block, boolean conv1d, Object... roleAndPath) {
            if (roleAndPath.length % 2 != 0) throw new IllegalArgumentException("roles and paths come in pairs");
            java.util.Map<TensorRole, String> paths = new java.util.EnumMap<>(TensorRole.class);
            for (int i = 0; i < roleAndPath.length; i += 2) paths.put((TensorRole) roleAndPath[i], (String) roleAndPath[i + 1]);
            return new Names((role, layer) -> {
                String path = paths.get(role);
                if (path == null || layer < 0) return path;
                return block.replace("{l}", Integer.toString(layer)) + path;
            }, conv1d);
        }
    }

    /** Every tensor this spec reads, in forward order, with the shape config.json implies. */
    public List<TensorSpec> tensors() {
        Dims d = dims;
        long dm = d.dModel(), q = (long) d.nHeads() * d.headDim(), kv = (long) d.nKvHeads() * d.headDim();
        List<TensorSpec> out = new ArrayList<>();
        Adder add = (role, layer, shape, bias) -> {
            String module = names.module().of(role, layer);
            if (module == null) {
                throw new IllegalStateException(family + " names no tensor for " + role + " (layer " + layer + ")");
            }
            boolean transposed = names.conv1d() && role.isLinear() && role != TensorRole.UNEMBED && shape.length == 2;
            long[] stored = transposed ? new long[]{shape[1], shape[0]} : shape;
            out.add(new TensorSpec(module + ".weight", stored, role, layer, false, transposed));
            if (bias) out.add(new TensorSpec(module + ".bias", new long[]{shape[0]}, role, layer, true, false));
        };
        add.add(TensorRole.EMBED, -1, new long[]{d.vocab(), dm}, false);
        if (embedding.learnedPositions()) add.add(TensorRole.POS_EMBED, -1, new long[]{d.maxPositions(), dm}, false);
        boolean ln = norm.layerNorm();
        for (int l = 0; l < d.nLayers(); l++) {
            if (residual.preNorms()) add.add(TensorRole.ATTN_NORM, l, new long[]{dm}, ln);
            if (attention.qkv() == QkvLayout.SEPARATE) {
                add.add(TensorRole.Q, l, new long[]{q, dm}, attention.qkvBias());
                add.add(TensorRole.K, l, new long[]{kv, dm}, attention.qkvBias());
                add.add(TensorRole.V, l, new long[]{kv, dm}, attention.qkvBias());
            } else {
                add.add(TensorRole.QKV, l, new long[]{q + 2 * kv, dm}, attention.qkvBias());
            }
            switch (attention.qkNorm()) {
                case PER_HEAD -> {
                    add.add(TensorRole.Q_NORM, l, new long[]{d.headDim()}, false);
                    add.add(TensorRole.K_NORM, l, new long[]{d.headDim()}, false);
                }
                case FULL_WIDTH -> {
                    add.add(TensorRole.Q_NORM, l, new long[]{q}, false);
                    add.add(TensorRole.K_NORM, l, new long[]{kv}, false);
                }
                case NONE -> {
                }
            }
            add.add(TensorRole.O, l, new long[]{dm, q}, attention.outBias());
            if (residual.postNorms()) add.add(TensorRole.POST_ATTN_NORM, l, new long[]{dm}, ln);
            if (residual.preNorms()) add.add(TensorRole.MLP_NORM, l, new long[]{dm}, ln);
            if (mlp.gated() && mlp.fusedGateUp()) {
                add.add(TensorRole.GATE_UP, l, new long[]{2L * d.dMlp(), dm}, mlp.bias());
            } else {
                if (mlp.gated()) add.add(TensorRole.GATE, l, new long[]{d.dMlp(), dm}, mlp.bias());
                add.add(TensorRole.UP, l, new long[]{d.dMlp(), dm}, mlp.bias());
            }
            add.add(TensorRole.DOWN, l, new long[]{dm, d.dMlp()}, mlp.bias());
            if (residual.postNorms()) add.add(TensorRole.POST_MLP_NORM, l, new long[]{dm}, ln);
        }
        add.add(TensorRole.FINAL_NORM, -1, new long[]{dm}, ln);
        if (!embedding.tied()) add.add(TensorRole.UNEMBED, -1, new long[]{d.vocab(), dm}, false);
        return out;
    }

    @FunctionalInterface
    private interface Adder {
        void add(TensorRole role, int layer, long[] shape, boolean bias);
    }

    /**
     * Starts a spec for config.json {@code cfg}; {@code weights} (null when there is no checkpoint yet) lets
     * the sizes be checked against the checkpoint before anything is allocated per layer.
     */
    public static Builder builder(ModelConfig cfg, TensorSource weights, String family, String architecture) {
        return new Builder(cfg, weights, family, architecture);
    }

    /**
     * Assembles a spec, checking what config.json says against itself (head counts, rotary sizes) with errors
     * that name the file and field.
     */
    public static final class Builder {
        private final ModelConfig cfg;
        private final TensorSource weights;
        private final String family, architecture;
        private Dims dims;
        private Norm norm;
        private QkvLayout qkv = QkvLayout.SEPARATE;
        private boolean qkvBias, outBias;
        private IntFunction<Double> scale;
        private float softcap;
        private QkNorm qkNorm = QkNorm.NONE;
        private IntFunction<Integer> window = l -> 0;
        private IntFunction<RotaryEmbedding> rotary = l -> RotaryEmbedding.NONE;
        private Mlp mlp;
        private Residual residual = Residual.SEQUENTIAL;
        private float embedScale = 1f;
        private boolean learnedPositions, tied;
        private float finalSoftcap;
        private Names names;

        private Builder(ModelConfig cfg, TensorSource weights, String family, String architecture) {
            this.cfg = cfg;
            this.weights = weights;
            this.family = family;
            this.architecture = architecture;
        }

        /**
         * Sizes; the layer count is read from config.json's {@code layersField} and checked against the
         * checkpoint before anything is sized by it; headDim 0 means dModel / nHeads (which must then divide).
         */
        public Builder dims(String layersField, int dModel, int nHeads, int nKvHeads, int headDim, int dMlp, int vocab,
                            int maxPositions) {
            int nLayers = cfg.requireInt(layersField);
            Weights.checkLayers(cfg, weights, layersField, nLayers);
            if (headDim == 0) {
                if (dModel % nHeads != 0) {
                    throw new JlensException(cfg.file() + ": hidden size " + dModel + " is not divisible by the "
                            + nHeads + " attention heads (and no head_dim is given)");
                }
                headDim = dModel / nHeads;
            }
            if (nHeads % nKvHeads != 0) {
                throw new JlensException(cfg.file() + ": num_attention_heads " + nHeads
                        + " is not a multiple of num_key_value_heads " + nKvHeads);
            }
            // A fused q|k|v row count must fit an int; a size beyond that cannot belong to any checkpoint, and a
            // smaller wrong one is refused by the weights' shape check with the tensor's name.
            if (3L * nHeads * headDim > Integer.MAX_VALUE) {
                throw new JlensException(cfg.file() + ": field \"head_dim\" is " + headDim + ": " + nHeads
                        + " attention heads of " + headDim + " values are more than any model has");
            }
            this.dims = new Dims(nLayers, dModel, nHeads, nKvHeads, headDim, dMlp, vocab, maxPositions);
            return this;
        }

        /**
         * Sizes from the fields most HF decoders share: num_hidden_layers, hidden_size, num_attention_heads,
         * num_key_value_heads (default: as many as heads), intermediate_size, vocab_size and
         * max_position_embeddings (default 2048); headDim as in {@link #dims}.
         */
        public Builder decoderDims(int headDim) {
            int nHeads = cfg.requireInt("num_attention_heads");
            return dims("num_hidden_layers", cfg.requireInt("hidden_size"), nHeads,
                    cfg.getInt("num_key_value_heads", nHeads), headDim, cfg.requireInt("intermediate_size"),
                    cfg.requireInt("vocab_size"), cfg.getInt("max_position_embeddings", 2048));
        }

        /** d_head as {@link #dims} settled it (given, or d_model / heads). */
        public int headDim() {
            return dims.headDim();
        }

        public Builder norm(Norm n) {
            this.norm = n;
            return this;
        }

        public Builder qkv(QkvLayout layout, boolean bias) {
            this.qkv = layout;
            this.qkvBias = bias;
            return this;
        }

        public Builder outBias(boolean b) {
            this.outBias = b;
            return this;
        }

        /** The score scale; default head_dim^-0.5. */
        public Builder scale(double s) {
            return scale(l -> s);
        }

        /** The score scale per layer (GPT-2's scale_attn_by_inverse_layer_idx). */
        public Builder scale(IntFunction<Double> perLayer) {
            this.scale = perLayer;
            return this;
        }

        public Builder softcap(double cap) {
            this.softcap = (float) cap;
            return this;
        }

        public Builder qkNorm(QkNorm n) {
            this.qkNorm = n;
            return this;
        }

        /** Sliding window per layer (0: global). */
        public Builder window(IntFunction<Integer> perLayer) {
            this.window = perLayer;
            return this;
        }

        /** Rotary embedding per layer. */
        public Builder rotary(IntFunction<RotaryEmbedding> perLayer) {
            this.rotary = perLayer;
            return this;
        }

        public Builder mlp(Mlp m) {
            this.mlp = m;
            return this;
        }

        public Builder residual(Residual r) {
            this.residual = r;
            return this;
        }

        public Builder embedScale(float s) {
            this.embedScale = s;
            return this;
        }

        public Builder learnedPositions(boolean b) {
            this.learnedPositions = b;
            return this;
        }

        public Builder tied(boolean b) {
            this.tied = b;
            return this;
        }

        public Builder finalSoftcap(double cap) {
            this.finalSoftcap = (float) cap;
            return this;
        }

        public Builder names(Names n) {
            this.names = n;
            return this;
        }

        public CausalSpec build() {
            if (dims == null || norm == null || mlp == null || names == null) {
                throw new IllegalStateException(family + ": dims, norm, mlp and names must be declared");
            }
            int n = dims.nLayers();
            int[] w = new int[n];
            float[] sc = new float[n];
            RotaryEmbedding[] r = new RotaryEmbedding[n];
            for (int l = 0; l < n; l++) {
                w[l] = window.apply(l);
                r[l] = rotary.apply(l);
                sc[l] = scale != null ? scale.apply(l).floatValue() : (float) (1.0 / Math.sqrt(dims.headDim()));
                if (r[l].rotaryDims() > dims.headDim()) {
                    throw new JlensException(cfg.file() + ": " + r[l].rotaryDims() + " rotary dimensions exceed head_dim "
                            + dims.headDim());
                }
            }
            Attention a = new Attention(qkv, qkvBias, outBias, sc, softcap, qkNorm, w, r);
            return new CausalSpec(family, architecture, dims, norm, a, mlp, residual,
                    new Embedding(embedScale, learnedPositions, tied, finalSoftcap), names);
        }
    }
}
