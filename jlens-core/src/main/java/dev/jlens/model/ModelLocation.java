package dev.jlens.model;

import java.nio.file.Path;

/**
 * Where a model's files are, and how the user named it. {@code id} is the user's {@code --model} text,
 * {@code revision} the resolved revision (null for a plain folder), {@code dir} the folder holding
 * config.json, tokenizer.json and the weights. {@code embedded} marks the built-in default model.
 */
public record ModelLocation(String id, String revision, Path dir, boolean embedded) {
}
