package dev.jlens.steering;

import dev.jlens.JlensException;

import java.util.Locale;

/**
 * Which tokens an intervention touches during generation: the prompt's, the generated ones, or both. A row
 * at position p of sequence s is generated when p ≥ the length of prompt s; in a plain forward pass over
 * prompts every row is a prompt token.
 */
public enum TokenScope {
    PROMPT, GENERATED, BOTH;

    public boolean includes(boolean generated) {
        return this == BOTH || (this == GENERATED) == generated;
    }

    public static TokenScope parse(String s) {
        return switch (s.strip().toLowerCase(Locale.ROOT)) {
            case "prompt" -> PROMPT;
            case "generated" -> GENERATED;
            case "both", "all" -> BOTH;
            default -> throw new JlensException("--tokens \"" + s + "\": expected prompt, generated or both");
        };
    }
}
