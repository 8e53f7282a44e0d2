package dev.jlens.detect;

import java.util.Arrays;

/**
 * Maps raw scores to probabilities and picks the flagging threshold, both on the validation split. Platt
 * scaling with Platt's smoothed targets (t₊ = (N₊+1)/(N₊+2), t₋ = 1/(N₋+2)) keeps the fit finite when the
 * validation scores separate the classes perfectly, which at small n they often do; Newton's method on the two
 * coefficients follows Lin, Lin &amp; Weng (2007). Written by hand: two parameters, a dozen lines.
 */
final class Calibration {

    private Calibration() {
    }

    /** {a, b} with probability = σ(a·raw + b). */
    static double[] platt(double[] raw, boolean[] positive) {
        int n = raw.length, nPos = 0;
        double mean = 0;
        for (int i = 0; i < n; i++) {
            mean += raw[i];
            if (positive[i]) nPos++;
        }
        mean /= n;
        double var = 0;
        for (double r : raw) var += (r - mean) * (r - mean);
        double sd = Math.sqrt(var / n);
        int nNeg = n - nPos;
        double tPos = (nPos + 1.0) / (nPos + 2.0), tNeg = 1.0 / (nNeg + 2.0);
        double a = 0, b = Math.log((nPos + 1.0) / (nNeg + 1.0));
        if (!(sd > 0)) return new double[] {0, b};
        // Fit on standardised scores, where one Newton step is well scaled whatever the raw units are.
        double[] s = new double[n], t = new double[n];
        for (int i = 0; i < n; i++) {
            s[i] = (raw[i] - mean) / sd;
            t[i] = positive[i] ? tPos : tNeg;
        }
        double f = loss(s, t, a, b);
        for (int iter = 0; iter < 100; iter++) {
            double ga = 0, gb = 0, haa = 1e-12, hab = 0, hbb = 1e-12;
            for (int i = 0; i < n; i++) {
                double p = DetectorParams.sigmoid(a * s[i] + b);
                double r = p - t[i], w = p * (1 - p);
                ga += r * s[i];
                gb += r;
                haa += w * s[i] * s[i];
                hab += w * s[i];
                hbb += w;
            }
            if (Math.abs(ga) < 1e-10 && Math.abs(gb) < 1e-10) break;
            double det = haa * hbb - hab * hab;
            double da = -(hbb * ga - hab * gb) / det, db = -(-hab * ga + haa * gb) / det;
            double step = 1, fNew = f;
            for (int k = 0; k < 50; k++) {
                fNew = loss(s, t, a + step * da, b + step * db);
                if (fNew <= f + 1e-4 * step * (ga * da + gb * db)) break;
                step /= 2;
            }
            if (!(fNew < f)) break;
            a += step * da;
            b += step * db;
            f = fNew;
        }
        return new double[] {a / sd, b - a * mean / sd};
    }

    private static double loss(double[] s, double[] t, double a, double b) {
        double f = 0;
        for (int i = 0; i < s.length; i++) {
            double z = a * s[i] + b;
            f += t[i] * softplus(-z) + (1 - t[i]) * softplus(z);
        }
        return f;
    }

    private static double softplus(double z) {
        return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    /**
     * The threshold on scores (flag when score ≥ threshold). Candidate cuts sit at each distinct value;
     * the chosen cut is moved to the midpoint between that value and the next lower one, so scores that fall
     * between two validation scores are judged by the nearer side. Ties between cuts go to the higher
     * threshold (fewer flags).
     */
    static double threshold(double[] p, boolean[] positive, ThresholdRule rule) {
        int n = p.length;
        Integer[] order = new Integer[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Arrays.sort(order, (x, y) -> Double.compare(p[y], p[x]));
        int nPos = 0;
        for (boolean b : positive) if (b) nPos++;
        int nNeg = n - nPos;
        double best = Double.NEGATIVE_INFINITY, bestCut = Double.NaN, bestNext = Double.NaN;
        int tp = 0, fp = 0;
        for (int k = 0; k < n; ) {
            double v = p[order[k]];
            while (k < n && p[order[k]] == v) {
                if (positive[order[k]]) tp++;
                else fp++;
                k++;
            }
            double tpr = nPos == 0 ? 0 : (double) tp / nPos, fpr = nNeg == 0 ? 0 : (double) fp / nNeg;
            double objective;
            if (rule.isYouden()) objective = tpr - fpr;
            else objective = fpr <= rule.maxFpr() + 1e-12 ? tpr : Double.NEGATIVE_INFINITY;
            if (objective > best + 1e-12) {
                best = objective;
                bestCut = v;
                bestNext = k < n ? p[order[k]] : Double.NaN;
            }
        }
        if (Double.isNaN(bestCut)) {
            // Not even the highest value keeps the false-positive bound: flag only above every validation score.
            return Math.nextUp(p[order[0]]);
        }
        // Flagging nothing at all can beat every cut under an FPR bound of 0 with ties at the top.
        if (!rule.isYouden() && best <= 0) return Math.nextUp(p[order[0]]);
        return Double.isNaN(bestNext) ? bestCut : (bestCut + bestNext) / 2;
    }
}
