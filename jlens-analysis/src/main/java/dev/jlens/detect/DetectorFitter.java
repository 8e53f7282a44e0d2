package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.stats.Auroc;
import dev.jlens.stats.LogisticRegression;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Fits the detectors of one hook: on the train rows only, with every choice (C, shrinkage, the Platt map and
 * the threshold) made on the validation rows only. The test rows are never seen here.
 */
public final class DetectorFitter {

    /** Inverse penalties C = 1/λ tried for the logistic probe (scikit-learn's convention). */
    public static final double[] DEFAULT_C = {0.001, 0.01, 0.1, 1, 10};
    /** Fixed shrinkage intensities tried next to the Ledoit–Wolf one. */
    public static final double[] DEFAULT_SHRINKAGE = {0.05, 0.2, 0.5, 0.8};

    public record Options(double[] cGrid, double[] shrinkageGrid, ThresholdRule threshold) {
        public Options {
            if (cGrid.length == 0) throw new JlensException("the C grid of the logistic probe is empty");
            for (double c : cGrid) if (!(c > 0)) throw new JlensException("C " + c + ": expected a positive number");
            for (double s : shrinkageGrid) {
                if (!(s > 0 && s <= 1)) throw new JlensException("shrinkage " + s + ": expected a number in (0, 1]");
            }
        }

        public static Options defaults() {
            return new Options(DEFAULT_C, DEFAULT_SHRINKAGE, ThresholdRule.youden());
        }
    }

    /**
     * A fitted detector with the choices made on validation.
     *
     * @param hyper     the hyperparameters chosen ("C", "shrinkage", "ledoit_wolf"), empty for diff-means
     * @param valAuroc  validation AUROC of the chosen setting (of the raw score)
     */
    public record Fitted(DetectorParams params, Map<String, Double> hyper, double valAuroc) {
    }

    private final double[][] x;
    private final boolean[] positive;
    private final int[] train, val;
    private final Options options;
    private final float[] mean, invStd;
    private final double[][] z;      // standardised rows (all rows; only train and val are read)

    /**
     * @param x        pooled activations, one row per example of every split
     * @param positive true for harmful examples
     */
    public DetectorFitter(double[][] x, boolean[] positive, int[] train, int[] val, Options options) {
        this.x = x;
        this.positive = positive;
        this.train = train;
        this.val = val;
        this.options = options;
        requireBothClasses("train", train);
        requireBothClasses("validation", val);
        int d = x[train[0]].length;
        for (double[] row : x) {
            if (row.length != d) throw new JlensException("activations have rows of width " + row.length + " and " + d);
            for (double v : row) {
                if (!Double.isFinite(v)) throw new JlensException("activations hold a non-finite value (" + v + ")");
            }
        }
        // Standardisation from the train rows, rounded to float first: it is part of the saved detector.
        double[] m = new double[d], m2 = new double[d];
        for (int i : train) for (int j = 0; j < d; j++) m[j] += x[i][j];
        for (int j = 0; j < d; j++) m[j] /= train.length;
        for (int i : train) for (int j = 0; j < d; j++) m2[j] += (x[i][j] - m[j]) * (x[i][j] - m[j]);
        mean = new float[d];
        invStd = new float[d];
        for (int j = 0; j < d; j++) {
            double sd = Math.sqrt(m2[j] / train.length);
            mean[j] = (float) m[j];
            // A constant dimension leaves rounding noise of order ulp(mean); scaled to unit variance it would
            // become a feature, so it is dropped (z = 0) instead.
            invStd[j] = sd > 1e-9 * Math.abs(m[j]) && sd > 0 ? (float) (1 / sd) : 0f;
        }
        z = new double[x.length][d];
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < d; j++) z[i][j] = (x[i][j] - mean[j]) * invStd[j];
        }
    }

    private void requireBothClasses(String split, int[] rows) {
        int pos = 0;
        for (int i : rows) if (positive[i]) pos++;
        if (pos == 0 || pos == rows.length) {
            throw new JlensException("the " + split + " split holds " + (pos == 0 ? "no harmful" : "no harmless")
                    + " prompt; every split needs both classes (" + rows.length + " prompts in it)");
        }
    }

    public Fitted fit(DetectorKind kind) {
        return switch (kind) {
            case LOGISTIC -> logistic();
            case DIFF_MEANS -> diffMeans();
            case MAHALANOBIS -> mahalanobis();
        };
    }

    private Fitted logistic() {
        int d = mean.length;
        Candidate best = null;
        double bestC = Double.NaN;
        for (double c : options.cGrid()) {
            LogisticRegression.Model m = LogisticRegression.fit(z, positive, train, 1 / c);
            float[] w = new float[d];
            for (int j = 0; j < d; j++) w[j] = (float) m.weights()[j];
            Candidate cand = evaluate(new DetectorParams(DetectorKind.LOGISTIC, mean, invStd, w, m.intercept(),
                    null, null, 1, 0, 0), true);
            if (cand.better(best)) {
                best = cand;
                bestC = c;
            }
        }
        Map<String, Double> hyper = new LinkedHashMap<>();
        hyper.put("C", bestC);
        return finish(best, hyper);
    }

    private Fitted diffMeans() {
        int d = mean.length;
        double[] muA = new double[d], muB = new double[d];
        int nA = 0, nB = 0;
        for (int i : train) {
            double[] acc = positive[i] ? muB : muA;
            for (int j = 0; j < d; j++) acc[j] += x[i][j];
            if (positive[i]) nB++;
            else nA++;
        }
        double norm = 0;
        for (int j = 0; j < d; j++) {
            muA[j] /= nA;
            muB[j] /= nB;
            norm += (muB[j] - muA[j]) * (muB[j] - muA[j]);
        }
        norm = Math.sqrt(norm);
        if (!(norm > 0)) throw new JlensException("the class means of the train split are identical; no difference-in-means direction");
        // raw = u·(x − midpoint), written in the standardised coordinates the saved detector uses:
        // x_j = mean_j + z_j/invStd_j, so w_j = u_j/invStd_j and the rest is a constant.
        float[] w = new float[d];
        double bias = 0;
        for (int j = 0; j < d; j++) {
            double u = (muB[j] - muA[j]) / norm;
            w[j] = invStd[j] == 0 ? 0f : (float) (u / invStd[j]);
            bias += u * (mean[j] - 0.5 * (muA[j] + muB[j]));
        }
        Candidate cand = evaluate(new DetectorParams(DetectorKind.DIFF_MEANS, mean, invStd, w, bias, null, null, 1, 0, 0), false);
        return finish(cand, new LinkedHashMap<>());
    }

    private Fitted mahalanobis() {
        int d = mean.length;
        List<Integer> harmful = new ArrayList<>();
        for (int i : train) if (positive[i]) harmful.add(i);
        if (harmful.size() < 2) throw new JlensException("the train split needs at least 2 harmful prompts for the Mahalanobis detector");
        double[] c = new double[d];
        for (int i : harmful) for (int j = 0; j < d; j++) c[j] += z[i][j];
        for (int j = 0; j < d; j++) c[j] /= harmful.size();
        float[] centroid = new float[d];
        for (int j = 0; j < d; j++) centroid[j] = (float) c[j];
        double[][] centred = new double[harmful.size()][d];
        for (int k = 0; k < harmful.size(); k++) {
            double[] zi = z[harmful.get(k)];
            for (int j = 0; j < d; j++) centred[k][j] = zi[j] - c[j];
        }
        Shrinkage s = new Shrinkage(centred);
        double lw = Math.max(s.ledoitWolf(), 1e-6);   // δ = 0 has no inverse when n ≤ d
        List<Double> grid = new ArrayList<>();
        grid.add(lw);
        for (double g : options.shrinkageGrid()) if (Math.abs(g - lw) > 1e-12) grid.add(g);
        Candidate best = null;
        double bestDelta = Double.NaN;
        for (double delta : grid) {
            double[] p = s.precision(delta);
            float[] pf = new float[p.length];
            for (int k = 0; k < p.length; k++) pf[k] = (float) p[k];
            Candidate cand = evaluate(new DetectorParams(DetectorKind.MAHALANOBIS, mean, invStd, null, 0, centroid, pf,
                    1, 0, 0), false);
            if (cand.better(best)) {
                best = cand;
                bestDelta = delta;
            }
        }
        Map<String, Double> hyper = new LinkedHashMap<>();
        hyper.put("shrinkage", bestDelta);
        hyper.put("ledoit_wolf", lw);
        return finish(best, hyper);
    }

    /** Validation AUROC (and log-loss of σ(raw), the tie-break) of a candidate whose Platt map is still 1, 0. */
    private record Candidate(DetectorParams params, double[] raw, double auroc, double logLoss) {
        boolean better(Candidate other) {
            if (other == null) return true;
            if (auroc > other.auroc + 1e-12) return true;
            return Math.abs(auroc - other.auroc) <= 1e-12 && logLoss < other.logLoss - 1e-12;
        }
    }

    private Candidate evaluate(DetectorParams p, boolean withLogLoss) {
        double[] raw = new double[val.length];
        List<Double> neg = new ArrayList<>(), pos = new ArrayList<>();
        double ll = 0;
        for (int k = 0; k < val.length; k++) {
            int i = val[k];
            raw[k] = p.raw(x[i]);
            (positive[i] ? pos : neg).add(raw[k]);
            if (withLogLoss) ll += positive[i] ? softplus(-raw[k]) : softplus(raw[k]);
        }
        double auc = Auroc.of(neg.stream().mapToDouble(Double::doubleValue).toArray(),
                pos.stream().mapToDouble(Double::doubleValue).toArray());
        return new Candidate(p, raw, auc, ll);
    }

    private static double softplus(double z) {
        return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    /**
     * The same detector with its Platt map and threshold refitted on validation scores computed another way
     * (token scores aggregated by max or a window mean): standardisation and direction stay as fitted.
     *
     * @param valRaw raw scores of the validation examples, in the order of {@code valPositive}
     */
    public static Fitted recalibrate(Fitted f, double[] valRaw, boolean[] valPositive, ThresholdRule rule) {
        double[] ab = Calibration.platt(valRaw, valPositive);
        double[] logit = new double[valRaw.length];
        List<Double> neg = new ArrayList<>(), pos = new ArrayList<>();
        for (int k = 0; k < valRaw.length; k++) {
            logit[k] = ab[0] * valRaw[k] + ab[1];
            (valPositive[k] ? pos : neg).add(valRaw[k]);
        }
        double threshold = Calibration.threshold(logit, valPositive, rule);
        DetectorParams q = f.params();
        DetectorParams done = new DetectorParams(q.kind(), q.mean(), q.invStd(), q.weights(), q.bias(), q.centroid(),
                q.precision(), ab[0], ab[1], threshold);
        double auc = Auroc.of(neg.stream().mapToDouble(Double::doubleValue).toArray(), pos.stream().mapToDouble(Double::doubleValue).toArray());
        return new Fitted(done, f.hyper(), auc);
    }

    private Fitted finish(Candidate c, Map<String, Double> hyper) {
        boolean[] valPos = new boolean[val.length];
        for (int k = 0; k < val.length; k++) valPos[k] = positive[val[k]];
        double[] ab = Calibration.platt(c.raw(), valPos);
        DetectorParams q = c.params();
        double[] logit = new double[val.length];
        for (int k = 0; k < val.length; k++) logit[k] = ab[0] * c.raw()[k] + ab[1];
        double threshold = Calibration.threshold(logit, valPos, options.threshold());
        DetectorParams done = new DetectorParams(q.kind(), q.mean(), q.invStd(), q.weights(), q.bias(), q.centroid(),
                q.precision(), ab[0], ab[1], threshold);
        return new Fitted(done, hyper, c.auroc());
    }
}
