package dev.jlens.model;

import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The per-head and MLP hooks (hook_q/k/v, hook_rot_q/k, hook_attn_scores, hook_pattern, hook_z, hook_result,
 * mlp.hook_pre/pre_linear/post) against golden_heads.safetensors of each causal fixture, within 1e-4, with the
 * prompts packed several to a batch. A new family's fixture is checked by adding its directory name below.
 */
class HeadHooksParityTest {

    static final double ATOL = 1e-4;

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt_neox_tiny_fp16", "gpt_neox_tiny_bin", "gpt_neox_tiny_sharded",
            "gpt2_tiny", "llama_tiny", "qwen2_tiny", "stories260k", "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny",
            "olmo2_tiny", "mistral_sw_tiny", "llama31_tiny"})
    void matchesHuggingFace(String fixture) {
        check(fixture, dev.jlens.kernels.Backend.defaults());
    }

    /** The same on the scalar reference backend, for every distinct architecture (grouped heads, windows, post-norms). */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt2_tiny", "llama_tiny", "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny",
            "olmo2_tiny", "mistral_sw_tiny"})
    void referenceBackendMatchesHuggingFace(String fixture) {
        check(fixture, dev.jlens.kernels.Backend.reference());
    }

    private static void check(String fixture, dev.jlens.kernels.Backend backend) {
        Fixtures.Golden g = Fixtures.golden(fixture);
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, g.dir(), false), backend);
             SafetensorsFile heads = SafetensorsFile.open(headsFile(fixture))) {
            List<int[]> ids = new ArrayList<>();
            for (Fixtures.Prompt p : g.prompts()) ids.add(p.ids());
            ActivationCache cache = m.runWithCache(ids,
                    CacheRequest.of("blocks.*.attn.*,blocks.*.mlp.*").pooling(Pooling.ALL).batchSize(3));
            Set<String> goldenHooks = new HashSet<>();
            int checked = 0;
            for (String name : heads.names()) {
                if (name.endsWith(".input_ids")) continue;
                int dot = name.indexOf('.');
                int prompt = Integer.parseInt(name.substring(1, dot));
                String hook = name.substring(dot + 1);
                goldenHooks.add(hook);
                TensorEntry want = heads.find(name);
                FloatTensor got = cache.perPrompt(hook).get(prompt);
                long[] shape = want.shape();
                int[] wantShape = new int[shape.length];
                for (int i = 0; i < shape.length; i++) wantShape[i] = (int) shape[i];
                assertArrayEquals(wantShape, got.shape(), fixture + " " + name + " shape");
                assertClose(want.toFloatArray(), got.data(), fixture + " " + name);
                checked++;
            }
            assertTrue(checked >= 8 * g.nLayers(), fixture + ": too few golden tensors checked: " + checked);
            // Every per-head hook the model offers has a golden (GPT-2 has no rotary hooks, only gated MLPs pre_linear).
            for (HookPoint p : m.hookPoints()) {
                if (p.name().contains(".attn.") || p.name().contains(".mlp.")) {
                    assertTrue(goldenHooks.contains(p.name()), fixture + " offers " + p.name() + " which HF does not have");
                }
            }
        }
    }

    /** The bin and sharded variants hold gpt_neox_tiny_fp16's weights and use its file (fixtures README). */
    static Path headsFile(String fixture) {
        String dir = fixture.startsWith("gpt_neox_tiny_bin") || fixture.equals("gpt_neox_tiny_sharded") ? "gpt_neox_tiny_fp16" : fixture;
        return Fixtures.dir(dir).resolve("golden_heads.safetensors");
    }

    /** Within ATOL; masked scores (-inf) must be -inf exactly. */
    static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + " length");
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            if (Float.isInfinite(want[i]) || Float.isInfinite(got[i])) {
                assertEquals(want[i], got[i], what + " masked entry " + i);
                continue;
            }
            worst = Math.max(worst, Math.abs((double) want[i] - got[i]));
        }
        assertTrue(worst <= ATOL, what + ": max abs error " + worst);
    }

    // ---- changing a per-head hook changes the pass

    private static final String FIXTURE = "gpt2_tiny";

    private static HookedModel load() {
        return ModelLoader.loadFolder(new ModelLocation(FIXTURE, null, Fixtures.dir(FIXTURE), false));
    }

    private static float[] golden(SafetensorsFile f, String name) {
        return f.find(name).toFloatArray();
    }

    /** Zeroing head 1's z at layer 0 removes exactly that head's result from the attention output. */
    @Test
    void ablatingOneHeadsZRemovesItsResult() {
        try (HookedModel m = load(); SafetensorsFile heads = SafetensorsFile.open(headsFile(FIXTURE));
             SafetensorsFile main = SafetensorsFile.open(Fixtures.dir(FIXTURE).resolve("golden.safetensors"))) {
            int[] ids = ids(heads, 1);
            AtomicReference<float[]> attnOut = new AtomicReference<>();
            Hooks h = Hooks.none()
                    .with("blocks.0.attn.hook_z", (p, v, b) -> {
                        int heads_ = v.dim(1), hd = v.dim(2);
                        for (int t = 0; t < v.dim(0); t++) java.util.Arrays.fill(v.data(), (t * heads_ + 1) * hd, (t * heads_ + 2) * hd, 0f);
                        return v;
                    })
                    .with("blocks.0.hook_attn_out", (p, v, b) -> {
                        attnOut.set(v.data().clone());
                        return v;
                    });
            m.forward(TokenBatch.of(List.of(ids)), h);
            float[] want = golden(main, "p1.blocks.0.hook_attn_out").clone();
            float[] result = golden(heads, "p1.blocks.0.attn.hook_result");
            int d = m.info().dModel(), nh = m.info().nHeads();
            for (int t = 0; t < want.length / d; t++) {
                for (int j = 0; j < d; j++) want[t * d + j] -= result[(t * nh + 1) * d + j];
            }
            assertClose(want, attnOut.get(), "attn_out without head 1");
        }
    }

    /**
     * A hook on hook_result sees [T, heads, d] and the attention output is rebuilt from it: left alone it
     * matches HF; zeroing head 2 removes it.
     */
    @Test
    void resultHookFeedsTheAttentionOutput() {
        try (HookedModel m = load(); SafetensorsFile heads = SafetensorsFile.open(headsFile(FIXTURE));
             SafetensorsFile main = SafetensorsFile.open(Fixtures.dir(FIXTURE).resolve("golden.safetensors"))) {
            int[] ids = ids(heads, 1);
            int d = m.info().dModel(), nh = m.info().nHeads();
            for (boolean ablate : new boolean[]{false, true}) {
                AtomicReference<float[]> attnOut = new AtomicReference<>();
                Hooks h = Hooks.none()
                        .with("blocks.1.attn.hook_result", (p, v, b) -> {
                            assertArrayEquals(new int[]{ids.length, nh, d}, v.shape());
                            if (ablate) for (int t = 0; t < ids.length; t++) java.util.Arrays.fill(v.data(), (t * nh + 2) * d, (t * nh + 3) * d, 0f);
                            return v;
                        })
                        .with("blocks.1.hook_attn_out", (p, v, b) -> {
                            attnOut.set(v.data().clone());
                            return v;
                        });
                m.forward(TokenBatch.of(List.of(ids)), h);
                float[] want = golden(main, "p1.blocks.1.hook_attn_out").clone();
                float[] result = golden(heads, "p1.blocks.1.attn.hook_result");
                if (ablate) {
                    for (int t = 0; t < ids.length; t++) for (int j = 0; j < d; j++) want[t * d + j] -= result[(t * nh + 2) * d + j];
                }
                assertClose(want, attnOut.get(), "attn_out, head 2 ablated: " + ablate);
            }
        }
    }

    /**
     * Scores shifted by a constant give the same pattern (softmax is shift-invariant) and so the same logits;
     * a pattern replaced by one-hot attention to the first token makes z equal to that token's value.
     */
    @Test
    void scoresAndPatternHooksFeedTheAttention() {
        try (HookedModel m = load(); SafetensorsFile heads = SafetensorsFile.open(headsFile(FIXTURE))) {
            TokenBatch batch = TokenBatch.of(List.of(ids(heads, 1), ids(heads, 2)));
            FloatTensor base = m.forward(batch, Hooks.none());
            FloatTensor shifted = m.forward(batch, Hooks.none().with("blocks.*.attn.hook_attn_scores", (p, v, b) -> {
                for (int i = 0; i < v.data().length; i++) v.data()[i] += 3f;
                return v;
            }));
            assertClose(base.data(), shifted.data(), "logits with shifted scores");
            AtomicReference<FloatTensor> z = new AtomicReference<>(), values = new AtomicReference<>();
            m.forward(batch, Hooks.none()
                    .with("blocks.0.attn.hook_pattern", (p, v, b) -> {
                        float[] pat = v.data();
                        java.util.Arrays.fill(pat, 0f);
                        int at = 0, nh = m.info().nHeads();
                        for (int len : b.lengths()) {
                            for (int r = 0; r < nh * len; r++, at += len) pat[at] = 1f;
                        }
                        return v;
                    })
                    .with("blocks.0.attn.hook_v", (p, v, b) -> {
                        values.set(v.copy());
                        return v;
                    })
                    .with("blocks.0.attn.hook_z", (p, v, b) -> {
                        z.set(v.copy());
                        return v;
                    }));
            int w = z.get().data().length / batch.totalTokens();
            for (int s = 0; s < batch.size(); s++) {
                int first = batch.offsets()[s];
                for (int t = first; t < first + batch.lengths()[s]; t++) {
                    for (int j = 0; j < w; j++) {
                        assertEquals(values.get().data()[first * w + j], z.get().data()[t * w + j], 0f, "z at token " + t);
                    }
                }
            }
        }
    }

    /** Reading every hook point, per-head ones included, leaves the logits exactly as they were. */
    @Test
    void readingEveryHookChangesNothing() {
        for (String fixture : List.of("gpt_neox_tiny", "llama_tiny")) {
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, Fixtures.dir(fixture), false))) {
                TokenBatch batch = TokenBatch.of(List.of(m.encode("The cat sat", null), m.encode("Why? Because 2+2=4!", null)));
                FloatTensor base = m.forward(batch, Hooks.none());
                FloatTensor hooked = m.forward(batch, Hooks.none().with("*", (p, v, b) -> v));
                assertArrayEquals(base.data(), hooked.data(), fixture + " logits with every hook read, bit for bit");
                long perHead = m.hookPoints().stream().filter(p -> p.kind() == HookKind.ATTN_RESULT).count();
                assertEquals(m.info().nLayers(), perHead);
            }
        }
    }

    private static int[] ids(SafetensorsFile heads, int prompt) {
        long[] l = heads.find("p" + prompt + ".input_ids").toLongArray();
        int[] ids = new int[l.length];
        for (int i = 0; i < l.length; i++) ids[i] = (int) l[i];
        return ids;
    }
}
