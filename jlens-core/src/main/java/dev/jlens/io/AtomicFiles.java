package dev.jlens.io;

import dev.jlens.JlensException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file under a temporary name in the same folder and renames it into place, so a crash or a full
 * disk never leaves a half-written result under the real name. The temporary file is flushed to the disk
 * before the rename and the folder after it, so that a machine crash or power loss, not only a killed
 * process, leaves either the old file or the whole new one.
 */
public final class AtomicFiles {

    @FunctionalInterface
    public interface Writer {
        void write(OutputStream out) throws IOException;
    }

    private AtomicFiles() {
    }

    /** Opens the stream the temporary file is written through. */
    @FunctionalInterface
    interface Opener {
        OutputStream open(Path tmp) throws IOException;
    }

    public static void write(Path target, Writer writer) {
        write(target, writer, Files::newOutputStream);
    }

    /** Seam for tests: {@code opener} may return a stream that fails like a full disk. */
    static void write(Path target, Writer writer, Opener opener) {
        Path dir = target.toAbsolutePath().getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
            try (OutputStream out = new java.io.BufferedOutputStream(opener.open(tmp), 1 << 16)) {
                writer.write(out);
            }
            commit(tmp, target);
        } catch (IOException e) {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the original error is the one worth reporting
                }
            }
            throw new JlensException("cannot write " + target + ": " + e.getMessage()
                    + " (is the folder writable and is there space left on the disk?)", e);
        }
    }

    /**
     * Puts a finished temporary file in place of {@code target}: its data are flushed to the disk, it is renamed
     * atomically where the file system can (else replaced), and the folder's entry is flushed too. The caller
     * removes {@code tmp} if this throws.
     */
    public static void commit(Path tmp, Path target) throws IOException {
        if (!Files.isSymbolicLink(tmp)) {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        syncFolder(target.toAbsolutePath().getParent());
    }

    /**
     * Makes a rename durable. Only some systems (Linux, macOS) let a folder be opened and flushed; elsewhere
     * this is a no-op, and the rename is still atomic, just not yet on the disk.
     */
    private static void syncFolder(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException e) {
            // not supported for folders here (e.g. Windows): the file itself is already on the disk
        }
    }

    public static void writeString(Path target, String text) {
        write(target, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
    }
}
