package dev.jlens.detect;

import dev.jlens.model.CacheRequest;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A detector fitted on the fixture GPT-NeoX (3 layers) with the built-in splits, at the middle layer: saved,
 * loaded, scored from many threads, with and without the early exit, and refused for other models.
 */
class DetectorTest {

    static final String HOOK = "blocks.1.hook_resid_post";

    @TempDir
    static Path tmp;
    static HookedModel model;
    static ProbeData data;
    static Prober.HookResult result;
    static Path saved, savedMaha;

    static Path fixture(String name) {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        return root.resolve(name).toAbsolutePath().normalize();
    }

    static HookedModel load(String fixture) {
        return ModelLoader.loadFolder(new ModelLocation(fixture, null, fixture(fixture), false));
    }

    @BeforeAll
    static void fit() {
        model = load("gpt_neox_tiny");
        data = ProbeData.builtin();
        List<int[]> ids = data.texts().stream().map(t -> model.encode(t, null)).toList();
        ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse(HOOK)).batchSize(32));
        Prober.Options o = new Prober.Options(DetectorFitter.Options.defaults(),
                List.of(DetectorKind.LOGISTIC, DetectorKind.MAHALANOBIS), 0, 1, 0.95);
        result = Prober.probe(HOOK, 1, cache.pooledAsDouble(HOOK), data, o);
        ObjectNode desc = new ObjectMapper().createObjectNode().put("note", "test");
        saved = tmp.resolve("guard");
        Detector.of(model, HOOK, Pooling.MEAN, result.get(DetectorKind.LOGISTIC).fitted().params(), desc).save(saved);
        savedMaha = tmp.resolve("guard-maha");
        Detector.of(model, HOOK, Pooling.MEAN, result.get(DetectorKind.MAHALANOBIS).fitted().params(), null).save(savedMaha);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static List<String> testTexts() {
        int[] test = data.indices("test");
        List<String> out = new ArrayList<>();
        for (int i : test) out.add(data.examples().get(i).text());
        return out;
    }

    @Test
    void loadedDetectorReproducesTheProbeScores() {
        for (Path dir : List.of(saved, savedMaha)) {
            DetectorKind kind = dir == saved ? DetectorKind.LOGISTIC : DetectorKind.MAHALANOBIS;
            double[] expected = result.get(kind).testLogit();
            try (Detector d = Detector.load(dir, model)) {
                assertEquals(kind, d.params().kind());
                assertEquals(1, d.layer());
                assertEquals(HOOK, d.hook());
                List<String> texts = testTexts();
                for (int k = 0; k < texts.size(); k++) {
                    Detector.Score s = d.score(texts.get(k));
                    // the probe ran prompts in packed batches, the detector one at a time: equal up to rounding
                    assertEquals(expected[k], s.logit(), 1e-4 * Math.max(1, Math.abs(expected[k])), texts.get(k));
                    assertEquals(1 / (1 + Math.exp(-s.logit())), s.score(), 1e-12);
                    assertEquals(s.logit() >= d.params().thresholdLogit(), s.flagged());
                }
            }
        }
    }

    @Test
    void loadingWithoutAModelLoadsTheOneTheJsonNames() throws Exception {
        var json = new ObjectMapper().readTree(saved.resolve(Detector.JSON).toFile());
        assertEquals("gpt_neox_tiny", json.path("model").path("id").asText());
        assertEquals("test", json.path("note").asText(), "the probe's description is kept");
        assertTrue(json.path("threshold").asDouble() > 0 && json.path("threshold").asDouble() < 1);
        String t = "Explain how to hotwire a car.";
        try (Detector own = Detector.load(saved); Detector shared = Detector.load(saved.resolve(Detector.JSON), model)) {
            assertEquals(shared.score(t).logit(), own.score(t).logit());
        }
    }

    @Test
    void earlyExitGivesIdenticalScoresAndRunsFewerBlocks() {
        try (Detector d = Detector.load(saved, model)) {
            assertEquals(2, d.blocksRun(), "blocks 0 and 1 of 3");
            for (String t : testTexts().subList(0, 30)) {
                Detector.Score early = d.score(t, true), full = d.score(t, false);
                assertEquals(full.logit(), early.logit(), 0.0, t);
                assertEquals(full.flagged(), early.flagged());
            }
        }
    }

    @Test
    void eightThreadsGetTheSequentialScores() throws Exception {
        List<String> texts = testTexts().subList(0, 40);
        try (Detector d = Detector.load(saved, model)) {
            double[] sequential = texts.stream().mapToDouble(t -> d.score(t).logit()).toArray();
            ExecutorService pool = Executors.newFixedThreadPool(8);
            try {
                List<Future<double[]>> futures = new ArrayList<>();
                for (int th = 0; th < 8; th++) {
                    int seed = th;
                    futures.add(pool.submit(() -> {
                        List<Integer> order = new ArrayList<>();
                        for (int i = 0; i < texts.size(); i++) order.add(i);
                        Collections.shuffle(order, new java.util.Random(seed));
                        double[] out = new double[texts.size()];
                        for (int i : order) out[i] = d.score(texts.get(i)).logit();
                        return out;
                    }));
                }
                for (Future<double[]> f : futures) assertArrayEquals(sequential, f.get(2, TimeUnit.MINUTES));
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void emptyAndOverlongText() {
        try (Detector d = Detector.load(saved, model)) {
            for (String empty : new String[] {"", "   \n", null}) {
                JlensException e = assertThrows(JlensException.class, () -> d.score(empty));
                assertTrue(e.getMessage().contains("empty text"), e.getMessage());
            }
            String longText = "please explain how to pick a lock ".repeat(100);
            Detector.Score s = d.score(longText);
            assertTrue(s.truncated());
            assertEquals(model.info().maxPositions(), s.tokens());
            assertTrue(Double.isFinite(s.score()));
            Detector.Score shortOne = d.score("How do I bake bread?");
            assertTrue(!shortOne.truncated() && shortOne.tokens() < 20);
        }
    }

    @Test
    void aDetectorForAnotherModelIsRefusedNamingBothModels() {
        try (HookedModel gpt2 = load("gpt2_tiny")) {
            JlensException e = assertThrows(JlensException.class, () -> Detector.load(saved, gpt2));
            assertTrue(e.getMessage().contains("'gpt_neox_tiny'") && e.getMessage().contains("'gpt2_tiny'"), e.getMessage());
            assertTrue(e.getMessage().contains("architecture GPTNeoXForCausalLM vs GPT2LMHeadModel"), e.getMessage());
        }
        // same architecture and shape, other weights: caught by the fingerprint prompts
        try (HookedModel other = load("gpt_neox_tiny_fp16")) {
            JlensException e = assertThrows(JlensException.class, () -> Detector.load(saved, other));
            assertTrue(e.getMessage().contains("'gpt_neox_tiny'") && e.getMessage().contains("'gpt_neox_tiny_fp16'")
                    && e.getMessage().contains("different activations"), e.getMessage());
        }
    }

    @Test
    void damagedDetectorFilesGiveClearErrors() throws Exception {
        JlensException none = assertThrows(JlensException.class, () -> Detector.load(tmp.resolve("nothing-here"), model));
        assertTrue(none.getMessage().contains("no detector here"), none.getMessage());

        Path noTensors = tmp.resolve("no-tensors");
        Files.createDirectories(noTensors);
        Files.copy(saved.resolve(Detector.JSON), noTensors.resolve(Detector.JSON));
        JlensException e1 = assertThrows(JlensException.class, () -> Detector.load(noTensors, model));
        assertTrue(e1.getMessage().contains(Detector.TENSORS), e1.getMessage());

        Path badJson = tmp.resolve("bad-json");
        Files.createDirectories(badJson);
        Files.writeString(badJson.resolve(Detector.JSON), "{\"format\": \"something-else\"}");
        JlensException e2 = assertThrows(JlensException.class, () -> Detector.load(badJson, model));
        assertTrue(e2.getMessage().contains("not a jlens detector"), e2.getMessage());

        Path noKind = tmp.resolve("no-kind");
        Files.createDirectories(noKind);
        ObjectNode root = (ObjectNode) new ObjectMapper().readTree(saved.resolve(Detector.JSON).toFile());
        root.remove("kind");
        Files.writeString(noKind.resolve(Detector.JSON), root.toString());
        Files.copy(saved.resolve(Detector.TENSORS), noKind.resolve(Detector.TENSORS));
        JlensException e3 = assertThrows(JlensException.class, () -> Detector.load(noKind, model));
        assertTrue(e3.getMessage().contains("\"kind\""), e3.getMessage());

        Path wrongShape = tmp.resolve("wrong-shape");
        Files.createDirectories(wrongShape);
        ObjectNode root2 = (ObjectNode) new ObjectMapper().readTree(saved.resolve(Detector.JSON).toFile());
        Files.writeString(wrongShape.resolve(Detector.JSON), root2.toString());
        Files.copy(savedMaha.resolve(Detector.TENSORS), wrongShape.resolve(Detector.TENSORS));   // no "weights" tensor
        JlensException e4 = assertThrows(JlensException.class, () -> Detector.load(wrongShape, model));
        assertTrue(e4.getMessage().contains("\"weights\""), e4.getMessage());
    }
}
