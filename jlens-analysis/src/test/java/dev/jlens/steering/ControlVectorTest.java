package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** llama.cpp control vectors: bit-exact round trip, the layout llama.cpp's reader expects, files others write. */
class ControlVectorTest {

    @TempDir
    Path tmp;

    private static ControlVector sample() {
        SplittableRandom r = new SplittableRandom(7);
        TreeMap<Integer, float[]> d = new TreeMap<>();
        for (int layer : new int[]{1, 3, 4}) {
            float[] v = new float[24];
            for (int j = 0; j < v.length; j++) v[j] = (float) r.nextGaussian();
            d.put(layer, v);
        }
        // values whose bits a careless writer would change
        d.get(1)[0] = -0.0f;
        d.get(1)[1] = Float.MIN_VALUE;
        d.get(1)[2] = Float.MAX_VALUE;
        d.get(1)[3] = Float.intBitsToFloat(0x7fc00123);
        return new ControlVector("llama", d);
    }

    @Test
    void roundTripIsBitExact() {
        ControlVector cv = sample();
        Path f = tmp.resolve("cv.gguf");
        cv.write(f);
        ControlVector back = ControlVector.read(f);
        assertEquals("llama", back.modelHint());
        assertEquals(cv.directions().keySet(), back.directions().keySet());
        for (int l : cv.directions().keySet()) {
            float[] a = cv.directions().get(l), b = back.directions().get(l);
            assertEquals(a.length, b.length);
            for (int j = 0; j < a.length; j++) assertEquals(Float.floatToRawIntBits(a[j]), Float.floatToRawIntBits(b[j]), "layer " + l + "[" + j + "]");
        }
    }

    /**
     * The file read the way llama.cpp reads it (gguf.c's header, metadata and tensor infos; common.cpp's
     * llama_control_vector_load_one: "direction.N" with N ≥ 1, F32, 1-D, one width; row N−1 of the result holds
     * layer N, missing layers are zero), written here from llama.cpp's source independently of ControlVector.
     */
    @Test
    void layoutIsWhatLlamaCppReads() {
        ControlVector cv = sample();
        ByteBuffer b = ByteBuffer.wrap(cv.toBytes()).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[4];
        b.get(magic);
        assertEquals("GGUF", new String(magic, StandardCharsets.US_ASCII));
        assertEquals(3, b.getInt(), "GGUF version");
        long nTensors = b.getLong(), nKv = b.getLong();
        assertEquals(3, nTensors);
        Map<String, Object> kv = new LinkedHashMap<>();
        Map<String, Integer> kvType = new LinkedHashMap<>();
        for (long i = 0; i < nKv; i++) {
            String key = str(b);
            int type = b.getInt();
            kvType.put(key, type);
            kv.put(key, switch (type) {
                case 8 -> str(b);          // GGUF_TYPE_STRING
                case 5 -> b.getInt();      // GGUF_TYPE_INT32, what cvector-generator writes for layer_count
                default -> throw new AssertionError("unexpected metadata type " + type + " for " + key);
            });
        }
        assertEquals("controlvector", kv.get("general.architecture"));
        assertEquals("llama", kv.get("controlvector.model_hint"));
        assertEquals(5, kvType.get("controlvector.layer_count"));
        assertEquals(3, kv.get("controlvector.layer_count"));
        record Info(String name, long ne0, long offset) {
        }
        List<Info> infos = new ArrayList<>();
        int nEmbd = -1, maxLayer = 0;
        for (long i = 0; i < nTensors; i++) {
            String name = str(b);
            assertEquals(1, b.getInt(), "n_dims of " + name);
            long ne0 = b.getLong();
            assertEquals(0, b.getInt(), "GGML_TYPE_F32 for " + name);
            long offset = b.getLong();
            assertEquals(0, offset % 32, "tensor data aligned to GGUF_DEFAULT_ALIGNMENT");
            assertTrue(name.startsWith("direction."), name);
            int layer = Integer.parseInt(name.substring("direction.".length()));
            assertTrue(layer != 0, "llama.cpp refuses direction.0");
            maxLayer = Math.max(maxLayer, layer);
            if (nEmbd < 0) nEmbd = (int) ne0;
            assertEquals(nEmbd, ne0, "one width");
            infos.add(new Info(name, ne0, offset));
        }
        int dataStart = (b.position() + 31) / 32 * 32;
        float[] data = new float[nEmbd * maxLayer];
        for (Info t : infos) {
            int layer = Integer.parseInt(t.name().substring("direction.".length()));
            ByteBuffer d = ByteBuffer.wrap(cv.toBytes(), dataStart + (int) t.offset(), nEmbd * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int j = 0; j < nEmbd; j++) data[(layer - 1) * nEmbd + j] = d.getFloat();
        }
        for (int layer = 1; layer <= maxLayer; layer++) {
            float[] row = java.util.Arrays.copyOfRange(data, (layer - 1) * nEmbd, layer * nEmbd);
            float[] expected = cv.directions().getOrDefault(layer, new float[nEmbd]);
            for (int j = 0; j < nEmbd; j++) assertEquals(Float.floatToRawIntBits(expected[j]), Float.floatToRawIntBits(row[j]));
        }
    }

    private static String str(ByteBuffer b) {
        byte[] s = new byte[(int) b.getLong()];
        b.get(s);
        return new String(s, StandardCharsets.UTF_8);
    }

    /** A file as gguf-py (repeng's writer) lays it out: uint32 layer_count, an array entry, tensors out of order. */
    private static byte[] repengStyle(int[] layers, float[][] vectors, int tensorType) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteBuffer h = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);
        h.put("GGUF".getBytes(StandardCharsets.US_ASCII)).putInt(3).putLong(layers.length).putLong(4);
        putStr(h, "general.architecture");
        h.putInt(8);
        putStr(h, "controlvector");
        putStr(h, "controlvector.model_hint");
        h.putInt(8);
        putStr(h, "mistral");
        putStr(h, "controlvector.layer_count");
        h.putInt(4).putInt(layers.length);
        putStr(h, "repeng.extra");
        h.putInt(9).putInt(4).putLong(2).putInt(1).putInt(2);
        long off = 0;
        for (int i = 0; i < layers.length; i++) {
            putStr(h, "direction." + layers[i]);
            h.putInt(1).putLong(vectors[i].length).putInt(tensorType).putLong(off);
            off += (vectors[i].length * 4L + 31) / 32 * 32;
        }
        while (h.position() % 32 != 0) h.put((byte) 0);
        for (float[] v : vectors) {
            for (float x : v) h.putFloat(x);
            while (h.position() % 32 != 0) h.put((byte) 0);
        }
        o.write(h.array(), 0, h.position());
        return o.toByteArray();
    }

    private static void putStr(ByteBuffer b, String s) {
        byte[] x = s.getBytes(StandardCharsets.UTF_8);
        b.putLong(x.length).put(x);
    }

    @Test
    void readsFilesOthersWrite() throws Exception {
        float[][] v = {{1, 2, 3, 4, 5}, {-1, -2, -3, -4, -5}};
        Path f = tmp.resolve("repeng.gguf");
        Files.write(f, repengStyle(new int[]{12, 10}, v, 0));
        ControlVector cv = ControlVector.read(f);
        assertEquals("mistral", cv.modelHint());
        assertEquals(List.of(10, 12), new ArrayList<>(cv.directions().keySet()));
        assertArrayEquals(v[0], cv.directions().get(12));
        assertArrayEquals(v[1], cv.directions().get(10));
    }

    @Test
    void badFilesAreClearErrors() throws Exception {
        Path a = tmp.resolve("a.gguf");
        Files.writeString(a, "not a gguf file at all, no");
        assertTrue(assertThrows(JlensException.class, () -> ControlVector.read(a)).getMessage().contains("not a GGUF file"));
        Path zero = tmp.resolve("zero.gguf");
        Files.write(zero, repengStyle(new int[]{0}, new float[][]{{1, 2}}, 0));
        assertTrue(assertThrows(JlensException.class, () -> ControlVector.read(zero)).getMessage().contains("layer 0"));
        Path f16 = tmp.resolve("f16.gguf");
        Files.write(f16, repengStyle(new int[]{1}, new float[][]{{1, 2}}, 1));
        assertTrue(assertThrows(JlensException.class, () -> ControlVector.read(f16)).getMessage().contains("1-D F32"));
        Path cut = tmp.resolve("cut.gguf");
        byte[] full = sample().toBytes();
        Files.write(cut, java.util.Arrays.copyOf(full, full.length - 40));
        assertTrue(assertThrows(JlensException.class, () -> ControlVector.read(cut)).getMessage().contains("outside the file"));
        Path widths = tmp.resolve("w.gguf");
        Files.write(widths, repengStyle(new int[]{1, 2}, new float[][]{{1, 2}, {1, 2, 3}}, 0));
        assertTrue(assertThrows(JlensException.class, () -> ControlVector.read(widths)).getMessage().contains("model's width"));
    }

    /** Damaged files end in a JlensException, never another exception or an allocation sized by a claim. */
    @Test
    void randomMutationsAreRefusedCleanly() {
        byte[] valid = sample().toBytes();
        SplittableRandom r = new SplittableRandom(11);
        int parsed = 0;
        for (int i = 0; i < 3000; i++) {
            byte[] b = valid.clone();
            int edits = 1 + r.nextInt(4);
            for (int e = 0; e < edits; e++) {
                int at = r.nextInt(Math.min(b.length, 400));   // the header, metadata and tensor infos
                b[at] = (byte) (r.nextBoolean() ? r.nextInt(256) : b[at] ^ (1 << r.nextInt(8)));
            }
            if (r.nextInt(5) == 0) b = java.util.Arrays.copyOf(b, r.nextInt(b.length));
            try {
                ControlVector.parse("m.gguf", b);
                parsed++;
            } catch (JlensException e) {
                assertTrue(e.getMessage().startsWith("m.gguf: "), e.getMessage());
            }
        }
        assertTrue(parsed < 3000, "most mutations are refused");
    }

    @Test
    void hooksMapToLlamaCppLayers() {
        assertEquals(5, ControlVector.llamaLayerOf("blocks.5.hook_resid_post"));
        assertEquals(4, ControlVector.llamaLayerOf("blocks.5.hook_resid_pre"));
        assertEquals(1, ControlVector.llamaLayerOf("blocks.2.hook_resid_pre"));
        assertThrows(JlensException.class, () -> ControlVector.llamaLayerOf("blocks.1.hook_resid_pre"));
        assertThrows(JlensException.class, () -> ControlVector.llamaLayerOf("blocks.0.hook_resid_post"));
        assertThrows(JlensException.class, () -> ControlVector.llamaLayerOf("blocks.3.hook_attn_out"));
        assertEquals("blocks.5.hook_resid_post", ControlVector.hookOf(5));
    }

    /**
     * On a real model: llama.cpp's direction.N (added to block N's output) is jlens' add at blocks.N.hook_resid_post
     * and equally at blocks.N+1.hook_resid_pre; an exported and imported folder adds exactly the exported vector.
     */
    @Test
    void exportImportSteersTheSameActivation() {
        try (HookedModel m = TestModels.load("stories260k")) {
            int d = m.info().dModel();
            float[] unit = new float[d];
            SplittableRandom r = new SplittableRandom(3);
            double n2 = 0;
            for (int j = 0; j < d; j++) {
                unit[j] = (float) r.nextGaussian();
                n2 += (double) unit[j] * unit[j];
            }
            for (int j = 0; j < d; j++) unit[j] = (float) (unit[j] / Math.sqrt(n2));
            Direction dir = new Direction("blocks.3.hook_resid_pre", 3, "last", unit, 2.5, 0, 1, 1, 2, 2, 1);
            DirectionSet set = new DirectionSet(new DirectionSet.Meta("stories260k", null, m.info().architecture(), m.info().family(), d,
                    m.info().nLayers(), DirectionMethod.DIFF_MEANS, List.of(dir.hook()), List.of("last"),
                    new DirectionSet.SetInfo("a", 2, "x"), new DirectionSet.SetInfo("b", 2, "y"), "test", "now"), List.of(dir));
            DirectionChoice choice = DirectionChoice.resolve(set, null, null, tmp);
            ControlVector cv = ControlVector.fromDirections(set, choice, WeightedLayers.parse("3:0.5", m.info().nLayers()),
                    SteeringSweep.parseAlphas("4", Intervention.Mode.ADD).getFirst(), "llama", tmp);
            assertEquals(List.of(2), new ArrayList<>(cv.directions().keySet()), "resid_pre of block 3 is block 2's output");
            for (int j = 0; j < d; j++) assertEquals((float) (unit[j] * 2.0), cv.directions().get(2)[j]);

            TokenBatch batch = TokenBatch.of(List.of(m.encode("Once upon a time there was a cat", null)));
            float[] v = cv.directions().get(2);
            FloatTensor atPost = m.forward(batch, Hooks.none().with("blocks.2.hook_resid_post"::equals, (p, x, bt) -> addRows(x, v)));
            FloatTensor atPre = m.forward(batch, Hooks.none().with("blocks.3.hook_resid_pre"::equals, (p, x, bt) -> addRows(x, v)));
            FloatTensor plain = m.forward(batch, Hooks.none());
            assertArrayEquals(atPost.data(), atPre.data(), "the same activation");
            assertTrue(!java.util.Arrays.equals(plain.data(), atPost.data()), "and it changes the output");

            DirectionSet imported = cv.toDirectionSet("stories260k", m.info(), "cv.gguf", "sha", "test");
            Direction back = imported.directions().getFirst();
            assertEquals("blocks.2.hook_resid_post", back.hook());
            Intervention iv = Intervention.add(back.unit(), back.norm(), List.of(back.hook()), TokenScope.BOTH);
            FloatTensor viaImport = m.forward(batch, iv.hooks(null));
            float[] a = atPost.data(), b = viaImport.data();
            for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-4f * (1 + Math.abs(a[i])), "logit " + i);
        }
    }

    private static FloatTensor addRows(FloatTensor x, float[] v) {
        int d = x.cols();
        for (int r = 0; r < x.data().length / d; r++) for (int j = 0; j < d; j++) x.data()[r * d + j] += v[j];
        return x;
    }
}
