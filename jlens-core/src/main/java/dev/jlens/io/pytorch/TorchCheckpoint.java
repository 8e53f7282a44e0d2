package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.TensorSource;

import java.nio.file.Path;

/** PyTorch {@code torch.save} checkpoints (zip + restricted pickle). */
public final class TorchCheckpoint {

    private TorchCheckpoint() {
    }

    public static TensorSource open(Path file) {
        throw new JlensException(file + ": PyTorch .bin checkpoints are not supported yet");
    }

    public static TensorSource openSharded(Path indexFile) {
        throw new JlensException(indexFile + ": PyTorch .bin checkpoints are not supported yet");
    }
}
