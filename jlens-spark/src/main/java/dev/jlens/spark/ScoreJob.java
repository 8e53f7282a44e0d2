package dev.jlens.spark;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;

import static org.apache.spark.sql.functions.col;

/**
 * {@code jlens spark score}: a saved detector over a table of prompts, as {@code OUT/scores} (id, score,
 * flagged, layer), each score the one {@code jlens detect} gives, and the skipped rows as {@code OUT/bad_rows}.
 */
public final class ScoreJob {

    public static final StructType SCORES = new StructType()
            .add("id", DataTypes.StringType, false)
            .add("score", DataTypes.DoubleType, false)
            .add("flagged", DataTypes.BooleanType, false)
            .add("layer", DataTypes.IntegerType, false);

    /** A scored row or a bad one, before the two are written to their own tables. */
    private static final StructType SCORED = new StructType()
            .add("id", DataTypes.StringType, true)
            .add("score", DataTypes.DoubleType, true)
            .add("flagged", DataTypes.BooleanType, true)
            .add("layer", DataTypes.IntegerType, true)
            .add("text", DataTypes.StringType, true)
            .add("reason", DataTypes.StringType, true);

    /**
     * @param detector a detector folder every executor can read (written by jlens probe --save-detector)
     * @param truncate score over-long text on its first tokens, as jlens detect does, instead of a bad row
     */
    public record Settings(ModelRef model, String detector, boolean truncate) implements Serializable {
    }

    public record Result(String scores, long scoredRows, String badRows, long badRowCount) {
    }

    private ScoreJob() {
    }

    /** The model a detector folder names (what Detector.load would load), or {@code override} when given. */
    public static ModelRef modelOf(Path detector, ModelRef override) {
        if (override != null) return override;
        Path json = Files.isDirectory(detector) ? detector.resolve(Detector.JSON) : detector;
        JsonNode m;
        try {
            m = new ObjectMapper().readTree(json.toFile()).path("model");
        } catch (IOException e) {
            throw new JlensException("--detector " + detector + ": cannot read " + json + ": " + e.getMessage()
                    + "; expected a folder written by jlens probe --save-detector", e);
        }
        if (!m.isObject() || !m.path("id").isTextual()) {
            throw new JlensException(json + ": missing object field \"model\" with a string \"id\"");
        }
        if (m.path("embedded").asBoolean(false)) return ModelRef.of(null, null);
        String revision = m.path("revision").isTextual() ? m.get("revision").asText() : null;
        if (m.path("path").isTextual() && Files.isDirectory(Path.of(m.get("path").asText()))) {
            return ModelRef.of(m.get("path").asText(), revision);
        }
        return ModelRef.of(m.get("id").asText(), revision);
    }

    public static Result run(SparkSession spark, Dataset<Row> prompts, Settings s, String out, boolean strict) {
        String badPath = out + "/bad_rows", scorePath = out + "/scores";
        Dataset<Row> scored = prompts.mapPartitions((MapPartitionsFunction<Row, Row>) rows -> score(rows, s),
                Encoders.row(SCORED));
        // Scores are a few numbers per prompt; keeping them saves a second forward pass for the second table.
        scored.persist(StorageLevel.MEMORY_AND_DISK());
        try {
            Dataset<Row> bad = scored.where(col("reason").isNotNull()).select("id", "text", "reason");
            bad.write().mode(SaveMode.ErrorIfExists).parquet(badPath);
            long nBad = spark.read().parquet(badPath).count();
            if (strict && nBad > 0) {
                throw new JlensException("--strict: " + nBad + " bad row(s) in the prompts; all are listed in " + badPath);
            }
            Dataset<Row> good = scored.where(col("reason").isNull()).select("id", "score", "flagged", "layer");
            spark.createDataFrame(good.javaRDD(), SCORES).write().mode(SaveMode.ErrorIfExists).parquet(scorePath);
            return new Result(scorePath, spark.read().parquet(scorePath).count(), badPath, nBad);
        } finally {
            scored.unpersist();
        }
    }

    /** Rows are scored one at a time as the writer pulls them, so a partition never sits in memory. */
    private static Iterator<Row> score(Iterator<Row> rows, Settings s) {
        Detector d = ExecutorModels.detector(s.model(), s.detector());
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return rows.hasNext();
            }

            @Override
            public Row next() {
                return scoreRow(d, rows.next(), s.truncate());
            }
        };
    }

    private static Row scoreRow(Detector d, Row r, boolean truncate) {
        String id = r.getString(0), text = r.getString(1);
        String reason = null;
        Detector.Score sc = null;
        if (id == null || id.isBlank()) reason = "missing id";
        else if (text == null || text.isBlank()) reason = "empty text";
        else {
            try {
                sc = d.score(text, true);
                if (sc.truncated() && !truncate) {
                    reason = "longer than the model's context of " + d.model().info().maxPositions()
                            + " tokens (--truncate scores its first tokens as jlens detect does)";
                }
            } catch (JlensException e) {
                reason = e.getMessage();
            }
        }
        if (reason != null) {
            String shown = text == null || text.length() <= 200 ? text : text.substring(0, 200);
            return RowFactory.create(id, null, null, null, shown, reason);
        }
        return RowFactory.create(id, sc.score(), sc.flagged(), sc.layer(), null, null);
    }
}
