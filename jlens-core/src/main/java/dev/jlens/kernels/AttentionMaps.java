package dev.jlens.kernels;

/**
 * Scalar loops over attention scores and patterns laid out as {@link Backend#attention} writes them
 * ([heads, q, k] per sequence, one after another). They run only when a hook is on the scores or the
 * pattern, so both CPU backends share them; each output is the same chain of operations as the fused
 * attention's (fma over keys in order, softmax sum in double).
 */
final class AttentionMaps {

    private AttentionMaps() {
    }

    static void softmax(float[] scores, float[] pattern, AttentionLayout layout, AttentionSpec spec) {
        int at = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int rows = spec.nHeads() * layout.qLen()[s], kLen = layout.kLen()[s];
            for (int r = 0; r < rows; r++, at += kLen) {
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < kLen; j++) max = Math.max(max, scores[at + j]);
                double sum = 0;
                for (int j = 0; j < kLen; j++) {
                    float e = scores[at + j] == Float.NEGATIVE_INFINITY ? 0f : (float) Math.exp(scores[at + j] - max);
                    pattern[at + j] = e;
                    sum += e;
                }
                for (int j = 0; j < kLen; j++) pattern[at + j] = (float) (pattern[at + j] / sum);
            }
        }
    }

    static void mixValues(float[] pattern, float[] v, float[] out, AttentionLayout layout, AttentionSpec spec) {
        int nHeads = spec.nHeads(), hd = spec.headDim(), group = nHeads / spec.nKvHeads();
        int qStride = spec.qWidth(), kStride = spec.kvWidth();
        int at = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
            for (int h = 0; h < nHeads; h++) {
                int kvh = h / group;
                for (int i = 0; i < qLen; i++, at += kLen) {
                    for (int c = 0; c < hd; c++) {
                        float acc = 0f;
                        for (int j = 0; j < kLen; j++) {
                            acc = Math.fma(pattern[at + j], v[(kOff + j) * kStride + kvh * hd + c], acc);
                        }
                        out[(qOff + i) * qStride + h * hd + c] = acc;
                    }
                }
            }
        }
    }
}
