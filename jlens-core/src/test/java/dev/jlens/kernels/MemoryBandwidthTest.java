package dev.jlens.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

    @Test
    void theBufferSpansFourTimesTheLastLevelCacheFromSysfs(@TempDir Path dir) throws IOException {
        // the layout of /sys/devices/system/cpu/cpu0/cache on the Xeon VM where 512 MiB read 6% too fast
        cache(dir, "index0", "1", "48K");
        cache(dir, "index1", "1", "64K");
        cache(dir, "index2", "2", "2048K");
        cache(dir, "index3", "3", "491520K");
        Files.writeString(dir.resolve("uevent"), "");
        assertEquals(480L << 20, MemoryBandwidth.lastLevelCacheBytes(dir));
        assertEquals(1920L << 20, MemoryBandwidth.bufferBytes(480L << 20));
        // a small cache or none found leaves the 512 MiB minimum
        assertEquals(512L << 20, MemoryBandwidth.bufferBytes(32L << 20));
        assertEquals(512L << 20, MemoryBandwidth.bufferBytes(0));
        assertEquals(0, MemoryBandwidth.lastLevelCacheBytes(dir.resolve("absent")));
        assertTrue(MemoryBandwidth.bufferBytes() >= MemoryBandwidth.MIN_BUFFER_BYTES);
    }

    @Test
    void unreadableEntriesAreSkippedAndSizesTakeTheirUnit(@TempDir Path dir) throws IOException {
        cache(dir, "index0", "2", "1M");
        cache(dir, "index1", "3", "bogus");
        Files.createDirectories(dir.resolve("index2"));
        assertEquals(1L << 20, MemoryBandwidth.lastLevelCacheBytes(dir));
        assertEquals(2L << 30, MemoryBandwidth.parseCacheSize("2G\n"));
        assertEquals(4096, MemoryBandwidth.parseCacheSize("4096"));
        assertEquals(32L << 10, MemoryBandwidth.parseCacheSize("32k"));
        assertThrows(NumberFormatException.class, () -> MemoryBandwidth.parseCacheSize(" "));
    }

    private static void cache(Path dir, String index, String level, String size) throws IOException {
        Path d = Files.createDirectories(dir.resolve(index));
        Files.writeString(d.resolve("level"), level + "\n");
        Files.writeString(d.resolve("size"), size + "\n");
    }
}
