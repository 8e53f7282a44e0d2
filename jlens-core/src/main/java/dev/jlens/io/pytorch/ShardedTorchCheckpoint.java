package dev.jlens.io.pytorch;

import dev.jlens.io.ShardedCheckpoint;

import java.nio.file.Path;

/** Several {@code torch.save} shards joined by {@code pytorch_model.bin.index.json}'s weight_map. */
public final class ShardedTorchCheckpoint {

    private ShardedTorchCheckpoint() {
    }

    public static ShardedCheckpoint open(Path indexFile) {
        return ShardedCheckpoint.open(indexFile, TorchCheckpoint::open);
    }
}
