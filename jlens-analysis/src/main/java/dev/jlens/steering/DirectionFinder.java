package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.ProgressListener;
import dev.jlens.model.TransformerModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.LogisticRegression;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Fits one direction per (hook, token position) from the activations of two prompt classes, A (e.g. harmless)
 * and B (e.g. harmful), so that r̂ points from A towards B. Activations are read by hooks during forward
 * passes that stop after the deepest selected block; class sums are accumulated in float64. Per-prompt
 * vectors are kept only for the methods that need them (PCA, probe).
 */
public final class DirectionFinder {

    /**
     * @param hooks       which hook points (must be d_model wide; attention patterns and the final-norm scale are skipped)
     * @param positions   token positions, each its own direction
     * @param method      how to fit r̂
     * @param batchSize   prompts per forward pass
     * @param probeLambda L2 penalty of the logistic probe (method probe)
     */
    public record Options(HookPattern hooks, List<TokenPosition> positions, DirectionMethod method, int batchSize,
                          double probeLambda) {
        public Options {
            if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
            if (positions.isEmpty()) throw new JlensException("--positions: no positions given");
            if (!(probeLambda > 0)) throw new JlensException("probe penalty " + probeLambda + ": expected a positive number");
        }
    }

    private DirectionFinder() {
    }

    /** The hook points a pattern selects that carry [tokens, d_model] activations. */
    public static List<HookPoint> selectPoints(TransformerModel model, HookPattern pattern) {
        List<HookPoint> out = new ArrayList<>();
        for (HookPoint p : pattern.select(model.hookPoints())) {
            if (p.kind().residualWidth()) out.add(p);
        }
        if (out.isEmpty()) {
            throw new JlensException("--hooks \"" + pattern + "\" selects no residual-width activation (attention patterns, "
                    + "per-head hooks and ln_final.hook_scale have no d_model-wide direction); use e.g. blocks.*.hook_resid_pre");
        }
        return out;
    }

    /**
     * Encodes both prompt sets with the model's tokenizer, fits the directions and records where they came from.
     *
     * @param warnings told about prompts cut to the model's context
     */
    public static DirectionSet compute(HookedModel m, PromptSet a, PromptSet b, Options opts, ProgressListener progress,
                                       Consumer<String> warnings, String jlensVersion) {
        return compute(m, a, b, opts, progress, warnings, jlensVersion, texts -> {
            List<int[]> ids = new ArrayList<>();
            for (String t : texts) ids.add(m.encode(t, warnings));
            return ids;
        });
    }

    /**
     * As above with the prompts encoded by {@code encoder} (e.g. through a chat template), so the same fit serves
     * plain and chat-formatted prompts.
     */
    public static DirectionSet compute(HookedModel m, PromptSet a, PromptSet b, Options opts, ProgressListener progress,
                                       Consumer<String> warnings, String jlensVersion,
                                       java.util.function.Function<List<String>, List<int[]>> encoder) {
        if (a.sha256().equals(b.sha256()) && a.texts().equals(b.texts())) {
            throw new JlensException("class A (" + a.name() + ") and class B (" + b.name() + ") are the same prompts; "
                    + "a direction needs two different classes");
        }
        List<int[]> idsA = encoder.apply(a.texts()), idsB = encoder.apply(b.texts());
        List<Direction> ds = find(m.model(), idsA, idsB, opts, progress, warnings);
        List<String> hooks = new ArrayList<>();
        for (Direction d : ds) if (!hooks.contains(d.hook())) hooks.add(d.hook());
        ModelInfo info = m.info();
        DirectionSet.Meta meta = new DirectionSet.Meta(m.location().id(), m.location().revision(), info.architecture(),
                info.family(), info.dModel(), info.nLayers(), opts.method(), hooks,
                opts.positions().stream().map(TokenPosition::label).toList(),
                new DirectionSet.SetInfo(a.name(), a.size(), a.sha256()), new DirectionSet.SetInfo(b.name(), b.size(), b.sha256()),
                jlensVersion, java.time.OffsetDateTime.now().withNano(0).toString());
        return new DirectionSet(meta, ds);
    }

    /** Runs both classes and fits the directions, in hook order then position order. */
    public static List<Direction> find(TransformerModel model, List<int[]> classA, List<int[]> classB, Options opts,
                                       ProgressListener progress, Consumer<String> warnings) {
        if (classA.size() < 2 || classB.size() < 2) {
            throw new JlensException("a direction needs at least 2 prompts per class (better 50+); got " + classA.size()
                    + " in class A and " + classB.size() + " in class B");
        }
        List<HookPoint> points = selectPoints(model, opts.hooks());
        boolean keepRows = opts.method() != DirectionMethod.DIFF_MEANS;
        int total = classA.size() + classB.size();
        Collector a = new Collector(points, opts.positions(), keepRows, classA.size());
        Collector b = new Collector(points, opts.positions(), keepRows, classB.size());
        run(model, classA, a, opts.batchSize(), progress, 0, total);
        run(model, classB, b, opts.batchSize(), progress, classA.size(), total);
        List<Direction> out = new ArrayList<>();
        List<String> skipped = new ArrayList<>();
        for (HookPoint p : points) {
            for (TokenPosition pos : opts.positions()) {
                Direction d = fit(p, pos, a.get(p.name(), pos), b.get(p.name(), pos), opts);
                if (d != null) out.add(d);
                else skipped.add(Direction.nameOf(p.name(), pos.label()));
            }
        }
        if (out.isEmpty()) {
            throw new JlensException("the two classes have identical mean activations at every hook and position ("
                    + String.join(", ", skipped) + "); no direction separates them");
        }
        if (!skipped.isEmpty() && warnings != null) {
            warnings.accept("no direction at " + String.join(", ", skipped) + ": both classes have the same mean activation "
                    + "there (e.g. the embedding of a last token that every prompt shares), so it is left out");
        }
        return out;
    }

    private static void run(TransformerModel model, List<int[]> prompts, Collector c, int batchSize,
                            ProgressListener progress, int doneBefore, int total) {
        Set<String> names = new HashSet<>(c.names());
        Hooks hooks = Hooks.none().with(names::contains, c::record);
        int deepest = hooks.deepestLayer(model.hookPoints());
        ForwardOptions opts = deepest == Integer.MAX_VALUE ? new ForwardOptions(false, -1) : ForwardOptions.upTo(Math.max(deepest, 0));
        for (int start = 0; start < prompts.size(); start += batchSize) {
            List<int[]> chunk = prompts.subList(start, Math.min(prompts.size(), start + batchSize));
            c.batchStart = start;
            model.forward(TokenBatch.of(chunk), opts, hooks);
            progress.progress(doneBefore + start + chunk.size(), total);
        }
    }

    /** Class statistics at one (hook, position). */
    static final class Stats {
        final double[] sum;
        final float[][] rows;
        int count;
        double normSum;

        Stats(int d, int prompts, boolean keepRows) {
            sum = new double[d];
            rows = keepRows ? new float[prompts][] : null;
        }

        double[] mean() {
            double[] m = new double[sum.length];
            for (int j = 0; j < m.length; j++) m[j] = sum[j] / count;
            return m;
        }
    }

    /** Reads the selected hooks of one class's prompts. Not thread-safe; forward passes run one at a time. */
    private static final class Collector {
        private final List<TokenPosition> positions;
        private final boolean keepRows;
        private final int prompts;
        private final Map<String, Map<String, Stats>> stats = new LinkedHashMap<>();
        private final List<String> names = new ArrayList<>();
        int batchStart;

        Collector(List<HookPoint> points, List<TokenPosition> positions, boolean keepRows, int prompts) {
            this.positions = positions;
            this.keepRows = keepRows;
            this.prompts = prompts;
            for (HookPoint p : points) names.add(p.name());
        }

        List<String> names() {
            return names;
        }

        Stats get(String hook, TokenPosition pos) {
            Map<String, Stats> m = stats.get(hook);
            Stats s = m == null ? null : m.get(pos.label());
            if (s == null) throw new IllegalStateException("hook " + hook + " never fired");
            return s;
        }

        FloatTensor record(HookPoint point, FloatTensor value, TokenBatch batch) {
            int d = value.cols();
            float[] x = value.data();
            Map<String, Stats> m = stats.computeIfAbsent(point.name(), k -> new LinkedHashMap<>());
            for (TokenPosition pos : positions) {
                Stats st = m.computeIfAbsent(pos.label(), k -> new Stats(d, prompts, keepRows));
                for (int s = 0; s < batch.size(); s++) {
                    int off = batch.offsets()[s], len = batch.lengths()[s];
                    double[] v = new double[d];
                    if (pos.isMean()) {
                        for (int t = 0; t < len; t++) for (int j = 0; j < d; j++) v[j] += x[(off + t) * d + j];
                        for (int j = 0; j < d; j++) v[j] /= len;
                    } else {
                        int r = pos.row(len);
                        if (r < 0) continue;   // too short to have this position
                        for (int j = 0; j < d; j++) v[j] = x[(off + r) * d + j];
                    }
                    for (int j = 0; j < d; j++) st.sum[j] += v[j];
                    st.normSum += LinAlg.norm(v);
                    st.count++;
                    if (keepRows) {
                        float[] f = new float[d];
                        for (int j = 0; j < d; j++) f[j] = (float) v[j];
                        st.rows[batchStart + s] = f;
                    }
                }
            }
            return value;
        }
    }

    /** The direction at one (hook, position), or null where both class means coincide. */
    static Direction fit(HookPoint p, TokenPosition pos, Stats a, Stats b, Options opts) {
        String where = p.name() + " at position " + pos.label();
        if (a.count == 0 || b.count == 0) {
            throw new JlensException(where + ": no prompt of class " + (a.count == 0 ? "A" : "B") + " has this position "
                    + "(every prompt is shorter than " + (pos.fromEnd() + 1) + " tokens); choose fewer positions");
        }
        double[] muA = a.mean(), muB = b.mean();
        int d = muA.length;
        double[] diff = new double[d];
        for (int j = 0; j < d; j++) diff[j] = muB[j] - muA[j];
        double diffNorm = LinAlg.norm(diff);
        if (!(diffNorm > 1e-12 * Math.max(1, LinAlg.norm(muA)))) return null;   // nothing to separate here
        double[] dm = diff.clone();
        for (int j = 0; j < d; j++) dm[j] /= diffNorm;
        double[] r = switch (opts.method()) {
            case DIFF_MEANS -> dm;
            case PCA -> pairedPca(a, b, diff, where);
            case PROBE -> probe(a, b, opts.probeLambda(), diff, where);
            case CONTROL_VECTOR -> throw new JlensException("--method control-vector: directions of that kind are imported "
                    + "(jlens control-vector import), not fitted; expected diff-means, pca or probe");
        };
        float[] unit = new float[d];
        for (int j = 0; j < d; j++) unit[j] = (float) r[j];
        double meanNorm = (a.normSum + b.normSum) / (a.count + b.count);
        return new Direction(p.name(), p.layer(), pos.label(), unit, LinAlg.dot(diff, r), LinAlg.dot(muA, r),
                LinAlg.dot(muB, r), meanNorm, a.count, b.count, LinAlg.dot(r, dm));
    }

    /**
     * The leading right singular vector of the paired differences D (rows b_i − a_i), i.e. the top eigenvector
     * of DᵀD, without centring: centring would remove the mean difference, which is the signal. Solved on the
     * small Gram matrix DDᵀ and mapped back, signed to point from A to B.
     */
    private static double[] pairedPca(Stats a, Stats b, double[] diff, String where) {
        int n = Math.min(a.rows.length, b.rows.length);
        List<double[]> pairs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (a.rows[i] == null || b.rows[i] == null) continue;
            double[] v = new double[diff.length];
            for (int j = 0; j < v.length; j++) v[j] = (double) b.rows[i][j] - a.rows[i][j];
            pairs.add(v);
        }
        if (pairs.size() < 2) throw new JlensException(where + ": PCA needs at least 2 pairs of prompts, got " + pairs.size());
        double[][] dm = pairs.toArray(double[][]::new);
        LinAlg.SymEigen eig = LinAlg.topEigen(LinAlg.gram(dm), 1);
        double[] r = new double[diff.length];
        double[] u = eig.vectors()[0];
        for (int i = 0; i < dm.length; i++) LinAlg.axpy(u[i], dm[i], r);
        return signedUnit(r, diff, where);
    }

    private static double[] probe(Stats a, Stats b, double lambda, double[] diff, String where) {
        List<double[]> x = new ArrayList<>();
        List<Boolean> y = new ArrayList<>();
        for (Stats s : List.of(a, b)) {
            for (float[] row : s.rows) {
                if (row == null) continue;
                double[] v = new double[row.length];
                for (int j = 0; j < v.length; j++) v[j] = row[j];
                x.add(v);
                y.add(s == b);
            }
        }
        boolean[] positive = new boolean[y.size()];
        int[] rows = new int[y.size()];
        for (int i = 0; i < rows.length; i++) {
            positive[i] = y.get(i);
            rows[i] = i;
        }
        LogisticRegression.Model model = LogisticRegression.fit(x.toArray(double[][]::new), positive, rows, lambda);
        return signedUnit(model.weights().clone(), diff, where);
    }

    private static double[] signedUnit(double[] r, double[] towardsB, String where) {
        double n = LinAlg.norm(r);
        if (!(n > 0) || !Double.isFinite(n)) throw new JlensException(where + ": the fit gave no direction (zero vector)");
        double sign = LinAlg.dot(r, towardsB) < 0 ? -1 : 1;
        for (int j = 0; j < r.length; j++) r[j] = sign * r[j] / n;
        return r;
    }
}
