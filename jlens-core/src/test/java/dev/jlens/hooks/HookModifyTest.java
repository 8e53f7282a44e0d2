package dev.jlens.hooks;

import dev.jlens.model.CacheRequest;

import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HookModifyTest {

    static HookedModel model;
    static TokenBatch batch;

    @BeforeAll
    static void load() {
        var dir = Fixtures.dir("gpt_neox_tiny");
        model = ModelLoader.loadFolder(new ModelLocation("gpt_neox_tiny", null, dir, false));
        batch = TokenBatch.of(List.of(model.encode("The cat sat", null), model.encode("Why? Because 2+2=4!", null)));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void zeroingResidPostChangesLogits() {
        FloatTensor base = model.forward(batch, Hooks.none());
        FloatTensor zeroed = model.forward(batch, Hooks.none().with("blocks.1.hook_resid_post", (p, v, b) -> {
            Arrays.fill(v.data(), 0f);
            return v;
        }));
        double diff = Fixtures.maxAbsDiff(base.data(), zeroed.data());
        assertTrue(diff > 1e-2, "zeroing the residual stream must change the logits, max diff " + diff);
    }

    @Test
    void addingZeroChangesNothing() {
        FloatTensor base = model.forward(batch, Hooks.none());
        FloatTensor same = model.forward(batch, Hooks.none().with("blocks.*.hook_resid_post", (p, v, b) -> {
            float[] out = v.data().clone();
            for (int i = 0; i < out.length; i++) out[i] += 0f;
            return new FloatTensor(out, v.shape());
        }));
        assertArrayEquals(base.data(), same.data());
    }

    @Test
    void returnedTensorReplacesActivation() {
        AtomicInteger seen = new AtomicInteger();
        // Replacing resid_pre of block 2 with resid_pre of block 2 + 1 must show up in resid_post of block 2.
        float[][] post = new float[2][];
        for (int run = 0; run < 2; run++) {
            final int r = run;
            Hooks h = Hooks.none()
                    .with("blocks.2.hook_resid_pre", (p, v, b) -> {
                        if (r == 0) return v;
                        float[] o = v.data().clone();
                        for (int i = 0; i < o.length; i++) o[i] += 1f;
                        return new FloatTensor(o, v.shape());
                    })
                    .with("blocks.2.hook_resid_post", (p, v, b) -> {
                        post[r] = v.data().clone();
                        seen.incrementAndGet();
                        return v;
                    });
            model.forward(batch, h);
        }
        assertEquals(2, seen.get());
        assertTrue(Fixtures.maxAbsDiff(post[0], post[1]) > 0.5);
    }

    @Test
    void wrongShapeFromHookIsAClearError() {
        var e = assertThrows(dev.jlens.JlensException.class, () -> model.forward(batch,
                Hooks.none().with("hook_embed", (p, v, b) -> FloatTensor.zeros(1, 1))));
        assertTrue(e.getMessage().contains("hook_embed"), e.getMessage());
    }

    @Test
    void unknownHookNameListsValidPattern() {
        var e = assertThrows(dev.jlens.JlensException.class,
                () -> HookPattern.parse("blocks.*.hook_resid_pst").select(model.hookPoints()));
        assertTrue(e.getMessage().contains("blocks.{0..2}.hook_resid_post"), e.getMessage());
    }

    @Test
    void stopsAfterDeepestHookedLayer() {
        AtomicInteger calls = new AtomicInteger();
        Hooks h = Hooks.none().with("blocks.*.hook_resid_post", (p, v, b) -> {
            calls.incrementAndGet();
            return v;
        });
        assertEquals(2, h.deepestLayer(model.hookPoints()));
        FloatTensor out = model.model().forward(batch, dev.jlens.model.ForwardOptions.upTo(0), h);
        assertEquals(null, out, "no logits when stopping early");
        assertEquals(1, calls.get(), "only block 0 ran");
        var cache = model.runWithCache(List.of(model.encode("Hello", null)), CacheRequest.of(HookPattern.parse("blocks.0.hook_resid_post")).batchSize(4));
        assertEquals(List.of("blocks.0.hook_resid_post"), cache.names());
    }

    @Test
    void poolingsAgreeWithPerTokenValues() {
        List<int[]> ids = List.of(model.encode("The cat sat", null), model.encode("Hello", null));
        var all = model.runWithCache(ids, CacheRequest.of(HookPattern.parse("blocks.1.hook_resid_post")).pooling(Pooling.ALL).batchSize(2));
        for (Pooling p : List.of(Pooling.MEAN, Pooling.LAST, Pooling.MEAN_SKIP_FIRST)) {
            var pooled = model.runWithCache(ids, CacheRequest.of(HookPattern.parse("blocks.1.hook_resid_post")).pooling(p).batchSize(2)).pooled("blocks.1.hook_resid_post");
            for (int i = 0; i < ids.size(); i++) {
                FloatTensor t = all.perPrompt("blocks.1.hook_resid_post").get(i);
                int d = t.cols(), len = t.rows();
                for (int j = 0; j < d; j++) {
                    double want = switch (p) {
                        case LAST -> t.get(len - 1, j);
                        case MEAN -> mean(t, j, 0, len);
                        case MEAN_SKIP_FIRST -> mean(t, j, len > 1 ? 1 : 0, len);
                        default -> throw new IllegalStateException();
                    };
                    assertEquals(want, pooled.get(i, j), 1e-6, p + " prompt " + i + " dim " + j);
                }
            }
        }
    }

    private static double mean(FloatTensor t, int col, int from, int to) {
        double s = 0;
        for (int r = from; r < to; r++) s += t.get(r, col);
        return s / (to - from);
    }
}
