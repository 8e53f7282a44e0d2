package dev.jlens.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.gpt2.Gpt2;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** GPT-2 details the golden fixture does not exercise: unprefixed names and per-layer attention scaling. */
class Gpt2FamilyTest {

    @Test
    void readsCheckpointsWithoutTheTransformerPrefix(@TempDir Path tmp) {
        Fixtures.Golden g = Fixtures.golden("gpt2_tiny");
        int[] ids = g.prompts().get(3).ids();
        Path bare = RenamedCheckpoint.copy(g.dir(), tmp.resolve("bare"), n -> n.replaceFirst("^transformer\\.", ""));
        try (HookedModel prefixed = ModelLoader.loadFolder(new ModelLocation("gpt2_tiny", null, g.dir(), false));
             HookedModel unprefixed = ModelLoader.loadFolder(new ModelLocation("bare", null, bare, false))) {
            assertEquals(prefixed.info().parameterCount(), unprefixed.info().parameterCount());
            FloatTensor want = prefixed.forward(TokenBatch.single(ids), Hooks.none());
            FloatTensor got = unprefixed.forward(TokenBatch.single(ids), Hooks.none());
            Close.assertClose(want.data(), got.data(), "logits");
        }
    }

    /**
     * With scale_attn_by_inverse_layer_idx, layer l divides its scores by l + 1 as well. Block 0 is then
     * unchanged, so block 1 sees the same scores halved, and softmax(s/2) is the renormalised square root of
     * softmax(s).
     */
    @Test
    void scaleAttnByInverseLayerIdx() {
        Fixtures.Golden g = Fixtures.golden("gpt2_tiny");
        int[] ids = g.prompts().get(3).ids();
        ObjectNode json = (ObjectNode) ModelConfig.read(g.dir().resolve("config.json")).json().deepCopy();
        json.put("scale_attn_by_inverse_layer_idx", true);
        ModelConfig scaledCfg = new ModelConfig(g.dir().resolve("config.json"), json);
        try (TensorSource weights = Checkpoints.open(g.dir())) {
            ActivationCache plain = run(Gpt2.FAMILY.load(ModelConfig.read(g.dir().resolve("config.json")), weights, Backend.defaults()), ids);
            ActivationCache scaled = run(Gpt2.FAMILY.load(scaledCfg, weights, Backend.defaults()), ids);
            Close.assertClose(plain.perPrompt("blocks.0.hook_attn_out").getFirst().data(),
                    scaled.perPrompt("blocks.0.hook_attn_out").getFirst().data(), "block 0 attn_out");
            Close.assertClose(plain.perPrompt("blocks.1.hook_resid_pre").getFirst().data(),
                    scaled.perPrompt("blocks.1.hook_resid_pre").getFirst().data(), "block 1 resid_pre");
            float[] p = plain.perPrompt("blocks.1.attn.hook_pattern").getFirst().data();
            float[] q = scaled.perPrompt("blocks.1.attn.hook_pattern").getFirst().data();
            int len = ids.length;
            double worst = 0, changed = 0;
            for (int row = 0; row < p.length / len; row++) {
                double z = 0;
                for (int j = 0; j < len; j++) z += Math.sqrt(p[row * len + j]);
                for (int j = 0; j < len; j++) {
                    double want = Math.sqrt(p[row * len + j]) / z;
                    worst = Math.max(worst, Math.abs(want - q[row * len + j]));
                    changed = Math.max(changed, Math.abs(p[row * len + j] - q[row * len + j]));
                }
            }
            assertTrue(worst < 1e-5, "pattern is not softmax(scores / 2): off by " + worst);
            assertTrue(changed > 1e-2, "halving the scores should change the pattern");
        }
    }

    private static ActivationCache run(TransformerModel model, int[] ids) {
        ActivationCache cache = new ActivationCache(Pooling.ALL);
        model.forward(TokenBatch.single(ids), ForwardOptions.full(), Hooks.none().with("*", cache.hook()));
        return cache;
    }
}
