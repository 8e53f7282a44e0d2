package dev.jlens.model.bert;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.onnx.OnnxModel;
import dev.jlens.io.onnx.OnnxModelReader;
import dev.jlens.io.onnx.OnnxNode;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.kernels.Backend;
import dev.jlens.load.EmbeddedModels;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * BertModel's Hugging Face checkpoint path ({@link BertModel#FAMILY}) against its ONNX path, on the MiniLM
 * weights rewritten as the {@code state_dict} of a {@code BertForMaskedLM}-style checkpoint ("bert." prefix,
 * nn.Linear [out, in] weights); and the loaders' errors.
 */
class BertCheckpointTest {

    static final String CONFIG = """
            {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "num_attention_heads": 12,
             "num_hidden_layers": 6, "intermediate_size": 1536, "vocab_size": 30522, "max_position_embeddings": 512,
             "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"%s}
            """;

    static OnnxModel readEmbeddedOnnx() throws IOException {
        try (InputStream in = BertCheckpointTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            return OnnxModelReader.read(MemorySegment.ofArray(in.readAllBytes()), "all-minilm-l6-v2.onnx");
        }
    }

    /** The ONNX initializers under their HF names, linear weights transposed to [out, in]; one may be left out. */
    static void writeCheckpoint(Path dir, String extraConfig, String leaveOut) throws IOException {
        SafetensorsWriter w = new SafetensorsWriter();
        try (OnnxModel onnx = readEmbeddedOnnx()) {
            for (String name : onnx.names()) {
                TensorEntry e = onnx.require(name);
                if (e.dtype() == DType.F32 && !name.startsWith("onnx::") && !name.equals(leaveOut)) {
                    w.putF32("bert." + name, e.toFloatArray(), e.shape());
                }
            }
            for (OnnxNode n : onnx.nodes()) {
                TensorEntry e = n.opType().equals("MatMul") ? onnx.find(n.inputs().get(1)) : null;
                if (e == null) continue;
                String module = n.name().substring(1, n.name().length() - "/MatMul".length()).replace('/', '.');
                int in = (int) e.shape()[0], out = (int) e.shape()[1];
                float[] v = e.toFloatArray(), t = new float[v.length];
                for (int i = 0; i < in; i++) for (int o = 0; o < out; o++) t[o * in + i] = v[i * out + o];
                w.putF32("bert." + module + ".weight", t, out, in);
            }
        }
        w.write(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("config.json"), CONFIG.formatted(extraConfig));
    }

    @Test
    void hfCheckpointRunsLikeTheOnnxExport(@TempDir Path dir) throws IOException {
        writeCheckpoint(dir, "", null);
        try (SafetensorsFile weights = SafetensorsFile.open(dir.resolve("model.safetensors"));
             HookedModel embedded = EmbeddedModels.minilm()) {
            TransformerModel hf = BertModel.FAMILY.load(ModelConfig.read(dir.resolve("config.json")), weights, Backend.defaults());
            assertEquals(embedded.info(), hf.info());
            TokenBatch batch = TokenBatch.of(List.of(embedded.encode("Two loaders, one model.", null),
                    embedded.encode("Same numbers?", null)));
            FloatTensor a = embedded.model().forward(batch, ForwardOptions.full(), Hooks.none());
            FloatTensor b = hf.forward(batch, ForwardOptions.full(), Hooks.none());
            assertArrayEquals(a.data(), b.data(), 1e-5f);
        }
    }

    @Test
    void hfConfigAndWeightErrorsNameTheProblem(@TempDir Path dir) throws IOException {
        writeCheckpoint(dir, ", \"position_embedding_type\": \"relative_key\"", "encoder.layer.3.output.LayerNorm.bias");
        ModelConfig relative = ModelConfig.read(dir.resolve("config.json"));
        try (SafetensorsFile weights = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            JlensException e = assertThrows(JlensException.class, () -> BertModel.FAMILY.load(relative, weights, Backend.defaults()));
            assertTrue(e.getMessage().contains("position_embedding_type"), e.getMessage());

            Files.writeString(dir.resolve("config.json"), CONFIG.formatted(""));
            ModelConfig plain = ModelConfig.read(dir.resolve("config.json"));
            e = assertThrows(JlensException.class, () -> BertModel.FAMILY.load(plain, weights, Backend.defaults()));
            assertTrue(e.getMessage().contains("bert.encoder.layer.3.output.LayerNorm.bias"), e.getMessage());
        }
    }

    @Test
    void onnxWithoutBertWeightsIsAClearError() {
        // A ModelProto whose graph (field 7) is empty.
        OnnxModel empty = OnnxModelReader.read(MemorySegment.ofArray(new byte[]{0x3a, 0x00}), "empty.onnx");
        JlensException e = assertThrows(JlensException.class, () -> BertModel.fromOnnx(empty, Backend.defaults()));
        assertTrue(e.getMessage().startsWith("empty.onnx") && e.getMessage().contains("embeddings.word_embeddings.weight"),
                e.getMessage());
    }
}
