package dev.jlens.kernels;

/**
 * TransformerLens' {@code ln_final.hook_scale} and {@code ln_final.hook_normalized}: the scale a final norm
 * divides by and its normalised input before weight and bias. Computed in double so that the hooks are at
 * least as exact as the float32 reference they are compared with.
 */
public final class NormStats {
    private NormStats() {
    }

    /** LayerNorm: scale = sqrt(var + eps) with the biased variance, normalized = (x − mean) / scale. */
    public static void layerNorm(float[] x, int rows, int d, float eps, float[] scale, float[] normalized) {
        for (int r = 0; r < rows; r++) {
            int base = r * d;
            double mean = 0;
            for (int j = 0; j < d; j++) mean += x[base + j];
            mean /= d;
            double var = 0;
            for (int j = 0; j < d; j++) {
                double c = x[base + j] - mean;
                var += c * c;
            }
            var /= d;
            double s = Math.sqrt(var + eps);
            scale[r] = (float) s;
            for (int j = 0; j < d; j++) normalized[base + j] = (float) ((x[base + j] - mean) / s);
        }
    }

    /** RMSNorm: scale = sqrt(mean(x²) + eps), normalized = x / scale. */
    public static void rmsNorm(float[] x, int rows, int d, float eps, float[] scale, float[] normalized) {
        for (int r = 0; r < rows; r++) {
            int base = r * d;
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[base + j] * x[base + j];
            double s = Math.sqrt(ss / d + eps);
            scale[r] = (float) s;
            for (int j = 0; j < d; j++) normalized[base + j] = (float) (x[base + j] / s);
        }
    }
}
