package dev.jlens.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.ModelLocation;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The memory guard: the estimate from tensor headers, the refusal with advice, and the batch-size guard. */
class MemoryEstimateTest {

    private static final long GB = 1L << 30;

    private static MemoryEstimate estimate(String fixture) {
        Path dir = Fixtures.dir(fixture);
        ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
        try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
            return MemoryEstimate.of(ModelFamilies.forConfig(cfg), cfg, f);
        }
    }

    private static long padded(long rows) {
        return (rows + 31) / 32 * 32;
    }

    /** Every GPT-NeoX vector becomes a float[]; every block matrix and embed_out is packed, embed_in is not. */
    @Test
    void gptNeoXEstimateCountsVectorsAndPackedMatrices() {
        long d = 64, mlp = 256, layers = 3, vocab = 50304;
        MemoryEstimate e = estimate("gpt_neox_tiny");
        long vectors = layers * (2 * d + 3 * d + d + 2 * d + mlp + d) + 2 * d;
        assertEquals(vectors * 4, e.heapBytes());
        long matrices = layers * (padded(3 * d) * d + padded(d) * d + padded(mlp) * d + padded(d) * mlp) + padded(vocab) * d;
        assertEquals(matrices * 4, e.packedBytes());
    }

    /** GPT-2's Conv1D block weights are stored [in, out]; their transposed copies go on the heap too. */
    @Test
    void gpt2EstimateCountsTheTransposedCopies() {
        long d = 64, mlp = 256, layers = 3;
        MemoryEstimate e = estimate("gpt2_tiny");
        long vectors = layers * (2 * d + 3 * d + d + 2 * d + mlp + d) + 2 * d;
        long blockWeights = layers * (d * 3 * d + d * d + d * mlp + mlp * d);
        assertEquals((vectors + blockWeights) * 4, e.heapBytes());
        // tied: the unembedding is wte, which is not packed unless logits are asked for
        long packed = layers * (padded(3 * d) * d + padded(d) * d + padded(mlp) * d + padded(d) * mlp);
        assertEquals(packed * 4, e.packedBytes());
    }

    /** Llama's 172-row MLP matrices are padded to whole 32-row panels. */
    @Test
    void llamaEstimatePadsPanels() {
        long d = 64, mlp = 172, kv = 32, layers = 3, vocab = 512;
        MemoryEstimate e = estimate("llama_tiny");
        assertEquals((layers * 2 * d + d) * 4, e.heapBytes());
        long perLayer = padded(d) * d + 2 * padded(kv) * d + padded(d) * d + 2 * padded(mlp) * d + padded(d) * mlp;
        assertEquals((layers * perLayer + padded(vocab) * d) * 4, e.packedBytes());
    }

    @Test
    void fitsOrIsRefusedWithAdvice() {
        MemoryEstimate e = new MemoryEstimate(3 * GB, 10 * GB);
        assertDoesNotThrow(() -> e.check("--model big", new MemoryEstimate.Limits(4 * GB, 10 * GB, 64 * GB)));

        JlensException heap = assertThrows(JlensException.class,
                () -> e.check("--model big", new MemoryEstimate.Limits(3 * GB, 16 * GB, 64 * GB)));
        assertTrue(heap.getMessage().startsWith("--model big: "), heap.getMessage());
        assertTrue(heap.getMessage().contains("3.0 GB of Java heap"), heap.getMessage());
        assertTrue(heap.getMessage().contains("10.0 GB for the packed weight"), heap.getMessage());
        assertTrue(heap.getMessage().contains("JLENS_JAVA_OPTS=-Xmx12g"), heap.getMessage());

        JlensException direct = assertThrows(JlensException.class,
                () -> e.check("--model big", new MemoryEstimate.Limits(8 * GB, 8 * GB, 64 * GB)));
        assertTrue(direct.getMessage().contains("this JVM allows 8.0 GB of heap"), direct.getMessage());
        assertTrue(direct.getMessage().contains("-Xmx12g"), direct.getMessage());
        assertTrue(direct.getMessage().contains("MaxDirectMemorySize"), direct.getMessage());

        JlensException machine = assertThrows(JlensException.class,
                () -> e.check("--model big", new MemoryEstimate.Limits(4 * GB, 10 * GB, 12 * GB)));
        assertTrue(machine.getMessage().contains("more than this machine has (12.0 GB)"), machine.getMessage());
    }

    /**
     * End to end: a checkpoint whose packed weights exceed what this test JVM allows is refused by
     * ModelLoader before a single weight is read or packed. The file is sparse, so it takes no disk space,
     * and it is sized from this JVM's own limits.
     */
    @Test
    void modelLoaderRefusesACheckpointTooLargeForThisJvm(@TempDir Path dir) throws IOException {
        MemoryEstimate.Limits limits = MemoryEstimate.Limits.ofThisJvm();
        int d = 2048;
        long layerBytes = 12L * d * d * 4;
        int layers = (int) Math.min(200, limits.maxDirect() / layerBytes + 2);
        ObjectNode cfg = new ObjectMapper().createObjectNode();
        cfg.putArray("architectures").add("GPTNeoXForCausalLM");
        cfg.put("hidden_size", d).put("num_attention_heads", 16).put("num_hidden_layers", layers)
                .put("intermediate_size", 4 * d).put("vocab_size", 1024);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        Files.copy(Fixtures.dir("llama_tiny").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        List<String> names = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        for (int l = 0; l < layers; l++) {
            String p = "gpt_neox.layers." + l + ".";
            names.addAll(List.of(p + "attention.query_key_value.weight", p + "attention.dense.weight",
                    p + "mlp.dense_h_to_4h.weight", p + "mlp.dense_4h_to_h.weight"));
            Collections.addAll(shapes, new long[]{3L * d, d}, new long[]{d, d}, new long[]{4L * d, d}, new long[]{d, 4L * d});
        }
        Path st = dir.resolve("model.safetensors");
        long dataBytes = sparseSafetensors(st, names, shapes);
        assertTrue(dataBytes > limits.maxDirect());

        JlensException e = assertThrows(JlensException.class,
                () -> ModelLoader.loadFolder(new ModelLocation("huge", null, dir, false)));
        assertTrue(e.getMessage().startsWith("--model huge: "), e.getMessage());
        assertTrue(e.getMessage().contains("JLENS_JAVA_OPTS=-Xmx") || e.getMessage().contains("cannot be run here"),
                e.getMessage());
    }

    /** A safetensors file of F32 zeros whose data section is a hole in the file; returns the data size. */
    private static long sparseSafetensors(Path file, List<String> names, List<long[]> shapes) throws IOException {
        StringBuilder h = new StringBuilder("{");
        long off = 0;
        for (int i = 0; i < names.size(); i++) {
            long[] s = shapes.get(i);
            long n = s[0] * s[1] * 4;
            if (i > 0) h.append(',');
            h.append('"').append(names.get(i)).append("\":{\"dtype\":\"F32\",\"shape\":[").append(s[0]).append(',')
                    .append(s[1]).append("],\"data_offsets\":[").append(off).append(',').append(off + n).append("]}");
            off += n;
        }
        byte[] header = h.append('}').toString().getBytes(StandardCharsets.UTF_8);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            f.write(header);
            f.setLength(8 + header.length + off);
        }
        return off;
    }

    private static ModelInfo info(int d, int mlp, int vocab) {
        return new ModelInfo("gpt_neox", "GPTNeoXForCausalLM", 4, d, 8, 8, mlp, vocab, 2048, 0, DType.F32, true);
    }

    private static List<int[]> prompts(int n, int len) {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new int[len]);
        return out;
    }

    @Test
    void largestBatchIsFoundInOrderWithoutOverflow() {
        List<int[]> p = List.of(new int[3], new int[5], new int[7], new int[1], new int[2]);
        assertEquals(8, MemoryEstimate.largestBatchTokens(p, 2));
        assertEquals(15, MemoryEstimate.largestBatchTokens(p, 3));
        assertEquals(18, MemoryEstimate.largestBatchTokens(p, Integer.MAX_VALUE));
    }

    /**
     * 1000 prompts of 100 tokens with d_model 1024: per token (12·1024 + 4096 + 3·1024) values × 4 bytes =
     * 77 824 bytes, so a batch of 1000 (100 000 tokens, 7.2 GB) does not fit half of a 4 GB heap, and the
     * message names the largest batch that does (2 GiB / 7 782 400 bytes per prompt = 275).
     */
    @Test
    void batchSizeWhoseActivationsCannotFitIsRefused() {
        ModelInfo info = info(1024, 4096, 50000);
        List<int[]> p = prompts(1000, 100);
        MemoryEstimate.Limits limits = new MemoryEstimate.Limits(4 * GB, 4 * GB, 64 * GB);
        assertDoesNotThrow(() -> MemoryEstimate.checkBatch("--batch-size", info, p, 275, 3, false, limits));
        JlensException e = assertThrows(JlensException.class,
                () -> MemoryEstimate.checkBatch("--batch-size", info, p, 1000, 3, false, limits));
        String m = e.getMessage();
        assertTrue(m.startsWith("--batch-size 1000: the largest batch holds 100000 tokens"), m);
        assertTrue(m.contains("19456 values"), m);
        assertTrue(m.contains("Use --batch-size 275 or less"), m);
        assertTrue(m.contains("JLENS_JAVA_OPTS=-Xmx"), m);
        // logits add a row over the vocabulary per token
        JlensException withLogits = assertThrows(JlensException.class,
                () -> MemoryEstimate.checkBatch("--batch-size", info, p, 275, 3, true, limits));
        assertTrue(withLogits.getMessage().contains("logits over 50000 tokens"), withLogits.getMessage());
    }

    @Test
    void aSinglePromptTooLongForTheHeapSaysSo() {
        JlensException e = assertThrows(JlensException.class, () -> MemoryEstimate.checkBatch("--batch-size",
                info(8192, 32768, 50000), prompts(2, 1_000_000), 1, 0, false, new MemoryEstimate.Limits(GB, GB, 64 * GB)));
        assertTrue(e.getMessage().contains("Shorten the prompts"), e.getMessage());
    }
}
