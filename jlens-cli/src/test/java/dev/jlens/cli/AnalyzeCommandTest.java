package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.io.safetensors.SafetensorsFile;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `jlens analyze` end to end on the fixture GPT-NeoX with the built-in sets: every output is written, the
 * table is printed, and REPORT.html renders in headless Chromium with non-empty charts.
 */
class AnalyzeCommandTest {

    @TempDir
    static Path tmp;
    static Path out;
    static CliTestSupport.Result result;

    @BeforeAll
    static void run() {
        out = tmp.resolve("analyze");
        result = CliTestSupport.run("analyze", "--model", CliTestSupport.fixtures().resolve("gpt_neox_tiny").toString(),
                "--bootstrap", "200", "--permutations", "200", "--out", out.toString());
    }

    @Test
    void writesEveryOutput() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        for (String f : List.of("metrics.csv", "metrics.json", "REPORT.html", "activations.safetensors", "activations.json", "prompts.jsonl")) {
            assertTrue(Files.size(out.resolve(f)) > 0, f);
        }
        List<String> csv = Files.readAllLines(out.resolve("metrics.csv"));
        assertEquals(1 + 3, csv.size(), "header + one row per layer");
        for (String col : List.of("layer", "hook", "cos_raw", "cos_centered", "cos_std", "l2_raw", "l2_rel", "norm_A", "norm_B",
                "disp_A", "disp_B", "disp_ratio", "probe_auroc")) {
            assertTrue(List.of(csv.getFirst().split(",")).contains(col), "column " + col);
        }
        JsonNode json = new ObjectMapper().readTree(out.resolve("metrics.json").toFile());
        assertTrue(json.get("complete").asBoolean());
        assertEquals(3, json.get("layers").size());
        assertTrue(json.get("peaks").has("probe_auroc"));
        // the words-only baselines, cross-validated like the probe, with intervals
        for (String b : List.of("tf-idf", "length")) {
            double auc = json.at("/baselines/" + b + "/auroc").asDouble(Double.NaN);
            assertTrue(auc >= 0 && auc <= 1, b + " " + auc);
            assertTrue(json.at("/baselines/" + b + "/ci_lo").asDouble() <= auc, b);
        }
        assertTrue(result.out().contains("baselines (words only"), result.out());
        // the same prompts cut by writing style: the built-in sets have 45 of each class in the held-out styles
        JsonNode style = json.get("style_split");
        assertEquals(List.of("rambling", "casual", "non-english"), new ObjectMapper().convertValue(style.get("held_out_styles"), List.class));
        assertEquals(45, style.at("/test/harmless").asInt());
        assertEquals(45, style.at("/test/harmful").asInt());
        assertEquals(3, style.get("probe_auroc").size(), "one figure per hook");
        for (JsonNode e : style.get("probe_auroc")) assertTrue(e.get("ci_lo").asDouble() <= e.get("auroc").asDouble(), e.toString());
        assertTrue(style.get("probe_auroc").has(style.get("best_hook").asText()));
        assertTrue(style.at("/baselines/tf-idf").has("auroc"));
        assertTrue(result.out().contains("style split (train on the other styles, test = rambling, casual, non-english: 45 harmless, 45 harmful)"),
                result.out());
        assertTrue(Files.readString(out.resolve("REPORT.html")).contains("<b>Against the words</b>"));
        assertTrue(Files.readString(out.resolve("REPORT.html")).contains("<b>Held-out styles</b>: style split (train on the other styles"));
        SafetensorsFile acts = SafetensorsFile.open(out.resolve("activations.safetensors"));
        long prompts = Files.readAllLines(out.resolve("prompts.jsonl")).size();
        assertEquals(prompts, acts.require("blocks.2.hook_resid_post").shape()[0]);
        assertTrue(result.out().contains("blocks.2.hook_resid_post"), result.out());
        assertTrue(result.out().contains("peak probe_auroc"), result.out());
    }

    @Test
    void reportRendersInHeadlessChromiumWithNonEmptyCharts() throws Exception {
        assertEquals(0, result.exitCode(), result.err());
        Path report = out.resolve("REPORT.html");
        String html = Files.readString(report);
        Matcher m = Pattern.compile("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"").matcher(html);
        List<BufferedImage> charts = new ArrayList<>();
        while (m.find()) charts.add(ImageIO.read(new ByteArrayInputStream(Base64.getDecoder().decode(m.group(1)))));
        assertTrue(charts.size() >= 6, "expected at least 6 charts, found " + charts.size());
        for (BufferedImage img : charts) {
            assertTrue(img.getWidth() >= 600 && img.getHeight() >= 300, "chart size " + img.getWidth() + "x" + img.getHeight());
            assertTrue(distinctColours(img) > 20, "a chart is blank");
        }

        String chromium = findChromium();
        Path profile = Files.createTempDirectory(tmp, "chromium");
        Path shot = tmp.resolve("report.png");
        List<String> base = List.of(chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + profile, "--window-size=1400,2400");
        List<String> dump = new ArrayList<>(base);
        dump.add("--dump-dom");
        dump.add(report.toUri().toString());
        Process p = new ProcessBuilder(dump).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String dom = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "chromium --dump-dom timed out");
        int imgs = 0;
        for (Matcher im = Pattern.compile("<img[^>]+src=\"data:image/png;base64,").matcher(dom); im.find(); ) imgs++;
        assertEquals(charts.size(), imgs, "Chromium's DOM holds every chart");
        assertTrue(dom.contains("Where do harmless and harmful prompts separate?"));

        List<String> screenshot = new ArrayList<>(base);
        screenshot.add("--screenshot=" + shot);
        screenshot.add(report.toUri().toString());
        Process s = new ProcessBuilder(screenshot).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertTrue(s.waitFor(60, TimeUnit.SECONDS), "chromium --screenshot timed out");
        BufferedImage page = ImageIO.read(shot.toFile());
        assertTrue(page != null && distinctColours(page) > 50, "the rendered page shows the charts");
    }

    private static String findChromium() {
        for (String c : List.of("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")) {
            if (Files.isExecutable(Path.of(c))) return c;
        }
        throw new AssertionError("headless Chromium is needed for the report test: apt-get install chromium (run-tests does this)");
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
