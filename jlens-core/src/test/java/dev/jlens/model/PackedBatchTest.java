package dev.jlens.model;

import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Packing several prompts into one batch must not change any activation: every golden prompt run together
 * equals each prompt run alone within 1e-5, for every hook and the logits, in every family. Attention
 * patterns are probability rows: non-negative, summing to 1, zero above the diagonal.
 */
class PackedBatchTest {

    static final double ATOL = Close.ATOL;

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt2_tiny", "llama_tiny", "qwen2_tiny", "stories260k"})
    void packedEqualsOneAtATime(String fixture) {
        Fixtures.Golden g = Fixtures.golden(fixture);
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, g.dir(), false))) {
            List<int[]> ids = new ArrayList<>();
            for (Fixtures.Prompt p : g.prompts()) ids.add(p.ids());
            HookPattern all = HookPattern.parse("*");
            ActivationCache single = m.runWithCache(ids, CacheRequest.of(all).pooling(Pooling.ALL).batchSize(1).logits(true));
            ActivationCache packed = m.runWithCache(ids, CacheRequest.of(all).pooling(Pooling.ALL).batchSize(ids.size()).logits(true));
            assertEquals(m.hookPoints().size() + 1, single.names().size(), "every hook point and the logits are cached");
            assertEquals(single.names(), packed.names());
            for (String name : single.names()) {
                List<FloatTensor> one = single.perPrompt(name);
                List<FloatTensor> together = packed.perPrompt(name);
                if (name.endsWith("hook_pattern") || name.endsWith("hook_attn_scores")) {
                    // Scores and patterns are kept per prompt as [heads, len, len], packed or not.
                    assertEquals(ids.size(), one.size());
                    assertEquals(ids.size(), together.size());
                    for (int s = 0; s < ids.size(); s++) {
                        float[] a = one.get(s).data(), b = together.get(s).data();
                        if (name.endsWith("hook_attn_scores")) {
                            // masked entries are -inf in both; compare the rest
                            for (int i = 0; i < a.length; i++) {
                                assertEquals(Float.isInfinite(a[i]), Float.isInfinite(b[i]), name + " mask at " + i);
                                if (Float.isInfinite(a[i])) a[i] = b[i] = 0f;
                            }
                            Close.assertClose(a, b, fixture + " " + name + " prompt " + s);
                            continue;
                        }
                        Close.assertClose(a, b, fixture + " " + name + " prompt " + s);
                        checkPattern(a, m.info().nHeads(), ids.get(s).length, fixture + " " + name + " prompt " + s);
                    }
                } else {
                    assertEquals(ids.size(), one.size(), name);
                    assertEquals(ids.size(), together.size(), name);
                    for (int s = 0; s < ids.size(); s++) {
                        assertEquals(ids.get(s).length, together.get(s).rows(), name);
                        float[] want = one.get(s).data();
                        // Logits reach ~25, where a few ulps of JIT-dependent rounding (see Close) exceed 1e-5.
                        double tol = name.equals("logits") ? ATOL * Math.max(1, maxAbs(want)) : ATOL;
                        double diff = Fixtures.maxAbsDiff(want, together.get(s).data());
                        assertTrue(diff <= tol, fixture + " " + name + " prompt " + s + ": packed differs from one-at-a-time by " + diff);
                    }
                }
            }
        }
    }

    private static void checkPattern(float[] p, int nHeads, int len, String what) {
        assertEquals(nHeads * len * len, p.length, what);
        for (int h = 0; h < nHeads; h++) {
            for (int i = 0; i < len; i++) {
                double sum = 0;
                for (int j = 0; j < len; j++) {
                    float v = p[(h * len + i) * len + j];
                    assertTrue(v >= 0, what + ": negative probability");
                    if (j > i) assertEquals(0f, v, what + ": head " + h + " query " + i + " sees the future key " + j);
                    sum += v;
                }
                assertEquals(1.0, sum, 1e-5, what + ": head " + h + " row " + i);
            }
        }
    }


    private static double maxAbs(float[] x) {
        double m = 0;
        for (float v : x) m = Math.max(m, Math.abs(v));
        return m;
    }
}
