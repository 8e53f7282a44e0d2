package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Reference CPU kernels on the Vector API. Weight-stationary matmul: each weight row is widened once and
 * multiplied against every token of the batch, so a 16-bit checkpoint is converted once per forward, not
 * once per token. Reductions run in a fixed order, so results do not depend on batch composition.
 */
final class VectorKernels implements Kernels {

    static final VectorKernels INSTANCE = new VectorKernels();
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private VectorKernels() {
    }

    static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0;
        FloatVector acc = FloatVector.zero(S);
        int bound = S.loopBound(n);
        for (; i < bound; i += S.length()) {
            acc = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc);
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }

    @Override
    public void matmul(float[] x, int m, WeightMatrix w, float[] bias, float[] out) {
        int k = w.cols(), n = w.rows();
        float[] row = new float[k];
        for (int j = 0; j < n; j++) {
            w.row(j, row);
            float b = bias == null ? 0f : bias[j];
            for (int i = 0; i < m; i++) {
                out[i * n + j] = dot(x, i * k, row, 0, k) + b;
            }
        }
    }

    @Override
    public void layerNorm(float[] x, float[] out, int rows, int d, float[] gamma, float[] beta, float eps) {
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
            float inv = (float) (1.0 / Math.sqrt(var + eps));
            float fm = (float) mean;
            for (int j = 0; j < d; j++) {
                float v = (x[base + j] - fm) * inv;
                if (gamma != null) v *= gamma[j];
                if (beta != null) v += beta[j];
                out[base + j] = v;
            }
        }
    }

    @Override
    public void rmsNorm(float[] x, float[] out, int rows, int d, float[] gamma, float eps) {
        for (int r = 0; r < rows; r++) {
            int base = r * d;
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[base + j] * x[base + j];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int j = 0; j < d; j++) {
                float v = x[base + j] * inv;
                out[base + j] = gamma == null ? v : gamma[j] * v;
            }
        }
    }

    @Override
    public void activate(float[] x, int n, Activation act) {
        for (int i = 0; i < n; i++) x[i] = act.apply(x[i]);
    }

    @Override
    public void attention(float[] q, float[] k, float[] v, float[] out, AttentionLayout layout, int nHeads, int nKvHeads,
                          int headDim, float scale, AttentionMask mask, float[] patternOut) {
        int qStride = nHeads * headDim, kStride = nKvHeads * headDim;
        int groups = nHeads / nKvHeads;
        int patternBase = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
            int past = kLen - qLen;
            float[] scores = new float[kLen];
            for (int h = 0; h < nHeads; h++) {
                int kvh = h / groups;
                for (int i = 0; i < qLen; i++) {
                    int qPos = past + i;
                    int lo = 0, hi = kLen;
                    if (mask.causal()) {
                        hi = qPos + 1;
                        if (mask.window() > 0) lo = Math.max(0, qPos - mask.window() + 1);
                    }
                    int qBase = (qOff + i) * qStride + h * headDim;
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = lo; j < hi; j++) {
                        float sc = dot(q, qBase, k, (kOff + j) * kStride + kvh * headDim, headDim) * scale;
                        scores[j] = sc;
                        if (sc > max) max = sc;
                    }
                    double sum = 0;
                    for (int j = lo; j < hi; j++) {
                        float e = (float) Math.exp(scores[j] - max);
                        scores[j] = e;
                        sum += e;
                    }
                    float inv = (float) (1.0 / sum);
                    int oBase = (qOff + i) * qStride + h * headDim;
                    for (int c = 0; c < headDim; c++) out[oBase + c] = 0f;
                    for (int j = lo; j < hi; j++) {
                        float p = scores[j] * inv;
                        int vBase = (kOff + j) * kStride + kvh * headDim;
                        for (int c = 0; c < headDim; c++) out[oBase + c] += p * v[vBase + c];
                    }
                    if (patternOut != null) {
                        int pb = patternBase + (h * qLen + i) * kLen;
                        for (int j = 0; j < kLen; j++) patternOut[pb + j] = (j >= lo && j < hi) ? scores[j] * inv : 0f;
                    }
                }
            }
            patternBase += nHeads * qLen * kLen;
        }
    }

    @Override
    public void addInPlace(float[] out, float[] a, int n) {
        int i = 0;
        int bound = S.loopBound(n);
        for (; i < bound; i += S.length()) {
            FloatVector.fromArray(S, out, i).add(FloatVector.fromArray(S, a, i)).intoArray(out, i);
        }
        for (; i < n; i++) out[i] += a[i];
    }
}
