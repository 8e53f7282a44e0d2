package dev.jlens.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.RotaryEmbedding;
import dev.jlens.model.llama.Llama;
import dev.jlens.model.RopeScaling;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Llama-family options the golden fixtures leave at their defaults: RoPE scaling and sliding windows. */
class LlamaFamilyTest {

    /** Llama 3.1 8B's RoPE settings. */
    static final String LLAMA31 = """
            {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "num_attention_heads": 32,
             "rope_theta": 500000.0, "max_position_embeddings": 131072,
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}""";

    /**
     * Reference values from an independent numpy float32 transcription of transformers'
     * _compute_llama3_parameters (modeling_rope_utils.py) for head_dim 128: index 0..28 keep their
     * frequency (wavelength below 8192/4), 29..34 are blended, 35.. are divided by 8.
     */
    @Test
    void llama3RopeScalingMatchesHuggingFace() throws IOException {
        float[] inv = RopeScaling.invFreq(ModelFamiliesTest.config(LLAMA31), 128);
        assertEquals(64, inv.length);
        int[] index = {0, 20, 28, 29, 31, 34, 35, 63};
        double[] want = {1.0, 0.016560440883040428, 0.0032114461064338684, 0.0021665706299245358,
                0.0008567514596506953, 0.0001785077911335975, 9.556212899042293e-05, 3.068925877869333e-07};
        for (int i = 0; i < index.length; i++) {
            assertEquals(want[i], inv[index[i]], want[i] * 1e-6, "inv_freq[" + index[i] + "]");
        }
    }

    @Test
    void linearScalingDividesEveryFrequency() throws IOException {
        float[] plain = RotaryEmbedding.defaultInvFreq(64, 10000);
        float[] linear = RopeScaling.invFreq(ModelFamiliesTest.config(
                "{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}}"), 64);
        for (int i = 0; i < plain.length; i++) assertEquals(plain[i] / 4f, linear[i], 0f);
        // Dynamic NTK only differs beyond max_position_embeddings, where jlens refuses to run.
        assertArrayEquals(plain, RopeScaling.invFreq(ModelFamiliesTest.config(
                "{\"rope_scaling\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}}"), 64));
        assertArrayEquals(plain, RopeScaling.invFreq(ModelFamiliesTest.config("{\"rope_scaling\": null}"), 64));
    }

    @Test
    void unsupportedOrIncompleteRopeScalingIsNamed() throws IOException {
        JlensException yarn = assertThrows(JlensException.class, () -> RopeScaling.invFreq(ModelFamiliesTest.config(
                "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}"), 64));
        assertTrue(yarn.getMessage().contains("config.json") && yarn.getMessage().contains("\"yarn\""), yarn.getMessage());
        JlensException partial = assertThrows(JlensException.class, () -> RopeScaling.invFreq(ModelFamiliesTest.config(
                "{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"high_freq_factor\": 4.0,"
                        + " \"original_max_position_embeddings\": 8192}}"), 64));
        assertTrue(partial.getMessage().contains("rope_scaling.low_freq_factor"), partial.getMessage());
    }

    @Test
    void headDimFromConfigIsCheckedAgainstTheWeights() {
        JlensException e = assertThrows(JlensException.class, () -> load("llama_tiny", c -> c.put("head_dim", 16), new int[]{1}));
        assertTrue(e.getMessage().contains("q_proj.weight") && e.getMessage().contains("[128, 64]"), e.getMessage());
    }

    /** Mistral's window: a query sees itself and the window − 1 keys before it. */
    @Test
    void mistralSlidingWindow() {
        int window = 4;
        int[] ids = Fixtures.golden("llama_tiny").prompts().get(3).ids();
        ActivationCache full = load("llama_tiny", c -> { }, ids);
        ActivationCache slid = load("llama_tiny", c -> {
            c.putArray("architectures").add("MistralForCausalLM");
            c.put("model_type", "mistral");
            c.put("sliding_window", window);
        }, ids);
        int nHeads = 8, len = ids.length, d = 64;
        for (int l = 0; l < 3; l++) {
            float[] p = slid.perPrompt("blocks." + l + ".attn.hook_pattern").getFirst().data();
            for (int h = 0; h < nHeads; h++) {
                for (int i = 0; i < len; i++) {
                    double sum = 0;
                    for (int j = 0; j < len; j++) {
                        float v = p[(h * len + i) * len + j];
                        if (j > i || j <= i - window) assertEquals(0f, v, "layer " + l + " query " + i + " key " + j);
                        sum += v;
                    }
                    assertEquals(1.0, sum, 1e-5);
                }
            }
        }
        // The first `window` positions see their whole history either way, later ones do not.
        float[] a = full.perPrompt("logits").getFirst().data(), b = slid.perPrompt("logits").getFirst().data();
        int vocab = 512;
        Close.assertClose(Arrays.copyOf(a, window * vocab), Arrays.copyOf(b, window * vocab), "logits inside the window");
        Close.assertDiffer(Arrays.copyOfRange(a, (len - 1) * vocab, len * vocab),
                Arrays.copyOfRange(b, (len - 1) * vocab, len * vocab), "logits of the last position");
        float[] ra = full.perPrompt("blocks.2.hook_resid_post").getFirst().data();
        float[] rb = slid.perPrompt("blocks.2.hook_resid_post").getFirst().data();
        Close.assertClose(Arrays.copyOf(ra, window * d), Arrays.copyOf(rb, window * d), "resid_post inside the window");
    }

    /** Qwen2 configs carry a sliding_window that only applies with use_sliding_window, from max_window_layers on. */
    @Test
    void qwen2SlidingWindowOnlyWhenEnabled() {
        int[] ids = Fixtures.golden("qwen2_tiny").prompts().get(3).ids();
        int len = ids.length;
        ActivationCache plain = load("qwen2_tiny", c -> { }, ids);
        ActivationCache off = load("qwen2_tiny", c -> c.put("sliding_window", 4), ids);
        Close.assertClose(plain.perPrompt("logits").getFirst().data(), off.perPrompt("logits").getFirst().data(), "logits");
        ActivationCache on = load("qwen2_tiny", c -> {
            c.put("sliding_window", 4);
            c.put("use_sliding_window", true);
            c.put("max_window_layers", 1);
        }, ids);
        float[] layer0 = on.perPrompt("blocks.0.attn.hook_pattern").getFirst().data();
        float[] layer1 = on.perPrompt("blocks.1.attn.hook_pattern").getFirst().data();
        int last = len - 1;
        Close.assertClose(plain.perPrompt("blocks.0.attn.hook_pattern").getFirst().data(), layer0, "layer 0 pattern");
        assertTrue(layer0[last * len] > 0, "layer 0 attends to the whole prefix");
        assertEquals(0f, layer1[last * len], "layer 1 slides");
    }

    private static ActivationCache load(String fixture, Consumer<ObjectNode> edit, int[] ids) {
        ModelConfig base = ModelConfig.read(Fixtures.dir(fixture).resolve("config.json"));
        ObjectNode json = (ObjectNode) base.json().deepCopy();
        edit.accept(json);
        ModelConfig cfg = new ModelConfig(base.file(), json);
        try (TensorSource weights = Checkpoints.open(Fixtures.dir(fixture))) {
            TransformerModel model = Llama.FAMILY.load(cfg, weights, Backend.defaults());
            ActivationCache cache = new ActivationCache(Pooling.ALL);
            FloatTensor logits = model.forward(TokenBatch.single(ids), ForwardOptions.full(), Hooks.none().with("*", cache.hook()));
            cache.putPerPrompt("logits", List.of(logits));
            return cache;
        }
    }
}
