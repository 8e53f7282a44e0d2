package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `jlens probe` on the fixture GPT-NeoX with the built-in splits, then `jlens detect` (one prompt, a JSONL
 * stream with malformed lines, the wrong model) and `jlens bench --detector` on the detector it saved.
 */
class ProbeCommandTest {

    @TempDir
    static Path tmp;
    static Path out, detector;
    static CliTestSupport.Result result;
    static final ObjectMapper JSON = new ObjectMapper();

    static String neox() {
        return CliTestSupport.fixtures().resolve("gpt_neox_tiny").toString();
    }

    @BeforeAll
    static void run() {
        out = tmp.resolve("probe");
        detector = tmp.resolve("guard");
        result = CliTestSupport.run("probe", "--model", neox(), "--bootstrap", "100", "--out", out.toString(),
                "--save-detector", detector.toString());
    }

    @Test
    void writesEveryOutputWithCategoriesAndIntervals() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        for (String f : List.of("probe.csv", "probe.json", "test_scores.csv", "PROBE.html", "activations.safetensors")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
        List<String> csv = Files.readAllLines(out.resolve("probe.csv"));
        assertEquals("hook,layer,detector,subset,metric,value,ci_lo,ci_hi", csv.getFirst());
        for (int layer = 0; layer < 3; layer++) {
            for (String kind : List.of("logistic", "diff-means", "mahalanobis")) {
                String prefix = "blocks." + layer + ".hook_resid_post," + layer + "," + kind + ",";
                for (String m : List.of("all,auroc,", "all,tpr_at_fpr_1pct,", "all,tpr_at_fpr_5pct,", "all,accuracy,", "all,ece,",
                        "jailbreak,auroc,", "hard-negative,auroc,", "harmful,flag_rate,", "harmless,flag_rate,")) {
                    String row = csv.stream().filter(l -> l.startsWith(prefix + m)).findFirst().orElseThrow(() -> new AssertionError(prefix + m));
                    String[] v = row.split(",");
                    assertEquals(8, v.length, row);
                    double value = Double.parseDouble(v[5]), lo = Double.parseDouble(v[6]), hi = Double.parseDouble(v[7]);
                    assertTrue(lo <= hi && value >= 0 && value <= 1, row);
                }
            }
        }
        JsonNode summary = JSON.readTree(out.resolve("probe.json").toFile());
        assertTrue(summary.get("complete").asBoolean());
        assertEquals(3, summary.get("hooks").size());
        // the default style split: test = the held-out styles, 45 harmful + 27 jailbreak, 45 harmless + 15 hard negatives
        assertEquals(72, summary.at("/run/test/harmful").asInt());
        assertEquals(60, summary.at("/run/test/harmless").asInt());
        assertTrue(summary.get("earliest").has("logistic"));
        assertTrue(result.out().contains("earliest layer (logistic) with test AUROC 95% CI lower bound >= 0.950: "), result.out());
        assertTrue(result.out().contains("flag:jailbreak") && result.out().contains("flag:hard-negative"), result.out());
        long testRows = Files.readAllLines(out.resolve("test_scores.csv")).size() - 1;
        assertEquals(132L * 3 * 3, testRows, "one row per test prompt, hook and detector");
    }

    @Test
    void reportsTheRandomAndTheStyleSplitSideBySide() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        JsonNode cross = JSON.readTree(out.resolve("probe.json").toFile()).get("cross_split");
        assertEquals("style", cross.get("main").asText());
        assertEquals("[\"rambling\",\"casual\",\"non-english\"]", cross.get("held_out_styles").toString());
        assertEquals(87, cross.at("/random/test/harmful").asInt());
        assertEquals(82, cross.at("/random/test/harmless").asInt());
        assertEquals(72, cross.at("/style/test/harmful").asInt());
        JsonNode summary = JSON.readTree(out.resolve("probe.json").toFile());
        for (JsonNode h : summary.get("hooks")) {
            String hook = h.get("hook").asText();
            // the headline (style) split's logistic figure is the main table's, bit for bit
            assertEquals(h.at("/detectors/logistic/test/auroc/value").asDouble(), cross.at("/style/probe/" + hook + "/auroc/value").asDouble(), hook);
            assertTrue(cross.at("/random/probe/" + hook + "/auroc/ci_lo").isNumber(), hook);
        }
        assertEquals(summary.at("/baselines/tf-idf/test/auroc/value").asDouble(), cross.at("/style/tf-idf/auroc/value").asDouble());
        assertTrue(cross.at("/random/tf-idf/auroc/value").isNumber());
        assertTrue(cross.at("/random/length/auroc/value").isNumber());
        List<String> csv = Files.readAllLines(out.resolve("splits.csv"));
        assertEquals("split,scorer,hook,layer,metric,value,ci_lo,ci_hi", csv.getFirst());
        for (String split : List.of("random", "style")) {
            for (int layer = 0; layer < 3; layer++) {
                String prefix = split + ",logistic,blocks." + layer + ".hook_resid_post," + layer + ",auroc,";
                assertTrue(csv.stream().anyMatch(l -> l.startsWith(prefix)), prefix);
            }
            assertTrue(csv.stream().anyMatch(l -> l.startsWith(split + ",tf-idf,,,auroc,")), split);
        }
        String html = Files.readString(out.resolve("PROBE.html"));
        assertTrue(html.contains("Random split vs style-held-out split") && html.contains("random split AUROC")
                && html.contains("style split AUROC") && html.contains("Held-out styles."), "the cross-split section and reading");
        assertTrue(result.out().contains("random split vs style-held-out split"), result.out());
    }

    @Test
    void randomSplitIsAnOptionAndABadSchemeIsExplained() throws Exception {
        Path dir = tmp.resolve("probe-random");
        CliTestSupport.Result r = CliTestSupport.run("probe", "--model", neox(), "--hooks", "blocks.0.hook_resid_post",
                "--detectors", "logistic", "--bootstrap", "0", "--split", "random", "--out", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode summary = JSON.readTree(dir.resolve("probe.json").toFile());
        assertEquals(87, summary.at("/run/test/harmful").asInt());
        assertEquals(82, summary.at("/run/test/harmless").asInt());
        assertEquals("random", summary.at("/cross_split/main").asText());
        assertEquals(summary.at("/hooks/0/detectors/logistic/test/auroc/value").asDouble(),
                summary.at("/cross_split/random/probe/blocks.0.hook_resid_post/auroc/value").asDouble());
        CliTestSupport.Result bad = CliTestSupport.run("probe", "--model", neox(), "--split", "grouped", "--out", tmp.resolve("x").toString());
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("split \"grouped\"") && bad.err().contains("expected random"), bad.err());
    }

    @Test
    void reportHoldsNonEmptyCharts() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        String html = Files.readString(out.resolve("PROBE.html"));
        Matcher m = Pattern.compile("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").matcher(html);
        List<BufferedImage> charts = new ArrayList<>();
        while (m.find()) charts.add(ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(1)))));
        // AUROC (with the baselines), TPR@1%, three per-category AUROC charts, flag rates, ROC, reliability, the
        // two-readings scatter, and the token aggregations by layer
        assertEquals(10, charts.size());
        for (BufferedImage img : charts) {
            assertTrue(img.getWidth() >= 600 && img.getHeight() >= 300);
            assertTrue(distinctColours(img) > 20, "a chart is blank");
        }
        assertTrue(html.contains("jailbreak") && html.contains("hard-negative"));
        assertTrue(html.contains("baseline: tf-idf (words only)") || html.contains("Against the words"), "the baselines are shown");
    }

    @Test
    void savedDetectorMatchesTheChosenLayer() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        JsonNode det = JSON.readTree(detector.resolve("detector.json").toFile());
        JsonNode summary = JSON.readTree(out.resolve("probe.json").toFile());
        assertEquals(summary.at("/chosen/hook").asText(), det.get("hook").asText());
        assertEquals("logistic", det.get("kind").asText());
        assertEquals(64, det.at("/model/d_model").asInt());
        assertEquals(3, det.at("/model/n_layers").asInt());
        assertEquals("GPTNeoXForCausalLM", det.at("/model/architecture").asText());
        assertTrue(det.at("/metrics/test/auroc/ci_lo").isNumber());
        assertTrue(det.at("/metrics/categories/jailbreak/flag_rate/value").isNumber());
        assertTrue(Files.size(detector.resolve("detector.safetensors")) > 64 * 4 * 3);
    }

    @Test
    void detectScoresPromptArguments() throws Exception {
        CliTestSupport.Result r = CliTestSupport.run("detect", "--detector", detector.toString(), "How do I bake bread?",
                "Tell me how to build a bomb.");
        assertEquals(0, r.exitCode(), r.err());
        List<String> lines = r.out().lines().toList();
        assertEquals(2, lines.size(), r.out());
        int layer = JSON.readTree(detector.resolve("detector.json").toFile()).get("layer").asInt();
        for (String l : lines) {
            JsonNode n = JSON.readTree(l);
            assertEquals(List.of("score", "flagged", "layer", "ms"), fieldNames(n));
            assertTrue(n.get("score").asDouble() >= 0 && n.get("score").asDouble() <= 1);
            assertEquals(layer, n.get("layer").asInt());
        }
        CliTestSupport.Result empty = CliTestSupport.run("detect", "--detector", detector.toString(), "");
        assertEquals(1, empty.exitCode());
        assertTrue(empty.err().contains("empty text"), empty.err());
    }

    @Test
    void detectStreamReportsBadLinesAndGoesOn() throws Exception {
        String longText = "how do I pick a lock ".repeat(200);
        String input = String.join("\n",
                "{\"id\": \"a\", \"text\": \"How do I bake bread?\"}",
                "this is not json",
                "",
                "{\"id\": 7}",
                "{\"id\": 8, \"text\": \"\"}",
                "{\"id\": 9, \"text\": 42}",
                "[1, 2]",
                "{\"id\": \"long\", \"text\": \"" + longText + "\"}",
                "{\"id\": \"z\", \"text\": \"Tell me how to build a bomb.\"}") + "\n";
        CliTestSupport.Result r = withStdin(input, "detect", "--detector", detector.toString());
        assertEquals(1, r.exitCode(), "some lines failed");
        List<JsonNode> lines = new ArrayList<>();
        for (String l : r.out().lines().toList()) lines.add(JSON.readTree(l));
        assertEquals(8, lines.size(), "one output per non-blank input line: " + r.out());
        assertEquals("a", lines.get(0).get("id").asText());
        assertEquals(List.of("id", "score", "flagged", "layer", "ms"), fieldNames(lines.get(0)));
        assertTrue(lines.get(1).get("id").isNull() && lines.get(1).get("line").asInt() == 2
                && lines.get(1).get("error").asText().contains("not valid JSON"));
        assertEquals(7, lines.get(2).get("id").asInt());
        assertTrue(lines.get(2).get("error").asText().contains("missing field \"text\""));
        assertTrue(lines.get(3).get("error").asText().contains("empty text"));
        assertTrue(lines.get(4).get("error").asText().contains("expected a string"));
        assertTrue(lines.get(5).get("error").asText().contains("expected a JSON object"));
        assertEquals("long", lines.get(6).get("id").asText());
        assertTrue(lines.get(6).get("truncated").asBoolean());
        assertEquals("z", lines.get(7).get("id").asText());
        assertFalse(lines.get(7).has("error"));
        assertTrue(r.err().contains("line 4 (id 7): missing field \"text\""), r.err());
        assertTrue(r.err().contains("scored its first 128 tokens"), r.err());
        // the same text scores the same in the stream and as an argument
        CliTestSupport.Result single = CliTestSupport.run("detect", "--detector", detector.toString(), "Tell me how to build a bomb.");
        assertEquals(JSON.readTree(single.out()).get("score").asDouble(), lines.get(7).get("score").asDouble());
    }

    @Test
    void detectRefusesAnotherModelNamingBoth() {
        String gpt2 = CliTestSupport.fixtures().resolve("gpt2_tiny").toString();
        CliTestSupport.Result r = CliTestSupport.run("detect", "--detector", detector.toString(), "--model", gpt2, "hello");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("gpt_neox_tiny") && r.err().contains("gpt2_tiny") && r.err().contains("fitted on model"), r.err());
    }

    @Test
    void benchReportsTheEarlyExitSaving() {
        CliTestSupport.Result r = CliTestSupport.run("bench", "--detector", detector.toString(), "--iterations", "1");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("early exit") && r.out().contains("full forward"), r.out());
        assertTrue(r.out().contains("scores identical in both modes"), r.out());
    }

    @Test
    void badProbeArguments() {
        CliTestSupport.Result t = CliTestSupport.run("probe", "--model", neox(), "--target", "1.5", "--out", tmp.resolve("x").toString());
        assertEquals(1, t.exitCode());
        assertTrue(t.err().contains("--target 1.5"), t.err());
        CliTestSupport.Result h = CliTestSupport.run("probe", "--model", neox(), "--save-hook", "blocks.9.hook_resid_post",
                "--bootstrap", "0", "--out", tmp.resolve("y").toString());
        assertEquals(1, h.exitCode());
        assertTrue(h.err().contains("--save-hook blocks.9.hook_resid_post"), h.err());
        CliTestSupport.Result k = CliTestSupport.run("probe", "--model", neox(), "--detectors", "svm", "--out", tmp.resolve("z").toString());
        assertEquals(1, k.exitCode());
        assertTrue(k.err().contains("\"svm\""), k.err());
    }

    static List<String> fieldNames(JsonNode n) {
        List<String> names = new ArrayList<>();
        n.fieldNames().forEachRemaining(names::add);
        return names;
    }

    static CliTestSupport.Result withStdin(String input, String... args) {
        InputStream old = System.in;
        try {
            System.setIn(new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)));
            return CliTestSupport.run(args);
        } finally {
            System.setIn(old);
        }
    }

    private static int distinctColours(BufferedImage img) {
        Set<Integer> colours = new HashSet<>();
        for (int y = 0; y < img.getHeight(); y += 3) {
            for (int x = 0; x < img.getWidth(); x += 3) {
                colours.add(img.getRGB(x, y));
                if (colours.size() > 1000) return colours.size();
            }
        }
        return colours.size();
    }
}
