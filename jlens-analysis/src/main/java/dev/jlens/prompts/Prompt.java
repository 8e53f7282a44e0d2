package dev.jlens.prompts;

import java.util.Objects;

/**
 * One prompt with its bookkeeping. {@code label} is {@code "harmful"}, {@code "harmless"} or {@code "neutral"}
 * for the built-in sets (user files may use their own labels); {@code split} is {@code "train"},
 * {@code "val"} or {@code "test"}; {@code style} names the register it is written in ({@code plain},
 * {@code terse}, {@code casual}, ...; {@value #DEFAULT_STYLE} where a file does not say), which the style split
 * ({@link PromptSets#splitByStyle}) holds out as a whole.
 */
public record Prompt(String id, String text, String label, String category, String split, String style) {

    /** The style of a prompt whose file gives none, and of the built-in sets' original items. */
    public static final String DEFAULT_STYLE = "plain";

    public Prompt {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(label, "label");
        Objects.requireNonNull(category, "category");
        Objects.requireNonNull(split, "split");
        Objects.requireNonNull(style, "style");
        if (text.isBlank()) {
            throw new IllegalArgumentException("prompt " + id + ": text is blank");
        }
    }

    /** A prompt in the default style. */
    public Prompt(String id, String text, String label, String category, String split) {
        this(id, text, label, category, split, DEFAULT_STYLE);
    }

    /** The same prompt in another split. */
    public Prompt withSplit(String newSplit) {
        return new Prompt(id, text, label, category, newSplit, style);
    }
}
