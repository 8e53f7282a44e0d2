package dev.jlens.detect;

import dev.jlens.JlensException;

import java.util.Locale;

/**
 * Which tokens of a prompt or conversation a detector pools (or aggregates) over; the pooling ({@code --pool})
 * says how. A single prompt with {@code --chat} is the conversation [system?, user].
 */
public enum PoolScope {
    /** Every token of the rendered text (the default, and all that a plain prompt has). */
    ALL("all"),
    /** The content of the last user message (without the template's role markers). */
    LAST_USER("last-user"),
    /**
     * What the chat template writes after the last user message (end-of-turn marker, assistant header; Arditi et
     * al.'s post-instruction tokens), up to the assistant's content when the conversation holds one. A template
     * that writes nothing there falls back to the last token of the user message (see {@link PromptEncoder}).
     */
    POST_INSTRUCTION("post-instruction"),
    /** The content of the last assistant message: a response-level detector's tokens. */
    RESPONSE("response");

    private final String cliName;

    PoolScope(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static PoolScope parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        for (PoolScope p : values()) if (p.cliName.equals(t)) return p;
        throw new JlensException("--pool-scope \"" + s + "\": expected all, last-user, post-instruction or response");
    }
}
