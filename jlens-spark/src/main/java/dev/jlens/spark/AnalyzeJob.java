package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.stats.LinAlg;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.SaveMode;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.apache.spark.sql.functions.col;

/**
 * {@code jlens spark analyze}: the geometry metrics of {@code jlens analyze} (docs/METRICS.md) for class A
 * against class B at every hook of an activations table written by {@code jlens spark cache}. The point metrics
 * are functions of per-class sufficient statistics ({@link ClassMoments}), which {@code treeAggregate} sums over
 * the partitions; the driver receives d + d² numbers per class and hook, never the vectors. The cross-validated
 * probe is fitted with Spark MLlib on the executors ({@link SparkProbe}). The metrics that need the individual
 * points on one machine ({@link #NOT_COMPUTED}) are not computed here; {@code jlens analyze} gives them.
 */
public final class AnalyzeJob {

    public static final StructType METRICS = new StructType()
            .add("layer", DataTypes.IntegerType, false)
            .add("hook", DataTypes.StringType, false)
            .add("n_A", DataTypes.LongType, false)
            .add("n_B", DataTypes.LongType, false)
            .add("cos_raw", DataTypes.DoubleType, false)
            .add("cos_centered", DataTypes.DoubleType, false)
            .add("cos_std", DataTypes.DoubleType, false)
            .add("l2_raw", DataTypes.DoubleType, false)
            .add("l2_rel", DataTypes.DoubleType, false)
            .add("norm_A", DataTypes.DoubleType, false)
            .add("norm_B", DataTypes.DoubleType, false)
            .add("disp_A", DataTypes.DoubleType, false)
            .add("disp_B", DataTypes.DoubleType, false)
            .add("disp_rel_A", DataTypes.DoubleType, false)
            .add("disp_rel_B", DataTypes.DoubleType, false)
            .add("disp_ratio", DataTypes.DoubleType, false)
            .add("pr_A", DataTypes.DoubleType, false)
            .add("pr_B", DataTypes.DoubleType, false)
            .add("fisher", DataTypes.DoubleType, false)
            .add("probe_acc", DataTypes.DoubleType, false)
            .add("probe_auroc", DataTypes.DoubleType, false);

    /**
     * The columns of {@code jlens analyze}'s metrics.csv that this job does not compute, and why: each needs the
     * individual vectors together (pairwise distances, resampled point sets) or per-prompt token lengths, which
     * the activations table does not hold.
     */
    public static final List<String> NOT_COMPUTED = List.of(
            "silhouette (needs the pairwise distances of the points)",
            "cos_raw_lo/hi, l2_rel_lo/hi, disp_ratio_lo/hi, probe_auroc_lo/hi (bootstrap resamples of the points)",
            "p_l2_raw, p_disp_ratio (label permutations of the points)",
            "len_* (length control: token lengths per prompt, which the activations table does not hold)");

    private static final Pattern LAYER = Pattern.compile("^blocks\\.(\\d+)\\.");

    /**
     * @param classA    label of class A (harmless in jlens analyze)
     * @param classB    label of class B (harmful)
     * @param classRef  label of the neutral reference prompts for cos_centered and cos_std, or null (then NaN)
     * @param seed      seed of the probe's folds (jlens analyze --seed)
     * @param cvFolds   folds of the probe's cross-validation (jlens analyze --cv-folds)
     * @param l2Penalty λ of the probe's penalty (λ/2)‖w‖² (jlens analyze uses 1)
     * @param probe     whether to fit the probe (false: probe_acc and probe_auroc are NaN)
     */
    public record Settings(String classA, String classB, String classRef, long seed, int cvFolds, double l2Penalty,
                           boolean probe) implements Serializable {
        public Settings {
            if (classA.equals(classB)) throw new JlensException("--class-a and --class-b are both \"" + classA + "\"");
            if (classRef != null && (classRef.equals(classA) || classRef.equals(classB))) {
                throw new JlensException("--class-ref \"" + classRef + "\" is also class A or B; the reference set is a third label");
            }
            if (cvFolds < 2) throw new JlensException("--cv-folds " + cvFolds + ": expected at least 2");
            if (!(l2Penalty > 0) || Double.isInfinite(l2Penalty)) {
                throw new JlensException("probe L2 penalty = " + l2Penalty + ": expected a finite number > 0");
            }
        }

        /** jlens analyze's defaults: no reference label, seed 42, 5 folds, λ = 1, with the probe. */
        public Settings(String classA, String classB) {
            this(classA, classB, null, 42, 5, 1.0, true);
        }
    }

    /** One hook's metrics, in the columns of {@link #METRICS}. */
    public record Metrics(int layer, String hook, long nA, long nB, double cosRaw, double cosCentered, double cosStd,
                          double l2Raw, double l2Rel, double normA, double normB, double dispA, double dispB,
                          double dispRelA, double dispRelB, double dispRatio, double prA, double prB, double fisher,
                          double probeAcc, double probeAuroc) {
        Row row() {
            return RowFactory.create(layer, hook, nA, nB, cosRaw, cosCentered, cosStd, l2Raw, l2Rel, normA, normB, dispA,
                    dispB, dispRelA, dispRelB, dispRatio, prA, prB, fisher, probeAcc, probeAuroc);
        }

        Metrics withProbe(double acc, double auroc) {
            return new Metrics(layer, hook, nA, nB, cosRaw, cosCentered, cosStd, l2Raw, l2Rel, normA, normB, dispA, dispB,
                    dispRelA, dispRelB, dispRatio, prA, prB, fisher, acc, auroc);
        }
    }

    public record Result(String metricsPath, List<Metrics> metrics, List<String> notComputed) {
    }

    private AnalyzeJob() {
    }

    public static Result run(SparkSession spark, Dataset<Row> activations, Settings s, String out) {
        List<String> labels = s.classRef() == null ? List.of(s.classA(), s.classB()) : List.of(s.classA(), s.classB(), s.classRef());
        Dataset<Row> rows = activations.where(col("label").isin(labels.toArray())).select("label", "hook", "vector");
        HashMap<String, ClassMoments[]> zero = new HashMap<>();
        HashMap<String, ClassMoments[]> moments = rows.javaRDD().treeAggregate(zero,
                (acc, r) -> add(acc, r, s), AnalyzeJob::merge, 2);
        if (moments.isEmpty()) {
            throw new JlensException("the activations have no rows labelled \"" + s.classA() + "\" or \"" + s.classB()
                    + "\"; pass the labels of the two classes with --class-a and --class-b");
        }
        Map<String, ClassMoments[]> twoClasses = new HashMap<>();
        Map<String, Integer> layers = new HashMap<>();
        List<Metrics> metrics = new ArrayList<>();
        for (Map.Entry<String, ClassMoments[]> e : moments.entrySet()) {
            ClassMoments a = e.getValue()[0], b = e.getValue()[1], ref = e.getValue()[2];
            if (a == null || a.n < 2 || b == null || b.n < 2) {
                throw new JlensException("hook " + e.getKey() + ": needs at least 2 rows of each class, has "
                        + (a == null ? 0 : a.n) + " \"" + s.classA() + "\" and " + (b == null ? 0 : b.n) + " \"" + s.classB() + "\"");
            }
            if (s.classRef() != null && ref == null) {
                throw new JlensException("hook " + e.getKey() + ": no rows labelled \"" + s.classRef() + "\" (--class-ref); "
                        + "cache the reference prompts with that label, or leave --class-ref out");
            }
            Metrics m = metrics(e.getKey(), a, b, ref);
            metrics.add(m);
            twoClasses.put(e.getKey(), new ClassMoments[] {a, b});
            layers.put(e.getKey(), m.layer());
        }
        if (s.probe()) {
            Dataset<Row> probeRows = activations.where(col("label").isin(s.classA(), s.classB())).select("label", "hook", "vector", "id");
            Map<String, SparkProbe.Result> probe = SparkProbe.run(spark, probeRows, twoClasses, layers, s);
            metrics.replaceAll(m -> m.withProbe(probe.get(m.hook()).accuracy(), probe.get(m.hook()).auroc()));
        }
        metrics.sort(Comparator.comparingInt(Metrics::layer).thenComparing(Metrics::hook));
        List<Row> table = new ArrayList<>();
        for (Metrics m : metrics) table.add(m.row());
        String path = out + "/metrics";
        Dataset<Row> df = spark.createDataFrame(table, METRICS).coalesce(1);
        df.write().mode(SaveMode.ErrorIfExists).parquet(path);
        df.write().mode(SaveMode.ErrorIfExists).option("header", "true").csv(out + "/metrics_csv");
        return new Result(path, metrics, NOT_COMPUTED);
    }

    private static HashMap<String, ClassMoments[]> add(HashMap<String, ClassMoments[]> acc, Row r, Settings s) {
        String label = r.getString(0);
        int cls = s.classA().equals(label) ? 0 : s.classB().equals(label) ? 1 : 2;
        List<Float> v = r.getList(2);
        float[] x = new float[v.size()];
        for (int j = 0; j < x.length; j++) x[j] = v.get(j);
        ClassMoments[] set = acc.computeIfAbsent(r.getString(1), k -> new ClassMoments[3]);
        if (set[cls] == null) set[cls] = new ClassMoments(x.length);
        if (set[cls].d != x.length) {
            throw new JlensException("hook " + r.getString(1) + ": vectors of width " + set[cls].d + " and " + x.length
                    + " in one table; analyze one model's activations at a time");
        }
        set[cls].add(x);
        return acc;
    }

    private static HashMap<String, ClassMoments[]> merge(HashMap<String, ClassMoments[]> x, HashMap<String, ClassMoments[]> y) {
        for (Map.Entry<String, ClassMoments[]> e : y.entrySet()) {
            ClassMoments[] into = x.computeIfAbsent(e.getKey(), k -> new ClassMoments[3]);
            for (int c = 0; c < 3; c++) {
                ClassMoments m = e.getValue()[c];
                if (m != null) into[c] = into[c] == null ? m : into[c].merge(m);
            }
        }
        return x;
    }

    /** The formulas of PointMetrics, Spectra and the reference cosines (jlens-analysis), from the moments. */
    static Metrics metrics(String hook, ClassMoments a, ClassMoments b, ClassMoments ref) {
        int d = a.d;
        if (b.d != d || (ref != null && ref.d != d)) {
            throw new JlensException("hook " + hook + ": vectors of widths " + a.d + ", " + b.d
                    + (ref == null ? "" : ", " + ref.d) + " in one table; analyze one model's activations at a time");
        }
        double[] delta = new double[d];
        for (int j = 0; j < d; j++) delta[j] = b.mean[j] - a.mean[j];
        double cos = LinAlg.cosine(a.mean, b.mean);
        double l2 = LinAlg.norm(delta);
        double normA = a.sumNorm / a.n, normB = b.sumNorm / b.n;
        double meanNorm = (a.sumNorm + b.sumNorm) / (a.n + b.n);
        double fisher;
        if (l2 == 0) {
            fisher = 0;
        } else {
            double[] w = new double[d];
            for (int j = 0; j < d; j++) w[j] = delta[j] / l2;
            fisher = l2 * l2 / (a.projectedVariance(w) + b.projectedVariance(w));
        }
        double cosCentered = Double.NaN, cosStd = Double.NaN;
        if (ref != null) {
            double[] ca = new double[d], cb = new double[d], sa = new double[d], sb = new double[d];
            for (int j = 0; j < d; j++) {
                ca[j] = a.mean[j] - ref.mean[j];
                cb[j] = b.mean[j] - ref.mean[j];
                double sd = Math.sqrt(ref.m2[j * d + j] / ref.n);
                // The rule of GeometryAnalyzer.referenceCosines: a dimension on which the reference does not vary
                // (beyond rounding noise of its mean) has no scale to divide by and is left out.
                if (sd > 0 && sd > 1e-9 * Math.abs(ref.mean[j])) {
                    sa[j] = ca[j] / sd;
                    sb[j] = cb[j] / sd;
                }
            }
            cosCentered = LinAlg.cosine(ca, cb);
            cosStd = LinAlg.cosine(sa, sb);
        }
        double dispA = a.dispersion(), dispB = b.dispersion();
        Matcher m = LAYER.matcher(hook);
        int layer = m.find() ? Integer.parseInt(m.group(1)) : -1;
        return new Metrics(layer, hook, a.n, b.n, cos, cosCentered, cosStd, l2, l2 / meanNorm, normA, normB, dispA, dispB,
                dispA * d / (normA * normA), dispB * d / (normB * normB), dispA / dispB,
                a.participationRatio(), b.participationRatio(), fisher, Double.NaN, Double.NaN);
    }
}
