package dev.jlens.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.EmbeddedModels;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.KvCache;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Generation on the trained stories260k model: the reference continuation, sampling, stopping, hooks, streaming. */
class GeneratorTest {

    static HookedModel stories;

    @BeforeAll
    static void load() {
        stories = KvCacheParityTest.load("stories260k");
    }

    @AfterAll
    static void close() {
        stories.close();
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void reproducesHuggingFaceGreedyContinuationExactly(boolean kvCache) throws IOException {
        reproducesGreedyContinuation(stories, kvCache);
    }

    /** The same on the scalar reference backend: the runner's numbers do not depend on the backend. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void referenceBackendReproducesTheContinuationToo(boolean kvCache) throws IOException {
        try (HookedModel m = dev.jlens.load.ModelLoader.loadFolder(
                new dev.jlens.model.ModelLocation("stories260k", null, Fixtures.dir("stories260k"), false),
                dev.jlens.kernels.Backend.reference())) {
            reproducesGreedyContinuation(m, kvCache);
        }
    }

    private static void reproducesGreedyContinuation(HookedModel stories, boolean kvCache) throws IOException {
        JsonNode ref = new ObjectMapper().readTree(Fixtures.dir("stories260k").resolve("generate.json").toFile());
        int[] prompt = stories.encode(ref.get("prompt").asText(), null);
        assertArrayEquals(ints(ref.get("prompt_ids")), prompt);
        int[] want = ints(ref.get("new_token_ids"));
        StringBuilder streamed = new StringBuilder();
        List<Integer> tokens = new ArrayList<>();
        Generation g = new Generator(stories).generate(prompt, GenerationConfig.greedy(want.length).withKvCache(kvCache),
                Hooks.none(), (s, id, text) -> {
                    tokens.add(id);
                    streamed.append(text);
                });
        assertArrayEquals(want, g.newIds());
        assertEquals(ref.get("new_text").asText(), g.text());
        assertEquals(g.text(), streamed.toString(), "streamed pieces add up to the text");
        assertEquals(want.length, tokens.size(), "one callback per token");
        assertEquals(Generation.StopReason.MAX_TOKENS, g.stop());
        assertEquals(ref.get("full_text_djl_decode").asText(), stories.tokenizer().decode(g.allIds()));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void batchedGenerationWithSequencesLeavingAndJoiningEqualsOneAtATime(boolean kvCache) {
        List<String> texts = List.of("Once upon a time", "The cat", "Lily and Tom went to the park", "One day",
                "A big red ball", "She was happy", "Tim had a dog");
        List<int[]> ids = new ArrayList<>();
        for (String t : texts) ids.add(stories.encode(t, null));
        // A stop string ends each story at its own first sentence, so sequences leave at different steps and
        // the next prompt's prefill shares a forward pass with the others' decoding.
        GenerationConfig cfg = GenerationConfig.greedy(30).withStopStrings(List.of(".")).withKvCache(kvCache);
        Generator g = new Generator(stories);
        List<Generation> alone = new ArrayList<>();
        for (int[] p : ids) alone.add(g.generate(p, cfg, Hooks.none(), null));
        assertTrue(alone.stream().mapToInt(a -> a.newIds().length).distinct().count() > 2,
                "the prompts should finish at different steps for this test to mean something");
        for (int maxBatch : new int[]{1, 2, 3, 7, 10}) {
            List<StringBuilder> streamed = new ArrayList<>();
            for (int i = 0; i < ids.size(); i++) streamed.add(new StringBuilder());
            List<Generation> batched = g.generate(ids, cfg, Hooks.none(), (s, id, text) -> streamed.get(s).append(text), maxBatch);
            for (int s = 0; s < ids.size(); s++) {
                String what = "prompt " + s + ", batch of " + maxBatch + (kvCache ? "" : ", no cache");
                assertArrayEquals(alone.get(s).newIds(), batched.get(s).newIds(), what);
                assertEquals(alone.get(s).text(), batched.get(s).text(), what);
                assertEquals(alone.get(s).stop(), batched.get(s).stop(), what);
                assertEquals(batched.get(s).text(), streamed.get(s).toString(), what + ": streamed pieces");
            }
        }
    }

    @Test
    void hooksNeedEveryPromptInTheBatch() {
        Hooks hooks = Hooks.none().with("blocks.0.hook_resid_post", (point, v, batch) -> v);
        List<int[]> ids = List.of(stories.encode("One day", null), stories.encode("The cat", null));
        JlensException e = assertThrows(JlensException.class,
                () -> new Generator(stories).generate(ids, GenerationConfig.greedy(3), hooks, null, 1));
        assertTrue(e.getMessage().contains("all in one batch"), e.getMessage());
    }

    @Test
    void stopStringEndsGenerationAndIsNeverStreamed() {
        int[] prompt = stories.encode("Once upon a time", null);
        StringBuilder streamed = new StringBuilder();
        GenerationConfig cfg = GenerationConfig.greedy(40).withStopStrings(List.of("Lily."));
        Generation g = new Generator(stories).generate(prompt, cfg, Hooks.none(), (s, id, t) -> streamed.append(t));
        assertEquals(", there was a little girl named ", g.text());
        assertEquals(g.text(), streamed.toString());
        assertEquals(Generation.StopReason.STOP_STRING, g.stop());
        assertTrue(g.newIds().length < 40);
    }

    @Test
    void seededSamplingIsReproducibleAndTopK1IsGreedy() {
        Generator gen = new Generator(stories);
        List<int[]> prompts = List.of(stories.encode("Once upon a time", null), stories.encode("Lily saw a big ball.", null));
        GenerationConfig base = GenerationConfig.greedy(12).withStopAtEos(false);
        List<Generation> greedy = gen.generate(prompts, base, Hooks.none(), null);
        GenerationConfig hot = base.withSampling(1.0, 0, 1.0, 7);
        List<Generation> a = gen.generate(prompts, hot, Hooks.none(), null);
        List<Generation> b = gen.generate(prompts, hot, Hooks.none(), null);
        List<Generation> other = gen.generate(prompts, base.withSampling(1.0, 0, 1.0, 8), Hooks.none(), null);
        boolean anyDiffers = false;
        for (int s = 0; s < prompts.size(); s++) {
            assertArrayEquals(a.get(s).newIds(), b.get(s).newIds(), "same seed, same tokens");
            anyDiffers |= !java.util.Arrays.equals(a.get(s).newIds(), other.get(s).newIds());
            // The draws of a sequence depend on the seed and its index only, not on the batch around it.
            if (s == 0) assertArrayEquals(a.get(0).newIds(), gen.generate(prompts.get(0), hot, Hooks.none(), null).newIds());
            assertArrayEquals(greedy.get(s).newIds(),
                    gen.generate(List.of(prompts.get(s)), base.withSampling(1.5, 1, 1.0, 3), Hooks.none(), null).getFirst().newIds(),
                    "top-k 1 is greedy");
            assertArrayEquals(greedy.get(s).newIds(),
                    gen.generate(List.of(prompts.get(s)), base.withSampling(1.5, 0, 1e-6, 3), Hooks.none(), null).getFirst().newIds(),
                    "a tiny top-p keeps only the most likely token");
        }
        assertTrue(anyDiffers, "another seed should draw other tokens somewhere in 24 draws at temperature 1");
    }

    @Test
    void samplerFollowsTheWarpedDistribution() {
        float[] logits = {0f, (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)};   // p = .1 .2 .3 .4
        int n = 40_000;
        int[] plain = draw(new GenerationConfig(1, 1, 0, 1, 5, List.of(), true, true), logits, n);
        double[] p = {0.1, 0.2, 0.3, 0.4};
        for (int i = 0; i < 4; i++) {
            double sd = Math.sqrt(n * p[i] * (1 - p[i]));
            assertTrue(Math.abs(plain[i] - n * p[i]) < 5 * sd, "token " + i + ": " + plain[i] + " of " + n);
        }
        int[] topK = draw(new GenerationConfig(1, 1, 2, 1, 5, List.of(), true, true), logits, n);
        assertEquals(0, topK[0] + topK[1], "top-k 2 keeps tokens 2 and 3 only");
        assertTrue(Math.abs(topK[3] - n * 4.0 / 7) < 5 * Math.sqrt(n * (4.0 / 7) * (3.0 / 7)));
        // top-p 0.75: ascending cumulative .1 .3 .6 -> tokens 0 and 1 (cum <= .25... .3 > .25) : only token 0 dropped
        int[] topP = draw(new GenerationConfig(1, 1, 0, 0.75, 5, List.of(), true, true), logits, n);
        assertEquals(0, topP[0]);
        assertTrue(topP[1] > 0 && topP[2] > 0 && topP[3] > 0);
        // temperature 0.5 squares the odds: p ∝ 1, 4, 9, 16
        int[] cold = draw(new GenerationConfig(1, 0.5, 0, 1, 5, List.of(), true, true), logits, n);
        assertTrue(Math.abs(cold[3] - n * 16.0 / 30) < 5 * Math.sqrt(n * (16.0 / 30) * (14.0 / 30)));
    }

    private static int[] draw(GenerationConfig cfg, float[] logits, int n) {
        Sampler s = new Sampler(cfg);
        SplittableRandom rng = s.random(0);
        int[] counts = new int[logits.length];
        for (int i = 0; i < n; i++) counts[s.next(logits, 0, logits.length, rng)]++;
        return counts;
    }

    @Test
    void hooksRunOnGeneratedTokensToo() {
        int[] prompt = stories.encode("Once upon a time", null);
        AtomicInteger rows = new AtomicInteger();
        AtomicInteger generatedRows = new AtomicInteger();
        Hooks count = Hooks.none().with("blocks.0.hook_resid_post", (point, v, batch) -> {
            rows.addAndGet(v.rows());
            for (int p : batch.positions()) if (p >= prompt.length) generatedRows.incrementAndGet();
            return v;
        });
        new Generator(stories).generate(prompt, GenerationConfig.greedy(8).withStopAtEos(false), count, null);
        // The prompt once, then every generated token but the last (which is never fed back).
        assertEquals(prompt.length + 7, rows.get());
        assertEquals(7, generatedRows.get());

        // A hook that changes activations changes the continuation, with and without the cache alike.
        Hooks scale = Hooks.none().with("blocks.2.hook_resid_post", (point, v, batch) -> {
            for (int i = 0; i < v.data().length; i++) v.data()[i] *= -1;
            return v;
        });
        GenerationConfig cfg = GenerationConfig.greedy(10).withStopAtEos(false);
        Generation plain = new Generator(stories).generate(prompt, cfg, Hooks.none(), null);
        Generation steered = new Generator(stories).generate(prompt, cfg, scale, null);
        Generation steeredNoCache = new Generator(stories).generate(prompt, cfg.withKvCache(false), scale, null);
        assertFalse(java.util.Arrays.equals(plain.newIds(), steered.newIds()));
        assertArrayEquals(steeredNoCache.newIds(), steered.newIds());
    }

    @Test
    void badSettingsAreClearErrors() {
        assertTrue(assertThrows(JlensException.class, () -> GenerationConfig.greedy(0)).getMessage().contains("--max-new-tokens"));
        assertTrue(assertThrows(JlensException.class, () -> GenerationConfig.greedy(5).withSampling(-1, 0, 1, 0))
                .getMessage().contains("--temperature"));
        assertTrue(assertThrows(JlensException.class, () -> GenerationConfig.greedy(5).withSampling(1, -2, 1, 0))
                .getMessage().contains("--top-k"));
        assertTrue(assertThrows(JlensException.class, () -> GenerationConfig.greedy(5).withSampling(1, 0, 0, 0))
                .getMessage().contains("--top-p"));
        assertTrue(assertThrows(JlensException.class, () -> GenerationConfig.greedy(5).withStopStrings(List.of("")))
                .getMessage().contains("--stop"));
        int[] tooLong = new int[stories.info().maxPositions()];
        java.util.Arrays.fill(tooLong, 5);
        assertTrue(assertThrows(JlensException.class, () -> new Generator(stories).generate(tooLong,
                GenerationConfig.greedy(3), Hooks.none(), null)).getMessage().contains("context"));
    }

    @Test
    void generationStopsAtTheContextEnd() {
        int max = stories.info().maxPositions();
        int[] prompt = new int[max - 3];
        java.util.Arrays.fill(prompt, 300);
        prompt[0] = 1;
        Generation g = new Generator(stories).generate(prompt, GenerationConfig.greedy(50).withStopAtEos(false), Hooks.none(), null);
        assertEquals(3, g.newIds().length);
        assertEquals(Generation.StopReason.CONTEXT, g.stop());
    }

    @Test
    void encodersCannotGenerateOrCache() {
        try (HookedModel minilm = EmbeddedModels.minilm()) {
            JlensException e = assertThrows(JlensException.class, () -> new Generator(minilm));
            assertTrue(e.getMessage().contains("encoder"), e.getMessage());
            KvCache cache = KvCache.create(1);
            e = assertThrows(JlensException.class, () -> minilm.model().forward(cache.batch(List.of(minilm.encode("hi", null))),
                    ForwardOptions.full(), Hooks.none(), cache));
            assertTrue(e.getMessage().contains("no KV cache"), e.getMessage());
            FloatTensor plain = minilm.model().forward(dev.jlens.tensor.TokenBatch.single(minilm.encode("hi", null)),
                    ForwardOptions.full(), Hooks.none(), null);
            assertNotEquals(null, plain);
        }
    }

    private static int[] ints(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
