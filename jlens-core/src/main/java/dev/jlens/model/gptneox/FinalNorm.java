package dev.jlens.model.gptneox;

/**
 * TransformerLens' {@code ln_final.hook_scale} and {@code hook_normalized} for a LayerNorm: the scale
 * sqrt(var + eps) with the biased variance, and (x − mean)/scale before weight and bias.
 */
final class FinalNorm {
    private FinalNorm() {
    }

    static void scaleAndNormalize(float[] x, int rows, int d, float eps, float[] scale, float[] normalized) {
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
}
