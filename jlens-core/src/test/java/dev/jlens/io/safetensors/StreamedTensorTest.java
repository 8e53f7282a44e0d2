package dev.jlens.io.safetensors;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StreamedTensorTest {

    @Test
    void streamedAndInMemoryTensorsReadBack(@TempDir Path tmp) {
        Path f = tmp.resolve("t.safetensors");
        new SafetensorsWriter()
                .putF32("a", new float[]{1, 2, 3}, 3)
                .putStreamed("b", DType.F16, new long[]{2, 2}, out -> {
                    ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                    for (float v : new float[]{0.5f, -1f, 2f, 65504f}) b.putShort(Float.floatToFloat16(v));
                    out.write(b.array());
                })
                .putF32("c", new float[]{4}, 1)
                .write(f);
        try (SafetensorsFile st = SafetensorsFile.open(f)) {
            assertArrayEquals(new float[]{1, 2, 3}, st.require("a").toFloatArray());
            assertEquals(DType.F16, st.require("b").dtype());
            assertArrayEquals(new float[]{0.5f, -1f, 2f, 65504f}, st.require("b").toFloatArray());
            assertArrayEquals(new float[]{4}, st.require("c").toFloatArray());
        }
    }

    @Test
    void aProducerWritingTheWrongSizeFailsWithoutLeavingAFile(@TempDir Path tmp) throws Exception {
        Path f = tmp.resolve("bad.safetensors");
        JlensException e = assertThrows(JlensException.class, () -> new SafetensorsWriter()
                .putStreamed("short", DType.F32, new long[]{4}, out -> out.write(new byte[12]))
                .write(f));
        assertTrue(e.getMessage().contains("produced 12 bytes") && e.getMessage().contains("need 16"), e.getMessage());
        assertFalse(Files.exists(f));
        try (var files = Files.list(tmp)) {
            assertEquals(0, files.count(), "the temporary file is removed");
        }
    }
}
