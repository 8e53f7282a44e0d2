package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.io.pytorch.TorchUnpickler.PyDict;
import dev.jlens.io.pytorch.TorchUnpickler.StorageRef;
import dev.jlens.io.pytorch.TorchUnpickler.TensorValue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A PyTorch {@code torch.save} checkpoint (the zip format of PyTorch 1.6+): {@code <prefix>/data.pkl} holds a
 * pickled state dict whose tensors point at storages stored as {@code <prefix>/data/<key>}. The prefix is
 * {@code archive} for files saved under that name and the file stem for others (sharded Hugging Face
 * checkpoints). The file is memory-mapped once and each tensor is a slice of it; the pickle is read by
 * {@link TorchUnpickler}, which never executes anything.
 */
public final class TorchCheckpoint implements TensorSource {

    private final Path file;
    private final Map<String, TensorEntry> tensors;

    private TorchCheckpoint(Path file, Map<String, TensorEntry> tensors) {
        this.file = file;
        this.tensors = tensors;
    }

    public static TorchCheckpoint open(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new JlensException(file + ": PyTorch checkpoint not found");
        }
        MemorySegment mapped;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            // Auto arena: the mapping stays valid while any tensor slice is reachable (no 2 GB limit).
            mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), Arena.ofAuto());
        } catch (IOException e) {
            throw new JlensException(file + ": cannot read PyTorch checkpoint: " + e.getMessage(), e);
        }
        ZipDirectory zip = ZipDirectory.read(file, mapped);
        String prefix = findPrefix(zip);
        checkByteOrder(zip, prefix);
        String pklName = prefix + "/data.pkl";
        String where = file + " (" + pklName + ")";
        Object root = TorchUnpickler.load(where, zip.data(zip.entries().get(pklName)));
        if (!(root instanceof PyDict dict)) {
            throw new JlensException(where + ": the pickle holds a " + TorchUnpickler.kind(root)
                    + ", not a state dict; jlens reads checkpoints saved as torch.save(model.state_dict())");
        }
        Map<String, TensorEntry> tensors = new LinkedHashMap<>();
        List<String> others = new ArrayList<>();
        for (Map.Entry<Object, Object> e : dict.items.entrySet()) {
            if (!(e.getKey() instanceof String name)) {
                throw new JlensException(where + ": state dict key of type " + TorchUnpickler.kind(e.getKey())
                        + "; expected tensor names (strings)");
            }
            if (e.getValue() instanceof TensorValue tv) {
                tensors.put(name, entry(file, zip, prefix, name, tv));
            } else {
                // Non-tensor entries (e.g. a module's _extra_state) carry no weights; skipping them is harmless.
                others.add(name);
            }
        }
        if (tensors.isEmpty() && !others.isEmpty()) {
            throw new JlensException(where + ": the pickled dict holds no tensors (keys: "
                    + String.join(", ", others.subList(0, Math.min(10, others.size())))
                    + (others.size() > 10 ? ", ..." : "") + "); jlens reads plain state dicts as saved by "
                    + "save_pretrained or torch.save(model.state_dict())");
        }
        return new TorchCheckpoint(file, Collections.unmodifiableMap(tensors));
    }

    public static TensorSource openSharded(Path indexFile) {
        return ShardedTorchCheckpoint.open(indexFile);
    }

    /** The one top-level folder holding data.pkl; torch names it after the file it saved to. */
    private static String findPrefix(ZipDirectory zip) {
        List<String> found = new ArrayList<>();
        for (String name : zip.entries().keySet()) {
            int slash = name.indexOf('/');
            if (slash > 0 && name.substring(slash).equals("/data.pkl")) found.add(name.substring(0, slash));
        }
        if (found.isEmpty()) {
            throw new JlensException(zip.file() + ": zip archive without a <name>/data.pkl entry; it is not a "
                    + "checkpoint written by torch.save");
        }
        if (found.size() > 1) {
            throw new JlensException(zip.file() + ": zip archive holds several pickles (" + String.join(", ", found)
                    + "/data.pkl); expected exactly one torch.save checkpoint");
        }
        return found.getFirst();
    }

    /** Newer torch records the byte order; storages are raw native-order bytes, and jlens reads little-endian. */
    private static void checkByteOrder(ZipDirectory zip, String prefix) {
        ZipDirectory.Entry e = zip.entries().get(prefix + "/byteorder");
        if (e == null) return;
        if (e.size() > 16) throw new JlensException(zip.file() + ": " + e.name() + " is " + e.size() + " bytes; expected \"little\"");
        String order = new String(zip.data(e).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII).trim();
        if (!order.equals("little")) {
            throw new JlensException(zip.file() + ": checkpoint was saved on a \"" + order + "\"-endian machine; "
                    + "jlens reads little-endian storages only");
        }
    }

    private static TensorEntry entry(Path file, ZipDirectory zip, String prefix, String name, TensorValue t) {
        String where = file + ": tensor \"" + name + "\"";
        StorageRef s = t.storage();
        String storageName = prefix + "/data/" + s.key();
        ZipDirectory.Entry se = zip.entries().get(storageName);
        if (se == null) {
            throw new JlensException(where + ": its storage " + storageName + " is missing from the archive");
        }
        int elem = s.dtype().bytes();
        long storageBytes;
        try {
            storageBytes = Math.multiplyExact(s.numel(), elem);
        } catch (ArithmeticException ex) {
            throw new JlensException(where + ": storage " + storageName + " claims " + s.numel() + " elements");
        }
        if (se.size() < storageBytes) {
            throw new JlensException(where + ": storage " + storageName + " (" + s.storageClass() + ", " + s.numel()
                    + " elements) needs " + storageBytes + " bytes but the entry has " + se.size());
        }
        long[] shape = t.shape();
        long numel = 1;
        for (long d : shape) {
            if (d < 0) throw new JlensException(where + ": negative size " + Arrays.toString(shape));
            try {
                numel = Math.multiplyExact(numel, d);
            } catch (ArithmeticException ex) {
                throw new JlensException(where + ": size " + Arrays.toString(shape) + " is too large");
            }
        }
        if (numel > 0) checkContiguous(where, shape, t.stride());
        long offset = t.offset();
        if (offset < 0 || offset > s.numel() || numel > s.numel() - offset) {
            throw new JlensException(where + ": " + numel + " elements at storage offset " + offset
                    + " do not fit its storage " + storageName + " of " + s.numel() + " elements");
        }
        MemorySegment data = zip.data(se).asSlice(offset * elem, numel * elem);
        return new TensorEntry(name, s.dtype(), shape, data, file.toString());
    }

    /** Row-major order; torch ignores the stride of size-1 dimensions, so this does too. */
    private static void checkContiguous(String where, long[] shape, long[] stride) {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && stride[i] != expected) {
                throw new JlensException(where + ": size " + Arrays.toString(shape) + " with stride "
                        + Arrays.toString(stride) + " is not a contiguous row-major view (saved from a transposed "
                        + "or sliced tensor); re-save it after .contiguous(), or convert the checkpoint to safetensors");
            }
            expected *= shape[i];
        }
    }

    public Path path() {
        return file;
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public TensorEntry find(String name) {
        return tensors.get(name);
    }

    @Override
    public String describe() {
        return file.toString();
    }

    @Override
    public void close() {
        // The mapping is released by the auto arena once no slice is reachable.
    }
}
