package dev.jlens.io.safetensors;

import dev.jlens.io.ShardedCheckpoint;

import java.nio.file.Path;

/** Several safetensors shards joined by {@code model.safetensors.index.json}'s weight_map. */
public final class ShardedSafetensors {

    private ShardedSafetensors() {
    }

    public static ShardedCheckpoint open(Path indexFile) {
        return ShardedCheckpoint.open(indexFile, SafetensorsFile::open);
    }
}
