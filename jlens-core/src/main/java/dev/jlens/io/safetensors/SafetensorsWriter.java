package dev.jlens.io.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.DType;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds a safetensors file in memory order of insertion and writes it atomically. Python users open the
 * result with {@code safetensors.torch.load_file} or {@code safetensors.numpy.load_file}. Tensors too big
 * to hold in the heap can be {@link #putStreamed streamed}: only their type and shape are given up front
 * (the header needs them), their bytes are produced while the file is written.
 */
public final class SafetensorsWriter {

    /** Produces a streamed tensor's raw little-endian bytes, exactly as many as its type and shape imply. */
    @FunctionalInterface
    public interface TensorBytes {
        void write(OutputStream out) throws IOException;
    }

    private record Streamed(long bytes, TensorBytes producer) {
    }

    private record Item(String name, String dtype, long[] shape, Object data) {
        long bytes() {
            return switch (data) {
                case Streamed st -> st.bytes();
                case float[] f -> 4L * f.length;
                case long[] l -> 8L * l.length;
                case short[] s -> 2L * s.length;
                case byte[] b -> b.length;
                default -> throw new IllegalStateException();
            };
        }
    }

    private final List<Item> items = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter putF32(String name, float[] data, long... shape) {
        check(name, data.length, shape);
        items.add(new Item(name, "F32", shape.clone(), data));
        return this;
    }

    public SafetensorsWriter putF16Bits(String name, short[] data, long... shape) {
        check(name, data.length, shape);
        items.add(new Item(name, "F16", shape.clone(), data));
        return this;
    }

    public SafetensorsWriter putBF16Bits(String name, short[] data, long... shape) {
        check(name, data.length, shape);
        items.add(new Item(name, "BF16", shape.clone(), data));
        return this;
    }

    public SafetensorsWriter putI64(String name, long[] data, long... shape) {
        check(name, data.length, shape);
        items.add(new Item(name, "I64", shape.clone(), data));
        return this;
    }

    /** A tensor whose bytes are written by producer during {@link #write}, never held here. */
    public SafetensorsWriter putStreamed(String name, DType dtype, long[] shape, TensorBytes producer) {
        long numel = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(name + ": negative dimension in " + java.util.Arrays.toString(shape));
            numel = Math.multiplyExact(numel, d);
        }
        items.add(new Item(name, dtype.safetensorsName(), shape.clone(), new Streamed(Math.multiplyExact(numel, dtype.bytes()), producer)));
        return this;
    }

    public SafetensorsWriter putMetadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    private static void check(String name, long n, long[] shape) {
        long numel = 1;
        for (long s : shape) numel *= s;
        if (numel != n) throw new IllegalArgumentException(name + ": " + n + " values for shape " + java.util.Arrays.toString(shape));
    }

    public void write(Path target) {
        AtomicFiles.write(target, this::writeTo);
    }

    public void writeTo(OutputStream out) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode header = om.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Item it : items) {
            ObjectNode e = header.putObject(it.name);
            e.put("dtype", it.dtype);
            var sh = e.putArray("shape");
            for (long s : it.shape) sh.add(s);
            var off = e.putArray("data_offsets");
            off.add(offset);
            offset += it.bytes();
            off.add(offset);
        }
        byte[] hb = om.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (hb.length + 7) / 8 * 8;
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded);
        out.write(len.array());
        out.write(hb);
        for (int i = hb.length; i < padded; i++) out.write(' ');
        ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (Item it : items) {
            switch (it.data) {
                case float[] f -> { for (float v : f) { if (buf.remaining() < 4) flush(buf, out); buf.putFloat(v); } }
                case long[] l -> { for (long v : l) { if (buf.remaining() < 8) flush(buf, out); buf.putLong(v); } }
                case short[] s -> { for (short v : s) { if (buf.remaining() < 2) flush(buf, out); buf.putShort(v); } }
                case byte[] b -> { flush(buf, out); out.write(b); }
                case Streamed st -> {
                    flush(buf, out);
                    CountingStream counted = new CountingStream(out);
                    st.producer().write(counted);
                    if (counted.count != st.bytes()) {
                        throw new IOException("tensor " + it.name + " produced " + counted.count
                                + " bytes; its type and shape need " + st.bytes());
                    }
                }
                default -> throw new IllegalStateException();
            }
        }
        flush(buf, out);
    }

    private static final class CountingStream extends java.io.FilterOutputStream {
        long count;

        CountingStream(OutputStream out) {
            super(out);
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            count++;
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            count += len;
        }
    }

    private static void flush(ByteBuffer buf, OutputStream out) throws IOException {
        out.write(buf.array(), 0, buf.position());
        buf.clear();
    }
}
