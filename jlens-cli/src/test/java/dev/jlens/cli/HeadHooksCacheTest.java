package dev.jlens.cli;

import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `jlens cache` of per-head hooks alone: every selection works, pooled or per token. */
class HeadHooksCacheTest {

    @TempDir
    Path tmp;

    private Path prompts() throws Exception {
        Path p = tmp.resolve("p.txt");
        Files.writeString(p, "The cat sat on the mat\nHello\nWhy? Because 2+2=4!\n");
        return p;
    }

    private static Path gpt2() {
        return CliTestSupport.fixtures().resolve("gpt2_tiny");
    }

    /** The reported bug: only attention hooks, --pool all, stopped with IndexOutOfBoundsException in the merge. */
    @Test
    void attentionHooksAloneWithPoolAll() throws Exception {
        Path out = tmp.resolve("attn");
        var r = CliTestSupport.run("cache", "--model", gpt2().toString(), "--prompts", prompts().toString(),
                "--hooks", "blocks.*.attn.*", "--pool", "all", "--batch-size", "2", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("activations.safetensors"))) {
            int len = (int) f.find("p1.input_ids").shape()[0];
            assertArrayEquals(new long[]{4, len, len}, f.find("p1.blocks.2.attn.hook_pattern").shape());
            assertArrayEquals(new long[]{4, len, len}, f.find("p1.blocks.0.attn.hook_attn_scores").shape());
            assertArrayEquals(new long[]{len, 4, 16}, f.find("p1.blocks.0.attn.hook_z").shape());
            assertArrayEquals(new long[]{len, 4, 64}, f.find("p1.blocks.0.attn.hook_result").shape());
            assertTrue(f.find("p0.blocks.0.attn.hook_rot_q") == null, "GPT-2 has no rotary");
            assertTrue(f.find("p0.blocks.0.hook_resid_post") == null, "only what was selected");
        }
    }

    @Test
    void patternsOnlyWithPoolAll() throws Exception {
        Path out = tmp.resolve("pattern");
        var r = CliTestSupport.run("cache", "--model", gpt2().toString(), "--prompts", prompts().toString(),
                "--hooks", "blocks.1.attn.hook_pattern", "--pool", "all", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("activations.safetensors"))) {
            TensorEntry e = f.find("p2.blocks.1.attn.hook_pattern");
            assertNotNull(e);
            float[] pattern = e.toFloatArray();
            int len = (int) e.shape()[1];
            for (int row = 0; row < 4 * len; row++) {
                double sum = 0;
                for (int j = 0; j < len; j++) sum += pattern[row * len + j];
                assertEquals(1.0, sum, 1e-5, "each pattern row sums to 1");
            }
        }
    }

    /** Per-head hooks pool over tokens like any other: one [prompts, heads·d_head] row block each. */
    @Test
    void perHeadHooksPooled() throws Exception {
        Path out = tmp.resolve("mean");
        var r = CliTestSupport.run("cache", "--model", gpt2().toString(), "--prompts", prompts().toString(),
                "--hooks", "blocks.0.attn.hook_z,blocks.0.mlp.*", "--pool", "mean", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("activations.safetensors"))) {
            assertArrayEquals(new long[]{3, 64}, f.find("blocks.0.attn.hook_z").shape());
            assertArrayEquals(new long[]{3, 256}, f.find("blocks.0.mlp.hook_post").shape());
        }
    }

    @Test
    void patternsPooledAreAClearError() throws Exception {
        var r = CliTestSupport.run("cache", "--model", gpt2().toString(), "--prompts", prompts().toString(),
                "--hooks", "blocks.*.attn.hook_pattern", "--pool", "mean", "--out", tmp.resolve("x").toString());
        assertTrue(r.exitCode() != 0, "must fail");
        assertTrue(r.err().contains("--pool all"), r.err());
        assertFalse(r.err().contains("internal error"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }
}
