package dev.jlens.prompts;

import dev.jlens.tokenizer.ChatTemplate;

import java.util.List;
import java.util.Objects;

/**
 * One prompt with its bookkeeping. {@code label} is {@code "harmful"}, {@code "harmless"} or {@code "neutral"}
 * for the built-in sets (user files may use their own labels); {@code split} is {@code "train"},
 * {@code "val"} or {@code "test"}; {@code style} names the register it is written in ({@code plain},
 * {@code terse}, {@code casual}, ...; {@value #DEFAULT_STYLE} where a file does not say), which the style split
 * ({@link PromptSets#splitByStyle}) holds out as a whole.
 *
 * <p>A prompt may be a conversation: {@code messages} then holds its turns (roles system, user, assistant), which
 * a chat model sees through its chat template, and {@code text} is its plain rendering ({@link #plainText}),
 * used where only words count (the TF-IDF baseline, display). For a single prompt {@code messages} is empty.
 */
public record Prompt(String id, String text, String label, String category, String split, String style,
                     List<ChatTemplate.Message> messages) {

    /** The style of a prompt whose file gives none, and of the built-in sets' original items. */
    public static final String DEFAULT_STYLE = "plain";

    public Prompt {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(label, "label");
        Objects.requireNonNull(category, "category");
        Objects.requireNonNull(split, "split");
        Objects.requireNonNull(style, "style");
        messages = messages == null ? List.of() : List.copyOf(messages);
        if (text.isBlank()) {
            throw new IllegalArgumentException("prompt " + id + ": text is blank");
        }
    }

    /** A single prompt (no conversation) in the default style. */
    public Prompt(String id, String text, String label, String category, String split) {
        this(id, text, label, category, split, DEFAULT_STYLE);
    }

    /** A single prompt (no conversation) in the given style. */
    public Prompt(String id, String text, String label, String category, String split, String style) {
        this(id, text, label, category, split, style, List.of());
    }

    /** A conversation, its text the plain rendering of the messages. */
    public static Prompt conversation(String id, List<ChatTemplate.Message> messages, String label, String category,
                                      String split, String style) {
        return new Prompt(id, plainText(messages), label, category, split, style, messages);
    }

    /** A conversation in the default style. */
    public static Prompt conversation(String id, List<ChatTemplate.Message> messages, String label, String category, String split) {
        return conversation(id, messages, label, category, split, DEFAULT_STYLE);
    }

    /** The same prompt in another split. */
    public Prompt withSplit(String newSplit) {
        return new Prompt(id, text, label, category, newSplit, style, messages);
    }

    public boolean isConversation() {
        return !messages.isEmpty();
    }

    /**
     * Whether the conversation is one user message answered by the assistant, which renders as "prompt\n\nresponse"
     * without a chat template ({@link #plainText}).
     */
    public static boolean isPair(List<ChatTemplate.Message> messages) {
        return messages.size() == 2 && messages.get(0).role().equals("user") && messages.get(1).role().equals("assistant");
    }

    /**
     * The plain rendering of a conversation, the text a model without a chat template is given (and the words-only
     * baselines see): a (user, assistant) pair is "prompt\n\nresponse" (the response's tokens are those that start
     * after the blank line); any other conversation joins "role: content" turns with blank lines.
     */
    public static String plainText(List<ChatTemplate.Message> messages) {
        return plainRendering(messages).text();
    }

    /**
     * A conversation's plain rendering with where each message's content lies in it: characters
     * {@code [contentStart[i], contentEnd[i])} of {@code text} are {@code messages.get(i).content()}.
     */
    public record PlainRendering(String text, int[] contentStart, int[] contentEnd) {
    }

    /** {@link #plainText} with the offsets of every message's content. */
    public static PlainRendering plainRendering(List<ChatTemplate.Message> messages) {
        int n = messages.size();
        int[] start = new int[n], end = new int[n];
        StringBuilder sb = new StringBuilder();
        boolean pair = isPair(messages);
        for (int i = 0; i < n; i++) {
            ChatTemplate.Message m = messages.get(i);
            if (i > 0) sb.append("\n\n");
            if (!pair) sb.append(m.role()).append(": ");
            start[i] = sb.length();
            sb.append(m.content());
            end[i] = sb.length();
        }
        return new PlainRendering(sb.toString(), start, end);
    }
}
