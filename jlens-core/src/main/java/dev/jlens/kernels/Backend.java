package dev.jlens.kernels;

import dev.jlens.tensor.FloatTensor;

/**
 * Every numeric operation of a forward pass, on tensors the backend owns ({@link DeviceTensor}). The model
 * code above it (the causal runner, BERT) holds no float[] of its own: an unhooked forward pass never leaves
 * the backend, and a hook sees host memory only through {@link #toHost} / {@link #fromHost}. The CPU backend
 * ({@link #cpu}) is the Vector API code; the reference backend ({@link #reference}) is plain scalar loops
 * that every other backend is tested against, op by op and on whole models.
 *
 * <p>Shapes: activations are {@code [rows, cols]} with the tokens of every sequence of a batch packed one
 * after another ({@link dev.jlens.tensor.TokenBatch}). Weights are {@link WeightMatrix} in {@code nn.Linear}
 * layout {@code [out, in]}; norm weights and biases are float[] (a device backend uploads each once, keyed by
 * identity). Operations on one backend instance are serialised; results do not depend on the thread count or
 * on which other sequences share the batch.
 */
public interface Backend {

    /** A short name for logs and reports ("cpu", "reference", "cuda"). */
    String name();

    /** How many threads (CPU) the operations compute with. */
    default int threads() {
        return 1;
    }

    // ---- memory

    /** A new zero-filled tensor [rows, cols]. */
    DeviceTensor allocate(int rows, int cols);

    /** A tensor holding a copy of host values (or, on the CPU, the array itself: later writes are shared). */
    DeviceTensor upload(float[] host, int rows, int cols);

    /**
     * The tensor's values as a host tensor of the given shape (same number of values). The CPU backends
     * return a view of the same memory, so a hook that writes into it changes the activation; other backends
     * copy, and {@link #fromHost} writes the hook's changes back.
     */
    FloatTensor toHost(DeviceTensor t, int... shape);

    /** Writes host values (a hook's result) into t, unless they are already t's own memory. */
    void fromHost(FloatTensor host, DeviceTensor t);

    /** dst[dstRow ..] = src[srcRow ..] for {@code rows} rows of equal width. */
    void copyRows(DeviceTensor src, int srcRow, DeviceTensor dst, int dstRow, int rows);

    /**
     * Copies columns: for every row r, dst[r, dstCol + j] = src[r, srcCol + j] for j &lt; width (splitting a
     * fused q|k|v projection, gathering a head).
     */
    void copyColumns(DeviceTensor src, int srcCol, DeviceTensor dst, int dstCol, int width);

    // ---- weights

    /**
     * Puts a weight into this backend's multiplication layout now (at load), instead of on its first
     * {@link #matmul}. Optional: an unprepared weight is prepared on first use.
     */
    default void prepare(WeightMatrix w) {
    }

    /**
     * out[m, n] = x[m, :] · w[n, :] + bias[n] (bias may be null), m = x.rows(): every token of the batch in
     * one product. Each output is the fused multiply-add chain over k in order, starting from its bias, so it
     * does not depend on m, on the other rows, or on the thread count.
     */
    void matmul(DeviceTensor x, WeightMatrix w, float[] bias, DeviceTensor out);

    /**
     * Several products of one input, outs[i] = x · ws[i] + biases[i] (biases[i] may be null), each output with
     * the bits {@link #matmul} gives it: q, k and v from the attention input, gate and up from the MLP's. A backend
     * may do them in one pass (the CPU packs the input once and its threads share one queue of panels); this
     * default runs them one after another.
     *
     * <pre>{@code
     * backend.matmuls(ln, new WeightMatrix[]{wq, wk, wv}, new float[][]{bq, bk, bv}, new DeviceTensor[]{q, k, v});
     * }</pre>
     */
    default void matmuls(DeviceTensor x, WeightMatrix[] ws, float[][] biases, DeviceTensor[] outs) {
        if (ws.length != biases.length || ws.length != outs.length) {
            throw new IllegalArgumentException("matmuls: " + ws.length + " weights, " + biases.length + " biases, "
                    + outs.length + " outputs; expected as many of each");
        }
        for (int i = 0; i < ws.length; i++) matmul(x, ws[i], biases[i], outs[i]);
    }

    /** out[t, :] = table[ids[t], :] × scale (scale 1: a plain lookup): token or position embeddings. */
    void gather(WeightMatrix table, int[] ids, float scale, DeviceTensor out);

    // ---- row-wise

    /** LayerNorm over each row with the biased variance (as PyTorch); gamma/beta may be null. */
    void layerNorm(DeviceTensor x, DeviceTensor out, float[] gamma, float[] beta, float eps);

    /**
     * RMSNorm: out = x / sqrt(mean(x²) + eps) × γ, or × (1 + γ) with {@code onePlus} (Gemma). x and out may be
     * the same tensor.
     */
    void rmsNorm(DeviceTensor x, DeviceTensor out, float[] gamma, float eps, boolean onePlus);

    /**
     * TransformerLens' ln_final.hook_scale and hook_normalized of a final norm, in double: scale [rows, 1]
     * and the normalised input before weight and bias [rows, cols].
     */
    void normStats(boolean layerNorm, DeviceTensor x, float eps, DeviceTensor scale, DeviceTensor normalized);

    /** Rotates every head of x [rows, nHeads*headDim] in place; row r is at position positions[r]. */
    void rotary(DeviceTensor x, int nHeads, int headDim, int[] positions, RotaryEmbedding rope);

    /**
     * Scaled dot-product attention per sequence of the batch. q is [rows, nHeads*headDim]; k and v are
     * [kvRows, nKvHeads*headDim], the keys of sequence s being its cached prefix followed by its new rows
     * ({@link AttentionLayout}); out is [rows, nHeads*headDim]. {@code pattern}, when not null, receives the
     * softmax per sequence as [heads, new tokens, all tokens] blocks one after another (0 where masked);
     * {@code scores}, when not null, receives the softmax input in the same layout: q·k × scale, soft-capped,
     * and {@code -inf} where masked (TransformerLens' hook_attn_scores). Neither costs anything when null.
     */
    void attention(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, AttentionLayout layout,
                   AttentionSpec spec, DeviceTensor pattern, DeviceTensor scores);

    /** As above without the scores. */
    default void attention(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor out, AttentionLayout layout,
                           AttentionSpec spec, DeviceTensor pattern) {
        attention(q, k, v, out, layout, spec, pattern, null);
    }

    /**
     * pattern ← softmax of each row of scores (laid out as {@link #attention}'s outputs; {@code -inf} entries
     * get 0): the pattern of attention scores a hook has changed.
     */
    void softmaxScores(DeviceTensor scores, DeviceTensor pattern, AttentionLayout layout, AttentionSpec spec);

    /**
     * out ← pattern · v per head and sequence (pattern laid out as {@link #attention}'s, v as its values):
     * the attention output for a pattern a hook has changed.
     */
    void mixValues(DeviceTensor pattern, DeviceTensor v, DeviceTensor out, AttentionLayout layout, AttentionSpec spec);

    // ---- elementwise

    /** x ← act(x). */
    void activate(DeviceTensor x, Activation act);

    /** gate ← act(gate) × up: the gated MLP's hidden layer (SwiGLU, GeGLU). */
    void gatedActivate(DeviceTensor gate, DeviceTensor up, Activation act);

    /** out ← out + a. */
    void add(DeviceTensor out, DeviceTensor a);

    /** x ← cap·tanh(x/cap): Gemma 2's final logit soft-capping. */
    void softcap(DeviceTensor x, float cap);

    // ---- the backends

    /** The shared CPU backend, one thread per available core. */
    static Backend defaults() {
        return CpuBackend.shared();
    }

    /**
     * A CPU backend on its own pool of {@code threads} daemon threads (freed when the instance becomes
     * unreachable). Results are bit-identical to {@link #defaults()} whatever the thread count.
     */
    static Backend cpu(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        return new CpuBackend(threads);
    }

    /** Plain scalar loops, one thread: slow, obviously right, and what other backends are tested against. */
    static Backend reference() {
        return ReferenceBackend.INSTANCE;
    }
}
