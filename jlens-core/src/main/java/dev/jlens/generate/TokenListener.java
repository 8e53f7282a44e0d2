package dev.jlens.generate;

/**
 * Hears every token as it is generated. {@code text} is the part of the continuation that became final with
 * this token: possibly empty (an incomplete UTF-8 character, or the start of what may be a stop string, is
 * held back until it is settled), and the texts of one sequence's calls concatenate to its
 * {@link Generation#text()}.
 */
@FunctionalInterface
public interface TokenListener {

    TokenListener NONE = (sequence, tokenId, text) -> {
    };

    void onToken(int sequence, int tokenId, String text);

    /**
     * A sequence ended without a token of its own ({@link Generation.StopReason#GUARD}: the stop came after a
     * forward pass, before the next token was sampled). {@code text} is what was still held back, so the texts of
     * both methods still concatenate to {@link Generation#text()}.
     */
    default void onEnd(int sequence, Generation.StopReason reason, String text) {
    }
}
