package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Measures the machine's float32 FMA peak the way the kernels can reach it: a register-only Vector API loop
 * of independent fused multiply-adds on every thread at once, no memory traffic. Benchmarks report their
 * GFLOP/s as a fraction of this figure, measured in the same run (clock speeds under load, turbo and
 * virtualisation make a datasheet number misleading).
 */
public final class FmaPeak {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Independent accumulators: more than FMA latency × FMA ports on current x86 and ARM cores. */
    private static final int CHAINS = 16;

    private FmaPeak() {
    }

    /** Iterations per timed chunk: about a millisecond, so the deadline check costs nothing. */
    private static final long CHUNK = 1 << 15;

    /**
     * GFLOP/s (one FMA = 2 FLOP) of {@code threads} threads running at once, the best of three rounds of
     * about {@code roundMillis} each, after a warm-up that lets the JIT compile the loop on every thread.
     */
    public static double measureGflops(int threads, long roundMillis) {
        if (threads < 1) throw new IllegalArgumentException("threads must be at least 1");
        round(threads, Math.max(200, roundMillis));
        double best = 0;
        for (int r = 0; r < 3; r++) best = Math.max(best, round(threads, roundMillis));
        return best;
    }

    private static double round(int threads, long millis) {
        double chunksPerSecond = TimedRounds.unitsPerSecond(threads, millis, "fma-peak", (id, deadline) -> {
            long n = 0;
            float acc = 0;
            do {
                acc += chains(CHUNK);
                n++;
            } while (System.nanoTime() < deadline);
            sink(acc);
            return n;
        });
        return chunksPerSecond * CHUNK * CHAINS * S.length() * 2 / 1e9;
    }

    private static volatile float sinkValue;

    private static void sink(float v) {
        sinkValue = v;
    }

    /** CHAINS accumulators, each a dependent chain of FMAs; the values stay bounded (a contraction). */
    private static float chains(long iters) {
        FloatVector m = FloatVector.broadcast(S, 0.999999f), c = FloatVector.broadcast(S, 1e-6f);
        FloatVector a0 = FloatVector.broadcast(S, 1f), a1 = a0.add(0.01f), a2 = a0.add(0.02f), a3 = a0.add(0.03f);
        FloatVector a4 = a0.add(0.04f), a5 = a0.add(0.05f), a6 = a0.add(0.06f), a7 = a0.add(0.07f);
        FloatVector a8 = a0.add(0.08f), a9 = a0.add(0.09f), a10 = a0.add(0.10f), a11 = a0.add(0.11f);
        FloatVector a12 = a0.add(0.12f), a13 = a0.add(0.13f), a14 = a0.add(0.14f), a15 = a0.add(0.15f);
        for (long i = 0; i < iters; i++) {
            a0 = a0.fma(m, c); a1 = a1.fma(m, c); a2 = a2.fma(m, c); a3 = a3.fma(m, c);
            a4 = a4.fma(m, c); a5 = a5.fma(m, c); a6 = a6.fma(m, c); a7 = a7.fma(m, c);
            a8 = a8.fma(m, c); a9 = a9.fma(m, c); a10 = a10.fma(m, c); a11 = a11.fma(m, c);
            a12 = a12.fma(m, c); a13 = a13.fma(m, c); a14 = a14.fma(m, c); a15 = a15.fma(m, c);
        }
        return a0.add(a1).add(a2).add(a3).add(a4).add(a5).add(a6).add(a7).add(a8).add(a9).add(a10).add(a11)
                .add(a12).add(a13).add(a14).add(a15).reduceLanes(VectorOperators.ADD);
    }
}
