package dev.jlens.hooks;

import dev.jlens.JlensException;

/** How a cached activation is reduced over a prompt's tokens. Means accumulate in float64. */
public enum Pooling {
    /** Every real token: one [len, d] tensor per prompt. */
    ALL("all"),
    /** Mean over the prompt's real tokens. */
    MEAN("mean"),
    /** The last real token. */
    LAST("last"),
    /** Mean over real tokens except the first (which often carries an attention-sink outlier). */
    MEAN_SKIP_FIRST("mean-skip-first"),
    /**
     * Mean over a chat prompt's post-instruction tokens: what the chat template puts after the user's message
     * (end-of-turn marker, assistant header), where Arditi et al. find the refusal direction. Each prompt's
     * count comes from {@link dev.jlens.tokenizer.ChatPrompt#postInstruction()}. A prompt whose template writes
     * nothing after the user's message (count 0) falls back to its last token, the last of the user's message.
     */
    POST_INSTRUCTION("post-instruction");

    private final String cliName;

    Pooling(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static Pooling parse(String s) {
        for (Pooling p : values()) if (p.cliName.equalsIgnoreCase(s) || p.name().equalsIgnoreCase(s)) return p;
        throw new JlensException("--pool \"" + s + "\": expected one of all, mean, last, mean-skip-first, "
                + "post-instruction (with --chat)");
    }

    /** Whether pooling needs each prompt's post-instruction token count ({@link #pool(float[], int, int, int, int, float[])}). */
    public boolean needsPostInstruction() {
        return this == POST_INSTRUCTION;
    }

    /** Pools rows [offset, offset+len) of a [rows, d] array into out (length d). */
    public void pool(float[] data, int d, int offset, int len, float[] out) {
        if (this == POST_INSTRUCTION) {
            throw new IllegalStateException("post-instruction pooling needs each prompt's post-instruction token count");
        }
        pool(data, d, offset, len, 0, out);
    }

    /** As above; {@code postInstruction} is the prompt's number of post-instruction tokens (its last ones). */
    public void pool(float[] data, int d, int offset, int len, int postInstruction, float[] out) {
        if (this == POST_INSTRUCTION) {
            if (postInstruction < 0 || postInstruction > len) {
                throw new JlensException("post-instruction pooling: a prompt of " + len + " tokens has "
                        + postInstruction + " post-instruction tokens");
            }
            // A template that writes nothing after the user's message: fall back to the message's last token (the
            // prompt's last), where a last-token reading looks with such a template (docs/DETECTION.md).
            if (postInstruction == 0) System.arraycopy(data, (offset + len - 1) * d, out, 0, d);
            else meanOver(data, d, offset + len - postInstruction, postInstruction, out);
            return;
        }
        switch (this) {
            case LAST -> System.arraycopy(data, (offset + len - 1) * d, out, 0, d);
            case MEAN, MEAN_SKIP_FIRST -> {
                int from = this == MEAN_SKIP_FIRST && len > 1 ? 1 : 0;
                double[] acc = new double[d];
                for (int t = from; t < len; t++) {
                    int base = (offset + t) * d;
                    for (int j = 0; j < d; j++) acc[j] += data[base + j];
                }
                int n = len - from;
                for (int j = 0; j < d; j++) out[j] = (float) (acc[j] / n);
            }
            case ALL -> throw new IllegalStateException("ALL is not a reduction");
            default -> throw new IllegalStateException(this + " is handled above");
        }
    }

    private static void meanOver(float[] data, int d, int from, int n, float[] out) {
        double[] acc = new double[d];
        for (int t = from; t < from + n; t++) {
            int base = t * d;
            for (int j = 0; j < d; j++) acc[j] += data[base + j];
        }
        for (int j = 0; j < d; j++) out[j] = (float) (acc[j] / n);
    }
}
