package dev.jlens.tensor;

import java.util.List;

/**
 * Several token sequences packed into one row dimension: sequence s occupies rows
 * {@code offsets[s] .. offsets[s] + lengths[s]}. Every weight multiplies all rows at once (one matrix
 * product per weight), while attention, positions and causal masks stay per sequence. {@code pastLengths}
 * is the number of earlier tokens each sequence already has in a KV cache (all zero for a plain forward),
 * so the position of row r is {@code pastLengths[s] + r - offsets[s]}.
 */
public record TokenBatch(int[] tokens, int[] offsets, int[] lengths, int[] pastLengths) {

    public static TokenBatch of(List<int[]> sequences) {
        int n = sequences.size();
        int[] offsets = new int[n];
        int[] lengths = new int[n];
        int total = 0;
        for (int s = 0; s < n; s++) {
            offsets[s] = total;
            lengths[s] = sequences.get(s).length;
            total += lengths[s];
        }
        int[] tokens = new int[total];
        for (int s = 0; s < n; s++) System.arraycopy(sequences.get(s), 0, tokens, offsets[s], lengths[s]);
        return new TokenBatch(tokens, offsets, lengths, new int[n]);
    }

    public static TokenBatch single(int[] ids) {
        return of(List.of(ids));
    }

    public int size() {
        return offsets.length;
    }

    public int totalTokens() {
        return tokens.length;
    }



    /**
     * Checks every id against the vocabulary and every position against the context, then returns the
     * positions: the one place each architecture's forward pass validates its input.
     */
    public int[] checkedPositions(int vocabSize, int maxPositions) {
        for (int t : tokens) {
            if (t < 0 || t >= vocabSize) {
                throw new dev.jlens.JlensException("token id " + t + " is outside the vocabulary (0.." + (vocabSize - 1) + ")");
            }
        }
        int[] pos = positions();
        for (int p : pos) {
            if (p >= maxPositions) {
                throw new dev.jlens.JlensException("position " + p + " is beyond the model's context of " + maxPositions + " tokens");
            }
        }
        return pos;
    }

    /** Absolute position of every packed row (its index within its sequence plus the cached prefix). */
    public int[] positions() {
        int[] pos = new int[tokens.length];
        for (int s = 0; s < offsets.length; s++) {
            for (int i = 0; i < lengths[s]; i++) pos[offsets[s] + i] = pastLengths[s] + i;
        }
        return pos;
    }
}
