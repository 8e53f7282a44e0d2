package dev.jlens.load;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelLocation;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import dev.jlens.testing.FuzzInput;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Coverage-guided fuzzing (Jazzer) of config.json handling: {@link dev.jlens.model.ModelConfig}, the family
 * lookup and every family loader, through {@link ModelLoader#loadFolder} on a folder holding a fuzzed
 * config.json next to the real weights of a small fixture model. The first input byte picks the fixture
 * (so every family's loader is reachable with weights that fit it), the rest is config.json. A second target
 * edits the fixtures' real configs field by field (byte mutations of JSON mostly break its syntax and stop at
 * the parser; these reach each loader's checks of every field). A config that loads is also run on a short prompt, so values the loader accepted but the forward pass cannot use show
 * up too. A normal test run replays the inputs under
 * src/test/resources/dev/jlens/load/ModelConfigFuzzTestInputs; {@code JAZZER_FUZZ=1} fuzzes.
 */
class ModelConfigFuzzTest {

    /** Fixtures whose weights the fuzzed configs are paired with; the small llama_tiny tokenizer serves all. */
    static final List<String> MODELS = List.of("llama_tiny", "qwen2_tiny", "gpt2_tiny", "gpt_neox_tiny", "stories260k");

    private static Path folder(int model) {
        String name = MODELS.get(model);
        Path dir = FuzzInput.folder("model-" + name);
        try {
            Path weights = dir.resolve("model.safetensors");
            if (!Files.exists(weights, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                Files.createSymbolicLink(weights, Fixtures.dir(name).resolve("model.safetensors"));
                Files.createSymbolicLink(dir.resolve("tokenizer.json"), Fixtures.dir("llama_tiny").resolve("tokenizer.json"));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return dir;
    }

    /** The harness reaches the loaders: every fixture's own config loads and runs in its fuzzing folder. */
    @Test
    void unmutatedConfigsLoadAndRun() throws Exception {
        for (int i = 0; i < MODELS.size(); i++) {
            Path dir = folder(i);
            Files.copy(Fixtures.dir(MODELS.get(i)).resolve("config.json"), dir.resolve("config.json"),
                    StandardCopyOption.REPLACE_EXISTING);
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation("fuzz", null, dir, false))) {
                int[] ids = m.encode("Once upon a time", null);
                assertEquals(ids.length, m.forward(TokenBatch.single(ids), Hooks.none()).rows(), MODELS.get(i));
            }
        }
    }

    @FuzzTest(maxDuration = "3m")
    void loadFolder(byte[] input) throws Exception {
        if (input.length == 0) return;
        Path dir = folder(Math.floorMod(input[0], MODELS.size()));
        Files.write(dir.resolve("config.json"), Arrays.copyOfRange(input, 1, input.length));
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation("fuzz", null, dir, false))) {
                int[] ids = m.encode("Once upon a time", null);
                var out = m.forward(TokenBatch.single(ids), Hooks.none());
                assertEquals(ids.length, out.rows());
            }
        });
    }

    /** Every config.json field some family reads, and a few that select or refuse a family. */
    static final List<String> FIELDS = List.of("architectures", "model_type", "hidden_size", "num_attention_heads",
            "num_hidden_layers", "intermediate_size", "vocab_size", "max_position_embeddings", "rotary_pct",
            "rotary_emb_base", "rope_theta", "layer_norm_eps", "use_parallel_residual", "hidden_act",
            "tie_word_embeddings", "rope_scaling", "n_embd", "n_head", "n_layer", "n_inner", "n_positions",
            "layer_norm_epsilon", "activation_function", "scale_attn_weights", "scale_attn_by_inverse_layer_idx",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "attention_bias", "mlp_bias", "sliding_window",
            "use_sliding_window", "max_window_layers", "type_vocab_size", "position_embedding_type", "is_decoder");
    static final List<String> ROPE_FIELDS = List.of("rope_type", "type", "factor", "low_freq_factor",
            "high_freq_factor", "original_max_position_embeddings");
    static final List<String> WORDS = List.of("GPTNeoXForCausalLM", "GPT2LMHeadModel", "LlamaForCausalLM",
            "Qwen2ForCausalLM", "MistralForCausalLM", "BertModel", "gpt_neox", "gpt2", "llama", "qwen2", "mistral",
            "bert", "gelu", "gelu_new", "silu", "relu", "linear", "llama3", "dynamic", "default", "absolute", "");
    static final long[] INTS = {0, 1, -1, 2, 3, 4, 5, 8, 16, 32, 63, 64, 65, 128, 172, 256, 512, 1024, 50257, 50304,
            Integer.MAX_VALUE, Integer.MIN_VALUE, 1L << 30, 1L << 31, Long.MAX_VALUE, 46341, 65536};

    private static JsonNode value(FuzzedDataProvider in, int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        return switch (in.consumeInt(0, depth > 1 ? 7 : 9)) {
            case 0 -> f.numberNode(INTS[in.consumeInt(0, INTS.length - 1)]);
            case 1 -> f.numberNode(in.consumeLong());
            case 2 -> f.numberNode(in.consumeDouble());
            case 3 -> f.numberNode(in.pickValue(new double[]{0.25, 0.5, 1e-5, -1, 1e308, Double.MIN_VALUE, 2.5, 1e4}));
            case 4 -> f.booleanNode(in.consumeBoolean());
            case 5 -> f.textNode(in.pickValue(WORDS));
            case 6 -> f.textNode(in.consumeString(12));
            case 7 -> f.nullNode();
            case 8 -> {
                var a = f.arrayNode();
                int n = in.consumeInt(0, 3);
                for (int i = 0; i < n; i++) a.add(value(in, depth + 1));
                yield a;
            }
            default -> {
                ObjectNode o = f.objectNode();
                int n = in.consumeInt(0, 4);
                for (int i = 0; i < n; i++) o.set(in.pickValue(ROPE_FIELDS), value(in, depth + 1));
                yield o;
            }
        };
    }

    @FuzzTest(maxDuration = "3m")
    void loadFolderWithEditedFields(FuzzedDataProvider in) throws Exception {
        int model = in.consumeInt(0, MODELS.size() - 1);
        Path dir = folder(model);
        ObjectNode config = (ObjectNode) new ObjectMapper().readTree(Fixtures.dir(MODELS.get(model)).resolve("config.json").toFile());
        int edits = in.consumeInt(1, 6);
        for (int i = 0; i < edits; i++) {
            String field = in.pickValue(FIELDS);
            if (in.consumeInt(0, 7) == 0) config.remove(field);
            else config.set(field, value(in, 0));
        }
        Files.writeString(dir.resolve("config.json"), config.toString());
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation("fuzz", null, dir, false))) {
                int[] ids = m.encode("Once upon a time", null);
                assertEquals(ids.length, m.forward(TokenBatch.single(ids), Hooks.none()).rows());
            }
        });
    }
}
