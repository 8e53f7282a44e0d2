package dev.jlens.testing;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Folders that refuse writes, for the "nothing lost" tests. A read-only folder is made with chmod; root
 * ignores permissions, so as root the folder is bind-mounted onto itself read-only instead. A full disk is a
 * tmpfs of a few KB. Where neither works (root without mount rights) the test is skipped with the reason.
 * Shared with the other modules' tests through jlens-core's test jar.
 */
public final class ScratchMounts {

    private ScratchMounts() {
    }

    private static boolean run(String... cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    /** Mounts a tmpfs of {@code bytes} at dir (which must exist), or skips the test when that is not permitted. */
    public static void tinyDisk(Path dir, long bytes) {
        Assumptions.assumeTrue(isRoot() && run("mount", "-t", "tmpfs", "-o", "size=" + bytes, "tmpfs", dir.toString()),
                "mounting a tmpfs is not permitted here, so a full disk cannot be made");
    }

    /** Makes dir (already holding its files) refuse writes: chmod, or as root a read-only bind mount. */
    public static void makeReadOnly(Path dir) {
        if (!isRoot()) {
            Assumptions.assumeTrue(dir.toFile().setWritable(false, false), "chmod failed");
            return;
        }
        Assumptions.assumeTrue(run("mount", "--bind", dir.toString(), dir.toString())
                        && run("mount", "-o", "remount,bind,ro", dir.toString()),
                "as root a read-only folder is a read-only bind mount, which is not permitted here");
    }

    /**
     * Undoes {@link #tinyDisk} / {@link #makeReadOnly}, so that @TempDir can clean up. The unmount is lazy:
     * files the JVM still has memory-mapped keep a mount busy until they are collected.
     */
    public static void release(Path dir) {
        if (isRoot()) {
            run("umount", "-l", dir.toString());
        } else {
            dir.toFile().setWritable(true, false);
        }
    }

    /** Names of the entries of dir, sorted. */
    public static List<String> list(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
