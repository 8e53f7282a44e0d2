package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.Checkpoints;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.FmaPeak;
import dev.jlens.kernels.MemoryBandwidth;
import dev.jlens.kernels.RotaryEmbedding;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.model.ModelLocation;
import dev.jlens.load.ModelResolver;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;
import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {"Measure forward-pass speed, GFLOP/s against the FMA peak, and memory.",
                "Time the cached forward pass on synthetic token ids. Reports tokens/s,",
                "GFLOP/s (2 x weights x tokens for every matrix product, plus attention),",
                "that as a fraction of this machine's float32 FMA peak (measured first, in",
                "the same run), the load time and the peak memory (VmHWM)."},
        footer = {"", "Example (the docs/PERFORMANCE.md setting):",
                "  jlens synth --config pythia-1.4b --dtype f16 --out /tmp/p14",
                "  jlens bench --model /tmp/p14 --batch 16 --tokens 32 \\",
                "      --hooks 'blocks.*.hook_resid_post' --pool mean",
                "Generation (tokens/s at batch 1, 8 and 32 against the memory-bandwidth and FMA bounds):",
                "  jlens bench --model /tmp/p14 --generate --tokens 32 --new-tokens 32 --batches 1,8,32",
                "Early exit of a saved detector (ms/prompt up to its layer vs the full pass):",
                "  jlens bench --detector out/guard",
                "The HTTP service under load (8 keep-alive clients for 20 s, bad requests mixed in):",
                "  jlens bench --detector out/guard --serve --clients 8 --seconds 20",
                "What a guard costs a generation (tokens/s with and without, same run):",
                "  jlens bench --guard out/guard --tokens 64 --iterations 5"})
final class BenchCommand implements Callable<Integer> {

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "A model folder or an ORG/NAME in the Hugging Face cache (with --detector: overrides its model).")
    String model;

    @Option(names = "--detector", paramLabel = "DIR",
            description = {"Instead: time a saved detector on the built-in test prompts, one prompt per forward pass,",
                    "with the early exit and with the full forward pass, and report the compute saved."})
    Path detector;

    @Option(names = "--guard", paramLabel = "DIR",
            description = {"Instead: time a greedy KV-cache generation of --tokens new tokens with and without this saved",
                    "detector guarding it (flag mode, same tokens), alternating, and report the slowdown."})
    Path guard;

    @Option(names = "--serve",
            description = {"With --detector: load the HTTP service of jlens serve on loopback instead (keep-alive clients,",
                    "malformed and oversized bodies mixed in) and report scores/s, latency and every status."})
    boolean serve;

    @Option(names = "--clients", defaultValue = "8", paramLabel = "N", description = "With --serve: concurrent clients (default: ${DEFAULT-VALUE}).")
    int clients;

    @Option(names = "--seconds", defaultValue = "20", paramLabel = "S", description = "With --serve: how long the load runs (default: ${DEFAULT-VALUE}).")
    int seconds;

    @Option(names = "--revision", paramLabel = "REV", description = "For ORG/NAME models: branch, tag or commit.")
    String revision;

    @Option(names = "--batch", defaultValue = "16", paramLabel = "B", description = "Prompts per forward pass (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--tokens", defaultValue = "32", paramLabel = "T", description = "Tokens per prompt (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--hooks", defaultValue = "blocks.*.hook_resid_post", paramLabel = "PATTERN",
            description = "Hooks to cache (default: ${DEFAULT-VALUE}); the forward stops after the deepest one.")
    String hooks;

    @Option(names = "--pool", defaultValue = "mean", paramLabel = "P", description = "Pooling: all, mean, last, mean-skip-first (default: ${DEFAULT-VALUE}).")
    String pool;

    @Option(names = "--iterations", defaultValue = "3", paramLabel = "N", description = "Timed batches after one warm-up batch (default: ${DEFAULT-VALUE}).")
    int iterations;

    @Option(names = "--threads", paramLabel = "N", description = "Kernel threads (default: all cores).")
    Integer threads;

    @Option(names = "--generate",
            description = {"Instead: time greedy generation with the KV cache. For each --batches size B, B prompts",
                    "of --tokens synthetic ids are prefilled, then --new-tokens are decoded one step at a time.",
                    "Reports decode tokens/s, the weight bytes each step reads, the streaming read bandwidth",
                    "measured in the same run (a buffer of 4x the last-level cache, at least 512 MiB, so the",
                    "caches serve almost none of it) and the fraction of the bound (bytes per step / bandwidth)",
                    "reached, and GFLOP/s against the FMA peak (large batches are compute-bound)."})
    boolean generate;

    @Option(names = "--new-tokens", defaultValue = "32", paramLabel = "N",
            description = "With --generate: tokens to generate per prompt (default: ${DEFAULT-VALUE}).")
    int newTokens;

    @Option(names = "--batches", defaultValue = "1,8,32", split = ",", paramLabel = "B",
            description = "With --generate: batch sizes to time, comma-separated (default: ${DEFAULT-VALUE}).")
    List<Integer> batches;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of the synthetic token ids (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--steps-csv", paramLabel = "FILE",
            description = {"With --generate: also write every decode step to FILE as CSV (batch, step, ms, the",
                    "bandwidth of the round after it in GB/s, the fraction of the bound it reached), e.g. to",
                    "look only at the steps taken while the memory ran fast."})
    Path stepsCsv;

    @Override
    public Integer call() throws InterruptedException {
        if (guard != null) return GuardBench.run(guard, model, revision, iterations, tokens, System.out);
        if (serve && detector == null) throw new JlensException("--serve needs --detector DIR (the detector to serve)");
        if (detector != null && serve) return ServeBench.run(detector, model, revision, clients, seconds, System.out);
        if (detector != null) return DetectorBench.run(detector, model, revision, iterations, System.out);
        if (model == null) throw new JlensException("--model is required (or --detector DIR to time a detector's early exit)");
        int cores = Runtime.getRuntime().availableProcessors();
        int nThreads = threads == null ? cores : threads;
        if (nThreads < 1) throw new JlensException("--threads " + nThreads + ": expected a positive number");
        if (batch < 1) throw new JlensException("--batch " + batch + ": expected a positive number");
        if (tokens < 1) throw new JlensException("--tokens " + tokens + ": expected a positive number");
        if (iterations < 1) throw new JlensException("--iterations " + iterations + ": expected a positive number");
        Pooling pooling = Pooling.parse(pool);
        HookPattern pattern = HookPattern.parse(hooks);
        PrintStream out = System.out;

        ModelLocation loc = ModelResolver.fromSystem().resolve(model, revision);
        Path dir = loc.dir();
        if (dir == null || !Files.isDirectory(dir)) {
            throw new JlensException("--model " + model + ": bench needs a model folder or an ORG/NAME in the Hugging Face cache");
        }

        out.printf("machine      %s, %d cores, Java %s, %d float lanes%n", cpuModel(), cores, Runtime.version(),
                FloatVector.SPECIES_PREFERRED.length());
        double peak = FmaPeak.measureGflops(cores, 400);
        MemoryBandwidth.Probe bandwidth = null;
        long probeBytes = 0;
        out.printf(Locale.ROOT, "fma peak     %.1f GFLOP/s (float32, register-only FMA loop on %d threads)%n", peak, cores);
        if (generate) {
            if (newTokens < 2) throw new JlensException("--new-tokens " + newTokens + ": expected at least 2 (one from the prefill, then decode steps)");
            for (int b : batches) if (b < 1) throw new JlensException("--batches " + b + ": expected positive batch sizes");
            // One buffer for this line and every decode step's round (allocating and faulting in a buffer
            // several times the last-level cache each time would cost more than the rounds themselves).
            probeBytes = MemoryBandwidth.bufferBytes();
            bandwidth = new MemoryBandwidth.Probe(nThreads, probeBytes);
            double bw = 0;
            for (int r = 0; r < 3; r++) bw = Math.max(bw, bandwidth.round(300));
            out.printf(Locale.ROOT, "bandwidth    %.1f GB/s (streaming reads of %s, %s; best of three 300 ms rounds, %d threads;"
                    + " a 100 ms round after every decode step below)%n", bw / 1e9, Format.bytes(probeBytes),
                    probeBytes > MemoryBandwidth.MIN_BUFFER_BYTES
                            ? MemoryBandwidth.CACHE_MULTIPLE + "× the last-level cache" : "far beyond the caches",
                    nThreads);
        }
        Counting kernels = new Counting(Backend.cpu(nThreads));
        long t0 = System.nanoTime();
        ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
        TransformerModel m = ModelFamilies.forConfig(config).load(config, Checkpoints.open(dir), kernels);
        double loadSecs = (System.nanoTime() - t0) / 1e9;
        ModelInfo info = m.info();
        if (tokens > info.maxPositions()) {
            throw new JlensException("--tokens " + tokens + ": longer than the model's context of " + info.maxPositions());
        }
        out.printf(Locale.ROOT, "model        %s (%s, %d layers, d_model %d, %s weights, %s parameters)%n", dir,
                info.architecture(), info.nLayers(), info.dModel(), info.weightDType(), Format.count(info.parameterCount()));
        out.printf(Locale.ROOT, "load         %.2f s (memory-map + packing the weights, %d threads)%n", loadSecs, nThreads);

        if (generate) {
            GenerationBench.run(m, kernels, bandwidth, batches, tokens, newTokens, seed, stepsCsv, out);
            long hwm = peakRssKb();
            out.printf("peak RSS     %s%n", hwm < 0 ? "n/a (no /proc/self/status)"
                    : Format.bytes(hwm * 1024) + " (VmHWM, with the " + Format.bytes(probeBytes) + " bandwidth buffer)");
            return 0;
        }
        List<HookPoint> selected = pattern.select(m.hookPoints());
        if (selected.isEmpty()) throw new JlensException("--hooks \"" + hooks + "\" selects no hook point of this model");
        Random r = new Random(seed);
        int idLimit = Math.min(info.vocabSize(), 50277);
        List<int[]> prompts = new ArrayList<>();
        for (int p = 0; p < batch; p++) {
            int[] ids = new int[tokens];
            for (int i = 0; i < tokens; i++) ids[i] = r.nextInt(idLimit);
            prompts.add(ids);
        }
        out.printf("batch        %d prompts x %d tokens = %d tokens, hooks %s (%d points), pool %s, %d threads%n",
                batch, tokens, batch * tokens, hooks, selected.size(), pooling.cliName(), nThreads);

        HookedModel hm = new HookedModel(loc, m, null);
        CacheRequest request = CacheRequest.of(pattern).pooling(pooling).batchSize(batch);
        hm.runWithCache(prompts, request);
        double[] secs = new double[iterations];
        kernels.reset();
        for (int it = 0; it < iterations; it++) {
            long s0 = System.nanoTime();
            hm.runWithCache(prompts, request);
            secs[it] = (System.nanoTime() - s0) / 1e9;
            out.printf(Locale.ROOT, "iteration %d  %.3f s%n", it + 1, secs[it]);
        }
        double[] sorted = secs.clone();
        Arrays.sort(sorted);
        double best = sorted[0], median = sorted[sorted.length / 2];
        double flops = (kernels.matmulFlops + kernels.attentionFlops) / (double) iterations;
        double gflops = flops / median / 1e9;
        out.printf(Locale.ROOT, "forward      median %.3f s, best %.3f s per batch -> %.1f tokens/s%n",
                median, best, batch * tokens / median);
        out.printf(Locale.ROOT, "work         %.1f GFLOP per batch (matrix products %.1f, attention %.2f)%n", flops / 1e9,
                kernels.matmulFlops / (double) iterations / 1e9, kernels.attentionFlops / (double) iterations / 1e9);
        double total = Arrays.stream(secs).sum() / iterations;
        double mm = kernels.matmulNanos / 1e9 / iterations, at = kernels.attentionNanos / 1e9 / iterations;
        double other = kernels.otherNanos / 1e9 / iterations;
        out.printf(Locale.ROOT, "time         per batch: matrix products %.3f s (%.1f GFLOP/s), attention %.3f s, norms/"
                        + "activations/adds %.3f s, outside kernels %.3f s%n",
                mm, kernels.matmulFlops / (double) iterations / mm / 1e9, at, other, total - mm - at - other);
        out.printf(Locale.ROOT, "achieved     %.1f GFLOP/s (median) = %.1f%% of the measured peak; best %.1f GFLOP/s = %.1f%%%n",
                gflops, 100 * gflops / peak, flops / best / 1e9, 100 * flops / best / 1e9 / peak);
        long hwm = peakRssKb();
        out.printf("peak RSS     %s%n", hwm < 0 ? "n/a (no /proc/self/status)" : Format.bytes(hwm * 1024) + " (VmHWM)");
        return 0;
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) return line.substring(line.indexOf(':') + 1).trim();
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux: fall through
        }
        return System.getProperty("os.arch");
    }

    private static long peakRssKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", ""));
            }
        } catch (IOException | RuntimeException ignored) {
            // not Linux
        }
        return -1;
    }

    /**
     * Counts the floating-point work the model asks for, so GFLOP/s reflects what really ran, and the time
     * spent in each kind of operation, so the time outside the matrix products is visible. A decorator of the
     * backend: every operation is passed on unchanged.
     */
    static final class Counting implements Backend {
        private final Backend k;
        long matmulFlops;
        long attentionFlops;
        /** Bytes of the weight matrices the products read (each product reads its whole weight once). */
        long weightBytes;
        long matmulNanos;
        long attentionNanos;
        long otherNanos;

        Counting(Backend k) {
            this.k = k;
        }

        void reset() {
            matmulFlops = 0;
            attentionFlops = 0;
            weightBytes = 0;
            matmulNanos = 0;
            attentionNanos = 0;
            otherNanos = 0;
        }

        private void other(Runnable op) {
            long t0 = System.nanoTime();
            op.run();
            otherNanos += System.nanoTime() - t0;
        }

        @Override
        public String name() {
            return k.name();
        }

        @Override
        public int threads() {
            return k.threads();
        }

        @Override
        public DeviceTensor allocate(int rows, int cols) {
            return k.allocate(rows, cols);
        }

        @Override
        public DeviceTensor upload(float[] host, int rows, int cols) {
            return k.upload(host, rows, cols);
        }

        @Override
        public FloatTensor toHost(DeviceTensor t, int... shape) {
            return k.toHost(t, shape);
        }

        @Override
        public void fromHost(FloatTensor host, DeviceTensor t) {
            k.fromHost(host, t);
        }

        @Override
        public void copyRows(DeviceTensor src, int srcRow, DeviceTensor dst, int dstRow, int rows) {
            other(() -> k.copyRows(src, srcRow, dst, dstRow, rows));
        }

        @Override
        public void copyColumns(DeviceTensor src, int srcCol, DeviceTensor dst, int dstCol, int width) {
            other(() -> k.copyColumns(src, srcCol, dst, dstCol, width));
        }

        @Override
        public void prepare(WeightMatrix w) {
            k.prepare(w);
        }

        @Override
        public void matmul(DeviceTensor x, WeightMatrix w, float[] bias, DeviceTensor out) {
            matmulFlops += 2L * x.rows() * w.rows() * w.cols();
            weightBytes += (long) w.rows() * w.cols() * w.dtype().bytes();
            long t0 = System.nanoTime();
            k.matmul(x, w, bias, out);
            matmulNanos += System.nanoTime() - t0;
        }

        @Override
        public void matmuls(DeviceTensor x, WeightMatrix[] ws, float[][] biases, DeviceTensor[] outs) {
            for (WeightMatrix w : ws) {
                matmulFlops += 2L * x.rows() * w.rows() * w.cols();
                weightBytes += (long) w.rows() * w.cols() * w.dtype().bytes();
            }
            long t0 = System.nanoTime();
            k.matmuls(x, ws, biases, outs);
            matmulNanos += System.nanoTime() - t0;
        }

        @Override
        public void gather(WeightMatrix table, int[] ids, float scale, DeviceTensor out) {
            other(() -> k.gather(table, ids, scale, out));
        }

        @Override
        public void layerNorm(DeviceTensor x, DeviceTensor out, float[] gamma, float[] beta, float eps) {
            other(() -> k.layerNorm(x, out, gamma, beta, eps));
        }

        @Override
        public void rmsNorm(DeviceTensor x, DeviceTensor out, float[] gamma, float eps, boolean onePlus) {
            other(() -> k.rmsNorm(x, out, gamma, eps, onePlus));
        }

        @Override
        public void normStats(boolean layerNorm, DeviceTensor x, float eps, DeviceTensor scale, DeviceTensor normalized) {
            other(() -> k.normStats(layerNorm, x, eps, scale, normalized));
        }

        @Override
        public void rotary(DeviceTensor x, int nHeads, int headDim, int[] positions, RotaryEmbedding rope) {
            other(() -> k.rotary(x, nHeads, headDim, positions, rope));
        }

        @Override
        public void activate(DeviceTensor x, Activation act) {
            other(() -> k.activate(x, act));
        }

        @Override
        public void gatedActivate(DeviceTensor gate, DeviceTensor up, Activation act) {
            other(() -> k.gatedActivate(gate, up, act));
        }

        @Override
        public void add(DeviceTensor out, DeviceTensor a) {
            other(() -> k.add(out, a));
        }

        @Override
        public void softcap(DeviceTensor x, float cap) {
            other(() -> k.softcap(x, cap));
        }

        @Override
        public void attention(DeviceTensor q, DeviceTensor kk, DeviceTensor v, DeviceTensor out, AttentionLayout layout,
                              AttentionSpec spec, DeviceTensor pattern, DeviceTensor scores) {
            long pairs = 0;
            for (int s = 0; s < layout.sequences(); s++) {
                int qLen = layout.qLen()[s], kLen = layout.kLen()[s];
                for (int i = 0; i < qLen; i++) {
                    int qPos = kLen - qLen + i;
                    pairs += spec.endVisible(qPos, kLen) - spec.firstVisible(qPos);
                }
            }
            // q·k and p·v: two multiply-adds per head dimension per visible (query, key) pair
            attentionFlops += 4L * pairs * spec.nHeads() * spec.headDim();
            long t0 = System.nanoTime();
            k.attention(q, kk, v, out, layout, spec, pattern, scores);
            attentionNanos += System.nanoTime() - t0;
        }

        @Override
        public void softmaxScores(DeviceTensor scores, DeviceTensor pattern, AttentionLayout layout, AttentionSpec spec) {
            other(() -> k.softmaxScores(scores, pattern, layout, spec));
        }

        @Override
        public void mixValues(DeviceTensor pattern, DeviceTensor v, DeviceTensor out, AttentionLayout layout, AttentionSpec spec) {
            other(() -> k.mixValues(pattern, v, out, layout, spec));
        }
    }
}
