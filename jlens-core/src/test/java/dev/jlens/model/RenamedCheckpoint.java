package dev.jlens.model;

import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;

/** Copies a fixture model folder with its tensors renamed, to test checkpoints saved under other names. */
final class RenamedCheckpoint {
    private RenamedCheckpoint() {
    }

    static Path copy(Path fixtureDir, Path target, UnaryOperator<String> rename) {
        try {
            Files.createDirectories(target);
            Files.copy(fixtureDir.resolve("config.json"), target.resolve("config.json"));
            Files.copy(fixtureDir.resolve("tokenizer.json"), target.resolve("tokenizer.json"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        SafetensorsWriter out = new SafetensorsWriter();
        try (SafetensorsFile in = SafetensorsFile.open(fixtureDir.resolve("model.safetensors"))) {
            for (String name : in.names()) {
                TensorEntry e = in.find(name);
                out.putF32(rename.apply(name), e.toFloatArray(), e.shape());
            }
        }
        out.write(target.resolve("model.safetensors"));
        return target;
    }
}
