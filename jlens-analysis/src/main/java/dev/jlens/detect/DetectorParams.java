package dev.jlens.detect;

import dev.jlens.JlensException;

/**
 * The numbers of one fitted detector, as saved: standardisation, the kind's own parameters, the Platt map from
 * raw score to a calibrated log-odds ("logit") and probability, and the flagging threshold on the logit. Parameters are float32 because
 * that is how they are saved; the probe evaluates exactly these rounded values, so a loaded detector
 * reproduces the reported scores: bit for bit with last-token pooling, to rounding (~10⁻⁷ relative) with mean
 * pooling, where the detector averages its token scores in double and the probe scored the float32 mean
 * activation. Arithmetic is in double, in one fixed order, so a score does
 * not depend on the thread that computes it.
 *
 * <p>With z_j = (x_j − mean_j)·invStd_j: linear kinds score w·z + bias; Mahalanobis scores −(z − c)ᵀP(z − c)
 * with P the shrunk precision matrix (row-major d×d). logit = plattA·raw + plattB, probability = σ(logit), and
 * a prompt is flagged when logit ≥ thresholdLogit. Ranking and flagging use the logit because the probability
 * rounds to exactly 0 or 1 for large |logit|, which would turn distinct scores into ties.
 *
 * <p>The arrays are shared, not copied; nothing in jlens writes to them after construction.
 */
public record DetectorParams(DetectorKind kind, float[] mean, float[] invStd, float[] weights, double bias,
                             float[] centroid, float[] precision, double plattA, double plattB, double thresholdLogit) {

    public DetectorParams {
        int d = mean.length;
        if (invStd.length != d) throw new JlensException("detector: inv_std has " + invStd.length + " values, mean has " + d);
        switch (kind) {
            case LOGISTIC, DIFF_MEANS -> {
                if (weights == null || weights.length != d) {
                    throw new JlensException("detector (" + kind.cliName() + "): expected " + d + " weights, found "
                            + (weights == null ? "none" : weights.length));
                }
            }
            case MAHALANOBIS -> {
                if (centroid == null || centroid.length != d) {
                    throw new JlensException("detector (mahalanobis): expected a centroid of " + d + " values, found "
                            + (centroid == null ? "none" : centroid.length));
                }
                if (precision == null || precision.length != (long) d * d) {
                    throw new JlensException("detector (mahalanobis): expected a " + d + "x" + d + " precision matrix, found "
                            + (precision == null ? "none" : precision.length + " values"));
                }
            }
        }
        for (double v : new double[] {bias, plattA, plattB, thresholdLogit}) {
            if (!Double.isFinite(v)) throw new JlensException("detector (" + kind.cliName() + "): bias, Platt coefficients "
                    + "and threshold must be finite numbers");
        }
    }

    public int dModel() {
        return mean.length;
    }

    /** The raw score of a pooled activation: higher means more like the harmful class. */
    public double raw(double[] x) {
        int d = mean.length;
        if (x.length != d) throw new JlensException("detector expects activations of width " + d + ", got " + x.length);
        double[] z = new double[d];
        for (int j = 0; j < d; j++) z[j] = ((double) x[j] - mean[j]) * invStd[j];
        return rawStandardised(z);
    }

    /** The raw score of one row {@code data[offset .. offset + d)}, e.g. one token's activation; same arithmetic as {@link #raw(double[])}. */
    public double raw(float[] data, int offset) {
        int d = mean.length;
        double[] z = new double[d];
        for (int j = 0; j < d; j++) z[j] = ((double) data[offset + j] - mean[j]) * invStd[j];
        return rawStandardised(z);
    }

    public double raw(float[] x) {
        double[] xd = new double[x.length];
        for (int j = 0; j < x.length; j++) xd[j] = x[j];
        return raw(xd);
    }

    private double rawStandardised(double[] z) {
        int d = z.length;
        if (kind != DetectorKind.MAHALANOBIS) {
            double s = 0;
            for (int j = 0; j < d; j++) s += weights[j] * z[j];
            return s + bias;
        }
        double[] r = new double[d];
        for (int j = 0; j < d; j++) r[j] = z[j] - centroid[j];
        double q = 0;
        for (int i = 0; i < d; i++) {
            double row = 0;
            int base = i * d;
            for (int j = 0; j < d; j++) row += precision[base + j] * r[j];
            q += r[i] * row;
        }
        return -q;
    }

    public double logit(double raw) {
        return plattA * raw + plattB;
    }

    public static double probabilityOfLogit(double logit) {
        return sigmoid(logit);
    }

    public boolean flagged(double logit) {
        return logit >= thresholdLogit;
    }

    /** The threshold as a probability, for display. */
    public double thresholdProbability() {
        return sigmoid(thresholdLogit);
    }

    static double sigmoid(double z) {
        if (z >= 0) return 1 / (1 + Math.exp(-z));
        double e = Math.exp(z);
        return e / (1 + e);
    }
}
