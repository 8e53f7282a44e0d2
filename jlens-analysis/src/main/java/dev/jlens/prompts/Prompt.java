package dev.jlens.prompts;

import java.util.Objects;

/**
 * One prompt with its bookkeeping. {@code label} is {@code "harmful"}, {@code "harmless"} or {@code "neutral"}
 * for the built-in sets (user files may use their own labels); {@code split} is {@code "train"},
 * {@code "val"} or {@code "test"}.
 */
public record Prompt(String id, String text, String label, String category, String split) {

    public Prompt {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(text, "text");
        Objects.requireNonNull(label, "label");
        Objects.requireNonNull(category, "category");
        Objects.requireNonNull(split, "split");
        if (text.isBlank()) {
            throw new IllegalArgumentException("prompt " + id + ": text is blank");
        }
    }
}
