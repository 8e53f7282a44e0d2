package dev.jlens.io;

import dev.jlens.JlensException;
import dev.jlens.io.pytorch.TorchCheckpoint;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.ShardedSafetensors;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds and opens the weights in a model folder, preferring safetensors over PyTorch pickles. */
public final class Checkpoints {

    private Checkpoints() {
    }

    public static TensorSource open(Path dir) {
        Path st = dir.resolve("model.safetensors");
        Path stIndex = dir.resolve("model.safetensors.index.json");
        Path bin = dir.resolve("pytorch_model.bin");
        Path binIndex = dir.resolve("pytorch_model.bin.index.json");
        if (Files.isRegularFile(st)) return SafetensorsFile.open(st);
        if (Files.isRegularFile(stIndex)) return ShardedSafetensors.open(stIndex);
        if (Files.isRegularFile(bin)) return TorchCheckpoint.open(bin);
        if (Files.isRegularFile(binIndex)) return TorchCheckpoint.openSharded(binIndex);
        throw new JlensException(dir + ": no weights found; expected model.safetensors, "
                + "model.safetensors.index.json (sharded), pytorch_model.bin or pytorch_model.bin.index.json");
    }
}
