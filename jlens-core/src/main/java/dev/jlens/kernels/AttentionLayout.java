package dev.jlens.kernels;

/**
 * Where each sequence's queries and keys live in packed arrays. Sequence s has {@code qLen[s]} query rows
 * starting at {@code qOff[s]}, and {@code kLen[s]} key/value rows starting at {@code kOff[s]}; its queries
 * are the last {@code qLen[s]} positions of its keys (a KV cache supplies the earlier ones).
 */
public record AttentionLayout(int[] qOff, int[] qLen, int[] kOff, int[] kLen) {

    /** No cache: keys are the queries' own rows. */
    public static AttentionLayout selfAttention(int[] offsets, int[] lengths) {
        return new AttentionLayout(offsets, lengths, offsets, lengths);
    }

    public int sequences() {
        return qOff.length;
    }
}
