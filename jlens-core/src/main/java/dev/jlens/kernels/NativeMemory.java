package dev.jlens.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Large off-heap blocks for packed weights, mapped straight from the OS on Linux. {@link Arena#allocate}
 * would do, but it counts against {@code -XX:MaxDirectMemorySize} (by default the heap limit, so a packed
 * 2.8B model would not fit beside a 4 GB heap) and zero-fills every page on the calling thread before use;
 * an anonymous mapping is zero already and its pages are first touched by the packing threads, in
 * parallel. The mapping is released when the segment becomes unreachable. Elsewhere, or when native
 * access is not enabled, it falls back to the arena.
 */
final class NativeMemory {

    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20; // Linux values
    private static final long MIN_MAPPED = 1 << 20;
    private static final int MADV_HUGEPAGE = 14; // Linux value

    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MADVISE;

    static {
        MethodHandle mmap = null, munmap = null, madvise = null;
        if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
            } catch (RuntimeException | Error e) {
                // native access denied or libc symbols missing: use the arena
                mmap = null;
                munmap = null;
                madvise = null;
            }
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
    }

    private NativeMemory() {
    }

    /** bytes of zeroed memory, 64-byte aligned at least. */
    static MemorySegment allocate(long bytes) {
        if (MMAP != null && bytes >= MIN_MAPPED) {
            try {
                MemorySegment addr = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE,
                        MAP_PRIVATE_ANONYMOUS, -1, 0L);
                if (addr.address() != -1L && addr.address() != 0L) {
                    adviseHugePages(addr, bytes);
                    return addr.reinterpret(bytes, Arena.ofAuto(), seg -> unmap(seg, bytes));
                }
            } catch (Throwable e) {
                // fall back below
            }
        }
        return Arena.ofAuto().allocate(bytes, 64);
    }

    /**
     * Asks for 2 MiB transparent huge pages where the kernel gives them only on request ("madvise" mode, the
     * common default): packing first-touches every page, and on a virtual machine each 4 KiB fault costs
     * microseconds, so 2.6 GiB of weights took seconds of faults alone; the GEMM also streams these panels and
     * misses the TLB less with large pages. A refusal (THP off, old kernel) changes nothing but speed.
     */
    private static void adviseHugePages(MemorySegment addr, long bytes) {
        try {
            int ignored = (int) MADVISE.invokeExact(addr, bytes, MADV_HUGEPAGE);
        } catch (Throwable e) {
            // advice only
        }
    }

    private static void unmap(MemorySegment seg, long bytes) {
        try {
            int ignored = (int) MUNMAP.invokeExact(seg, bytes);
        } catch (Throwable e) {
            // nothing to do: the process keeps the pages
        }
    }
}
