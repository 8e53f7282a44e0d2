package dev.jlens.generate;

/**
 * One prompt's continuation.
 *
 * @param promptIds the prompt's token ids as fed to the model
 * @param newIds    every token generated, including a final end-of-sequence token
 * @param text      the new text (special tokens skipped, cut before a stop string)
 * @param stop      why generation ended
 */
public record Generation(int[] promptIds, int[] newIds, String text, StopReason stop) {

    public enum StopReason {
        /** maxNewTokens reached. */
        MAX_TOKENS,
        /** the end-of-sequence token was generated. */
        EOS,
        /** a stop string appeared in the text. */
        STOP_STRING,
        /** the sequence filled the model's context. */
        CONTEXT,
        /** a {@link StopCheck} (a guard on the activations) ended it. */
        GUARD
    }

    /** Prompt and new ids together. */
    public int[] allIds() {
        int[] all = java.util.Arrays.copyOf(promptIds, promptIds.length + newIds.length);
        System.arraycopy(newIds, 0, all, promptIds.length, newIds.length);
        return all;
    }
}
