package dev.jlens.io;

import dev.jlens.JlensException;
import dev.jlens.testing.ScratchMounts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Writes that fail (a full disk, a read-only folder, a writer that throws) end in a JlensException naming the
 * file, leave the previous file under the real name untouched, and leave no temporary file behind.
 */
class AtomicFilesTest {

    @TempDir
    Path dir;

    private static byte[] megabyte() {
        byte[] b = new byte[1 << 20];
        for (int i = 0; i < b.length; i++) b[i] = (byte) (i * 31);
        return b;
    }

    private static void assertClearError(JlensException e, Path target) {
        assertTrue(e.getMessage().startsWith("cannot write " + target + ": "), e.getMessage());
        assertTrue(e.getMessage().contains("writable") && e.getMessage().contains("space left"), e.getMessage());
    }

    @Test
    void writesUnderATemporaryNameThenRenames() throws IOException {
        Path target = dir.resolve("result.txt");
        AtomicFiles.write(target, out -> {
            out.write("half".getBytes());
            // while the writer runs, the real name does not exist yet: only the temporary file does
            assertTrue(Files.notExists(target));
            List<String> names = ScratchMounts.list(dir);
            assertEquals(1, names.size());
            assertTrue(names.getFirst().startsWith(".result.txt.") && names.getFirst().endsWith(".tmp"), names.toString());
            out.write(" done".getBytes());
        });
        assertEquals("half done", Files.readString(target));
        assertEquals(List.of("result.txt"), ScratchMounts.list(dir));
    }

    @Test
    void commitPutsAFinishedFileOrLinkInPlaceOfTheOldOne() throws IOException {
        // the hub's downloads and snapshot links use commit directly: a file is flushed then renamed, a
        // symbolic link (which cannot be opened for writing without touching its blob) is renamed as it is
        Path target = dir.resolve("config.json");
        Files.writeString(target, "old");
        Path tmp = Files.writeString(dir.resolve(".config.json.1.tmp"), "new");
        AtomicFiles.commit(tmp, target);
        assertEquals("new", Files.readString(target));
        assertTrue(Files.notExists(tmp));

        Path blob = Files.writeString(dir.resolve("blob"), "from the blob");
        Path link = Files.createSymbolicLink(dir.resolve(".config.json.2.tmp"), blob.getFileName());
        AtomicFiles.commit(link, target);
        assertTrue(Files.isSymbolicLink(target));
        assertEquals("from the blob", Files.readString(target));
        assertEquals(List.of("blob", "config.json"), ScratchMounts.list(dir));
    }

    @Test
    void aWriterThatFailsLeavesThePreviousFile() throws IOException {
        Path target = dir.resolve("metrics.json");
        Files.writeString(target, "previous");
        JlensException e = assertThrows(JlensException.class, () -> AtomicFiles.write(target, out -> {
            out.write(megabyte());
            throw new IOException("simulated failure half-way");
        }));
        assertClearError(e, target);
        assertEquals("previous", Files.readString(target));
        assertEquals(List.of("metrics.json"), ScratchMounts.list(dir));
    }

    /**
     * A stream that runs out of space after {@code room} bytes, as a file on a full disk does: the failure can
     * come from a write or from the final flush in close(), after the writer itself has returned.
     */
    private static OutputStream diskWithRoom(OutputStream real, long room) {
        return new FilterOutputStream(real) {
            long written;

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                if (written + len > room) throw new IOException("No space left on device");
                written += len;
                out.write(b, off, len);
            }

            @Override
            public void write(int b) throws IOException {
                write(new byte[]{(byte) b}, 0, 1);
            }
        };
    }

    @Test
    void aDiskFullDuringWriteOrFinalFlushLeavesThePreviousFile() throws IOException {
        Path target = dir.resolve("activations.safetensors");
        Files.writeString(target, "previous");
        // fails in a write: a megabyte goes through the 64 KB buffer
        JlensException big = assertThrows(JlensException.class,
                () -> AtomicFiles.write(target, out -> out.write(megabyte()), tmp -> diskWithRoom(Files.newOutputStream(tmp), 100_000)));
        assertClearError(big, target);
        assertTrue(big.getMessage().contains("No space left on device"), big.getMessage());
        // fails only when close() flushes the buffer: the writer returned normally
        JlensException atClose = assertThrows(JlensException.class,
                () -> AtomicFiles.write(target, out -> out.write(new byte[1000]), tmp -> diskWithRoom(Files.newOutputStream(tmp), 10)));
        assertClearError(atClose, target);
        assertEquals("previous", Files.readString(target));
        assertEquals(List.of("activations.safetensors"), ScratchMounts.list(dir));
    }

    /** A real full disk: a 64 KB tmpfs (mounted when the test may, e.g. as root in a container). */
    @Test
    void aRealFullDiskLeavesThePreviousFile() throws IOException {
        Path disk = Files.createDirectory(dir.resolve("disk"));
        ScratchMounts.tinyDisk(disk, 64 * 1024);
        try {
            Path target = disk.resolve("activations.safetensors");
            Files.writeString(target, "previous");
            JlensException e = assertThrows(JlensException.class, () -> AtomicFiles.write(target, out -> out.write(megabyte())));
            assertClearError(e, target);
            assertTrue(e.getMessage().contains("No space left on device"), e.getMessage());
            assertEquals("previous", Files.readString(target));
            assertEquals(List.of("activations.safetensors"), ScratchMounts.list(disk));
        } finally {
            ScratchMounts.release(disk);
        }
    }

    @Test
    void aReadOnlyFolderIsAClearErrorAndKeepsThePreviousFile() throws IOException {
        Path folder = Files.createDirectory(dir.resolve("out"));
        try {
            Path target = folder.resolve("metrics.json");
            Files.writeString(target, "previous");
            ScratchMounts.makeReadOnly(folder);
            JlensException e = assertThrows(JlensException.class, () -> AtomicFiles.writeString(target, "new"));
            assertClearError(e, target);
            assertEquals("previous", Files.readString(target));
            assertEquals(List.of("metrics.json"), ScratchMounts.list(folder));
        } finally {
            ScratchMounts.release(folder);
        }
    }
}
