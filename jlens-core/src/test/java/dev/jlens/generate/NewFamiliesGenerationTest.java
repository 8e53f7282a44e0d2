package dev.jlens.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.CausalLm;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.KvCache;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Greedy generation on the seven 2025 fixtures against their generate.json (HF generate with its default
 * cache, HybridCache for Gemma): the token ids with and without the KV cache, and the recorded top-5 logits of
 * every step, cached and uncached. The prompt (37 tokens) is longer than every sliding window (8), so sliding
 * layers decode past the window; the cache must hold no more than the window needs and still give the same
 * numbers as a full forward, for many steps and for two sequences at once.
 */
class NewFamiliesGenerationTest {

    static final double ATOL = 1e-4;

    @ParameterizedTest
    @ValueSource(strings = {"qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny", "olmo2_tiny", "mistral_sw_tiny", "llama31_tiny"})
    void reproducesGenerateJsonWithAndWithoutCache(String fixture) throws IOException {
        JsonNode ref = new ObjectMapper().readTree(Fixtures.dir(fixture).resolve("generate.json").toFile());
        int[] want = KvCacheParityTest.ints(ref.get("new_token_ids"));
        try (HookedModel m = KvCacheParityTest.load(fixture)) {
            int[] prompt = m.encode(ref.get("prompt").asText(), null);
            assertArrayEquals(KvCacheParityTest.ints(ref.get("prompt_ids")), prompt, "prompt ids");
            for (boolean cache : new boolean[]{true, false}) {
                Generation g = new Generator(m).generate(prompt,
                        GenerationConfig.greedy(want.length).withStopAtEos(false).withKvCache(cache), Hooks.none(), null);
                assertArrayEquals(want, g.newIds(), fixture + (cache ? " with" : " without") + " the KV cache");
            }
            int vocab = m.info().vocabSize();
            JsonNode steps = ref.get("step_logits_top5");
            // Cached: the prompt, then one recorded token at a time.
            KvCache cache = KvCache.create(1);
            FloatTensor out = m.model().forward(cache.batch(List.of(prompt)), ForwardOptions.full(), Hooks.none(), cache);
            for (int i = 0; i < steps.size(); i++) {
                int lastRow = i == 0 ? prompt.length - 1 : 0;
                assertTop5(steps.get(i), out.data(), lastRow * vocab, vocab, fixture + " cached step " + i);
                if (i + 1 < steps.size()) {
                    out = m.model().forward(cache.batch(List.of(new int[]{want[i]})), ForwardOptions.full(), Hooks.none(), cache);
                }
            }
            // Uncached: one forward over everything, each step's logits being the row before its token.
            int[] all = Arrays.copyOf(prompt, prompt.length + want.length - 1);
            System.arraycopy(want, 0, all, prompt.length, want.length - 1);
            FloatTensor full = m.model().forward(TokenBatch.single(all), ForwardOptions.full(), Hooks.none());
            for (int i = 0; i < steps.size(); i++) {
                assertTop5(steps.get(i), full.data(), (prompt.length - 1 + i) * vocab, vocab, fixture + " full forward step " + i);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2_tiny", "gemma3_tiny", "mistral_sw_tiny"})
    void slidingCacheKeepsOnlyTheWindowAndChangesNothing(String fixture) {
        try (HookedModel m = KvCacheParityTest.load(fixture)) {
            int vocab = m.info().vocabSize();
            List<Fixtures.Prompt> ps = Fixtures.golden(fixture).prompts();
            int[] a = ps.get(2).ids(), b = ps.get(0).ids();
            // Long enough past the window (8) that dead rows are dropped and the live ones moved several times.
            int steps = 30;
            int[] fullA = KvCacheParityTest.extend(a, steps, 7, vocab), fullB = KvCacheParityTest.extend(b, steps, 11, vocab);
            FloatTensor refA = m.model().forward(TokenBatch.single(fullA), ForwardOptions.full(), Hooks.none());
            FloatTensor refB = m.model().forward(TokenBatch.single(fullB), ForwardOptions.full(), Hooks.none());
            int[] windows = ((CausalLm) m.model()).spec().attention().window();
            KvCache two = KvCache.create(2), one = KvCache.create(1);
            m.model().forward(two.batch(List.of(a, b)), ForwardOptions.full(), Hooks.none(), two);
            m.model().forward(one.batch(List.of(a)), ForwardOptions.full(), Hooks.none(), one);
            for (int i = 0; i < steps; i++) {
                int[] nextA = {fullA[a.length + i]};
                int[] nextB = i % 5 == 3 ? new int[0] : new int[]{fullB[two.length(1)]};
                FloatTensor packed = m.model().forward(two.batch(List.of(nextA, nextB)), ForwardOptions.full(), Hooks.none(), two);
                FloatTensor alone = m.model().forward(one.batch(List.of(nextA)), ForwardOptions.full(), Hooks.none(), one);
                KvCacheParityTest.assertRows(refA, a.length + i, packed, 0, 1, vocab, fixture + " packed step " + i + " A");
                KvCacheParityTest.assertRows(refA, a.length + i, alone, 0, 1, vocab, fixture + " single step " + i);
                if (nextB.length == 1) {
                    KvCacheParityTest.assertRows(refB, two.length(1) - 1, packed, 1, 1, vocab, fixture + " packed step " + i + " B");
                }
                for (int l = 0; l < windows.length; l++) {
                    int keys = one.liveKeys(0, l);
                    if (windows[l] > 0) assertEquals(windows[l] - 1, keys, fixture + " layer " + l + " keeps window - 1 keys");
                    else assertEquals(one.length(0), keys, fixture + " global layer " + l + " keeps every key");
                }
            }
            assertTrue(Arrays.stream(windows).anyMatch(w -> w > 0), fixture + " has a sliding layer");
        }
    }

    private static void assertTop5(JsonNode step, float[] logits, int at, int vocab, String what) {
        int[] ids = KvCacheParityTest.ints(step.get("ids"));
        JsonNode values = step.get("logits");
        for (int r = 0; r < ids.length; r++) {
            double diff = Math.abs(values.get(r).asDouble() - logits[at + ids[r]]);
            assertTrue(diff <= ATOL, what + ": logit of id " + ids[r] + " differs by " + diff);
        }
        // Nothing outside the recorded five is above the fifth.
        float fifth = logits[at + ids[ids.length - 1]];
        for (int j = 0; j < vocab; j++) {
            final int id = j;
            if (Arrays.stream(ids).noneMatch(x -> x == id)) assertTrue(logits[at + j] <= fifth + ATOL, what + ": id " + j + " beats the top 5");
        }
    }
}
