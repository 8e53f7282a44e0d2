package dev.jlens.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;
import dev.jlens.model.gpt2.Gpt2;
import dev.jlens.model.gptneox.GptNeoX;
import dev.jlens.model.llama.Llama;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which family a config.json selects, and the errors for configs and checkpoints that fit none. */
class ModelFamiliesTest {

    static ModelConfig config(String json) throws IOException {
        return new ModelConfig(Path.of("config.json"), new ObjectMapper().readTree(json));
    }

    static ModelConfig fixtureConfig(String fixture) {
        return ModelConfig.read(Fixtures.dir(fixture).resolve("config.json"));
    }

    @Test
    void architecturesSelectTheirFamily() throws IOException {
        assertEquals(GptNeoX.FAMILY, ModelFamilies.forConfig(fixtureConfig("gpt_neox_tiny")));
        assertEquals(Gpt2.FAMILY, ModelFamilies.forConfig(fixtureConfig("gpt2_tiny")));
        assertEquals(Llama.FAMILY, ModelFamilies.forConfig(fixtureConfig("llama_tiny")));
        assertEquals(Llama.FAMILY, ModelFamilies.forConfig(fixtureConfig("qwen2_tiny")));
        assertEquals(Llama.FAMILY, ModelFamilies.forConfig(config("{\"architectures\": [\"MistralForCausalLM\"]}")));
        assertEquals(Gpt2.FAMILY, ModelFamilies.forConfig(config("{\"architectures\": [\"GPT2Model\"]}")));
        assertEquals(Llama.FAMILY, ModelFamilies.forConfig(config("{\"model_type\": \"mistral\"}")));
        assertEquals(Gpt2.FAMILY, ModelFamilies.forConfig(config("{\"model_type\": \"gpt2\"}")));
    }

    @Test
    void unsupportedArchitectureNamesEverySupportedOne() throws IOException {
        JlensException e = assertThrows(JlensException.class,
                () -> ModelFamilies.forConfig(config("{\"architectures\": [\"FalconForCausalLM\"]}")));
        assertTrue(e.getMessage().contains("config.json"), e.getMessage());
        assertTrue(e.getMessage().contains("FalconForCausalLM"), e.getMessage());
        for (String arch : List.of("GPTNeoXForCausalLM", "GPT2LMHeadModel", "GPT2Model", "LlamaForCausalLM",
                "Qwen2ForCausalLM", "MistralForCausalLM")) {
            assertTrue(e.getMessage().contains(arch), arch + " missing from: " + e.getMessage());
        }
    }

    @Test
    void checkpointOfAnotherFamilyListsMissingAndPresentNames() {
        ModelConfig gpt2 = fixtureConfig("gpt2_tiny");
        try (TensorSource llamaWeights = Checkpoints.open(Fixtures.dir("llama_tiny"))) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Gpt2.FAMILY.load(gpt2, llamaWeights, Backend.defaults()));
            String msg = e.getMessage();
            assertTrue(msg.contains("tensors missing"), msg);
            assertTrue(msg.contains("\"transformer.wte.weight\""), msg);
            assertTrue(msg.contains("\"transformer.h.0.ln_1.bias\""), msg);
            assertFalse(msg.contains("transformer.h.1."), "at most five missing names are listed: " + msg);
            assertTrue(msg.contains("GPT2LMHeadModel"), msg);
            assertTrue(msg.contains("the checkpoint has " + llamaWeights.names().size() + " tensors"), msg);
            assertTrue(msg.contains("\"model.layers.0."), "names the file does have: " + msg);
        }
    }

    @Test
    void llamaConfigWithGpt2Weights() {
        ModelConfig llama = fixtureConfig("llama_tiny");
        try (TensorSource gpt2Weights = Checkpoints.open(Fixtures.dir("gpt2_tiny"))) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Llama.FAMILY.load(llama, gpt2Weights, Backend.defaults()));
            String msg = e.getMessage();
            assertTrue(msg.startsWith(gpt2Weights.describe()), msg);
            assertTrue(msg.contains("\"model.embed_tokens.weight\""), msg);
            assertTrue(msg.contains("LlamaForCausalLM"), msg);
            assertTrue(msg.contains("\"transformer."), msg);
        }
    }

    @Test
    void missingNamesShowFileNamesThatEndAlike(@TempDir Path tmp) {
        // A base LlamaModel's state_dict has no "model." prefix: the hint should show the same tensors.
        Path dir = RenamedCheckpoint.copy(Fixtures.dir("llama_tiny"), tmp.resolve("m"), n -> n.replaceFirst("^model\\.", ""));
        try (TensorSource weights = Checkpoints.open(dir)) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Llama.FAMILY.load(fixtureConfig("llama_tiny"), weights, Backend.defaults()));
            String msg = e.getMessage();
            assertTrue(msg.contains("tensors missing, e.g. \"model.embed_tokens.weight\", \"model.layers.0.input_layernorm.weight\""), msg);
            assertTrue(msg.contains("the checkpoint has " + weights.names().size() + " tensors, e.g. \"embed_tokens.weight\""), msg);
        }
    }

    @Test
    void untiedConfigWithoutLmHeadNamesIt() throws IOException {
        ObjectNode json = (ObjectNode) fixtureConfig("qwen2_tiny").json().deepCopy();
        json.put("tie_word_embeddings", false);
        ModelConfig cfg = new ModelConfig(Fixtures.dir("qwen2_tiny").resolve("config.json"), json);
        try (TensorSource weights = Checkpoints.open(Fixtures.dir("qwen2_tiny"))) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Llama.FAMILY.load(cfg, weights, Backend.defaults()));
            assertTrue(e.getMessage().contains("missing tensor \"lm_head.weight\""), e.getMessage());
        }
    }

    @Test
    void tensorShapeThatContradictsTheConfigIsNamed() {
        ObjectNode json = (ObjectNode) fixtureConfig("llama_tiny").json().deepCopy();
        json.put("intermediate_size", 128);
        ModelConfig cfg = new ModelConfig(Fixtures.dir("llama_tiny").resolve("config.json"), json);
        try (TensorSource weights = Checkpoints.open(Fixtures.dir("llama_tiny"))) {
            JlensException e = assertThrows(JlensException.class,
                    () -> Llama.FAMILY.load(cfg, weights, Backend.defaults()));
            assertTrue(e.getMessage().contains("model.layers.0.mlp.gate_proj.weight"), e.getMessage());
            assertTrue(e.getMessage().contains("[172, 64]") && e.getMessage().contains("[128, 64]"), e.getMessage());
        }
    }
}
