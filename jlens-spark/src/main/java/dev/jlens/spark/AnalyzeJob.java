package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.geometry.Estimate;
import dev.jlens.geometry.LayerMetrics;
import dev.jlens.geometry.LengthControl;
import dev.jlens.geometry.Resamples;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.Quantiles;
import dev.jlens.stats.Seeds;
import org.apache.spark.sql.Column;
import org.apache.spark.storage.StorageLevel;
import scala.Tuple3;
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
import java.util.Iterator;
import java.util.TreeMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.apache.spark.sql.functions.col;

/**
 * {@code jlens spark analyze}: every metric of {@code jlens analyze} (docs/METRICS.md, the columns of its
 * metrics.csv) for class A against class B at every hook of an activations table written by
 * {@code jlens spark cache}, without collecting the vectors on the driver:
 * <ul>
 * <li>the point metrics from per-class sufficient statistics ({@link ClassMoments}) that {@code treeAggregate}
 *     sums over the partitions (d + d² numbers per class and hook);</li>
 * <li>the bootstrap intervals and permutation p-values from per-draw sums that each partition computes for its
 *     rows, replaying jlens analyze's own seeded draws ({@link SparkResampling});</li>
 * <li>the cross-validated probe with Spark MLlib on the executors ({@link SparkProbe}), and its AUROC interval
 *     from the out-of-fold scores (one double per prompt on the driver);</li>
 * <li>the silhouette on jlens analyze's own point set: all prompts up to 2000, else its seeded stratified
 *     subsample of 2000 ({@code Resamples.silhouetteIndices}); those ≤ 2000 vectors per hook are the only ones
 *     the driver receives;</li>
 * <li>the length control from each prompt's token count (the {@code tokens} column): the driver matches the
 *     (rank, length) pairs with jlens analyze's LengthMatcher, then the matched subsample's moments and probe are
 *     computed as above.</li>
 * </ul>
 * A prompt's place in jlens analyze's order is its rank in its class by id (numerically when every id is an
 * integer), as {@link SparkProbe} explains; the random draws are indexed by it.
 */
public final class AnalyzeJob {

    /** The columns of jlens analyze's metrics.csv, in its order (LayerMetrics.csvColumns). */
    public static final StructType METRICS;

    static {
        StructType t = new StructType();
        for (String c : LayerMetrics.csvColumns()) {
            t = switch (c) {
                case "layer" -> t.add(c, DataTypes.IntegerType, false);
                case "hook" -> t.add(c, DataTypes.StringType, false);
                case "n_A", "n_B" -> t.add(c, DataTypes.LongType, false);
                case "len_n" -> t.add(c, DataTypes.IntegerType, true);   // null without length control
                default -> t.add(c, DataTypes.DoubleType, false);
            };
        }
        METRICS = t;
    }

    private static final Pattern LAYER = Pattern.compile("^blocks\\.(\\d+)\\.");

    /**
     * @param classA        label of class A (harmless in jlens analyze)
     * @param classB        label of class B (harmful)
     * @param classRef      label of the neutral reference prompts for cos_centered and cos_std, or null (then NaN)
     * @param seed          seed of every random choice (jlens analyze --seed)
     * @param cvFolds       folds of the probe's cross-validation (jlens analyze --cv-folds)
     * @param l2Penalty     λ of the probe's penalty (λ/2)‖w‖² (jlens analyze uses 1)
     * @param probe         whether to fit the probe (false: probe_* and len_probe_auroc are NaN)
     * @param bootstrap     bootstrap draws for the 95% intervals (jlens analyze --bootstrap; 0: none)
     * @param permutations  label permutations for the p-values (jlens analyze --permutations; 0: none)
     * @param lengthControl whether to compute the len_* metrics (needs the tokens column)
     */
    public record Settings(String classA, String classB, String classRef, long seed, int cvFolds, double l2Penalty,
                           boolean probe, int bootstrap, int permutations, boolean lengthControl) implements Serializable {
        public Settings {
            if (classA.equals(classB)) throw new JlensException("--class-a and --class-b are both \"" + classA + "\"");
            if (classRef != null && (classRef.equals(classA) || classRef.equals(classB))) {
                throw new JlensException("--class-ref \"" + classRef + "\" is also class A or B; the reference set is a third label");
            }
            if (cvFolds < 2) throw new JlensException("--cv-folds " + cvFolds + ": expected at least 2");
            if (!(l2Penalty > 0) || Double.isInfinite(l2Penalty)) {
                throw new JlensException("probe L2 penalty = " + l2Penalty + ": expected a finite number > 0");
            }
            if (bootstrap < 0) throw new JlensException("--bootstrap " + bootstrap + ": expected 0 or more");
            if (permutations < 0) throw new JlensException("--permutations " + permutations + ": expected 0 or more");
        }

        /** jlens analyze's defaults: no reference label, seed 42, 5 folds, λ = 1, the probe, 1000 draws each, length control. */
        public Settings(String classA, String classB) {
            this(classA, classB, null, 42, 5, 1.0, true, 1000, 1000, true);
        }
    }

    /** Where the metrics were written, one row per hook in layer order, and what could not be computed and why. */
    public record Result(String metricsPath, List<LayerMetrics> metrics, List<String> notComputed) {
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
        Map<String, Hook> hooks = new TreeMap<>();
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
            Matcher m = LAYER.matcher(e.getKey());
            hooks.put(e.getKey(), new Hook(e.getKey(), m.find() ? Integer.parseInt(m.group(1)) : -1, a, b, ref));
        }
        List<String> notComputed = new ArrayList<>();
        boolean haveTokens = List.of(activations.columns()).contains("tokens");
        boolean lengthControl = s.lengthControl() && haveTokens;
        if (s.lengthControl() && !haveTokens) {
            notComputed.add("len_* (length control: the table has no tokens column; jlens spark cache writes it)");
        }

        // Each prompt's rank in its class, by id: its index in jlens analyze's arrays (SparkProbe.ranks).
        Dataset<Row> two = activations.where(col("label").isin(s.classA(), s.classB()));
        Dataset<Row> ranks = SparkProbe.ranks(two.select("label", "hook", "vector", "id"), s);
        Map<String, Long> distinct = new HashMap<>();
        for (Row r : ranks.groupBy("label").count().collectAsList()) distinct.put(r.getString(0), r.getLong(1));
        for (Hook h : hooks.values()) {
            SparkProbe.check(h.name, s.classA(), h.a.n, distinct.getOrDefault(s.classA(), 0L));
            SparkProbe.check(h.name, s.classB(), h.b.n, distinct.getOrDefault(s.classB(), 0L));
        }
        List<String> cols = new ArrayList<>(List.of("hook", "label", "rank", "vector"));
        if (lengthControl) cols.add("tokens");
        Dataset<Row> indexed = two.join(ranks, new String[] {"label", "id"})
                .select(cols.stream().map(org.apache.spark.sql.functions::col).toArray(Column[]::new))
                .persist(StorageLevel.MEMORY_AND_DISK());
        try {
            List<LayerMetrics> metrics = new ArrayList<>();
            Map<String, double[]> silhouettes = silhouettes(indexed, hooks, s);
            // The probe and the length control (with its own probe) are independent: the probe's Spark jobs run from
            // another driver thread meanwhile, so the many small L-BFGS jobs of both overlap.
            java.util.concurrent.CompletableFuture<Map<String, SparkProbe.Result>> probing =
                    java.util.concurrent.CompletableFuture.completedFuture(Map.of());
            if (s.probe()) {
                Map<String, SparkProbe.Problem> problems = new HashMap<>();
                for (Hook h : hooks.values()) problems.put(h.name, new SparkProbe.Problem(h.a, h.b, h.layer, "cv", null, null));
                probing = java.util.concurrent.CompletableFuture.supplyAsync(() -> SparkProbe.run(spark, indexed, problems, s));
            }
            Map<String, LengthControl> lengths = lengthControl ? lengthControl(spark, indexed, hooks, s) : Map.of();
            Map<String, SparkProbe.Result> probe;
            try {
                probe = probing.join();
            } catch (java.util.concurrent.CompletionException e) {
                if (e.getCause() instanceof RuntimeException re) throw re;
                throw e;
            }
            for (Hook h : hooks.values()) {
                metrics.add(layerMetrics(spark, indexed, h, s, silhouettes.get(h.name)[0], probe.get(h.name),
                        lengths.get(h.name)));
            }
            metrics.sort(Comparator.comparingInt(LayerMetrics::layer).thenComparing(LayerMetrics::hook));
            List<Row> table = new ArrayList<>();
            for (LayerMetrics m : metrics) table.add(row(m));
            String path = out + "/metrics";
            Dataset<Row> df = spark.createDataFrame(table, METRICS).coalesce(1);
            df.write().mode(SaveMode.ErrorIfExists).parquet(path);
            df.write().mode(SaveMode.ErrorIfExists).option("header", "true").csv(out + "/metrics_csv");
            return new Result(path, metrics, notComputed);
        } finally {
            indexed.unpersist();
        }
    }

    /** One hook's moments (class A, B and the reference, or null) and layer. */
    private record Hook(String name, int layer, ClassMoments a, ClassMoments b, ClassMoments ref) {
        int nA() {
            return (int) a.n;
        }

        int nB() {
            return (int) b.n;
        }

        /** The pooled mean m₀ of both classes. */
        double[] pooledMean() {
            return a.copy().merge(b.copy()).mean;
        }
    }

    /** A row's pooled index in jlens analyze's order: its rank in A, or n_A + its rank in B. */
    private static int pooledIndex(Row r, String classA, int nA) {
        int rank = (int) r.getLong(r.fieldIndex("rank"));
        return classA.equals(r.getString(r.fieldIndex("label"))) ? rank : nA + rank;
    }

    private static float[] vector(Row r) {
        List<Float> v = r.getList(r.fieldIndex("vector"));
        float[] x = new float[v.size()];
        for (int j = 0; j < x.length; j++) x[j] = v.get(j);
        return x;
    }

    /**
     * Per hook {silhouette}: the silhouette on jlens analyze's point set (all prompts up to
     * {@link Resamples#SILHOUETTE_MAX}, else its seeded stratified subsample of that size), centred on the pooled
     * mean. The Euclidean silhouette needs every pairwise distance of that set, which no per-class sum gives (the
     * mean of ‖x − y‖ is not a function of moments, unlike that of ‖x − y‖²), so the driver collects those
     * ≤ 2000 vectors per hook — bounded whatever the table's size — and computes it with jlens analyze's code.
     */
    private static Map<String, double[]> silhouettes(Dataset<Row> indexed, Map<String, Hook> hooks, Settings s) {
        Map<String, boolean[]> chosen = new HashMap<>();
        Map<String, int[]> order = new HashMap<>();
        for (Hook h : hooks.values()) {
            int[] idx = Resamples.silhouetteIndices(h.nA(), h.nB(), Seeds.stream(s.seed(), h.layer, "silhouette"));
            boolean[] in = new boolean[h.nA() + h.nB()];
            for (int i : idx) in[i] = true;
            chosen.put(h.name, in);
            order.put(h.name, idx);
        }
        Map<String, Integer> nA = new HashMap<>();
        for (Hook h : hooks.values()) nA.put(h.name, h.nA());
        String classA = s.classA();
        List<Tuple3<String, Integer, float[]>> picked = indexed.javaRDD()
                .filter(r -> chosen.get(r.getString(0)) != null
                        && chosen.get(r.getString(0))[pooledIndex(r, classA, nA.get(r.getString(0)))])
                .map(r -> new Tuple3<>(r.getString(0), pooledIndex(r, classA, nA.get(r.getString(0))), vector(r)))
                .collect();
        Map<String, Map<Integer, float[]>> byHook = new HashMap<>();
        for (Tuple3<String, Integer, float[]> t : picked) byHook.computeIfAbsent(t._1(), k -> new HashMap<>()).put(t._2(), t._3());
        Map<String, double[]> out = new HashMap<>();
        for (Hook h : hooks.values()) {
            int[] idx = order.get(h.name);
            double[] m0 = h.pooledMean();
            double[][] rows = new double[idx.length][];
            boolean[] isB = new boolean[idx.length];
            Map<Integer, float[]> got = byHook.getOrDefault(h.name, Map.of());
            for (int k = 0; k < idx.length; k++) {
                float[] x = got.get(idx[k]);
                if (x == null) throw new JlensException("hook " + h.name + ": prompt " + idx[k] + " of the silhouette is missing");
                rows[k] = new double[x.length];
                for (int j = 0; j < x.length; j++) rows[k][j] = x[j] - m0[j];
                isB[k] = idx[k] >= h.nA();
            }
            out.put(h.name, new double[] {Resamples.silhouette(rows, isB)});
        }
        return out;
    }

    /** Everything of one hook but the silhouette, the probe and the length control, which are passed in. */
    private static LayerMetrics layerMetrics(SparkSession spark, Dataset<Row> indexed, Hook h, Settings s,
                                             double silhouette, SparkProbe.Result probe, LengthControl lc) {
        Metrics pm = metrics(h.name, h.a, h.b, h.ref);
        double acc = probe == null ? Double.NaN : probe.accuracy(), auroc = probe == null ? Double.NaN : probe.auroc();
        Estimate cosCi = Estimate.point(pm.cosRaw()), l2Ci = Estimate.point(pm.l2Rel());
        Estimate dispCi = Estimate.point(pm.dispRatio()), aucCi = Estimate.point(auroc);
        double pL2 = Double.NaN, pDisp = Double.NaN;
        if (s.bootstrap() > 0 || s.permutations() > 0) {
            SparkResampling.Plan plan = new SparkResampling.Plan(h.nA(), h.nB(), h.a.d, h.pooledMean(), s.bootstrap(),
                    s.permutations(), s.seed(), h.layer);
            String classA = s.classA(), hook = h.name;
            int nA = h.nA();
            SparkResampling.Sums sums = indexed.where(col("hook").equalTo(hook)).javaRDD()
                    .mapPartitions(it -> {
                        Iterator<SparkResampling.IndexedVector> rows = new Iterator<>() {
                            @Override
                            public boolean hasNext() {
                                return it.hasNext();
                            }

                            @Override
                            public SparkResampling.IndexedVector next() {
                                Row r = it.next();
                                return new SparkResampling.IndexedVector(pooledIndex(r, classA, nA), vector(r));
                            }
                        };
                        return List.of(SparkResampling.partition(rows, plan)).iterator();
                    })
                    .treeReduce(SparkResampling.Sums::merge, 2);
            SparkResampling.Draws d = SparkResampling.draws(sums, plan);
            if (s.bootstrap() > 0) {
                cosCi = interval(pm.cosRaw(), d.cosRaw());
                l2Ci = interval(pm.l2Rel(), d.l2Rel());
                dispCi = interval(pm.dispRatio(), d.dispRatio());
                if (probe != null) aucCi = interval(auroc, SparkResampling.aurocDraws(probe.scoresA(), probe.scoresB(), plan));
            }
            if (s.permutations() > 0) {
                pL2 = Quantiles.permutationP(pm.l2Raw(), d.l2Raw());
                pDisp = Quantiles.permutationP(Math.abs(Math.log(pm.dispRatio())), d.absLogDispRatio());
            }
        }
        return new LayerMetrics(h.name, h.layer, h.nA(), h.nB(), pm.cosRaw(), pm.cosCentered(), pm.cosStd(), pm.l2Raw(),
                pm.l2Rel(), pm.normA(), pm.normB(), pm.dispA(), pm.dispB(), pm.dispRelA(), pm.dispRelB(), pm.dispRatio(),
                pm.prA(), pm.prB(), pm.fisher(), acc, auroc, silhouette, cosCi, l2Ci, dispCi, aucCi, pL2, pDisp, lc);
    }

    private static Estimate interval(double value, double[] draws) {
        double[] ci = Quantiles.percentileInterval(draws, 0.95);
        return new Estimate(value, ci[0], ci[1]);
    }

    /**
     * jlens analyze's length control at every hook: the driver collects each prompt's (class, rank, token count),
     * n small rows, and pairs the prompts with jlens analyze's LengthMatcher and seed; the metrics of the matched
     * subsample then come from its moments (one more treeAggregate over the rows it keeps) and its probe from
     * MLlib on the same rows, with the folds jlens analyze draws for it ("length-cv").
     */
    private static Map<String, LengthControl> lengthControl(SparkSession spark, Dataset<Row> indexed,
                                                            Map<String, Hook> hooks, Settings s) {
        Hook first = hooks.values().iterator().next();
        int[] lenA = new int[first.nA()], lenB = new int[first.nB()];
        for (Row r : indexed.where(col("hook").equalTo(first.name)).select("label", "rank", "tokens").collectAsList()) {
            int rank = (int) r.getLong(1);
            if (s.classA().equals(r.getString(0))) lenA[rank] = r.getInt(2);
            else lenB[rank] = r.getInt(2);
        }
        Map<String, int[][]> pairs = new HashMap<>();
        Map<String, boolean[][]> keep = new HashMap<>();
        for (Hook h : hooks.values()) {
            int[][] p = Resamples.lengthMatch(lenA, lenB, 0, Seeds.stream(s.seed(), h.layer, "length-match"));
            pairs.put(h.name, p);
            boolean[] inA = new boolean[h.nA()], inB = new boolean[h.nB()];
            for (int k = 0; k < p[0].length; k++) {
                inA[p[0][k]] = true;
                inB[p[1][k]] = true;
            }
            keep.put(h.name, new boolean[][] {inA, inB});
        }
        String classA = s.classA();
        HashMap<String, ClassMoments[]> zero = new HashMap<>();
        HashMap<String, ClassMoments[]> matched = indexed.javaRDD().treeAggregate(zero, (acc, r) -> {
            boolean[][] k = keep.get(r.getString(0));
            boolean isA = classA.equals(r.getString(1));
            int rank = (int) r.getLong(2);
            if (k == null || !k[isA ? 0 : 1][rank]) return acc;
            float[] x = vector(r);
            ClassMoments[] set = acc.computeIfAbsent(r.getString(0), key -> new ClassMoments[3]);
            int c = isA ? 0 : 1;
            if (set[c] == null) set[c] = new ClassMoments(x.length);
            set[c].add(x);
            return acc;
        }, AnalyzeJob::merge, 2);
        Map<String, LengthControl> out = new HashMap<>();
        Map<String, SparkProbe.Problem> problems = new HashMap<>();
        Map<String, Metrics> point = new HashMap<>();
        for (Hook h : hooks.values()) {
            int[][] p = pairs.get(h.name);
            int m = p[0].length;
            if (m < 2) continue;
            ClassMoments a = matched.get(h.name)[0], b = matched.get(h.name)[1];
            point.put(h.name, metrics(h.name, a, b, null));
            int[] posA = new int[h.nA()], posB = new int[h.nB()];
            java.util.Arrays.fill(posA, -1);
            java.util.Arrays.fill(posB, -1);
            for (int k = 0; k < m; k++) {
                posA[p[0][k]] = k;
                posB[p[1][k]] = k;
            }
            problems.put(h.name, new SparkProbe.Problem(a, b, h.layer, "length-cv", posA, posB));
        }
        Map<String, SparkProbe.Result> probe = s.probe() && !problems.isEmpty() ? SparkProbe.run(spark, indexed, problems, s) : Map.of();
        for (Hook h : hooks.values()) {
            int[][] p = pairs.get(h.name);
            int m = p[0].length;
            double meanA = Double.NaN, meanB = Double.NaN;
            if (m > 0) {
                double sa = 0, sb = 0;
                for (int k = 0; k < m; k++) {
                    sa += lenA[p[0][k]];
                    sb += lenB[p[1][k]];
                }
                meanA = sa / m;
                meanB = sb / m;
            }
            Metrics pm = point.get(h.name);
            if (pm == null) {
                out.put(h.name, new LengthControl(m, Double.NaN, Double.NaN, Double.NaN, Double.NaN, meanA, meanB));
            } else {
                SparkProbe.Result r = probe.get(h.name);
                out.put(h.name, new LengthControl(m, pm.cosRaw(), pm.l2Rel(), pm.dispRatio(),
                        r == null ? Double.NaN : r.auroc(), meanA, meanB));
            }
        }
        return out;
    }

    /** A metrics row in the columns of {@link #METRICS}. */
    static Row row(LayerMetrics m) {
        List<Object> v = new ArrayList<>();
        v.add(m.layer());
        v.add(m.hook());
        v.add((long) m.nA());
        v.add((long) m.nB());
        for (double x : new double[] {m.cosRaw(), m.cosCentered(), m.cosStd(), m.l2Raw(), m.l2Rel(), m.normA(), m.normB(),
                m.dispA(), m.dispB(), m.dispRelA(), m.dispRelB(), m.dispRatio(), m.participationRatioA(),
                m.participationRatioB(), m.fisher(), m.probeAcc(), m.probeAuroc(), m.silhouette()}) {
            v.add(x);
        }
        for (Estimate e : new Estimate[] {m.cosRawCi(), m.l2RelCi(), m.dispRatioCi(), m.probeAurocCi()}) {
            v.add(e.lo());
            v.add(e.hi());
        }
        v.add(m.pL2Raw());
        v.add(m.pDispRatio());
        LengthControl lc = m.lengthControl();
        v.add(lc == null ? null : lc.nPerClass());
        double nan = Double.NaN;
        for (double x : lc == null ? new double[] {nan, nan, nan, nan, nan, nan}
                : new double[] {lc.cosRaw(), lc.l2Rel(), lc.dispRatio(), lc.probeAuroc(), lc.meanLenA(), lc.meanLenB()}) {
            v.add(x);
        }
        return RowFactory.create(v.toArray());
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

    /** The point metrics of one hook: those that follow from the class moments. */
    record Metrics(int layer, String hook, long nA, long nB, double cosRaw, double cosCentered, double cosStd,
                   double l2Raw, double l2Rel, double normA, double normB, double dispA, double dispB,
                   double dispRelA, double dispRelB, double dispRatio, double prA, double prB, double fisher) {
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
                a.participationRatio(), b.participationRatio(), fisher);
    }
}
