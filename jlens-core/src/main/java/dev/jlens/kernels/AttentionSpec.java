package dev.jlens.kernels;

/**
 * One layer's attention: heads, grouped-query sharing, score scale and which keys a query may see.
 * {@code causal}: keys at positions ≤ the query's. {@code window} &gt; 0 limits a causal query to the last
 * {@code window} positions (key k is visible from query q iff q − window &lt; k ≤ q; Mistral, Gemma's local
 * layers); 0 means unlimited. {@code softcap} &gt; 0 squashes each scaled score to cap·tanh(s/cap) before the
 * mask (Gemma 2); 0 means none.
 *
 * @param nHeads   query heads
 * @param nKvHeads key/value heads; query head h reads key head h / (nHeads / nKvHeads)
 * @param headDim  values per head
 * @param scale    multiplies q·k (usually d_head^-0.5)
 */
public record AttentionSpec(int nHeads, int nKvHeads, int headDim, float scale, boolean causal, int window, float softcap) {

    public AttentionSpec {
        if (nHeads < 1 || nKvHeads < 1 || nHeads % nKvHeads != 0) {
            throw new IllegalArgumentException(nHeads + " query heads cannot share " + nKvHeads + " key/value heads");
        }
        if (headDim < 1) throw new IllegalArgumentException("head_dim " + headDim);
        if (window < 0 || softcap < 0) throw new IllegalArgumentException("window " + window + ", softcap " + softcap);
    }

    /** Causal attention with the usual d_head^-0.5 scale, no window, no soft-capping. */
    public static AttentionSpec causal(int nHeads, int nKvHeads, int headDim) {
        return new AttentionSpec(nHeads, nKvHeads, headDim, (float) (1.0 / Math.sqrt(headDim)), true, 0, 0f);
    }

    /** Every query sees every key of its sequence (BERT). */
    public static AttentionSpec bidirectional(int nHeads, int headDim) {
        return new AttentionSpec(nHeads, nHeads, headDim, (float) (1.0 / Math.sqrt(headDim)), false, 0, 0f);
    }

    public AttentionSpec withScale(float s) {
        return new AttentionSpec(nHeads, nKvHeads, headDim, s, causal, window, softcap);
    }

    public AttentionSpec withWindow(int w) {
        return new AttentionSpec(nHeads, nKvHeads, headDim, scale, causal, w, softcap);
    }

    public AttentionSpec withSoftcap(float cap) {
        return new AttentionSpec(nHeads, nKvHeads, headDim, scale, causal, window, cap);
    }

    /** Values of q (or of the attention output) per token. */
    public int qWidth() {
        return nHeads * headDim;
    }

    /** Values of k or v per token. */
    public int kvWidth() {
        return nKvHeads * headDim;
    }

    /** The first key position query position {@code qPos} may see. */
    public int firstVisible(int qPos) {
        return causal && window > 0 ? Math.max(0, qPos - window + 1) : 0;
    }

    /** One past the last key position query position {@code qPos} may see, of {@code kLen} keys. */
    public int endVisible(int qPos, int kLen) {
        return causal ? Math.min(kLen, qPos + 1) : kLen;
    }

    /** The softcap applied to one scaled score, in float32 as Hugging Face computes it. */
    public float cap(float s) {
        if (softcap == 0f) return s;
        return (float) Math.tanh(s / softcap) * softcap;
    }
}
