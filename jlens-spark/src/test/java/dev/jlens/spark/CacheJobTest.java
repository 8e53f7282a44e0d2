package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.hooks.Pooling;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CacheJobTest {

    private static final List<String> GOOD = List.of(
            "The cat sat on the mat.", "How do I bake bread?", "Paris is the capital of France.",
            "Write a poem about the sea.", "Hello", "What is two plus two?", "Spark runs jobs on many machines.",
            "The quick brown fox jumps over the lazy dog.", "Tell me a story about a dragon.", "Why is the sky blue?");
    private static final String NEOX_HOOKS = "blocks.*.hook_resid_post";

    static SparkSession spark;
    @TempDir
    static Path dir;
    static Path goodJsonl, mixedJsonl;
    static Map<String, float[][]> neoxMean;

    @BeforeAll
    static void start() throws IOException {
        spark = SparkTestSupport.start();
        StringBuilder good = new StringBuilder(), mixed = new StringBuilder();
        for (int i = 0; i < GOOD.size(); i++) {
            String line = "{\"id\": \"p" + i + "\", \"text\": \"" + GOOD.get(i) + "\", \"label\": \"" + (i % 2 == 0 ? "harmless" : "harmful") + "\"}\n";
            good.append(line);
            mixed.append(line);
            if (i == 3) mixed.append("{\"id\": \"empty\", \"text\": \"   \"}\n");
            if (i == 6) mixed.append("{\"text\": \"a prompt without an id\"}\n");
        }
        mixed.append("{\"id\": \"long\", \"text\": \"").append("many words again ".repeat(60)).append("\"}\n");
        goodJsonl = Files.writeString(dir.resolve("good.jsonl"), good);
        mixedJsonl = Files.writeString(dir.resolve("mixed.jsonl"), mixed);
        neoxMean = SparkTestSupport.jlensCache(dir.resolve("ref-neox"), "--model", SparkTestSupport.fixture("gpt_neox_tiny").toString(),
                "--prompts", goodJsonl.toString(), "--hooks", NEOX_HOOKS, "--pool", "mean");
    }

    @AfterAll
    static void stop() {
        spark.stop();
    }

    private static CacheJob.Settings neox(FailureInjection failure) {
        return new CacheJob.Settings(ModelRef.of(SparkTestSupport.fixture("gpt_neox_tiny").toString(), null), NEOX_HOOKS,
                Pooling.MEAN, 2, false, failure);
    }

    private static Dataset<Row> prompts(Path file, int partitions) {
        return PromptTable.read(spark, file.toString(), PromptTable.Columns.DEFAULT).repartition(partitions);
    }

    /** id -> hook -> vector from the job's Parquet output, checking there is exactly one row per (id, hook). */
    private static Map<String, Map<String, float[]>> readActivations(String path) {
        Map<String, Map<String, float[]>> out = new HashMap<>();
        for (Row r : spark.read().parquet(path).collectAsList()) {
            float[] prev = out.computeIfAbsent(r.getString(0), k -> new HashMap<>()).put(r.getString(2), SparkTestSupport.vector(r));
            assertEquals(null, prev, "duplicate row for " + r.getString(0) + " " + r.getString(2));
        }
        return out;
    }

    private static void assertBitEqual(Map<String, float[][]> expected, Map<String, Map<String, float[]>> actual, String idPrefix) {
        assertEquals(GOOD.size(), actual.size());
        for (var e : expected.entrySet()) {
            for (int i = 0; i < GOOD.size(); i++) {
                float[] got = actual.get(idPrefix + i).get(e.getKey());
                float[] want = e.getValue()[i];
                assertEquals(want.length, got.length);
                for (int j = 0; j < want.length; j++) {
                    assertEquals(Float.floatToRawIntBits(want[j]), Float.floatToRawIntBits(got[j]),
                            "prompt " + i + " hook " + e.getKey() + " element " + j);
                }
            }
        }
    }

    @Test
    void cacheEqualsJlensCacheBitForBitAndCountsBadRows() {
        CacheJob.Result r = CacheJob.run(spark, prompts(mixedJsonl, 3), neox(FailureInjection.NONE), dir.resolve("job1").toString(), false);
        assertEquals(GOOD.size() * 3L, r.activationRows());
        Map<String, Map<String, float[]>> acts = readActivations(r.activations());
        assertBitEqual(neoxMean, acts, "p");
        assertEquals(3, r.badRowCount());
        Map<String, String> reasons = new HashMap<>();
        for (Row b : spark.read().parquet(r.badRows()).collectAsList()) reasons.put(b.getString(0), b.getString(2));
        assertEquals("empty text", reasons.get("empty"));
        assertEquals("missing id", reasons.get(null));
        assertTrue(reasons.get("long").startsWith("longer than the model's context of 128 tokens"), reasons.get("long"));
        // Labels travel with the vectors.
        Row p1 = spark.read().parquet(r.activations()).where("id = 'p1'").first();
        assertEquals("harmful", p1.getString(1));
        // Three partitions and two passes (bad rows, activations), one model load in this JVM.
        assertEquals(1, ExecutorModels.loads(neox(FailureInjection.NONE).model()));
    }

    @Test
    void aRetriedTaskStillGivesACompleteExactTable() {
        int before = FailureInjection.injected();
        CacheJob.Result r = CacheJob.run(spark, prompts(goodJsonl, 2), neox(new FailureInjection(1)), dir.resolve("retry").toString(), false);
        assertEquals(before + 1, FailureInjection.injected(), "the first attempt of partition 1 failed once");
        assertEquals(GOOD.size() * 3L, r.activationRows());
        assertBitEqual(neoxMean, readActivations(r.activations()), "p");
        assertEquals(1, ExecutorModels.loads(neox(FailureInjection.NONE).model()));
    }

    @Test
    void strictFailsOnBadRowsBeforeWritingActivations() {
        Path out = dir.resolve("strict");
        JlensException e = assertThrows(JlensException.class,
                () -> CacheJob.run(spark, prompts(mixedJsonl, 2), neox(FailureInjection.NONE), out.toString(), true));
        assertTrue(e.getMessage().contains("--strict: 3 bad row(s)"), e.getMessage());
        assertFalse(Files.exists(out.resolve("activations")));
    }

    @Test
    void embeddedMiniLmFromTxtMatchesJlensCacheWithLinePositionsAsIds() throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add("# a comment line, skipped as jlens cache skips it");
        for (int i = 0; i < GOOD.size(); i++) {
            lines.add("  " + GOOD.get(i) + " ");
            if (i == 4) lines.add("");
        }
        Path txt = Files.write(dir.resolve("prompts.txt"), lines);
        Map<String, float[][]> expected = SparkTestSupport.jlensCache(dir.resolve("ref-minilm"), "--prompts", txt.toString(),
                "--hooks", "blocks.2.hook_resid_post,blocks.5.hook_resid_post", "--pool", "last", "--batch-size", "4");
        CacheJob.Settings s = new CacheJob.Settings(ModelRef.of(null, null), "blocks.2.hook_resid_post,blocks.5.hook_resid_post",
                Pooling.LAST, 3, false, FailureInjection.NONE);
        CacheJob.Result r = CacheJob.run(spark, prompts(txt, 2), s, dir.resolve("minilm").toString(), false);
        assertEquals(0, r.badRowCount());
        assertBitEqual(expected, readActivations(r.activations()), "");
        assertEquals(1, ExecutorModels.loads(ModelRef.of("minilm", null)));
    }
}
