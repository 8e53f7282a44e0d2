package dev.jlens.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
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
 * Llama and its close relatives Qwen2 and Mistral ({@code LlamaForCausalLM}, {@code Qwen2ForCausalLM},
 * {@code MistralForCausalLM}), read top to bottom like HF's modeling_llama.py: embed_tokens, then per block
 * RMSNorm → q/k/v projections (fewer k/v heads with grouped-query attention) → rotate-half RoPE → causal
 * attention (Mistral: within a sliding window) → o_proj, added to the residual, and RMSNorm → SwiGLU MLP
 * down(silu(gate(x)) · up(x)), added again; final RMSNorm and lm_head (or embed_tokens when tied).
 * The three differ only in which biases they carry, their defaults and the sliding window.
 */
public final class LlamaModel implements TransformerModel {

    public static final ModelFamily FAMILY = new ModelFamily() {
        @Override
        public String name() {
            return "llama";
        }

        @Override
        public List<String> architectures() {
            return List.of("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM");
        }

        @Override
        public List<String> modelTypes() {
            return List.of("llama", "qwen2", "mistral");
        }

        @Override
        public TransformerModel load(ModelConfig config, TensorSource weights, Kernels kernels) {
            return LlamaModel.load(config, weights, kernels);
        }
    };

    /** Biases are null where the checkpoint has none. */
    private record Block(float[] ln1W, WeightMatrix q, float[] qB, WeightMatrix kw, float[] kB, WeightMatrix v,
                         float[] vB, WeightMatrix o, float[] oB, float[] ln2W, WeightMatrix gate, float[] gateB,
                         WeightMatrix up, float[] upB, WeightMatrix down, float[] downB, AttentionMask mask) {
    }

    private final ModelInfo info;
    private final Kernels k;
    private final int d, nHeads, nKvHeads, headDim, dMlp, vocab;
    private final float eps;
    private final Activation act;
    private final RotaryEmbedding rope;
    private final WeightMatrix embed;
    private final Block[] blocks;
    private final float[] normW;
    private final WeightMatrix lmHead;
    private final List<HookPoint> hookPoints;
    private final HookPoint[][] blockHooks;
    private final HookPoint hookEmbed = HookPoint.global(HookKind.EMBED);
    private final HookPoint hookScale = HookPoint.global(HookKind.LN_FINAL_SCALE);
    private final HookPoint hookNormalized = HookPoint.global(HookKind.LN_FINAL_NORMALIZED);

    private LlamaModel(ModelInfo info, Kernels k, int headDim, float eps, Activation act, RotaryEmbedding rope,
                       WeightMatrix embed, Block[] blocks, float[] normW, WeightMatrix lmHead) {
        this.info = info;
        this.k = k;
        this.d = info.dModel();
        this.nHeads = info.nHeads();
        this.nKvHeads = info.nKvHeads();
        this.headDim = headDim;
        this.dMlp = info.dMlp();
        this.vocab = info.vocabSize();
        this.eps = eps;
        this.act = act;
        this.rope = rope;
        this.embed = embed;
        this.blocks = blocks;
        this.normW = normW;
        this.lmHead = lmHead;
        List<HookPoint> hp = new ArrayList<>(List.of(hookEmbed));
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

    public static LlamaModel load(ModelConfig cfg, TensorSource source, Kernels kernels) {
        String arch = architecture(cfg);
        boolean qwen2 = arch.equals("Qwen2ForCausalLM"), mistral = arch.equals("MistralForCausalLM");
        int d = cfg.requireInt("hidden_size");
        int nHeads = cfg.requireInt("num_attention_heads");
        int nKvHeads = cfg.getInt("num_key_value_heads", nHeads);
        int nLayers = cfg.requireInt("num_hidden_layers");
        int dMlp = cfg.requireInt("intermediate_size");
        int vocab = cfg.requireInt("vocab_size");
        int maxPos = cfg.getInt("max_position_embeddings", 2048);
        if (!cfg.has("head_dim") && d % nHeads != 0) {
            throw new JlensException(cfg.file() + ": hidden_size " + d + " is not divisible by num_attention_heads "
                    + nHeads + " and no head_dim is given");
        }
        int headDim = cfg.getInt("head_dim", d / nHeads);
        if (nHeads % nKvHeads != 0) {
            throw new JlensException(cfg.file() + ": num_attention_heads " + nHeads
                    + " is not a multiple of num_key_value_heads " + nKvHeads);
        }
        if (headDim % 2 != 0) throw cfg.invalid("head_dim", "an even number (RoPE rotates pairs)");
        float eps = (float) cfg.getDouble("rms_norm_eps", 1e-6);
        Activation act = Activation.fromConfig(cfg.getString("hidden_act", "silu"), cfg.file().toString());
        boolean tied = cfg.getBool("tie_word_embeddings", false);
        // Qwen2 always has q/k/v biases and no o_proj bias; Llama has all four only with attention_bias;
        // Mistral has none.
        boolean qkvBias = qwen2 || (!mistral && cfg.getBool("attention_bias", false));
        boolean oBias = !qwen2 && !mistral && cfg.getBool("attention_bias", false);
        boolean mlpBias = !qwen2 && !mistral && cfg.getBool("mlp_bias", false);
        int window = slidingWindow(cfg, qwen2, mistral);
        if ((long) nHeads * headDim > Integer.MAX_VALUE) {
            throw cfg.invalid("head_dim", "at most " + Integer.MAX_VALUE / nHeads + " for " + nHeads + " attention heads");
        }

        Weights w = new Weights(source, cfg);
        w.requireLayers("num_hidden_layers", nLayers);
        w.requirePresent(tensorNames(nLayers, qkvBias, oBias, mlpBias, tied));
        int qDim = nHeads * headDim, kvDim = nKvHeads * headDim;
        WeightMatrix embed = w.matrix("model.embed_tokens.weight", vocab, d);
        Block[] blocks = new Block[nLayers];
        for (int l = 0; l < nLayers; l++) {
            String p = "model.layers." + l + ".";
            String a = p + "self_attn.", m = p + "mlp.";
            boolean slides = window > 0 && window < maxPos && (!qwen2 || l >= cfg.getInt("max_window_layers", 28));
            blocks[l] = new Block(
                    w.vector(p + "input_layernorm.weight", d),
                    w.matrix(a + "q_proj.weight", qDim, d), qkvBias ? w.vector(a + "q_proj.bias", qDim) : null,
                    w.matrix(a + "k_proj.weight", kvDim, d), qkvBias ? w.vector(a + "k_proj.bias", kvDim) : null,
                    w.matrix(a + "v_proj.weight", kvDim, d), qkvBias ? w.vector(a + "v_proj.bias", kvDim) : null,
                    w.matrix(a + "o_proj.weight", d, qDim), oBias ? w.vector(a + "o_proj.bias", d) : null,
                    w.vector(p + "post_attention_layernorm.weight", d),
                    w.matrix(m + "gate_proj.weight", dMlp, d), mlpBias ? w.vector(m + "gate_proj.bias", dMlp) : null,
                    w.matrix(m + "up_proj.weight", dMlp, d), mlpBias ? w.vector(m + "up_proj.bias", dMlp) : null,
                    w.matrix(m + "down_proj.weight", d, dMlp), mlpBias ? w.vector(m + "down_proj.bias", d) : null,
                    slides ? new AttentionMask(true, window) : AttentionMask.CAUSAL);
        }
        float[] normW = w.vector("model.norm.weight", d);
        // Made once the q_proj shapes have confirmed head_dim, since its tables are sized by it.
        RotaryEmbedding rope = new RotaryEmbedding(headDim, ropeInvFreq(cfg, headDim));
        // Tied checkpoints usually store no lm_head.weight (save_pretrained drops the alias); HF uses
        // embed_tokens even when a stale copy is present.
        WeightMatrix lmHead = tied ? embed : w.matrix("lm_head.weight", vocab, d);
        DType dtype = embed.dtype();
        ModelInfo info = new ModelInfo("llama", arch, nLayers, d, nHeads, nKvHeads, dMlp, vocab, maxPos,
                w.parameterCount(), dtype, true);
        return new LlamaModel(info, kernels, headDim, eps, act, rope, embed, blocks, normW, lmHead);
    }

    private static String architecture(ModelConfig cfg) {
        for (String a : cfg.architectures()) if (FAMILY.architectures().contains(a)) return a;
        return switch (cfg.getString("model_type", "llama")) {
            case "qwen2" -> "Qwen2ForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            default -> "LlamaForCausalLM";
        };
    }

    private static List<String> tensorNames(int nLayers, boolean qkvBias, boolean oBias, boolean mlpBias, boolean tied) {
        List<String> names = new ArrayList<>(List.of("model.embed_tokens.weight"));
        for (int l = 0; l < nLayers; l++) {
            String p = "model.layers." + l + ".";
            names.add(p + "input_layernorm.weight");
            for (String s : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
                names.add(p + "self_attn." + s + ".weight");
                if (s.equals("o_proj") ? oBias : qkvBias) names.add(p + "self_attn." + s + ".bias");
            }
            names.add(p + "post_attention_layernorm.weight");
            for (String s : List.of("gate_proj", "up_proj", "down_proj")) {
                names.add(p + "mlp." + s + ".weight");
                if (mlpBias) names.add(p + "mlp." + s + ".bias");
            }
        }
        names.add("model.norm.weight");
        if (!tied) names.add("lm_head.weight");
        return names;
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

    /**
     * RoPE inverse frequencies with config.json's rope_scaling, as HF's modeling_rope_utils computes them (in
     * float32, whose rounding parity is measured against): "linear" divides every frequency by factor (the
     * same as dividing positions by it); "llama3" (Llama 3.1) leaves short wavelengths alone, divides long
     * ones by factor and blends in between; "dynamic" NTK changes nothing until a sequence outgrows
     * max_position_embeddings, which jlens does not run.
     */
    public static float[] ropeInvFreq(ModelConfig cfg, int headDim) {
        float[] inv = RotaryEmbedding.defaultInvFreq(headDim, cfg.getDouble("rope_theta", 10000));
        JsonNode rs = cfg.json().get("rope_scaling");
        if (rs == null || rs.isNull()) return inv;
        if (!rs.isObject()) throw cfg.invalid("rope_scaling", "an object with rope_type and factor, or null");
        JsonNode typeNode = rs.has("rope_type") ? rs.get("rope_type") : rs.get("type");
        String type = typeNode == null ? "default" : typeNode.asText();
        switch (type) {
            case "default", "dynamic" -> {
                return inv;
            }
            case "linear" -> {
                float factor = (float) scalingField(cfg, rs, "factor");
                for (int i = 0; i < inv.length; i++) inv[i] = inv[i] / factor;
                return inv;
            }
            case "llama3" -> {
                float factor = (float) scalingField(cfg, rs, "factor");
                double low = scalingField(cfg, rs, "low_freq_factor");
                double high = scalingField(cfg, rs, "high_freq_factor");
                double oldContext = scalingField(cfg, rs, "original_max_position_embeddings");
                if (high <= low) {
                    throw new JlensException(cfg.file() + ": rope_scaling.high_freq_factor " + high
                            + " must be greater than low_freq_factor " + low);
                }
                float lowFreqWavelen = (float) (oldContext / low), highFreqWavelen = (float) (oldContext / high);
                for (int i = 0; i < inv.length; i++) {
                    float wavelen = (float) (2 * Math.PI) / inv[i];
                    if (wavelen < highFreqWavelen) continue;
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / factor;
                    } else {
                        float smooth = ((float) oldContext / wavelen - (float) low) / (float) (high - low);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }
                }
                return inv;
            }
            default -> throw new JlensException(cfg.file() + ": rope_scaling type \"" + type
                    + "\" is not supported; jlens knows linear, llama3 and dynamic (within the context)");
        }
    }

    private static double scalingField(ModelConfig cfg, JsonNode rs, String field) {
        JsonNode n = rs.get(field);
        if (n == null || !n.isNumber() || n.asDouble() <= 0) {
            throw new JlensException(cfg.file() + ": rope_scaling." + field + " is " + n + "; expected a positive number");
        }
        return n.asDouble();
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
        embed.gatherRows(batch.tokens(), x);
        FloatTensor resid = fire(hooks, hookEmbed, new FloatTensor(x, T, d), batch);

        int nBlocks = options.blocksToRun(blocks.length);
        KvCache.Step step = cache == null ? null : cache.begin(batch, nBlocks, blocks.length);
        AttentionLayout layout = KvCache.layout(step, batch);
        int qDim = nHeads * headDim, kvDim = nKvHeads * headDim;
        float[] ln = new float[T * d];
        float[] q = new float[T * qDim], kk = new float[T * kvDim], v = new float[T * kvDim];
        float[] ctx = new float[T * qDim];
        float[] gate = new float[T * dMlp], up = new float[T * dMlp];
        BlockOutputs outs = new BlockOutputs(T * d);
        for (int l = 0; l < nBlocks; l++) {
            Block b = blocks[l];
            HookPoint[] hp = blockHooks[l];
            resid = fire(hooks, hp[0], resid, batch);
            x = resid.data();

            k.rmsNorm(x, ln, T, d, b.ln1W, eps);
            k.matmul(ln, T, b.q, b.qB, q);
            k.matmul(ln, T, b.kw, b.kB, kk);
            k.matmul(ln, T, b.v, b.vB, v);
            rope.apply(q, T, nHeads, headDim, positions);
            rope.apply(kk, T, nKvHeads, headDim, positions);
            KvCache.Keys kv = KvCache.keys(step, l, kk, v, kvDim);
            float[] pattern = hooks.wants(hp[1]) ? new float[KvCache.patternSize(layout, nHeads)] : null;
            k.attention(q, kv.keys(), kv.values(), ctx, layout, nHeads, nKvHeads, headDim, (float) (1.0 / Math.sqrt(headDim)),
                    b.mask, pattern);
            if (pattern != null) hooks.fire(hp[1], new FloatTensor(pattern, pattern.length), batch);
            float[] attnOut = outs.attnOut(hooks.wants(hp[2]));
            k.matmul(ctx, T, b.o, b.oB, attnOut);
            FloatTensor attn = fire(hooks, hp[2], new FloatTensor(attnOut, T, d), batch);

            float[] mid = outs.residMid(hooks.wants(hp[3]));
            System.arraycopy(x, 0, mid, 0, T * d);
            k.addInPlace(mid, attn.data(), T * d);
            FloatTensor residMid = fire(hooks, hp[3], new FloatTensor(mid, T, d), batch);

            k.rmsNorm(residMid.data(), ln, T, d, b.ln2W, eps);
            k.matmul(ln, T, b.gate, b.gateB, gate);
            k.matmul(ln, T, b.up, b.upB, up);
            k.activate(gate, T * dMlp, act);
            for (int i = 0; i < T * dMlp; i++) gate[i] *= up[i];
            float[] mlpOut = outs.mlpOut(hooks.wants(hp[4]));
            k.matmul(gate, T, b.down, b.downB, mlpOut);
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
            NormStats.rmsNorm(x, T, d, eps, scale, normalized);
            hooks.fire(hookScale, new FloatTensor(scale, T, 1), batch);
            hooks.fire(hookNormalized, new FloatTensor(normalized, T, d), batch);
        }
        if (!options.logits()) return null;
        float[] fin = new float[T * d];
        k.rmsNorm(x, fin, T, d, normW, eps);
        float[] logits = new float[T * vocab];
        k.matmul(fin, T, lmHead, null, logits);
        return new FloatTensor(logits, T, vocab);
    }

    private static FloatTensor fire(Hooks hooks, HookPoint p, FloatTensor v, TokenBatch batch) {
        return hooks.wants(p) ? hooks.fire(p, v, batch) : v;
    }
}
