package dev.jlens.kernels;

/**
 * Which keys a query may see. {@code causal}: keys at positions ≤ the query's. {@code window} &gt; 0 limits
 * a causal query to the last {@code window} positions (Mistral's sliding window); 0 means unlimited.
 */
public record AttentionMask(boolean causal, int window) {
    public static final AttentionMask CAUSAL = new AttentionMask(true, 0);
    public static final AttentionMask BIDIRECTIONAL = new AttentionMask(false, 0);
}
