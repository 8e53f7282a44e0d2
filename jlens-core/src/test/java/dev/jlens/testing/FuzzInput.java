package dev.jlens.testing;

import dev.jlens.JlensException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Shared plumbing of the fuzz tests: the parsers under test read files, so each input is written to a scratch
 * file (one per thread and name, rewritten for every input so a long fuzzing run does not fill the disk), and
 * the property every parser must keep is checked in one place: it either succeeds or throws a
 * {@link JlensException} with a message for a person. Any other throwable (an index error, an arithmetic
 * overflow, an OutOfMemoryError from a size the file only claims) propagates and is a finding.
 */
public final class FuzzInput {

    private static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("jlens-fuzz");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        DIR.toFile().deleteOnExit();
    }

    private FuzzInput() {
    }

    /** Writes bytes to a scratch file with the given name (its extension matters to some loaders). */
    public static Path write(String name, byte[] bytes) {
        Path p = DIR.resolve(Thread.currentThread().threadId() + "-" + name);
        try {
            Files.write(p, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        p.toFile().deleteOnExit();
        return p;
    }

    /** A scratch folder of this thread (created on first use), for loaders that read a model folder. */
    public static Path folder(String name) {
        Path p = DIR.resolve(Thread.currentThread().threadId() + "-" + name);
        try {
            Files.createDirectories(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    @FunctionalInterface
    public interface Parse {
        void run() throws Exception;
    }

    /**
     * Runs a parse, accepting success or a {@link JlensException} with a non-blank message; returns that
     * exception or null.
     */
    public static JlensException parsesOrFailsCleanly(Parse parse) throws Exception {
        try {
            parse.run();
            return null;
        } catch (JlensException e) {
            assertNotNull(e.getMessage(), "a JlensException without a message");
            assertFalse(e.getMessage().isBlank(), "a JlensException with a blank message");
            return e;
        }
    }
}
