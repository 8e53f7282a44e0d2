package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionMethod;
import dev.jlens.steering.DirectionSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jlens lens, attribute, patch and attention end to end on a fixture, their help texts and their errors. */
class InstrumentCommandsTest {

    @TempDir
    Path tmp;

    static String model() {
        return CliTestSupport.fixtures().resolve("gpt2_tiny").toString();
    }

    @ParameterizedTest
    @ValueSource(strings = {"lens", "attribute", "patch", "attention"})
    void helpTeachesWithAnExample(String command) {
        var r = CliTestSupport.run(command, "--help");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("Examples:") && r.out().contains("jlens " + command + " --model"), r.out());
    }

    @Test
    void lensWritesCsvJsonAndHtml() throws Exception {
        Path out = tmp.resolve("lens");
        var r = CliTestSupport.run("lens", "--model", model(), "--prompt", "The cat sat on the", "--prompt", "Hello there",
                "--tokens", " mat, floor", "--top-k", "3", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = new ObjectMapper().readTree(out.resolve("lens.json").toFile());
        assertEquals(2, json.get("prompts").size());
        JsonNode layers = json.get("prompts").get(0).get("layers");
        assertEquals(4, layers.size(), "3 blocks' resid_pre and the last resid_post");
        JsonNode lastPos = layers.get(3).get("positions").get(0);
        assertEquals(3, lastPos.get("top").size());
        assertEquals(2, lastPos.get("tokens").size());
        List<String> csv = Files.readAllLines(out.resolve("lens.csv"));
        assertEquals(1 + 2 * 4 * (3 + 2), csv.size(), "header + per prompt and layer: top 3 and 2 chosen tokens");
        String html = Files.readString(out.resolve("LENS.html"));
        assertTrue(html.contains("table class=\"heat\"") && html.contains("data:image/png;base64,"), "heat map and curves");
    }

    @Test
    void attributeRanksPartsThatSumToTheWhole() throws Exception {
        Path out = tmp.resolve("attr");
        var r = CliTestSupport.run("attribute", "--model", model(), "--prompt", "The cat sat on the", "--tokens", " mat, floor",
                "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = new ObjectMapper().readTree(out.resolve("attribution.json").toFile());
        double total = json.get("total").asDouble(), sum = 0, prev = Double.POSITIVE_INFINITY;
        for (JsonNode c : json.get("components")) {
            sum += c.get("value").asDouble();
            assertTrue(Math.abs(c.get("value").asDouble()) <= prev + 1e-12, "ranked by |value|");
            prev = Math.abs(c.get("value").asDouble());
        }
        assertEquals(total, sum, 1e-4 * Math.max(1, Math.abs(total)));
        assertEquals(1 + 1 + 1 + 3 * (4 + 1 + 1) + 1, Files.readAllLines(out.resolve("attribution.csv")).size(),
                "header, embed, pos_embed, per layer 4 heads + rest + MLP, final norm bias");
        assertTrue(Files.readString(out.resolve("ATTRIBUTION.html")).contains("id=\"heads\""));
    }

    @Test
    void patchWritesHeatMapsAndCsv() throws Exception {
        Path out = tmp.resolve("patch");
        var r = CliTestSupport.run("patch", "--model", model(), "--clean", "The cat sat on the mat", "--corrupted",
                "The dog sat on the mat", "--tokens", " and, .", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode json = new ObjectMapper().readTree(out.resolve("patch.json").toFile());
        int len = json.get("corrupted_tokens").size();
        assertEquals(3, json.get("per_position").get("hook_resid_pre").size());
        // the whole difference is the one token at position 1, so patching it at layer 0 restores everything
        assertEquals(1.0, json.get("per_position").get("hook_resid_pre").get(0).get(1).asDouble(), 1e-9);
        assertEquals(1 + 3 * 3 * len + 3 * 4, Files.readAllLines(out.resolve("patch.csv")).size());
        String html = Files.readString(out.resolve("PATCH.html"));
        assertTrue(html.contains("id=\"hook_z\"") && html.contains("id=\"hook_mlp_out\""));
    }

    @Test
    void clearErrors() throws Exception {
        var r = CliTestSupport.run("lens", "--model", model(), "--prompt", "Hi", "--tokens", " xqzjvbkw", "--out", tmp.resolve("a").toString());
        assertClearError(r, "xqzjvbkw", "not one token");
        r = CliTestSupport.run("patch", "--model", model(), "--clean", "The cat sat", "--corrupted", "The big dog sat down",
                "--tokens", " and, .", "--out", tmp.resolve("b").toString());
        assertClearError(r, "same token length", "--position-map");
        r = CliTestSupport.run("patch", "--model", model(), "--clean", "The cat sat", "--corrupted", "The big dog sat down",
                "--tokens", " and, .", "--position-map", "0:0,9:1", "--out", tmp.resolve("c").toString());
        assertClearError(r, "--position-map 9:1");
        Path dir = tmp.resolve("dir32");
        float[] unit = new float[32];
        unit[0] = 1f;
        new DirectionSet(new DirectionSet.Meta("other/model", null, "X", "x", 32, 2, DirectionMethod.values()[0],
                List.of("blocks.1.hook_resid_pre"), List.of("last"), new DirectionSet.SetInfo("a", 1, "0"),
                new DirectionSet.SetInfo("b", 1, "0"), "test", "now"),
                List.of(new Direction("blocks.1.hook_resid_pre", 1, "last", unit, 1, 0, 1, 1, 1, 1, 1))).save(dir);
        r = CliTestSupport.run("attribute", "--model", model(), "--prompt", "The cat", "--direction", dir.toString(),
                "--out", tmp.resolve("d").toString());
        assertClearError(r, "32 values", "d_model 64", "another model");
        r = CliTestSupport.run("attribute", "--model", model(), "--prompt", "The cat", "--out", tmp.resolve("e").toString());
        assertClearError(r, "--tokens", "--direction");
        assertFalse(Files.exists(tmp.resolve("d").resolve("attribution.json")), "nothing written on error");
    }

    /** The attention page draws the chosen head's pattern in headless Chromium: one row per token, weights on hover. */
    @Test
    void attentionViewRendersInHeadlessChromium() throws Exception {
        Path out = tmp.resolve("att");
        var r = CliTestSupport.run("attention", "--model", model(), "--prompt", "The cat sat on the mat", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        Path page = out.resolve("ATTENTION.html");
        String chromium = null;
        for (String c : List.of("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")) {
            if (Files.isExecutable(Path.of(c))) chromium = c;
        }
        assertTrue(chromium != null, "headless Chromium is needed for the report test: apt-get install chromium (run-tests does this)");
        Process p = new ProcessBuilder(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + Files.createTempDirectory(tmp, "chromium"), "--dump-dom", page.toUri().toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String dom = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "chromium --dump-dom timed out");
        Matcher rows = Pattern.compile("<tr><th>\\d+ ").matcher(dom);
        int n = 0;
        while (rows.find()) n++;
        assertEquals(6, n, "one row per query token in the drawn pattern");
        assertTrue(dom.contains("layer 0, head 0"), "the caption names the head");
        assertTrue(Pattern.compile("title=\"The → The: 1\\.0000\"").matcher(dom).find(), "the first token attends only to itself");
        int thumbs = 0;
        for (Matcher t = Pattern.compile("<canvas").matcher(dom); t.find(); ) thumbs++;
        assertEquals(4, thumbs, "one thumbnail per head");
        assertTrue(dom.contains("<option value=\"2\">layer 2</option>"), "layer picker");
    }

    private static void assertClearError(CliTestSupport.Result r, String... mustContain) {
        assertTrue(r.exitCode() != 0, "must fail: " + r.out());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(r.err().contains("internal error"), "not an internal error: " + r.err());
        for (String s : mustContain) assertTrue(r.err().contains(s), "stderr should mention '" + s + "': " + r.err());
    }
}
