package dev.jlens.model.gpt2;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.DType;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionMask;
import dev.jlens.kernels.Kernels;
import dev.jlens.kernels.NormStats;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.model.BlockOutputs;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.KvCache;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.TransformerModel;
import dev.jlens.model.Weights;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * GPT-2 ({@code GPT2LMHeadModel}), read top to bottom like HF's modeling_gpt2.py: token embedding wte plus
 * learned position embedding wpe, then per block LayerNorm → c_attn (Conv1D, columns q|k|v) → causal
 * attention → c_proj, added to the residual, and LayerNorm → c_fc → gelu_new → c_proj, added again;
 * final LayerNorm ln_f and an unembedding tied to wte (unless tie_word_embeddings is false).
 */
public final class Gpt2Model implements TransformerModel {

    public static final ModelFamily FAMILY = new ModelFamily() {
        @Override
        public String name() {
            return "gpt2";
        }

        @Override
        public List<String> architectures() {
            return List.of("GPT2LMHeadModel", "GPT2Model");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("gpt2");
        }

        @Override
        public TransformerModel load(ModelConfig config, TensorSource weights, Kernels kernels) {
            return Gpt2Model.load(config, weights, kernels);
        }
    };

    /** Weights in nn.Linear layout: the Conv1D matrices are transposed once at load. */
    private record Block(float[] ln1W, float[] ln1B, WeightMatrix qkv, float[] qkvB, WeightMatrix proj, float[] projB,
                         float[] ln2W, float[] ln2B, WeightMatrix fc, float[] fcB, WeightMatrix fcProj, float[] fcProjB,
                         float attnScale) {
    }

    private final ModelInfo info;
    private final Kernels k;
    private final int d, nHeads, headDim, dMlp, vocab;
    private final float eps;
    private final Activation act;
    private final WeightMatrix wte, wpe;
    private final Block[] blocks;
    private final float[] lnfW, lnfB;
    private final WeightMatrix unembed;
    private final List<HookPoint> hookPoints;
    private final HookPoint[][] blockHooks;
    private final HookPoint hookEmbed = HookPoint.global(HookKind.EMBED);
    private final HookPoint hookPosEmbed = HookPoint.global(HookKind.POS_EMBED);
    private final HookPoint hookScale = HookPoint.global(HookKind.LN_FINAL_SCALE);
    private final HookPoint hookNormalized = HookPoint.global(HookKind.LN_FINAL_NORMALIZED);

    private Gpt2Model(ModelInfo info, Kernels k, float eps, Activation act, WeightMatrix wte, WeightMatrix wpe,
                      Block[] blocks, float[] lnfW, float[] lnfB, WeightMatrix unembed) {
        this.info = info;
        this.k = k;
        this.d = info.dModel();
        this.nHeads = info.nHeads();
        this.headDim = d / nHeads;
        this.dMlp = info.dMlp();
        this.vocab = info.vocabSize();
        this.eps = eps;
        this.act = act;
        this.wte = wte;
        this.wpe = wpe;
        this.blocks = blocks;
        this.lnfW = lnfW;
        this.lnfB = lnfB;
        this.unembed = unembed;
        List<HookPoint> hp = new ArrayList<>(List.of(hookEmbed, hookPosEmbed));
        blockHooks = new HookPoint[blocks.length][];
        for (int l = 0; l < blocks.length; l++) {
            blockHooks[l] = new HookPoint[]{
                    HookPoint.of(HookKind.RESID_PRE, l), HookPoint.of(HookKind.ATTN_PATTERN, l),
                    HookPoint.of(HookKind.ATTN_OUT, l), HookPoint.of(HookKind.RESID_MID, l),
                    HookPoint.of(HookKind.MLP_OUT, l), HookPoint.of(HookKind.RESID_POST, l)};
            hp.addAll(List.of(blockHooks[l]));
        }
        hp.add(hookScale);
        hp.add(hookNormalized);
        this.hookPoints = List.copyOf(hp);
    }

    public static Gpt2Model load(ModelConfig cfg, TensorSource source, Kernels kernels) {
        int d = cfg.requireInt("n_embd");
        int nHeads = cfg.requireInt("n_head");
        int nLayers = cfg.requireInt("n_layer");
        int dMlp = cfg.getInt("n_inner", 4 * d); // null in most configs, meaning 4 × n_embd
        int vocab = cfg.requireInt("vocab_size");
        int maxPos = cfg.getInt("n_positions", 1024);
        if (d % nHeads != 0) {
            throw new JlensException(cfg.file() + ": n_embd " + d + " is not divisible by n_head " + nHeads);
        }
        int headDim = d / nHeads;
        float eps = (float) cfg.getDouble("layer_norm_epsilon", 1e-5);
        Activation act = Activation.fromConfig(cfg.getString("activation_function", "gelu_new"), cfg.file().toString());
        boolean tied = cfg.getBool("tie_word_embeddings", true);
        // HF divides the scores by sqrt(head_dim) unless scale_attn_weights is off, and additionally by
        // layer_idx + 1 with scale_attn_by_inverse_layer_idx. reorder_and_upcast_attn only changes the
        // precision of half-precision runs; jlens computes attention in float32 anyway.
        boolean scaleBySqrt = cfg.getBool("scale_attn_weights", true);
        boolean byInverseLayer = cfg.getBool("scale_attn_by_inverse_layer_idx", false);

        Weights w = new Weights(source, cfg);
        w.requireLayers("n_layer", nLayers);
        // GPT2LMHeadModel checkpoints name the trunk "transformer."; GPT2Model ones (and the original OpenAI
        // uploads) have no prefix.
        String pre = !source.contains("transformer.wte.weight") && source.contains("wte.weight") ? "" : "transformer.";
        List<String> names = tensorNames(pre, nLayers);
        if (!tied) names.add("lm_head.weight");
        w.requirePresent(names);
        WeightMatrix wte = w.matrix(pre + "wte.weight", vocab, d);
        WeightMatrix wpe = w.matrix(pre + "wpe.weight", maxPos, d);
        Block[] blocks = new Block[nLayers];
        for (int l = 0; l < nLayers; l++) {
            String p = pre + "h." + l + ".";
            float scale = (float) ((scaleBySqrt ? 1.0 / Math.sqrt(headDim) : 1.0) / (byInverseLayer ? l + 1 : 1));
            blocks[l] = new Block(
                    w.vector(p + "ln_1.weight", d), w.vector(p + "ln_1.bias", d),
                    w.transposedMatrix(p + "attn.c_attn.weight", d, 3 * d), w.vector(p + "attn.c_attn.bias", 3 * d),
                    w.transposedMatrix(p + "attn.c_proj.weight", d, d), w.vector(p + "attn.c_proj.bias", d),
                    w.vector(p + "ln_2.weight", d), w.vector(p + "ln_2.bias", d),
                    w.transposedMatrix(p + "mlp.c_fc.weight", d, dMlp), w.vector(p + "mlp.c_fc.bias", dMlp),
                    w.transposedMatrix(p + "mlp.c_proj.weight", dMlp, d), w.vector(p + "mlp.c_proj.bias", d),
                    scale);
        }
        float[] lnfW = w.vector(pre + "ln_f.weight", d);
        float[] lnfB = w.vector(pre + "ln_f.bias", d);
        // Tied checkpoints (all published GPT-2s) store no lm_head.weight: save_pretrained drops the alias.
        WeightMatrix unembed = tied ? wte : w.matrix("lm_head.weight", vocab, d);
        String arch = cfg.architectures().isEmpty() ? "GPT2LMHeadModel" : cfg.architectures().getFirst();
        DType dtype = wte.dtype();
        ModelInfo info = new ModelInfo("gpt2", arch, nLayers, d, nHeads, nHeads, dMlp, vocab, maxPos,
                w.parameterCount(), dtype, true);
        return new Gpt2Model(info, kernels, eps, act, wte, wpe, blocks, lnfW, lnfB, unembed);
    }

    /** Every tensor the forward reads (old checkpoints also carry attn.bias mask buffers, which are ignored). */
    private static List<String> tensorNames(String pre, int nLayers) {
        List<String> names = new ArrayList<>(List.of(pre + "wte.weight", pre + "wpe.weight"));
        for (int l = 0; l < nLayers; l++) {
            for (String s : List.of("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")) {
                names.add(pre + "h." + l + "." + s + ".weight");
                names.add(pre + "h." + l + "." + s + ".bias");
            }
        }
        names.add(pre + "ln_f.weight");
        names.add(pre + "ln_f.bias");
        return names;
    }

    @Override
    public ModelInfo info() {
        return info;
    }

    @Override
    public List<HookPoint> hookPoints() {
        return hookPoints;
    }

    @Override
    public FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks) {
        return forward(batch, options, hooks, null);
    }

    @Override
    public FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks, KvCache cache) {
        int T = batch.totalTokens();
        int[] positions = batch.checkedPositions(vocab, info.maxPositions());
        float[] tok = new float[T * d];
        float[] pos = new float[T * d];
        wte.gatherRows(batch.tokens(), tok);
        wpe.gatherRows(positions, pos);
        FloatTensor embed = fire(hooks, hookEmbed, new FloatTensor(tok, T, d), batch);
        FloatTensor posEmbed = fire(hooks, hookPosEmbed, new FloatTensor(pos, T, d), batch);
        float[] x = embed.data().clone();
        k.addInPlace(x, posEmbed.data(), T * d);
        FloatTensor resid = new FloatTensor(x, T, d);

        int nBlocks = options.blocksToRun(blocks.length);
        KvCache.Step step = cache == null ? null : cache.begin(batch, nBlocks, blocks.length);
        AttentionLayout layout = KvCache.layout(step, batch);
        float[] ln = new float[T * d];
        float[] qkv = new float[T * 3 * d];
        float[] q = new float[T * d], kk = new float[T * d], v = new float[T * d];
        float[] ctx = new float[T * d];
        float[] hidden = new float[T * dMlp];
        BlockOutputs outs = new BlockOutputs(T * d);
        for (int l = 0; l < nBlocks; l++) {
            Block b = blocks[l];
            HookPoint[] hp = blockHooks[l];
            resid = fire(hooks, hp[0], resid, batch);
            x = resid.data();

            k.layerNorm(x, ln, T, d, b.ln1W, b.ln1B, eps);
            k.matmul(ln, T, b.qkv, b.qkvB, qkv);
            for (int t = 0; t < T; t++) {
                System.arraycopy(qkv, t * 3 * d, q, t * d, d);
                System.arraycopy(qkv, t * 3 * d + d, kk, t * d, d);
                System.arraycopy(qkv, t * 3 * d + 2 * d, v, t * d, d);
            }
            KvCache.Keys kv = KvCache.keys(step, l, kk, v, d);
            float[] pattern = hooks.wants(hp[1]) ? new float[KvCache.patternSize(layout, nHeads)] : null;
            k.attention(q, kv.keys(), kv.values(), ctx, layout, nHeads, nHeads, headDim, b.attnScale, AttentionMask.CAUSAL, pattern);
            if (pattern != null) hooks.fire(hp[1], new FloatTensor(pattern, pattern.length), batch);
            float[] attnOut = outs.attnOut(hooks.wants(hp[2]));
            k.matmul(ctx, T, b.proj, b.projB, attnOut);
            FloatTensor attn = fire(hooks, hp[2], new FloatTensor(attnOut, T, d), batch);

            float[] mid = outs.residMid(hooks.wants(hp[3]));
            System.arraycopy(x, 0, mid, 0, T * d);
            k.addInPlace(mid, attn.data(), T * d);
            FloatTensor residMid = fire(hooks, hp[3], new FloatTensor(mid, T, d), batch);

            k.layerNorm(residMid.data(), ln, T, d, b.ln2W, b.ln2B, eps);
            k.matmul(ln, T, b.fc, b.fcB, hidden);
            k.activate(hidden, T * dMlp, act);
            float[] mlpOut = outs.mlpOut(hooks.wants(hp[4]));
            k.matmul(hidden, T, b.fcProj, b.fcProjB, mlpOut);
            FloatTensor mlp = fire(hooks, hp[4], new FloatTensor(mlpOut, T, d), batch);

            float[] next = outs.nextResid(hooks, hp[5], l + 1 < nBlocks ? blockHooks[l + 1][0] : null, x);
            System.arraycopy(residMid.data(), 0, next, 0, T * d);
            k.addInPlace(next, mlp.data(), T * d);
            resid = fire(hooks, hp[5], new FloatTensor(next, T, d), batch);
        }
        if (nBlocks < blocks.length) return null;
        if (step != null) step.commit();

        x = resid.data();
        if (hooks.wants(hookScale) || hooks.wants(hookNormalized)) {
            float[] scale = new float[T];
            float[] normalized = new float[T * d];
            NormStats.layerNorm(x, T, d, eps, scale, normalized);
            hooks.fire(hookScale, new FloatTensor(scale, T, 1), batch);
            hooks.fire(hookNormalized, new FloatTensor(normalized, T, d), batch);
        }
        if (!options.logits()) return null;
        float[] fin = new float[T * d];
        k.layerNorm(x, fin, T, d, lnfW, lnfB, eps);
        float[] logits = new float[T * vocab];
        k.matmul(fin, T, unembed, null, logits);
        return new FloatTensor(logits, T, vocab);
    }

    private static FloatTensor fire(Hooks hooks, HookPoint p, FloatTensor v, TokenBatch batch) {
        return hooks.wants(p) ? hooks.fire(p, v, batch) : v;
    }
}
