package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad input at the command line: one clear paragraph on stderr, exit code 1, never a stack trace. */
class CliBadInputTest {

    @TempDir
    Path tmp;

    private static void assertClearError(CliTestSupport.Result r, String... mustContain) {
        assertEquals(1, r.exitCode(), "exit code; stderr: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(r.err().contains("internal error"), "not an internal error: " + r.err());
        for (String s : mustContain) assertTrue(r.err().contains(s), "stderr should mention '" + s + "': " + r.err());
    }

    private Path tiny() {
        return CliTestSupport.fixtures().resolve("gpt_neox_tiny");
    }

    @Test
    void missingModelFolder() {
        assertClearError(CliTestSupport.run("inspect", "--model", tmp.resolve("nope").toString()), "nope", "no such folder");
    }

    @Test
    void emptyPromptFile() throws Exception {
        Path p = tmp.resolve("empty.txt");
        Files.writeString(p, "\n\n");
        assertClearError(CliTestSupport.run("cache", "--model", tiny().toString(), "--prompts", p.toString(),
                "--out", tmp.resolve("o").toString()), "empty.txt");
    }

    @Test
    void missingPromptFile() {
        assertClearError(CliTestSupport.run("cache", "--model", tiny().toString(), "--prompts", tmp.resolve("gone.txt").toString(),
                "--out", tmp.resolve("o").toString()), "gone.txt");
    }

    @Test
    void unknownHookListsValidNames() throws Exception {
        Path p = tmp.resolve("p.txt");
        Files.writeString(p, "Hello\n");
        assertClearError(CliTestSupport.run("cache", "--model", tiny().toString(), "--prompts", p.toString(),
                "--hooks", "blocks.*.resid", "--out", tmp.resolve("o").toString()), "blocks.{0..2}.hook_resid_post");
    }

    @Test
    void badPooling() throws Exception {
        Path p = tmp.resolve("p.txt");
        Files.writeString(p, "Hello\n");
        assertClearError(CliTestSupport.run("cache", "--model", tiny().toString(), "--prompts", p.toString(),
                "--pool", "median", "--out", tmp.resolve("o").toString()), "--pool", "mean-skip-first");
    }

    @Test
    void finishedRunIsNotOverwrittenWithoutForce() throws Exception {
        Path p = tmp.resolve("p.txt");
        Files.writeString(p, "Hello\nThe cat sat\n");
        String[] args = {"cache", "--model", tiny().toString(), "--prompts", p.toString(), "--out", tmp.resolve("o").toString()};
        assertEquals(0, CliTestSupport.run(args).exitCode());
        assertClearError(CliTestSupport.run(args), "--force");
        String[] forced = java.util.Arrays.copyOf(args, args.length + 1);
        forced[args.length] = "--force";
        assertEquals(0, CliTestSupport.run(forced).exitCode());
    }

    @Test
    void inspectListsHooks() {
        var r = CliTestSupport.run("inspect", "--model", tiny().toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("GPTNeoXForCausalLM"));
        assertTrue(r.out().contains("blocks.2.hook_resid_post"));
        assertTrue(r.out().contains("ln_final.hook_normalized"));
        assertTrue(r.out().contains("parameters"));
    }
}
