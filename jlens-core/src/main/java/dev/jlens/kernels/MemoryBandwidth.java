package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * Measures the streaming read bandwidth from main memory the way the generation kernels see it: every thread
 * sums its own share of a buffer far larger than the caches ({@link #bufferBytes}) with Vector API loads, in
 * four sequential streams, from memory allocated like the packed weights ({@link NativeMemory}: off-heap, huge pages where the kernel gives them).
 * Generation at batch 1 reads every weight once per token, so (weight bytes per token) ÷ this figure is the
 * fastest a token can be; benchmarks report their speed as a fraction of that bound, measured in the same
 * run (a datasheet figure is meaningless on a shared virtual machine). The companion of {@link FmaPeak}.
 */
public final class MemoryBandwidth {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int VBYTES = S.vectorByteSize();

    /** The smallest buffer {@link #bufferBytes} gives, on machines with small caches or none reported. */
    public static final long MIN_BUFFER_BYTES = 512L << 20;

    /** How many times the last-level cache a probe buffer spans, so that the cache serves almost none of it. */
    public static final int CACHE_MULTIPLE = 4;

    private MemoryBandwidth() {
    }

    /**
     * A probe buffer size whose reads come from main memory: {@value #CACHE_MULTIPLE}× this machine's last-level
     * cache, at least {@link #MIN_BUFFER_BYTES}. A fixed 512 MiB was far larger than the caches of the machines
     * it was chosen on, but a host with a 480 MiB L3 (an Intel Xeon VM, 2026-12-08) read that buffer 6% faster
     * than one of 2-8 GiB, which all read alike: part of every pass came from the cache, and the bound set
     * against the weights (2.5 GB per token, which no cache holds) was that much too high.
     */
    public static long bufferBytes() {
        return bufferBytes(lastLevelCacheBytes(Path.of("/sys/devices/system/cpu/cpu0/cache")));
    }

    static long bufferBytes(long lastLevelCacheBytes) {
        return Math.max(MIN_BUFFER_BYTES, CACHE_MULTIPLE * lastLevelCacheBytes);
    }

    /**
     * The size of the highest-level cache listed under a Linux {@code cpu0/cache} folder (entries
     * {@code index*} with files {@code level} and {@code size}, like "491520K"); 0 when there is none to read
     * (another system, a container hiding sysfs), which leaves the probe at its minimum.
     */
    static long lastLevelCacheBytes(Path cacheDir) {
        if (!Files.isDirectory(cacheDir)) return 0;
        int bestLevel = -1;
        long bestBytes = 0;
        try (Stream<Path> entries = Files.list(cacheDir)) {
            for (Path index : entries.filter(p -> p.getFileName().toString().startsWith("index")).toList()) {
                try {
                    int level = Integer.parseInt(Files.readString(index.resolve("level")).strip());
                    long bytes = parseCacheSize(Files.readString(index.resolve("size")));
                    if (level > bestLevel || (level == bestLevel && bytes > bestBytes)) {
                        bestLevel = level;
                        bestBytes = bytes;
                    }
                } catch (IOException | NumberFormatException e) {
                    // an entry without a readable level or size says nothing about the last level: skip it
                }
            }
        } catch (IOException e) {
            return 0;
        }
        return bestBytes;
    }

    /** sysfs cache sizes: a count with an optional K, M or G suffix (powers of 1024). */
    static long parseCacheSize(String text) {
        String t = text.strip().toUpperCase(Locale.ROOT);
        if (t.isEmpty()) throw new NumberFormatException("empty cache size");
        long unit = switch (t.charAt(t.length() - 1)) {
            case 'K' -> 1L << 10;
            case 'M' -> 1L << 20;
            case 'G' -> 1L << 30;
            default -> 1;
        };
        return Long.parseLong(unit == 1 ? t : t.substring(0, t.length() - 1)) * unit;
    }

    /**
     * Bytes per second read by {@code threads} threads at once, each streaming its share of a {@code bytes}
     * buffer over and over for about {@code roundMillis}; the best of three rounds after one untimed pass that
     * faults the pages in. Rounds last as long as {@link FmaPeak}'s so that, on a machine shared with other
     * jobs, both bounds see the same share of the cores (a single 20 ms pass would often run unpreempted and
     * overstate what a long generation run can get).
     */
    public static double measureBytesPerSecond(int threads, long bytes, long roundMillis) {
        Probe probe = new Probe(threads, bytes);
        double best = 0;
        for (int r = 0; r < 3; r++) best = Math.max(best, probe.round(roundMillis));
        return best;
    }

    /**
     * A buffer kept for repeated short rounds, so that a benchmark can interleave them with its own timed steps:
     * on a virtual machine whose memory bandwidth moves by half within a minute (docs/PERFORMANCE.md), a round
     * next to each step sees the conditions that step saw, where one measurement before and one after a whole
     * timing need not.
     */
    public static final class Probe {
        private final MemorySegment buf;
        private final int threads;

        /** {@code threads} threads streaming a buffer of about {@code bytes}; its pages are faulted in here. */
        public Probe(int threads, long bytes) {
            if (threads < 1) throw new IllegalArgumentException("threads must be at least 1");
            this.threads = threads;
            long unit = (long) threads * VBYTES * 8;
            buf = NativeMemory.allocate(Math.max(unit, bytes / unit * unit));
            // Non-zero contents, so no layer below can treat the pages as the shared zero page.
            for (long i = 0; i < buf.byteSize(); i += 4096) buf.set(java.lang.foreign.ValueLayout.JAVA_BYTE, i, (byte) 1);
            MemoryBandwidth.round(buf, threads, 0);
        }

        /** Bytes per second over one round of about {@code millis} (at least one pass over the buffer). */
        public double round(long millis) {
            return MemoryBandwidth.round(buf, threads, millis);
        }
    }

    /** Bytes per second of all threads reading their shares until the deadline (at least once). */
    private static double round(MemorySegment buf, int threads, long millis) {
        long share = buf.byteSize() / threads;
        return share * TimedRounds.unitsPerSecond(threads, millis, "bandwidth", (id, deadline) -> {
            float total = 0;
            long passes = 0;
            do {
                total += sum(buf, id * share, (id + 1) * share);
                passes++;
            } while (System.nanoTime() < deadline);
            sink = total;
            return passes;
        });
    }

    private static volatile float sink;

    /** Bytes each of the four streams reads per call of {@link #sumChunk}. */
    private static final long CHUNK = 64 * 1024;

    /**
     * Four sequential streams at once, a quarter of the range each, as the one-row generation kernel reads four
     * panels (measured 2026-12-07 on the 2-core VM: 28-36 GB/s against 21-27 for one stream per thread, and
     * the kernels themselves read faster than one stream). The streams advance a chunk per call: one call per
     * pass over hundreds of MiB is called too rarely for the JIT to compile it whole, so every round used to
     * start in the interpreter with boxed vectors (rounds at 0.3-7 GB/s next to 35, and GiBs of garbage whose
     * collection then paused the decode steps being timed).
     */
    private static float sum(MemorySegment seg, long from, long to) {
        long quarter = (to - from) / 4 / (2L * VBYTES) * (2L * VBYTES);
        float total = 0;
        for (long o = 0; o < quarter; o += CHUNK) {
            total += sumChunk(seg, from + o, from + quarter + o, from + 2 * quarter + o, from + 3 * quarter + o,
                    Math.min(CHUNK, quarter - o));
        }
        return total;
    }

    /** Four independent accumulators, so the adds never wait on each other and only memory limits the loop. */
    private static float sumChunk(MemorySegment seg, long s0, long s1, long s2, long s3, long bytes) {
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        for (long o = 0; o < bytes; o += 2L * VBYTES) {
            a0 = a0.add(load(seg, s0 + o)).add(load(seg, s0 + o + VBYTES));
            a1 = a1.add(load(seg, s1 + o)).add(load(seg, s1 + o + VBYTES));
            a2 = a2.add(load(seg, s2 + o)).add(load(seg, s2 + o + VBYTES));
            a3 = a3.add(load(seg, s3 + o)).add(load(seg, s3 + o + VBYTES));
        }
        return a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector load(MemorySegment seg, long off) {
        return FloatVector.fromMemorySegment(S, seg, off, ByteOrder.LITTLE_ENDIAN);
    }
}
