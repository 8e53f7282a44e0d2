package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.tokenizer.ChatTemplate;

import java.util.List;
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

    /**
     * The words this scope reads in a prompt, for the words-only baselines, so that a detector and its baselines
     * read the same part of a conversation: the last user message's content for {@code last-user}, the last
     * assistant message's for {@code response}, the whole text otherwise ({@code post-instruction} tokens sit
     * after everything before them, and a plain prompt is one user message).
     */
    public String words(String text, List<ChatTemplate.Message> messages) {
        if (messages.isEmpty() || this == ALL || this == POST_INSTRUCTION) return text;
        String role = this == LAST_USER ? "user" : "assistant";
        for (int i = messages.size() - 1; i >= 0; i--) if (messages.get(i).role().equals(role)) return messages.get(i).content();
        throw new JlensException("a conversation has no " + role + " message for --pool-scope " + cliName);
    }

    public static PoolScope parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        for (PoolScope p : values()) if (p.cliName.equals(t)) return p;
        throw new JlensException("--pool-scope \"" + s + "\": expected all, last-user, post-instruction or response");
    }
}
