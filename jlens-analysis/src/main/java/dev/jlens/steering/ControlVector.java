package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * A llama.cpp control vector: the GGUF file repeng writes and {@code llama-cli --control-vector[-scaled]} reads.
 *
 * <p>The layout follows llama.cpp's reader ({@code common.cpp}, {@code llama_control_vector_load_one}) and its
 * generator ({@code cvector-generator}): metadata {@code general.architecture = "controlvector"},
 * {@code controlvector.model_hint} (the model's architecture name) and {@code controlvector.layer_count} (int32);
 * one 1-D F32 tensor {@code direction.N} of n_embd values per steered layer. N starts at 1: the reader refuses
 * {@code direction.0}. llama.cpp adds {@code strength × direction.N} ({@code ggml_add}, no sign change) to the
 * output of block N (its layer index {@code il}, counted from 0), i.e. jlens'
 * {@code blocks.N.hook_resid_post} (= {@code blocks.N+1.hook_resid_pre}), on every token; block 0's output
 * cannot be steered. Written by hand because GGUF has no Java library on Maven Central, and this subset (a
 * header, scalar metadata, 1-D F32 tensors) is small.
 *
 * @param modelHint  controlvector.model_hint ("" when the file has none)
 * @param directions llama.cpp layer index (≥ 1) → the vector, not normalised (its length is the steering strength)
 */
public record ControlVector(String modelHint, SortedMap<Integer, float[]> directions) {

    static final int GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    static final int VERSION = 3;
    static final int ALIGNMENT = 32;
    static final int TYPE_UINT8 = 0, TYPE_INT8 = 1, TYPE_UINT16 = 2, TYPE_INT16 = 3, TYPE_UINT32 = 4, TYPE_INT32 = 5,
            TYPE_FLOAT32 = 6, TYPE_BOOL = 7, TYPE_STRING = 8, TYPE_ARRAY = 9, TYPE_UINT64 = 10, TYPE_INT64 = 11, TYPE_FLOAT64 = 12;
    static final int GGML_TYPE_F32 = 0;

    public ControlVector {
        if (directions.isEmpty()) throw new JlensException("a control vector needs at least one layer");
        int n = -1;
        TreeMap<Integer, float[]> copy = new TreeMap<>();
        for (var e : directions.entrySet()) {
            if (e.getKey() < 1) throw new JlensException("control vector layer " + e.getKey() + ": llama.cpp's layers start at 1 (direction.0 is refused)");
            if (n >= 0 && e.getValue().length != n) throw new JlensException("control vector layers have different widths");
            n = e.getValue().length;
            copy.put(e.getKey(), e.getValue().clone());
        }
        directions = Collections.unmodifiableSortedMap(copy);
        modelHint = modelHint == null ? "" : modelHint;
    }

    public int nEmbd() {
        return directions.get(directions.firstKey()).length;
    }

    /** The jlens hook llama.cpp's layer N steers: the output of block N. */
    public static String hookOf(int llamaLayer) {
        return "blocks." + llamaLayer + ".hook_resid_post";
    }

    /**
     * llama.cpp's layer index for a jlens hook: N for blocks.N.hook_resid_post, N−1 for blocks.N.hook_resid_pre
     * (the same activation); an error for any other hook, and for block 0's input / the embedding.
     */
    public static int llamaLayerOf(String hook) {
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("blocks\\.(\\d+)\\.hook_resid_(pre|post)").matcher(hook);
        if (!m.matches()) {
            throw new JlensException("direction at " + hook + ": llama.cpp adds control vectors to the residual stream between blocks "
                    + "(resid_post of block N, resid_pre of block N+1); use a direction at hook_resid_pre or hook_resid_post");
        }
        int block = Integer.parseInt(m.group(1));
        int layer = m.group(2).equals("post") ? block : block - 1;
        if (layer < 1) {
            throw new JlensException("direction at " + hook + ": llama.cpp never steers the input of block 1 or earlier (its control "
                    + "vectors start at the output of block 1, direction.1); choose a later layer");
        }
        return layer;
    }

    // ---------------------------------------------------------------------------------------------- writing

    public byte[] toBytes() {
        Buf b = new Buf();
        b.u32(GGUF_MAGIC);
        b.u32(VERSION);
        b.u64(directions.size());
        b.u64(3);
        b.str("general.architecture");
        b.u32(TYPE_STRING);
        b.str("controlvector");
        b.str("controlvector.model_hint");
        b.u32(TYPE_STRING);
        b.str(modelHint);
        b.str("controlvector.layer_count");
        b.u32(TYPE_INT32);
        b.u32(directions.size());
        long offset = 0;
        int bytesPerTensor = nEmbd() * 4;
        for (int layer : directions.keySet()) {
            b.str("direction." + layer);
            b.u32(1);
            b.u64(nEmbd());
            b.u32(GGML_TYPE_F32);
            b.u64(offset);
            offset += pad(bytesPerTensor);
        }
        b.padTo(ALIGNMENT);
        for (float[] v : directions.values()) {
            ByteBuffer data = ByteBuffer.allocate(pad(bytesPerTensor)).order(ByteOrder.LITTLE_ENDIAN);
            for (float x : v) data.putFloat(x);
            b.out.writeBytes(data.array());
        }
        return b.out.toByteArray();
    }

    public void write(Path file) {
        byte[] bytes = toBytes();
        AtomicFiles.write(file, out -> out.write(bytes));
    }

    private static int pad(int n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static final class Buf {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();

        void u32(long v) {
            ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v);
            out.writeBytes(b.array());
        }

        void u64(long v) {
            ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v);
            out.writeBytes(b.array());
        }

        void str(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            out.writeBytes(bytes);
        }

        void padTo(int a) {
            while (out.size() % a != 0) out.write(0);
        }
    }

    // ---------------------------------------------------------------------------------------------- reading

    /**
     * Reads a control vector as llama.cpp does: every {@code direction.N} tensor (N ≥ 1, F32, 1-D, all of one
     * width); other tensors are refused as llama.cpp's reader refuses them. Metadata other than the model hint is
     * read and skipped, so files from repeng, cvector-generator and jlens all load.
     */
    public static ControlVector read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new JlensException(file + ": cannot read: " + e.getMessage(), e);
        }
        return parse(file.toString(), bytes);
    }

    static ControlVector parse(String source, byte[] bytes) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        try {
            if (bytes.length < 24 || b.getInt() != GGUF_MAGIC) {
                throw new JlensException(source + ": not a GGUF file (no GGUF magic); expected a llama.cpp control vector");
            }
            int version = b.getInt();
            if (version != 2 && version != 3) {
                throw new JlensException(source + ": GGUF version " + version + "; jlens reads versions 2 and 3");
            }
            long nTensors = b.getLong(), nKv = b.getLong();
            if (nTensors < 0 || nTensors > 100_000 || nKv < 0 || nKv > 100_000) {
                throw new JlensException(source + ": header claims " + nTensors + " tensors and " + nKv + " metadata entries; the file is damaged");
            }
            String hint = "", arch = null;
            long alignment = ALIGNMENT;
            for (long i = 0; i < nKv; i++) {
                String key = str(b, source);
                int type = b.getInt();
                Object v = value(b, type, source, 0);
                if (key.equals("general.architecture") && v instanceof String s) arch = s;
                if (key.equals("controlvector.model_hint") && v instanceof String s) hint = s;
                if (key.equals("general.alignment") && v instanceof Number n) alignment = n.longValue();
            }
            if (arch != null && !arch.equals("controlvector")) {
                throw new JlensException(source + ": general.architecture is \"" + arch + "\"; a control vector has \"controlvector\" "
                        + "(this looks like a model file, not a control vector)");
            }
            if (alignment <= 0 || alignment > 1 << 20) throw new JlensException(source + ": general.alignment " + alignment + " is invalid");
            record Info(String name, long n, long offset) {
            }
            List<Info> infos = new ArrayList<>();
            for (long i = 0; i < nTensors; i++) {
                String name = str(b, source);
                int dims = b.getInt();
                if (dims < 1 || dims > 4) throw new JlensException(source + ": tensor " + name + " has " + dims + " dimensions");
                long n = 1;
                for (int d = 0; d < dims; d++) n = Math.multiplyExact(n, b.getLong());
                int type = b.getInt();
                long offset = b.getLong();
                if (type != GGML_TYPE_F32 || dims != 1) {
                    throw new JlensException(source + ": tensor " + name + " is not a 1-D F32 vector (type " + type + ", " + dims
                            + " dimensions); llama.cpp's control vector reader accepts only those");
                }
                infos.add(new Info(name, n, offset));
            }
            long dataStart = (b.position() + alignment - 1) / alignment * alignment;
            TreeMap<Integer, float[]> dirs = new TreeMap<>();
            for (Info t : infos) {
                if (!t.name().startsWith("direction.")) {
                    throw new JlensException(source + ": tensor \"" + t.name() + "\"; a control vector holds only direction.N tensors");
                }
                int layer;
                try {
                    layer = Integer.parseInt(t.name().substring("direction.".length()));
                } catch (NumberFormatException e) {
                    throw new JlensException(source + ": tensor \"" + t.name() + "\" does not end in a layer number");
                }
                if (layer < 1) throw new JlensException(source + ": tensor \"" + t.name() + "\": llama.cpp refuses layer 0 (its layers start at 1)");
                if (t.n() < 1 || t.n() > Integer.MAX_VALUE / 4) throw new JlensException(source + ": tensor " + t.name() + " claims " + t.n() + " values");
                long start = dataStart + t.offset();
                if (t.offset() < 0 || start + t.n() * 4 > bytes.length) {
                    throw new JlensException(source + ": tensor " + t.name() + " lies outside the file (truncated?)");
                }
                float[] v = new float[(int) t.n()];
                ByteBuffer d = ByteBuffer.wrap(bytes, (int) start, v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
                for (int j = 0; j < v.length; j++) v[j] = d.getFloat();
                if (dirs.put(layer, v) != null) throw new JlensException(source + ": tensor " + t.name() + " appears twice");
            }
            if (dirs.isEmpty()) throw new JlensException(source + ": no direction tensors; llama.cpp would refuse it too");
            int n = dirs.firstEntry().getValue().length;
            for (var e : dirs.entrySet()) {
                if (e.getValue().length != n) {
                    throw new JlensException(source + ": direction." + e.getKey() + " has " + e.getValue().length + " values, direction."
                            + dirs.firstKey() + " " + n + "; every layer must have the model's width");
                }
            }
            return new ControlVector(hint, dirs);
        } catch (java.nio.BufferUnderflowException | IndexOutOfBoundsException | ArithmeticException e) {
            throw new JlensException(source + ": GGUF file ends early or is damaged (" + e + ")");
        }
    }

    private static String str(ByteBuffer b, String source) {
        long len = b.getLong();
        if (len < 0 || len > b.remaining()) throw new JlensException(source + ": a string claims " + len + " bytes, more than the file has");
        byte[] s = new byte[(int) len];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    private static Object value(ByteBuffer b, int type, String source, int depth) {
        return switch (type) {
            case TYPE_UINT8, TYPE_INT8, TYPE_BOOL -> (long) b.get();
            case TYPE_UINT16, TYPE_INT16 -> (long) b.getShort();
            case TYPE_UINT32 -> Integer.toUnsignedLong(b.getInt());
            case TYPE_INT32 -> (long) b.getInt();
            case TYPE_FLOAT32 -> (double) b.getFloat();
            case TYPE_UINT64, TYPE_INT64 -> b.getLong();
            case TYPE_FLOAT64 -> b.getDouble();
            case TYPE_STRING -> str(b, source);
            case TYPE_ARRAY -> {
                if (depth > 4) throw new JlensException(source + ": metadata arrays nested too deeply");
                int inner = b.getInt();
                long n = b.getLong();
                if (n < 0 || n > b.remaining()) throw new JlensException(source + ": a metadata array claims " + n + " items");
                for (long i = 0; i < n; i++) value(b, inner, source, depth + 1);
                yield null;
            }
            default -> throw new JlensException(source + ": metadata value type " + type + " is not a GGUF type");
        };
    }

    /**
     * The directions of a jlens folder as llama.cpp steers with them: for each (layer, weight), the unit direction
     * times weight × α, at llama.cpp's index for its hook (see {@link #llamaLayerOf}).
     */
    public static ControlVector fromDirections(DirectionSet set, DirectionChoice choice, WeightedLayers layers,
                                               SteeringSweep.Alpha alpha, String modelHint, Path dir) {
        TreeMap<Integer, float[]> out = new TreeMap<>();
        for (WeightedLayers.Entry e : layers.entries()) {
            Direction d = choice.at(set, e.layer(), dir);
            int idx = llamaLayerOf(d.hook());
            double scale = e.weight() * alpha.value(d);
            if (!Double.isFinite(scale)) throw new JlensException("direction " + d.name() + ": α " + alpha.text() + " gives no finite scale");
            float[] v = new float[d.dModel()];
            for (int j = 0; j < v.length; j++) v[j] = (float) (d.unit()[j] * scale);
            out.put(idx, v);
        }
        return new ControlVector(modelHint, out);
    }

    /**
     * The control vector as a jlens directions folder: one direction per layer at blocks.N.hook_resid_post, its unit
     * vector and, as its norm, the vector's length, so that {@code --alpha 1x} adds exactly what llama.cpp adds at
     * strength 1. The position is recorded as "last" (llama.cpp adds the vector at every token, as jlens' add does).
     */
    public DirectionSet toDirectionSet(String modelId, dev.jlens.model.ModelInfo info, String source, String sha256,
                                       String jlensVersion) {
        if (nEmbd() != info.dModel()) {
            throw new JlensException(source + ": the control vector has " + nEmbd() + " values per layer but --model " + modelId
                    + " has d_model " + info.dModel());
        }
        List<Direction> ds = new ArrayList<>();
        List<String> hooks = new ArrayList<>();
        for (var e : directions.entrySet()) {
            if (e.getKey() >= info.nLayers()) {
                throw new JlensException(source + ": direction." + e.getKey() + " steers block " + e.getKey() + " but --model " + modelId
                        + " has " + info.nLayers() + " blocks (0.." + (info.nLayers() - 1) + ")");
            }
            float[] v = e.getValue();
            double n2 = 0;
            for (float x : v) n2 += (double) x * x;
            double norm = Math.sqrt(n2);
            if (!(norm > 0)) continue;
            float[] unit = new float[v.length];
            for (int j = 0; j < v.length; j++) unit[j] = (float) (v[j] / norm);
            String hook = hookOf(e.getKey());
            hooks.add(hook);
            ds.add(new Direction(hook, e.getKey(), "last", unit, norm, Double.NaN, Double.NaN, Double.NaN, 0, 0, Double.NaN));
        }
        if (ds.isEmpty()) throw new JlensException(source + ": every direction is zero");
        DirectionSet.SetInfo from = new DirectionSet.SetInfo("control vector " + source + (modelHint.isEmpty() ? "" : " (model_hint " + modelHint + ")"), 0, sha256);
        DirectionSet.Meta meta = new DirectionSet.Meta(modelId, null, info.architecture(), info.family(), info.dModel(), info.nLayers(),
                DirectionMethod.CONTROL_VECTOR, hooks, List.of("last"), from, from, jlensVersion,
                java.time.OffsetDateTime.now().withNano(0).toString());
        return new DirectionSet(meta, ds);
    }
}
