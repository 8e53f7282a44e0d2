package dev.jlens.io.safetensors;

import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Broken safetensors files: each must fail with a JlensException naming the file and the problem. */
class SafetensorsBadInputTest {

    @TempDir
    Path dir;

    /** A file with the given header text (length-prefixed as the format requires) and data bytes. */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        return raw(name, header.getBytes(StandardCharsets.UTF_8), header.getBytes(StandardCharsets.UTF_8).length, dataBytes);
    }

    private Path raw(String name, byte[] header, long claimedHeaderLen, int dataBytes) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(claimedHeaderLen).array());
        out.write(header);
        byte[] data = new byte[dataBytes];
        for (int i = 0; i < dataBytes; i++) data[i] = (byte) i;
        out.write(data);
        Path p = dir.resolve(name);
        Files.write(p, out.toByteArray());
        return p;
    }

    private static JlensException fails(Path p) {
        return assertThrows(JlensException.class, () -> SafetensorsFile.open(p));
    }

    private static void assertMentions(JlensException e, String... parts) {
        for (String s : parts) {
            assertTrue(e.getMessage().contains(s), "message should mention \"" + s + "\": " + e.getMessage());
        }
    }

    @Test
    void validFileReadsBack() throws IOException {
        Path p = raw("ok.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[8,12]}}", 12);
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            TensorEntry b = f.require("b");
            assertArrayEquals(new long[]{2, 2}, b.shape());
            assertArrayEquals(new float[]{8, 9, 10, 11}, b.toFloatArray());
            assertEquals(2, f.names().size());
        }
    }

    @Test
    void fileShorterThanTheLengthPrefix() throws IOException {
        Path p = dir.resolve("tiny.safetensors");
        Files.write(p, new byte[]{1, 2, 3, 4, 5});
        assertMentions(fails(p), p.toString(), "truncated");
    }

    @Test
    void dataSectionCutShort() throws IOException {
        Path p = raw("cut.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10);
        assertMentions(fails(p), p.toString(), "\"a\"", "out of range", "10 bytes");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        byte[] h = "{}".getBytes(StandardCharsets.UTF_8);
        Path p = raw("long.safetensors", h, 5000, 0);
        assertMentions(fails(p), p.toString(), "header length 5000", "beyond the end");
    }

    @Test
    void absurdHeaderLength() throws IOException {
        Path p = raw("neg.safetensors", "{}".getBytes(StandardCharsets.UTF_8), -3, 0);
        assertMentions(fails(p), p.toString(), "header length -3");
    }

    @Test
    void overlappingOffsets() throws IOException {
        Path p = raw("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
        assertMentions(fails(p), p.toString(), "\"a\"", "\"b\"", "overlapping");
    }

    @Test
    void overlapIsFoundPastAnEmptyTensor() throws IOException {
        // An empty tensor sorted between two overlapping ones must not hide the overlap.
        Path p = raw("overlap2.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
        assertMentions(fails(p), p.toString(), "\"a\"", "\"b\"", "overlapping");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        Path p = raw("range.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[96,104]}}", 16);
        assertMentions(fails(p), p.toString(), "\"a\"", "[96, 104]", "out of range");
        Path q = raw("backwards.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16);
        assertMentions(fails(q), q.toString(), "\"a\"", "out of range");
    }

    @Test
    void offsetsDisagreeWithShape() throws IOException {
        Path p = raw("span.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16);
        assertMentions(fails(p), p.toString(), "\"a\"", "8 bytes", "need 12");
    }

    @Test
    void shapeTooLargeForALong() throws IOException {
        Path p = raw("huge.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                + "\"data_offsets\":[0,8]}}", 8);
        assertMentions(fails(p), p.toString(), "\"a\"", "too large");
    }

    @Test
    void fractionalNumbersAreNotShapes() throws IOException {
        Path p = raw("frac.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8);
        assertMentions(fails(p), p.toString(), "\"a\"", "shape");
        Path q = raw("frac2.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 9);
        assertMentions(fails(q), q.toString(), "\"a\"", "data_offsets");
    }

    @Test
    void unknownDtype() throws IOException {
        Path p = raw("dtype.safetensors", "{\"a\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
        assertMentions(fails(p), p.toString(), "\"a\"", "unknown dtype \"F12\"");
    }

    @Test
    void headerIsNotJson() throws IOException {
        Path p = raw("text.safetensors", "this is not json at all", 0);
        assertMentions(fails(p), p.toString(), "not valid JSON");
        Path q = raw("bytes.safetensors", new byte[]{(byte) 0xff, (byte) 0xfe, 0, 1}, 4, 0);
        assertMentions(fails(q), q.toString(), "JSON");
    }

    @Test
    void headerIsJsonButNotAnObject() throws IOException {
        Path p = raw("array.safetensors", "[1,2,3]", 0);
        assertMentions(fails(p), p.toString(), "JSON object");
        Path q = raw("entry.safetensors", "{\"a\":[1,2]}", 0);
        assertMentions(fails(q), q.toString(), "\"a\"", "dtype");
    }

    @Test
    void missingFile() {
        Path p = dir.resolve("absent.safetensors");
        assertMentions(fails(p), p.toString(), "not found");
    }

    @Test
    void duplicateTensorNamesAreRefused() throws IOException {
        Path p = raw("dup.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
        assertMentions(fails(p), p.toString(), "Duplicate field 'a'");
    }

    @Test
    void shardIndexErrors() throws IOException {
        Path idx = dir.resolve("model.safetensors.index.json");
        Files.writeString(idx, "{\"weight_map\":{\"a\":\"../../etc/passwd\"}}");
        JlensException e = assertThrows(JlensException.class, () -> ShardedSafetensors.open(idx));
        assertMentions(e, idx.toString(), "outside the model folder");
        Files.writeString(idx, "{\"weight_map\":{\"a\":\"bad\\u0000name\"}}");
        e = assertThrows(JlensException.class, () -> ShardedSafetensors.open(idx));
        assertMentions(e, idx.toString(), "not a valid file name");
        raw("s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        Files.writeString(idx, "{\"weight_map\":{\"b\":\"s1.safetensors\"}}");
        e = assertThrows(JlensException.class, () -> ShardedSafetensors.open(idx));
        assertMentions(e, idx.toString(), "\"b\"", "s1.safetensors");
        Files.writeString(idx, "{\"nothing\":1}");
        e = assertThrows(JlensException.class, () -> ShardedSafetensors.open(idx));
        assertMentions(e, idx.toString(), "weight_map");
    }
}
