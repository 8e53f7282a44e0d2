package dev.jlens.load;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.ModelLocation;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BiFunction;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Broken model folders, copied from a fixture and damaged: loading must fail naming the file and tensor. */
class ModelLoaderBadInputTest {

    @TempDir
    Path tmp;

    /** A copy of the F32 GPT-NeoX fixture (config.json, model.safetensors, tokenizer.json). */
    private Path copyFixture(String name) throws IOException {
        Path src = Fixtures.dir(name);
        Path dst = tmp.resolve(name);
        Files.createDirectories(dst);
        for (String f : List.of("config.json", "tokenizer.json", "model.safetensors", "pytorch_model.bin")) {
            if (Files.exists(src.resolve(f))) Files.copy(src.resolve(f), dst.resolve(f));
        }
        return dst;
    }

    private static JlensException loadFails(Path dir) {
        return assertThrows(JlensException.class,
                () -> ModelLoader.loadFolder(new ModelLocation(dir.toString(), null, dir, false)).close());
    }

    private static void assertMentions(JlensException e, String... parts) {
        for (String s : parts) {
            assertTrue(e.getMessage().contains(s), "message should mention \"" + s + "\": " + e.getMessage());
        }
    }

    /** Rewrites model.safetensors, letting {@code edit} drop (null) or replace each tensor's shape. */
    private static void rewriteWeights(Path dir, BiFunction<String, long[], long[]> edit) {
        Path file = dir.resolve("model.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String name : f.names()) {
                TensorEntry e = f.require(name);
                assertEquals(DType.F32, e.dtype(), name);
                long[] shape = edit.apply(name, e.shape());
                if (shape != null) w.putF32(name, e.toFloatArray(), shape);
            }
        }
        w.write(file);
    }

    /**
     * Found by fuzzing config.json (ModelConfigFuzzTest): a layer count far beyond the checkpoint made the
     * loaders list or allocate something per claimed layer (OutOfMemoryError); a huge head_dim sized the RoPE
     * tables before any tensor was checked. Both are now refused against the weights first.
     */
    @Test
    void claimedSizesBeyondTheCheckpointAreRefusedBeforeAllocating() throws IOException {
        for (String[] c : new String[][]{{"gpt2_tiny", "n_layer"}, {"gpt_neox_tiny", "num_hidden_layers"},
                {"llama_tiny", "num_hidden_layers"}}) {
            Path dir = copyFixture(c[0]);
            ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
            cfg.put(c[1], Integer.MAX_VALUE);
            Files.writeString(dir.resolve("config.json"), cfg.toString());
            assertMentions(loadFails(dir), "config.json", "\"" + c[1] + "\" is 2147483647", "holds only");
        }
        Path dir = copyFixture("qwen2_tiny");
        ObjectNode cfg = (ObjectNode) new ObjectMapper().readTree(dir.resolve("config.json").toFile());
        cfg.put("head_dim", 1 << 26);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        assertMentions(loadFails(dir), "q_proj.weight", "has shape");
        cfg.put("head_dim", Integer.MAX_VALUE - 1);
        Files.writeString(dir.resolve("config.json"), cfg.toString());
        assertMentions(loadFails(dir), "\"head_dim\"", "attention heads");
    }

    @Test
    void copiedFixtureLoads() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        rewriteWeights(dir, (n, s) -> s);
        ModelLoader.loadFolder(new ModelLocation(dir.toString(), null, dir, false)).close();
    }

    @Test
    void tensorShapeDisagreesWithTheCheckpointsOwnLayout() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        String bad = "gpt_neox.layers.1.attention.dense.weight";
        rewriteWeights(dir, (n, s) -> n.equals(bad) ? new long[]{32, 128} : s);
        assertMentions(loadFails(dir), dir.resolve("model.safetensors").toString(), "\"" + bad + "\"",
                "[32, 128]", "[64, 64]", "config.json");
    }

    @Test
    void configJsonDisagreesWithTheTensors() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        ObjectMapper om = new ObjectMapper();
        ObjectNode config = (ObjectNode) om.readTree(dir.resolve("config.json").toFile());
        config.put("intermediate_size", 128);
        om.writeValue(dir.resolve("config.json").toFile(), config);
        assertMentions(loadFails(dir), dir.resolve("model.safetensors").toString(),
                "\"gpt_neox.layers.0.mlp.dense_h_to_4h.weight\"", "[256, 64]", "[128, 64]",
                dir.resolve("config.json").toString());
    }

    @Test
    void missingTensor() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        String gone = "gpt_neox.layers.2.mlp.dense_4h_to_h.bias";
        rewriteWeights(dir, (n, s) -> n.equals(gone) ? null : s);
        assertMentions(loadFails(dir), dir.resolve("model.safetensors").toString(), "missing tensor", "\"" + gone + "\"");
    }

    @Test
    void missingTokenizerJson() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        Files.delete(dir.resolve("tokenizer.json"));
        assertMentions(loadFails(dir), dir.resolve("tokenizer.json").toString(), "not found");
    }

    @Test
    void missingWeights() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        Files.delete(dir.resolve("model.safetensors"));
        assertMentions(loadFails(dir), dir.toString(), "no weights found", "pytorch_model.bin");
    }

    @Test
    void folderThatDoesNotExist() {
        JlensException e = assertThrows(JlensException.class, () -> ModelLoader.load("/no/such/dir", null));
        assertMentions(e, "/no/such/dir", "no such folder");
        Path gone = tmp.resolve("gone");
        assertMentions(loadFails(gone), gone.toString(), "does not exist");
    }

    @Test
    void truncatedSafetensors() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny");
        Path st = dir.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        Files.write(st, java.util.Arrays.copyOf(all, all.length / 3));
        assertMentions(loadFails(dir), st.toString(), "out of range");
    }

    @Test
    void binShapeDisagreesWithConfig() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny_bin");
        ObjectMapper om = new ObjectMapper();
        ObjectNode config = (ObjectNode) om.readTree(dir.resolve("config.json").toFile());
        config.put("hidden_size", 32);
        om.writeValue(dir.resolve("config.json").toFile(), config);
        assertMentions(loadFails(dir), dir.resolve("pytorch_model.bin").toString(), "\"gpt_neox.embed_in.weight\"",
                "[50304, 64]", "[50304, 32]");
    }

    @Test
    void maliciousBinInAModelFolder() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny_bin");
        Path bin = dir.resolve("pytorch_model.bin");
        // what pickle.dumps writes for an object whose __reduce__ returns (os.system, ("id",))
        byte[] pkl = {(byte) 0x80, 2, 'c', 'p', 'o', 's', 'i', 'x', '\n', 's', 'y', 's', 't', 'e', 'm', '\n',
                'q', 0, 'X', 2, 0, 0, 0, 'i', 'd', (byte) 0x85, 'R', '.'};
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(bin))) {
            ZipEntry e = new ZipEntry("archive/data.pkl");
            e.setMethod(ZipEntry.STORED);
            e.setSize(pkl.length);
            CRC32 crc = new CRC32();
            crc.update(pkl);
            e.setCrc(crc.getValue());
            z.putNextEntry(e);
            z.write(pkl);
            z.closeEntry();
        }
        assertMentions(loadFails(dir), bin.toString(), "\"posix.system\"");
    }

    @Test
    void notACheckpointAtAll() throws IOException {
        Path dir = copyFixture("gpt_neox_tiny_bin");
        Path bin = dir.resolve("pytorch_model.bin");
        Files.writeString(bin, "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 13193257\n",
                StandardCharsets.US_ASCII);
        assertMentions(loadFails(dir), bin.toString(), "not a zip archive", "Git LFS pointer");
    }
}
