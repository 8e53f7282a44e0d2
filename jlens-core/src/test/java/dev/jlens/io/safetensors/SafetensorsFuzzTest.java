package dev.jlens.io.safetensors;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.io.TensorEntry;
import dev.jlens.testing.FuzzInput;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Coverage-guided fuzzing of the safetensors reader (header length, JSON header, dtypes, shapes, offsets).
 * A normal test run replays the inputs under src/test/resources/dev/jlens/io/safetensors/SafetensorsFuzzTestInputs;
 * {@code JAZZER_FUZZ=1} fuzzes (see docs/SECURITY.md for how and for how long).
 */
class SafetensorsFuzzTest {

    @FuzzTest(maxDuration = "3m")
    void openAndReadEveryTensor(byte[] bytes) throws Exception {
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (SafetensorsFile f = SafetensorsFile.open(FuzzInput.write("model.safetensors", bytes))) {
                for (String name : f.names()) {
                    TensorEntry e = f.require(name);
                    // Every accepted tensor lies inside the file, so reading all of it may not fail.
                    assertEquals(e.numel(), e.toFloatArray().length, name);
                }
            }
        });
    }
}
