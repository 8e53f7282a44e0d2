package dev.jlens.cli;

import dev.jlens.testing.ScratchMounts;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Nothing lost: a run killed half-way is never marked complete, a forced redo withdraws the old completion
 * marker first, a read-only folder or a full disk is a clear error that leaves finished results byte for byte
 * as they were and no half-written file behind, and absurd --batch-size values are refused or clamped.
 */
class NothingLostTest {

    @TempDir
    Path tmp;

    private static String model() {
        return CliTestSupport.fixtures().resolve("llama_tiny").toString();
    }

    private Path prompts(String name, int n, String text) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < n; i++) sb.append(text).append(' ').append(i).append(".\n");
        Path p = tmp.resolve(name);
        Files.writeString(p, sb.toString());
        return p;
    }

    private static List<String> cache(Path prompts, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("cache", "--model", model(), "--prompts", prompts.toString(),
                "--out", out.toString()));
        args.addAll(List.of(more));
        return args;
    }

    private static CliTestSupport.Result run(List<String> args) {
        return CliTestSupport.run(args.toArray(String[]::new));
    }

    /** Every file under dir (relative name → bytes). */
    private static Map<String, byte[]> snapshot(Path dir) throws IOException {
        Map<String, byte[]> out = new LinkedHashMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).sorted().toList()) out.put(dir.relativize(p).toString(), Files.readAllBytes(p));
        }
        return out;
    }

    private static void assertSameFiles(Map<String, byte[]> expected, Map<String, byte[]> actual) {
        assertEquals(expected.keySet(), actual.keySet());
        for (String k : expected.keySet()) assertArrayEquals(expected.get(k), actual.get(k), k);
    }

    private static List<String> temporaryFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".tmp")).toList();
        }
    }

    private static Process start(List<String> args, Path stderr, String... jvmArgs) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(List.of(jvmArgs));
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path") + File.pathSeparator + System.getProperty("surefire.test.class.path", ""));
        cmd.add(JlensCli.class.getName());
        cmd.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.redirectError(stderr.toFile());
        return pb.start();
    }

    private static int batches(Path out) throws IOException {
        Path partial = out.resolve(ResumableCache.PARTIAL);
        if (!Files.isDirectory(partial)) return 0;
        try (Stream<Path> s = Files.list(partial)) {
            return (int) s.filter(f -> f.getFileName().toString().startsWith("batch-")).count();
        }
    }

    /** Starts an analyze in another JVM and kills it (SIGKILL) once it has written a few batches. */
    private void killHalfWay(List<String> args, Path out) throws Exception {
        Process p = start(args, tmp.resolve("killed.stderr"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (batches(out) < 3) {
            assertTrue(p.isAlive(), "the run ended before it could be killed: " + Files.readString(tmp.resolve("killed.stderr")));
            assertTrue(System.nanoTime() < deadline, "no batch written in time");
            Thread.sleep(5);
        }
        p.destroyForcibly();
        p.waitFor();
    }

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void interruptedAnalyzeIsNeverMarkedCompleteAndAForcedRedoWithdrawsTheMarker() throws Exception {
        Path out = tmp.resolve("analyze");
        List<String> args = List.of("analyze", "--model", model(),
                "--safe", prompts("safe.txt", 60, "Tell me a story about a friendly dog").toString(),
                "--harmful", prompts("harmful.txt", 60, "Explain how to pick the lock of a neighbour's door").toString(),
                "--reference", prompts("neutral.txt", 60, "The weather today is mild").toString(),
                "--bootstrap", "0", "--permutations", "0", "--batch-size", "1", "--out", out.toString());

        killHalfWay(args, out);
        assertTrue(Files.notExists(out.resolve("metrics.json")), "an interrupted analyze has no metrics.json");
        assertTrue(Files.notExists(out.resolve("activations.json")), "nor a completed activations marker");

        CliTestSupport.Result resumed = run(args);
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.err().contains("resumed"), resumed.err());
        assertTrue(Files.readString(out.resolve("metrics.json")).contains("\"complete\" : true"));
        byte[] metricsCsv = Files.readAllBytes(out.resolve("metrics.csv"));

        List<String> forced = new ArrayList<>(args);
        forced.add("--force");
        killHalfWay(forced, out);
        assertTrue(Files.notExists(out.resolve("metrics.json")), "a redo killed half-way does not look finished");
        assertTrue(Files.notExists(out.resolve("activations.json")));
        assertArrayEquals(metricsCsv, Files.readAllBytes(out.resolve("metrics.csv")), "old results stay until replaced");
    }

    @Test
    void readOnlyOutputFolderIsAClearErrorAndKeepsTheFinishedRun() throws IOException {
        Path out = Files.createDirectory(tmp.resolve("out"));
        try {
            Path prompts = prompts("p.txt", 5, "A short prompt");
            CliTestSupport.Result first = run(cache(prompts, out));
            assertEquals(0, first.exitCode(), first.err());
            Map<String, byte[]> finished = snapshot(out);
            assertTrue(finished.containsKey("activations.json") && finished.containsKey("activations.safetensors"), finished.keySet().toString());
            ScratchMounts.makeReadOnly(out);

            CliTestSupport.Result again = run(cache(prompts, out));
            assertEquals(1, again.exitCode());
            assertTrue(again.err().contains("already holds a finished run"), again.err());

            CliTestSupport.Result forced = run(cache(prompts, out, "--force"));
            assertEquals(1, forced.exitCode());
            assertTrue(forced.err().contains("cannot redo the run in " + out), forced.err());
            assertTrue(forced.err().contains("writable"), forced.err());

            CliTestSupport.Result fresh = run(cache(prompts, out.resolve("sub")));
            assertEquals(1, fresh.exitCode());
            assertTrue(fresh.err().contains("cannot use " + out.resolve("sub")), fresh.err());
            assertTrue(fresh.err().contains("writable"), fresh.err());

            assertSameFiles(finished, snapshot(out));
        } finally {
            ScratchMounts.release(out);
        }
    }

    @Test
    void fullDiskIsAClearErrorAndLeavesNoHalfWrittenFile() throws IOException {
        Path disk = Files.createDirectory(tmp.resolve("disk"));
        ScratchMounts.tinyDisk(disk, 1 << 20);
        try {
            Path a = disk.resolve("a"), b = disk.resolve("b");
            CliTestSupport.Result first = run(cache(prompts("p.txt", 5, "A short prompt"), a));
            assertEquals(0, first.exitCode(), first.err());
            Map<String, byte[]> finished = snapshot(a);
            // fill what is left of the disk
            try (OutputStream filler = Files.newOutputStream(disk.resolve("filler"))) {
                byte[] block = new byte[4096];
                while (true) filler.write(block);
            } catch (IOException expected) {
                assertTrue(expected.getMessage().contains("No space left"), expected.getMessage());
            }

            CliTestSupport.Result other = run(cache(prompts("q.txt", 50, "Another prompt"), b, "--pool", "all"));
            assertEquals(1, other.exitCode());
            assertTrue(other.err().contains("No space left on device"), other.err());
            assertTrue(other.err().contains(b.toString()), other.err());
            assertFalse(Files.exists(b.resolve("activations.json")));
            assertSameFiles(finished, snapshot(a));

            // a forced redo withdraws a's marker, then fails; a's data files are untouched
            CliTestSupport.Result redo = run(cache(prompts("q.txt", 50, "Another prompt"), a, "--pool", "all", "--force"));
            assertEquals(1, redo.exitCode());
            assertTrue(redo.err().contains("No space left on device"), redo.err());
            assertFalse(Files.exists(a.resolve("activations.json")), "a failed redo does not look finished");
            assertArrayEquals(finished.get("activations.safetensors"), Files.readAllBytes(a.resolve("activations.safetensors")));

            assertEquals(List.of(), temporaryFiles(disk));
        } finally {
            ScratchMounts.release(disk);
        }
    }

    /**
     * In a JVM with a 128 MB heap, a batch of 300 prompts of about 60 tokens (about 4.5 KB of activations per
     * token on llama_tiny with three hooks: over 64 MB) is refused before any forward pass, naming a batch size
     * that fits.
     */
    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void batchSizeWhoseActivationsCannotFitIsRefused() throws Exception {
        Path prompts = prompts("long.txt", 300, "Once upon a time there was a little girl who lived in a village near the "
                + "forest and every day she walked to the river with her dog to watch the boats go by and to count the birds");
        Path out = tmp.resolve("batch");
        Path err = tmp.resolve("batch.stderr");
        Process p = start(cache(prompts, out, "--batch-size", "1000"), err, "-Xmx128m");
        assertTrue(p.waitFor(100, TimeUnit.SECONDS));
        String msg = Files.readString(err);
        assertEquals(1, p.exitValue(), msg);
        assertTrue(msg.contains("--batch-size 1000: the largest batch holds"), msg);
        assertTrue(msg.contains("Use --batch-size ") && msg.contains("JLENS_JAVA_OPTS=-Xmx"), msg);
        assertFalse(Files.exists(out.resolve(ResumableCache.PARTIAL)), "refused before any forward pass");
    }

    /** A batch size beyond the prompt count (even Integer.MAX_VALUE) means one batch of every prompt. */
    @Test
    void hugeBatchSizeIsOneBatchOfEveryPrompt() throws IOException {
        Path prompts = prompts("p.txt", 7, "A short prompt");
        CliTestSupport.Result huge = run(cache(prompts, tmp.resolve("huge"), "--batch-size", String.valueOf(Integer.MAX_VALUE)));
        assertEquals(0, huge.exitCode(), huge.err());
        CliTestSupport.Result seven = run(cache(prompts, tmp.resolve("seven"), "--batch-size", "7"));
        assertEquals(0, seven.exitCode(), seven.err());
        assertArrayEquals(Files.readAllBytes(tmp.resolve("seven/activations.safetensors")),
                Files.readAllBytes(tmp.resolve("huge/activations.safetensors")));
    }

    /** Batches left by a run with other arguments are never mixed into this one. */
    @Test
    void partialRunMadeWithOtherArgumentsIsNotMixedIn() throws IOException {
        Path prompts = prompts("p.txt", 5, "A short prompt");
        Path out = tmp.resolve("other");
        Files.createDirectories(out.resolve(ResumableCache.PARTIAL));
        Files.writeString(out.resolve(ResumableCache.PARTIAL).resolve("run.json"), "{\"fingerprint\":\"another run\"}");
        CliTestSupport.Result r = run(cache(prompts, out));
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("holds an unfinished run made with other arguments"), r.err());
        assertTrue(r.err().contains("--force"), r.err());
        CliTestSupport.Result forced = run(cache(prompts, out, "--force"));
        assertEquals(0, forced.exitCode(), forced.err());
    }
}
