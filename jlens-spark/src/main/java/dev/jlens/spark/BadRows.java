package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SaveMode;

import java.util.ArrayList;
import java.util.List;

/**
 * The side table of skipped prompts, written before the expensive pass: tokenizing costs little next to a
 * forward pass, and with {@code --strict} a bad table then fails the job before any model time is spent.
 */
final class BadRows {

    private BadRows() {
    }

    /** Writes the bad rows to {@code path} and returns their number; with {@code strict}, any is an error. */
    static long write(Dataset<Row> prompts, ModelRef model, boolean truncate, String path, boolean strict) {
        Dataset<Row> bad = prompts.mapPartitions((MapPartitionsFunction<Row, Row>) rows -> {
            HookedModel m = ExecutorModels.model(model);
            List<Row> out = new ArrayList<>();
            while (rows.hasNext()) {
                PromptCheck.Checked c = PromptCheck.check(m, rows.next(), truncate);
                if (!c.good()) out.add(c.badRow());
            }
            return out.iterator();
        }, Encoders.row(PromptCheck.BAD_ROWS));
        bad.write().mode(SaveMode.ErrorIfExists).parquet(path);
        Dataset<Row> written = prompts.sparkSession().read().parquet(path);
        long n = written.count();
        if (strict && n > 0) {
            List<Row> first = written.limit(3).collectAsList();
            List<String> shown = new ArrayList<>();
            for (Row r : first) shown.add((r.isNullAt(0) ? "(no id)" : "id " + r.getString(0)) + ": " + r.getString(2));
            throw new JlensException("--strict: " + n + " bad row(s) in the prompts (" + String.join("; ", shown)
                    + (n > first.size() ? "; ..." : "") + "); all are listed in " + path);
        }
        return n;
    }

}
