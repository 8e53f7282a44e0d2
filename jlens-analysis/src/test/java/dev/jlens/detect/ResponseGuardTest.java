package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A response-level detector guarding a generation: its running score aggregates the generated tokens only, so the
 * prompt alone can never trip it, and it stops at the first generated token whose running score crosses.
 */
class ResponseGuardTest {

    static final String HOOK = "blocks.1.hook_resid_post";
    static final int NEW = 10;

    static DetectorParams params(int d, double thresholdLogit) {
        Random rnd = new Random(11);
        float[] mean = new float[d], invStd = new float[d], w = new float[d];
        for (int j = 0; j < d; j++) {
            invStd[j] = 1;
            w[j] = (float) (0.02 * rnd.nextGaussian());   // logits near 0, where sigma and its inverse lose nothing
        }
        return new DetectorParams(DetectorKind.LOGISTIC, mean, invStd, w, 0.0, null, null, 1.0, 0.0, thresholdLogit);
    }

    record Run(Generation generation, GenerationGuard guard, List<Double> running) {
    }

    static Run run(HookedModel m, Detector d, GenerationGuard.Mode mode, int[] prompt) {
        List<Double> running = new ArrayList<>();
        GenerationGuard guard = new GenerationGuard(d, mode, new int[] {prompt.length}, (s, pos, gen, tok, r, crossed) -> {
            if (!Double.isNaN(r)) running.add(Math.log(r / (1 - r)));
        });
        Generation g = new Generator(m).generate(List.of(prompt), GenerationConfig.greedy(NEW).withStopAtEos(false),
                guard.hooks(Hooks.none()), null, guard.stopCheck()).getFirst();
        return new Run(g, guard, running);
    }

    @Test
    void aResponseGuardScoresOnlyTheGeneratedTokens() {
        try (HookedModel m = DetectorTest.load("gpt_neox_tiny")) {
            int[] prompt = m.encode("Explain how to pick a lock on a door", null);
            int dModel = m.info().dModel();
            Detector flag = Detector.of(m, HOOK, Pooling.MEAN, PoolScope.RESPONSE, null, params(dModel, 1e9), null);
            Run free = run(m, flag, GenerationGuard.Mode.FLAG, prompt);
            assertEquals(NEW, free.generation().newIds().length);
            double[] raw = free.guard().tokenRaw(0);
            // No running score on the prompt's pass; after generated token k, the mean of generated tokens 0..k.
            assertEquals(NEW - 1, free.running().size());
            for (int k = 0; k < NEW - 1; k++) {
                double mean = TokenAggregation.MEAN.aggregate(Arrays.copyOfRange(raw, prompt.length, prompt.length + k + 1));
                assertEquals(flag.params().logit(mean), free.running().get(k), 1e-9, "generated token " + k);
            }

            // A threshold that every score crosses: an all-token guard stops on the prompt, a response guard only
            // after the first generated token has been fed back.
            Detector low = Detector.of(m, HOOK, Pooling.MEAN, PoolScope.RESPONSE, null, params(dModel, -1e9), null);
            Run stopped = run(m, low, GenerationGuard.Mode.STOP, prompt);
            GenerationGuard.Verdict v = stopped.guard().verdict(0);
            assertTrue(v.tripped());
            assertEquals(0, v.generatedIndex(), "the first generated token");
            assertArrayEquals(Arrays.copyOf(free.generation().newIds(), stopped.generation().newIds().length),
                    stopped.generation().newIds());
            Detector lowAll = Detector.of(m, HOOK, Pooling.MEAN, PoolScope.ALL, null, params(dModel, -1e9), null);
            assertEquals(-1, run(m, lowAll, GenerationGuard.Mode.STOP, prompt).guard().verdict(0).generatedIndex(),
                    "the prompt itself crossed");

            // A threshold between two running scores stops at the later one, with the unguarded tokens up to it.
            List<Double> r = free.running();
            int j = 1;
            while (j < r.size() && r.get(j) <= r.subList(0, j).stream().mapToDouble(Double::doubleValue).max().orElseThrow()) j++;
            if (j < r.size()) {
                double before = r.subList(0, j).stream().mapToDouble(Double::doubleValue).max().orElseThrow();
                Detector mid = Detector.of(m, HOOK, Pooling.MEAN, PoolScope.RESPONSE, null, params(dModel, (before + r.get(j)) / 2), null);
                Run at = run(m, mid, GenerationGuard.Mode.STOP, prompt);
                assertEquals(j, at.guard().verdict(0).generatedIndex());
                assertArrayEquals(Arrays.copyOf(free.generation().newIds(), at.generation().newIds().length), at.generation().newIds());
            }

            Detector lastUser = Detector.of(m, HOOK, Pooling.MEAN, PoolScope.LAST_USER, null, params(dModel, 0), null);
            JlensException e = assertThrows(JlensException.class,
                    () -> new GenerationGuard(lastUser, GenerationGuard.Mode.STOP, new int[] {prompt.length}, null));
            assertTrue(e.getMessage().contains("last-user"), e.getMessage());
        }
    }
}
