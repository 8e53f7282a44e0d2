package dev.jlens.generate;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.KvCache;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import dev.jlens.kernels.Backend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The KV cache against the plain forward pass, on every causal fixture: each cached step's logits equal the
 * full-sequence forward's row within 1e-4 (prefill, one token at a time, several sequences of different
 * lengths at once), and greedy generation with the cache equals a no-cache re-run token for token, packed
 * or one prompt at a time.
 */
class KvCacheParityTest {

    static final double ATOL = 1e-4;
    static final List<String> FIXTURES = List.of("gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt2_tiny", "llama_tiny",
            "qwen2_tiny", "stories260k");

    static HookedModel load(String fixture) {
        return ModelLoader.loadFolder(new ModelLocation(fixture, null, Fixtures.dir(fixture), false));
    }

    static List<int[]> prompts(String fixture) {
        List<int[]> ids = new ArrayList<>();
        for (Fixtures.Prompt p : Fixtures.golden(fixture).prompts()) if (p.ids().length <= 25) ids.add(p.ids());
        return ids;
    }

    /** Every fixture on the CPU backend; the parallel-residual, learned-position and GQA ones also on the reference backend. */
    static Stream<Arguments> fixturesAndBackends() {
        return Stream.concat(FIXTURES.stream().map(f -> Arguments.of(f, "cpu")),
                Stream.of("gpt_neox_tiny", "gpt2_tiny", "llama_tiny").map(f -> Arguments.of(f, "reference")));
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("fixturesAndBackends")
    void cachedStepsEqualFullForward(String fixture, String backend) {
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, Fixtures.dir(fixture), false),
                backend.equals("reference") ? Backend.reference() : Backend.defaults())) {
            KvCache cache = KvCache.create(2);
            assertCachedStepsEqualFull(m, fixture, cache);
            assertTrue(cache.capacity() >= 16, "grows as the sequences do: " + cache.capacity());
        }
    }

    /** A cache with its room reserved up front never grows, and gives the same logits as one that does. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "llama_tiny", "qwen2_tiny"})
    void reservedCacheNeverGrowsAndChangesNothing(String fixture) {
        try (HookedModel m = load(fixture)) {
            List<int[]> ps = prompts(fixture);
            int longest = Math.max(ps.getLast().length, ps.get(1).length);
            int reserve = longest + STEPS + 40;
            KvCache cache = KvCache.create(2, reserve);
            assertEquals(0, cache.capacity());
            assertCachedStepsEqualFull(m, fixture, cache);
            assertEquals(reserve, cache.capacity(), "the reserve is the room from the first pass to the last");
        }
        assertThrows(IllegalArgumentException.class, () -> KvCache.create(1, -1));
    }

    /** Every layer sliding (window 8), the reserve is capped at twice the window: no layer could use more. */
    @ParameterizedTest
    @ValueSource(strings = {"mistral_sw_tiny"})
    void slidingModelCapsTheReserve(String fixture) {
        try (HookedModel m = load(fixture)) {
            KvCache cache = KvCache.create(1, 200);
            int[] p = {5, 6, 7};
            FloatTensor pre = m.model().forward(cache.batch(List.of(p)), ForwardOptions.full(), Hooks.none(), cache);
            assertEquals(16, cache.capacity());
            FloatTensor ref = m.model().forward(TokenBatch.single(p), ForwardOptions.full(), Hooks.none());
            assertRows(ref, 0, pre, 0, p.length, m.info().vocabSize(), fixture + " prefill");
        }
    }

    /**
     * A cleared cache, which is what a {@link Generator} reuses, gives the full forward's logits again, with a
     * longer earlier pass's rows still in its tensors, and keeps its room.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "llama_tiny", "qwen2_tiny"})
    void clearedCacheGivesTheLogitsOfAFreshOne(String fixture) {
        try (HookedModel m = load(fixture)) {
            int vocab = m.info().vocabSize();
            List<int[]> ps = prompts(fixture);
            KvCache cache = KvCache.create(2, 48);
            int[] longA = extend(ps.getFirst(), 20, 3, vocab), longB = extend(ps.getLast(), 20, 5, vocab);
            m.model().forward(cache.batch(List.of(longA, longB)), ForwardOptions.lastTokenLogits(), Hooks.none(), cache);
            int capacity = cache.capacity();
            cache.clear();
            assertArrayEquals(new int[]{0, 0}, cache.lengths());
            assertCachedStepsEqualFull(m, fixture, cache);
            assertEquals(capacity, cache.capacity(), "cleared, not laid out again");
            cache.clear();
            assertSame(cache, KvCache.reuseOrCreate(cache, 2, capacity), "as many sequences, room enough: reused");
            assertNotSame(cache, KvCache.reuseOrCreate(cache, 3, capacity), "more sequences: a new cache");
            assertNotSame(cache, KvCache.reuseOrCreate(cache, 2, capacity + 1), "more room: a new cache");
            assertNotSame(cache, KvCache.reuseOrCreate(null, 2, capacity));
        }
    }

    /**
     * The same where layers slide (Gemma 2: every other layer, window 8): the earlier pass moved rows within the
     * region and advanced its base, which clearing must undo.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma2_tiny", "mistral_sw_tiny"})
    void clearedSlidingCacheGivesTheLogitsOfAFreshOne(String fixture) {
        try (HookedModel m = load(fixture)) {
            int vocab = m.info().vocabSize();
            int[] p = prompts(fixture).getFirst();
            KvCache cache = KvCache.create(1, 64);
            int[] earlier = extend(p, 20, 3, vocab);
            for (int i = 0; i < earlier.length; i += 5) {
                int[] part = Arrays.copyOfRange(earlier, i, Math.min(earlier.length, i + 5));
                m.model().forward(cache.batch(List.of(part)), ForwardOptions.lastTokenLogits(), Hooks.none(), cache);
            }
            cache.clear();
            int[] full = extend(p, STEPS, 7, vocab);
            FloatTensor ref = m.model().forward(TokenBatch.single(full), ForwardOptions.full(), Hooks.none());
            FloatTensor pre = m.model().forward(cache.batch(List.of(p)), ForwardOptions.full(), Hooks.none(), cache);
            assertRows(ref, 0, pre, 0, p.length, vocab, fixture + " prefill after clear");
            for (int i = 0; i < STEPS; i++) {
                FloatTensor out = m.model().forward(cache.batch(List.of(new int[]{full[p.length + i]})), ForwardOptions.full(),
                        Hooks.none(), cache);
                assertRows(ref, p.length + i, out, 0, 1, vocab, fixture + " step " + i + " after clear");
            }
        }
    }

    /** A generator reuses its last cache; what it generates equals a fresh generator's. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "stories260k"})
    void generatorReusingItsCacheGeneratesTheSameTokens(String fixture) {
        try (HookedModel m = load(fixture)) {
            List<int[]> ps = prompts(fixture);
            List<int[]> two = List.of(ps.getFirst(), ps.getLast()), other = List.of(ps.get(1), ps.getFirst());
            GenerationConfig cfg = GenerationConfig.greedy(12).withStopAtEos(false);
            Generator reused = new Generator(m);
            reused.generate(two, GenerationConfig.greedy(30).withStopAtEos(false), Hooks.none(), null);
            List<Generation> again = reused.generate(other, cfg, Hooks.none(), null);
            List<Generation> fresh = new Generator(m).generate(other, cfg, Hooks.none(), null);
            for (int s = 0; s < other.size(); s++) {
                assertArrayEquals(fresh.get(s).newIds(), again.get(s).newIds(), fixture + " prompt " + s);
            }
        }
    }

    static final int STEPS = 6;

    /**
     * Prefills the fixture's last and second prompts into {@code cache}, then decodes STEPS tokens (the second
     * sequence sitting one step out), each step's logits against the full forward's row.
     */
    private static void assertCachedStepsEqualFull(HookedModel m, String fixture, KvCache cache) {
        int vocab = m.info().vocabSize();
        List<int[]> ps = prompts(fixture);
        int[] a = ps.get(ps.size() - 1), b = ps.get(1);
        // Continue both prompts with arbitrary tokens; the cache must not care where tokens come from.
        int steps = STEPS;
        int[] fullA = extend(a, steps, 7, vocab), fullB = extend(b, steps, 11, vocab);
        FloatTensor refA = m.model().forward(TokenBatch.single(fullA), ForwardOptions.full(), Hooks.none());
        FloatTensor refB = m.model().forward(TokenBatch.single(fullB), ForwardOptions.full(), Hooks.none());

        FloatTensor pre = m.model().forward(cache.batch(List.of(a, b)), ForwardOptions.full(), Hooks.none(), cache);
        assertArrayEquals(new int[]{a.length, b.length}, cache.lengths());
        assertRows(refA, 0, pre, 0, a.length, vocab, fixture + " prefill A");
        assertRows(refB, 0, pre, a.length, b.length, vocab, fixture + " prefill B");
        for (int i = 0; i < steps; i++) {
            // Step 2 feeds nothing for B, as batched generation does for a finished sequence.
            int[] nextA = {fullA[a.length + i]};
            int[] nextB = i == 2 ? new int[0] : new int[]{fullB[cache.length(1)]};
            FloatTensor out = m.model().forward(cache.batch(List.of(nextA, nextB)), ForwardOptions.full(), Hooks.none(), cache);
            assertRows(refA, a.length + i, out, 0, 1, vocab, fixture + " step " + i + " A");
            if (nextB.length == 1) assertRows(refB, cache.length(1) - 1, out, 1, 1, vocab, fixture + " step " + i + " B");
        }
        assertEquals(a.length + steps, cache.length(0));
        assertEquals(b.length + steps - 1, cache.length(1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt2_tiny", "llama_tiny", "qwen2_tiny", "stories260k"})
    void greedyWithCacheEqualsNoCacheRerun(String fixture) {
        try (HookedModel m = load(fixture)) {
            Generator g = new Generator(m);
            List<int[]> ps = prompts(fixture);
            GenerationConfig cached = GenerationConfig.greedy(10).withStopAtEos(false);
            List<Generation> withCache = g.generate(ps, cached, Hooks.none(), null);
            List<Generation> noCache = g.generate(ps, cached.withKvCache(false), Hooks.none(), null);
            for (int s = 0; s < ps.size(); s++) {
                assertArrayEquals(noCache.get(s).newIds(), withCache.get(s).newIds(), fixture + " prompt " + s);
                assertEquals(10, withCache.get(s).newIds().length);
                Generation alone = g.generate(ps.get(s), cached, Hooks.none(), null);
                assertArrayEquals(alone.newIds(), withCache.get(s).newIds(), fixture + " prompt " + s + " packed vs alone");
                assertEquals(alone.text(), withCache.get(s).text());
            }
            // Greedy means argmax of the full forward at every step.
            int[] all = withCache.getFirst().allIds();
            FloatTensor ref = m.model().forward(TokenBatch.single(Arrays.copyOf(all, all.length - 1)), ForwardOptions.full(), Hooks.none());
            int p = ps.getFirst().length;
            for (int i = 0; i < 10; i++) {
                assertEquals(Sampler.argmax(ref.data(), (p - 1 + i) * m.info().vocabSize(), m.info().vocabSize()), all[p + i]);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_tiny"})
    void cacheRejectsABatchThatDoesNotContinueIt(String fixture) {
        try (HookedModel m = load(fixture)) {
            KvCache cache = KvCache.create(1);
            m.model().forward(cache.batch(List.of(new int[]{1, 5, 6})), ForwardOptions.full(), Hooks.none(), cache);
            JlensException e = assertThrows(JlensException.class, () -> m.model().forward(TokenBatch.single(new int[]{7}),
                    ForwardOptions.full(), Hooks.none(), cache));
            assertTrue(e.getMessage().contains("KV cache holds 3"), e.getMessage());
            e = assertThrows(JlensException.class, () -> m.model().forward(cache.batch(List.of(new int[]{7})),
                    ForwardOptions.upTo(0), Hooks.none(), cache));
            assertTrue(e.getMessage().contains("all 3 blocks"), e.getMessage());
            assertEquals(3, cache.length(0), "a failed pass leaves the cache as it was");
        }
    }

    static int[] extend(int[] prompt, int n, int salt, int vocab) {
        int[] out = Arrays.copyOf(prompt, prompt.length + n);
        for (int i = 0; i < n; i++) out[prompt.length + i] = 3 + (salt * (i + 5) * 37) % (Math.min(vocab, 500) - 3);
        return out;
    }

    static void assertRows(FloatTensor want, int wantRow, FloatTensor got, int gotRow, int rows, int vocab, String what) {
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < vocab; j++) {
                worst = Math.max(worst, Math.abs(want.data()[(wantRow + r) * vocab + j] - got.data()[(gotRow + r) * vocab + j]));
            }
        }
        assertTrue(worst <= ATOL, what + ": cached logits differ from the full forward by " + worst);
    }

    static int[] ints(com.fasterxml.jackson.databind.JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
