package dev.jlens.cli;

import dev.jlens.generate.Sampler;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.AtomicFiles;
import dev.jlens.kernels.FmaPeak;
import dev.jlens.kernels.MemoryBandwidth;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.KvCache;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * {@code jlens bench --generate}: greedy decoding with the KV cache at several batch sizes, timed per step,
 * against the two bounds measured in the same run. At batch 1 a step reads every weight once for one token,
 * so the bound is (streaming bandwidth) ÷ (weight bytes per step); at batch 32 the same bytes serve 32
 * tokens and the FMA units become the limit. The decode loop is the one {@code Generator} runs (one
 * forward pass per step over the batch's new tokens, logits for the last token only), without the text
 * decoding, so that synthetic checkpoints (whose ids are not meaningful text) time the model alone.
 */
final class GenerationBench {

    private GenerationBench() {
    }

    /** @param probe the bandwidth buffer whose rounds run between the decode steps (its threads are the kernels') */
    static void run(TransformerModel m, BenchCommand.Counting kernels, MemoryBandwidth.Probe probe, List<Integer> batches,
                    int promptTokens, int newTokens, long seed, Path stepsCsv, PrintStream out) {
        StringBuilder csv = new StringBuilder("batch,step,ms,bandwidth_gb_per_s,reached\n");
        int threads = kernels.threads();
        int vocab = m.info().vocabSize();
        if (promptTokens + newTokens > m.info().maxPositions()) {
            throw new dev.jlens.JlensException("--tokens " + promptTokens + " + --new-tokens " + newTokens
                    + " is longer than the model's context of " + m.info().maxPositions());
        }
        int idLimit = Math.min(vocab, 50277);
        Random r = new Random(seed);
        out.printf(Locale.ROOT, "generate     prompts of %d tokens, %d new tokens each (1 from the prefill, %d decode steps)%n",
                promptTokens, newTokens, newTokens - 1);
        for (int b : batches) {
            List<int[]> prompts = prompts(r, b, promptTokens, idLimit);
            int warmTokens = Math.min(newTokens, WARM_UP_TOKENS);
            // One KV cache for this batch size's decodes, cleared by each, as a Generator keeps its last one; with
            // room for the timed decode from the first warm-up on.
            KvCache cache = KvCache.create(b, promptTokens + newTokens - 1);
            WarmUp w = warmUp(m, prompts, warmTokens, vocab, cache);
            String outcome = w.lastJitMillis() < 0 ? "this JVM does not report compile time, so one decode"
                    : w.quiet() ? String.format(Locale.ROOT, "the JIT compiled for %d ms during the last (under %.1f%% of each of"
                    + " the last two)", w.lastJitMillis(), 100 * QUIET_JIT_SHARE)
                    : String.format(Locale.ROOT, "stopped (at most %d decodes or %.0f s) with the JIT still compiling (%d ms"
                    + " during the last decode)", WARM_UP_MAX_DECODES, WARM_UP_MAX_NANOS / 1e9, w.lastJitMillis());
            out.printf(Locale.ROOT, "batch %-3d    warm-up %d decodes of %d tokens in %.1f s: %s%n", b, w.decodes(), warmTokens,
                    w.secs(), outcome);
            // The FMA peak is measured right before and right after each timing and averaged: on a shared
            // machine the share of the cores a process gets drifts within seconds. The bandwidth moves faster
            // still, so a short round follows every decode step, untimed, and each step is set against its own.
            double peak0 = FmaPeak.measureGflops(threads, 300);
            // One untimed pass over the bandwidth buffer: the first round after it had lain idle through the
            // model load and the warm-up read 3-13 GB/s where the next ones read 33 (measured 2026-12-07; the
            // cause is not known, a virtual machine reclaiming idle pages is a guess), and set against it, the
            // first step looked faster than the memory.
            probe.round(0);
            kernels.reset();
            int steps = newTokens - 1;
            double[] stepBandwidth = new double[steps];
            Timing t = decode(m, prompts, newTokens, vocab, cache, kernels, step -> stepBandwidth[step] = probe.round(BANDWIDTH_ROUND_MS));
            double peak = (peak0 + FmaPeak.measureGflops(threads, 300)) / 2;
            double tokPerS = (double) b * steps / t.decodeSecs();
            double bytesPerStep = kernels.weightBytes / (double) steps;
            double bw = median(stepBandwidth);
            double bound = b * bw / bytesPerStep;
            double[] reached = new double[steps];
            for (int i = 0; i < steps; i++) {
                reached[i] = bytesPerStep / t.stepSecs()[i] / stepBandwidth[i];
                csv.append(String.format(Locale.ROOT, "%d,%d,%.3f,%.2f,%.4f%n", b, i, 1000 * t.stepSecs()[i],
                        stepBandwidth[i] / 1e9, reached[i]));
            }
            double gflops = (kernels.matmulFlops + kernels.attentionFlops) / t.decodeSecs() / 1e9;
            out.printf(Locale.ROOT, "batch %-3d    prefill %.2f s; decode %.2f s = %.2f tokens/s (%.1f ms/step)%n",
                    b, t.prefillSecs(), t.decodeSecs(), tokPerS, 1000 * t.decodeSecs() / steps);
            out.printf(Locale.ROOT, "             weights %.2f GB/step, bandwidth %.1f GB/s (median of a %d ms round after each step,"
                            + " %.1f-%.1f) -> bound %.2f tokens/s, reached %.0f%% (median of each step against its round)%n",
                    bytesPerStep / 1e9, bw / 1e9, BANDWIDTH_ROUND_MS, min(stepBandwidth) / 1e9, max(stepBandwidth) / 1e9,
                    bound, 100 * median(reached));
            out.printf(Locale.ROOT, "             steps: %.0f%% to %.0f%% of the bound, %d of %d at 80%% or more%n",
                    100 * min(reached), 100 * max(reached), steps - countBelow(reached, 0.8), steps);
            out.printf(Locale.ROOT, "             %.1f GFLOP/s of a %.1f GFLOP/s FMA peak = %.0f%%%n", gflops, peak, 100 * gflops / peak);
            double ms = 1e-6 / steps;
            out.printf(Locale.ROOT, "             per step: matrix products %.1f ms (%.1f GB/s of weights), attention %.1f ms,"
                            + " norms/activations/copies %.1f ms, outside kernels %.1f ms (garbage collection %.1f ms; %.1f MB allocated)%n",
                    kernels.matmulNanos * ms, kernels.weightBytes / (kernels.matmulNanos / 1e9) / 1e9,
                    kernels.attentionNanos * ms, kernels.otherNanos * ms,
                    1000 * t.decodeSecs() / steps - (kernels.matmulNanos + kernels.attentionNanos + kernels.otherNanos) * ms,
                    (double) t.gcMillis() / steps, t.allocatedBytes() / 1e6 / steps);
        }
        if (stepsCsv != null) {
            AtomicFiles.writeString(stepsCsv, csv.toString());
            out.printf("steps        written to %s%n", stepsCsv);
        }
    }

    /** How many of the values are below the threshold. */
    static int countBelow(double[] v, double threshold) {
        int n = 0;
        for (double x : v) if (x < threshold) n++;
        return n;
    }

    /** Tokens per warm-up decode (fewer when the timed run generates fewer). */
    static final int WARM_UP_TOKENS = 16;
    /**
     * A warm-up decode during which the JIT compiled for less than this share of its wall time counts as quiet;
     * two in a row end the warm-up (batch 1: about 6 ms of a 1.2 s decode).
     */
    static final double QUIET_JIT_SHARE = 0.005;
    /** Bounds on the warm-up: a tiny model's decodes take milliseconds and may never pass the share test. */
    static final long WARM_UP_MAX_NANOS = 30_000_000_000L;
    static final int WARM_UP_MAX_DECODES = 20;

    private record WarmUp(int decodes, double secs, boolean quiet, long lastJitMillis) {
    }

    /**
     * Untimed decodes of the timed run's shape until two in a row pass with the JIT (nearly) idle, within
     * {@link #WARM_UP_MAX_DECODES} and {@link #WARM_UP_MAX_NANOS}: the steady state is what the timed steps
     * should measure. A decode step calls each kernel entry point ~65 times, so C2 reaches the per-call methods
     * (Gemm.multiplyAll, the backend's matmul) only after a few hundred steps; with every core running the
     * kernels, each compilation before that takes a core from them for milliseconds. Measured 2026-12-07 on
     * Llama-3.2-1B BF16: after the former 5-step warm-up the JIT compiled for 156 ms during the 31 timed steps
     * and the kernel worker started jobs late by 0.6-0.9 ms per step; after 41 steps, 16 ms and 0.2 ms.
     * lastJitMillis is -1 where the JVM does not report compile time (one decode is run then).
     */
    private static WarmUp warmUp(TransformerModel m, List<int[]> prompts, int tokens, int vocab, KvCache cache) {
        var jit = java.lang.management.ManagementFactory.getCompilationMXBean();
        boolean timed = jit != null && jit.isCompilationTimeMonitoringSupported();
        long t0 = System.nanoTime();
        int decodes = 0, quietInARow = 0;
        while (true) {
            long before = timed ? jit.getTotalCompilationTime() : 0;
            long d0 = System.nanoTime();
            decode(m, prompts, tokens, vocab, cache);
            double wallMillis = (System.nanoTime() - d0) / 1e6;
            decodes++;
            long last = timed ? jit.getTotalCompilationTime() - before : -1;
            // Two in a row: the compile queue drains in bursts, and one decode can fall into a lull.
            quietInARow = timed && last < QUIET_JIT_SHARE * wallMillis ? quietInARow + 1 : 0;
            if (quietInARow == 2 || !timed || decodes == WARM_UP_MAX_DECODES || System.nanoTime() - t0 > WARM_UP_MAX_NANOS) {
                return new WarmUp(decodes, (System.nanoTime() - t0) / 1e9, quietInARow == 2, last);
            }
        }
    }

    /** Long enough for several passes of every thread over its share, short next to a batch-32 step. */
    static final int BANDWIDTH_ROUND_MS = 100;

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int n = s.length;
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    }

    private static double min(double[] v) {
        return Arrays.stream(v).min().orElse(Double.NaN);
    }

    private static double max(double[] v) {
        return Arrays.stream(v).max().orElse(Double.NaN);
    }

    /**
     * stepSecs: each decode step's forward pass and token choice, without the rounds run between steps;
     * gcMillis: collection time the JVM reports for the decode steps and the rounds between them (the rounds
     * allocate nothing, so it is the steps'). A pause lands in whichever step allocates when the young
     * generation is full, usually the first collection after the prefill copying the KV cache it made;
     * allocatedBytes: what every thread allocated over the same span.
     */
    private record Timing(double prefillSecs, double decodeSecs, double[] stepSecs, long gcMillis, long allocatedBytes) {
    }

    /**
     * Bytes allocated so far by all threads, or 0 where the JVM cannot tell. A decoding step allocates about a
     * megabyte (logits, small tensors); hundreds mean a kernel's vectors were not kept in registers (see
     * StreamingKernels), which is how that failure was found.
     */
    private static long allocatedBytes() {
        return java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean t
                && t.isThreadAllocatedMemorySupported() && t.isThreadAllocatedMemoryEnabled() ? t.getTotalThreadAllocatedBytes() : 0;
    }

    /** Milliseconds of collection so far, over every collector (-1 where the JVM cannot tell, counted as 0). */
    private static long gcMillis() {
        long total = 0;
        for (var gc : java.lang.management.ManagementFactory.getGarbageCollectorMXBeans()) total += Math.max(0, gc.getCollectionTime());
        return total;
    }

    private static List<int[]> prompts(Random r, int n, int tokens, int idLimit) {
        List<int[]> p = new ArrayList<>();
        for (int s = 0; s < n; s++) {
            int[] ids = new int[tokens];
            for (int i = 0; i < tokens; i++) ids[i] = r.nextInt(idLimit);
            p.add(ids);
        }
        return p;
    }

    private static Timing decode(TransformerModel m, List<int[]> prompts, int newTokens, int vocab, KvCache cache) {
        return decode(m, prompts, newTokens, vocab, cache, null, step -> { });
    }

    /**
     * Prefill, then newTokens − 1 greedy steps, each timed alone and followed by afterStep (untimed), into cache
     * (cleared first); the counters (when given) are reset after the prefill.
     */
    private static Timing decode(TransformerModel m, List<int[]> prompts, int newTokens, int vocab, KvCache cache,
                                 BenchCommand.Counting counting, java.util.function.IntConsumer afterStep) {
        int n = prompts.size();
        // Every sequence ends with this many tokens cached (the last new token is never fed back).
        int cached = prompts.getFirst().length + newTokens - 1;
        cache.clear();
        long t0 = System.nanoTime();
        FloatTensor logits = m.forward(cache.batch(prompts), ForwardOptions.lastTokenLogits(), Hooks.none(), cache);
        long t1 = System.nanoTime();
        if (counting != null) counting.reset();
        long gc0 = gcMillis(), alloc0 = allocatedBytes();
        double[] stepSecs = new double[Math.max(0, newTokens - 1)];
        double total = 0;
        for (int step = 1; step < newTokens; step++) {
            long s0 = System.nanoTime();
            List<int[]> next = new ArrayList<>(n);
            for (int s = 0; s < n; s++) next.add(new int[]{Sampler.argmax(logits.data(), s * vocab, vocab)});
            logits = m.forward(cache.batch(next), ForwardOptions.lastTokenLogits(), Hooks.none(), cache);
            stepSecs[step - 1] = (System.nanoTime() - s0) / 1e9;
            total += stepSecs[step - 1];
            afterStep.accept(step - 1);
        }
        if (Arrays.stream(cache.lengths()).anyMatch(l -> l != cached)) {
            throw new IllegalStateException("decode loop lost a token");
        }
        return new Timing((t1 - t0) / 1e9, total, stepSecs, gcMillis() - gc0, allocatedBytes() - alloc0);
    }
}
