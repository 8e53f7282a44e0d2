package dev.jlens.model;

import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.testing.Fixtures;
import dev.jlens.kernels.Backend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every golden hook tensor and the logits of each fixture, through the library, within 1e-4. Fixtures that
 * keep no logits (see the fixtures README) are checked against their ln_final.hook_out times the
 * unembedding instead.
 */
class CausalLmParityTest {

    static final double ATOL = 1e-4;

    static final List<String> FIXTURES = List.of("gpt_neox_tiny", "gpt_neox_tiny_fp16", "gpt_neox_tiny_seq",
            "gpt_neox_tiny_sharded", "gpt_neox_tiny_bin", "gpt_neox_tiny_bin_sharded", "gpt2_tiny", "llama_tiny",
            "qwen2_tiny", "stories260k",
            // the families added with the 2025 fixtures: Qwen3, Gemma 2/3, Phi-3, OLMo-2, Mistral's window, Llama 3.1's RoPE
            "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny", "olmo2_tiny", "mistral_sw_tiny", "llama31_tiny");

    /** Copies of gpt_neox_tiny_fp16's weights in other containers: they test loading, not arithmetic. */
    static final List<String> SAME_NUMBERS = List.of("gpt_neox_tiny_sharded", "gpt_neox_tiny_bin", "gpt_neox_tiny_bin_sharded");

    /**
     * Every fixture on the CPU backend, and each distinct one on the scalar reference backend that other
     * backends are held to.
     */
    static Stream<Arguments> fixturesAndBackends() {
        return FIXTURES.stream().flatMap(f -> SAME_NUMBERS.contains(f) ? Stream.of(Arguments.of(f, "cpu"))
                : Stream.of(Arguments.of(f, "cpu"), Arguments.of(f, "reference")));
    }

    static Backend backend(String name) {
        return name.equals("reference") ? Backend.reference() : Backend.defaults();
    }

    @ParameterizedTest(name = "{0} on {1}")
    @MethodSource("fixturesAndBackends")
    void matchesHuggingFace(String fixture, String backend) {
        Fixtures.Golden g = Fixtures.golden(fixture);
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, g.dir(), false), backend(backend))) {
            List<int[]> ids = new ArrayList<>();
            for (Fixtures.Prompt p : g.prompts()) {
                int[] got = m.encode(p.text(), null);
                assertArrayEquals(p.ids(), got, "token ids of prompt " + p.index());
                ids.add(got);
            }
            ActivationCache cache = m.runWithCache(ids, CacheRequest.of(HookPattern.parse("*")).pooling(Pooling.ALL).batchSize(1).logits(true));
            int checked = 0;
            double worst = 0;
            String worstName = "";
            for (Fixtures.Prompt p : g.prompts()) {
                for (String name : g.names()) {
                    String prefix = "p" + p.index() + ".";
                    if (!name.startsWith(prefix)) continue;
                    String hook = name.substring(prefix.length());
                    // Extras that are not hook points: the final norm's output, and for post-norm and soft-capped
                    // families the branch outputs before their post-norm and the logits before the cap.
                    if (hook.equals("input_ids") || hook.equals("ln_final.hook_out") || hook.endsWith("_raw")
                            || hook.equals("logits_before_softcap")) {
                        continue;
                    }
                    float[] want = g.tensor(name);
                    FloatTensor got = cache.perPrompt(hook).get(p.index());
                    double diff = Fixtures.maxAbsDiff(want, got.data());
                    if (diff > worst) {
                        worst = diff;
                        worstName = name;
                    }
                    checked++;
                }
            }
            boolean hasLogits = g.has("p0.logits");
            for (Fixtures.Prompt p : g.prompts()) {
                if (hasLogits) break;
                double diff = Fixtures.maxAbsDiff(Fixtures.logitsFromFinalNorm(g, p.index()), cache.perPrompt("logits").get(p.index()).data());
                if (diff > worst) {
                    worst = diff;
                    worstName = "p" + p.index() + ".ln_final.hook_out x unembedding";
                }
                checked++;
            }
            assertTrue(checked > 20, "too few golden tensors checked: " + checked);
            assertTrue(worst <= ATOL, fixture + " on " + backend + ": worst max-abs error " + worst + " at " + worstName);
        }
    }

}
