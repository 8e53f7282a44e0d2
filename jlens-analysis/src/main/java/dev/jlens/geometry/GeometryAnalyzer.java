package dev.jlens.geometry;

import dev.jlens.JlensException;
import dev.jlens.stats.Auroc;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.Quantiles;
import dev.jlens.stats.Seeds;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

/**
 * Geometry of class A (harmless) against class B (harmful) activations at one layer: how far apart the class
 * means are, how spread each class is, how linearly separable they are, with bootstrap intervals, permutation
 * p-values and a token-length-matched control. Definitions: docs/METRICS.md.
 *
 * <p>Every random choice comes from a generator seeded by the options' seed, the layer index and the purpose,
 * so a layer's numbers are reproducible and independent of thread count and of the other layers analysed.
 */
public final class GeometryAnalyzer {

    /** The silhouette costs n²·d; above this many prompts it uses a seeded stratified subsample of this size. */
    static final int SILHOUETTE_MAX = 2000;

    private final GeometryOptions options;

    public GeometryAnalyzer(GeometryOptions o) {
        if (o == null) throw new JlensException("geometry options: missing");
        this.options = o;
    }

    public GeometryOptions options() {
        return options;
    }

    /**
     * @param hook     hook name, for the report and error messages
     * @param layer    layer index; mixed into the seed
     * @param a        class A activations [prompts][d], at least 2 prompts
     * @param b        class B activations [prompts][d], at least 2 prompts
     * @param ref      neutral reference activations [prompts][d] for centring and standardising, or null
     *                 (then cos_centered and cos_std are NaN)
     * @param lengthsA token count per class A prompt, or null (no length control)
     * @param lengthsB token count per class B prompt, or null
     */
    public LayerMetrics analyze(String hook, int layer, double[][] a, double[][] b, double[][] ref,
                                int[] lengthsA, int[] lengthsB) {
        String where = "hook " + hook + ", layer " + layer;
        int d = Inputs.matrix(a, "class A (harmless) activations", where, -1, null, 2);
        Inputs.matrix(b, "class B (harmful) activations", where, d, "the class A rows", 2);
        if (ref != null) Inputs.matrix(ref, "reference activations", where, d, "the class A rows", 1);
        boolean haveLengths = Inputs.lengths(lengthsA, lengthsB, a.length, b.length, where);
        int nA = a.length, nB = b.length, n = nA + nB;
        long seed = options.seed();

        PointMetrics pm = PointMetrics.of(a, b);
        double cosCentered = Double.NaN, cosStd = Double.NaN;
        if (ref != null) {
            double[][] cs = referenceCosines(pm.meanA(), pm.meanB(), ref);
            cosCentered = cs[0][0];
            cosStd = cs[1][0];
        }

        Resampling rs = new Resampling(a, b, options.bootstrap(), options.permutations());
        double[][] g = rs.gram();
        double prA = g != null ? Spectra.participationRatioFromGram(g, 0, nA) : Spectra.participationRatio(a);
        double prB = g != null ? Spectra.participationRatioFromGram(g, nA, n) : Spectra.participationRatio(b);
        double silhouette = silhouette(rs, nA, nB, Seeds.stream(seed, layer, "silhouette"));

        Probe.Result probe = Probe.crossValidated(a, b, options.cvFolds(), options.l2Penalty(),
                Seeds.stream(seed, layer, "cv"));

        Estimate cosCi = Estimate.point(pm.cosRaw()), l2Ci = Estimate.point(pm.l2Rel());
        Estimate dispCi = Estimate.point(pm.dispRatio()), aucCi = Estimate.point(probe.auroc());
        if (options.bootstrap() > 0) {
            // The AUROC interval resamples the out-of-fold scores, not the fits: refitting 5 probes per draw would
            // cost 1000× more. It covers the sampling noise of the evaluation set, not that of the training.
            Resampling.BootstrapDraws bd = rs.bootstrap(options.bootstrap(), Seeds.stream(seed, layer, "bootstrap"),
                    new Auroc.Resampler(probe.scoresA(), probe.scoresB()));
            cosCi = interval(pm.cosRaw(), bd.cosRaw());
            l2Ci = interval(pm.l2Rel(), bd.l2Rel());
            dispCi = interval(pm.dispRatio(), bd.dispRatio());
            aucCi = interval(probe.auroc(), bd.auroc());
        }
        double pL2 = Double.NaN, pDisp = Double.NaN;
        if (options.permutations() > 0) {
            Resampling.PermutationDraws pd = rs.permutations(options.permutations(),
                    Seeds.stream(seed, layer, "permutation"));
            pL2 = Quantiles.permutationP(pm.l2Raw(), pd.l2Raw());
            pDisp = Quantiles.permutationP(Math.abs(Math.log(pm.dispRatio())), pd.absLogDispRatio());
        }
        LengthControl lc = options.lengthControl() && haveLengths
                ? lengthControl(a, b, lengthsA, lengthsB, layer) : null;

        return new LayerMetrics(hook, layer, nA, nB, pm.cosRaw(), cosCentered, cosStd, pm.l2Raw(), pm.l2Rel(),
                pm.normA(), pm.normB(), pm.dispA(), pm.dispB(),
                pm.dispA() * d / (pm.normA() * pm.normA()), pm.dispB() * d / (pm.normB() * pm.normB()),
                pm.dispRatio(), prA, prB, pm.fisher(), probe.accuracy(), probe.auroc(), silhouette,
                cosCi, l2Ci, dispCi, aucCi, pL2, pDisp, lc);
    }

    /** {cos_centered}, {cos_std}: cosines of the class means after centring on (and scaling by) the reference. */
    private static double[][] referenceCosines(double[] muA, double[] muB, double[][] ref) {
        int d = muA.length;
        double[] mu0 = PointMetrics.mean(ref);
        double[] var = new double[d];
        for (double[] r : ref) for (int j = 0; j < d; j++) var[j] += (r[j] - mu0[j]) * (r[j] - mu0[j]);
        double[] ca = new double[d], cb = new double[d], sa = new double[d], sb = new double[d];
        for (int j = 0; j < d; j++) {
            ca[j] = muA[j] - mu0[j];
            cb[j] = muB[j] - mu0[j];
            double sd = Math.sqrt(var[j] / ref.length);
            // A dimension on which the reference does not vary has no scale to divide by; it is left out
            // (also when only rounding noise of order ulp(mean) is left).
            if (sd > 0 && sd > 1e-9 * Math.abs(mu0[j])) {
                sa[j] = ca[j] / sd;
                sb[j] = cb[j] / sd;
            }
        }
        return new double[][] {{LinAlg.cosine(ca, cb)}, {LinAlg.cosine(sa, sb)}};
    }

    private static double silhouette(Resampling rs, int nA, int nB, SplittableRandom rng) {
        int n = nA + nB;
        boolean[] isB = new boolean[n];
        for (int i = nA; i < n; i++) isB[i] = true;
        int[] idx = Resamples.silhouetteIndices(nA, nB, rng);
        if (rs.gram() != null) return Silhouette.of(rs.gram(), idx, isB);
        double[][] rows = new double[idx.length][];
        boolean[] sub = new boolean[idx.length];
        for (int k = 0; k < idx.length; k++) {
            rows[k] = rs.centred()[idx[k]];
            sub[k] = isB[idx[k]];
        }
        return Resamples.silhouette(rows, sub);
    }

    private LengthControl lengthControl(double[][] a, double[][] b, int[] lengthsA, int[] lengthsB, int layer) {
        LengthMatcher.Pairs pairs = LengthMatcher.match(lengthsA, lengthsB, options.lengthCaliper(),
                Seeds.stream(options.seed(), layer, "length-match"));
        int m = pairs.size();
        double lenA = 0, lenB = 0;
        double[][] subA = new double[m][], subB = new double[m][];
        for (int k = 0; k < m; k++) {
            subA[k] = a[pairs.a()[k]];
            subB[k] = b[pairs.b()[k]];
            lenA += lengthsA[pairs.a()[k]];
            lenB += lengthsB[pairs.b()[k]];
        }
        lenA = m == 0 ? Double.NaN : lenA / m;
        lenB = m == 0 ? Double.NaN : lenB / m;
        if (m < 2) return new LengthControl(m, Double.NaN, Double.NaN, Double.NaN, Double.NaN, lenA, lenB);
        PointMetrics pm = PointMetrics.of(subA, subB);
        Probe.Result probe = Probe.crossValidated(subA, subB, options.cvFolds(), options.l2Penalty(),
                Seeds.stream(options.seed(), layer, "length-cv"));
        return new LengthControl(m, pm.cosRaw(), pm.l2Rel(), pm.dispRatio(), probe.auroc(), lenA, lenB);
    }

    private static Estimate interval(double value, double[] draws) {
        double[] ci = Quantiles.percentileInterval(draws, 0.95);
        return new Estimate(value, ci[0], ci[1]);
    }

    /**
     * The peak layer of l2_rel, fisher and probe_auroc (keys "l2_rel", "fisher", "probe_auroc"): the row with
     * the largest value, the first one on a tie, NaN values ignored; a key is absent when no row has a value.
     */
    public static Map<String, LayerMetrics> peaks(List<LayerMetrics> rows) {
        Map<String, LayerMetrics> out = new LinkedHashMap<>();
        peak(out, "l2_rel", rows, LayerMetrics::l2Rel);
        peak(out, "fisher", rows, LayerMetrics::fisher);
        peak(out, "probe_auroc", rows, LayerMetrics::probeAuroc);
        return out;
    }

    private static void peak(Map<String, LayerMetrics> out, String key, List<LayerMetrics> rows,
                             ToDoubleFunction<LayerMetrics> f) {
        LayerMetrics best = null;
        for (LayerMetrics r : rows) {
            double v = f.applyAsDouble(r);
            if (!Double.isNaN(v) && (best == null || v > f.applyAsDouble(best))) best = r;
        }
        if (best != null) out.put(key, best);
    }
}
