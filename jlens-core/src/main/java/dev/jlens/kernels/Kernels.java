package dev.jlens.kernels;

/**
 * The numeric work of a forward pass, behind one interface so a faster CPU kernel or a GPU backend can
 * replace the reference one without touching the architectures. Arrays are row-major; {@code rows} is the
 * packed token count of a {@link dev.jlens.tensor.TokenBatch}.
 */
public interface Kernels {

    /** out[m, n] = x[m, :] · w[n, :] + bias[n] (bias may be null): every token of the batch in one product. */
    void matmul(float[] x, int m, WeightMatrix w, float[] bias, float[] out);

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

    static Kernels defaults() {
        return VectorKernels.INSTANCE;
    }
}
