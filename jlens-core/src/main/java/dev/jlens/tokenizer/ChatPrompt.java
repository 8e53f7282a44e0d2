package dev.jlens.tokenizer;

/**
 * A user message put through the model's chat template and encoded: {@code text} as rendered, {@code ids}
 * its tokens (the template's own BOS, no second one from the tokenizer), and {@code postInstruction} how
 * many of the last ids come after the user's message (the end-of-turn marker and assistant header; Arditi
 * et al. read the refusal direction at these positions).
 */
public record ChatPrompt(String text, int[] ids, int postInstruction) {
}
