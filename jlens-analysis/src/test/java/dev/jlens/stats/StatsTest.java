package dev.jlens.stats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StatsTest {

    private static double bruteAuroc(double[] neg, double[] pos) {
        double s = 0;
        for (double p : pos) for (double n : neg) s += p > n ? 1 : p == n ? 0.5 : 0;
        return s / (neg.length * (double) pos.length);
    }

    @Test
    void aurocCountsTiesAsHalf() {
        assertEquals(1.0, Auroc.of(new double[] {0, 1}, new double[] {2, 3}));
        assertEquals(0.0, Auroc.of(new double[] {2, 3}, new double[] {0, 1}));
        assertEquals(0.5, Auroc.of(new double[] {1, 1}, new double[] {1, 1}));
        Random rng = new Random(1);
        for (int r = 0; r < 50; r++) {
            double[] neg = new double[1 + rng.nextInt(30)], pos = new double[1 + rng.nextInt(30)];
            for (int i = 0; i < neg.length; i++) neg[i] = rng.nextInt(6);   // many ties
            for (int i = 0; i < pos.length; i++) pos[i] = rng.nextInt(7);
            assertEquals(bruteAuroc(neg, pos), Auroc.of(neg, pos), 1e-12);
        }
    }

    @Test
    void resampledAurocEqualsAurocOfTheExpandedResample() {
        Random rng = new Random(2);
        double[] neg = new double[25], pos = new double[30];
        for (int i = 0; i < neg.length; i++) neg[i] = Math.round(rng.nextGaussian() * 4) / 4.0;
        for (int i = 0; i < pos.length; i++) pos[i] = Math.round((rng.nextGaussian() + 0.7) * 4) / 4.0;
        Auroc.Resampler rs = new Auroc.Resampler(neg, pos);
        for (int r = 0; r < 20; r++) {
            int[] cn = new int[neg.length], cp = new int[pos.length];
            for (int k = 0; k < neg.length; k++) cn[rng.nextInt(neg.length)]++;
            for (int k = 0; k < pos.length; k++) cp[rng.nextInt(pos.length)]++;
            assertEquals(bruteAuroc(expand(neg, cn), expand(pos, cp)), rs.auroc(cn, cp), 1e-12);
        }
    }

    private static double[] expand(double[] v, int[] counts) {
        double[] out = new double[Arrays.stream(counts).sum()];
        int k = 0;
        for (int i = 0; i < v.length; i++) for (int c = 0; c < counts[i]; c++) out[k++] = v[i];
        return out;
    }

    @Test
    void quantilesInterpolateAndSkipNaN() {
        double[] v = {5, 1, Double.NaN, 3, 2, 4};
        assertEquals(1, Quantiles.quantile(v, 0));
        assertEquals(5, Quantiles.quantile(v, 1));
        assertEquals(3, Quantiles.quantile(v, 0.5));
        assertEquals(1.1, Quantiles.quantile(v, 0.025), 1e-12);
        assertArrayEquals(new double[] {1.1, 4.9}, Quantiles.percentileInterval(v, 0.95), 1e-12);
        assertTrue(Double.isNaN(Quantiles.quantile(new double[] {Double.NaN}, 0.5)));
        assertEquals(1.0 / 5, Quantiles.permutationP(10, new double[] {1, 2, 3, 4}));
        assertEquals(3.0 / 5, Quantiles.permutationP(3, new double[] {1, 2, 3, 4}));
        assertTrue(Double.isNaN(Quantiles.permutationP(3, new double[0])));
    }

    @Test
    void logisticRegressionReachesTheOptimum() {
        Random rng = new Random(3);
        int n = 120, p = 15;
        double[][] x = new double[n][p];
        boolean[] y = new boolean[n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < p; j++) x[i][j] = rng.nextGaussian() * (j < 3 ? 5 : 1);   // ill-conditioned
            y[i] = x[i][0] + 0.5 * x[i][1] + rng.nextGaussian() * 2 > 1;
        }
        int[] rows = java.util.stream.IntStream.range(0, n).toArray();
        double lambda = 0.5;
        LogisticRegression.Model m = LogisticRegression.fit(x, y, rows, lambda, 1e-10, 5000);
        assertTrue(m.converged());
        // Stationarity: Σ (σ(w·x + b) − y) x + λw = 0 and Σ (σ − y) = 0.
        double[] g = new double[p];
        double gb = 0;
        for (int i = 0; i < n; i++) {
            double r = LogisticRegression.sigmoid(m.score(x[i])) - (y[i] ? 1 : 0);
            gb += r;
            for (int j = 0; j < p; j++) g[j] += r * x[i][j];
        }
        for (int j = 0; j < p; j++) assertEquals(0, g[j] + lambda * m.weights()[j], 1e-6);
        assertEquals(0, gb, 1e-6);
        assertTrue(m.weights()[0] > 0 && m.weights()[1] > 0);
    }

    /** The probe's span reduction: fitting on a Cholesky factor of ZZᵀ gives the scores of fitting on Z. */
    @Test
    void fitOnCholeskyCoordinatesEqualsFitOnRawFeatures() {
        Random rng = new Random(4);
        int n = 40, d = 200;
        double[][] z = new double[n][d];
        boolean[] y = new boolean[n];
        for (int i = 0; i < n; i++) {
            y[i] = i % 2 == 0;
            for (int j = 0; j < d; j++) z[i][j] = rng.nextGaussian() + (y[i] && j < 5 ? 0.8 : 0);
        }
        double[][] l = LinAlg.pivotedCholesky(LinAlg.gram(z), 1e-12);
        assertEquals(n, l[0].length);
        int[] train = java.util.stream.IntStream.range(0, n).filter(i -> i % 4 != 0).toArray();
        LogisticRegression.Model onZ = LogisticRegression.fit(z, y, train, 1.0, 1e-10, 5000);
        LogisticRegression.Model onL = LogisticRegression.fit(l, y, train, 1.0, 1e-10, 5000);
        for (int i = 0; i < n; i += 4) assertEquals(onZ.score(z[i]), onL.score(l[i]), 1e-6);
    }

    @Test
    void gramAndCholeskyAgreeWithNaiveComputation() {
        Random rng = new Random(5);
        for (int n : new int[] {1, 2, 5, 13, 64}) {
            double[][] x = new double[n][37];
            for (double[] row : x) for (int j = 0; j < row.length; j++) row[j] = rng.nextGaussian();
            double[][] g = LinAlg.gram(x);
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int k = 0; k < 37; k++) s += x[i][k] * x[j][k];
                    assertEquals(s, g[i][j], 1e-10);
                }
            }
            double[][] l = LinAlg.pivotedCholesky(g, 1e-12);
            assertEquals(Math.min(n, 37), l[0].length, "rank");
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) assertEquals(g[i][j], LinAlg.dot(l[i], l[j]), 1e-9);
        }
    }

    @Test
    void subspaceIterationFindsTheLeadingEigenpairs() {
        Random rng = new Random(6);
        int m = 100;
        double[][] x = new double[150][m];
        for (double[] row : x) for (int j = 0; j < m; j++) row[j] = rng.nextGaussian() * (1 + 3.0 / (1 + j));
        double[][] c = LinAlg.gram(LinAlg.transpose(x));
        LinAlg.SymEigen all = LinAlg.jacobi(c);
        LinAlg.SymEigen top = LinAlg.topEigen(c, 3);
        for (int k = 0; k < 3; k++) {
            assertEquals(all.values()[k], top.values()[k], 1e-9 * all.values()[0]);
            assertEquals(1, Math.abs(LinAlg.dot(all.vectors()[k], top.vectors()[k])), 1e-8);
        }
        // Jacobi itself: C·v = λ·v.
        for (int k = 0; k < m; k += 17) {
            double[] v = all.vectors()[k];
            for (int i = 0; i < m; i++) assertEquals(all.values()[k] * v[i], LinAlg.dot(c[i], v), 1e-8 * all.values()[0]);
        }
    }

    @Test
    void stratifiedFoldsAreBalanced() {
        boolean[] pos = new boolean[53];
        for (int i = 0; i < 23; i++) pos[i * 2] = true;
        int[] fold = StratifiedKFold.assign(pos, 5, new SplittableRandom(1));
        int[][] counts = new int[5][2];
        for (int i = 0; i < pos.length; i++) counts[fold[i]][pos[i] ? 1 : 0]++;
        for (int[] c : counts) {
            assertTrue(c[1] == 4 || c[1] == 5, Arrays.toString(c));
            assertTrue(c[0] == 6 || c[0] == 7, Arrays.toString(c));
            assertTrue(c[0] + c[1] == 10 || c[0] + c[1] == 11, Arrays.toString(c));
        }
        assertArrayEquals(fold, StratifiedKFold.assign(pos, 5, new SplittableRandom(1)));
    }

    @Test
    void seedStreamsAreKeyedBySeedLayerAndPurpose() {
        long a = Seeds.stream(42, 3, "bootstrap").nextLong();
        assertEquals(a, Seeds.stream(42, 3, "bootstrap").nextLong());
        assertNotEquals(a, Seeds.stream(42, 4, "bootstrap").nextLong());
        assertNotEquals(a, Seeds.stream(43, 3, "bootstrap").nextLong());
        assertNotEquals(a, Seeds.stream(42, 3, "permutation").nextLong());
    }
}
