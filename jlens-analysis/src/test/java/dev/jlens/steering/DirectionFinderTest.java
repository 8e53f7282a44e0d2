package dev.jlens.steering;

import dev.jlens.model.CacheRequest;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.ProgressListener;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DirectionFinderTest {

    @TempDir
    Path tmp;

    static PromptSet set(String name, String... texts) {
        List<Prompt> ps = new ArrayList<>();
        for (int i = 0; i < texts.length; i++) ps.add(new Prompt(name + "-" + i, texts[i], name, name, "train"));
        return PromptSet.of(name, ps);
    }

    static final PromptSet HAPPY = set("happy", "Lily was so happy and she laughed", "The sun was warm and the birds sang.",
            "Tom smiled at his new friend!", "They played in the park all day and had fun");
    static final PromptSet SAD = set("sad", "Lily was sad and she cried.", "The rain fell and the bird was alone",
            "Tom frowned because he lost his toy", "Nobody came to play and he felt lonely.");

    @ParameterizedTest
    @ValueSource(strings = {"llama_tiny", "qwen3_tiny", "gemma2_tiny", "olmo2_tiny"})
    void differenceInMeansMatchesTheCachedClassMeans(String fixture) {
        try (HookedModel m = TestModels.load(fixture)) {
            HookPattern hooks = HookPattern.parse("blocks.*.hook_resid_pre,blocks.1.hook_mlp_out");
            DirectionFinder.Options opts = new DirectionFinder.Options(hooks, TokenPosition.parseList("last,mean"),
                    DirectionMethod.DIFF_MEANS, 3, 1.0);
            DirectionSet set = DirectionFinder.compute(m, HAPPY, SAD, opts, ProgressListener.NONE, null, "test");
            assertEquals(2 * (m.info().nLayers() + 1), set.directions().size());
            for (Pooling pool : List.of(Pooling.LAST, Pooling.MEAN)) {
                List<int[]> a = HAPPY.texts().stream().map(t -> m.encode(t, null)).toList();
                List<int[]> b = SAD.texts().stream().map(t -> m.encode(t, null)).toList();
                ActivationCache ca = m.runWithCache(a, CacheRequest.of(hooks).pooling(pool).batchSize(1));
                ActivationCache cb = m.runWithCache(b, CacheRequest.of(hooks).pooling(pool).batchSize(1));
                for (String hook : ca.names()) {
                    double[] diff = meanDiff(ca.pooledAsDouble(hook), cb.pooledAsDouble(hook));
                    double norm = Math.sqrt(dot(diff, diff));
                    Direction d = set.find(hook, pool == Pooling.LAST ? "last" : "mean");
                    assertNotNull(d, hook);
                    assertEquals(norm, d.norm(), 1e-5 * Math.max(1, norm), hook);
                    for (int j = 0; j < diff.length; j++) assertEquals(diff[j] / norm, d.unit()[j], 1e-5, hook + " dim " + j);
                    assertEquals(d.meanProjB() - d.meanProjA(), d.norm(), 1e-6 * Math.max(1, norm));
                    assertEquals(4, d.nA());
                    assertEquals(1.0, d.cosToDiffMeans(), 1e-9);
                }
            }
        }
    }

    @Test
    void pcaAndProbeFindAPlantedDirection() {
        int d = 24, n = 150;
        SplittableRandom rng = new SplittableRandom(1);
        double[] v = new double[d];
        for (int j = 0; j < d; j++) v[j] = rng.nextGaussian();
        double vn = Math.sqrt(dot(v, v));
        for (int j = 0; j < d; j++) v[j] /= vn;
        DirectionFinder.Stats a = new DirectionFinder.Stats(d, n, true), b = new DirectionFinder.Stats(d, n, true);
        for (int i = 0; i < n; i++) {
            float[] x = new float[d], y = new float[d];
            for (int j = 0; j < d; j++) {
                x[j] = (float) rng.nextGaussian();
                y[j] = (float) (x[j] + 2 * v[j] + 0.05 * rng.nextGaussian());   // pairs differ by 2v plus noise
            }
            add(a, x, i);
            add(b, y, i);
        }
        HookPoint p = HookPoint.of(HookKind.RESID_PRE, 0);
        for (DirectionMethod method : DirectionMethod.fitted()) {
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("*"), List.of(TokenPosition.LAST), method, 1, 1.0);
            Direction dir = DirectionFinder.fit(p, TokenPosition.LAST, a, b, opts);
            double cos = 0;
            for (int j = 0; j < d; j++) cos += dir.unit()[j] * v[j];
            double want = method == DirectionMethod.PROBE ? 0.85 : 0.99;   // the probe also fits the noise of 300 samples in 24 dims
            assertTrue(cos > want, method + ": cos to the planted direction " + cos);
            assertEquals(1.0, Math.sqrt(dotF(dir.unit(), dir.unit())), 1e-6);
        }
    }

    @Test
    void saveLoadRoundTripAndModelChecks() throws Exception {
        try (HookedModel m = TestModels.load("llama_tiny")) {
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("blocks.*.hook_resid_pre"),
                    TokenPosition.parseList("last:2,mean"), DirectionMethod.PCA, 4, 1.0);
            DirectionSet set = DirectionFinder.compute(m, HAPPY, SAD, opts, ProgressListener.NONE, null, "test");
            set.save(tmp.resolve("d"));
            DirectionSet back = DirectionSet.load(tmp.resolve("d"));
            assertEquals(set.directions().size(), back.directions().size());
            assertEquals(List.of("last", "last-1", "mean"), back.meta().positions());
            assertEquals(DirectionMethod.PCA, back.meta().method());
            assertEquals(HAPPY.sha256(), back.meta().classA().sha256());
            for (Direction d : set.directions()) {
                Direction e = back.find(d.hook(), d.position());
                assertArrayEquals(d.unit(), e.unit());
                assertEquals(d.norm(), e.norm());
                assertEquals(d.layer(), e.layer());
            }
            assertNull(back.checkCompatible(m.info(), "llama_tiny", tmp));
            assertNotNull(back.checkCompatible(m.info(), "another-copy", tmp), "another name with the same shape warns");
            ModelInfo i = m.info();
            ModelInfo wider = new ModelInfo(i.family(), i.architecture(), i.nLayers(), 128, i.nHeads(), i.nKvHeads(), i.dMlp(),
                    i.vocabSize(), i.maxPositions(), i.parameterCount(), i.weightDType(), true);
            JlensException e = assertThrows(JlensException.class, () -> back.checkCompatible(wider, "wide", tmp));
            assertTrue(e.getMessage().contains("d_model 64") && e.getMessage().contains("d_model 128"), e.getMessage());
            ModelInfo deeper = new ModelInfo(i.family(), i.architecture(), 7, i.dModel(), i.nHeads(), i.nKvHeads(), i.dMlp(),
                    i.vocabSize(), i.maxPositions(), i.parameterCount(), i.weightDType(), true);
            e = assertThrows(JlensException.class, () -> back.checkCompatible(deeper, "deep", tmp));
            assertTrue(e.getMessage().contains("3 layers") && e.getMessage().contains("has 7"), e.getMessage());
        }
    }

    @Test
    void badDirectionFoldersAreClearErrors() throws Exception {
        JlensException e = assertThrows(JlensException.class, () -> DirectionSet.load(tmp.resolve("none")));
        assertTrue(e.getMessage().contains("no such folder"), e.getMessage());
        Files.createDirectories(tmp.resolve("empty"));
        e = assertThrows(JlensException.class, () -> DirectionSet.load(tmp.resolve("empty")));
        assertTrue(e.getMessage().contains("directions.json"), e.getMessage());
        try (HookedModel m = TestModels.load("llama_tiny")) {
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("blocks.0.hook_resid_pre"),
                    List.of(TokenPosition.LAST), DirectionMethod.DIFF_MEANS, 4, 1.0);
            DirectionFinder.compute(m, HAPPY, SAD, opts, ProgressListener.NONE, null, "test").save(tmp.resolve("ok"));
        }
        Path json = tmp.resolve("ok/directions.json");
        String good = Files.readString(json);
        Files.writeString(json, good.replace("\"d_model\" : 64", "\"d_model\" : 32"));
        e = assertThrows(JlensException.class, () -> DirectionSet.load(tmp.resolve("ok")));
        assertTrue(e.getMessage().contains("shape [64]") && e.getMessage().contains("expected [32]"), e.getMessage());
        Files.writeString(json, good.replace("\"d_model\" : 64", "\"d_model\" : \"wide\""));
        e = assertThrows(JlensException.class, () -> DirectionSet.load(tmp.resolve("ok")));
        assertTrue(e.getMessage().contains("\"d_model\""), e.getMessage());
        Files.writeString(json, "{ not json");
        e = assertThrows(JlensException.class, () -> DirectionSet.load(tmp.resolve("ok")));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
    }

    @Test
    void positionsWhereTheClassesCoincideAreLeftOutWithAWarning() {
        // Every prompt ends in ".", so the last token's embedding (resid_pre of block 0) is the same in both classes.
        PromptSet a = set("a", "Lily was happy.", "The sun was warm."), b = set("b", "Lily was sad.", "The rain was cold.");
        try (HookedModel m = TestModels.load("llama_tiny")) {
            List<String> warnings = new ArrayList<>();
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("blocks.*.hook_resid_pre"),
                    List.of(TokenPosition.LAST), DirectionMethod.DIFF_MEANS, 4, 1.0);
            DirectionSet set = DirectionFinder.compute(m, a, b, opts, ProgressListener.NONE, warnings::add, "test");
            assertNull(set.find("blocks.0.hook_resid_pre", "last"));
            assertNotNull(set.find("blocks.1.hook_resid_pre", "last"));
            assertEquals(1, warnings.size());
            assertTrue(warnings.getFirst().contains("blocks.0.hook_resid_pre:last"), warnings.getFirst());
            DirectionFinder.Options only0 = new DirectionFinder.Options(HookPattern.parse("blocks.0.hook_resid_pre"),
                    List.of(TokenPosition.LAST), DirectionMethod.DIFF_MEANS, 4, 1.0);
            JlensException e = assertThrows(JlensException.class, () -> DirectionFinder.compute(m, a, b, only0,
                    ProgressListener.NONE, null, "test"));
            assertTrue(e.getMessage().contains("identical mean activations"), e.getMessage());
        }
    }

    @Test
    void positionsParse() {
        assertEquals(List.of("last", "last-1", "last-2", "mean"),
                TokenPosition.parseList("last:3, mean").stream().map(TokenPosition::label).toList());
        assertEquals(2, TokenPosition.fromLabel("last-2").row(5));
        assertEquals(-1, TokenPosition.fromLabel("last-2").row(2));
        for (String bad : List.of("first", "last:x", "last:0", "")) {
            assertThrows(JlensException.class, () -> TokenPosition.parseList(bad), bad);
        }
    }

    private static void add(DirectionFinder.Stats s, float[] x, int i) {
        for (int j = 0; j < x.length; j++) s.sum[j] += x[j];
        double n = 0;
        for (float f : x) n += (double) f * f;
        s.normSum += Math.sqrt(n);
        s.count++;
        s.rows[i] = x;
    }

    static double[] meanDiff(double[][] a, double[][] b) {
        double[] d = new double[a[0].length];
        for (double[] r : b) for (int j = 0; j < d.length; j++) d[j] += r[j] / b.length;
        for (double[] r : a) for (int j = 0; j < d.length; j++) d[j] -= r[j] / a.length;
        return d;
    }

    static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }

    static double dotF(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += (double) a[i] * b[i];
        return s;
    }
}
