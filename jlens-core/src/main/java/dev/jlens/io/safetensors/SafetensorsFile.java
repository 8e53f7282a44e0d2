package dev.jlens.io.safetensors;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One memory-mapped safetensors file. The format is simple enough (8-byte little-endian header length, a
 * JSON header, raw data) that a library would add nothing; what matters is validating every offset before
 * touching the mapping, so a hostile file gives a clear error instead of a crash or a huge allocation.
 */
public final class SafetensorsFile implements TensorSource {

    /** Headers beyond this are refused: real ones are a few hundred KB even for 70B models. */
    static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private final Path path;
    private final Map<String, TensorEntry> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Map<String, TensorEntry> tensors, Map<String, String> metadata) {
        this.path = path;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    public static SafetensorsFile open(Path path) {
        if (!Files.isRegularFile(path)) {
            throw new JlensException(path + ": safetensors file not found");
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new JlensException(path + ": truncated safetensors file (" + size
                        + " bytes; expected at least the 8-byte header length)");
            }
            // Auto arena: the mapping lives as long as any tensor slice is reachable, so a closed source can
            // never leave a dangling segment behind.
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, Arena.ofAuto());
            long headerLen = all.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLen < 2 || headerLen > MAX_HEADER_BYTES) {
                throw new JlensException(path + ": safetensors header length " + headerLen
                        + " is not plausible (expected 2.." + MAX_HEADER_BYTES + " bytes); the file is not safetensors or is corrupt");
            }
            if (8 + headerLen > size) {
                throw new JlensException(path + ": safetensors header length " + headerLen
                        + " reaches beyond the end of the file (" + size + " bytes); the file is truncated or corrupt");
            }
            byte[] hb = all.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
            JsonNode header;
            try {
                // A duplicate name would silently shadow one of the tensors, so it is refused as corrupt.
                header = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                        .readTree(new String(hb, StandardCharsets.UTF_8));
            } catch (IOException e) {
                throw new JlensException(path + ": safetensors header is not valid JSON: " + firstLine(e.getMessage()));
            }
            if (header == null || !header.isObject()) {
                throw new JlensException(path + ": safetensors header must be a JSON object of tensor entries");
            }
            long dataStart = 8 + headerLen;
            long dataLen = size - dataStart;
            MemorySegment data = all.asSlice(dataStart, dataLen);
            return parse(path, header, data, dataLen);
        } catch (IOException e) {
            throw new JlensException(path + ": cannot read safetensors file: " + e.getMessage(), e);
        }
    }

    private static SafetensorsFile parse(Path path, JsonNode header, MemorySegment data, long dataLen) {
        Map<String, TensorEntry> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        List<String> rangeNames = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String name = f.getKey();
            JsonNode v = f.getValue();
            if (name.equals("__metadata__")) {
                if (v.isObject()) v.fields().forEachRemaining(m -> metadata.put(m.getKey(), m.getValue().asText()));
                continue;
            }
            String where = path + ": tensor \"" + name + "\"";
            if (!v.isObject()) throw new JlensException(where + ": entry must be an object with dtype, shape, data_offsets");
            JsonNode dt = v.get("dtype");
            JsonNode sh = v.get("shape");
            JsonNode off = v.get("data_offsets");
            if (dt == null || !dt.isTextual()) throw new JlensException(where + ": missing or non-string field \"dtype\"");
            if (sh == null || !sh.isArray()) throw new JlensException(where + ": missing or non-array field \"shape\"");
            if (off == null || !off.isArray() || off.size() != 2 || !isLong(off.get(0)) || !isLong(off.get(1))) {
                throw new JlensException(where + ": field \"data_offsets\" must be [begin, end]");
            }
            DType dtype = DType.fromSafetensors(dt.asText(), where);
            long[] shape = new long[sh.size()];
            for (int i = 0; i < shape.length; i++) {
                JsonNode d = sh.get(i);
                if (!isLong(d) || d.asLong() < 0) {
                    throw new JlensException(where + ": shape " + sh + " must hold non-negative integers");
                }
                shape[i] = d.asLong();
            }
            long numel = numel(shape, where, sh);
            long begin = off.get(0).asLong();
            long end = off.get(1).asLong();
            if (begin < 0 || end < begin || end > dataLen) {
                throw new JlensException(where + ": data_offsets [" + begin + ", " + end
                        + "] are out of range (the data section has " + dataLen + " bytes)");
            }
            long expected;
            try {
                expected = Math.multiplyExact(numel, dtype.bytes());
            } catch (ArithmeticException e) {
                throw new JlensException(where + ": shape " + sh + " is too large");
            }
            if (end - begin != expected) {
                throw new JlensException(where + ": data_offsets span " + (end - begin) + " bytes but dtype "
                        + dtype + " and shape " + sh + " need " + expected);
            }
            ranges.add(new long[]{begin, end});
            rangeNames.add(name);
            tensors.put(name, new TensorEntry(name, dtype, shape, data.asSlice(begin, end - begin), path.toString()));
        }
        checkOverlaps(path, ranges, rangeNames);
        return new SafetensorsFile(path, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    /** Integral and within a long: Jackson's canConvertToLong alone also accepts 2.5. */
    private static boolean isLong(JsonNode n) {
        return n.isIntegralNumber() && n.canConvertToLong();
    }

    private static long numel(long[] shape, String where, JsonNode sh) {
        long numel = 1;
        for (long d : shape) {
            if (d == 0) return 0;
        }
        try {
            for (long d : shape) numel = Math.multiplyExact(numel, d);
        } catch (ArithmeticException e) {
            throw new JlensException(where + ": shape " + sh + " is too large");
        }
        return numel;
    }

    /**
     * Empty tensors occupy no bytes and are left out: sorted by start, any overlap among the others shows up
     * between neighbours, but an empty range sorted in between would hide it.
     */
    private static void checkOverlaps(Path path, List<long[]> ranges, List<String> names) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < ranges.size(); i++) {
            if (ranges.get(i)[1] > ranges.get(i)[0]) order.add(i);
        }
        order.sort(Comparator.comparingLong(i -> ranges.get(i)[0]));
        for (int i = 1; i < order.size(); i++) {
            long[] prev = ranges.get(order.get(i - 1));
            long[] cur = ranges.get(order.get(i));
            if (cur[0] < prev[1]) {
                throw new JlensException(path + ": tensors \"" + names.get(order.get(i - 1)) + "\" and \""
                        + names.get(order.get(i)) + "\" have overlapping data_offsets; the file is corrupt");
            }
        }
    }

    private static String firstLine(String s) {
        if (s == null) return "";
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    public Path path() {
        return path;
    }

    public Map<String, String> metadata() {
        return metadata;
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
        return path.toString();
    }

    @Override
    public void close() {
        // The mapping is released by the auto arena once no slice is reachable.
    }
}
