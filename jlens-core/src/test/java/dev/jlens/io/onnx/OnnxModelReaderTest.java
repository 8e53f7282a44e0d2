package dev.jlens.io.onnx;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OnnxModelReaderTest {

    /** A protobuf message writer for building test models; the field numbers are onnx.proto's. */
    static final class Msg {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Msg rawVarint(long v) {
            while ((v & ~0x7fL) != 0) {
                out.write((int) ((v & 0x7f) | 0x80));
                v >>>= 7;
            }
            out.write((int) v);
            return this;
        }

        Msg tag(int field, int wire) {
            return rawVarint(((long) field << 3) | wire);
        }

        Msg varint(int field, long v) {
            return tag(field, 0).rawVarint(v);
        }

        Msg bytes(int field, byte[] b) {
            tag(field, 2).rawVarint(b.length);
            out.writeBytes(b);
            return this;
        }

        Msg string(int field, String s) {
            return bytes(field, s.getBytes(StandardCharsets.UTF_8));
        }

        Msg msg(int field, Msg m) {
            return bytes(field, m.toBytes());
        }

        Msg fixed32(int field, float f) {
            tag(field, 5);
            out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(f).array());
            return this;
        }

        Msg raw(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        byte[] toBytes() {
            return out.toByteArray();
        }
    }

    static byte[] le(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) b.putFloat(f);
        return b.array();
    }

    static Msg tensor(String name, int dataType, long... dims) {
        Msg t = new Msg();
        for (long d : dims) t.varint(1, d);
        return t.varint(2, dataType).string(8, name);
    }

    static Msg node(String op, String name, List<String> in, List<String> out, Msg... attrs) {
        Msg n = new Msg();
        for (String i : in) n.string(1, i);
        for (String o : out) n.string(2, o);
        n.string(3, name).string(4, op);
        for (Msg a : attrs) n.msg(5, a);
        return n;
    }

    static Msg model(Msg graph) {
        return new Msg().varint(1, 8).string(2, "pytorch").msg(7, graph)
                .msg(8, new Msg().string(1, "").varint(2, 17));
    }

    /** A small graph using each encoding of tensor data that the reader supports. */
    static byte[] sampleModel() {
        Msg packedDims = new Msg().rawVarint(1).rawVarint(4);
        Msg ids = new Msg().bytes(1, packedDims.toBytes()).varint(2, 7).string(8, "ids")
                .bytes(7, new Msg().rawVarint(5).rawVarint(0).rawVarint(-3L).rawVarint(1L << 40).toBytes());
        Msg graph = new Msg()
                .msg(1, node("MatMul", "/encoder/layer.0/q/MatMul", List.of("x", "onnx::MatMul_7"), List.of("y")))
                .msg(1, node("Constant", "/c", List.of(), List.of("eps"),
                        new Msg().string(1, "value").msg(5, tensor("", 1).raw(new Msg().bytes(9, le(1e-12f)).toBytes())).varint(20, 4)))
                .msg(1, node("Add", "/add", List.of("y", "eps"), List.of("z"),
                        new Msg().string(1, "alpha").fixed32(2, 0.5f).varint(20, 1),
                        new Msg().string(1, "perm").bytes(8, new Msg().rawVarint(0).rawVarint(2).rawVarint(1).toBytes()).varint(20, 7)))
                .string(2, "g")
                .msg(5, tensor("onnx::MatMul_7", 1, 2, 3).bytes(9, le(1, 2, 3, 4, 5, 6)))
                .msg(5, tensor("packed", 1, 3).bytes(4, le(0.5f, -1f, 7f)))
                .msg(5, tensor("unpacked", 1, 2).fixed32(4, 3f).fixed32(4, -4f))
                .msg(5, ids)
                .msg(5, tensor("half", 10, 2).varint(5, Float.floatToFloat16(1.5f)).varint(5, Float.floatToFloat16(-2f) & 0xffff))
                .msg(5, tensor("scalar", 11).bytes(9, ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putDouble(2.5).array()))
                .msg(11, new Msg().string(1, "x").bytes(2, new byte[]{8, 1}))
                .msg(12, new Msg().string(1, "z"))
                .msg(99, new Msg().string(1, "an unknown field is skipped"));
        return model(graph).toBytes();
    }

    static OnnxModel read(byte[] b) {
        return OnnxModelReader.read(MemorySegment.ofArray(b), "test.onnx");
    }

    @Test
    void readsInitializersInEveryEncoding() {
        try (OnnxModel m = read(sampleModel())) {
            assertEquals(List.of("onnx::MatMul_7", "packed", "unpacked", "ids", "half", "scalar"), List.copyOf(m.names()));
            TensorEntry w = m.require("onnx::MatMul_7");
            assertEquals(DType.F32, w.dtype());
            assertArrayEquals(new long[]{2, 3}, w.shape());
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, w.toFloatArray());
            assertEquals("test.onnx", w.source());
            assertArrayEquals(new float[]{0.5f, -1f, 7f}, m.require("packed").toFloatArray());
            assertArrayEquals(new float[]{3f, -4f}, m.require("unpacked").toFloatArray());
            TensorEntry ids = m.require("ids");
            assertArrayEquals(new long[]{1, 4}, ids.shape());
            assertArrayEquals(new long[]{5, 0, -3, 1L << 40}, ids.toLongArray());
            assertEquals(DType.F16, m.require("half").dtype());
            assertArrayEquals(new float[]{1.5f, -2f}, m.require("half").toFloatArray());
            TensorEntry scalar = m.require("scalar");
            assertEquals(0, scalar.rank());
            assertEquals(2.5f, scalar.getFloat(0));
            assertEquals("test.onnx", m.describe());
        }
    }

    @Test
    void readsNodesAttributesAndLinks() {
        try (OnnxModel m = read(sampleModel())) {
            assertEquals(3, m.nodes().size());
            OnnxNode mm = m.node("/encoder/layer.0/q/MatMul");
            assertEquals("MatMul", mm.opType());
            assertEquals(List.of("x", "onnx::MatMul_7"), mm.inputs());
            assertEquals(List.of("y"), mm.outputs());
            assertEquals(mm, m.producer("y"));
            assertEquals(List.of(m.node("/add")), m.consumers("y"));
            assertEquals(List.of(mm), m.consumers("onnx::MatMul_7"));
            assertNull(m.producer("x"));
            assertEquals(1e-12f, m.constant("eps").getFloat(0));
            assertEquals(4f, m.constant("onnx::MatMul_7").getFloat(3));
            assertNull(m.constant("y"));
            OnnxAttribute alpha = m.node("/add").attribute("alpha");
            assertEquals(0.5f, alpha.f());
            assertArrayEquals(new long[]{0, 2, 1}, m.node("/add").attribute("perm").ints());
            assertEquals(List.of("x"), m.graphInputs());
            assertEquals(List.of("z"), m.graphOutputs());
        }
    }

    @Test
    void memoryMapsAFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("m.onnx");
        Files.write(f, sampleModel());
        try (OnnxModel m = OnnxModelReader.read(f)) {
            assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6}, m.require("onnx::MatMul_7").toFloatArray());
            assertEquals(f.toString(), m.require("packed").source());
        }
        JlensException e = assertThrows(JlensException.class, () -> OnnxModelReader.read(dir.resolve("missing.onnx")));
        assertTrue(e.getMessage().contains("missing.onnx"), e.getMessage());
    }

    @Test
    void readsTheEmbeddedMiniLmExport() throws IOException {
        byte[] bytes;
        try (InputStream in = getClass().getClassLoader().getResourceAsStream("all-minilm-l6-v2.onnx")) {
            assertNotNull(in);
            bytes = in.readAllBytes();
        }
        try (OnnxModel m = read(bytes)) {
            assertEquals(List.of("input_ids", "attention_mask", "token_type_ids"), m.graphInputs());
            assertEquals(List.of("last_hidden_state"), m.graphOutputs());
            TensorEntry word = m.require("embeddings.word_embeddings.weight");
            assertEquals(DType.F32, word.dtype());
            assertArrayEquals(new long[]{30522, 384}, word.shape());
            assertEquals(DType.I64, m.require("embeddings.position_ids").dtype());
            assertArrayEquals(new long[]{0, 1, 2, 3}, Arrays.copyOf(m.require("embeddings.position_ids").toLongArray(), 4));
            OnnxNode q = m.node("/encoder/layer.0/attention/self/query/MatMul");
            assertNotNull(q);
            TensorEntry qw = m.find(q.inputs().get(1));
            assertTrue(qw.name().startsWith("onnx::MatMul_"), qw.name());
            assertArrayEquals(new long[]{384, 384}, qw.shape());
            long matMulWeights = m.nodes().stream()
                    .filter(n -> n.opType().equals("MatMul") && m.find(n.inputs().get(1)) != null).count();
            assertEquals(6 * 6, matMulWeights, "q, k, v, attention output, intermediate and output per layer");
            long floats = m.names().stream().map(m::require).filter(t -> t.dtype() == DType.F32).mapToLong(TensorEntry::numel).sum();
            assertEquals(22_565_376, floats, "all-MiniLM-L6-v2 without its pooler");
        }
    }

    static JlensException malformed(byte[] b) {
        return assertThrows(JlensException.class, () -> read(b));
    }

    @Test
    void lengthBeyondTheDataIsReportedWithItsOffset() {
        byte[] b = new Msg().tag(7, 2).rawVarint(100).raw(new byte[5]).toBytes();
        JlensException e = malformed(b);
        assertTrue(e.getMessage().startsWith("test.onnx: malformed ONNX model at byte offset 0"), e.getMessage());
        assertTrue(e.getMessage().contains("claims 100 bytes but only 5 remain"), e.getMessage());

        // The same inside a nested message: the offset is the field's position in the file.
        Msg graph = new Msg().string(2, "g").raw(new Msg().tag(5, 2).rawVarint(1000).toBytes());
        byte[] nested = new Msg().msg(7, graph).toBytes();
        e = malformed(nested);
        assertTrue(e.getMessage().contains("byte offset 5:"), e.getMessage());
    }

    @Test
    void malformedInputsAreJlensExceptions() {
        byte[] good = sampleModel();
        assertTrue(malformed(Arrays.copyOf(good, good.length - 3)).getMessage().contains("test.onnx"));
        byte[] longVarint = new byte[12];
        Arrays.fill(longVarint, (byte) 0xff);
        assertTrue(malformed(longVarint).getMessage().contains("longer than 10 bytes"));
        assertTrue(malformed(new Msg().tag(3, 3).toBytes()).getMessage().contains("wire type 3"));
        assertTrue(malformed(new Msg().tag(0, 0).rawVarint(1).toBytes()).getMessage().contains("field number 0"));
        assertTrue(malformed(new Msg().varint(7, 1).toBytes()).getMessage().contains("ModelProto.graph"));
        assertTrue(malformed(new Msg().varint(1, 8).toBytes()).getMessage().contains("no graph"));
        assertTrue(malformed(new byte[0]).getMessage().contains("no graph"));
    }

    @Test
    void inconsistentTensorsAreJlensExceptions() {
        String msg = malformedGraph(new Msg().msg(5, tensor("w", 1, 2, 3).bytes(9, le(1, 2, 3))));
        assertTrue(msg.contains("tensor \"w\"") && msg.contains("12 bytes") && msg.contains("needs 24"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("s", 8, 1).bytes(9, new byte[4])));
        assertTrue(msg.contains("data_type 8 is not supported"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("ext", 1, 4).varint(14, 1)));
        assertTrue(msg.contains("external file"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("d", 1, 1).bytes(9, le(1))).msg(5, tensor("d", 1, 1).bytes(9, le(2))));
        assertTrue(msg.contains("second initializer named \"d\""), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("", 1, 1).bytes(9, le(1))));
        assertTrue(msg.contains("without a name"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("both", 1, 1).bytes(9, le(1)).bytes(4, le(1))));
        assertTrue(msg.contains("both raw_data and typed data"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("i", 7, 1).bytes(4, le(1))));
        assertTrue(msg.contains("float_data"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("odd", 1, 1).bytes(4, new byte[3])));
        assertTrue(msg.contains("not a multiple of 4"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("neg", 1).varint(1, -2).bytes(9, new byte[0])));
        assertTrue(msg.contains("negative dimension"), msg);
        msg = malformedGraph(new Msg().msg(5, tensor("huge", 1, 1L << 40, 1L << 40).bytes(9, new byte[0])));
        assertTrue(msg.contains("too many elements"), msg);
        msg = malformedGraph(new Msg().msg(1, new Msg().string(3, "nameless-op")));
        assertTrue(msg.contains("no op_type"), msg);
    }

    static String malformedGraph(Msg graph) {
        return malformed(model(graph).toBytes()).getMessage();
    }

    /** Whatever the damage, the reader either parses or fails with a JlensException: nothing else escapes. */
    @Property(tries = 2000)
    void damagedModelsFailCleanly(@ForAll @IntRange(min = 0, max = 10_000) int cut, @ForAll @IntRange(min = 0, max = 10_000) int at,
                                  @ForAll byte value) {
        byte[] good = sampleModel();
        byte[] b = Arrays.copyOf(good, cut % (good.length + 1));
        if (b.length > 0) b[at % b.length] = value;
        try (OnnxModel m = read(b)) {
            for (String name : m.names()) m.require(name).toFloatArray();
        } catch (JlensException expected) {
            assertTrue(expected.getMessage().startsWith("test.onnx"), expected.getMessage());
        }
    }
}
