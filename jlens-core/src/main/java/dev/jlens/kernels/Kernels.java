package dev.jlens.kernels;

/**
 * The numeric work of a forward pass, behind one interface so a faster CPU kernel or a GPU backend can
 * replace the reference one without touching the architectures. Arrays are row-major; {@code rows} is the
 * packed token count of a {@link dev.jlens.tensor.TokenBatch}.
 */
public interface Kernels {

    /**
     * out[m, n] = x[m, :] · w[n, :] + bias[n] (bias may be null): every token of the batch in one product.
     * Each output is the fused multiply-add chain over k in order, starting from its bias, so it does not
     * depend on m, on the other rows, or on the thread count.
     */
    void matmul(float[] x, int m, WeightMatrix w, float[] bias, float[] out);

    /**
     * Puts a weight into this backend's multiplication layout now (at load), instead of on its first
     * {@link #matmul}. Optional: an unprepared weight is prepared on first use, so a model that never calls
     * this is still correct, only its first forward pass is slower.
     */
    default void prepare(WeightMatrix w) {
    }

    /** How many threads the kernels compute with. */
    default int threads() {
        return 1;
    }

    /** LayerNorm over the last dimension with biased variance (as PyTorch). gamma/beta may be null. */
    void layerNorm(float[] x, float[] out, int rows, int d, float[] gamma, float[] beta, float eps);

    /** RMSNorm: out = gamma * x / sqrt(mean(x²) + eps) (Llama). */
    void rmsNorm(float[] x, float[] out, int rows, int d, float[] gamma, float eps);

    /** Applies an activation in place to x[0..n). */
    void activate(float[] x, int n, Activation act);

    /**
     * Multi-head scaled dot-product attention per sequence of the batch. q is [rows, nHeads*headDim], k and v
     * are [kvRows, nKvHeads*headDim] where the keys of sequence s are its cached prefix followed by its new
     * rows (see {@link AttentionLayout}); out is [rows, nHeads*headDim].
     */
    void attention(float[] q, float[] k, float[] v, float[] out, AttentionLayout layout, int nHeads, int nKvHeads,
                   int headDim, float scale, AttentionMask mask, float[] patternOut);

    /** out += a elementwise over n values. */
    void addInPlace(float[] out, float[] a, int n);

    /** The shared CPU kernels, one thread per available core. */
    static Kernels defaults() {
        return VectorKernels.shared();
    }

    /**
     * CPU kernels on their own pool of {@code threads} daemon threads (freed when the instance becomes
     * unreachable). Results are bit-identical to {@link #defaults()} whatever the thread count.
     */
    static Kernels cpu(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        return new VectorKernels(threads);
    }
}
