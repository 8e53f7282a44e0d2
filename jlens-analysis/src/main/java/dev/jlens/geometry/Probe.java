package dev.jlens.geometry;

import dev.jlens.stats.Auroc;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.LogisticRegression;
import dev.jlens.stats.StratifiedKFold;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Cross-validated linear probe: L2-penalised logistic regression on standardised activations, out-of-fold
 * scores for every prompt, accuracy at score 0 and AUROC of those scores.
 *
 * <p>Two choices keep it fast enough for 1000-draw layers. Standardisation uses the mean and standard deviation
 * of all prompts of the layer; they involve no labels, so nothing about the held-out classes leaks into
 * training, and they let the features be prepared once instead of once per fold. When d exceeds n the
 * standardised rows are replaced by their coordinates in an orthonormal basis of their own span (a pivoted
 * Cholesky factor of their Gram matrix): inner products are unchanged, so the penalised fit and every score are
 * the same as on the raw d dimensions, but each solver iteration costs n² instead of n·d.
 */
final class Probe {

    record Result(double[] scoresA, double[] scoresB, double accuracy, double auroc, int folds) {
    }

    private Probe() {
    }

    static Result crossValidated(double[][] a, double[][] b, int folds, double lambda, SplittableRandom rng) {
        int nA = a.length, nB = b.length, n = nA + nB;
        int k = Math.min(folds, Math.min(nA, nB));
        double[][] features = features(a, b);
        boolean[] positive = new boolean[n];
        for (int i = nA; i < n; i++) positive[i] = true;
        int[] fold = StratifiedKFold.assign(positive, k, rng);
        double[] scores = new double[n];
        IntStream.range(0, k).parallel().forEach(f -> {
            int trainCount = 0;
            for (int i = 0; i < n; i++) if (fold[i] != f) trainCount++;
            int[] train = new int[trainCount];
            int c = 0;
            for (int i = 0; i < n; i++) if (fold[i] != f) train[c++] = i;
            LogisticRegression.Model m = LogisticRegression.fit(features, positive, train, lambda);
            for (int i = 0; i < n; i++) if (fold[i] == f) scores[i] = m.score(features[i]);
        });
        double[] sA = java.util.Arrays.copyOfRange(scores, 0, nA);
        double[] sB = java.util.Arrays.copyOfRange(scores, nA, n);
        int correct = 0;
        for (double s : sA) if (s <= 0) correct++;
        for (double s : sB) if (s > 0) correct++;
        return new Result(sA, sB, (double) correct / n, Auroc.of(sA, sB), k);
    }

    /** Standardised rows (A then B), constant dimensions dropped, reduced to their span when d &gt; n. */
    static double[][] features(double[][] a, double[][] b) {
        int nA = a.length, n = nA + b.length, d = a[0].length;
        double[] mean = new double[d], m2 = new double[d];
        for (int i = 0; i < n; i++) LinAlg.axpy(1, i < nA ? a[i] : b[i - nA], mean);
        for (int j = 0; j < d; j++) mean[j] /= n;
        for (int i = 0; i < n; i++) {
            double[] x = i < nA ? a[i] : b[i - nA];
            for (int j = 0; j < d; j++) m2[j] += (x[j] - mean[j]) * (x[j] - mean[j]);
        }
        int[] keep = new int[d];
        double[] inv = new double[d];
        int kept = 0;
        for (int j = 0; j < d; j++) {
            double sd = Math.sqrt(m2[j] / n);
            // A constant dimension leaves rounding noise of order ulp(mean); scaling that to unit variance would
            // turn it into a feature, so it is dropped instead.
            if (sd > 1e-9 * Math.abs(mean[j]) && sd > 0) {
                keep[kept] = j;
                inv[kept++] = 1 / sd;
            }
        }
        double[][] z = new double[n][kept];
        for (int i = 0; i < n; i++) {
            double[] x = i < nA ? a[i] : b[i - nA];
            for (int c = 0; c < kept; c++) z[i][c] = (x[keep[c]] - mean[keep[c]]) * inv[c];
        }
        if (kept <= n) return z;
        return LinAlg.pivotedCholesky(LinAlg.gram(z), 1e-12);
    }
}
