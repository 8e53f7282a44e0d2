package dev.jlens.model;

import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.model.CausalSpec.QkvLayout;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The one forward pass of every causal family, read top to bottom: token embedding (× scale, + learned
 * positions), then per block
 * <pre>
 *   resid_pre ─┬─ [norm] → q, k, v (fused or separate) → [q/k norm] → rotary → attention (mask, window,
 *              │          soft-cap; KV cache) → o → [post-norm] = attn_out
 *              ├─ sequential: resid_mid = resid_pre + attn_out → [norm] → MLP → [post-norm] = mlp_out,
 *              │              resid_post = resid_mid + mlp_out
 *              └─ parallel:   mlp_out = MLP([norm](resid_pre)), resid_post = mlp_out + attn_out + resid_pre
 * </pre>
 * then the final norm with TransformerLens' {@code ln_final} hooks, the unembedding and final soft-capping.
 * A family says only what differs ({@link CausalSpec}); every number is computed by the {@link Backend}, and
 * hooks see host tensors only at the points they are registered on.
 *
 * <p>Hook points and shapes (T = tokens of the packed batch, d = d_model):
 * <pre>
 * hook_embed, hook_pos_embed          [T, d]   token (× scale) and learned position embeddings
 * blocks.L.hook_resid_pre             [T, d]   block input
 * blocks.L.attn.hook_q                [T, heads, d_head]     query projection (+ bias, after any q norm), before rotary
 * blocks.L.attn.hook_k / hook_v       [T, kv_heads, d_head]  the same for keys and values (GQA heads not repeated)
 * blocks.L.attn.hook_rot_q / _rot_k   as hook_q / hook_k, after rotary (only where the layer has rotary)
 * blocks.L.attn.hook_attn_scores      [Σ heads·q·k]  softmax input: q·k × scale, soft-capped, -inf where masked
 * blocks.L.attn.hook_pattern          [Σ heads·q·k]  softmax per sequence, [heads, q, k] blocks concatenated
 * blocks.L.attn.hook_z                [T, heads, d_head]     pattern · v, the input of the output projection
 * blocks.L.attn.hook_result           [T, heads, d]  each head's z through its slice of W_O, bias excluded
 * blocks.L.hook_attn_out              [T, d]   attention branch as it joins the residual (after any post-norm)
 * blocks.L.hook_resid_mid             [T, d]   sequential blocks: resid_pre + attn_out
 * blocks.L.mlp.hook_pre               [T, d_mlp]  input of the activation (gated MLPs: the gate projection)
 * blocks.L.mlp.hook_pre_linear        [T, d_mlp]  gated MLPs only: the up projection
 * blocks.L.mlp.hook_post              [T, d_mlp]  input of the down projection
 * blocks.L.hook_mlp_out               [T, d]   MLP branch as it joins the residual
 * blocks.L.hook_resid_post            [T, d]   block output
 * ln_final.hook_scale / hook_normalized  [T, 1] / [T, d]   the final norm's divisor and normalised input
 * </pre>
 * Every hook may change what it is given, and the pass continues with the change (a hook on hook_z that zeroes
 * one head ablates it; on hook_attn_scores or hook_pattern the attention output is recomputed from the changed
 * values; on hook_result the attention output becomes Σ_h result + bias, as TransformerLens computes it then).
 * A hook that only reads changes no bit of the pass. A hook nobody registered costs nothing: hook_result, the
 * scores and the recomputations run only when hooked.
 * Immutable after loading and safe to call from several threads (each call has its own buffers).
 */
public final class CausalLm implements TransformerModel {

    /** A linear layer: weight [out, in] and optional bias [out]. */
    private record Linear(WeightMatrix w, float[] b) {
    }

    /** A norm's weight and (LayerNorm) bias. */
    private record NormWeights(float[] w, float[] b) {
    }

    /** Every named hook point of one block, in forward order (null where the block has none). */
    private record BlockHooks(HookPoint residPre, HookPoint q, HookPoint k, HookPoint v, HookPoint rotQ, HookPoint rotK,
                              HookPoint scores, HookPoint pattern, HookPoint z, HookPoint result, HookPoint attnOut,
                              HookPoint residMid, HookPoint mlpPre, HookPoint mlpPreLinear, HookPoint mlpPost,
                              HookPoint mlpOut, HookPoint residPost) {
        static BlockHooks of(int l, boolean parallel, boolean rotary, boolean gated) {
            return new BlockHooks(HookPoint.of(HookKind.RESID_PRE, l),
                    HookPoint.of(HookKind.ATTN_Q, l), HookPoint.of(HookKind.ATTN_K, l), HookPoint.of(HookKind.ATTN_V, l),
                    rotary ? HookPoint.of(HookKind.ATTN_ROT_Q, l) : null, rotary ? HookPoint.of(HookKind.ATTN_ROT_K, l) : null,
                    HookPoint.of(HookKind.ATTN_SCORES, l), HookPoint.of(HookKind.ATTN_PATTERN, l),
                    HookPoint.of(HookKind.ATTN_Z, l), HookPoint.of(HookKind.ATTN_RESULT, l), HookPoint.of(HookKind.ATTN_OUT, l),
                    parallel ? null : HookPoint.of(HookKind.RESID_MID, l),
                    HookPoint.of(HookKind.MLP_PRE, l), gated ? HookPoint.of(HookKind.MLP_PRE_LINEAR, l) : null,
                    HookPoint.of(HookKind.MLP_POST, l), HookPoint.of(HookKind.MLP_OUT, l), HookPoint.of(HookKind.RESID_POST, l));
        }

        List<HookPoint> inOrder() {
            return java.util.stream.Stream.of(residPre, q, k, v, rotQ, rotK, scores, pattern, z, result, attnOut, residMid,
                    mlpPre, mlpPreLinear, mlpPost, mlpOut, residPost).filter(java.util.Objects::nonNull).toList();
        }
    }

    private record Block(NormWeights attnNorm, Linear q, Linear k, Linear v, Linear qkv, NormWeights qNorm,
                         NormWeights kNorm, Linear o, NormWeights postAttnNorm, NormWeights mlpNorm, Linear gate,
                         Linear up, Linear gateUp, Linear down, NormWeights postMlpNorm, AttentionSpec attention,
                         BlockHooks hooks) {
    }

    private final CausalSpec spec;
    private final ModelInfo info;
    private final Backend backend;
    private final int d, qWidth, kvWidth, dMlp, vocab;
    private final WeightMatrix embed, posEmbed, unembed;
    private final Block[] blocks;
    private final NormWeights finalNorm;
    private final HookPoint hookEmbed = HookPoint.global(HookKind.EMBED);
    private final HookPoint hookPosEmbed = HookPoint.global(HookKind.POS_EMBED);
    private final HookPoint hookScale = HookPoint.global(HookKind.LN_FINAL_SCALE);
    private final HookPoint hookNormalized = HookPoint.global(HookKind.LN_FINAL_NORMALIZED);
    private final List<HookPoint> hookPoints;
    /** Per block, each head's slice of W_O for hook_result, made on first use (most runs never need it). */
    private final Map<WeightMatrix, WeightMatrix[]> headOutputs = new java.util.concurrent.ConcurrentHashMap<>();

    /**
     * A causal family in one line: its name, the HF architectures and model types it handles, and how it reads
     * config.json into a {@link CausalSpec} ({@code weights} is null when there is no checkpoint yet).
     */
    public static ModelFamily family(String name, List<String> architectures, List<String> modelTypes, SpecReader reader) {
        return new ModelFamily(name, architectures, modelTypes,
                (cfg, weights, backend) -> load(reader.read(cfg, weights), cfg, weights, backend),
                (cfg, weights) -> reader.read(cfg, weights).tensors());
    }

    @FunctionalInterface
    public interface SpecReader {
        CausalSpec read(ModelConfig config, TensorSource weights);
    }

    /**
     * Loads every tensor the spec names, checking up front that all are present and each shape matches
     * config.json, and puts every block weight into the backend's layout now, so load time (not the first
     * forward) pays for it.
     */
    public static CausalLm load(CausalSpec spec, ModelConfig cfg, TensorSource source, Backend backend) {
        Weights w = new Weights(source, cfg);
        List<TensorSpec> tensors = spec.tensors();
        w.requirePresent(tensors.stream().map(TensorSpec::name).toList());
        Map<String, Object> loaded = new HashMap<>();
        Map<TensorRole, Map<Integer, TensorSpec[]>> byRole = new EnumMap<>(TensorRole.class);
        for (TensorSpec t : tensors) {
            byRole.computeIfAbsent(t.role(), r -> new HashMap<>())
                    .computeIfAbsent(t.layer(), l -> new TensorSpec[2])[t.bias() ? 1 : 0] = t;
            Object value;
            if (t.rank() == 1) {
                value = w.vector(t.name(), (int) t.shape()[0]);
            } else if (t.transposed()) {
                value = w.transposedMatrix(t.name(), (int) t.shape()[0], (int) t.shape()[1]);
            } else {
                value = w.matrix(t.name(), (int) t.shape()[0], (int) t.shape()[1]);
            }
            loaded.put(t.name(), value);
        }
        Parts parts = new Parts(byRole, loaded);
        Block[] blocks = new Block[spec.dims().nLayers()];
        for (int l = 0; l < blocks.length; l++) {
            blocks[l] = new Block(parts.norm(TensorRole.ATTN_NORM, l), parts.linear(TensorRole.Q, l),
                    parts.linear(TensorRole.K, l), parts.linear(TensorRole.V, l), parts.linear(TensorRole.QKV, l),
                    parts.norm(TensorRole.Q_NORM, l), parts.norm(TensorRole.K_NORM, l), parts.linear(TensorRole.O, l),
                    parts.norm(TensorRole.POST_ATTN_NORM, l), parts.norm(TensorRole.MLP_NORM, l),
                    parts.linear(TensorRole.GATE, l), parts.linear(TensorRole.UP, l), parts.linear(TensorRole.GATE_UP, l),
                    parts.linear(TensorRole.DOWN, l), parts.norm(TensorRole.POST_MLP_NORM, l),
                    spec.attention().layer(spec.dims(), l), BlockHooks.of(l, spec.residual().parallel(),
                            spec.attention().rotary(l).rotaryDims() > 0, spec.mlp().gated()));
            for (Linear lin : java.util.Arrays.asList(blocks[l].q, blocks[l].k, blocks[l].v, blocks[l].qkv, blocks[l].o, blocks[l].gate,
                    blocks[l].up, blocks[l].gateUp, blocks[l].down)) {
                if (lin != null) backend.prepare(lin.w);
            }
        }
        WeightMatrix embed = parts.matrix(TensorRole.EMBED);
        // Tied checkpoints usually store no unembedding (save_pretrained drops the alias), and HF uses the
        // embedding even when a stale copy is present. An untied one is packed on its first product: runs that
        // only cache hooks never need it.
        WeightMatrix unembed = spec.embedding().tied() ? embed : parts.matrix(TensorRole.UNEMBED);
        ModelInfo info = new ModelInfo(spec.family(), spec.architecture(), spec.dims().nLayers(), spec.dims().dModel(),
                spec.dims().nHeads(), spec.dims().nKvHeads(), spec.dims().dMlp(), spec.dims().vocab(),
                spec.dims().maxPositions(), w.parameterCount(), embed.dtype(), true);
        return new CausalLm(spec, info, backend, embed, spec.embedding().learnedPositions() ? parts.matrix(TensorRole.POS_EMBED) : null,
                blocks, parts.norm(TensorRole.FINAL_NORM, -1), unembed);
    }

    /** The loaded tensors by role and layer. */
    private record Parts(Map<TensorRole, Map<Integer, TensorSpec[]>> byRole, Map<String, Object> loaded) {
        private TensorSpec[] find(TensorRole role, int layer) {
            Map<Integer, TensorSpec[]> m = byRole.get(role);
            return m == null ? null : m.get(layer);
        }

        Linear linear(TensorRole role, int layer) {
            TensorSpec[] t = find(role, layer);
            if (t == null) return null;
            return new Linear((WeightMatrix) loaded.get(t[0].name()), t[1] == null ? null : (float[]) loaded.get(t[1].name()));
        }

        NormWeights norm(TensorRole role, int layer) {
            TensorSpec[] t = find(role, layer);
            if (t == null) return null;
            return new NormWeights((float[]) loaded.get(t[0].name()), t[1] == null ? null : (float[]) loaded.get(t[1].name()));
        }

        WeightMatrix matrix(TensorRole role) {
            return (WeightMatrix) loaded.get(find(role, -1)[0].name());
        }
    }

    private CausalLm(CausalSpec spec, ModelInfo info, Backend backend, WeightMatrix embed, WeightMatrix posEmbed,
                     Block[] blocks, NormWeights finalNorm, WeightMatrix unembed) {
        this.spec = spec;
        this.info = info;
        this.backend = backend;
        CausalSpec.Dims dims = spec.dims();
        this.d = dims.dModel();
        this.qWidth = dims.nHeads() * dims.headDim();
        this.kvWidth = dims.nKvHeads() * dims.headDim();
        this.dMlp = dims.dMlp();
        this.vocab = dims.vocab();
        this.embed = embed;
        this.posEmbed = posEmbed;
        this.blocks = blocks;
        this.finalNorm = finalNorm;
        this.unembed = unembed;
        List<HookPoint> hp = new ArrayList<>(List.of(hookEmbed));
        if (posEmbed != null) hp.add(hookPosEmbed);
        for (Block b : blocks) hp.addAll(b.hooks.inOrder());
        hp.add(hookScale);
        hp.add(hookNormalized);
        this.hookPoints = List.copyOf(hp);
    }

    public CausalSpec spec() {
        return spec;
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
    public Readout readout() {
        return new Readout(backend, spec.norm().layerNorm(), spec.norm().eps(), spec.norm().onePlus(), finalNorm.w,
                finalNorm.b, unembed, spec.embedding().finalSoftcap());
    }

    @Override
    public FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks) {
        return forward(batch, options, hooks, null);
    }

    @Override
    public FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks, KvCache cache) {
        int[] positions = batch.checkedPositions(vocab, info.maxPositions());
        // A KV cache must be filled for every layer, so a pass with one runs them all.
        int nBlocks = cache != null ? options.blocksToRun(blocks.length) : options.blocksToRun(blocks.length, hooks, hookPoints);
        KvCache.Step step = cache == null ? null : cache.begin(backend, batch, nBlocks, spec.attention().window());
        AttentionLayout layout = step == null ? AttentionLayout.selfAttention(batch.offsets(), batch.lengths()) : step.layout();
        Pass p = new Pass(batch, hooks);

        DeviceTensor x = embed(p, positions);
        for (int l = 0; l < nBlocks; l++) {
            x = block(p, l, x, positions, layout, step, l + 1 < nBlocks ? blocks[l + 1].hooks.residPre : null);
        }
        if (nBlocks < blocks.length) return null;
        if (step != null) step.commit();

        if (hooks.wants(hookScale) || hooks.wants(hookNormalized)) {
            DeviceTensor scale = backend.allocate(p.T, 1), normalized = backend.allocate(p.T, d);
            backend.normStats(spec.norm().layerNorm(), x, spec.norm().eps(), scale, normalized);
            p.fire(hookScale, scale);
            p.fire(hookNormalized, normalized);
        }
        if (!options.logits()) return null;
        int rows = p.T;
        if (options.lastTokenOnly()) {
            // Norm and unembedding are per row, so picking the rows first changes no bit of them.
            rows = batch.size();
            DeviceTensor last = backend.allocate(rows, d);
            for (int s = 0; s < rows; s++) {
                int len = batch.lengths()[s];
                if (len > 0) backend.copyRows(x, batch.offsets()[s] + len - 1, last, s, 1);
            }
            x = last;
        }
        DeviceTensor fin = backend.allocate(rows, d);
        norm(x, fin, finalNorm);
        DeviceTensor logits = backend.allocate(rows, vocab);
        backend.matmul(fin, unembed, null, logits);
        if (spec.embedding().finalSoftcap() > 0f) backend.softcap(logits, spec.embedding().finalSoftcap());
        return backend.toHost(logits, rows, vocab);
    }

    private DeviceTensor embed(Pass p, int[] positions) {
        DeviceTensor tok = backend.allocate(p.T, d);
        backend.gather(embed, p.batch.tokens(), spec.embedding().scale(), tok);
        p.fire(hookEmbed, tok);
        if (posEmbed == null) return tok;
        DeviceTensor pos = backend.allocate(p.T, d);
        backend.gather(posEmbed, positions, 1f, pos);
        p.fire(hookPosEmbed, pos);
        // A new tensor, so that a hook keeping hook_embed does not see the positions added into it.
        DeviceTensor x = backend.allocate(p.T, d);
        backend.copyRows(tok, 0, x, 0, p.T);
        backend.add(x, pos);
        return x;
    }

    private DeviceTensor block(Pass p, int l, DeviceTensor x, int[] positions, AttentionLayout layout,
                               KvCache.Step step, HookPoint nextResidPre) {
        Block b = blocks[l];
        BlockHooks hp = b.hooks;
        CausalSpec.Residual wiring = spec.residual();
        p.fire(hp.residPre, x);

        // Attention branch.
        DeviceTensor attnIn = x;
        if (wiring.preNorms()) {
            norm(x, p.ln, b.attnNorm);
            attnIn = p.ln;
        }
        projectQkv(p, b, attnIn);
        normQk(p, b);
        int heads = b.attention.nHeads(), kvHeads = b.attention.nKvHeads(), hd = b.attention.headDim();
        p.fireBuffer(hp.q, p.q, p.T, heads, hd);
        p.fireBuffer(hp.k, p.k, p.T, kvHeads, hd);
        p.fireBuffer(hp.v, p.v, p.T, kvHeads, hd);
        backend.rotary(p.q, heads, hd, positions, spec.attention().rotary(l));
        backend.rotary(p.k, kvHeads, hd, positions, spec.attention().rotary(l));
        p.fireBuffer(hp.rotQ, p.q, p.T, heads, hd);
        p.fireBuffer(hp.rotK, p.k, p.T, kvHeads, hd);
        KvCache.Keys kv = step == null ? new KvCache.Keys(p.k, p.v, layout) : step.append(l, p.k, p.v);
        attend(p, b, kv, kv.layout());
        p.fireBuffer(hp.z, p.ctx, p.T, heads, hd);
        DeviceTensor attnOut = p.output(Slot.ATTN, hp.attnOut);
        if (p.site.wants(hp.result)) headResults(p, b, attnOut);
        else backend.matmul(p.ctx, b.o.w, b.o.b, attnOut);
        if (b.postAttnNorm != null) norm(attnOut, attnOut, b.postAttnNorm);
        p.fire(hp.attnOut, attnOut);

        // MLP branch, on the block input (parallel) or on the residual after attention (sequential).
        DeviceTensor mlpIn, mid = null;
        if (wiring.parallel()) {
            norm(x, p.ln, b.mlpNorm);
            mlpIn = p.ln;
        } else {
            mid = p.output(Slot.MID, hp.residMid);
            backend.copyRows(x, 0, mid, 0, p.T);
            backend.add(mid, attnOut);
            p.fire(hp.residMid, mid);
            mlpIn = mid;
            if (wiring.preNorms()) {
                norm(mid, p.ln, b.mlpNorm);
                mlpIn = p.ln;
            }
        }
        DeviceTensor hidden = mlpHidden(p, b, mlpIn);
        DeviceTensor mlpOut = p.output(Slot.MLP, hp.mlpOut);
        backend.matmul(hidden, b.down.w, b.down.b, mlpOut);
        if (b.postMlpNorm != null) norm(mlpOut, mlpOut, b.postMlpNorm);
        p.fire(hp.mlpOut, mlpOut);

        DeviceTensor next = p.nextResid(x, p.hooks.wants(hp.residPost) || (nextResidPre != null && p.hooks.wants(nextResidPre)));
        if (wiring.parallel()) {
            // HF: mlp_output + attn_output + residual, in that order.
            backend.copyRows(mlpOut, 0, next, 0, p.T);
            backend.add(next, attnOut);
            backend.add(next, x);
        } else {
            backend.copyRows(mid, 0, next, 0, p.T);
            backend.add(next, mlpOut);
        }
        p.fire(hp.residPost, next);
        return next;
    }

    /**
     * p.ctx ← attention of p.q over the keys. A hook on the scores or the pattern sees them and may change
     * them: the pattern is then the softmax of the changed scores, and the output the changed pattern times the
     * values. Unchanged, the fused kernel's output stands, so reading them never changes a bit downstream.
     */
    private void attend(Pass p, Block b, KvCache.Keys kv, AttentionLayout layout) {
        BlockHooks hp = b.hooks;
        boolean hookScores = p.site.wants(hp.scores), hookPattern = p.site.wants(hp.pattern);
        int mapSize = hookScores || hookPattern ? patternSize(layout, b.attention.nHeads()) : 0;
        DeviceTensor scores = hookScores ? backend.allocate(1, mapSize) : null;
        DeviceTensor pattern = hookScores || hookPattern ? backend.allocate(1, mapSize) : null;
        backend.attention(p.q, kv.keys(), kv.values(), p.ctx, layout, b.attention, pattern, scores);
        boolean changed = false;
        if (scores != null && p.fireAndCompare(hp.scores, scores, mapSize)) {
            backend.softmaxScores(scores, pattern, layout, b.attention);
            changed = true;
        }
        if (pattern != null) changed |= p.fireAndCompare(hp.pattern, pattern, mapSize);
        if (changed) backend.mixValues(pattern, kv.values(), p.ctx, layout, b.attention);
    }

    /**
     * hook_result: head h's z through columns h·d_head.. of W_O, [T, heads, d]. When a hook changes it, the
     * attention output is the sum of the results plus the bias, as TransformerLens computes it with
     * use_attn_result; unchanged, it is the output projection's own product, bit for bit.
     */
    private void headResults(Pass p, Block b, DeviceTensor attnOut) {
        int heads = b.attention.nHeads(), hd = b.attention.headDim();
        WeightMatrix[] wo = headOutputs(b);
        DeviceTensor z = backend.allocate(p.T, hd), one = backend.allocate(p.T, d);
        DeviceTensor result = backend.allocate(p.T, heads * d);
        for (int h = 0; h < heads; h++) {
            backend.copyColumns(p.ctx, h * hd, z, 0, hd);
            backend.matmul(z, wo[h], null, one);
            backend.copyColumns(one, 0, result, h * d, d);
        }
        if (!p.fireAndCompare(b.hooks.result, result, p.T, heads, d)) {
            backend.matmul(p.ctx, b.o.w, b.o.b, attnOut);
            return;
        }
        float[] rows = new float[p.T * d];
        if (b.o.b != null) for (int t = 0; t < p.T; t++) System.arraycopy(b.o.b, 0, rows, t * d, d);
        backend.copyRows(backend.upload(rows, p.T, d), 0, attnOut, 0, p.T);
        for (int h = 0; h < heads; h++) {
            backend.copyColumns(result, h * d, one, 0, d);
            backend.add(attnOut, one);
        }
    }

    /** Each head's slice of the output projection, [d, d_head], made on the first pass that hooks hook_result. */
    private WeightMatrix[] headOutputs(Block b) {
        int heads = b.attention.nHeads(), hd = b.attention.headDim();
        return headOutputs.computeIfAbsent(b.o.w, o -> {
            WeightMatrix[] out = new WeightMatrix[heads];
            float[] row = new float[o.cols()];
            float[][] slices = new float[heads][d * hd];
            for (int r = 0; r < d; r++) {
                o.row(r, row);
                for (int h = 0; h < heads; h++) System.arraycopy(row, h * hd, slices[h], r * hd, hd);
            }
            for (int h = 0; h < heads; h++) out[h] = WeightMatrix.ofFloats(o.name() + "[head " + h + "]", slices[h], d, hd);
            return out;
        });
    }

    /** q [T, heads·d_head], k and v [T, kv_heads·d_head] from the attention input. */
    private void projectQkv(Pass p, Block b, DeviceTensor in) {
        QkvLayout layout = spec.attention().qkv();
        if (layout == QkvLayout.SEPARATE) {
            backend.matmuls(in, new WeightMatrix[]{b.q.w, b.k.w, b.v.w}, new float[][]{b.q.b, b.k.b, b.v.b},
                    new DeviceTensor[]{p.q, p.k, p.v});
            return;
        }
        backend.matmul(in, b.qkv.w, b.qkv.b, p.qkv);
        if (layout == QkvLayout.FUSED) {
            backend.copyColumns(p.qkv, 0, p.q, 0, qWidth);
            backend.copyColumns(p.qkv, qWidth, p.k, 0, kvWidth);
            backend.copyColumns(p.qkv, qWidth + kvWidth, p.v, 0, kvWidth);
        } else {
            // GPT-NeoX: head h's rows are q, k, v of d_head each, head after head (as many k/v heads as q heads).
            int hd = b.attention.headDim();
            for (int h = 0; h < b.attention.nHeads(); h++) {
                backend.copyColumns(p.qkv, 3 * h * hd, p.q, h * hd, hd);
                backend.copyColumns(p.qkv, 3 * h * hd + hd, p.k, h * hd, hd);
                backend.copyColumns(p.qkv, 3 * h * hd + 2 * hd, p.v, h * hd, hd);
            }
        }
    }

    /** Qwen3/Gemma 3 normalise each head of q and k; OLMo-2 the whole projection. */
    private void normQk(Pass p, Block b) {
        switch (spec.attention().qkNorm()) {
            case PER_HEAD -> {
                int hd = b.attention.headDim();
                DeviceTensor q = p.q.view(p.T * b.attention.nHeads(), hd), k = p.k.view(p.T * b.attention.nKvHeads(), hd);
                norm(q, q, b.qNorm);
                norm(k, k, b.kNorm);
            }
            case FULL_WIDTH -> {
                norm(p.q, p.q, b.qNorm);
                norm(p.k, p.k, b.kNorm);
            }
            case NONE -> {
            }
        }
    }

    /** The MLP's hidden layer [T, d_mlp]: act(up(x)), or act(gate(x)) · up(x) for gated MLPs. */
    private DeviceTensor mlpHidden(Pass p, Block b, DeviceTensor in) {
        CausalSpec.Mlp mlp = spec.mlp();
        if (!mlp.gated()) {
            backend.matmul(in, b.up.w, b.up.b, p.hidden);
            p.fireBuffer(b.hooks.mlpPre, p.hidden);
            backend.activate(p.hidden, mlp.act());
            p.fireBuffer(b.hooks.mlpPost, p.hidden);
            return p.hidden;
        }
        if (mlp.fusedGateUp()) {
            backend.matmul(in, b.gateUp.w, b.gateUp.b, p.gateUp);
            backend.copyColumns(p.gateUp, 0, p.hidden, 0, dMlp);
            backend.copyColumns(p.gateUp, dMlp, p.up, 0, dMlp);
        } else {
            backend.matmuls(in, new WeightMatrix[]{b.gate.w, b.up.w}, new float[][]{b.gate.b, b.up.b},
                    new DeviceTensor[]{p.hidden, p.up});
        }
        p.fireBuffer(b.hooks.mlpPre, p.hidden);
        p.fireBuffer(b.hooks.mlpPreLinear, p.up);
        backend.gatedActivate(p.hidden, p.up, mlp.act());
        p.fireBuffer(b.hooks.mlpPost, p.hidden);
        return p.hidden;
    }

    private void norm(DeviceTensor in, DeviceTensor out, NormWeights n) {
        CausalSpec.Norm kind = spec.norm();
        if (kind.layerNorm()) backend.layerNorm(in, out, n.w, n.b, kind.eps());
        else backend.rmsNorm(in, out, n.w, kind.eps(), kind.onePlus());
    }

    private static int patternSize(AttentionLayout layout, int heads) {
        long n = 0;
        for (int s = 0; s < layout.sequences(); s++) n += (long) heads * layout.qLen()[s] * layout.kLen()[s];
        return Math.toIntExact(n);
    }

    /** The block outputs a forward pass reuses from block to block unless a hook is on them. */
    private enum Slot { ATTN, MID, MLP }

    /**
     * One forward call: its batch, its hooks and its buffers. An output a hook is on gets a fresh tensor, since
     * the hook may keep what it is given; every other one goes to a buffer reused from block to block. Without
     * this a 512-token Pythia-1.4B forward allocates ~300 MB that dies one block later, and the JVM answers
     * by growing its heap (docs/PERFORMANCE.md).
     */
    private final class Pass {
        final TokenBatch batch;
        final Hooks hooks;
        final HookSite site;
        final int T;
        final DeviceTensor ln, q, k, v, qkv, ctx, hidden, up, gateUp;
        private final DeviceTensor[] reused = new DeviceTensor[Slot.values().length];
        private final DeviceTensor[] resid = new DeviceTensor[2];

        Pass(TokenBatch batch, Hooks hooks) {
            this.batch = batch;
            this.hooks = hooks;
            this.site = new HookSite(backend, hooks, batch);
            this.T = batch.totalTokens();
            ln = backend.allocate(T, d);
            q = backend.allocate(T, qWidth);
            k = backend.allocate(T, kvWidth);
            v = backend.allocate(T, kvWidth);
            qkv = spec.attention().qkv() == QkvLayout.SEPARATE ? null : backend.allocate(T, qWidth + 2 * kvWidth);
            ctx = backend.allocate(T, qWidth);
            hidden = backend.allocate(T, dMlp);
            up = spec.mlp().gated() ? backend.allocate(T, dMlp) : null;
            gateUp = spec.mlp().fusedGateUp() ? backend.allocate(T, 2 * dMlp) : null;
        }

        DeviceTensor output(Slot slot, HookPoint point) {
            if (point != null && hooks.wants(point)) return backend.allocate(T, d);
            DeviceTensor t = reused[slot.ordinal()];
            return t != null ? t : (reused[slot.ordinal()] = backend.allocate(T, d));
        }

        /** The tensor for the residual after a block: fresh when hooked, else one of two buffers, never {@code current}. */
        DeviceTensor nextResid(DeviceTensor current, boolean hooked) {
            if (hooked) return backend.allocate(T, d);
            int i = current == resid[0] ? 1 : 0;
            return resid[i] != null ? resid[i] : (resid[i] = backend.allocate(T, d));
        }

        void fire(HookPoint point, DeviceTensor t, int... shape) {
            site.fire(point, t, shape);
        }

        /**
         * Fires the hooks on point with a copy of t (they may keep it) and, if they changed it, copies the change
         * into t: true when something changed. Lets the pass recompute what depends on t only when it must.
         */
        boolean fireAndCompare(HookPoint point, DeviceTensor t, int... shape) {
            if (!site.wants(point)) return false;
            DeviceTensor copy = backend.allocate(t.rows(), t.cols());
            backend.copyRows(t, 0, copy, 0, t.rows());
            site.fire(point, copy, shape);
            float[] before = backend.toHost(t, t.rows(), t.cols()).data(), after = backend.toHost(copy, t.rows(), t.cols()).data();
            if (java.util.Arrays.equals(before, after)) return false;
            backend.copyRows(copy, 0, t, 0, t.rows());
            return true;
        }

        /**
         * Fires a hook on a buffer the pass goes on using (q, k, v before rotary, z, the MLP's hidden layer): the
         * hook gets a copy, since it may keep what it is given, and its changes are copied back.
         */
        void fireBuffer(HookPoint point, DeviceTensor t, int... shape) {
            if (!site.wants(point)) return;
            DeviceTensor copy = backend.allocate(t.rows(), t.cols());
            backend.copyRows(t, 0, copy, 0, t.rows());
            site.fire(point, copy, shape);
            backend.copyRows(copy, 0, t, 0, t.rows());
        }
    }
}
