package dev.jlens.detect;

import dev.jlens.model.CacheRequest;

import dev.jlens.JlensException;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A detector guarding a greedy KV-cache generation on the fixture GPT-NeoX. The guard's token scores come from
 * the generation's own forward passes and agree with the detector scoring the same ids afterwards; with a
 * threshold set to trip at a chosen token, stop mode ends the generation right after that token with exactly
 * the unguarded tokens up to it, and flag mode changes nothing but reports the same token.
 */
class GenerationGuardTest {

    static final String HOOK = "blocks.1.hook_resid_post";
    static final int NEW = 12;
    static HookedModel model;
    static DetectorParams fitted;
    static int[] prompt;
    static Generation free;

    @BeforeAll
    static void setUp() {
        model = DetectorTest.load("gpt_neox_tiny");
        ProbeData data = ProbeData.builtin();
        List<int[]> ids = data.texts().stream().map(t -> model.encode(t, null)).toList();
        ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse(HOOK)).batchSize(32));
        Prober.Options o = new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), 0, 1, 0.95);
        fitted = Prober.probe(HOOK, 1, cache.pooledAsDouble(HOOK), data, o).get(DetectorKind.LOGISTIC).fitted().params();
        prompt = model.encode("Explain how to pick a lock on a door", null);
        free = new Generator(model).generate(prompt, config(), Hooks.none(), null);
        assertEquals(NEW, free.newIds().length);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static GenerationConfig config() {
        return GenerationConfig.greedy(NEW).withStopAtEos(false);
    }

    static DetectorParams withThreshold(DetectorParams p, double thresholdLogit) {
        return new DetectorParams(p.kind(), p.mean(), p.invStd(), p.weights(), p.bias(), p.centroid(), p.precision(),
                p.plattA(), p.plattB(), thresholdLogit);
    }

    record Run(Generation generation, GenerationGuard guard, List<Double> checks) {
    }

    /** A guarded generation; {@code checks} are the running logits after each forward pass. */
    static Run guarded(Detector d, GenerationGuard.Mode mode) {
        List<Double> checks = new ArrayList<>();
        GenerationGuard guard = new GenerationGuard(d, mode, new int[] {prompt.length}, (s, pos, gen, tok, running, crossed) -> {
            if (!Double.isNaN(running)) checks.add(Math.log(running / (1 - running)));
        });
        Generation g = new Generator(model).generate(List.of(prompt), config(), guard.hooks(Hooks.none()), null, guard.stopCheck()).getFirst();
        return new Run(g, guard, checks);
    }

    @Test
    void guardScoresComeFromTheGenerationAndMatchTheDetector() {
        try (Detector d = Detector.of(model, HOOK, Pooling.MEAN, fitted, null)) {
            Run r = guarded(Detector.of(model, HOOK, Pooling.MEAN, withThreshold(fitted, 1e9), null), GenerationGuard.Mode.FLAG);
            assertArrayEquals(free.newIds(), r.generation().newIds(), "a guard that only reads changes no token");
            double[] guardRaw = r.guard().tokenRaw(0);
            // every token but the last generated one was fed back, and so scored
            assertEquals(prompt.length + NEW - 1, guardRaw.length);
            Detector.TokenScores after = d.tokenScores(Arrays.copyOf(free.allIds(), guardRaw.length));
            for (int t = 0; t < guardRaw.length; t++) {
                assertEquals(after.raw()[t], guardRaw[t], 1e-4 * Math.max(1, Math.abs(after.raw()[t])), "token " + t);
            }
            // the running score after each pass is the detector's score of the text so far
            assertEquals(NEW, r.checks().size());
            for (int i = 0; i < NEW; i++) {
                int upTo = prompt.length + i;
                double expected = d.score(Arrays.copyOf(free.allIds(), upTo)).logit();
                assertEquals(expected, r.checks().get(i), 1e-4 * Math.max(1, Math.abs(expected)), "after pass " + i);
            }
            assertFalse(r.guard().verdict(0).tripped());
        }
    }

    @Test
    void aTrippingThresholdStopsAtTheFirstCrossingTokenWithTheSameTokensBefore() {
        for (TokenAggregation agg : List.of(TokenAggregation.LAST, TokenAggregation.MEAN, TokenAggregation.MAX)) {
            Pooling pooling = agg == TokenAggregation.LAST ? Pooling.LAST : Pooling.MEAN;
            TokenAggregation explicit = agg == TokenAggregation.MAX ? agg : null;
            List<Double> c = guarded(Detector.of(model, HOOK, pooling, explicit, withThreshold(fitted, 1e9), null),
                    GenerationGuard.Mode.FLAG).checks();
            // a pass i >= 2 whose running score is above every earlier one: a threshold there trips first at i
            int trip = -1;
            double highestBefore = Double.NEGATIVE_INFINITY;
            for (int i = 2; i < c.size() && trip < 0; i++) {
                double before = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < i; j++) before = Math.max(before, c.get(j));
                if (c.get(i) > before) {
                    trip = i;
                    highestBefore = before;
                }
            }
            if (trip < 0) continue;   // this aggregation never rises after the start; another one will
            // halfway between: far from both values compared with rounding (the no-cache run below recomputes them)
            double threshold = (c.get(trip) + highestBefore) / 2;
            Detector d = Detector.of(model, HOOK, pooling, explicit, withThreshold(fitted, threshold), null);
            Run stop = guarded(d, GenerationGuard.Mode.STOP);
            // pass `trip` scored generated token trip - 1: the generation ends right after it
            assertEquals(Generation.StopReason.GUARD, stop.generation().stop(), agg.cliName());
            assertArrayEquals(Arrays.copyOf(free.newIds(), trip), stop.generation().newIds(), agg.cliName());
            GenerationGuard.Verdict v = stop.guard().verdict(0);
            assertTrue(v.tripped());
            assertEquals(trip - 1, v.generatedIndex());
            assertEquals(prompt.length + trip - 1, v.position());
            assertEquals(DetectorParams.probabilityOfLogit(c.get(trip)), v.score(), 1e-12);
            // without the KV cache every pass re-feeds the whole sequence: same stop, same tokens
            GenerationGuard g2 = new GenerationGuard(d, GenerationGuard.Mode.STOP, new int[] {prompt.length}, null);
            Generation noCache = new Generator(model).generate(List.of(prompt), config().withKvCache(false), g2.hooks(Hooks.none()),
                    null, g2.stopCheck()).getFirst();
            assertArrayEquals(stop.generation().newIds(), noCache.newIds(), agg.cliName() + " without the KV cache");
            assertEquals(trip - 1, g2.verdict(0).generatedIndex());
            Run flag = guarded(d, GenerationGuard.Mode.FLAG);
            assertArrayEquals(free.newIds(), flag.generation().newIds(), "flag mode changes nothing");
            assertEquals(Generation.StopReason.MAX_TOKENS, flag.generation().stop());
            assertEquals(trip - 1, flag.guard().verdict(0).generatedIndex());
            return;
        }
        throw new AssertionError("no aggregation's running score rose after the second pass; pick another prompt");
    }

    @Test
    void aPromptThatAlreadyCrossesGeneratesNothingInStopMode() {
        List<Double> c = guarded(Detector.of(model, HOOK, Pooling.MEAN, withThreshold(fitted, 1e9), null), GenerationGuard.Mode.FLAG).checks();
        Detector d = Detector.of(model, HOOK, Pooling.MEAN, withThreshold(fitted, c.getFirst() - 1e-9), null);
        Run r = guarded(d, GenerationGuard.Mode.STOP);
        assertEquals(0, r.generation().newIds().length);
        assertEquals(Generation.StopReason.GUARD, r.generation().stop());
        assertEquals(-1, r.guard().verdict(0).generatedIndex());
        assertEquals(prompt.length - 1, r.guard().verdict(0).position());
    }

    @Test
    void aMeanPooledMahalanobisDetectorCannotGuard() {
        float[] c = new float[fitted.dModel()], prec = new float[fitted.dModel() * fitted.dModel()];
        for (int j = 0; j < c.length; j++) prec[j * c.length + j] = 1;
        DetectorParams maha = new DetectorParams(DetectorKind.MAHALANOBIS, fitted.mean(), fitted.invStd(), null, 0, c, prec, 1, 0, 0);
        Detector d = Detector.of(model, HOOK, Pooling.MEAN, maha, null);
        assertTrue(assertThrows(JlensException.class, () -> new GenerationGuard(d, GenerationGuard.Mode.STOP, new int[] {3}, null))
                .getMessage().contains("cannot guard"));
    }
}
