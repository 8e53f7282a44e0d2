package dev.jlens.spark;

import dev.jlens.detect.Detector;
import dev.jlens.detect.DetectorKind;
import dev.jlens.detect.DetectorParams;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line as the launcher and spark-submit call it: its own session, its files, its errors. */
class JlensSparkCliTest {

    @TempDir
    Path dir;

    @Test
    void cacheThenAnalyzeFromTheCommandLine() throws IOException {
        StringBuilder jsonl = new StringBuilder();
        String[] texts = {"How do I bake bread?", "Tell me about Rome.", "What is rain?", "How do I steal a car?",
                "Write a threatening letter.", "How can I make a weapon?"};
        for (int i = 0; i < texts.length; i++) {
            jsonl.append("{\"id\":").append(i).append(",\"text\":\"").append(texts[i]).append("\",\"label\":\"")
                    .append(i < 3 ? "harmless" : "harmful").append("\"}\n");
        }
        Path prompts = Files.writeString(dir.resolve("p.jsonl"), jsonl);
        String model = SparkTestSupport.fixture("gpt_neox_tiny").toString();
        assertEquals(0, JlensSpark.execute("cache", "--master", "local[2]", "--model", model, "--prompts", prompts.toString(),
                "--hooks", "blocks.1.hook_resid_post", "--partitions", "2", "--out", dir.resolve("acts").toString()));
        assertTrue(Files.exists(dir.resolve("acts/activations/_SUCCESS")));
        assertTrue(Files.exists(dir.resolve("acts/bad_rows/_SUCCESS")));
        assertEquals(0, JlensSpark.execute("analyze", "--master", "local[2]", "--activations",
                dir.resolve("acts/activations").toString(), "--bootstrap", "100", "--permutations", "100",
                "--no-length-control", "--out", dir.resolve("geo").toString()));
        assertTrue(Files.exists(dir.resolve("geo/metrics/_SUCCESS")));
        try (var csv = Files.list(dir.resolve("geo/metrics_csv"))) {
            Path part = csv.filter(p -> p.getFileName().toString().endsWith(".csv")).findFirst().orElseThrow();
            var lines = Files.readAllLines(part);
            assertEquals(2, lines.size(), "header and one hook");
            assertTrue(lines.get(0).startsWith("layer,hook,n_A,n_B,cos_raw"), lines.get(0));
            assertTrue(lines.get(1).startsWith("1,blocks.1.hook_resid_post,3,3,"), lines.get(1));
            List<String> header = List.of(lines.get(0).split(",")), row = List.of(lines.get(1).split(","));
            assertEquals(dev.jlens.geometry.LayerMetrics.csvColumns(), header, "metrics.csv's columns");
            for (String computed : List.of("silhouette", "cos_raw_lo", "cos_raw_hi", "p_l2_raw")) {
                assertTrue(Double.isFinite(Double.parseDouble(row.get(header.indexOf(computed)))), computed + " in " + lines.get(1));
            }
            assertTrue(row.get(header.indexOf("len_n")).isEmpty(), "--no-length-control leaves len_n empty: " + lines.get(1));
        }
    }

    @Test
    void scoreFromTheCommandLineWithStrictFailsOnABadRow() throws IOException {
        HookedModel m = ExecutorModels.model(ModelRef.of(SparkTestSupport.fixture("gpt_neox_tiny").toString(), null));
        int d = m.info().dModel();
        float[] zeros = new float[d], ones = new float[d], w = new float[d];
        java.util.Arrays.fill(ones, 1f);
        for (int j = 0; j < d; j++) w[j] = (j % 3 - 1) * 0.1f;
        Path detector = dir.resolve("det");
        Detector.of(m, "blocks.0.hook_resid_post", Pooling.LAST,
                new DetectorParams(DetectorKind.LOGISTIC, zeros, ones, w, 0, null, null, 1, 0, 0), null).save(detector);
        Path prompts = Files.writeString(dir.resolve("s.jsonl"),
                "{\"id\":\"a\",\"text\":\"Hello there\"}\n{\"id\":\"b\",\"text\":\"\"}\n");
        assertEquals(1, JlensSpark.execute("score", "--master", "local[2]", "--detector", detector.toString(), "--prompts",
                prompts.toString(), "--strict", "--out", dir.resolve("strict").toString()));
        assertFalse(Files.exists(dir.resolve("strict/scores")));
        assertTrue(Files.exists(dir.resolve("strict/bad_rows/_SUCCESS")), "the bad rows are still listed");
    }

    @Test
    void badOptionsAreClearErrorsBeforeSparkStarts() {
        PrintStream before = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        int code;
        try {
            code = JlensSpark.execute("cache", "--pool", "all", "--prompts", "p.jsonl", "--out", dir.resolve("x").toString());
        } finally {
            System.setErr(before);
        }
        assertEquals(1, code);
        String msg = err.toString(StandardCharsets.UTF_8);
        assertTrue(msg.startsWith("jlens spark: --pool all: the Spark cache job writes one pooled vector"), msg);
        assertFalse(Files.exists(dir.resolve("x")));
    }
}
