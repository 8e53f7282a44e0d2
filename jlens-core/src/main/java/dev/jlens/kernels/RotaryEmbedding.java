package dev.jlens.kernels;

/**
 * Rotary position embedding: the first {@code rotaryDims} values of every head are rotated in pairs by
 * angle position × invFreq[i]. {@link Layout#HALF_SPLIT} is Hugging Face's rotate-half layout (pair i is
 * (x[i], x[i + rotaryDims/2]); GPT-NeoX, Llama, Qwen, Gemma, Phi-3, OLMo-2), {@link Layout#INTERLEAVED} the
 * GPT-J / Meta layout (pair i is (x[2i], x[2i+1])). Values past rotaryDims are left alone (partial rotary).
 * Each rotated value is x1·cos − x2·sin (two rounded products, then the difference) with cos and sin of the
 * float32 angle, as Hugging Face computes them, because the reference's rounding is what parity is measured
 * against. The rotation itself is a {@link Backend} operation.
 */
public record RotaryEmbedding(int rotaryDims, float[] invFreq, Layout layout) {

    public enum Layout { HALF_SPLIT, INTERLEAVED }

    public RotaryEmbedding {
        if (rotaryDims < 0 || rotaryDims % 2 != 0) throw new IllegalArgumentException("rotary dims " + rotaryDims + " must be even");
        if (invFreq.length != rotaryDims / 2) {
            throw new IllegalArgumentException(invFreq.length + " frequencies for " + rotaryDims + " rotary dims");
        }
        invFreq = invFreq.clone();
    }

    /** Rotate-half RoPE with HF's default frequencies 1/base^(2i/rotaryDims). */
    public static RotaryEmbedding halfSplit(int rotaryDims, double base) {
        return new RotaryEmbedding(rotaryDims, defaultInvFreq(rotaryDims, base), Layout.HALF_SPLIT);
    }

    /** No rotation (GPT-2 and other learned-position models). */
    public static final RotaryEmbedding NONE = new RotaryEmbedding(0, new float[0], Layout.HALF_SPLIT);

    /** HF's inv_freq = 1 / base^(2i/d), each step in float32. */
    public static float[] defaultInvFreq(int rotaryDims, double base) {
        float[] f = new float[rotaryDims / 2];
        for (int i = 0; i < f.length; i++) {
            float exponent = (float) (2 * i) / rotaryDims;
            float pow = (float) Math.pow(base, exponent);
            f[i] = 1.0f / pow;
        }
        return f;
    }

    @Override
    public float[] invFreq() {
        return invFreq.clone();
    }

    /** inv_freq[i] without a copy, for the backends' inner loops. */
    float freq(int i) {
        return invFreq[i];
    }

    /** cos and sin of position × invFreq for every pair, in float32. */
    void angles(int position, float[] cos, float[] sin) {
        for (int i = 0; i < invFreq.length; i++) {
            float angle = (float) position * invFreq[i];
            cos[i] = (float) Math.cos(angle);
            sin[i] = (float) Math.sin(angle);
        }
    }

    /**
     * Rotates pairs [from, rotaryDims/2) of the head starting at x[base] by the angles in cos/sin: the scalar
     * form both CPU backends use (the CPU backend for the tail its vectors leave, the reference for all).
     */
    void rotatePairs(float[] x, int base, int from, float[] cos, float[] sin) {
        for (int i = from; i < invFreq.length; i++) {
            int a = base + first(i), b = base + second(i);
            float x1 = x[a], x2 = x[b];
            x[a] = x1 * cos[i] - x2 * sin[i];
            x[b] = x2 * cos[i] + x1 * sin[i];
        }
    }

    /** Index of the first and second element of pair i within a head. */
    int first(int i) {
        return layout == Layout.HALF_SPLIT ? i : 2 * i;
    }

    int second(int i) {
        return layout == Layout.HALF_SPLIT ? i + rotaryDims / 2 : 2 * i + 1;
    }
}
