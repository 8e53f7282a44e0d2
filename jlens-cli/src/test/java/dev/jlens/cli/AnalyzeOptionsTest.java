package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** analyze's protocol options and its bad input, on the fixture GPT-NeoX. */
class AnalyzeOptionsTest {

    @TempDir
    Path tmp;

    private static String tiny() {
        return CliTestSupport.fixtures().resolve("gpt_neox_tiny").toString();
    }

    @Test
    void seedCompatCentresEveryTokenAndExplainsTheProtocol() throws Exception {
        Path out = tmp.resolve("compat");
        var r = CliTestSupport.run("analyze", "--model", tiny(), "--seed-compat", "--bootstrap", "0", "--permutations", "0",
                "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        String html = Files.readString(out.resolve("REPORT.html"));
        assertTrue(html.contains("Day-1 protocol"), "the report explains the seed protocol");
        assertTrue(html.contains("41.63"), "and quotes the published figures");
        // TransformerLens' centring makes each token's vector mean-zero over d_model, so the pooled mean is too.
        var acts = dev.jlens.io.safetensors.SafetensorsFile.open(out.resolve("activations.safetensors"));
        var e = acts.require("blocks.2.hook_resid_post");
        int n = (int) e.shape()[0], d = (int) e.shape()[1];
        float[] v = e.toFloatArray();
        for (int i = 0; i < n; i++) {
            double s = 0, a = 0;
            for (int j = 0; j < d; j++) {
                s += v[i * d + j];
                a += Math.abs(v[i * d + j]);
            }
            assertTrue(Math.abs(s / d) < 1e-5 * Math.max(1, a / d), "prompt " + i + " has mean " + s / d);
        }
    }

    @Test
    void oneClassIsAClearError() throws Exception {
        Path one = tmp.resolve("one.txt");
        Files.writeString(one, "How do I bake bread?\n");
        var r = CliTestSupport.run("analyze", "--model", tiny(), "--harmful", one.toString(), "--out", tmp.resolve("o").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--harmful") && r.err().contains("at least 2"), r.err());
        assertFalse(r.err().contains("\tat "), r.err());
    }

    @Test
    void sameFileForBothClassesIsAClearError() throws Exception {
        Path p = tmp.resolve("p.txt");
        Files.writeString(p, "a b c\nd e f\ng h i\n");
        var r = CliTestSupport.run("analyze", "--model", tiny(), "--safe", p.toString(), "--harmful", p.toString(),
                "--out", tmp.resolve("o").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("same prompts"), r.err());
    }

    @Test
    void csvWithoutTheNamedColumnNamesTheColumnsItHas() throws Exception {
        Path csv = tmp.resolve("adv.csv");
        Files.writeString(csv, "goal,target\n\"Do a bad thing\",\"Sure\"\n\"Do another\",\"Sure\"\n");
        var r = CliTestSupport.run("analyze", "--model", tiny(), "--harmful", csv.toString(), "--field", "prompt",
                "--out", tmp.resolve("o").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("goal"), r.err());
        var ok = CliTestSupport.run("analyze", "--model", tiny(), "--harmful", csv.toString(), "--field", "goal",
                "--bootstrap", "0", "--permutations", "0", "--cv-folds", "2", "--out", tmp.resolve("ok").toString());
        assertEquals(0, ok.exitCode(), ok.err());
        // two harmful prompts without a style field: no held-out style to test on, and the run says so
        assertTrue(ok.out().contains("style split: not measured: the harmful prompts have 0 in the"), ok.out());
        String skipped = new com.fasterxml.jackson.databind.ObjectMapper().readTree(tmp.resolve("ok/metrics.json").toFile())
                .at("/style_split/skipped").asText();
        assertTrue(skipped.contains("a prompt file needs a style field"), skipped);
    }

    @Test
    void tooLongPromptsAreTruncatedWithAWarning() throws Exception {
        Path p = tmp.resolve("long.txt");
        Files.writeString(p, "word ".repeat(400) + "\nshort one\nanother short one\n");
        var r = CliTestSupport.run("analyze", "--model", tiny(), "--harmful", p.toString(), "--bootstrap", "0",
                "--permutations", "0", "--cv-folds", "2", "--out", tmp.resolve("o").toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("truncated"), r.err());
    }
}
