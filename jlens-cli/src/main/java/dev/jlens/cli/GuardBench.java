package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.GenerationGuard;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code jlens bench --guard D}: what guarding a generation costs. The same greedy KV-cache generation (a fixed
 * prompt, end-of-sequence ignored, {@code tokens} new tokens) runs with and without the detector's guard in flag
 * mode (so both make the same tokens), alternating within each round so that machine load hits both alike;
 * reported: tokens/s of each and the slowdown, median over the rounds.
 */
final class GuardBench {

    private GuardBench() {
    }

    static int run(Path dir, String model, String revision, int rounds, int tokens, PrintStream out) {
        if (rounds < 1) throw new JlensException("--iterations " + rounds + ": expected a positive number");
        if (tokens < 2) throw new JlensException("--tokens " + tokens + ": expected at least 2 new tokens");
        HookedModel m = model == null ? null : ModelLoader.load(model, revision);
        try (Detector d = m == null ? Detector.load(dir) : Detector.load(dir, m)) {
            if (!d.model().info().causal()) {
                throw new JlensException("--guard: the detector's model " + d.model().location().id() + " cannot generate (an encoder)");
            }
            Generator generator = new Generator(d.model());
            int[] prompt = d.promptIds("Write a short story about a lighthouse keeper who finds a message in a bottle.", null);
            GenerationConfig config = GenerationConfig.greedy(tokens).withStopAtEos(false);
            out.printf(Locale.ROOT, "detector     %s: %s at %s (layer %d of %d), %s of the token scores, model %s (d_model %d)%n", dir,
                    d.params().kind().cliName(), d.hook(), d.layer(), d.model().info().nLayers(), d.aggregation().cliName(),
                    d.model().location().id(), d.model().info().dModel());
            out.printf(Locale.ROOT, "generation   greedy, KV cache, %d-token prompt, %d new tokens, %d cores; guard in flag mode%n",
                    prompt.length, tokens, Runtime.getRuntime().availableProcessors());
            // warm-up: the JIT compiles the kernels and the guard's scoring
            for (int i = 0; i < 2; i++) {
                generator.generate(prompt, config, Hooks.none(), null);
                guarded(d, generator, prompt, config);
            }
            double[] plain = new double[rounds], withGuard = new double[rounds];
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < 2; k++) {
                    boolean guard = (k == 0) == (r % 2 == 0);
                    long t0 = System.nanoTime();
                    Generation g = guard ? guarded(d, generator, prompt, config) : generator.generate(prompt, config, Hooks.none(), null);
                    double tps = g.newIds().length / ((System.nanoTime() - t0) / 1e9);
                    if (guard) withGuard[r] = tps;
                    else plain[r] = tps;
                }
                out.printf(Locale.ROOT, "round %d      without guard %.1f tokens/s, with guard %.1f tokens/s%n", r + 1, plain[r], withGuard[r]);
            }
            double mp = median(plain), mg = median(withGuard);
            double[] ratio = new double[rounds];
            for (int r = 0; r < rounds; r++) ratio[r] = withGuard[r] / plain[r];
            out.printf(Locale.ROOT, "without      %.1f tokens/s (median of %d rounds)%n", mp, rounds);
            out.printf(Locale.ROOT, "with guard   %.1f tokens/s%n", mg);
            out.printf(Locale.ROOT, "overhead     %.1f%% slower (median of the per-round ratios: %.3f)%n", 100 * (1 - median(ratio)), median(ratio));
            return 0;
        } finally {
            if (m != null) m.close();
        }
    }

    private static Generation guarded(Detector d, Generator generator, int[] prompt, GenerationConfig config) {
        GenerationGuard guard = new GenerationGuard(d, GenerationGuard.Mode.FLAG, new int[] {prompt.length}, null);
        return generator.generate(List.of(prompt), config, guard.hooks(Hooks.none()), null, guard.stopCheck()).getFirst();
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
