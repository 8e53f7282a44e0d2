package dev.jlens.spark;

import dev.jlens.JlensException;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.lit;

/**
 * Reads a prompt table into the jobs' common shape: {@code id}, {@code text}, {@code label} (all strings,
 * any of them null in a bad row). Parquet (a file or a folder), JSONL, CSV with a header, or a .txt file whose
 * prompts are its non-blank lines not starting with '#', numbered from 0 in file order: the same numbering
 * (and the same stripping of surrounding white space) as {@code jlens cache}.
 */
public final class PromptTable {

    public static final StructType SCHEMA = new StructType()
            .add("id", DataTypes.StringType, true)
            .add("text", DataTypes.StringType, true)
            .add("label", DataTypes.StringType, true);

    /** Which columns hold the id, the text and the (optional) label. */
    public record Columns(String id, String text, String label) {
        public static final Columns DEFAULT = new Columns("id", "text", "label");
    }

    private PromptTable() {
    }

    public static Dataset<Row> read(SparkSession spark, String path, Columns columns) {
        String lower = path.toLowerCase(Locale.ROOT);
        if (lower.endsWith(".txt")) return readTxt(spark, path);
        Dataset<Row> raw;
        if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson") || lower.endsWith(".json")) {
            // Each line is parsed alone; a line that is not JSON becomes a row of nulls (a bad row), not a failure.
            raw = spark.read().option("mode", "PERMISSIVE").json(path);
        } else if (lower.endsWith(".csv")) {
            raw = spark.read().option("header", "true").option("multiLine", "true").option("escape", "\"").csv(path);
        } else if (lower.endsWith(".parquet") || !lower.matches(".*\\.[a-z0-9]{1,8}$")) {
            raw = spark.read().parquet(path);
        } else {
            throw new JlensException("--prompts " + path + ": unsupported extension; expected a Parquet file or folder, "
                    + ".jsonl, .csv (with a header row) or .txt (one prompt per line)");
        }
        List<String> have = Arrays.asList(raw.columns());
        if (!have.contains(columns.text())) {
            throw new JlensException("--prompts " + path + ": no column \"" + columns.text() + "\" (it has " + have
                    + "); pass the column that holds the prompt with --field");
        }
        if (!have.contains(columns.id())) {
            throw new JlensException("--prompts " + path + ": no column \"" + columns.id() + "\" (it has " + have
                    + "); pass the column that holds each prompt's id with --id-field, or use a .txt file, whose "
                    + "prompts are numbered by line");
        }
        Column label = have.contains(columns.label()) ? col(columns.label()).cast(DataTypes.StringType)
                : lit(null).cast(DataTypes.StringType);
        return raw.select(col(columns.id()).cast(DataTypes.StringType).as("id"),
                col(columns.text()).cast(DataTypes.StringType).as("text"), label.as("label"));
    }

    private static Dataset<Row> readTxt(SparkSession spark, String path) {
        JavaRDD<String> lines = spark.read().textFile(path).javaRDD()
                .filter(l -> !l.strip().isEmpty() && !l.strip().startsWith("#"));
        JavaRDD<Row> rows = lines.zipWithIndex().map(t -> RowFactory.create(Long.toString(t._2()), t._1(), null));
        return spark.createDataFrame(rows, SCHEMA);
    }
}
