package dev.jlens.instruments;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The identities the instruments rest on, on every causal fixture: the lens at the last layer is the model's
 * logits; the attribution's parts sum to the whole projection (and a logit difference's whole is the model's);
 * patching the whole residual at layer 0 restores the clean metric exactly and patching nothing gives 0.
 * A new family's fixture is covered by adding its directory name below.
 */
class InstrumentsTest {

    static Path fixture(String name) {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        if (!Files.isDirectory(root)) root = Path.of("../shared/fixtures");
        Path dir = root.resolve(name).toAbsolutePath().normalize();
        Assumptions.assumeTrue(Files.isDirectory(dir), "fixture " + dir + " missing");
        return dir;
    }

    static HookedModel load(String name) {
        return ModelLoader.loadFolder(new ModelLocation(name, null, fixture(name), false));
    }

    /** The logit before cap·tanh(z/cap), or the logit itself without a cap. */
    private static double uncapped(float logit, float cap) {
        return cap == 0f ? logit : cap * 0.5 * Math.log((1 + logit / (double) cap) / (1 - logit / (double) cap));
    }

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_seq", "gpt2_tiny", "llama_tiny", "qwen2_tiny", "stories260k",
            "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny", "olmo2_tiny", "mistral_sw_tiny", "llama31_tiny"})
    void lensAttributionAndPatchingIdentities(String name) {
        try (HookedModel m = load(name)) {
            int[] ids = m.encode("The cat sat on the mat because it was warm", null);
            FloatTensor logits = m.forward(TokenBatch.single(ids), Hooks.none());
            int vocab = logits.cols(), last = ids.length - 1;

            // lens: its last layer is the model's logits, bit for bit with the own-scale readout
            List<FloatTensor> lens = LogitLens.logits(m, ids, LogitLens.Scale.OWN);
            assertEquals(m.info().nLayers() + 1, lens.size());
            assertArrayEquals(logits.data(), lens.getLast().data(), name + ": lens at the last layer");
            FloatTensor finalScale = LogitLens.logits(m, ids, LogitLens.Scale.FINAL).getLast();
            assertClose(logits.data(), finalScale.data(), 1e-4, name + ": final-scale lens at the last layer");
            int top = argmax(logits.data(), last * vocab, vocab);
            LogitLens.Result r = LogitLens.run(m, ids, new LogitLens.Options(LogitLens.Scale.OWN, 3, new int[]{top}, true));
            assertEquals(top, r.topIds()[r.layers().size() - 1][last][0], "top-1 of the last layer is the model's argmax");
            assertEquals(0, r.tokenRanks()[r.layers().size() - 1][last][0]);

            // attribution: parts sum to the whole, and a logit difference's whole is the model's
            int second = argmaxExcept(logits.data(), last * vocab, vocab, top);
            DirectAttribution.Result a = DirectAttribution.run(m, ids, last,
                    DirectAttribution.Target.logitDifference(m, top, second, "top − second"));
            // Attribution is linear, so it explains the logits before a final soft-cap (Gemma 2): undo the cap.
            float cap = m.model() instanceof dev.jlens.model.CausalLm c ? c.spec().embedding().finalSoftcap() : 0f;
            double want = uncapped(logits.get(last, top), cap) - uncapped(logits.get(last, second), cap);
            assertEquals(want, a.total(), 1e-4 * Math.max(1, Math.abs(want)), name + ": whole projection vs the model's logit difference");
            assertEquals(a.total(), a.sum(), 1e-4 * Math.max(1, Math.abs(a.total())), name + ": parts sum to the whole");
            assertEquals(m.info().nHeads(), a.heads()[0].length, "one value per head");
            float[] unit = randomUnit(m.info().dModel(), 3);
            DirectAttribution.Result d = DirectAttribution.run(m, ids, 2,
                    DirectAttribution.Target.direction(unit, m.info().dModel(), "random"));
            assertEquals(d.total(), d.sum(), 1e-5 * Math.max(1, Math.abs(d.total())), name + ": direction parts sum to the whole");

            // patching: clean and corrupted differ in one token
            int[] corrupted = ids.clone();
            corrupted[2] = ids[3];
            FloatTensor cl = m.forward(TokenBatch.single(corrupted), Hooks.none());
            int b = argmax(cl.data(), last * vocab, vocab);
            if (b == top) b = second;
            ActivationPatching p = new ActivationPatching(m, ids, corrupted, null, ActivationPatching.Metric.logitDifference(top, b), 4);
            assertEquals(1.0, p.allPositions(ActivationPatching.Site.RESID_PRE, 0), 0.0, name + ": whole residual at layer 0");
            assertEquals(0.0, p.nothing(), 0.0, name + ": patching nothing");
            double[][] resid = p.perPosition(ActivationPatching.Site.RESID_PRE);
            assertEquals(m.info().nLayers(), resid.length);
            // only position 2 differs: patching any other position of the embedding changes nothing
            for (int pos = 0; pos < ids.length; pos++) if (pos != 2) assertEquals(0.0, resid[0][pos], 0.0, "layer 0 position " + pos);
            double[][] heads = p.perHead();
            assertEquals(m.info().nHeads(), heads[0].length);
        }
    }

    @Test
    void clearErrors() {
        try (HookedModel m = load("gpt2_tiny")) {
            int[] a = m.encode("The cat sat", null), b = m.encode("The big dog sat down", null);
            JlensException e = assertThrows(JlensException.class,
                    () -> new ActivationPatching(m, a, b, null, ActivationPatching.Metric.logitDifference(1, 2)));
            assertTrue(e.getMessage().contains("position map"), e.getMessage());
            e = assertThrows(JlensException.class, () -> DirectAttribution.Target.direction(new float[32], 64, "other.safetensors"));
            assertTrue(e.getMessage().contains("d_model 64"), e.getMessage());
            e = assertThrows(JlensException.class, () -> TokenChoice.parse(m.tokenizer(), " Sorry, xqzjvbkw", m.info().vocabSize(), "--tokens"));
            assertTrue(e.getMessage().contains("xqzjvbkw") && e.getMessage().contains("not one token"), e.getMessage());
            int[] two = TokenChoice.parse(m.tokenizer(), " Sorry, Sure,#42", m.info().vocabSize(), "--tokens");
            assertEquals(3, two.length);
            assertEquals(42, two[2]);
        }
    }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length);
        double worst = 0;
        for (int i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs((double) want[i] - got[i]));
        assertTrue(worst <= tol, what + ": max abs diff " + worst);
    }

    static int argmax(float[] x, int off, int n) {
        return argmaxExcept(x, off, n, -1);
    }

    static int argmaxExcept(float[] x, int off, int n, int skip) {
        int best = -1;
        for (int i = 0; i < n; i++) if (i != skip && (best < 0 || x[off + i] > x[off + best])) best = i;
        return best;
    }

    static float[] randomUnit(int d, long seed) {
        Random r = new Random(seed);
        float[] u = new float[d];
        double n = 0;
        for (int i = 0; i < d; i++) {
            u[i] = (float) r.nextGaussian();
            n += u[i] * u[i];
        }
        for (int i = 0; i < d; i++) u[i] /= (float) Math.sqrt(n);
        return u;
    }
}
