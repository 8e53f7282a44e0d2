package dev.jlens.synth;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelConfig;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.hooks.Hooks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SyntheticCheckpointTest {

    static Path tinyConfig(Path dir) throws Exception {
        String json = """
                {"architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "hidden_size": 64,
                 "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256, "vocab_size": 1000,
                 "max_position_embeddings": 128, "rotary_pct": 0.25, "use_parallel_residual": true,
                 "hidden_act": "gelu", "tie_word_embeddings": false, "layer_norm_eps": 1e-5}
                """;
        Path p = dir.resolve("tiny-config.json");
        Files.writeString(p, json);
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"f16", "bf16", "f32"})
    void writesALoadableCheckpoint(String dtype, @TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("model");
        SyntheticCheckpoint.Summary s = SyntheticCheckpoint.write(
                SyntheticCheckpoint.config(tinyConfig(tmp).toString()), SyntheticCheckpoint.dtype(dtype), 3, out);
        long expected = 2L * 1000 * 64 + 2 * (4 * 64 + 3 * 64 * 64 + 3 * 64 + 64 * 64 + 64 + 2 * 64 * 256 + 256 + 64)
                + 2 * 64;
        assertEquals(expected, s.parameters());
        assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
        DType dt = SyntheticCheckpoint.dtype(dtype);
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
            TensorEntry qkv = f.require("gpt_neox.layers.1.attention.query_key_value.weight");
            assertEquals(dt, qkv.dtype());
            assertArrayEquals(new long[]{192, 64}, qkv.shape());
            float[] v = qkv.toFloatArray();
            double sum = 0, sq = 0;
            for (float x : v) {
                sum += x;
                sq += x * x;
            }
            double mean = sum / v.length, std = Math.sqrt(sq / v.length - mean * mean);
            assertEquals(0.02, std, 0.001, "weights have Pythia's initialisation scale");
            assertEquals(0, mean, 0.001);
        }
        assertEquals(dtype.equals("f16") ? "float16" : dtype.equals("bf16") ? "bfloat16" : "float32",
                new ObjectMapper().readTree(out.resolve("config.json").toFile()).get("torch_dtype").asText());
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation("synthetic", null, out, false))) {
            assertEquals(2, m.info().nLayers());
            assertEquals(dt, m.info().weightDType());
            assertEquals(s.parameters(), m.info().parameterCount());
            FloatTensor logits = m.forward(TokenBatch.of(List.of(new int[]{1, 2, 3, 999})), Hooks.none());
            for (float x : logits.data()) assertTrue(Float.isFinite(x));
        }
    }

    /** Every causal family lists its tensors, so synth writes any of them; the result loads and runs. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2_tiny", "llama_tiny", "qwen2_tiny", "gpt_neox_tiny_seq", "qwen3_tiny", "gemma2_tiny",
            "gemma3_tiny", "phi3_tiny", "olmo2_tiny"})
    void writesEveryCausalFamily(String fixture, @TempDir Path tmp) throws Exception {
        ModelConfig cfg = ModelConfig.read(dev.jlens.testing.Fixtures.dir(fixture).resolve("config.json"));
        SyntheticCheckpoint.Summary s = SyntheticCheckpoint.write(cfg, DType.BF16, 3, tmp);
        try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, tmp, false))) {
            assertEquals(s.parameters(), m.info().parameterCount(), "every written tensor is one the family reads");
            FloatTensor logits = m.forward(TokenBatch.single(new int[]{1, 5, 7}), Hooks.none());
            for (float v : logits.data()) assertTrue(Float.isFinite(v));
        }
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes(@TempDir Path tmp) throws Exception {
        ModelConfig c = SyntheticCheckpoint.config(tinyConfig(tmp).toString());
        SyntheticCheckpoint.write(c, DType.BF16, 1, tmp.resolve("a"));
        SyntheticCheckpoint.write(c, DType.BF16, 1, tmp.resolve("b"));
        SyntheticCheckpoint.write(c, DType.BF16, 2, tmp.resolve("c"));
        byte[] a = Files.readAllBytes(tmp.resolve("a/model.safetensors"));
        assertArrayEquals(a, Files.readAllBytes(tmp.resolve("b/model.safetensors")));
        assertFalse(java.util.Arrays.equals(a, Files.readAllBytes(tmp.resolve("c/model.safetensors"))));
    }

    @Test
    void presetsAreThePythiaConfigs() {
        int[][] want = {{768, 12, 12}, {1024, 24, 16}, {2048, 24, 16}, {2560, 32, 32}};
        for (int i = 0; i < want.length; i++) {
            ModelConfig c = SyntheticCheckpoint.config(SyntheticCheckpoint.PRESETS.get(i));
            assertEquals(want[i][0], c.requireInt("hidden_size"));
            assertEquals(want[i][1], c.requireInt("num_hidden_layers"));
            assertEquals(want[i][2], c.requireInt("num_attention_heads"));
            assertEquals(4 * want[i][0], c.requireInt("intermediate_size"));
            assertEquals(50304, c.requireInt("vocab_size"));
            assertEquals(2048, c.requireInt("max_position_embeddings"));
            assertEquals(0.25, c.getDouble("rotary_pct", 0));
            assertTrue(c.getBool("use_parallel_residual", false));
        }
    }

    /**
     * The presets of the newer families are their published config.json: the parameter count their family's
     * tensor list gives is the one each model card states (Qwen3-0.6B 0.6B with tied embeddings, Gemma 2 2B
     * 2.61B, Llama 3.2 1B 1.24B, Llama 3 8B 8.03B).
     */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.CsvSource({"qwen3-0.6b, qwen3, 596049920", "gemma-2-2b, gemma, 2614341888",
            "llama-3.2-1b, llama, 1235814400", "llama-3-8b, llama, 8030261248"})
    void newerPresetsHaveTheirModelsParameterCounts(String preset, String family, long parameters) {
        ModelConfig c = SyntheticCheckpoint.config(preset);
        var f = dev.jlens.model.ModelFamilies.forConfig(c);
        assertEquals(family, f.name());
        assertEquals(parameters, f.tensors(c, null).stream().mapToLong(dev.jlens.model.TensorSpec::numel).sum());
    }

    @Test
    void llamaPresetHasLlama32OneBsShapes() {
        ModelConfig c = SyntheticCheckpoint.config("llama-3.2-1b");
        assertEquals("llama", c.getString("model_type", null));
        long params = 0;
        for (dev.jlens.model.TensorSpec t : dev.jlens.model.ModelFamilies.forConfig(c).tensors(c, null)) {
            long n = 1;
            for (long d : t.shape()) n *= d;
            params += n;
        }
        // The published parameter count of meta-llama/Llama-3.2-1B (tied embeddings, GQA 32/8 heads of 64).
        assertEquals(1_235_814_400L, params);
    }

    @Test
    void badInputNamesTheProblem(@TempDir Path tmp) throws Exception {
        JlensException e = assertThrows(JlensException.class, () -> SyntheticCheckpoint.config("pythia-7b"));
        assertTrue(e.getMessage().contains("pythia-1.4b"), e.getMessage());
        e = assertThrows(JlensException.class, () -> SyntheticCheckpoint.dtype("int8"));
        assertTrue(e.getMessage().contains("f16, bf16 or f32"), e.getMessage());
        Path t5 = tmp.resolve("t5.json");
        Files.writeString(t5, "{\"model_type\": \"t5\", \"hidden_size\": 64}");
        e = assertThrows(JlensException.class,
                () -> SyntheticCheckpoint.write(SyntheticCheckpoint.config(t5.toString()), DType.F16, 0, tmp.resolve("x")));
        assertTrue(e.getMessage().contains("not supported") && e.getMessage().contains("GPTNeoXForCausalLM"), e.getMessage());
        Path llama = tmp.resolve("llama.json");
        Files.writeString(llama, "{\"model_type\": \"llama\", \"hidden_size\": 64}");
        e = assertThrows(JlensException.class,
                () -> SyntheticCheckpoint.write(SyntheticCheckpoint.config(llama.toString()), DType.F16, 0, tmp.resolve("x")));
        assertTrue(e.getMessage().contains("llama.json") && e.getMessage().contains("num_attention_heads"), e.getMessage());
        Path noHeads = tmp.resolve("noheads.json");
        Files.writeString(noHeads, "{\"model_type\": \"gpt_neox\", \"hidden_size\": 64, \"num_hidden_layers\": 1, \"vocab_size\": 10}");
        e = assertThrows(JlensException.class,
                () -> SyntheticCheckpoint.write(SyntheticCheckpoint.config(noHeads.toString()), DType.F16, 0, tmp.resolve("y")));
        assertTrue(e.getMessage().contains("num_attention_heads"), e.getMessage());
    }
}
