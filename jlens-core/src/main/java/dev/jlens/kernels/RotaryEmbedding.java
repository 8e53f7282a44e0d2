package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rotary position embedding in Hugging Face's rotate-half layout: within each head, the first
 * {@code rotaryDims} values are split in halves (x1, x2) and rotated as (x1·cos − x2·sin, x2·cos + x1·sin).
 * Frequencies and angles are computed in float32 exactly as HF does ({@code inv_freq = 1/base^(2i/d)},
 * angle = position × inv_freq), because the reference's rounding is what parity is measured against.
 */
public final class RotaryEmbedding {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final int rotaryDims;
    private final float[] invFreq;

    public RotaryEmbedding(int rotaryDims, double base) {
        this(rotaryDims, defaultInvFreq(rotaryDims, base));
    }

    public RotaryEmbedding(int rotaryDims, float[] invFreq) {
        this.rotaryDims = rotaryDims;
        this.invFreq = invFreq;
    }

    public static float[] defaultInvFreq(int rotaryDims, double base) {
        float[] f = new float[rotaryDims / 2];
        for (int i = 0; i < f.length; i++) {
            float exponent = (float) (2 * i) / rotaryDims;
            float pow = (float) Math.pow(base, exponent);
            f[i] = 1.0f / pow;
        }
        return f;
    }

    public int rotaryDims() {
        return rotaryDims;
    }

    public float[] invFreq() {
        return invFreq.clone();
    }

    /**
     * Rotates x [rows, nHeads*headDim] in place; row r is at position positions[r]. The pairs of a head are
     * rotated a vector at a time; each value is still x1·cos − x2·sin (two rounded products, then the
     * difference), the same float operations as a scalar loop.
     */
    public void apply(float[] x, int rows, int nHeads, int headDim, int[] positions) {
        if (rotaryDims == 0) return;
        int half = rotaryDims / 2;
        int bound = half - half % L;
        float[] cos = new float[half];
        float[] sin = new float[half];
        int lastPos = -1;
        for (int r = 0; r < rows; r++) {
            int pos = positions[r];
            if (pos != lastPos) {
                for (int i = 0; i < half; i++) {
                    float angle = (float) pos * invFreq[i];
                    cos[i] = (float) Math.cos(angle);
                    sin[i] = (float) Math.sin(angle);
                }
                lastPos = pos;
            }
            for (int h = 0; h < nHeads; h++) {
                int base = r * nHeads * headDim + h * headDim;
                for (int i = 0; i < bound; i += L) {
                    FloatVector x1 = FloatVector.fromArray(S, x, base + i);
                    FloatVector x2 = FloatVector.fromArray(S, x, base + half + i);
                    FloatVector c = FloatVector.fromArray(S, cos, i), s = FloatVector.fromArray(S, sin, i);
                    x1.mul(c).sub(x2.mul(s)).intoArray(x, base + i);
                    x2.mul(c).add(x1.mul(s)).intoArray(x, base + half + i);
                }
                for (int i = bound; i < half; i++) {
                    float x1 = x[base + i], x2 = x[base + half + i];
                    x[base + i] = x1 * cos[i] - x2 * sin[i];
                    x[base + half + i] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}
