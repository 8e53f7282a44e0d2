package dev.jlens.hooks;

import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Activations collected by name over one or more forward passes, in prompt order. With a reducing pooling
 * each hook holds one row per prompt ({@link #pooled}); with {@link Pooling#ALL} one [len, d] tensor per
 * prompt ({@link #perPrompt}). Use {@link #hook()} as the {@link Hook} of a forward pass; it only reads.
 */
public final class ActivationCache {

    private final Pooling pooling;
    private final Map<String, List<FloatTensor>> perPrompt = new LinkedHashMap<>();
    private final Map<String, List<float[]>> pooledRows = new LinkedHashMap<>();
    private final Map<String, Integer> widths = new LinkedHashMap<>();

    private final java.util.function.UnaryOperator<FloatTensor> view;
    private final int[] postInstruction;
    /** With {@link #overSpans}: the i-th prompt is pooled over its tokens [spanFrom[i], spanTo[i]). */
    private final int[] spanFrom;
    private final int[] spanTo;

    public ActivationCache(Pooling pooling) {
        this(pooling, java.util.function.UnaryOperator.identity());
    }

    /**
     * A cache for chat prompts: {@code postInstruction[i]} is the number of post-instruction tokens of the
     * i-th prompt this cache sees (needed by {@link Pooling#POST_INSTRUCTION}; prompts arrive in order).
     */
    public ActivationCache(Pooling pooling, int[] postInstruction) {
        this(pooling, java.util.function.UnaryOperator.identity(), postInstruction);
    }

    /**
     * A cache that stores {@code view(activation)} instead of the activation itself, e.g. TransformerLens'
     * per-token centring; the forward pass still continues with the original.
     */
    public ActivationCache(Pooling pooling, java.util.function.UnaryOperator<FloatTensor> view) {
        this(pooling, view, null);
    }

    /** Both of the above. */
    public ActivationCache(Pooling pooling, java.util.function.UnaryOperator<FloatTensor> view, int[] postInstruction) {
        if (pooling.needsPostInstruction() && postInstruction == null) {
            throw new dev.jlens.JlensException("--pool " + pooling.cliName() + " needs chat prompts (--chat): only a "
                    + "chat template says which tokens come after the user's message");
        }
        this.pooling = pooling;
        this.view = view;
        this.postInstruction = postInstruction == null ? null : postInstruction.clone();
        this.spanFrom = null;
        this.spanTo = null;
    }

    private ActivationCache(Pooling pooling, int[] spanFrom, int[] spanTo) {
        if (pooling == Pooling.ALL || pooling.needsPostInstruction()) {
            throw new IllegalArgumentException("pooling over token spans needs mean, last or mean-skip-first, not " + pooling.cliName());
        }
        if (spanFrom.length != spanTo.length) throw new IllegalArgumentException("span bounds of different lengths");
        this.pooling = pooling;
        this.view = java.util.function.UnaryOperator.identity();
        this.postInstruction = null;
        this.spanFrom = spanFrom.clone();
        this.spanTo = spanTo.clone();
    }

    /**
     * A cache that pools the i-th prompt it sees over its tokens [from[i], to[i]) only (a conversation's last user
     * turn, a response), with mean, last or mean-skip-first.
     */
    public static ActivationCache overSpans(Pooling pooling, int[] from, int[] to) {
        return new ActivationCache(pooling, from, to);
    }

    public Pooling pooling() {
        return pooling;
    }

    public Hook hook() {
        return this::record;
    }

    private synchronized FloatTensor record(HookPoint point, FloatTensor original, TokenBatch batch) {
        if (point.kind().isAttentionMap()) {
            recordAttentionMap(point, original, batch);
            return original;
        }
        // Per-head hooks arrive as [T, heads, d_head] (or [T, heads, d_model]): views and pooling see each token's
        // values as one row, and --pool all keeps the trailing dimensions.
        int[] shape = original.shape();
        int tokens = shape[0];
        int width = tokens == 0 ? 0 : original.data().length / tokens;
        FloatTensor value = view.apply(shape.length == 2 ? original : new FloatTensor(original.data(), tokens, width));
        int d = value.cols();
        widths.put(point.name(), d);
        float[] data = value.data();
        for (int s = 0; s < batch.size(); s++) {
            int off = batch.offsets()[s], len = batch.lengths()[s];
            if (pooling == Pooling.ALL) {
                FloatTensor rows = value.rowSlice(off, off + len);
                if (shape.length != 2) {
                    int[] perPrompt = shape.clone();
                    perPrompt[0] = len;
                    rows = new FloatTensor(rows.data(), perPrompt);
                }
                perPrompt.computeIfAbsent(point.name(), k -> new ArrayList<>()).add(rows);
            } else {
                float[] row = new float[d];
                List<float[]> rows = pooledRows.computeIfAbsent(point.name(), k -> new ArrayList<>());
                int prompt = rows.size();
                if (postInstruction != null && prompt >= postInstruction.length) {
                    throw new IllegalStateException("more prompts than post-instruction counts (" + postInstruction.length + ")");
                }
                if (spanFrom != null) {
                    if (prompt >= spanFrom.length) throw new IllegalStateException("more prompts than token spans (" + spanFrom.length + ")");
                    if (spanTo[prompt] > len || spanFrom[prompt] < 0 || spanFrom[prompt] >= spanTo[prompt]) {
                        throw new IllegalStateException("token span [" + spanFrom[prompt] + ", " + spanTo[prompt] + ") of a "
                                + len + "-token prompt");
                    }
                    pooling.pool(data, d, off + spanFrom[prompt], spanTo[prompt] - spanFrom[prompt], row);
                } else {
                    pooling.pool(data, d, off, len, postInstruction == null ? 0 : postInstruction[prompt], row);
                }
                rows.add(row);
            }
        }
        return original;
    }

    /**
     * Attention scores and patterns arrive as one block [heads, q, k] per sequence, concatenated; they are kept
     * per prompt with {@link Pooling#ALL} (a mean over tokens means nothing for them) and ignored otherwise.
     */
    private void recordAttentionMap(HookPoint point, FloatTensor value, TokenBatch batch) {
        if (pooling != Pooling.ALL) return;
        long squares = 0;
        for (int len : batch.lengths()) squares += (long) len * len;
        int heads = (int) (value.data().length / squares);
        int at = 0;
        for (int s = 0; s < batch.size(); s++) {
            int len = batch.lengths()[s], n = heads * len * len;
            float[] block = java.util.Arrays.copyOfRange(value.data(), at, at + n);
            perPrompt.computeIfAbsent(point.name(), k -> new ArrayList<>()).add(new FloatTensor(block, heads, len, len));
            at += n;
        }
    }

    /** Hook names in the order they were first recorded (forward order). */
    public List<String> names() {
        List<String> n = new ArrayList<>(pooling == Pooling.ALL ? perPrompt.keySet() : pooledRows.keySet());
        return Collections.unmodifiableList(n);
    }

    public boolean has(String name) {
        return perPrompt.containsKey(name) || pooledRows.containsKey(name);
    }

    /** [n_prompts, d] for a reducing pooling (per-head hooks: d = heads × d_head, head-major). */
    public FloatTensor pooled(String name) {
        List<float[]> rows = pooledRows.get(name);
        if (rows == null) throw new IllegalArgumentException("no pooled activations for " + name);
        int d = widths.get(name);
        float[] out = new float[rows.size() * d];
        for (int i = 0; i < rows.size(); i++) System.arraycopy(rows.get(i), 0, out, i * d, d);
        return new FloatTensor(out, rows.size(), d);
    }

    /** Pooled rows as double[n][d], the form the statistics code takes. */
    public double[][] pooledAsDouble(String name) {
        List<float[]> rows = pooledRows.get(name);
        if (rows == null) throw new IllegalArgumentException("no pooled activations for " + name);
        double[][] out = new double[rows.size()][];
        for (int i = 0; i < out.length; i++) {
            float[] r = rows.get(i);
            double[] x = new double[r.length];
            for (int j = 0; j < r.length; j++) x[j] = r[j];
            out[i] = x;
        }
        return out;
    }

    /**
     * One tensor per prompt for {@link Pooling#ALL}: [len_i, d], per-head hooks [len_i, heads, d_head] (hook_result
     * [len_i, heads, d_model]), attention scores and patterns [heads, len_i, len_i].
     */
    public List<FloatTensor> perPrompt(String name) {
        List<FloatTensor> l = perPrompt.get(name);
        if (l == null) throw new IllegalArgumentException("no per-token activations for " + name);
        return Collections.unmodifiableList(l);
    }

    /** Stores per-prompt tensors computed outside a hook (the logits). */
    public synchronized void putPerPrompt(String name, List<FloatTensor> tensors) {
        perPrompt.put(name, new ArrayList<>(tensors));
    }

    public int promptCount(String name) {
        return pooling == Pooling.ALL ? perPrompt.get(name).size() : pooledRows.get(name).size();
    }
}
