package dev.jlens.io.onnx;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the weights and the node list of an {@code .onnx} file (a protobuf-encoded {@code ModelProto}).
 *
 * <p>Why by hand: a loader needs five messages and about twenty fields of them (ModelProto.graph;
 * GraphProto node/initializer/input/output; NodeProto input/output/name/op_type/attribute; AttributeProto's
 * scalar and tensor values; TensorProto dims/data_type/name/raw_data and the typed data lists). protobuf-java
 * plus classes generated from onnx.proto would add two build steps and a 2 MB runtime for that, and would
 * copy every {@code raw_data} into a {@code ByteString}; the protobuf wire format itself (varints,
 * length-delimited fields, fixed32/fixed64) is small and stable. Here tensors stay zero-copy slices of the
 * input, every length is checked against the bytes that actually remain, and anything malformed becomes a
 * {@link JlensException} naming the resource and the byte offset.
 */
public final class OnnxModelReader {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    // Protobuf wire types.
    private static final int VARINT = 0, FIXED64 = 1, LEN = 2, FIXED32 = 5;

    private OnnxModelReader() {
    }

    /** Memory-maps the file; the returned model's tensors are views of the mapping until it is closed. */
    public static OnnxModel read(Path file) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return parse(seg, file.toString(), arena);
        } catch (IOException e) {
            arena.close();
            throw new JlensException(file + ": cannot read ONNX model: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Parses a model held in memory (e.g. a classpath resource read into a heap array); the tensors are views
     * of {@code data}. {@code resource} names it in error messages and in {@link TensorEntry#source()}.
     */
    public static OnnxModel read(MemorySegment data, String resource) {
        return parse(data, resource, null);
    }

    private static OnnxModel parse(MemorySegment data, String resource, Arena arena) {
        Wire model = new Wire(data, 0, resource);
        Wire graph = null;
        while (model.more()) {
            long at = model.pos;
            int tag = model.tag();
            if (Wire.field(tag) == 7) {
                if (Wire.wire(tag) != LEN) throw model.error(at, "ModelProto.graph has wire type " + Wire.wire(tag) + "; expected 2 (a message)");
                if (graph != null) throw model.error(at, "a second ModelProto.graph; expected exactly one");
                graph = model.message(at, "ModelProto.graph");
            } else {
                model.skip(tag, at);
            }
        }
        if (graph == null) {
            throw new JlensException(resource + ": no graph found (ModelProto field 7 is missing); is this an ONNX model?");
        }
        return parseGraph(graph, resource, arena);
    }

    private static OnnxModel parseGraph(Wire g, String resource, Arena arena) {
        Map<String, TensorEntry> inits = new LinkedHashMap<>();
        List<OnnxNode> nodes = new ArrayList<>();
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        while (g.more()) {
            long at = g.pos;
            int tag = g.tag();
            switch (Wire.field(tag)) {
                case 1 -> nodes.add(parseNode(g.expectMessage(tag, at, "GraphProto.node"), resource));
                case 5 -> {
                    TensorEntry t = parseTensor(g.expectMessage(tag, at, "GraphProto.initializer"), resource);
                    if (t.name().isEmpty()) throw g.error(at, "an initializer without a name");
                    if (inits.put(t.name(), t) != null) throw g.error(at, "a second initializer named \"" + t.name() + "\"");
                }
                case 11 -> inputs.add(valueInfoName(g.expectMessage(tag, at, "GraphProto.input")));
                case 12 -> outputs.add(valueInfoName(g.expectMessage(tag, at, "GraphProto.output")));
                case 15 -> throw g.error(at, "sparse initializers, which jlens does not read; re-export with dense weights");
                default -> g.skip(tag, at);
            }
        }
        return new OnnxModel(resource, inits, nodes, inputs, outputs, arena);
    }

    private static String valueInfoName(Wire v) {
        String name = "";
        while (v.more()) {
            long at = v.pos;
            int tag = v.tag();
            if (Wire.field(tag) == 1) name = v.expectString(tag, at, "ValueInfoProto.name");
            else v.skip(tag, at);
        }
        return name;
    }

    private static OnnxNode parseNode(Wire n, String resource) {
        List<String> inputs = new ArrayList<>(), outputs = new ArrayList<>();
        String name = "", op = "";
        Map<String, OnnxAttribute> attrs = new LinkedHashMap<>();
        long start = n.base;
        while (n.more()) {
            long at = n.pos;
            int tag = n.tag();
            switch (Wire.field(tag)) {
                case 1 -> inputs.add(n.expectString(tag, at, "NodeProto.input"));
                case 2 -> outputs.add(n.expectString(tag, at, "NodeProto.output"));
                case 3 -> name = n.expectString(tag, at, "NodeProto.name");
                case 4 -> op = n.expectString(tag, at, "NodeProto.op_type");
                case 5 -> {
                    OnnxAttribute a = parseAttribute(n.expectMessage(tag, at, "NodeProto.attribute"), resource);
                    attrs.put(a.name(), a);
                }
                default -> n.skip(tag, at);
            }
        }
        if (op.isEmpty()) {
            throw new JlensException(resource + ": malformed ONNX model at byte offset " + start + ": node \"" + name
                    + "\" has no op_type");
        }
        return new OnnxNode(op, name, inputs, outputs, attrs);
    }

    private static OnnxAttribute parseAttribute(Wire a, String resource) {
        String name = "", s = null;
        float f = 0;
        long i = 0;
        TensorEntry t = null;
        ByteArrayOutputStream floats = new ByteArrayOutputStream();
        List<Long> ints = new ArrayList<>();
        while (a.more()) {
            long at = a.pos;
            int tag = a.tag();
            switch (Wire.field(tag)) {
                case 1 -> name = a.expectString(tag, at, "AttributeProto.name");
                case 2 -> f = Float.intBitsToFloat(a.expectFixed32(tag, at, "AttributeProto.f"));
                case 3 -> i = a.expectVarint(tag, at, "AttributeProto.i");
                case 4 -> s = a.expectString(tag, at, "AttributeProto.s");
                case 5 -> t = parseTensor(a.expectMessage(tag, at, "AttributeProto.t"), resource);
                case 7 -> a.readFixedList(tag, at, 4, floats, "AttributeProto.floats");
                case 8 -> a.readVarintList(tag, at, ints, "AttributeProto.ints");
                default -> a.skip(tag, at);
            }
        }
        MemorySegment fs = MemorySegment.ofArray(floats.toByteArray());
        float[] fa = new float[(int) (fs.byteSize() / 4)];
        MemorySegment.copy(fs, F32, 0, fa, 0, fa.length);
        long[] ia = ints.stream().mapToLong(Long::longValue).toArray();
        return new OnnxAttribute(name, f, i, s, t, fa, ia);
    }

    /**
     * TensorProto: dims (1), data_type (2), float_data (4), int32_data (5), int64_data (7), name (8),
     * raw_data (9), double_data (10), data_location (14). raw_data is used in place; the typed lists are
     * re-encoded as little-endian bytes so that every {@link TensorEntry} reads the same way.
     */
    private static TensorEntry parseTensor(Wire w, String resource) {
        long start = w.base;
        List<Long> dims = new ArrayList<>();
        int dataType = 0;
        String name = "";
        MemorySegment raw = null;
        ByteArrayOutputStream fixedData = new ByteArrayOutputStream();
        List<Long> intData = new ArrayList<>();
        int typedField = 0;
        while (w.more()) {
            long at = w.pos;
            int tag = w.tag();
            int field = Wire.field(tag);
            switch (field) {
                case 1 -> w.readVarintList(tag, at, dims, "TensorProto.dims");
                case 2 -> dataType = (int) w.expectVarint(tag, at, "TensorProto.data_type");
                case 3 -> throw w.error(at, "a segmented tensor (TensorProto.segment), which jlens does not read");
                case 4, 10 -> {
                    typedField = field;
                    w.readFixedList(tag, at, field == 4 ? 4 : 8, fixedData, field == 4 ? "TensorProto.float_data" : "TensorProto.double_data");
                }
                case 5, 7 -> {
                    typedField = field;
                    w.readVarintList(tag, at, intData, field == 5 ? "TensorProto.int32_data" : "TensorProto.int64_data");
                }
                case 6 -> throw w.error(at, "a string tensor; expected numeric weights");
                case 8 -> name = w.expectString(tag, at, "TensorProto.name");
                case 9 -> raw = w.expectBytes(tag, at, "TensorProto.raw_data");
                case 14 -> {
                    if (w.expectVarint(tag, at, "TensorProto.data_location") != 0) {
                        throw new JlensException(resource + ": tensor \"" + name + "\" (at byte offset " + start
                                + ") stores its data in an external file, which jlens does not read; export the model "
                                + "with its weights inside the .onnx file");
                    }
                }
                default -> w.skip(tag, at);
            }
        }
        String what = resource + ": tensor \"" + name + "\" at byte offset " + start;
        DType dtype = dtype(dataType, what);
        long[] shape = new long[dims.size()];
        long numel = 1;
        for (int d = 0; d < shape.length; d++) {
            shape[d] = dims.get(d);
            if (shape[d] < 0) throw new JlensException(what + ": negative dimension " + shape[d]);
            try {
                numel = Math.multiplyExact(numel, shape[d]);
            } catch (ArithmeticException e) {
                throw new JlensException(what + ": shape " + dims + " has too many elements");
            }
        }
        MemorySegment data;
        if (raw != null) {
            if (typedField != 0) throw new JlensException(what + ": has both raw_data and typed data; expected one");
            data = raw;
        } else {
            data = typedData(typedField, dtype, fixedData, intData, what);
        }
        long expected;
        try {
            expected = Math.multiplyExact(numel, dtype.bytes());
        } catch (ArithmeticException e) {
            throw new JlensException(what + ": shape " + dims + " has too many elements");
        }
        if (data.byteSize() != expected) {
            throw new JlensException(what + ": " + data.byteSize() + " bytes of " + dtype + " data for shape " + dims
                    + ", which needs " + expected);
        }
        return new TensorEntry(name, dtype, shape, data, resource);
    }

    private static MemorySegment typedData(int field, DType dtype, ByteArrayOutputStream fixed, List<Long> ints, String what) {
        if (field == 0) return MemorySegment.ofArray(new byte[0]);
        boolean ok = switch (field) {
            case 4 -> dtype == DType.F32;
            case 10 -> dtype == DType.F64;
            case 7 -> dtype == DType.I64;
            default -> dtype != DType.F32 && dtype != DType.F64 && dtype != DType.I64; // int32_data
        };
        if (!ok) {
            String list = switch (field) {
                case 4 -> "float_data";
                case 10 -> "double_data";
                case 7 -> "int64_data";
                default -> "int32_data";
            };
            throw new JlensException(what + ": data_type " + dtype + " stored in " + list + ", which ONNX does not allow");
        }
        if (field == 4 || field == 10) return MemorySegment.ofArray(fixed.toByteArray());
        // int32_data holds every narrower type too, one element per entry (float16 as its bit pattern).
        MemorySegment out = MemorySegment.ofArray(new byte[ints.size() * dtype.bytes()]);
        for (int i = 0; i < ints.size(); i++) {
            long v = ints.get(i);
            switch (dtype.bytes()) {
                case 8 -> out.set(I64, i * 8L, v);
                case 4 -> out.set(I32, i * 4L, (int) v);
                case 2 -> out.set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 2L, (short) v);
                default -> out.set(ValueLayout.JAVA_BYTE, i, (byte) v);
            }
        }
        return out;
    }

    /** ONNX TensorProto.DataType codes. */
    private static DType dtype(int code, String what) {
        return switch (code) {
            case 1 -> DType.F32;
            case 2 -> DType.U8;
            case 3 -> DType.I8;
            case 5 -> DType.I16;
            case 6 -> DType.I32;
            case 7 -> DType.I64;
            case 9 -> DType.BOOL;
            case 10 -> DType.F16;
            case 11 -> DType.F64;
            case 16 -> DType.BF16;
            case 0 -> throw new JlensException(what + ": data_type is missing");
            default -> throw new JlensException(what + ": data_type " + code + " is not supported; expected FLOAT (1), "
                    + "FLOAT16 (10), BFLOAT16 (16), DOUBLE (11) or an 8/16/32/64-bit signed integer, uint8 or bool");
        };
    }

    /**
     * A cursor over one protobuf message: {@code seg} holds exactly the message's bytes and {@code base} is the
     * absolute offset of its first byte in the resource, so errors point into the file.
     */
    private static final class Wire {
        private final MemorySegment seg;
        private final long base;
        private final String resource;
        private long pos;

        Wire(MemorySegment seg, long base, String resource) {
            this.seg = seg;
            this.base = base;
            this.resource = resource;
        }

        static int field(int tag) {
            return tag >>> 3;
        }

        static int wire(int tag) {
            return tag & 7;
        }

        boolean more() {
            return pos < seg.byteSize();
        }

        JlensException error(long at, String message) {
            return new JlensException(resource + ": malformed ONNX model at byte offset " + (base + at) + ": " + message);
        }

        long varint() {
            long at = pos;
            long result = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= seg.byteSize()) throw error(at, "a varint runs past the end of its message");
                byte b = seg.get(ValueLayout.JAVA_BYTE, pos++);
                result |= (long) (b & 0x7f) << shift;
                if ((b & 0x80) == 0) return result;
            }
            throw error(at, "a varint longer than 10 bytes");
        }

        int tag() {
            long at = pos;
            long t = varint();
            if (t >>> 3 == 0 || t >>> 3 > 0x1fffffff) throw error(at, "invalid field number " + (t >>> 3));
            return (int) t;
        }

        /** The next {@code n} bytes, after checking that they exist. */
        private MemorySegment take(long n, long at, String what) {
            long left = seg.byteSize() - pos;
            if (n < 0 || n > left) {
                throw error(at, what + " claims " + n + " bytes but only " + left + " remain in the enclosing message");
            }
            MemorySegment s = seg.asSlice(pos, n);
            pos += n;
            return s;
        }

        private MemorySegment lengthDelimited(long at, String what) {
            long n = varint();
            return take(n, at, what);
        }

        Wire message(long at, String what) {
            MemorySegment s = lengthDelimited(at, what);
            return new Wire(s, base + (pos - s.byteSize()), resource);
        }

        private void expectWire(int tag, long at, int wire, String what) {
            if (wire(tag) != wire) {
                throw error(at, what + " has wire type " + wire(tag) + "; expected " + wire);
            }
        }

        Wire expectMessage(int tag, long at, String what) {
            expectWire(tag, at, LEN, what);
            return message(at, what);
        }

        MemorySegment expectBytes(int tag, long at, String what) {
            expectWire(tag, at, LEN, what);
            return lengthDelimited(at, what);
        }

        String expectString(int tag, long at, String what) {
            return new String(expectBytes(tag, at, what).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
        }

        long expectVarint(int tag, long at, String what) {
            expectWire(tag, at, VARINT, what);
            return varint();
        }

        int expectFixed32(int tag, long at, String what) {
            expectWire(tag, at, FIXED32, what);
            return take(4, at, what).get(I32, 0);
        }

        /** A repeated varint field, packed (one length-delimited run) or not (one value per tag). */
        void readVarintList(int tag, long at, List<Long> out, String what) {
            if (wire(tag) == VARINT) {
                out.add(varint());
            } else if (wire(tag) == LEN) {
                Wire packed = message(at, what);
                while (packed.more()) out.add(packed.varint());
            } else {
                throw error(at, what + " has wire type " + wire(tag) + "; expected 0 or 2 (packed)");
            }
        }

        /** A repeated fixed32/fixed64 field, appended to {@code out} as little-endian bytes. */
        void readFixedList(int tag, long at, int width, ByteArrayOutputStream out, String what) {
            int single = width == 4 ? FIXED32 : FIXED64;
            if (wire(tag) == single) {
                out.writeBytes(take(width, at, what).toArray(ValueLayout.JAVA_BYTE));
            } else if (wire(tag) == LEN) {
                MemorySegment s = lengthDelimited(at, what);
                if (s.byteSize() % width != 0) {
                    throw error(at, "packed " + what + " has " + s.byteSize() + " bytes, not a multiple of " + width);
                }
                if (out.size() + s.byteSize() > Integer.MAX_VALUE - 8) throw error(at, what + " is too large to hold in memory");
                out.writeBytes(s.toArray(ValueLayout.JAVA_BYTE));
            } else {
                throw error(at, what + " has wire type " + wire(tag) + "; expected " + single + " or 2 (packed)");
            }
        }

        void skip(int tag, long at) {
            switch (wire(tag)) {
                case VARINT -> varint();
                case FIXED64 -> take(8, at, "a fixed64 field");
                case LEN -> lengthDelimited(at, "field " + field(tag));
                case FIXED32 -> take(4, at, "a fixed32 field");
                default -> throw error(at, "field " + field(tag) + " has wire type " + wire(tag)
                        + ", which ONNX does not use (groups are obsolete; 6 and 7 are invalid)");
            }
        }
    }
}
