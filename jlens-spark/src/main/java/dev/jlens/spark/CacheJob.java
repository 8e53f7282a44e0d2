package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import dev.jlens.model.CacheRequest;
import dev.jlens.tensor.FloatTensor;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * {@code jlens spark cache}: the pooled activations of the selected hooks for every good prompt of a table,
 * as the Parquet folder {@code OUT/activations} (id, label, hook, vector), and the skipped rows as
 * {@code OUT/bad_rows} (id, text, reason). The vectors are bit for bit those of {@code jlens cache}: each
 * partition runs its prompts in batches through the same forward pass, whose kernels give the same bits
 * whatever the batch's other prompts and the thread count.
 */
public final class CacheJob {

    public static final StructType ACTIVATIONS = new StructType()
            .add("id", DataTypes.StringType, false)
            .add("label", DataTypes.StringType, true)
            .add("hook", DataTypes.StringType, false)
            .add("vector", DataTypes.createArrayType(DataTypes.FloatType, false), false)
            // The prompt's token count, as jlens analyze takes it for its length control (len_* metrics).
            .add("tokens", DataTypes.IntegerType, false);

    /** Everything the executors need; it travels with each task. */
    public record Settings(ModelRef model, String hooks, Pooling pooling, int batchSize, boolean truncate,
                           FailureInjection failure) implements Serializable {
        public Settings {
            if (pooling == Pooling.ALL || pooling == Pooling.POST_INSTRUCTION) {
                throw new JlensException("--pool " + pooling.cliName() + ": the Spark cache job writes one pooled vector "
                        + "per prompt and hook; use mean, last or mean-skip-first (jlens cache keeps every token)");
            }
            if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
            HookPattern.parse(hooks);
        }
    }

    /** What was written: the two tables, their row counts, and the seconds each pass took. */
    public record Result(String activations, long activationRows, String badRows, long badRowCount,
                         double checkSeconds, double activationSeconds) {
    }

    private CacheJob() {
    }

    public static Result run(SparkSession spark, Dataset<Row> prompts, Settings s, String out, boolean strict) {
        String badPath = out + "/bad_rows", actPath = out + "/activations";
        long t0 = System.nanoTime();
        long bad = BadRows.write(prompts, s.model(), s.truncate(), badPath, strict);
        long t1 = System.nanoTime();
        Dataset<Row> acts = prompts.mapPartitions((MapPartitionsFunction<Row, Row>) rows -> activations(rows, s),
                Encoders.row(ACTIVATIONS));
        acts.write().mode(SaveMode.ErrorIfExists).parquet(actPath);
        long n = spark.read().parquet(actPath).count();
        return new Result(actPath, n, badPath, bad, (t1 - t0) / 1e9, (System.nanoTime() - t1) / 1e9);
    }

    /** The hooks a pattern selects, as jlens cache picks them (attention patterns need per-token output). */
    static List<String> hookNames(HookedModel m, HookPattern pattern) {
        List<String> names = new ArrayList<>();
        for (HookPoint p : pattern.select(m.hookPoints())) if (p.kind() != HookKind.ATTN_PATTERN) names.add(p.name());
        if (names.isEmpty()) {
            throw new JlensException("--hooks \"" + pattern + "\" selects no pooled hook of " + m.location().id()
                    + "; jlens inspect lists the names (e.g. blocks.*.hook_resid_post)");
        }
        return names;
    }

    /** One partition's output, computed batch by batch as the writer pulls rows. */
    private static Iterator<Row> activations(Iterator<Row> rows, Settings s) {
        HookedModel m = ExecutorModels.model(s.model());
        HookPattern pattern = HookPattern.parse(s.hooks());
        List<String> names = hookNames(m, pattern);
        return new Iterator<>() {
            private final ArrayDeque<Row> ready = new ArrayDeque<>();
            private int batches;

            @Override
            public boolean hasNext() {
                while (ready.isEmpty() && rows.hasNext()) {
                    if (batches > 0) s.failure().maybeFail();
                    List<PromptCheck.Checked> batch = new ArrayList<>(s.batchSize());
                    while (batch.size() < s.batchSize() && rows.hasNext()) {
                        PromptCheck.Checked c = PromptCheck.check(m, rows.next(), s.truncate());
                        if (c.good()) batch.add(c);
                    }
                    if (!batch.isEmpty()) {
                        run(m, pattern, names, batch, s, ready);
                        batches++;
                    }
                }
                if (ready.isEmpty() && batches > 0) s.failure().maybeFail();
                return !ready.isEmpty();
            }

            @Override
            public Row next() {
                if (!hasNext()) throw new NoSuchElementException();
                return ready.poll();
            }
        };
    }

    /** The module's one call into the model's cached forward pass. */
    private static void run(HookedModel m, HookPattern pattern, List<String> names, List<PromptCheck.Checked> batch,
                            Settings s, ArrayDeque<Row> into) {
        List<int[]> ids = new ArrayList<>(batch.size());
        for (PromptCheck.Checked c : batch) ids.add(c.ids());
        ActivationCache cache = m.runWithCache(ids, CacheRequest.of(pattern).pooling(s.pooling()).batchSize(s.batchSize()));
        List<FloatTensor> pooled = new ArrayList<>(names.size());
        for (String h : names) pooled.add(cache.pooled(h));
        for (int i = 0; i < batch.size(); i++) {
            for (int h = 0; h < names.size(); h++) {
                FloatTensor t = pooled.get(h);
                int d = t.shape()[1];
                into.add(RowFactory.create(batch.get(i).id(), batch.get(i).label(), names.get(h),
                        Arrays.copyOfRange(t.data(), i * d, (i + 1) * d), batch.get(i).ids().length));
            }
        }
    }
}
