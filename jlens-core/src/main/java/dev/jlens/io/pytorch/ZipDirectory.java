package dev.jlens.io.pytorch;

import dev.jlens.JlensException;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The central directory of a zip archive that is already memory-mapped, giving each STORED entry as a slice
 * of the mapping.
 *
 * <p>Written by hand because {@code java.util.zip} cannot do what a checkpoint loader needs: {@code ZipFile}
 * hands out entry contents only as {@code InputStream}s and never says where an entry's bytes start in the
 * file, so tensors would have to be copied onto the heap (tens of GB for a large model) instead of being
 * mapped in place, and {@code ZipInputStream} has the same problem. The zip layout torch writes is small:
 * end-of-central-directory record (plus its ZIP64 variant for large or many entries), central directory
 * headers, and local headers whose extra field pads each entry to a 64-byte boundary.
 *
 * <p>Every offset and length read from the file is checked against the mapping before use, and nothing is
 * allocated in proportion to a count the file claims, so a corrupt or hostile archive gives a
 * {@link JlensException} naming the file rather than an out-of-bounds error or a huge allocation.
 */
final class ZipDirectory {

    /** One STORED entry: its name and its bytes within the mapped file. */
    record Entry(String name, long dataOffset, long size) {
    }

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final int EOCD_SIG = 0x06054b50;
    private static final int ZIP64_LOCATOR_SIG = 0x07064b50;
    private static final int ZIP64_EOCD_SIG = 0x06064b50;
    private static final int CENTRAL_SIG = 0x02014b50;
    private static final int LOCAL_SIG = 0x04034b50;
    private static final int EOCD_LEN = 22;
    private static final int ZIP64_LOCATOR_LEN = 20;
    private static final int ZIP64_EOCD_LEN = 56;
    private static final int CENTRAL_LEN = 46;
    private static final int LOCAL_LEN = 30;
    private static final int MAX_COMMENT = 0xffff;
    private static final int ZIP64_EXTRA_ID = 0x0001;

    private final Path file;
    private final MemorySegment mapped;
    private final Map<String, Entry> entries;

    private ZipDirectory(Path file, MemorySegment mapped, Map<String, Entry> entries) {
        this.file = file;
        this.mapped = mapped;
        this.entries = entries;
    }

    /** Entries in central-directory order. */
    Map<String, Entry> entries() {
        return entries;
    }

    /** The bytes of an entry, as a slice of the mapping (nothing is copied). */
    MemorySegment data(Entry e) {
        return mapped.asSlice(e.dataOffset(), e.size());
    }

    static ZipDirectory read(Path file, MemorySegment mapped) {
        long size = mapped.byteSize();
        long eocd = findEndRecord(file, mapped);
        long entryCount = u16(mapped, eocd + 10);
        long cdSize = u32(mapped, eocd + 12);
        long cdOffset = u32(mapped, eocd + 16);
        if (entryCount == 0xffff || cdSize == 0xffffffffL || cdOffset == 0xffffffffL) {
            long loc = eocd - ZIP64_LOCATOR_LEN;
            if (loc < 0 || mapped.get(U32, loc) != ZIP64_LOCATOR_SIG) {
                throw corrupt(file, "the end record points to a ZIP64 record, but there is no ZIP64 locator before it");
            }
            long z = mapped.get(U64, loc + 8);
            if (z < 0 || z > loc - ZIP64_EOCD_LEN || mapped.get(U32, z) != ZIP64_EOCD_SIG) {
                throw corrupt(file, "the ZIP64 end record offset " + z + " does not point to a ZIP64 end record");
            }
            entryCount = mapped.get(U64, z + 32);
            cdSize = mapped.get(U64, z + 40);
            cdOffset = mapped.get(U64, z + 48);
        }
        if (cdOffset < 0 || cdSize < 0 || cdOffset > size || cdSize > size - cdOffset) {
            throw corrupt(file, "the central directory (offset " + cdOffset + ", " + cdSize
                    + " bytes) lies outside the file (" + size + " bytes)");
        }
        // Each header is at least 46 bytes, so the real directory bounds the count, not the claimed one.
        if (entryCount < 0 || entryCount > cdSize / CENTRAL_LEN) {
            throw corrupt(file, "the end record claims " + entryCount + " entries, more than a central directory of "
                    + cdSize + " bytes can hold");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        long p = cdOffset;
        long cdEnd = cdOffset + cdSize;
        for (long i = 0; i < entryCount; i++) {
            if (p > cdEnd - CENTRAL_LEN || mapped.get(U32, p) != CENTRAL_SIG) {
                throw corrupt(file, "central directory header " + i + " at offset " + p + " is missing or cut short");
            }
            int flags = u16(mapped, p + 8);
            int method = u16(mapped, p + 10);
            long compSize = u32(mapped, p + 20);
            long uncompSize = u32(mapped, p + 24);
            int nameLen = u16(mapped, p + 28);
            int extraLen = u16(mapped, p + 30);
            int commentLen = u16(mapped, p + 32);
            long localOffset = u32(mapped, p + 42);
            long nameAt = p + CENTRAL_LEN;
            long extraAt = nameAt + nameLen;
            long next = extraAt + extraLen + commentLen;
            if (next > cdEnd) {
                throw corrupt(file, "central directory header " + i + " runs past the end of the directory");
            }
            String name = utf8(file, mapped.asSlice(nameAt, nameLen));
            if (compSize == 0xffffffffL || uncompSize == 0xffffffffL || localOffset == 0xffffffffL) {
                long[] z = zip64Extra(file, name, mapped, extraAt, extraLen,
                        uncompSize == 0xffffffffL, compSize == 0xffffffffL, localOffset == 0xffffffffL);
                if (uncompSize == 0xffffffffL) uncompSize = z[0];
                if (compSize == 0xffffffffL) compSize = z[1];
                if (localOffset == 0xffffffffL) localOffset = z[2];
            }
            if ((flags & 1) != 0) {
                throw new JlensException(file + ": zip entry \"" + name + "\" is encrypted; torch.save never writes "
                        + "encrypted entries, so this is not a PyTorch checkpoint");
            }
            if (method != 0) {
                throw new JlensException(file + ": zip entry \"" + name + "\" is compressed (method " + method
                        + "); torch.save stores entries uncompressed so they can be memory-mapped. Re-save the "
                        + "checkpoint with torch.save, or convert it to safetensors");
            }
            if (compSize != uncompSize || compSize < 0) {
                throw corrupt(file, "stored entry \"" + name + "\" has compressed size " + compSize
                        + " but uncompressed size " + uncompSize);
            }
            long dataOffset = localData(file, name, mapped, localOffset);
            if (dataOffset > cdOffset || compSize > cdOffset - dataOffset) {
                throw corrupt(file, "entry \"" + name + "\" (" + compSize + " bytes at offset " + dataOffset
                        + ") overlaps the central directory or runs past the end of the file");
            }
            if (entries.putIfAbsent(name, new Entry(name, dataOffset, compSize)) != null) {
                throw corrupt(file, "entry \"" + name + "\" appears twice");
            }
            p = next;
        }
        return new ZipDirectory(file, mapped, Collections.unmodifiableMap(entries));
    }

    /** The end-of-central-directory record sits in the last 22..65557 bytes (it may carry a comment). */
    private static long findEndRecord(Path file, MemorySegment m) {
        long size = m.byteSize();
        if (size >= EOCD_LEN) {
            long stop = Math.max(0, size - EOCD_LEN - MAX_COMMENT);
            for (long p = size - EOCD_LEN; p >= stop; p--) {
                if (m.get(U32, p) == EOCD_SIG && p + EOCD_LEN + u16(m, p + 20) <= size) return p;
            }
        }
        boolean barePickle = size >= 2 && (m.get(ValueLayout.JAVA_BYTE, 0) & 0xff) == 0x80;
        byte[] lfs = "version https://git-lfs".getBytes(StandardCharsets.US_ASCII);
        boolean lfsPointer = size >= lfs.length
                && MemorySegment.ofArray(lfs).mismatch(m.asSlice(0, lfs.length)) == -1;
        String hint = lfsPointer
                ? "it is a Git LFS pointer, not the weights; fetch them with git lfs pull"
                : barePickle
                ? "it starts like a bare pickle: the legacy torch.save format of PyTorch before 1.6, which jlens "
                + "does not read. Re-save it with a current PyTorch, or convert it to safetensors"
                : "PyTorch checkpoints saved by torch.save since PyTorch 1.6 are zip files; a truncated download "
                + "also looks like this";
        throw new JlensException(file + ": not a zip archive (" + size + " bytes, no end-of-central-directory "
                + "record); " + hint);
    }

    /** Values from the ZIP64 extended-information extra field, in the order the spec fixes. */
    private static long[] zip64Extra(Path file, String name, MemorySegment m, long at, int len,
                                     boolean wantUncomp, boolean wantComp, boolean wantOffset) {
        long end = at + len;
        long p = at;
        while (p + 4 <= end) {
            int id = u16(m, p);
            int dataLen = u16(m, p + 2);
            long body = p + 4;
            if (body + dataLen > end) break;
            if (id == ZIP64_EXTRA_ID) {
                long[] out = new long[3];
                long q = body;
                long bodyEnd = body + dataLen;
                boolean[] want = {wantUncomp, wantComp, wantOffset};
                for (int i = 0; i < 3; i++) {
                    if (!want[i]) continue;
                    if (q + 8 > bodyEnd) {
                        throw corrupt(file, "entry \"" + name + "\" has a ZIP64 extra field too short for its sizes");
                    }
                    out[i] = m.get(U64, q);
                    q += 8;
                }
                return out;
            }
            p = body + dataLen;
        }
        throw corrupt(file, "entry \"" + name + "\" needs a ZIP64 extra field (its sizes overflow 32 bits) but has none");
    }

    /** Where an entry's bytes start: after its local header, whose extra field may differ from the central one. */
    private static long localData(Path file, String name, MemorySegment m, long localOffset) {
        long size = m.byteSize();
        if (localOffset < 0 || localOffset > size - LOCAL_LEN || m.get(U32, localOffset) != LOCAL_SIG) {
            throw corrupt(file, "entry \"" + name + "\" points to offset " + localOffset
                    + ", where there is no local file header");
        }
        return localOffset + LOCAL_LEN + u16(m, localOffset + 26) + u16(m, localOffset + 28);
    }

    private static String utf8(Path file, MemorySegment bytes) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes.asByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw corrupt(file, "an entry name is not valid UTF-8");
        }
    }

    private static int u16(MemorySegment m, long at) {
        return m.get(U16, at) & 0xffff;
    }

    private static long u32(MemorySegment m, long at) {
        return m.get(U32, at) & 0xffffffffL;
    }

    private static JlensException corrupt(Path file, String what) {
        return new JlensException(file + ": corrupt zip archive: " + what);
    }

    Path file() {
        return file;
    }
}
