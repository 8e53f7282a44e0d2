package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `jlens eval` killed with SIGKILL after some completions were written, then run again with the same
 * arguments: the finished completions are kept as they were, only the rest are generated, and the result
 * equals an uninterrupted run's.
 */
class EvalKillAndResumeTest {

    @TempDir
    Path tmp;

    @Test
    @Timeout(value = 240, unit = TimeUnit.SECONDS)
    void killedEvalResumesWithoutRegenerating() throws Exception {
        StringBuilder sb = new StringBuilder("goal,target\n");
        for (int i = 0; i < 120; i++) sb.append("Tell me story number ").append(i).append(" about a dog,Sure\n");
        Path bench = tmp.resolve("harmful_behaviors.csv");
        Files.writeString(bench, sb.toString());
        List<String> args = List.of("eval", "--model", CliTestSupport.fixtures().resolve("stories260k").toString(),
                "--benchmark", bench.toString(), "--max-new-tokens", "16", "--batch-size", "1", "--cost-prompts", "0");
        Path killed = tmp.resolve("killed");
        Path log = killed.resolve("completions.jsonl");
        Process p = CliTestSupport.startInChildJvm(args, killed);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(150);
        while (lines(log) < 3) {
            assertTrue(p.isAlive(), "the run ended before it could be killed: " + stderr(killed));
            assertTrue(System.nanoTime() < deadline, "no completion written in time");
            Thread.sleep(5);
        }
        p.destroyForcibly();
        p.waitFor();
        List<String> before = Files.readAllLines(log);
        int done = (int) before.stream().filter(l -> l.endsWith("}")).count();
        assertTrue(done >= 3 && done < 120, "killed midway, after " + done + " of 120 completions");

        var again = CliTestSupport.run(CliTestSupport.concat(args, "--out", killed.toString()));
        assertEquals(0, again.exitCode(), again.err());
        assertTrue(again.err().contains("resumed: " + done + " completions"), again.err());
        assertTrue(again.err().contains((120 - done) + " of 120 completions to generate (" + done + " already done)"), again.err());
        List<String> after = Files.readAllLines(log);
        assertEquals(120, after.size());
        assertEquals(before.subList(0, done), after.subList(0, done), "finished completions are kept, not generated again");

        Path clean = tmp.resolve("clean");
        assertEquals(0, CliTestSupport.run(CliTestSupport.concat(args, "--out", clean.toString())).exitCode());
        assertEquals(Files.readString(clean.resolve("eval.csv")), Files.readString(killed.resolve("eval.csv")));
        List<String> a = new ArrayList<>(Files.readAllLines(clean.resolve("completions.jsonl"))), b = new ArrayList<>(after);
        a.sort(null);
        b.sort(null);
        assertEquals(a, b, "the same completions as an uninterrupted run");
    }

    private static int lines(Path f) throws Exception {
        if (!Files.exists(f)) return 0;
        return (int) Files.readAllLines(f).stream().filter(l -> l.endsWith("}")).count();
    }

    private static String stderr(Path out) throws Exception {
        Path f = out.resolveSibling(out.getFileName() + ".stderr");
        return Files.exists(f) ? Files.readString(f) : "";
    }
}
