package dev.jlens.io;

import dev.jlens.JlensException;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * Writes a file under a temporary name in the same folder and renames it into place, so a crash or a full
 * disk never leaves a half-written result under the real name.
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
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
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

    public static void writeString(Path target, String text) {
        write(target, out -> out.write(text.getBytes(StandardCharsets.UTF_8)));
    }
}
