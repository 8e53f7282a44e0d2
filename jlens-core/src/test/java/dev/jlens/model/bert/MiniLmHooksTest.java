package dev.jlens.model.bert;

import dev.jlens.model.CacheRequest;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.EmbeddedModels;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.ProgressListener;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Hooks, pooling, early stopping, truncation and loading of the embedded all-MiniLM-L6-v2. */
class MiniLmHooksTest {

    static HookedModel model;

    @BeforeAll
    static void load() {
        model = EmbeddedModels.minilm();
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    static List<int[]> encode(String... prompts) {
        List<int[]> ids = new ArrayList<>();
        for (String p : prompts) ids.add(model.encode(p, null));
        return ids;
    }

    @Test
    void modelInfoDescribesAnEncoder() {
        ModelInfo info = model.info();
        assertEquals("bert", info.family());
        assertFalse(info.causal());
        assertEquals(512, info.maxPositions());
        assertEquals(6, info.nLayers());
        assertEquals(384, info.dModel());
        assertEquals(12, info.nHeads());
        assertEquals(1536, info.dMlp());
        assertEquals(30522, info.vocabSize());
        long d = info.dModel(), m = info.dMlp();
        long embeddings = (info.vocabSize() + info.maxPositions() + 2) * d + 2 * d;
        long perLayer = 4 * (d * d + d) + 2 * (d * m) + m + d + 4 * d;
        assertEquals(embeddings + info.nLayers() * perLayer, info.parameterCount(), "every weight counted once");
    }

    @Test
    void hookNamesFollowTheOtherModels() {
        List<String> names = model.hookPoints().stream().map(HookPoint::name).toList();
        assertEquals("hook_embed", names.getFirst());
        assertEquals(List.of("blocks.0.hook_resid_pre", "blocks.0.attn.hook_pattern", "blocks.0.hook_attn_out",
                "blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post"), names.subList(1, 7));
        assertEquals("blocks.5.hook_resid_post", names.getLast());
        assertEquals(1 + 6 * 6, names.size());
    }

    @Test
    void residualHooksChainAndTheLastIsTheOutput() {
        List<int[]> ids = encode("The cat sat on the mat.", "Hi", "Encoders read the whole sentence at once, in both directions.");
        ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse("*")).pooling(Pooling.ALL).batchSize(ids.size()).logits(true));
        for (int p = 0; p < ids.size(); p++) {
            float[] embed = cache.perPrompt("hook_embed").get(p).data();
            assertArrayEquals(embed, cache.perPrompt("blocks.0.hook_resid_pre").get(p).data(), "hook_embed == resid_pre[0]");
            for (int l = 0; l + 1 < 6; l++) {
                assertArrayEquals(cache.perPrompt("blocks." + l + ".hook_resid_post").get(p).data(),
                        cache.perPrompt("blocks." + (l + 1) + ".hook_resid_pre").get(p).data(),
                        "resid_post[" + l + "] == resid_pre[" + (l + 1) + "]");
            }
            assertArrayEquals(cache.perPrompt("blocks.5.hook_resid_post").get(p).data(),
                    cache.perPrompt("logits").get(p).data(), "the output is the last block's resid_post");
            // Post-LN: resid_mid is normalised, not resid_pre + attn_out.
            FloatTensor pre = cache.perPrompt("blocks.2.hook_resid_pre").get(p);
            FloatTensor attn = cache.perPrompt("blocks.2.hook_attn_out").get(p);
            FloatTensor mid = cache.perPrompt("blocks.2.hook_resid_mid").get(p);
            float[] sum = pre.data().clone();
            for (int i = 0; i < sum.length; i++) sum[i] += attn.data()[i];
            assertTrue(maxAbs(sum, mid.data()) > 0.1, "resid_mid is after the LayerNorm");
        }
    }

    @Test
    void attentionIsBidirectionalWithinEachSequence() {
        List<int[]> ids = encode("one two three four", "five six");
        ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse("blocks.0.attn.hook_pattern")).pooling(Pooling.ALL).batchSize(2));
        int heads = model.info().nHeads();
        double aboveDiagonal = 0;
        for (int s = 0; s < ids.size(); s++) {
            int len = ids.get(s).length;
            FloatTensor t = cache.perPrompt("blocks.0.attn.hook_pattern").get(s);
            assertArrayEquals(new int[]{heads, len, len}, t.shape(), "one [heads, len, len] block per prompt");
            float[] pattern = t.data();
            int base = 0;
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < len; i++) {
                    double rowSum = 0;
                    for (int j = 0; j < len; j++) {
                        float w = pattern[base + (h * len + i) * len + j];
                        rowSum += w;
                        if (j > i) aboveDiagonal += w;
                    }
                    assertEquals(1.0, rowSum, 1e-5, "each query's weights sum to 1 over its own sequence");
                }
            }
        }
        assertTrue(aboveDiagonal > 1, "queries attend to later tokens");
    }

    @Test
    void hooksCanModifyActivations() {
        TokenBatch batch = TokenBatch.of(encode("Steering an encoder.", "Another sentence here."));
        FloatTensor base = model.forward(batch, Hooks.none());

        FloatTensor zeroed = model.forward(batch, Hooks.none().with("blocks.5.hook_resid_post",
                (p, v, b) -> FloatTensor.zeros(v.shape())));
        assertArrayEquals(new float[base.data().length], zeroed.data(), "the returned tensor replaces the activation");

        FloatTensor noMlp = model.forward(batch, Hooks.none().with("blocks.3.hook_mlp_out", (p, v, b) -> {
            Arrays.fill(v.data(), 0f);
            return v;
        }));
        assertTrue(maxAbs(base.data(), noMlp.data()) > 0.1, "an in-place edit changes what follows");

        // Editing resid_mid reaches the MLP and the second residual add, not the block's input.
        float[][] plain = residPrePost(batch, Hooks.none());
        float[][] edited = residPrePost(batch, Hooks.none().with("blocks.1.hook_resid_mid", (p, v, b) -> {
            float[] x = v.data().clone();
            for (int i = 0; i < x.length; i++) x[i] *= 2;
            return new FloatTensor(x, v.shape());
        }));
        assertArrayEquals(plain[0], edited[0], "blocks.1.hook_resid_pre is upstream of the edit");
        assertTrue(maxAbs(plain[1], edited[1]) > 0.1, "blocks.1.hook_resid_post is downstream of the edit");
    }

    /** blocks.1.hook_resid_pre and blocks.1.hook_resid_post of one forward pass with the given hooks. */
    static float[][] residPrePost(TokenBatch batch, Hooks hooks) {
        float[][] seen = new float[2][];
        model.forward(batch, hooks
                .with("blocks.1.hook_resid_pre", (p, v, b) -> {
                    seen[0] = v.data().clone();
                    return v;
                })
                .with("blocks.1.hook_resid_post", (p, v, b) -> {
                    seen[1] = v.data().clone();
                    return v;
                }));
        return seen;
    }

    @Test
    void lastLayerStopsEarly() {
        List<String> fired = new ArrayList<>();
        FloatTensor out = model.model().forward(TokenBatch.single(model.encode("stop early", null)),
                ForwardOptions.upTo(1), Hooks.none().with("*", (p, v, b) -> {
                    fired.add(p.name());
                    return v;
                }));
        assertNull(out);
        assertTrue(fired.contains("blocks.1.hook_resid_post"));
        assertFalse(fired.stream().anyMatch(n -> n.startsWith("blocks.2.")), "block 2 must not run: " + fired);
    }

    @Test
    void meanPooledParaphrasesAreFarCloserThanUnrelatedSentences() {
        List<int[]> ids = encode("A man is playing a guitar.", "Someone plays the guitar.",
                "The stock market fell sharply on Monday.");
        ActivationCache cache = model.runWithCache(ids, CacheRequest.of(HookPattern.parse("blocks.5.hook_resid_post")).batchSize(8));
        double[][] emb = cache.pooledAsDouble("blocks.5.hook_resid_post");
        double paraphrase = cosine(emb[0], emb[1]);
        double unrelated = Math.max(cosine(emb[0], emb[2]), cosine(emb[1], emb[2]));
        assertTrue(paraphrase > 0.7, "paraphrase cosine " + paraphrase);
        assertTrue(paraphrase - unrelated > 0.5, "paraphrase " + paraphrase + " vs unrelated " + unrelated);
    }

    /**
     * HookedModel truncates a longer prompt as Hugging Face does: [CLS] + the first 510 word pieces + [SEP].
     * docs/HOOKS.md documents this.
     */
    @Test
    void tooLongPromptIsTruncatedWithAWarningAndStillRuns() {
        List<String> warnings = new ArrayList<>();
        int[] ids = model.encode("the encoder reads every word ".repeat(120), warnings::add);
        assertEquals(1, warnings.size());
        assertTrue(warnings.getFirst().contains("512"), warnings.getFirst());
        assertEquals(512, ids.length);
        assertEquals(101, ids[0], "[CLS] kept");
        assertEquals(102, ids[511], "[SEP] kept at the end");
        assertNotEquals(102, ids[510], "the text's tail is cut");
        FloatTensor out = model.forward(TokenBatch.single(ids), Hooks.none());
        assertEquals(512, out.rows());
        for (float x : out.data()) assertTrue(Float.isFinite(x));

        int[] tooLong = Arrays.copyOf(ids, 513);
        JlensException e = assertThrows(JlensException.class, () -> model.forward(TokenBatch.single(tooLong), Hooks.none()));
        assertTrue(e.getMessage().contains("position 512"), e.getMessage());
    }

    @Test
    void badTokenIdsAreRejected() {
        JlensException e = assertThrows(JlensException.class,
                () -> model.forward(TokenBatch.single(new int[]{101, 30522, 102}), Hooks.none()));
        assertTrue(e.getMessage().contains("30522"), e.getMessage());
        TokenBatch cached = new TokenBatch(new int[]{101, 102}, new int[]{0}, new int[]{2}, new int[]{3});
        assertThrows(JlensException.class, () -> model.forward(cached, Hooks.none()));
    }

    @Test
    void modelFlagMiniLmLoadsTheEmbeddedModel() {
        for (String name : new String[]{"minilm", "MiniLM", null}) {
            try (HookedModel m = ModelLoader.load(name, null)) {
                assertTrue(m.location().embedded());
                assertEquals("minilm", m.location().id());
                assertNull(m.location().dir());
                assertEquals("bert", m.info().family());
                TokenBatch batch = TokenBatch.single(m.encode("same weights", null));
                assertArrayEquals(model.forward(batch, Hooks.none()).data(), m.forward(batch, Hooks.none()).data(), 1e-5f);
            }
        }
    }

    static double maxAbs(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
        return m;
    }

    static double cosine(double[] a, double[] b) {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.length; i++) {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.sqrt(na * nb);
    }
}
