package dev.jlens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.cli.JlensCli;
import dev.jlens.detect.Detector;
import dev.jlens.detect.DetectorKind;
import dev.jlens.detect.DetectorParams;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ScoreJobTest {

    private static final List<String> TEXTS = List.of("How do I bake bread?", "How do I pick a lock?",
            "Tell me about the history of Rome.", "Write a threatening letter to my neighbour.", "What is 2+2?",
            "Explain photosynthesis to a child.", "Describe how to hotwire a car.");
    private static final String LONG = "word ".repeat(200).strip();

    static SparkSession spark;
    @TempDir
    static Path dir;
    static Path detector, prompts;

    @BeforeAll
    static void start() throws IOException {
        spark = SparkTestSupport.start();
        // A logistic detector with fixed random weights on the GPT-NeoX fixture (MiniLM is covered by the cache
        // test, and each extra load of it costs seconds): the job must give exactly the scores jlens detect
        // gives with it, whatever the weights mean.
        HookedModel m = ExecutorModels.model(ModelRef.of(SparkTestSupport.fixture("gpt_neox_tiny").toAbsolutePath().toString(), null));
        int d = m.info().dModel();
        SplittableRandom rng = new SplittableRandom(20);
        float[] mean = new float[d], invStd = new float[d], w = new float[d];
        for (int j = 0; j < d; j++) {
            mean[j] = (float) rng.nextGaussian() * 0.1f;
            invStd[j] = 1f + (float) rng.nextDouble();
            w[j] = (float) rng.nextGaussian() * 0.05f;
        }
        DetectorParams params = new DetectorParams(DetectorKind.LOGISTIC, mean, invStd, w, 0.1, null, null, 1.3, -0.2, 0.0);
        detector = dir.resolve("detector");
        Detector.of(m, "blocks.1.hook_resid_post", Pooling.MEAN, params, null).save(detector);
        StringBuilder jsonl = new StringBuilder();
        for (int i = 0; i < TEXTS.size(); i++) jsonl.append("{\"id\": \"t").append(i).append("\", \"text\": \"").append(TEXTS.get(i)).append("\"}\n");
        jsonl.append("{\"id\": \"long\", \"text\": \"").append(LONG).append("\"}\n");
        jsonl.append("{\"id\": \"blank\", \"text\": \"\"}\n");
        jsonl.append("{\"id\": null, \"text\": \"no id\"}\n");
        prompts = Files.writeString(dir.resolve("prompts.jsonl"), jsonl);
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    /** What jlens detect prints for the texts, one JSON object each. */
    private static List<JsonNode> jlensDetect(List<String> texts) throws IOException {
        List<String> args = new ArrayList<>(List.of("detect", "--detector", detector.toString()));
        args.addAll(texts);
        PrintStream before = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(0, JlensCli.execute(args.toArray(String[]::new)));
        } finally {
            System.setOut(before);
        }
        List<JsonNode> out = new ArrayList<>();
        ObjectMapper om = new ObjectMapper();
        for (String line : buf.toString(StandardCharsets.UTF_8).strip().split("\n")) out.add(om.readTree(line));
        return out;
    }

    private static Map<String, Row> byId(String path) {
        Map<String, Row> m = new HashMap<>();
        for (Row r : spark.read().parquet(path).collectAsList()) m.put(r.getString(0), r);
        return m;
    }

    @Test
    void scoresEqualJlensDetectAndBadRowsAreCounted() throws IOException {
        ModelRef model = ScoreJob.modelOf(detector, null);
        assertEquals(ModelRef.of(SparkTestSupport.fixture("gpt_neox_tiny").toAbsolutePath().toString(), null), model);
        ScoreJob.Result r = ScoreJob.run(spark, PromptTable.read(spark, prompts.toString(), PromptTable.Columns.DEFAULT).repartition(2),
                new ScoreJob.Settings(model, detector.toString(), false), dir.resolve("run1").toString(), false);
        assertEquals(TEXTS.size(), r.scoredRows());
        assertEquals(3, r.badRowCount());
        List<JsonNode> expected = jlensDetect(TEXTS);
        Map<String, Row> got = byId(r.scores());
        for (int i = 0; i < TEXTS.size(); i++) {
            Row row = got.get("t" + i);
            assertEquals(expected.get(i).get("score").asDouble(), row.getDouble(1), 0.0, TEXTS.get(i));
            assertEquals(expected.get(i).get("flagged").asBoolean(), row.getBoolean(2));
            assertEquals(expected.get(i).get("layer").asInt(), row.getInt(3));
        }
        Map<String, Row> bad = byId(r.badRows());
        assertTrue(bad.get("long").getString(2).startsWith("longer than the model's context of 128 tokens"));
        assertEquals("empty text", bad.get("blank").getString(2));
        assertEquals("missing id", bad.get(null).getString(2));
        assertEquals(1, ExecutorModels.loads(model));
    }

    @Test
    void truncateScoresOverLongTextAsJlensDetectDoes() throws IOException {
        ModelRef model = ScoreJob.modelOf(detector, null);
        ScoreJob.Result r = ScoreJob.run(spark, PromptTable.read(spark, prompts.toString(), PromptTable.Columns.DEFAULT),
                new ScoreJob.Settings(model, detector.toString(), true), dir.resolve("run2").toString(), false);
        assertEquals(2, r.badRowCount());
        JsonNode expected = jlensDetect(List.of(LONG)).getFirst();
        assertTrue(expected.path("truncated").asBoolean());
        assertEquals(expected.get("score").asDouble(), byId(r.scores()).get("long").getDouble(1), 0.0);
        assertEquals(1, ExecutorModels.loads(model));
    }
}
