package dev.jlens.io.pytorch;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static dev.jlens.io.pytorch.PickleBytes.le;

/** Builds torch.save-style checkpoints for tests: a state-dict pickle plus storages in a zip. */
final class TorchFiles {

    private TorchFiles() {
    }

    /** One tensor of a state dict: which storage it views, from which element, with what size and stride. */
    record Tensor(String name, String storageClass, String key, long storageNumel, long offset, long[] shape,
                  long[] stride) {
        static Tensor contiguous(String name, String storageClass, String key, long... shape) {
            long n = 1;
            for (long s : shape) n *= s;
            return new Tensor(name, storageClass, key, n, 0, shape, rowMajor(shape));
        }
    }

    static long[] rowMajor(long[] shape) {
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        return stride;
    }

    /**
     * The pickle torch 1.13 writes for {@code torch.save(state_dict)} (protocol 2): an OrderedDict filled by
     * SETITEMS, each value {@code _rebuild_tensor_v2(persistent storage, offset, size, stride, False,
     * OrderedDict())}, and the {@code _metadata} attribute set by BUILD, as in the golden fixtures.
     */
    static byte[] stateDictPickle(List<Tensor> tensors) {
        PickleBytes p = new PickleBytes().proto(2);
        p.global("collections", "OrderedDict").put(0).emptyTuple().reduce().put(1);
        p.mark();
        int memo = 2;
        int rebuild = -1;
        Map<String, Integer> storageClassMemo = new LinkedHashMap<>();
        for (Tensor t : tensors) {
            p.str(t.name());
            if (rebuild < 0) {
                rebuild = memo++;
                p.global("torch._utils", "_rebuild_tensor_v2").put(rebuild);
            } else {
                p.get(rebuild);
            }
            p.mark().mark().str("storage");
            Integer cls = storageClassMemo.get(t.storageClass());
            if (cls == null) {
                p.global("torch", t.storageClass()).put(memo);
                storageClassMemo.put(t.storageClass(), memo++);
            } else {
                p.get(cls);
            }
            p.str(t.key()).str("cpu").integer(t.storageNumel()).tuple().persid();
            p.integer(t.offset()).intTuple(t.shape()).intTuple(t.stride()).newFalse();
            p.get(0).emptyTuple().reduce();
            p.tuple().reduce();
        }
        p.setitems();
        p.emptyDict().str("_metadata").get(0).emptyTuple().reduce();
        p.mark().str("").emptyDict().str("version").integer(1).setitem().setitems();
        p.setitem().build().stop();
        return p.bytes();
    }

    /** A torch-style archive, written by java.util.zip with STORED entries named {@code prefix/...}. */
    static byte[] checkpoint(String prefix, byte[] pickle, Map<String, byte[]> storages) {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        entries.put(prefix + "/data.pkl", pickle);
        storages.forEach((k, v) -> entries.put(prefix + "/data/" + k, v));
        entries.put(prefix + "/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        return zip(entries, ZipEntry.STORED);
    }

    static byte[] zip(Map<String, byte[]> entries, int method) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(bytes)) {
            for (var e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(method);
                if (method == ZipEntry.STORED) {
                    CRC32 crc = new CRC32();
                    crc.update(e.getValue());
                    ze.setSize(e.getValue().length);
                    ze.setCompressedSize(e.getValue().length);
                    ze.setCrc(crc.getValue());
                }
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return bytes.toByteArray();
    }

    /**
     * A zip in which every size and offset goes through ZIP64 (as torch writes files over 4 GB): 0xFFFFFFFF
     * placeholders with the real values in the ZIP64 extra field, a ZIP64 end record and locator, and an end
     * record whose counts are all 0xFFFF. Local headers carry padding in their extra field like torch's.
     * java.util.zip never writes this form for small files, hence by hand.
     */
    static byte[] zip64(Map<String, byte[]> entries) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream central = new ByteArrayOutputStream();
        for (var e : entries.entrySet()) {
            byte[] name = e.getKey().getBytes(StandardCharsets.UTF_8);
            byte[] data = e.getValue();
            CRC32 crc = new CRC32();
            crc.update(data);
            long localOffset = out.size();
            // local header: ZIP64 extra (sizes) + torch-style padding ("FB" id) to a 64-byte data boundary
            int base = 30 + name.length + 20;
            int pad = (64 - (base + 4) % 64) % 64;
            out.writeBytes(le(0x04034b50, 4));
            out.writeBytes(le(45, 2));
            out.writeBytes(le(0, 2));
            out.writeBytes(le(0, 2));
            out.writeBytes(le(0, 4));
            out.writeBytes(le(crc.getValue(), 4));
            out.writeBytes(le(0xffffffffL, 4));
            out.writeBytes(le(0xffffffffL, 4));
            out.writeBytes(le(name.length, 2));
            out.writeBytes(le(20 + 4 + pad, 2));
            out.writeBytes(name);
            out.writeBytes(le(1, 2));
            out.writeBytes(le(16, 2));
            out.writeBytes(le(data.length, 8));
            out.writeBytes(le(data.length, 8));
            out.writeBytes(le(0x4246, 2));
            out.writeBytes(le(pad, 2));
            out.writeBytes(new byte[pad]);
            out.writeBytes(data);

            central.writeBytes(le(0x02014b50, 4));
            central.writeBytes(le(45, 2));
            central.writeBytes(le(45, 2));
            central.writeBytes(le(0, 2));
            central.writeBytes(le(0, 2));
            central.writeBytes(le(0, 4));
            central.writeBytes(le(crc.getValue(), 4));
            central.writeBytes(le(0xffffffffL, 4));
            central.writeBytes(le(0xffffffffL, 4));
            central.writeBytes(le(name.length, 2));
            central.writeBytes(le(28, 2));
            central.writeBytes(le(0, 2));
            central.writeBytes(le(0, 2));
            central.writeBytes(le(0, 2));
            central.writeBytes(le(0, 4));
            central.writeBytes(le(0xffffffffL, 4));
            central.writeBytes(name);
            central.writeBytes(le(1, 2));
            central.writeBytes(le(24, 2));
            central.writeBytes(le(data.length, 8));
            central.writeBytes(le(data.length, 8));
            central.writeBytes(le(localOffset, 8));
        }
        long cdOffset = out.size();
        out.writeBytes(central.toByteArray());
        long zip64End = out.size();
        out.writeBytes(le(0x06064b50, 4));
        out.writeBytes(le(44, 8));
        out.writeBytes(le(45, 2));
        out.writeBytes(le(45, 2));
        out.writeBytes(le(0, 4));
        out.writeBytes(le(0, 4));
        out.writeBytes(le(entries.size(), 8));
        out.writeBytes(le(entries.size(), 8));
        out.writeBytes(le(central.size(), 8));
        out.writeBytes(le(cdOffset, 8));
        out.writeBytes(le(0x07064b50, 4));
        out.writeBytes(le(0, 4));
        out.writeBytes(le(zip64End, 8));
        out.writeBytes(le(1, 4));
        out.writeBytes(le(0x06054b50, 4));
        out.writeBytes(le(0xffff, 2));
        out.writeBytes(le(0xffff, 2));
        out.writeBytes(le(0xffff, 2));
        out.writeBytes(le(0xffff, 2));
        out.writeBytes(le(0xffffffffL, 4));
        out.writeBytes(le(0xffffffffL, 4));
        out.writeBytes(le(0, 2));
        return out.toByteArray();
    }

    static byte[] f32(float... v) {
        byte[] b = new byte[v.length * 4];
        for (int i = 0; i < v.length; i++) System.arraycopy(le(Float.floatToRawIntBits(v[i]), 4), 0, b, 4 * i, 4);
        return b;
    }

    static byte[] i64(long... v) {
        byte[] b = new byte[v.length * 8];
        for (int i = 0; i < v.length; i++) System.arraycopy(le(v[i], 8), 0, b, 8 * i, 8);
        return b;
    }
}
