package dev.jlens.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryBandwidthTest {

    @Test
    void everyThreadStreamsItsShareOfBuffersOfAnySize() {
        // sizes that do not divide into threads × four streams × two vectors are rounded, never read past the end
        for (int threads = 1; threads <= 3; threads++) {
            for (long bytes : new long[]{1, 1000, 3 * 4096 + 17, 1 << 20}) {
                double bps = MemoryBandwidth.measureBytesPerSecond(threads, bytes, 5);
                assertTrue(bps > 0 && Double.isFinite(bps), threads + " threads, " + bytes + " bytes: " + bps);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> MemoryBandwidth.measureBytesPerSecond(0, 1 << 20, 5));
    }
}
