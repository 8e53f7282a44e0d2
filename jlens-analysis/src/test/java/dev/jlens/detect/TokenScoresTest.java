package dev.jlens.detect;

import dev.jlens.model.CacheRequest;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Token-level scores of a saved detector on the fixture GPT-NeoX: pooled the way the detector was fitted they
 * give its prompt score, for mean and last pooling (fitted on pooled activations) and for max and window-mean
 * (fitted on token scores); the batched token pass of the probe gives the same token scores as the detector.
 */
class TokenScoresTest {

    static final String HOOK = "blocks.1.hook_resid_post";

    @TempDir
    static Path tmp;
    static HookedModel model;
    static ProbeData data;
    static List<String> test;
    static Map<Pooling, Prober.HookResult> fitted = new java.util.EnumMap<>(Pooling.class);
    static Map<Pooling, double[][]> pooledRows = new java.util.EnumMap<>(Pooling.class);

    @BeforeAll
    static void fit() {
        model = DetectorTest.load("gpt_neox_tiny");
        data = ProbeData.builtin();
        List<int[]> ids = data.texts().stream().map(t -> model.encode(t, null)).toList();
        Prober.Options o = new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC, DetectorKind.DIFF_MEANS),
                0, 1, 0.95);
        for (Pooling p : List.of(Pooling.MEAN, Pooling.LAST)) {
            ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse(HOOK)).pooling(p).batchSize(32));
            pooledRows.put(p, cache.pooledAsDouble(HOOK));
            fitted.put(p, Prober.probe(HOOK, 1, pooledRows.get(p), data, o));
        }
        // the first 60 test prompts (in test-split order, so k indexes the probe's test logits too) keep the test quick
        test = new ArrayList<>();
        int[] idx = data.indices("test");
        for (int k = 0; k < idx.length && test.size() < 60; k++) test.add(data.examples().get(idx[k]).text());
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static Detector saveAndLoad(String name, Pooling pooling, TokenAggregation aggregation, DetectorParams params) {
        Path dir = tmp.resolve(name);
        Detector.of(model, HOOK, pooling, aggregation, params, null).save(dir);
        return Detector.load(dir, model);
    }

    @Test
    void meanOfTokenScoresIsThePromptScore() {
        for (DetectorKind kind : List.of(DetectorKind.LOGISTIC, DetectorKind.DIFF_MEANS)) {
            Prober.KindResult kr = fitted.get(Pooling.MEAN).get(kind);
            try (Detector d = saveAndLoad("mean-" + kind.cliName(), Pooling.MEAN, null, kr.fitted().params())) {
                assertEquals(TokenAggregation.MEAN, d.aggregation());
                for (int k = 0; k < test.size(); k++) {
                    Detector.TokenScores ts = d.tokenScores(test.get(k));
                    double mean = 0;
                    for (double r : ts.raw()) mean += r;
                    mean /= ts.raw().length;
                    // pooled the way it was fitted (mean), the token scores give the prompt score exactly
                    assertEquals(d.params().logit(mean), ts.prompt().logit(), 0.0, test.get(k));
                    assertEquals(d.score(test.get(k)).logit(), ts.prompt().logit(), 0.0, test.get(k));
                    assertEquals(d.params().flagged(ts.prompt().logit()), ts.prompt().flagged());
                    // and that is the probe's score of the mean-pooled activation (which went through float32 once)
                    double probe = kr.testLogit()[k];
                    assertEquals(probe, ts.prompt().logit(), 1e-5 * Math.max(1, Math.abs(probe)), test.get(k));
                    // the Platt map is affine: the mean of the token logits is the prompt logit too
                    double meanLogit = 0;
                    for (double l : ts.logit()) meanLogit += l;
                    assertEquals(ts.prompt().logit(), meanLogit / ts.logit().length, 1e-9 * Math.max(1, Math.abs(probe)));
                    assertEquals(ts.ids().length, ts.tokens().size());
                }
            }
        }
    }

    @Test
    void lastTokenScoreIsThePromptScoreBitForBit() {
        Prober.KindResult kr = fitted.get(Pooling.LAST).get(DetectorKind.LOGISTIC);
        try (Detector d = saveAndLoad("last", Pooling.LAST, null, kr.fitted().params())) {
            assertEquals(TokenAggregation.LAST, d.aggregation());
            for (int k = 0; k < test.size(); k++) {
                Detector.TokenScores ts = d.tokenScores(test.get(k));
                assertEquals(d.params().logit(ts.raw()[ts.raw().length - 1]), ts.prompt().logit(), 0.0);
                // the last token's activation is the pooled row itself: same value as the probe, to the bit
                assertEquals(kr.testLogit()[k], ts.prompt().logit(), 0.0, test.get(k));
            }
        }
    }

    @Test
    void maxAndWindowDetectorsScoreTheirAggregationAndSurviveSaving() {
        Prober.Options o = new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), 0, 1, 0.95);
        Prober.KindResult mean = fitted.get(Pooling.MEAN).get(DetectorKind.LOGISTIC);
        List<int[]> ids = data.texts().stream().map(t -> model.encode(t, null)).toList();
        double[][] tokenRaw = TokenScorer.score(model, ids, Map.of(HOOK, List.of(mean.fitted().params())), 16).get(HOOK).getFirst();
        for (TokenAggregation a : List.of(TokenAggregation.MAX, TokenAggregation.windowMean(4))) {
            Prober.KindResult kr = Prober.aggregate(HOOK, 1, mean, tokenRaw, a, data, o);
            assertTrue(kr.fitted().valAuroc() > 0.5, a + " val AUROC " + kr.fitted().valAuroc());
            try (Detector d = saveAndLoad(a.cliName().replace(':', '-'), Pooling.MEAN, a, kr.fitted().params())) {
                assertEquals(a, d.aggregation());
                int[] testIdx = data.indices("test");
                for (int k = 0; k < test.size(); k++) {
                    Detector.TokenScores ts = d.tokenScores(test.get(k));
                    assertEquals(d.params().logit(a.aggregate(ts.raw())), ts.prompt().logit(), 0.0);
                    assertEquals(d.score(test.get(k)).logit(), ts.prompt().logit(), 0.0);
                    // the probe's batched token pass scored the same tokens the same way
                    double[] batched = tokenRaw[testIdx[k]];
                    assertEquals(batched.length, ts.raw().length);
                    for (int t = 0; t < batched.length; t++) {
                        assertEquals(batched[t], ts.raw()[t], 1e-6 * Math.max(1, Math.abs(batched[t])), test.get(k) + " token " + t);
                    }
                    assertEquals(kr.testLogit()[k], ts.prompt().logit(), 1e-5 * Math.max(1, Math.abs(kr.testLogit()[k])));
                }
            }
        }
    }

    @Test
    void aggregationsComputeWhatTheySay() {
        double[] raw = {1, -2, 5, 3, 0};
        assertEquals(7 / 5.0, TokenAggregation.MEAN.aggregate(raw), 1e-15);
        assertEquals(6 / 4.0, TokenAggregation.MEAN_SKIP_FIRST.aggregate(raw), 1e-15);
        assertEquals(0, TokenAggregation.LAST.aggregate(raw));
        assertEquals(5, TokenAggregation.MAX.aggregate(raw));
        assertEquals(4, TokenAggregation.windowMean(2).aggregate(raw), 1e-15);      // (5 + 3) / 2
        assertEquals(8 / 3.0, TokenAggregation.windowMean(3).aggregate(raw), 1e-15); // (5 + 3 + 0) / 3
        assertEquals(7 / 5.0, TokenAggregation.windowMean(50).aggregate(raw), 1e-15); // longer than the prompt: the mean
        assertEquals(TokenAggregation.windowMean(8), TokenAggregation.parse("window-mean"));
        assertEquals(TokenAggregation.windowMean(3), TokenAggregation.parse("window-mean:3"));
        assertEquals("window-mean:3", TokenAggregation.windowMean(3).cliName());
        assertTrue(assertThrows(JlensException.class, () -> TokenAggregation.parse("window-mean:x")).getMessage().contains("window-mean:K"));
        assertThrows(JlensException.class, () -> TokenAggregation.windowMean(0));
        // max over tokens needs the direction fitted on mean-pooled activations
        DetectorParams p = fitted.get(Pooling.LAST).get(DetectorKind.LOGISTIC).fitted().params();
        assertTrue(assertThrows(JlensException.class, () -> Detector.of(model, HOOK, Pooling.LAST, TokenAggregation.MAX, p, null))
                .getMessage().contains("needs pooling \"mean\""));
    }
}
