package dev.jlens.model;

import dev.jlens.testing.Fixtures;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Float comparisons between two runs that should agree. Not bitwise: the very first forward pass in a JVM
 * runs the Vector API kernels before the JIT compiles them, and their float sums can round differently by a
 * few ulps (seen: 9e-6 on logits of order 10).
 */
final class Close {
    static final double ATOL = 1e-5;

    private Close() {
    }

    static void assertClose(float[] want, float[] got, String what) {
        double diff = Fixtures.maxAbsDiff(want, got);
        assertTrue(diff <= ATOL, what + ": differs by " + diff);
    }

    static void assertDiffer(float[] a, float[] b, String what) {
        double diff = Fixtures.maxAbsDiff(a, b);
        assertTrue(diff > 100 * ATOL, what + ": expected a real difference, got " + diff);
    }
}
