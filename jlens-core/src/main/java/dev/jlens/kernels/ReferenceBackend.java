package dev.jlens.kernels;

/**
 * Every {@link Backend} operation as the plain loop a reader would write from the formula: no Vector API,
 * no threads, no blocking. It is the yardstick the other backends are tested against (op by op on random
 * shapes, and whole models against the Hugging Face goldens), the way Jlama checks each operation provider
 * against a naive one. Products are the fused multiply-add chain over k from the bias, as the CPU GEMM
 * promises, so those agree bit for bit; norms, softmax and activations agree to float rounding.
 */
final class ReferenceBackend extends HeapBackend {

    static final ReferenceBackend INSTANCE = new ReferenceBackend();

    private ReferenceBackend() {
    }

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public void matmul(DeviceTensor xt, WeightMatrix w, float[] bias, DeviceTensor outT) {
        float[] x = HeapTensor.of(xt), out = HeapTensor.of(outT);
        int m = xt.rows(), n = w.rows(), k = w.cols();
        if (xt.cols() != k || outT.rows() != m || outT.cols() != n) {
            throw new IllegalArgumentException("matmul " + w.name() + " [" + n + ", " + k + "]: input " + xt + ", output " + outT);
        }
        float[] row = new float[k];
        for (int j = 0; j < n; j++) {
            w.row(j, row);
            for (int i = 0; i < m; i++) {
                float acc = bias == null ? 0f : bias[j];
                for (int c = 0; c < k; c++) acc = Math.fma(x[i * k + c], row[c], acc);
                out[i * n + j] = acc;
            }
        }
    }

    @Override
    public void layerNorm(DeviceTensor xt, DeviceTensor outT, float[] gamma, float[] beta, float eps) {
        float[] x = HeapTensor.of(xt), out = HeapTensor.of(outT);
        int d = xt.cols();
        for (int r = 0; r < xt.rows(); r++) {
            int base = r * d;
            double sum = 0;
            for (int j = 0; j < d; j++) sum += x[base + j];
            float mean = (float) (sum / d);
            double var = 0;
            for (int j = 0; j < d; j++) {
                double c = x[base + j] - mean;
                var += c * c;
            }
            float inv = (float) (1.0 / Math.sqrt(var / d + eps));
            for (int j = 0; j < d; j++) {
                float v = (x[base + j] - mean) * inv;
                if (gamma != null) v *= gamma[j];
                if (beta != null) v += beta[j];
                out[base + j] = v;
            }
        }
    }

    @Override
    public void rmsNorm(DeviceTensor xt, DeviceTensor outT, float[] gamma, float eps, boolean onePlus) {
        float[] x = HeapTensor.of(xt), out = HeapTensor.of(outT);
        int d = xt.cols();
        for (int r = 0; r < xt.rows(); r++) {
            int base = r * d;
            double ss = 0;
            for (int j = 0; j < d; j++) ss += (double) x[base + j] * x[base + j];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int j = 0; j < d; j++) {
                float v = x[base + j] * inv;
                out[base + j] = gamma == null ? v : (onePlus ? 1f + gamma[j] : gamma[j]) * v;
            }
        }
    }

    @Override
    public void rotary(DeviceTensor xt, int nHeads, int headDim, int[] positions, RotaryEmbedding rope) {
        float[] x = HeapTensor.of(xt);
        int half = rope.rotaryDims() / 2;
        float[] cos = new float[half], sin = new float[half];
        for (int r = 0; r < xt.rows(); r++) {
            rope.angles(positions[r], cos, sin);
            for (int h = 0; h < nHeads; h++) {
                rope.rotatePairs(x, r * nHeads * headDim + h * headDim, 0, cos, sin);
            }
        }
    }

    @Override
    public void attention(DeviceTensor qt, DeviceTensor kt, DeviceTensor vt, DeviceTensor outT, AttentionLayout layout,
                          AttentionSpec spec, DeviceTensor patternT, DeviceTensor scoresT) {
        float[] q = HeapTensor.of(qt), k = HeapTensor.of(kt), v = HeapTensor.of(vt), out = HeapTensor.of(outT);
        float[] pattern = patternT == null ? null : HeapTensor.of(patternT);
        float[] scores = scoresT == null ? null : HeapTensor.of(scoresT);
        int nHeads = spec.nHeads(), hd = spec.headDim(), group = nHeads / spec.nKvHeads();
        int qStride = spec.qWidth(), kStride = spec.kvWidth();
        int patternAt = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
            int past = kLen - qLen;
            for (int h = 0; h < nHeads; h++) {
                int kvh = h / group;
                for (int i = 0; i < qLen; i++) {
                    int lo = spec.firstVisible(past + i), hi = spec.endVisible(past + i, kLen);
                    float[] p = new float[kLen];
                    float max = Float.NEGATIVE_INFINITY;
                    for (int j = lo; j < hi; j++) {
                        float dot = 0f;
                        for (int c = 0; c < hd; c++) {
                            dot = Math.fma(q[(qOff + i) * qStride + h * hd + c], k[(kOff + j) * kStride + kvh * hd + c], dot);
                        }
                        p[j] = spec.cap(dot * spec.scale());
                        max = Math.max(max, p[j]);
                    }
                    if (scores != null) {
                        int at = patternAt + (h * qLen + i) * kLen;
                        for (int j = 0; j < kLen; j++) scores[at + j] = j >= lo && j < hi ? p[j] : Float.NEGATIVE_INFINITY;
                    }
                    double sum = 0;
                    for (int j = lo; j < hi; j++) {
                        p[j] = (float) Math.exp(p[j] - max);
                        sum += p[j];
                    }
                    for (int j = lo; j < hi; j++) p[j] = (float) (p[j] / sum);
                    for (int c = 0; c < hd; c++) {
                        float acc = 0f;
                        for (int j = lo; j < hi; j++) acc = Math.fma(p[j], v[(kOff + j) * kStride + kvh * hd + c], acc);
                        out[(qOff + i) * qStride + h * hd + c] = acc;
                    }
                    if (pattern != null) System.arraycopy(p, 0, pattern, patternAt + (h * qLen + i) * kLen, kLen);
                }
            }
            patternAt += nHeads * qLen * kLen;
        }
    }

    @Override
    public void softmaxScores(DeviceTensor scores, DeviceTensor pattern, AttentionLayout layout, AttentionSpec spec) {
        AttentionMaps.softmax(HeapTensor.of(scores), HeapTensor.of(pattern), layout, spec);
    }

    @Override
    public void mixValues(DeviceTensor pattern, DeviceTensor v, DeviceTensor out, AttentionLayout layout, AttentionSpec spec) {
        AttentionMaps.mixValues(HeapTensor.of(pattern), HeapTensor.of(v), HeapTensor.of(out), layout, spec);
    }

    @Override
    public void activate(DeviceTensor xt, Activation act) {
        float[] x = HeapTensor.of(xt);
        for (int i = 0; i < xt.size(); i++) x[i] = act.apply(x[i]);
    }

    @Override
    public void gatedActivate(DeviceTensor gateT, DeviceTensor upT, Activation act) {
        float[] gate = HeapTensor.of(gateT), up = HeapTensor.of(upT);
        for (int i = 0; i < gateT.size(); i++) gate[i] = act.apply(gate[i]) * up[i];
    }

    @Override
    public void add(DeviceTensor outT, DeviceTensor at) {
        float[] out = HeapTensor.of(outT), a = HeapTensor.of(at);
        for (int i = 0; i < outT.size(); i++) out[i] += a[i];
    }

    @Override
    public void softcap(DeviceTensor xt, float cap) {
        float[] x = HeapTensor.of(xt);
        for (int i = 0; i < xt.size(); i++) x[i] = (float) Math.tanh(x[i] / cap) * cap;
    }
}
