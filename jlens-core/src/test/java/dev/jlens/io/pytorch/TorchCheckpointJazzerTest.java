package dev.jlens.io.pytorch;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.pytorch.TorchFiles.Tensor;
import dev.jlens.testing.FuzzInput;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Coverage-guided fuzzing (Jazzer) of the PyTorch checkpoint reader: the hand-written zip directory reader on
 * whole files, and the restricted unpickler on pickles wrapped in a valid archive (so that every input
 * reaches it). A normal test run replays the inputs under
 * src/test/resources/dev/jlens/io/pytorch/TorchCheckpointJazzerTestInputs; {@code JAZZER_FUZZ=1} fuzzes.
 * {@link TorchCheckpointFuzzTest} mutates the same inputs at random with jqwik.
 */
class TorchCheckpointJazzerTest {

    /** The storages the pickle seeds refer to (keys "0".."3"), as in {@link TorchCheckpointFuzzTest}. */
    static final Map<String, byte[]> STORAGES = Map.of(
            "0", TorchFiles.f32(1, 2, 3, 4, 5, 6),
            "1", new byte[]{0, 0x3c, 0, 0x40, 0, 0x42},
            "2", TorchFiles.i64(5, 6),
            "3", new byte[]{1, 0, 1, 1});

    static final byte[] PICKLE = TorchFiles.stateDictPickle(List.of(
            Tensor.contiguous("a.weight", "FloatStorage", "0", 2, 3),
            Tensor.contiguous("a.bias", "HalfStorage", "1", 3),
            new Tensor("a.view", "FloatStorage", "0", 6, 3, new long[]{3}, new long[]{1}),
            Tensor.contiguous("ids", "LongStorage", "2", 2),
            Tensor.contiguous("mask", "BoolStorage", "3", 1, 2, 2)));

    private static void openAndReadAll(Path file) throws Exception {
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (TorchCheckpoint c = TorchCheckpoint.open(file)) {
                for (String name : c.names()) {
                    TensorEntry e = c.require(name);
                    assertEquals(e.numel(), e.toFloatArray().length, name);
                }
            }
        });
    }

    @FuzzTest(maxDuration = "3m")
    void zipArchive(byte[] bytes) throws Exception {
        openAndReadAll(FuzzInput.write("pytorch_model.bin", bytes));
    }

    @FuzzTest(maxDuration = "3m")
    void pickleInValidArchive(byte[] pickle) throws Exception {
        openAndReadAll(FuzzInput.write("pytorch_model.bin", TorchFiles.checkpoint("archive", pickle, STORAGES)));
    }
}
