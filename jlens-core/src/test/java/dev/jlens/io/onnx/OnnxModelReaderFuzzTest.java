package dev.jlens.io.onnx;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.io.TensorEntry;
import dev.jlens.testing.FuzzInput;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Coverage-guided fuzzing (Jazzer) of the protobuf/ONNX reader. A normal test run replays the inputs under
 * src/test/resources/dev/jlens/io/onnx/OnnxModelReaderFuzzTestInputs; {@code JAZZER_FUZZ=1} fuzzes.
 */
class OnnxModelReaderFuzzTest {

    @FuzzTest(maxDuration = "3m")
    void readModel(byte[] bytes) throws Exception {
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (OnnxModel m = OnnxModelReader.read(MemorySegment.ofArray(bytes), "fuzz.onnx")) {
                for (String name : m.names()) {
                    TensorEntry e = m.require(name);
                    assertEquals(e.numel(), e.toFloatArray().length, name);
                }
                for (OnnxNode n : m.nodes()) {
                    for (OnnxAttribute a : n.attributes().values()) {
                        if (a.t() != null) a.t().toFloatArray();
                    }
                }
            }
        });
    }
}
