package dev.jlens.model.gptneox;

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
import dev.jlens.kernels.RotaryEmbedding;
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
 * GPT-NeoX / Pythia ({@code GPTNeoXForCausalLM}), read top to bottom like HF's modeling_gpt_neox.py:
 * embed_in, then per block LayerNorm → fused QKV (per-head interleaved q|k|v rows) → partial rotary →
 * causal attention → dense, and an MLP on its own LayerNorm, added in parallel (Pythia) or in sequence;
 * final LayerNorm and the untied embed_out.
 */
public final class GptNeoXModel implements TransformerModel {

    public static final ModelFamily FAMILY = new ModelFamily() {
        @Override
        public String name() {
            return "gpt_neox";
        }

        @Override
        public List<String> architectures() {
            return List.of("GPTNeoXForCausalLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("gpt_neox");
        }

        @Override
        public TransformerModel load(ModelConfig config, TensorSource weights, Kernels kernels) {
            return GptNeoXModel.load(config, weights, kernels);
        }
    };

    private record Block(float[] ln1W, float[] ln1B, WeightMatrix qkv, float[] qkvB, WeightMatrix dense, float[] denseB,
                         float[] ln2W, float[] ln2B, WeightMatrix up, float[] upB, WeightMatrix down, float[] downB) {
    }

    private final ModelInfo info;
    private final Kernels k;
    private final int d, nHeads, headSize, dMlp, vocab;
    private final float eps;
    private final boolean parallel;
    private final Activation act;
    private final RotaryEmbedding rope;
    private final WeightMatrix embedIn;
    private final Block[] blocks;
    private final float[] lnfW, lnfB;
    private final WeightMatrix embedOut;
    private final List<HookPoint> hookPoints;
    private final HookPoint[][] blockHooks;
    private final HookPoint hookEmbed = HookPoint.global(HookKind.EMBED);
    private final HookPoint hookScale = HookPoint.global(HookKind.LN_FINAL_SCALE);
    private final HookPoint hookNormalized = HookPoint.global(HookKind.LN_FINAL_NORMALIZED);

    private GptNeoXModel(ModelInfo info, Kernels k, float eps, boolean parallel, Activation act, RotaryEmbedding rope,
                         WeightMatrix embedIn, Block[] blocks, float[] lnfW, float[] lnfB, WeightMatrix embedOut) {
        this.info = info;
        this.k = k;
        this.d = info.dModel();
        this.nHeads = info.nHeads();
        this.headSize = d / nHeads;
        this.dMlp = info.dMlp();
        this.vocab = info.vocabSize();
        this.eps = eps;
        this.parallel = parallel;
        this.act = act;
        this.rope = rope;
        this.embedIn = embedIn;
        this.blocks = blocks;
        this.lnfW = lnfW;
        this.lnfB = lnfB;
        this.embedOut = embedOut;
        List<HookPoint> hp = new ArrayList<>();
        hp.add(hookEmbed);
        blockHooks = new HookPoint[blocks.length][];
        for (int l = 0; l < blocks.length; l++) {
            List<HookPoint> b = new ArrayList<>();
            b.add(HookPoint.of(HookKind.RESID_PRE, l));
            b.add(HookPoint.of(HookKind.ATTN_PATTERN, l));
            b.add(HookPoint.of(HookKind.ATTN_OUT, l));
            if (!parallel) b.add(HookPoint.of(HookKind.RESID_MID, l));
            b.add(HookPoint.of(HookKind.MLP_OUT, l));
            b.add(HookPoint.of(HookKind.RESID_POST, l));
            hp.addAll(b);
            blockHooks[l] = b.toArray(HookPoint[]::new);
        }
        hp.add(hookScale);
        hp.add(hookNormalized);
        this.hookPoints = List.copyOf(hp);
    }

    public static GptNeoXModel load(ModelConfig cfg, TensorSource source, Kernels kernels) {
        int d = cfg.requireInt("hidden_size");
        int nHeads = cfg.requireInt("num_attention_heads");
        int nLayers = cfg.requireInt("num_hidden_layers");
        int dMlp = cfg.getInt("intermediate_size", 4 * d);
        int vocab = cfg.requireInt("vocab_size");
        int maxPos = cfg.getInt("max_position_embeddings", 2048);
        if (d % nHeads != 0) {
            throw new JlensException(cfg.file() + ": hidden_size " + d + " is not divisible by num_attention_heads " + nHeads);
        }
        int headSize = d / nHeads;
        double rotaryPct = cfg.getDouble("rotary_pct", 1.0);
        if (rotaryPct < 0 || rotaryPct > 1) throw cfg.invalid("rotary_pct", "a fraction between 0 and 1");
        int rotaryDims = (int) (headSize * rotaryPct);
        double base = cfg.getDouble("rotary_emb_base", cfg.getDouble("rope_theta", 10000));
        float eps = (float) cfg.getDouble("layer_norm_eps", 1e-5);
        boolean parallel = cfg.getBool("use_parallel_residual", true);
        Activation act = Activation.fromConfig(cfg.getString("hidden_act", "gelu"), cfg.file().toString());
        if (cfg.getBool("tie_word_embeddings", false)) {
            throw new JlensException(cfg.file() + ": tie_word_embeddings=true is not a GPT-NeoX layout jlens knows "
                    + "(Pythia keeps embed_out separate)");
        }
        if (cfg.has("rope_scaling")) {
            throw new JlensException(cfg.file() + ": rope_scaling is set; GPT-NeoX rope scaling is not supported yet");
        }
        Weights w = new Weights(source, cfg);
        w.requireLayers("num_hidden_layers", nLayers);
        WeightMatrix embedIn = w.matrix("gpt_neox.embed_in.weight", vocab, d);
        Block[] blocks = new Block[nLayers];
        for (int l = 0; l < nLayers; l++) {
            String p = "gpt_neox.layers." + l + ".";
            blocks[l] = new Block(
                    w.vector(p + "input_layernorm.weight", d), w.vector(p + "input_layernorm.bias", d),
                    w.matrix(p + "attention.query_key_value.weight", 3 * d, d), w.vector(p + "attention.query_key_value.bias", 3 * d),
                    w.matrix(p + "attention.dense.weight", d, d), w.vector(p + "attention.dense.bias", d),
                    w.vector(p + "post_attention_layernorm.weight", d), w.vector(p + "post_attention_layernorm.bias", d),
                    w.matrix(p + "mlp.dense_h_to_4h.weight", dMlp, d), w.vector(p + "mlp.dense_h_to_4h.bias", dMlp),
                    w.matrix(p + "mlp.dense_4h_to_h.weight", d, dMlp), w.vector(p + "mlp.dense_4h_to_h.bias", d));
        }
        // Pack every block weight now, so load time (not the first forward) pays for it. embed_out is left to
        // its first product: runs that only cache hooks never need it.
        for (Block b : blocks) {
            kernels.prepare(b.qkv());
            kernels.prepare(b.dense());
            kernels.prepare(b.up());
            kernels.prepare(b.down());
        }
        float[] lnfW = w.vector("gpt_neox.final_layer_norm.weight", d);
        float[] lnfB = w.vector("gpt_neox.final_layer_norm.bias", d);
        WeightMatrix embedOut = w.matrix("embed_out.weight", vocab, d);
        DType dtype = embedIn.dtype();
        ModelInfo info = new ModelInfo("gpt_neox", "GPTNeoXForCausalLM", nLayers, d, nHeads, nHeads, dMlp, vocab, maxPos,
                w.parameterCount(), dtype, true);
        return new GptNeoXModel(info, kernels, eps, parallel, act, new RotaryEmbedding(rotaryDims, base),
                embedIn, blocks, lnfW, lnfB, embedOut);
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
        float[] x = new float[T * d];
        embedIn.gatherRows(batch.tokens(), x);
        FloatTensor resid = new FloatTensor(x, T, d);
        resid = fire(hooks, hookEmbed, resid, batch);

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
            int hi = 0;
            resid = fire(hooks, hp[hi++], resid, batch);
            x = resid.data();

            k.layerNorm(x, ln, T, d, b.ln1W, b.ln1B, eps);
            k.matmul(ln, T, b.qkv, b.qkvB, qkv);
            splitHeads(qkv, q, kk, v, T);
            rope.apply(q, T, nHeads, headSize, positions);
            rope.apply(kk, T, nHeads, headSize, positions);
            KvCache.Keys kv = KvCache.keys(step, l, kk, v, d);
            HookPoint patternPoint = hp[hi++];
            float[] pattern = hooks.wants(patternPoint) ? new float[KvCache.patternSize(layout, nHeads)] : null;
            k.attention(q, kv.keys(), kv.values(), ctx, layout, nHeads, nHeads, headSize, (float) (1.0 / Math.sqrt(headSize)),
                    AttentionMask.CAUSAL, pattern);
            if (pattern != null) hooks.fire(patternPoint, new FloatTensor(pattern, pattern.length), batch);
            float[] attnOut = outs.attnOut(hooks.wants(hp[hi]));
            k.matmul(ctx, T, b.dense, b.denseB, attnOut);
            FloatTensor attn = fire(hooks, hp[hi++], new FloatTensor(attnOut, T, d), batch);

            float[] mlpIn;
            FloatTensor residMid = null;
            if (parallel) {
                k.layerNorm(x, ln, T, d, b.ln2W, b.ln2B, eps);
            } else {
                float[] mid = outs.residMid(hooks.wants(hp[hi]));
                System.arraycopy(x, 0, mid, 0, T * d);
                k.addInPlace(mid, attn.data(), T * d);
                residMid = fire(hooks, hp[hi++], new FloatTensor(mid, T, d), batch);
                k.layerNorm(residMid.data(), ln, T, d, b.ln2W, b.ln2B, eps);
            }
            mlpIn = ln;
            k.matmul(mlpIn, T, b.up, b.upB, hidden);
            k.activate(hidden, T * dMlp, act);
            float[] mlpOut = outs.mlpOut(hooks.wants(hp[hi]));
            k.matmul(hidden, T, b.down, b.downB, mlpOut);
            FloatTensor mlp = fire(hooks, hp[hi++], new FloatTensor(mlpOut, T, d), batch);

            float[] next = outs.nextResid(hooks, hp[hi], l + 1 < nBlocks ? blockHooks[l + 1][0] : null, x);
            System.arraycopy(mlp.data(), 0, next, 0, T * d);
            if (parallel) {
                // HF: mlp_output + attn_output + residual, in that order.
                k.addInPlace(next, attn.data(), T * d);
                k.addInPlace(next, x, T * d);
            } else {
                k.addInPlace(next, residMid.data(), T * d);
            }
            resid = fire(hooks, hp[hi], new FloatTensor(next, T, d), batch);
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
        k.matmul(fin, T, embedOut, null, logits);
        return new FloatTensor(logits, T, vocab);
    }


    /** GPT-NeoX stores q|k|v interleaved per head: head h's rows are [h*3*hs, h*3*hs+hs) for q, then k, then v. */
    private void splitHeads(float[] qkv, float[] q, float[] kk, float[] v, int T) {
        for (int t = 0; t < T; t++) {
            int src = t * 3 * d, dst = t * d;
            for (int h = 0; h < nHeads; h++) {
                int s = src + h * 3 * headSize, o = dst + h * headSize;
                System.arraycopy(qkv, s, q, o, headSize);
                System.arraycopy(qkv, s + headSize, kk, o, headSize);
                System.arraycopy(qkv, s + 2 * headSize, v, o, headSize);
            }
        }
    }

    private static FloatTensor fire(Hooks hooks, HookPoint p, FloatTensor v, TokenBatch batch) {
        return hooks.wants(p) ? hooks.fire(p, v, batch) : v;
    }
}
