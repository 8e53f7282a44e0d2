package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.pytorch.TorchFiles.Tensor;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TorchCheckpointTest {

    @TempDir
    Path dir;

    private static void assertSameTensor(TensorEntry want, TensorEntry got) {
        assertEquals(want.dtype(), got.dtype(), want.name());
        assertArrayEquals(want.shape(), got.shape(), want.name());
        assertEquals(want.data().byteSize(), got.data().byteSize(), want.name());
        assertEquals(-1L, want.data().mismatch(got.data()), want.name() + ": bytes differ");
    }

    @Test
    void binEqualsTheFp16SafetensorsBitForBit() {
        Path st = Fixtures.dir("gpt_neox_tiny_fp16").resolve("model.safetensors");
        Path bin = Fixtures.dir("gpt_neox_tiny_bin").resolve("pytorch_model.bin");
        try (SafetensorsFile want = SafetensorsFile.open(st); TensorSource got = TorchCheckpoint.open(bin)) {
            assertEquals(want.names(), new HashSet<>(got.names()));
            for (String name : want.names()) assertSameTensor(want.require(name), got.require(name));
            assertEquals(bin.toString(), got.describe());
        }
    }

    @Test
    void shardedBinEqualsTheFp16SafetensorsPlusOldPythiaBuffers() {
        Path st = Fixtures.dir("gpt_neox_tiny_fp16").resolve("model.safetensors");
        Path index = Fixtures.dir("gpt_neox_tiny_bin_sharded").resolve("pytorch_model.bin.index.json");
        try (SafetensorsFile want = SafetensorsFile.open(st); TensorSource got = TorchCheckpoint.openSharded(index)) {
            for (String name : want.names()) assertSameTensor(want.require(name), got.require(name));
            Set<String> extra = new TreeSet<>(got.names());
            extra.removeAll(want.names());
            Set<String> buffers = new TreeSet<>();
            for (int l = 0; l < 3; l++) {
                String p = "gpt_neox.layers." + l + ".attention.";
                buffers.addAll(List.of(p + "bias", p + "masked_bias", p + "rotary_emb.inv_freq"));
            }
            assertEquals(buffers, extra);

            TensorEntry mask = got.require("gpt_neox.layers.1.attention.bias");
            assertEquals(DType.U8, mask.dtype());
            assertArrayEquals(new long[]{1, 1, 128, 128}, mask.shape());
            float[] m = mask.toFloatArray();
            for (int i = 0; i < 128; i++) {
                for (int j = 0; j < 128; j++) assertEquals(j <= i ? 1f : 0f, m[i * 128 + j], "mask[" + i + "," + j + "]");
            }
            TensorEntry masked = got.require("gpt_neox.layers.0.attention.masked_bias");
            assertEquals(DType.F32, masked.dtype());
            assertArrayEquals(new long[0], masked.shape());
            assertEquals(-1e9f, masked.getFloat(0));
            // rotary_pct 0.25 of head size 16: 4 rotary dims, inv_freq = 1 / 10000^(2i/4)
            TensorEntry invFreq = got.require("gpt_neox.layers.2.attention.rotary_emb.inv_freq");
            assertArrayEquals(new long[]{2}, invFreq.shape());
            assertEquals(1.0f, invFreq.getFloat(0));
            assertEquals((float) (1 / Math.pow(10000, 0.5)), invFreq.getFloat(1), 1e-9);
            assertTrue(got.describe().contains("pytorch_model.bin.index.json"));
        }
    }

    @Test
    void checkpointsPicksTheBinFiles() {
        try (TensorSource s = Checkpoints.open(Fixtures.dir("gpt_neox_tiny_bin"))) {
            assertInstanceOf(TorchCheckpoint.class, s);
        }
        try (TensorSource s = Checkpoints.open(Fixtures.dir("gpt_neox_tiny_bin_sharded"))) {
            assertInstanceOf(dev.jlens.io.ShardedCheckpoint.class, s);
            assertTrue(s.contains("embed_out.weight"));
            assertTrue(s.require("embed_out.weight").source().endsWith(".bin"), "tensors come from the .bin shards");
        }
    }

    @Test
    void readsTheStateDictTheTestWriterProduces() throws IOException {
        byte[] pkl = TorchFiles.stateDictPickle(List.of(
                Tensor.contiguous("w", "FloatStorage", "0", 2, 3),
                Tensor.contiguous("ids", "LongStorage", "1", 2)));
        Path p = write("writer.bin", TorchFiles.checkpoint("archive", pkl,
                Map.of("0", TorchFiles.f32(1, 2, 3, 4, 5, 6), "1", TorchFiles.i64(7, -8))));
        try (TorchCheckpoint c = TorchCheckpoint.open(p)) {
            assertEquals(List.of("w", "ids"), List.copyOf(c.names()));
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, c.require("w").toFloatArray());
            assertArrayEquals(new long[]{2, 3}, c.require("w").shape());
            assertArrayEquals(new long[]{7, -8}, c.require("ids").toLongArray());
            assertEquals(p.toString(), c.require("w").source());
        }
    }

    /**
     * Newer protocol features (FRAME, STACK_GLOBAL, MEMOIZE, SHORT_BINUNICODE, BINUNICODE8, LONG1, BINFLOAT,
     * lists), nn.Parameter wrapping, torch.Size, views into a shared storage at an offset, a size-1 dimension
     * with an arbitrary stride, an empty tensor, a scalar, and non-tensor entries, which are skipped.
     */
    @Test
    void protocol4FeaturesViewsAndParameters() throws IOException {
        PickleBytes p = new PickleBytes().proto(4).frame(0);
        p.stackGlobal("collections", "OrderedDict").memoize().emptyTuple().reduce().memoize(); // memo 0, 1
        p.mark();
        // "a": Parameter(rebuild_v2(storage 0 (6 floats), offset 2, Size((2, 2)), (2, 1)))
        p.shortStr("a").stackGlobal("torch._utils", "_rebuild_parameter").memoize(); // 2
        p.stackGlobal("torch._utils", "_rebuild_tensor_v2").memoize(); // 3
        p.mark().mark().shortStr("storage").stackGlobal("torch", "FloatStorage").memoize() // 4
                .shortStr("0").shortStr("cpu").integer(6).tuple().persid();
        p.memoize(); // 5: the storage itself, shared below
        p.integer(2).stackGlobal("torch", "Size").mark().integer(2).integer(2).tuple().op(0x85).reduce();
        p.intTuple(2, 1).newTrue().get(0).emptyTuple().reduce().tuple().reduce();
        p.newTrue().get(0).emptyTuple().reduce().op(0x87).reduce();
        // "b": the first element of the same storage, size [1, 1] with a stride torch ignores for size 1
        p.str8("b").get(3).mark().get(5).integer(0).intTuple(1, 1).intTuple(99, 7).newFalse().get(0).emptyTuple()
                .reduce().tuple().reduce();
        // "empty": zero elements; "scalar": 0-dim bf16 (0x3fc0 = 1.5) read through a LONG1 numel
        p.str("empty").get(3).mark().get(5).integer(6).intTuple(0, 4).intTuple(4, 1).newFalse().get(0)
                .emptyTuple().reduce().tuple().reduce();
        p.str("scalar").get(3).mark().mark().str("storage").global("torch", "BFloat16Storage").str("1").str("cpu")
                .op(0x8a, 1, 1).tuple().persid().integer(0).emptyTuple().emptyTuple().newFalse().get(0).emptyTuple()
                .reduce().tuple().reduce();
        // non-tensor values that a state dict may carry
        p.str("step").binFloat(2.5).str("names").emptyList().mark().str("x").none().op(0x8a, 2, 0x00, 0x80).appends();
        p.setitems().stop();
        Path f = write("p4.bin", TorchFiles.checkpoint("p4", p.bytes(), Map.of(
                "0", TorchFiles.f32(10, 11, 12, 13, 14, 15),
                "1", new byte[]{(byte) 0xc0, 0x3f})));
        try (TorchCheckpoint c = TorchCheckpoint.open(f)) {
            assertEquals(List.of("a", "b", "empty", "scalar"), List.copyOf(c.names()));
            assertArrayEquals(new float[]{12, 13, 14, 15}, c.require("a").toFloatArray());
            assertArrayEquals(new long[]{2, 2}, c.require("a").shape());
            assertArrayEquals(new float[]{10}, c.require("b").toFloatArray());
            assertEquals(0, c.require("empty").numel());
            assertArrayEquals(new long[]{0, 4}, c.require("empty").shape());
            assertEquals(DType.BF16, c.require("scalar").dtype());
            assertEquals(1.5f, c.require("scalar").getFloat(0));
            assertArrayEquals(new long[0], c.require("scalar").shape());
        }
    }

    @Test
    void zip64Archive() throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("big/data.pkl", TorchFiles.stateDictPickle(List.of(Tensor.contiguous("t", "FloatStorage", "0", 3))));
        entries.put("big/data/0", TorchFiles.f32(1.25f, -2, 3));
        Path p = write("zip64.bin", TorchFiles.zip64(entries));
        // The JDK's own reader agrees that the hand-written archive is valid ZIP64.
        try (ZipFile z = new ZipFile(p.toFile())) {
            assertArrayEquals(TorchFiles.f32(1.25f, -2, 3), z.getInputStream(z.getEntry("big/data/0")).readAllBytes());
        }
        try (TorchCheckpoint c = TorchCheckpoint.open(p)) {
            assertArrayEquals(new float[]{1.25f, -2, 3}, c.require("t").toFloatArray());
        }
    }

    @Test
    void zip64EndRecordWrittenByTheJdkForManyEntries() throws IOException {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put("many/data.pkl", TorchFiles.stateDictPickle(List.of(Tensor.contiguous("t", "FloatStorage", "0", 2))));
        entries.put("many/data/0", TorchFiles.f32(4, 5));
        // java.util.zip switches to ZIP64 end records at 65535 entries
        for (int i = 0; i < 65_540; i++) entries.put("many/pad/" + i, new byte[0]);
        Path p = write("many.bin", TorchFiles.zip(entries, ZipEntry.STORED));
        try (TorchCheckpoint c = TorchCheckpoint.open(p)) {
            assertArrayEquals(new float[]{4, 5}, c.require("t").toFloatArray());
        }
    }

    // ---- malformed checkpoints: each names the file and what is wrong ----

    private Path write(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private static JlensException fails(Path p, String... parts) {
        JlensException e = assertThrows(JlensException.class, () -> TorchCheckpoint.open(p));
        assertTrue(e.getMessage().contains(p.toString()), "message should name the file: " + e.getMessage());
        for (String s : parts) {
            assertTrue(e.getMessage().contains(s), "message should mention \"" + s + "\": " + e.getMessage());
        }
        return e;
    }

    private Path single(String name, Tensor t, byte[] storage) throws IOException {
        return write(name, TorchFiles.checkpoint("archive", TorchFiles.stateDictPickle(List.of(t)), Map.of(t.key(), storage)));
    }

    @Test
    void nonContiguousStrideIsRefused() throws IOException {
        Path p = single("t.bin", new Tensor("w.T", "FloatStorage", "0", 6, 0, new long[]{3, 2}, new long[]{1, 3}),
                TorchFiles.f32(1, 2, 3, 4, 5, 6));
        fails(p, "\"w.T\"", "[3, 2]", "[1, 3]", "contiguous");
    }

    @Test
    void storageTooSmallForItsClaimedElements() throws IOException {
        Path p = single("small.bin", Tensor.contiguous("w", "FloatStorage", "0", 4), TorchFiles.f32(1, 2, 3));
        fails(p, "\"w\"", "archive/data/0", "16 bytes", "has 12");
    }

    @Test
    void viewBeyondItsStorage() throws IOException {
        Path p = single("view.bin", new Tensor("w", "FloatStorage", "0", 4, 2, new long[]{3}, new long[]{1}),
                TorchFiles.f32(1, 2, 3, 4));
        fails(p, "\"w\"", "storage offset 2", "4 elements");
    }

    @Test
    void missingStorageEntry() throws IOException {
        Tensor t = Tensor.contiguous("w", "FloatStorage", "7", 2);
        Path p = write("nostorage.bin", TorchFiles.checkpoint("archive", TorchFiles.stateDictPickle(List.of(t)), Map.of()));
        fails(p, "\"w\"", "archive/data/7", "missing");
    }

    @Test
    void compressedEntriesAreRefused() throws IOException {
        byte[] pkl = TorchFiles.stateDictPickle(List.of(Tensor.contiguous("w", "FloatStorage", "0", 2)));
        Path p = write("deflated.bin", TorchFiles.zip(Map.of("archive/data.pkl", pkl, "archive/data/0", TorchFiles.f32(1, 2)),
                ZipEntry.DEFLATED));
        fails(p, "compressed");
    }

    @Test
    void notAZipFile() throws IOException {
        fails(write("text.bin", "hello, I am not a checkpoint at all".getBytes(StandardCharsets.US_ASCII)), "not a zip archive");
        fails(write("empty.bin", new byte[0]), "not a zip archive");
        // the pre-1.6 format is a bare pickle stream
        PickleBytes legacy = new PickleBytes().proto(2)
                .op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop() // magic number
                .proto(2).integer(1001).stop() // protocol version
                .proto(2).emptyDict().stop();
        fails(write("legacy.bin", legacy.bytes()), "legacy torch.save format");
    }

    @Test
    void truncatedArchive() throws IOException {
        byte[] full = Files.readAllBytes(Fixtures.dir("gpt_neox_tiny_bin_sharded").resolve("pytorch_model-00002-of-00002.bin"));
        fails(write("cut.bin", Arrays.copyOf(full, full.length / 2)), "not a zip archive");
        fails(write("cut2.bin", Arrays.copyOf(full, full.length - 30)), "not a zip archive");
    }

    @Test
    void zipWithoutAPickle() throws IOException {
        Path p = write("nopkl.bin", TorchFiles.zip(Map.of("archive/readme.txt", new byte[]{'h', 'i'}), ZipEntry.STORED));
        fails(p, "data.pkl", "not a checkpoint written by torch.save");
    }

    @Test
    void zipWithTwoPickles() throws IOException {
        byte[] pkl = TorchFiles.stateDictPickle(List.of());
        Path p = write("two.bin", TorchFiles.zip(Map.of("a/data.pkl", pkl, "b/data.pkl", pkl), ZipEntry.STORED));
        fails(p, "several pickles");
    }

    @Test
    void bigEndianCheckpointIsRefused() throws IOException {
        Path p = write("be.bin", TorchFiles.zip(Map.of("archive/data.pkl", TorchFiles.stateDictPickle(List.of()),
                "archive/byteorder", "big".getBytes(StandardCharsets.US_ASCII)), ZipEntry.STORED));
        fails(p, "\"big\"-endian");
        Path q = write("le.bin", TorchFiles.zip(Map.of("archive/data.pkl", TorchFiles.stateDictPickle(List.of()),
                "archive/byteorder", "little".getBytes(StandardCharsets.US_ASCII)), ZipEntry.STORED));
        try (TorchCheckpoint c = TorchCheckpoint.open(q)) {
            assertTrue(c.names().isEmpty());
        }
    }

    @Test
    void picklesThatAreNotStateDicts() throws IOException {
        Path list = write("list.bin", TorchFiles.checkpoint("archive",
                new PickleBytes().proto(2).emptyList().stop().bytes(), Map.of()));
        fails(list, "holds a list, not a state dict");
        Path nested = write("nested.bin", TorchFiles.checkpoint("archive",
                new PickleBytes().proto(2).emptyDict().str("model").emptyDict().setitem().stop().bytes(), Map.of()));
        fails(nested, "holds no tensors", "model");
    }

    @Test
    void missingFile() {
        Path p = dir.resolve("absent.bin");
        fails(p, "not found");
    }

    @Test
    void shardIndexProblems() throws IOException {
        Path shard = single("pytorch_model-00001-of-00001.bin", Tensor.contiguous("w", "FloatStorage", "0", 2),
                TorchFiles.f32(1, 2));
        Path idx = dir.resolve("pytorch_model.bin.index.json");
        Files.writeString(idx, "{\"weight_map\":{\"w\":\"" + shard.getFileName() + "\"}}");
        try (TensorSource s = TorchCheckpoint.openSharded(idx)) {
            assertArrayEquals(new float[]{1, 2}, s.require("w").toFloatArray());
            JlensException e = assertThrows(JlensException.class, () -> s.require("nope"));
            assertTrue(e.getMessage().contains("\"nope\""), e.getMessage());
        }
        Files.writeString(idx, "{\"weight_map\":{\"v\":\"" + shard.getFileName() + "\"}}");
        JlensException e = assertThrows(JlensException.class, () -> TorchCheckpoint.openSharded(idx));
        assertTrue(e.getMessage().contains("\"v\"") && e.getMessage().contains(idx.toString()), e.getMessage());
        Files.writeString(idx, "{\"weight_map\":{\"w\":\"../elsewhere.bin\"}}");
        e = assertThrows(JlensException.class, () -> TorchCheckpoint.openSharded(idx));
        assertTrue(e.getMessage().contains("outside the model folder"), e.getMessage());
        Files.writeString(idx, "{\"weight_map\":{\"w\":\"gone.bin\"}}");
        e = assertThrows(JlensException.class, () -> TorchCheckpoint.openSharded(idx));
        assertTrue(e.getMessage().contains("gone.bin") && e.getMessage().contains("not found"), e.getMessage());
        Files.writeString(idx, "not json");
        e = assertThrows(JlensException.class, () -> TorchCheckpoint.openSharded(idx));
        assertTrue(e.getMessage().contains(idx.toString()), e.getMessage());
    }

    @Test
    void tensorsStayReadableAfterTheFileIsGoneFromTheFolder() throws IOException {
        Path p = single("gone.bin", Tensor.contiguous("w", "FloatStorage", "0", 3), TorchFiles.f32(7, 8, 9));
        TorchCheckpoint c = TorchCheckpoint.open(p);
        MemorySegment data = c.require("w").data();
        Files.delete(p);
        c.close();
        assertEquals(12, data.byteSize());
        assertArrayEquals(new float[]{7, 8, 9}, c.require("w").toFloatArray());
    }
}
