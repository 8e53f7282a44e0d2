package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The three interventions do exactly what their formulas say, read back by a hook placed after them: ablation
 * leaves no component along r̂ anywhere it acts (or downstream in the residual stream), addition moves the
 * projection by α and nothing else, clamping sets it; and the token scope separates prompt from generated rows.
 */
class InterventionTest {

    static float[] randomDirection(int d, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] r = new float[d];
        double n = 0;
        for (int i = 0; i < d; i++) {
            r[i] = (float) rng.nextGaussian();
            n += (double) r[i] * r[i];
        }
        for (int i = 0; i < d; i++) r[i] = (float) (r[i] / Math.sqrt(n));
        return r;
    }

    /** Per hook name, the rows it saw: [row][d] copies. */
    static final class Recorder {
        final Map<String, List<double[]>> rows = new HashMap<>();
        final Map<String, List<Integer>> positions = new HashMap<>();

        FloatTensor record(HookPoint p, FloatTensor v, TokenBatch batch) {
            int d = v.cols();
            int[] pos = batch.positions();
            for (int t = 0; t < v.rows(); t++) {
                double[] x = new double[d];
                for (int j = 0; j < d; j++) x[j] = v.data()[t * d + j];
                rows.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(x);
                positions.computeIfAbsent(p.name(), k -> new ArrayList<>()).add(pos[t]);
            }
            return v;
        }
    }

    static double proj(double[] x, float[] r) {
        double p = 0;
        for (int j = 0; j < x.length; j++) p += x[j] * r[j];
        return p;
    }

    static double norm(double[] x) {
        double s = 0;
        for (double v : x) s += v * v;
        return Math.sqrt(s);
    }

    static List<int[]> prompts(HookedModel m) {
        return List.of(m.encode("Lily saw a big ball and she was happy", null), m.encode("The cat sat", null),
                m.encode("Once upon a time, 2+2=4!", null));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt2_tiny", "llama_tiny", "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny",
            "olmo2_tiny"})
    void ablationLeavesNoComponentAlongTheDirection(String fixture) {
        try (HookedModel m = TestModels.load(fixture)) {
            float[] r = randomDirection(m.info().dModel(), 5);
            Intervention ablate = Intervention.ablate(r, Intervention.everyLayer(m.model()));
            ablate.checkFor(m.model());
            Recorder rec = new Recorder();
            Predicate<String> watched = n -> n.matches("blocks\\.\\d+\\.hook_(resid_pre|attn_out|mlp_out|resid_mid|resid_post)");
            Hooks hooks = ablate.addTo(Hooks.none(), null).with(watched, rec::record);
            m.model().forward(TokenBatch.of(prompts(m)), dev.jlens.model.ForwardOptions.full(), hooks);
            int checked = 0;
            double worst = 0;
            for (var e : rec.rows.entrySet()) {
                for (double[] x : e.getValue()) {
                    worst = Math.max(worst, Math.abs(proj(x, r)) / Math.max(norm(x), 1e-30));
                    checked++;
                }
            }
            long watchedPoints = m.hookPoints().stream().filter(p -> watched.test(p.name())).count();
            int tokens = prompts(m).stream().mapToInt(p -> p.length).sum();
            assertEquals(watchedPoints * tokens, checked, "every row of every watched hook is checked");
            assertTrue(worst < 1e-5, fixture + ": largest |x·r̂|/‖x‖ after ablation " + worst);

            // Without the ablation the same activations do have a component along r̂.
            Recorder plain = new Recorder();
            m.model().forward(TokenBatch.of(prompts(m)), dev.jlens.model.ForwardOptions.full(), Hooks.none().with(watched, plain::record));
            double largest = 0;
            for (var e : plain.rows.values()) for (double[] x : e) largest = Math.max(largest, Math.abs(proj(x, r)) / norm(x));
            assertTrue(largest > 1e-2, "an unablated model has components along a random direction: " + largest);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt2_tiny", "llama_tiny", "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny",
            "olmo2_tiny"})
    void additionShiftsTheProjectionByAlphaAndClampingSetsIt(String fixture) {
        try (HookedModel m = TestModels.load(fixture)) {
            float[] r = randomDirection(m.info().dModel(), 9);
            for (Intervention.Mode mode : List.of(Intervention.Mode.ADD, Intervention.Mode.CLAMP)) {
                double value = mode == Intervention.Mode.ADD ? 3.7 : -2.5;
                String hook = mode == Intervention.Mode.ADD ? "blocks.1.hook_resid_pre" : "blocks.1.hook_mlp_out";
                Intervention iv = mode == Intervention.Mode.ADD ? Intervention.add(r, value, List.of(hook), TokenScope.BOTH)
                        : Intervention.clamp(r, value, List.of(hook), TokenScope.BOTH);
                Recorder before = new Recorder(), after = new Recorder();
                Hooks hooks = iv.addTo(Hooks.none().with(hook, before::record), null).with(hook, after::record);
                m.model().forward(TokenBatch.of(prompts(m)), dev.jlens.model.ForwardOptions.full(), hooks);
                List<double[]> b = before.rows.get(hook), a = after.rows.get(hook);
                assertEquals(b.size(), a.size());
                for (int t = 0; t < a.size(); t++) {
                    double want = mode == Intervention.Mode.ADD ? proj(b.get(t), r) + value : value;
                    double tol = 1e-5 * Math.max(1, norm(b.get(t)));
                    assertEquals(want, proj(a.get(t), r), tol, fixture + " " + mode + " row " + t);
                    // Only the component along r̂ changes.
                    double pb = proj(b.get(t), r), pa = proj(a.get(t), r);
                    for (int j = 0; j < r.length; j++) {
                        assertEquals(b.get(t)[j] - pb * r[j], a.get(t)[j] - pa * r[j], tol, "orthogonal part, dim " + j);
                    }
                }
            }
        }
    }

    @Test
    void tokenScopeSeparatesPromptFromGeneratedTokens() {
        try (HookedModel m = TestModels.load("llama_tiny")) {
            float[] r = randomDirection(m.info().dModel(), 13);
            String hook = "blocks.2.hook_resid_pre";
            List<int[]> ps = prompts(m);
            int[] lengths = ps.stream().mapToInt(p -> p.length).toArray();
            for (TokenScope scope : TokenScope.values()) {
                Recorder before = new Recorder(), after = new Recorder();
                Intervention iv = Intervention.add(r, 5.0, List.of(hook), scope);
                Hooks hooks = iv.addTo(Hooks.none().with(hook, before::record), lengths).with(hook, after::record);
                new Generator(m).generate(ps, GenerationConfig.greedy(4).withStopAtEos(false), hooks, null);
                List<double[]> b = before.rows.get(hook), a = after.rows.get(hook);
                List<Integer> pos = before.positions.get(hook);
                int promptRows = 0, generatedRows = 0;
                // Rows arrive per step in sequence order; map each back to its sequence through the step layout.
                int row = 0;
                List<Integer> seqOfRow = new ArrayList<>();
                for (int s = 0; s < ps.size(); s++) for (int i = 0; i < lengths[s]; i++) seqOfRow.add(s);
                for (int step = 0; step < 3; step++) for (int s = 0; s < ps.size(); s++) seqOfRow.add(s);
                for (double[] x : b) {
                    int s = seqOfRow.get(row);
                    boolean generated = pos.get(row) >= lengths[s];
                    double shift = proj(a.get(row), r) - proj(x, r);
                    double want = scope.includes(generated) ? 5.0 : 0.0;
                    assertEquals(want, shift, 1e-4 * Math.max(1, norm(x)), scope + " row " + row + " generated=" + generated);
                    if (generated) generatedRows++;
                    else promptRows++;
                    row++;
                }
                assertEquals(lengths[0] + lengths[1] + lengths[2], promptRows);
                assertEquals(3 * 3, generatedRows);
            }
        }
    }

    @Test
    void badInterventionsAreClearErrors() {
        try (HookedModel m = TestModels.load("llama_tiny")) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Intervention.add(new float[32], 1, List.of("blocks.0.hook_resid_pre"), TokenScope.BOTH));
            assertTrue(e.getMessage().contains("zero"), e.getMessage());
            Intervention wide = Intervention.add(randomDirection(128, 1), 1, List.of("blocks.0.hook_resid_pre"), TokenScope.BOTH);
            e = assertThrows(JlensException.class, () -> wide.checkFor(m.model()));
            assertTrue(e.getMessage().contains("128") && e.getMessage().contains("64"), e.getMessage());
            Intervention missing = Intervention.ablate(randomDirection(64, 1), List.of("blocks.9.hook_resid_pre"));
            e = assertThrows(JlensException.class, () -> missing.checkFor(m.model()));
            assertTrue(e.getMessage().contains("blocks.9.hook_resid_pre") && e.getMessage().contains("blocks.{0..2}"), e.getMessage());
            assertThrows(JlensException.class, () -> Intervention.Mode.parse("steer"));
            assertThrows(JlensException.class, () -> TokenScope.parse("some"));
            assertEquals(HookKind.RESID_PRE, m.hookPoints().get(1).kind());
        }
    }
}
