package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `jlens cache` killed with SIGKILL half-way and started again with the same arguments resumes and writes
 * exactly the bytes of an uninterrupted run.
 */
class KillAndResumeTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void killedRunResumesBitIdentical() throws Exception {
        Path model = CliTestSupport.fixtures().resolve("gpt_neox_tiny");
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 400; i++) sb.append("Prompt number ").append(i).append(" asks about the weather in town ").append(i % 17).append(".\n");
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, sb.toString());
        Path outKilled = tmp.resolve("killed");
        Path outClean = tmp.resolve("clean");
        List<String> args = List.of("cache", "--model", model.toString(), "--prompts", prompts.toString(),
                "--hooks", "blocks.*.hook_resid_post,hook_embed", "--pool", "all", "--batch-size", "2");

        Process p = CliTestSupport.startInChildJvm(args, outKilled);
        Path partial = outKilled.resolve(ResumableCache.PARTIAL);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (batches(partial) < 3) {
            assertTrue(p.isAlive(), "the run ended before it could be killed");
            assertTrue(System.nanoTime() < deadline, "no batch written in time");
            Thread.sleep(5);
        }
        p.destroyForcibly();
        p.waitFor();
        int done = batches(partial);
        assertTrue(done >= 3 && done < 200, "killed half-way, after " + done + " of 200 batches");
        assertTrue(Files.notExists(outKilled.resolve("activations.json")), "an unfinished run is not marked complete");

        Process again = CliTestSupport.startInChildJvm(args, outKilled);
        assertEquals(0, again.waitFor(), "resumed run failed");
        String err = Files.readString(outKilled.resolveSibling("killed.stderr"));
        assertTrue(err.contains("resumed"), err);

        var clean = CliTestSupport.run(CliTestSupport.concat(args, "--out", outClean.toString()));
        assertEquals(0, clean.exitCode(), clean.err());
        assertArrayEquals(Files.readAllBytes(outClean.resolve("activations.safetensors")),
                Files.readAllBytes(outKilled.resolve("activations.safetensors")));
    }

    private static int batches(Path partial) throws Exception {
        if (!Files.isDirectory(partial)) return 0;
        try (Stream<Path> s = Files.list(partial)) {
            return (int) s.filter(f -> f.getFileName().toString().startsWith("batch-") && f.toString().endsWith(".safetensors")).count();
        }
    }
}
