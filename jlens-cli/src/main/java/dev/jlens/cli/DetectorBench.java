package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.ProbeData;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * {@code jlens bench --detector D}: what the early exit saves. Each built-in test prompt is scored one at a
 * time, as a service would, once stopping after the detector's layer and once running the whole model with its
 * output layer; the two modes alternate prompt by prompt so that a change in machine load hits both alike.
 */
final class DetectorBench {

    private DetectorBench() {
    }

    static int run(Path dir, String model, String revision, int rounds, PrintStream out) {
        if (rounds < 1) throw new JlensException("--iterations " + rounds + ": expected a positive number");
        HookedModel m = model == null ? null : ModelLoader.load(model, revision);
        try (Detector d = m == null ? Detector.load(dir) : Detector.load(dir, m)) {
            List<String> prompts = ProbeData.builtin().examples().stream()
                    .filter(e -> e.split().equals("test")).map(ProbeData.Example::text).toList();
            int nLayers = d.model().info().nLayers();
            double tokens = prompts.stream().mapToInt(t -> d.model().encode(t, null).length).average().orElse(0);
            out.printf(Locale.ROOT, "detector     %s: %s at %s (layer %d), model %s (%d layers, d_model %d)%n", dir,
                    d.params().kind().cliName(), d.hook(), d.layer(), d.model().location().id(), nLayers, d.model().info().dModel());
            out.printf(Locale.ROOT, "prompts      %d (built-in test split), %.1f tokens on average, one prompt per forward pass, "
                    + "%d cores%n", prompts.size(), tokens, Runtime.getRuntime().availableProcessors());
            // Warm-up: the JIT compiles the kernels in the first few hundred calls.
            for (int i = 0; i < Math.min(40, prompts.size()); i++) {
                d.score(prompts.get(i), true);
                d.score(prompts.get(i), false);
            }
            double[] early = new double[rounds], full = new double[rounds];
            double maxDiff = 0;
            for (int r = 0; r < rounds; r++) {
                long te = 0, tf = 0;
                for (int i = 0; i < prompts.size(); i++) {
                    String p = prompts.get(i);
                    boolean earlyFirst = (i + r) % 2 == 0;
                    Detector.Score a = null, b = null;
                    for (int k = 0; k < 2; k++) {
                        boolean e = earlyFirst == (k == 0);
                        long t0 = System.nanoTime();
                        Detector.Score s = d.score(p, e);
                        long dt = System.nanoTime() - t0;
                        if (e) {
                            te += dt;
                            a = s;
                        } else {
                            tf += dt;
                            b = s;
                        }
                    }
                    maxDiff = Math.max(maxDiff, Math.abs(a.logit() - b.logit()));
                }
                early[r] = te / 1e6 / prompts.size();
                full[r] = tf / 1e6 / prompts.size();
                out.printf(Locale.ROOT, "round %d      early exit %.2f ms/prompt, full forward %.2f ms/prompt%n", r + 1, early[r], full[r]);
            }
            double me = median(early), mf = median(full);
            out.printf(Locale.ROOT, "early exit   %.2f ms/prompt (median of %d rounds): blocks 0..%d, %d of %d%n", me, rounds,
                    d.blocksRun() - 1, d.blocksRun(), nLayers);
            out.printf(Locale.ROOT, "full forward %.2f ms/prompt: all %d blocks and the output layer%n", mf, nLayers);
            out.printf(Locale.ROOT, "saved        %.0f%% of the time per prompt (%.2fx faster); scores %s%n", 100 * (1 - me / mf),
                    mf / me, maxDiff == 0 ? "identical in both modes" : String.format(Locale.ROOT, "differ by up to %.3g in logit", maxDiff));
            return 0;
        } finally {
            if (m != null) m.close();
        }
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }
}
