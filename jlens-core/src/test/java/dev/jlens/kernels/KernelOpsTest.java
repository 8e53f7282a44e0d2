package dev.jlens.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vectorised row-wise kernels against straightforward double-precision references. */
class KernelOpsTest {

    static final Backend ONE = Backend.cpu(1);
    static final Backend THREE = Backend.cpu(3);

    /** Dense points in [-12, 12], extremes, and the branch points of the erf and exp approximations. */
    static float[] samples() {
        int dense = 480_001;
        float[] extra = {0f, -0f, 1f, -1f, 0.99999994f, 1.0000001f, 4f, -4f, 3.9999998f, 30f, -30f, 1e-30f, -1e-30f,
                1e-8f, 87f, -87f, 100f, -100f, Float.MIN_VALUE};
        float[] x = new float[dense + extra.length];
        for (int i = 0; i < dense; i++) x[i] = -12f + 24f * i / (dense - 1);
        System.arraycopy(extra, 0, x, dense, extra.length);
        return x;
    }

    @Test
    void expIsWithinTwoUlps() {
        float[] x = samples();
        double worst = 0;
        for (int i = 0; i < x.length; i++) {
            float xi = Math.max(-87f, Math.min(88f, x[i] * 7.3f));
            float got = VectorMath.exp(jdk.incubator.vector.FloatVector.broadcast(VectorMath.S, xi)).lane(0);
            double want = Math.exp(xi);
            worst = Math.max(worst, Math.abs(got - want) / Math.ulp((float) want));
        }
        assertTrue(worst <= 2.0, "exp error " + worst + " ulp");
    }

    @ParameterizedTest
    @EnumSource(Activation.class)
    void activationsMatchTheDoubleReference(Activation act) {
        float[] x = samples();
        float[] got = x.clone();
        THREE.activate(h(got, 1, got.length), act);
        double worst = 0;
        float worstAt = 0;
        for (int i = 0; i < x.length; i++) {
            double want = act.apply(x[i]);
            // Absolute error over max(1, |x|): about two float ulps of the result (the reference is rounded to float too).
            double err = Math.abs(got[i] - want) / Math.max(1.0, Math.abs(x[i]));
            if (err > worst) {
                worst = err;
                worstAt = x[i];
            }
        }
        double bound = switch (act) {
            case RELU -> 0;
            case GELU, SILU, GELU_TANH, GELU_FAST -> 2.5e-7;
        };
        assertTrue(worst <= bound, act + ": error " + worst + " at x=" + worstAt + " exceeds " + bound);
        float[] one = x.clone();
        ONE.activate(h(one, 1, one.length), act);
        GemmTest.assertBitsEqual(one, got, act + " with 1 and 3 threads");
    }

    @Test
    void layerNormMatchesTheDoubleReference() {
        Random r = new Random(3);
        int rows = 37, d = 2048 + 5;
        float[] x = new float[rows * d];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * 3 + (i % d == 7 ? 400 : 0.5));
        float[] gamma = GemmTest.randomArray(r, d), beta = GemmTest.randomArray(r, d);
        float[] got = new float[x.length];
        THREE.layerNorm(h(x, rows, d), h(got, rows, d), gamma, beta, 1e-5f);
        double worst = 0;
        for (int row = 0; row < rows; row++) {
            double mean = 0, var = 0;
            for (int j = 0; j < d; j++) mean += x[row * d + j];
            mean /= d;
            for (int j = 0; j < d; j++) var += (x[row * d + j] - mean) * (x[row * d + j] - mean);
            var /= d;
            for (int j = 0; j < d; j++) {
                double want = (x[row * d + j] - mean) / Math.sqrt(var + 1e-5) * gamma[j] + beta[j];
                worst = Math.max(worst, Math.abs(want - got[row * d + j]) / Math.max(1, Math.abs(want)));
            }
        }
        assertTrue(worst < 2e-6, "layer norm error " + worst);
        float[] one = new float[x.length];
        ONE.layerNorm(h(x, rows, d), h(one, rows, d), gamma, beta, 1e-5f);
        GemmTest.assertBitsEqual(one, got, "layer norm with 1 and 3 threads");
    }

    @Test
    void rmsNormMatchesTheDoubleReference() {
        Random r = new Random(4);
        int rows = 9, d = 100;
        float[] x = GemmTest.randomArray(r, rows * d);
        float[] gamma = GemmTest.randomArray(r, d);
        float[] got = new float[x.length];
        THREE.rmsNorm(h(x, rows, d), h(got, rows, d), gamma, 1e-6f, false);
        for (int row = 0; row < rows; row++) {
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[row * d + j] * x[row * d + j];
            double inv = 1 / Math.sqrt(ss / d + 1e-6);
            for (int j = 0; j < d; j++) {
                double want = gamma[j] * x[row * d + j] * inv;
                assertEquals(want, got[row * d + j], 1e-6 * Math.max(1, Math.abs(want)));
            }
        }
    }

    /** Scalar attention in double, the textbook formula. */
    static float[] referenceAttention(float[] q, float[] k, float[] v, AttentionLayout layout, int nHeads, int nKv,
                                      int hd, float scale, Mask mask, float[] pattern) {
        float[] out = new float[q.length];
        int qs = nHeads * hd, ks = nKv * hd, pb = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
            for (int h = 0; h < nHeads; h++) {
                int kvh = h / (nHeads / nKv);
                for (int i = 0; i < qLen; i++) {
                    int qPos = kLen - qLen + i;
                    int lo = 0, hi = kLen;
                    if (mask.causal()) {
                        hi = qPos + 1;
                        if (mask.window() > 0) lo = Math.max(0, qPos - mask.window() + 1);
                    }
                    double[] sc = new double[kLen];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = lo; j < hi; j++) {
                        double dot = 0;
                        for (int c = 0; c < hd; c++) dot += (double) q[(qOff + i) * qs + h * hd + c] * k[(kOff + j) * ks + kvh * hd + c];
                        sc[j] = dot * scale;
                        max = Math.max(max, sc[j]);
                    }
                    double sum = 0;
                    for (int j = lo; j < hi; j++) sum += sc[j] = Math.exp(sc[j] - max);
                    for (int c = 0; c < hd; c++) {
                        double acc = 0;
                        for (int j = lo; j < hi; j++) acc += sc[j] / sum * v[(kOff + j) * ks + kvh * hd + c];
                        out[(qOff + i) * qs + h * hd + c] = (float) acc;
                    }
                    for (int j = 0; j < kLen; j++) {
                        pattern[pb + (h * qLen + i) * kLen + j] = j >= lo && j < hi ? (float) (sc[j] / sum) : 0f;
                    }
                }
            }
            pb += nHeads * qLen * kLen;
        }
        return out;
    }

    @Test
    void attentionMatchesTheReferenceForEveryLayout() {
        Random r = new Random(5);
        int[][] configs = {{4, 4, 16}, {8, 2, 8}, {3, 1, 40}, {2, 2, 128}};
        Mask[] masks = {new Mask(true, 0), new Mask(false, 0), new Mask(true, 3)};
        for (int[] cfg : configs) {
            int nHeads = cfg[0], nKv = cfg[1], hd = cfg[2];
            for (Mask mask : masks) {
                // three sequences; the second has a cached prefix of 5 keys
                int[] qLen = {7, 3, 19}, past = {0, 5, 0};
                int[] qOff = new int[3], kOff = new int[3], kLen = new int[3];
                int rows = 0, kRows = 0, patternSize = 0;
                for (int s = 0; s < 3; s++) {
                    qOff[s] = rows;
                    kOff[s] = kRows;
                    kLen[s] = past[s] + qLen[s];
                    rows += qLen[s];
                    kRows += kLen[s];
                    patternSize += nHeads * qLen[s] * kLen[s];
                }
                AttentionLayout layout = new AttentionLayout(qOff, qLen, kOff, kLen);
                float[] q = GemmTest.randomArray(r, rows * nHeads * hd);
                float[] k = GemmTest.randomArray(r, kRows * nKv * hd);
                float[] v = GemmTest.randomArray(r, kRows * nKv * hd);
                float scale = (float) (1 / Math.sqrt(hd));
                float[] wantPattern = new float[patternSize];
                float[] want = referenceAttention(q, k, v, layout, nHeads, nKv, hd, scale, mask, wantPattern);
                float[] got3 = new float[want.length], got1 = new float[want.length];
                float[] pattern3 = new float[patternSize], pattern1 = new float[patternSize];
                attend(THREE, q, k, v, got3, layout, nHeads, nKv, hd, scale, mask, pattern3);
                attend(ONE, q, k, v, got1, layout, nHeads, nKv, hd, scale, mask, pattern1);
                String what = nHeads + "/" + nKv + " heads of " + hd + ", " + mask;
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got3[i], 2e-6, what + " output " + i);
                for (int i = 0; i < patternSize; i++) assertEquals(wantPattern[i], pattern3[i], 1e-6, what + " pattern " + i);
                GemmTest.assertBitsEqual(got1, got3, what + " with 1 and 3 threads");
                GemmTest.assertBitsEqual(pattern1, pattern3, what + " pattern with 1 and 3 threads");
            }
        }
    }

    /**
     * The optional scores output (softmax input, -inf where masked) agrees between the CPU and reference
     * backends, and the ops that rebuild attention from hooked maps reproduce the fused result: softmax of the
     * scores is the pattern, pattern · v is the output.
     */
    @Test
    void scoresAndRebuiltAttentionMatchTheFusedKernel() {
        Random r = new Random(11);
        int nHeads = 4, nKv = 2, hd = 8;
        int[] qLen = {6, 2}, kLen = {6, 5}, qOff = {0, 6}, kOff = {0, 6};
        AttentionLayout layout = new AttentionLayout(qOff, qLen, kOff, kLen);
        int size = nHeads * (6 * 6 + 2 * 5);
        float[] q = GemmTest.randomArray(r, 8 * nHeads * hd), k = GemmTest.randomArray(r, 11 * nKv * hd),
                v = GemmTest.randomArray(r, 11 * nKv * hd);
        for (Backend b : new Backend[]{THREE, Backend.reference()}) {
            AttentionSpec spec = new AttentionSpec(nHeads, nKv, hd, 0.3f, true, 3, 2f);
            float[] out = new float[8 * nHeads * hd], pattern = new float[size], scores = new float[size];
            b.attention(h(q, 8, nHeads * hd), h(k, 11, nKv * hd), h(v, 11, nKv * hd), h(out, 8, nHeads * hd), layout, spec,
                    h(pattern, 1, size), h(scores, 1, size));
            float[] refOut = new float[out.length], refPattern = new float[size], refScores = new float[size];
            Backend.reference().attention(h(q, 8, nHeads * hd), h(k, 11, nKv * hd), h(v, 11, nKv * hd),
                    h(refOut, 8, nHeads * hd), layout, spec, h(refPattern, 1, size), h(refScores, 1, size));
            int masked = 0;
            for (int i = 0; i < size; i++) {
                if (refScores[i] == Float.NEGATIVE_INFINITY) {
                    masked++;
                    assertEquals(Float.NEGATIVE_INFINITY, scores[i], b.name() + " masked score " + i);
                    assertEquals(0f, pattern[i], b.name() + " masked pattern " + i);
                } else {
                    assertEquals(refScores[i], scores[i], 1e-6, b.name() + " score " + i);
                    assertTrue(Math.abs(scores[i]) <= 2f, "soft-capped to 2: " + scores[i]);
                }
            }
            assertTrue(masked > 0, "the causal window masks some keys");
            float[] rebuilt = new float[size], mixed = new float[out.length];
            b.softmaxScores(h(scores, 1, size), h(rebuilt, 1, size), layout, spec);
            for (int i = 0; i < size; i++) assertEquals(pattern[i], rebuilt[i], 1e-6, b.name() + " softmax(scores) " + i);
            b.mixValues(h(pattern, 1, size), h(v, 11, nKv * hd), h(mixed, 8, nHeads * hd), layout, spec);
            for (int i = 0; i < out.length; i++) assertEquals(out[i], mixed[i], 1e-6, b.name() + " pattern · v " + i);
        }
    }

    @Test
    void rotaryMatchesTheScalarFormula() {
        Random r = new Random(6);
        for (int headDim : new int[]{16, 64, 128}) {
            for (double pct : new double[]{0.25, 1.0}) {
                int rot = (int) (headDim * pct);
                RotaryEmbedding rope = RotaryEmbedding.halfSplit(rot, 10000);
                int rows = 5, nHeads = 3;
                float[] x = GemmTest.randomArray(r, rows * nHeads * headDim);
                int[] pos = {0, 1, 2, 2, 40};
                float[] got = x.clone();
                THREE.rotary(h(got, rows, nHeads * headDim), nHeads, headDim, pos, rope);
                float[] inv = rope.invFreq();
                int half = rot / 2;
                for (int row = 0; row < rows; row++) {
                    for (int h = 0; h < nHeads; h++) {
                        int base = (row * nHeads + h) * headDim;
                        for (int i = 0; i < half; i++) {
                            float angle = (float) pos[row] * inv[i];
                            float c = (float) Math.cos(angle), s = (float) Math.sin(angle);
                            float x1 = x[base + i], x2 = x[base + half + i];
                            assertEquals(x1 * c - x2 * s, got[base + i], "rotated first half");
                            assertEquals(x2 * c + x1 * s, got[base + half + i], "rotated second half");
                        }
                        for (int i = rot; i < headDim; i++) assertEquals(x[base + i], got[base + i], "pass-through dims");
                    }
                }
            }
        }
    }

    /** A heap array as a CPU backend tensor (the CPU backends share its memory). */
    static DeviceTensor h(float[] a, int rows, int cols) {
        return new HeapTensor(a, rows, cols);
    }

    /** Which keys a query may see, as the tests enumerate it. */
    record Mask(boolean causal, int window) {
    }

    static void attend(Backend b, float[] q, float[] k, float[] v, float[] out, AttentionLayout layout, int nHeads,
                       int nKv, int hd, float scale, Mask mask, float[] pattern) {
        AttentionSpec spec = new AttentionSpec(nHeads, nKv, hd, scale, mask.causal(), mask.window(), 0f);
        int w = nHeads * hd, kw = nKv * hd;
        b.attention(h(q, q.length / w, w), h(k, k.length / kw, kw), h(v, v.length / kw, kw), h(out, out.length / w, w),
                layout, spec, pattern == null ? null : h(pattern, 1, pattern.length));
    }
}
