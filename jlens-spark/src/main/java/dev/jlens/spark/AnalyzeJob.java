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
 * against class B at every hook of an activations table written by {@code jlens spark cache}. Each metric here
 * is a function of per-class sufficient statistics ({@link ClassMoments}), which {@code treeAggregate} sums
 * over the partitions; the driver receives d + d² numbers per class and hook, never the vectors. Metrics that
 * need the individual points (silhouette, bootstrap intervals, permutation p-values, length control, the
 * reference-set cosines) are not computed here; {@code jlens analyze} on one machine gives them.
 */
public final class AnalyzeJob {

    public static final StructType METRICS = new StructType()
            .add("layer", DataTypes.IntegerType, false)
            .add("hook", DataTypes.StringType, false)
            .add("n_A", DataTypes.LongType, false)
            .add("n_B", DataTypes.LongType, false)
            .add("cos_raw", DataTypes.DoubleType, false)
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
            .add("fisher", DataTypes.DoubleType, false);

    private static final Pattern LAYER = Pattern.compile("^blocks\\.(\\d+)\\.");

    /** Class A (harmless in jlens analyze) and class B (harmful) as labels of the activations table. */
    public record Settings(String classA, String classB) implements Serializable {
        public Settings {
            if (classA.equals(classB)) throw new JlensException("--class-a and --class-b are both \"" + classA + "\"");
        }
    }

    /** One hook's metrics, in the columns of {@link #METRICS}. */
    public record Metrics(int layer, String hook, long nA, long nB, double cosRaw, double l2Raw, double l2Rel,
                          double normA, double normB, double dispA, double dispB, double dispRelA, double dispRelB,
                          double dispRatio, double prA, double prB, double fisher) {
        Row row() {
            return RowFactory.create(layer, hook, nA, nB, cosRaw, l2Raw, l2Rel, normA, normB, dispA, dispB, dispRelA,
                    dispRelB, dispRatio, prA, prB, fisher);
        }
    }

    public record Result(String metricsPath, List<Metrics> metrics) {
    }

    private AnalyzeJob() {
    }

    public static Result run(SparkSession spark, Dataset<Row> activations, Settings s, String out) {
        Dataset<Row> rows = activations.where(col("label").isin(s.classA(), s.classB())).select("label", "hook", "vector");
        HashMap<String, ClassMoments[]> zero = new HashMap<>();
        HashMap<String, ClassMoments[]> moments = rows.javaRDD().treeAggregate(zero,
                (acc, r) -> add(acc, r, s), AnalyzeJob::merge, 2);
        if (moments.isEmpty()) {
            throw new JlensException("the activations have no rows labelled \"" + s.classA() + "\" or \"" + s.classB()
                    + "\"; pass the labels of the two classes with --class-a and --class-b");
        }
        List<Metrics> metrics = new ArrayList<>();
        for (Map.Entry<String, ClassMoments[]> e : moments.entrySet()) {
            ClassMoments a = e.getValue()[0], b = e.getValue()[1];
            if (a == null || a.n < 2 || b == null || b.n < 2) {
                throw new JlensException("hook " + e.getKey() + ": needs at least 2 rows of each class, has "
                        + (a == null ? 0 : a.n) + " \"" + s.classA() + "\" and " + (b == null ? 0 : b.n) + " \"" + s.classB() + "\"");
            }
            metrics.add(metrics(e.getKey(), a, b));
        }
        metrics.sort(Comparator.comparingInt(Metrics::layer).thenComparing(Metrics::hook));
        List<Row> table = new ArrayList<>();
        for (Metrics m : metrics) table.add(m.row());
        String path = out + "/metrics";
        Dataset<Row> df = spark.createDataFrame(table, METRICS).coalesce(1);
        df.write().mode(SaveMode.ErrorIfExists).parquet(path);
        df.write().mode(SaveMode.ErrorIfExists).option("header", "true").csv(out + "/metrics_csv");
        return new Result(path, metrics);
    }

    private static HashMap<String, ClassMoments[]> add(HashMap<String, ClassMoments[]> acc, Row r, Settings s) {
        int cls = s.classA().equals(r.getString(0)) ? 0 : 1;
        List<Float> v = r.getList(2);
        float[] x = new float[v.size()];
        for (int j = 0; j < x.length; j++) x[j] = v.get(j);
        ClassMoments[] pair = acc.computeIfAbsent(r.getString(1), k -> new ClassMoments[2]);
        if (pair[cls] == null) pair[cls] = new ClassMoments(x.length);
        if (pair[cls].d != x.length) {
            throw new JlensException("hook " + r.getString(1) + ": vectors of width " + pair[cls].d + " and " + x.length
                    + " in one table; analyze one model's activations at a time");
        }
        pair[cls].add(x);
        return acc;
    }

    private static HashMap<String, ClassMoments[]> merge(HashMap<String, ClassMoments[]> x, HashMap<String, ClassMoments[]> y) {
        for (Map.Entry<String, ClassMoments[]> e : y.entrySet()) {
            ClassMoments[] into = x.computeIfAbsent(e.getKey(), k -> new ClassMoments[2]);
            for (int c = 0; c < 2; c++) {
                ClassMoments m = e.getValue()[c];
                if (m != null) into[c] = into[c] == null ? m : into[c].merge(m);
            }
        }
        return x;
    }

    /** The formulas of PointMetrics and Spectra (jlens-analysis), from the moments instead of the rows. */
    static Metrics metrics(String hook, ClassMoments a, ClassMoments b) {
        int d = a.d;
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
        double dispA = a.dispersion(), dispB = b.dispersion();
        Matcher m = LAYER.matcher(hook);
        int layer = m.find() ? Integer.parseInt(m.group(1)) : -1;
        return new Metrics(layer, hook, a.n, b.n, cos, l2, l2 / meanNorm, normA, normB, dispA, dispB,
                dispA * d / (normA * normA), dispB * d / (normB * normB), dispA / dispB,
                a.participationRatio(), b.participationRatio(), fisher);
    }
}
