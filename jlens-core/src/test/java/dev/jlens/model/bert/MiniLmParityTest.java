package dev.jlens.model.bert;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.jlens.hooks.Hooks;
import dev.jlens.load.EmbeddedModels;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The embedded all-MiniLM-L6-v2, run by jlens' own ONNX reader and BertModel, against onnxruntime running the
 * very same .onnx file: final hidden states of every real token within 1e-4.
 */
class MiniLmParityTest {

    static final double ATOL = 1e-4;

    static final List<String> SENTENCES = List.of(
            "Hello world",
            "The quick brown fox jumps over the lazy dog.",
            "jlens runs transformer checkpoints with hooks: naïve café — 東京 🙂, π ≈ 3.14159!",
            "In 1969 Apollo 11 landed on the Moon; Neil Armstrong and Buzz Aldrin walked on its surface while Michael "
                    + "Collins orbited above in the command module Columbia, and all three returned safely to Earth.",
            "a");

    static HookedModel model;
    static OrtEnvironment env;
    static OrtSession session;

    @BeforeAll
    static void load() throws IOException, OrtException {
        model = EmbeddedModels.minilm();
        env = OrtEnvironment.getEnvironment();
        byte[] onnx;
        try (InputStream in = MiniLmParityTest.class.getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            assertNotNull(in, "all-minilm-l6-v2.onnx on the test classpath");
            onnx = in.readAllBytes();
        }
        try (OrtSession.SessionOptions opts = new OrtSession.SessionOptions()) {
            // The graph exactly as exported, without onnxruntime's fused kernels.
            opts.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.NO_OPT);
            session = env.createSession(onnx, opts);
        }
    }

    @AfterAll
    static void close() throws OrtException {
        if (session != null) session.close();
        if (model != null) model.close();
    }

    /** onnxruntime on a right-padded batch with attention_mask; returns [sequence][position][d] for real tokens. */
    static float[][][] reference(List<int[]> ids) throws OrtException {
        int b = ids.size(), max = 0;
        for (int[] s : ids) max = Math.max(max, s.length);
        long[][] inputIds = new long[b][max], mask = new long[b][max], types = new long[b][max];
        for (int i = 0; i < b; i++) {
            for (int t = 0; t < ids.get(i).length; t++) {
                inputIds[i][t] = ids.get(i)[t];
                mask[i][t] = 1;
            }
        }
        try (OnnxTensor a = OnnxTensor.createTensor(env, inputIds);
             OnnxTensor m = OnnxTensor.createTensor(env, mask);
             OnnxTensor t = OnnxTensor.createTensor(env, types);
             OrtSession.Result r = session.run(Map.of("input_ids", a, "attention_mask", m, "token_type_ids", t))) {
            return (float[][][]) r.get("last_hidden_state").orElseThrow().getValue();
        }
    }

    static double maxDiff(float[][][] want, FloatTensor got, TokenBatch batch) {
        int d = got.cols();
        double worst = 0;
        for (int s = 0; s < batch.size(); s++) {
            for (int t = 0; t < batch.lengths()[s]; t++) {
                for (int j = 0; j < d; j++) {
                    worst = Math.max(worst, Math.abs((double) want[s][t][j] - got.get(batch.offsets()[s] + t, j)));
                }
            }
        }
        return worst;
    }

    static List<int[]> encodeAll() {
        List<int[]> ids = new ArrayList<>();
        for (String s : SENTENCES) ids.add(model.encode(s, null));
        return ids;
    }

    @Test
    void tokenizerAddsClsAndSep() {
        assertArrayEquals(new int[]{101, 7592, 2088, 102}, model.encode("Hello world", null));
        // The jar's tokenizer.json pads and truncates to 128; jlens switches both off.
        int[] longIds = model.encode("word ".repeat(200), null);
        assertEquals(202, longIds.length);
    }

    @Test
    void eachSentenceAloneMatchesOnnxRuntime() throws OrtException {
        for (int[] ids : encodeAll()) {
            TokenBatch batch = TokenBatch.single(ids);
            FloatTensor got = model.model().forward(batch, ForwardOptions.full(), Hooks.none());
            assertEquals(ids.length, got.rows());
            assertEquals(384, got.cols());
            double diff = maxDiff(reference(List.of(ids)), got, batch);
            assertTrue(diff <= ATOL, "max abs error " + diff + " for " + ids.length + " tokens");
        }
    }

    /** The encoder runner on the scalar reference backend gives the same numbers. */
    @Test
    void referenceBackendMatchesOnnxRuntime() throws OrtException {
        try (HookedModel ref = EmbeddedModels.minilm(dev.jlens.kernels.Backend.reference())) {
            List<int[]> ids = encodeAll().subList(0, 2); // scalar loops are slow; two sentences in one packed batch
            TokenBatch batch = TokenBatch.of(ids);
            FloatTensor got = ref.model().forward(batch, ForwardOptions.full(), Hooks.none());
            double diff = maxDiff(reference(ids), got, batch);
            assertTrue(diff <= ATOL, "max abs error " + diff + " on the reference backend");
        }
    }

    @Test
    void packedBatchOfDifferentLengthsMatchesPaddedOnnxRuntime() throws OrtException {
        List<int[]> ids = encodeAll();
        TokenBatch batch = TokenBatch.of(ids);
        FloatTensor packed = model.forward(batch, Hooks.none());
        assertEquals(batch.totalTokens(), packed.rows());
        double diff = maxDiff(reference(ids), packed, batch);
        assertTrue(diff <= ATOL, "packed batch: max abs error " + diff);

        // Packing must not leak between sequences: each sequence's rows are what it gets alone. Not bit-exact,
        // because the Vector API sums lanes in a different order before and after the JIT compiles a kernel.
        for (int s = 0; s < batch.size(); s++) {
            FloatTensor alone = model.forward(TokenBatch.single(ids.get(s)), Hooks.none());
            FloatTensor rows = packed.rowSlice(batch.offsets()[s], batch.offsets()[s] + batch.lengths()[s]);
            assertArrayEquals(alone.data(), rows.data(), 1e-5f, "sequence " + s + " alone vs packed");
        }
    }
}
