package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The orthogonalised checkpoint's plain forward pass equals directional ablation on the original (every
 * resid_pre, attn_out and mlp_out) within 1e-4, in every causal family and weight format, tied or not.
 */
class OrthogonalizeTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt_neox_tiny_fp16", "gpt_neox_tiny_bin", "gpt2_tiny",
            "llama_tiny", "qwen2_tiny", "stories260k", "qwen3_tiny", "phi3_tiny", "mistral_sw_tiny", "llama31_tiny"})
    void orthogonalisedForwardEqualsAblation(String fixture) throws Exception {
        try (HookedModel m = TestModels.load(fixture)) {
            float[] r = InterventionTest.randomDirection(m.info().dModel(), 21);
            Path out = tmp.resolve(fixture + "-orth");
            WeightOrthogonalizer.Summary sum = WeightOrthogonalizer.orthogonalize(TestModels.fixture(fixture), r, out,
                    Map.of("direction", "random"));
            assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
            assertTrue(Files.isRegularFile(out.resolve("orthogonalization.json")));
            assertTrue(sum.changed().size() >= 1 + 2 * m.info().nLayers(), "changed: " + sum.changed());
            List<int[]> ps = InterventionTest.prompts(m);
            TokenBatch batch = TokenBatch.of(ps);
            Hooks ablate = Intervention.ablate(r, Intervention.everyLayer(m.model())).hooks(null);
            InterventionTest.Recorder want = new InterventionTest.Recorder(), got = new InterventionTest.Recorder();
            FloatTensor ablated = m.model().forward(batch, ForwardOptions.full(), ablate.with("blocks.*.hook_resid_post", want::record));
            try (HookedModel o = ModelLoader.loadFolder(new ModelLocation("orth", null, out, false))) {
                FloatTensor plain = o.model().forward(batch, ForwardOptions.full(), Hooks.none().with("blocks.*.hook_resid_post", got::record));
                double worst = 0;
                for (int i = 0; i < plain.data().length; i++) worst = Math.max(worst, Math.abs(plain.data()[i] - ablated.data()[i]));
                assertTrue(worst <= 1e-4, fixture + ": orthogonalised logits differ from ablation by " + worst);
                for (String hook : want.rows.keySet()) {
                    List<double[]> a = want.rows.get(hook), b = got.rows.get(hook);
                    for (int t = 0; t < a.size(); t++) {
                        for (int j = 0; j < r.length; j++) assertEquals(a.get(t)[j], b.get(t)[j], 1e-4, hook + " row " + t);
                        assertTrue(Math.abs(InterventionTest.proj(b.get(t), r)) < 1e-5 * InterventionTest.norm(b.get(t)),
                                hook + ": the orthogonalised residual has a component along r̂");
                    }
                }
                // The unablated original differs, so the test has teeth.
                FloatTensor original = m.model().forward(batch, ForwardOptions.full(), Hooks.none());
                double diff = 0;
                for (int i = 0; i < original.data().length; i++) diff = Math.max(diff, Math.abs(original.data()[i] - plain.data()[i]));
                assertTrue(diff > 1e-3, "ablating a random direction changes the logits: " + diff);
            }
        }
    }

    @Test
    void refusesAWrongWidthAndTheModelsOwnFolder() {
        Path src = TestModels.fixture("llama_tiny");
        JlensException e = assertThrows(JlensException.class,
                () -> WeightOrthogonalizer.orthogonalize(src, InterventionTest.randomDirection(32, 1), tmp.resolve("o"), null));
        assertTrue(e.getMessage().contains("32 dimensions"), e.getMessage());
        e = assertThrows(JlensException.class,
                () -> WeightOrthogonalizer.orthogonalize(src, InterventionTest.randomDirection(64, 1), src, null));
        assertTrue(e.getMessage().contains("own folder"), e.getMessage());
    }

    /**
     * Gemma 2/3 and OLMo-2 normalise each branch before it joins the residual, y = g ⊙ x / rms(x): projecting r̂
     * out of o_proj/down_proj leaves y a component along r̂, and projecting g ⊙ r̂ out instead makes y ⊥ r̂
     * but changes rms(x), so no weight edit equals run-time ablation. They are refused, naming the post-norm.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gemma2_tiny", "gemma3_tiny", "olmo2_tiny"})
    void refusesPostNormFamiliesWithTheRunTimeAlternative(String fixture) {
        JlensException e = assertThrows(JlensException.class, () -> WeightOrthogonalizer.orthogonalize(
                TestModels.fixture(fixture), InterventionTest.randomDirection(64, 1), tmp.resolve("o"), null));
        assertTrue(e.getMessage().contains("post_attention_layernorm") && e.getMessage().contains("steer --mode ablate"),
                e.getMessage());
        assertTrue(!Files.exists(tmp.resolve("o")), "nothing written");
    }
}
