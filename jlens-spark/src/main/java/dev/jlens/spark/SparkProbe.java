package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.stats.Seeds;
import dev.jlens.stats.StratifiedKFold;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.ml.classification.LogisticRegression;
import org.apache.spark.ml.classification.LogisticRegressionModel;
import org.apache.spark.ml.evaluation.BinaryClassificationEvaluator;
import org.apache.spark.ml.linalg.SQLDataTypes;
import org.apache.spark.ml.linalg.Vector;
import org.apache.spark.ml.linalg.Vectors;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.expressions.Window;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.storage.StorageLevel;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.apache.spark.sql.functions.col;
import static org.apache.spark.sql.functions.not;
import static org.apache.spark.sql.functions.row_number;
import static org.apache.spark.sql.functions.sum;
import static org.apache.spark.sql.functions.when;

/**
 * The cross-validated linear probe of {@code jlens analyze} (docs/METRICS.md, probe_acc and probe_auroc), fitted
 * with Spark MLlib's logistic regression so the vectors stay on the executors. It reproduces the single-machine
 * probe step by step:
 * <ul>
 * <li>the same folds: prompts of a class are ranked by id (numerically when every id is an integer, else as
 *     strings), which is the order of {@code jlens analyze}'s prompt files when the ids number them as
 *     {@code jlens cache} does; the driver then calls the same {@link StratifiedKFold#assign} with the same
 *     seeded stream {@code Seeds.stream(seed, layer, "cv")} and k = min(folds, n_A, n_B). The driver holds one
 *     int per prompt per hook for this, never a vector;</li>
 * <li>the same features: every dimension standardised by the mean and population standard deviation of all n
 *     prompts of the hook, from the pooled {@link ClassMoments}, constant dimensions dropped by the same rule;</li>
 * <li>the same objective: jlens minimises Σ log(1+exp(−y(w·x+b))) + (λ/2)‖w‖², MLlib (standardization off,
 *     elastic net 0) minimises (1/n) Σ log(1+exp(−y(w·x+b))) + (regParam/2)‖w‖², the intercept unpenalised in
 *     both; regParam = λ / n_train gives the same minimiser.</li>
 * </ul>
 * The optimisers differ (MLlib's Breeze L-BFGS against jlens' own), so the fitted scores agree to the solvers'
 * tolerances, not to float rounding: AUROC and accuracy are equal unless two out-of-fold scores lie within that
 * tolerance of each other (or of 0 for the accuracy), and {@link #AUROC_TOLERANCE} bounds the documented
 * difference (docs/SPARK.md).
 */
final class SparkProbe {

    /**
     * The documented bound on |probe_auroc(spark) − probe_auroc(jlens analyze)| and on the same difference of
     * probe_acc. The two L-BFGS solvers stop at different points within ~10⁻⁵ of the optimum's scale; a pair of
     * scores closer than that can be ordered differently, which moves the AUROC by 1/(n_A·n_B) per pair and the
     * accuracy by 1/n per prompt. 0.01 allows a few such pairs on a small set and is far below the differences
     * the metric is read for (layers differ by tenths).
     */
    static final double AUROC_TOLERANCE = 0.01;

    /** MLlib's stopping rule: relative change of the objective (and of the gradient) below this. */
    static final double MLLIB_TOL = 1e-9;
    static final int MLLIB_MAX_ITER = 1000;

    /** Hooks whose folds are fitted concurrently. */
    static final int HOOKS_AT_ONCE = 4;

    /** Accuracy, AUROC, folds used, and the out-of-fold score of each prompt of the problem (A first, then B). */
    record Result(double accuracy, double auroc, int folds, double[] scoresA, double[] scoresB) {
    }

    /**
     * One probe to fit at a hook: the moments of the prompts taking part (for the standardisation), the layer and
     * purpose of the fold seed ({@code Seeds.stream(seed, layer, purpose)}: "cv" for the probe, "length-cv" for the
     * length-matched one), and where each class-A and class-B prompt (by rank) sits in the problem's own order
     * (−1: left out); null maps rank r to position r, all prompts taking part.
     */
    record Problem(ClassMoments a, ClassMoments b, int layer, String purpose, int[] positionA, int[] positionB) {
    }

    /**
     * Standardisation of one hook: kept dimensions, their pooled mean and 1/sd; each rank's position in the
     * problem (null: the identity) and the fold of each position (A positions 0..nA−1, then B).
     */
    record HookPlan(int[] keep, double[] mean, double[] inv, int nA, int[] positionA, int[] positionB, int[] fold,
                    int folds) implements Serializable {
        /** The problem's pooled index of a prompt, or −1 when it does not take part. */
        int index(boolean isA, int rank) {
            int[] pos = isA ? positionA : positionB;
            int p = pos == null ? rank : pos[rank];
            return p < 0 ? -1 : isA ? p : nA + p;
        }
    }

    private static final StructType FEATURES = new StructType()
            .add("hook", DataTypes.StringType, false)
            .add("label", DataTypes.DoubleType, false)
            .add("fold", DataTypes.IntegerType, false)
            .add("index", DataTypes.IntegerType, false)
            .add("features", SQLDataTypes.VectorType(), false);

    private SparkProbe() {
    }

    /**
     * @param indexed  the activations of the two classes with each prompt's rank in its class: hook, label, rank,
     *                 vector (AnalyzeJob's table)
     * @param problems per hook, the probe to fit
     */
    static Map<String, Result> run(SparkSession spark, Dataset<Row> indexed, Map<String, Problem> problems,
                                   AnalyzeJob.Settings s) {
        Map<String, HookPlan> plans = new HashMap<>();
        for (Map.Entry<String, Problem> e : problems.entrySet()) plans.put(e.getKey(), plan(e.getValue(), s));
        Broadcast<Map<String, HookPlan>> plan = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(plans);
        String classA = s.classA();
        JavaRDD<Row> featureRows = indexed.where(col("hook").isin(plans.keySet().toArray()))
                .select("hook", "label", "rank", "vector")
                .javaRDD().mapPartitions(it -> features(it, plan.value(), classA));
        Dataset<Row> features = spark.createDataFrame(featureRows, FEATURES).persist(StorageLevel.MEMORY_AND_DISK());
        // Up to HOOKS_AT_ONCE hooks are cross-validated at a time, each from its own driver thread: their Spark jobs
        // then overlap, which on small data (job latency) and on a cluster with idle executors both save time.
        ExecutorService hooks = Executors.newFixedThreadPool(Math.max(1, Math.min(HOOKS_AT_ONCE, plans.size())), r -> {
            Thread t = new Thread(r, "jlens-probe-hook");
            t.setDaemon(true);
            return t;
        });
        try {
            Map<String, Future<Result>> pending = new HashMap<>();
            for (Map.Entry<String, HookPlan> e : plans.entrySet()) {
                pending.put(e.getKey(), hooks.submit(() -> crossValidate(spark, features, e.getKey(), e.getValue(), s)));
            }
            Map<String, Result> out = new HashMap<>();
            for (Map.Entry<String, Future<Result>> e : pending.entrySet()) out.put(e.getKey(), e.getValue().get());
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JlensException("the probe was interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new JlensException("the probe failed: " + e.getCause(), e.getCause());
        } finally {
            hooks.shutdownNow();
            features.unpersist();
            plan.destroy();
        }
    }

    /** (label, id, rank): the 0-based rank of each prompt within its class, in id order. */
    static Dataset<Row> ranks(Dataset<Row> rows, AnalyzeJob.Settings s) {
        List<Row> dup = rows.groupBy("hook", "label", "id").count().where(col("count").gt(1)).limit(1).collectAsList();
        if (!dup.isEmpty()) {
            Row d = dup.getFirst();
            throw new JlensException("the activations hold " + d.getLong(3) + " rows with id \"" + d.getString(2) + "\", label \""
                    + d.getString(1) + "\" at hook " + d.getString(0) + "; the probe orders the prompts by id to draw the "
                    + "folds of jlens analyze, so each prompt needs its own id");
        }
        Dataset<Row> ids = rows.select("label", "id").distinct();
        boolean numeric = ids.where(not(col("id").rlike("^-?[0-9]{1,18}$"))).isEmpty();
        Column key = numeric ? col("id").cast(DataTypes.LongType) : col("id");
        return ids.withColumn("rank", row_number().over(Window.partitionBy("label").orderBy(key)).minus(1).cast(DataTypes.LongType));
    }

    static void check(String hook, String label, long atHook, long inTable) {
        if (atHook != inTable) {
            throw new JlensException("hook " + hook + ": " + atHook + " rows labelled \"" + label + "\", but the table has "
                    + inTable + " distinct ids with that label; the probe needs every prompt at every hook "
                    + "(analyze one jlens spark cache output at a time)");
        }
    }

    private static HookPlan plan(Problem p, AnalyzeJob.Settings s) {
        ClassMoments a = p.a(), b = p.b();
        int d = a.d, nA = (int) a.n, nB = (int) b.n, n = nA + nB;
        ClassMoments pooled = a.copy().merge(b.copy());
        int[] keep = new int[d];
        double[] mean = new double[d], inv = new double[d];
        int kept = 0;
        for (int j = 0; j < d; j++) {
            double mu = pooled.mean[j], sd = Math.sqrt(pooled.m2[j * d + j] / n);
            // The rule of Probe.features (jlens-analysis): a constant dimension's rounding noise is not a feature.
            if (sd > 1e-9 * Math.abs(mu) && sd > 0) {
                keep[kept] = j;
                mean[kept] = mu;
                inv[kept++] = 1 / sd;
            }
        }
        if (kept == 0) throw new JlensException("the probe has no feature: every dimension is constant over the prompts");
        int k = Math.min(s.cvFolds(), Math.min(nA, nB));
        boolean[] positive = new boolean[n];
        for (int i = nA; i < n; i++) positive[i] = true;
        int[] fold = StratifiedKFold.assign(positive, k, Seeds.stream(s.seed(), p.layer(), p.purpose()));
        return new HookPlan(java.util.Arrays.copyOf(keep, kept), java.util.Arrays.copyOf(mean, kept),
                java.util.Arrays.copyOf(inv, kept), nA, p.positionA(), p.positionB(), fold, k);
    }

    private static Iterator<Row> features(Iterator<Row> it, Map<String, HookPlan> plans, String classA) {
        return new Iterator<>() {
            private Row next = advance();

            private Row advance() {
                while (it.hasNext()) {
                    Row r = it.next();
                    HookPlan p = plans.get(r.getString(0));
                    boolean isA = classA.equals(r.getString(1));
                    int index = p.index(isA, (int) r.getLong(2));
                    if (index < 0) continue;
                    List<Float> v = r.getList(3);
                    double[] z = new double[p.keep().length];
                    for (int c = 0; c < z.length; c++) z[c] = (v.get(p.keep()[c]) - p.mean()[c]) * p.inv()[c];
                    return RowFactory.create(r.getString(0), isA ? 0.0 : 1.0, p.fold()[index], index, Vectors.dense(z));
                }
                return null;
            }

            @Override
            public boolean hasNext() {
                return next != null;
            }

            @Override
            public Row next() {
                if (next == null) throw new java.util.NoSuchElementException();
                Row r = next;
                next = advance();
                return r;
            }
        };
    }

    private static Result crossValidate(SparkSession spark, Dataset<Row> features, String hook, HookPlan p, AnalyzeJob.Settings s) {
        Dataset<Row> atHook = features.where(col("hook").equalTo(hook));
        int k = p.folds();
        int[] inFold = new int[k];
        for (int f : p.fold()) inFold[f]++;
        double[][] weights = new double[k][];
        double[] intercepts = new double[k];
        // The k fits are independent Spark jobs, submitted together from k driver threads (as jlens' own probe fits
        // its folds in parallel): on small data an L-BFGS iteration costs mostly job latency, which then overlaps;
        // on large data the scheduler shares the executors among them. Each fit writes only its own slot.
        ExecutorService pool = Executors.newFixedThreadPool(k, r -> {
            Thread t = new Thread(r, "jlens-probe-fold");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<?>> fits = new ArrayList<>();
            for (int fold = 0; fold < k; fold++) {
                int f = fold;
                int nTrain = p.fold().length - inFold[f];
                fits.add(pool.submit(() -> {
                    LogisticRegressionModel m = new LogisticRegression()
                            .setFamily("binomial")
                            .setFitIntercept(true)
                            .setStandardization(false)
                            .setElasticNetParam(0)
                            .setRegParam(s.l2Penalty() / nTrain)
                            .setTol(MLLIB_TOL)
                            .setMaxIter(MLLIB_MAX_ITER)
                            .fit(atHook.where(col("fold").notEqual(f)));
                    weights[f] = m.coefficients().toArray();
                    intercepts[f] = m.intercept();
                }));
            }
            for (Future<?> fit : fits) fit.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JlensException("the probe of hook " + hook + " was interrupted");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException re) throw re;
            throw new JlensException("the probe of hook " + hook + " failed: " + e.getCause(), e.getCause());
        } finally {
            pool.shutdownNow();
        }
        // Out-of-fold scores: each prompt scored by the model of its own fold, the margin w·z + b as in jlens.
        Broadcast<double[][]> w = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(weights);
        Broadcast<double[]> b = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(intercepts);
        try {
            JavaRDD<Row> scored = atHook.javaRDD().map(r -> {
                int f = r.getInt(2);
                double[] z = ((Vector) r.get(4)).toArray();
                double[] wf = w.value()[f];
                double score = b.value()[f];
                for (int j = 0; j < z.length; j++) score += wf[j] * z[j];
                return RowFactory.create(r.getDouble(1), score, r.getInt(3));
            });
            Dataset<Row> scores = spark.createDataFrame(scored, new StructType()
                    .add("label", DataTypes.DoubleType, false).add("score", DataTypes.DoubleType, false)
                    .add("index", DataTypes.IntegerType, false)).cache();
            try {
                double auroc = new BinaryClassificationEvaluator().setLabelCol("label").setRawPredictionCol("score")
                        .setMetricName("areaUnderROC").setNumBins(0).evaluate(scores);
                Row acc = scores.agg(sum(when(col("label").equalTo(1.0).and(col("score").gt(0))
                                .or(col("label").equalTo(0.0).and(col("score").leq(0))), 1L).otherwise(0L)),
                        org.apache.spark.sql.functions.count(col("label"))).first();
                // One double per prompt reaches the driver, for the bootstrap of the AUROC (jlens analyze resamples
                // the out-of-fold scores, not the fits).
                int nA = p.nA(), nB = p.fold().length - nA;
                double[] scoresA = new double[nA], scoresB = new double[nB];
                for (Row r : scores.select("index", "score").collectAsList()) {
                    int i = r.getInt(0);
                    if (i < nA) scoresA[i] = r.getDouble(1);
                    else scoresB[i - nA] = r.getDouble(1);
                }
                return new Result((double) acc.getLong(0) / acc.getLong(1), auroc, k, scoresA, scoresB);
            } finally {
                scores.unpersist();
            }
        } finally {
            w.destroy();
            b.destroy();
        }
    }
}
