package dev.jlens.model;

import dev.jlens.hooks.Hooks;
import dev.jlens.io.Checkpoints;
import dev.jlens.kernels.Backend;
import dev.jlens.model.gptneox.GptNeoX;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A forward pass gives the same bits on 1 thread and on 3, run after run, and a prompt gives the same bits
 * alone and packed into a batch with others: every hook tensor and the logits are compared bitwise.
 */
class DeterminismTest {

    private static Map<String, float[]> run(TransformerModel model, TokenBatch batch) {
        Map<String, float[]> seen = new LinkedHashMap<>();
        Hooks hooks = Hooks.none().with("*", (point, value, b) -> {
            seen.put(point.name(), value.data().clone());
            return value;
        });
        FloatTensor logits = model.forward(batch, ForwardOptions.full(), hooks);
        seen.put("logits", logits.data().clone());
        return seen;
    }

    private static void assertSameBits(Map<String, float[]> want, Map<String, float[]> got, String what) {
        assertEquals(want.keySet(), got.keySet(), what + ": hooks fired");
        for (String name : want.keySet()) {
            float[] a = want.get(name), b = got.get(name);
            assertEquals(a.length, b.length, what + ": " + name);
            for (int i = 0; i < a.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                    throw new AssertionError(what + ": " + name + "[" + i + "] is " + b[i] + " vs " + a[i]);
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_fp16", "gpt_neox_tiny_seq"})
    void sameBitsForAnyThreadCountAndBatch(String fixture) {
        Path dir = Fixtures.dir(fixture);
        ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
        TransformerModel one = GptNeoX.FAMILY.load(config, Checkpoints.open(dir), Backend.cpu(1));
        TransformerModel three = GptNeoX.FAMILY.load(config, Checkpoints.open(dir), Backend.cpu(3));
        Random r = new Random(11);
        List<int[]> prompts = new ArrayList<>();
        for (int len : new int[]{1, 9, 30, 4}) {
            int[] ids = new int[len];
            for (int i = 0; i < len; i++) ids[i] = r.nextInt(50000);
            prompts.add(ids);
        }
        TokenBatch batch = TokenBatch.of(prompts);
        Map<String, float[]> base = run(one, batch);
        assertSameBits(base, run(one, batch), fixture + " second run, 1 thread");
        assertSameBits(base, run(three, batch), fixture + " 3 threads");
        assertSameBits(base, run(three, batch), fixture + " 3 threads, second run");

        // The third prompt alone: its rows of every per-token activation match the batched run.
        int off = batch.offsets()[2], len = batch.lengths()[2];
        Map<String, float[]> alone = run(three, TokenBatch.single(prompts.get(2)));
        for (Map.Entry<String, float[]> e : alone.entrySet()) {
            // attention scores and patterns are [heads, q, k] per sequence, not rows per token
            if (e.getKey().contains("pattern") || e.getKey().contains("attn_scores")) continue;
            float[] all = base.get(e.getKey());
            int width = all.length / batch.totalTokens();
            float[] rows = java.util.Arrays.copyOfRange(all, off * width, (off + len) * width);
            assertSameBits(Map.of(e.getKey(), rows), Map.of(e.getKey(), e.getValue()), fixture + " prompt alone");
        }
    }

    /**
     * The forward pass reuses scratch buffers for activations no hook asked for. A hook that keeps the very
     * tensor it was given (no copy), on any one point or on every other point, still sees the values of a run
     * with every hook on, and the logits do not depend on which hooks are on.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt2_tiny", "llama_tiny", "qwen2_tiny"})
    void keptHookTensorsAreNotOverwrittenByScratchReuse(String fixture) {
        try (HookedModel hooked = dev.jlens.load.ModelLoader.loadFolder(
                new ModelLocation(fixture, null, Fixtures.dir(fixture), false))) {
            keptHookTensors(hooked.model(), fixture);
        }
    }

    private static void keptHookTensors(TransformerModel model, String fixture) {
        TokenBatch batch = TokenBatch.of(List.of(new int[]{5, 17, 300, 42, 9}, new int[]{7, 7, 400}));
        Map<String, float[]> all = run(model, batch);
        List<String> names = model.hookPoints().stream().map(dev.jlens.hooks.HookPoint::name).toList();
        List<List<String>> selections = new ArrayList<>();
        for (String n : names) selections.add(List.of(n));
        List<String> everyOther = new ArrayList<>();
        for (int i = 0; i < names.size(); i += 2) everyOther.add(names.get(i));
        selections.add(everyOther);
        selections.add(List.of());
        for (List<String> chosen : selections) {
            Map<String, FloatTensor> kept = new LinkedHashMap<>();
            Hooks hooks = Hooks.none().with(chosen::contains, (point, value, b) -> {
                kept.put(point.name(), value);
                return value;
            });
            FloatTensor logits = model.forward(batch, ForwardOptions.full(), hooks);
            Map<String, float[]> got = new LinkedHashMap<>();
            kept.forEach((n, t) -> got.put(n, t.data()));
            got.put("logits", logits.data());
            Map<String, float[]> want = new LinkedHashMap<>();
            for (String n : got.keySet()) want.put(n, all.get(n));
            assertSameBits(want, got, fixture + " hooks on " + chosen);
        }
    }
}
