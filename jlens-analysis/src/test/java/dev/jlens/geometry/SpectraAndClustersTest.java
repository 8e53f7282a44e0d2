package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.jlens.stats.LinAlg;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Participation ratio and silhouette against exact constructions and brute force. */
class SpectraAndClustersTest {

    /**
     * Rows ±s_k·e_k have mean 0 and covariance diag(2s_k²)/(n−1) exactly, so PR = (Σs_k²)² / Σs_k⁴. Both the
     * Gram path (n ≤ d) and the scatter path (n &gt; d) must give it.
     */
    @Test
    void participationRatioOfAKnownSpectrum() {
        double[] s = {3, 2, 2, 1, 0.5};
        double sum2 = 0, sum4 = 0;
        for (double v : s) {
            sum2 += v * v;
            sum4 += v * v * v * v;
        }
        double expected = sum2 * sum2 / sum4;
        for (int d : new int[] {5, 7, 40}) {
            double[][] x = new double[2 * s.length][d];
            for (int k = 0; k < s.length; k++) {
                x[2 * k][k] = s[k];
                x[2 * k + 1][k] = -s[k];
            }
            assertEquals(expected, Spectra.participationRatio(x), 1e-12, "d = " + d);
            // The same rows shifted (as in the pooled-centred Gram matrix) give the same ratio.
            double[][] shifted = new double[x.length][];
            for (int i = 0; i < x.length; i++) {
                shifted[i] = x[i].clone();
                for (int j = 0; j < d; j++) shifted[i][j] += 7 - j;
            }
            assertEquals(expected, Spectra.participationRatioFromGram(LinAlg.gram(shifted), 0, x.length), 1e-9);
        }
        // Through the analyzer, on both of its paths (d-space for d = 5, Gram for d = 40 with few rows).
        for (int d : new int[] {5, 40}) {
            double[][] a = new double[2 * s.length][d];
            for (int k = 0; k < s.length; k++) {
                a[2 * k][k] = s[k];
                a[2 * k + 1][k] = -s[k];
            }
            double[][] b = Synthetic.gaussian(new Random(d), 10, new double[d], 1.0);
            LayerMetrics m = new GeometryAnalyzer(new GeometryOptions(10, 10, 1, 2, 1.0, false))
                    .analyze("h", 0, a, b, null, null, null);
            assertEquals(expected, m.participationRatioA(), 1e-9, "analyzer, d = " + d);
        }
    }

    @Test
    void participationRatioOfIsotropicNoiseIsItsDimension() {
        // Sample PR of k isotropic dimensions is ≈ k / (1 + k/n) (the sample spectrum spreads out).
        int k = 10, n = 5000;
        double[][] x = Synthetic.gaussian(new Random(3), n, new double[k], 2.0);
        assertEquals(k / (1 + (double) k / n), Spectra.participationRatio(x), 0.03 * k);
    }

    @Test
    void silhouetteMatchesBruteForce() {
        Random rng = new Random(4);
        double[][] a = Synthetic.gaussian(rng, 17, Synthetic.vector(6, 1), 1.0);
        double[][] b = Synthetic.gaussian(rng, 23, Synthetic.vector(6, 0, 2), 1.5);
        LayerMetrics m = new GeometryAnalyzer(new GeometryOptions(0, 0, 1, 2, 1.0, false))
                .analyze("h", 0, a, b, null, null, null);
        assertEquals(bruteForceSilhouette(a, b), m.silhouette(), 1e-9);
    }

    private static double bruteForceSilhouette(double[][] a, double[][] b) {
        double total = 0;
        double[][][] cls = {a, b};
        for (int c = 0; c < 2; c++) {
            for (double[] x : cls[c]) {
                double same = 0, other = 0;
                for (double[] y : cls[c]) same += dist(x, y);
                for (double[] y : cls[1 - c]) other += dist(x, y);
                same /= cls[c].length - 1;
                other /= cls[1 - c].length;
                total += (other - same) / Math.max(other, same);
            }
        }
        return total / (a.length + b.length);
    }

    private static double dist(double[] x, double[] y) {
        double s = 0;
        for (int j = 0; j < x.length; j++) s += (x[j] - y[j]) * (x[j] - y[j]);
        return Math.sqrt(s);
    }

    @Test
    void fisherMatchesItsDefinition() {
        Random rng = new Random(5);
        double[][] a = Synthetic.gaussian(rng, 30, Synthetic.vector(4, 1), 1.0);
        double[][] b = Synthetic.gaussian(rng, 40, Synthetic.vector(4, 0, 1), 2.0);
        PointMetrics pm = PointMetrics.of(a, b);
        double[] w = new double[4];
        for (int j = 0; j < 4; j++) w[j] = pm.meanB()[j] - pm.meanA()[j];
        double l = Synthetic.norm(w);
        for (int j = 0; j < 4; j++) w[j] /= l;
        double expected = l * l / (sampleVariance(a, w) + sampleVariance(b, w));
        assertEquals(expected, pm.fisher(), 1e-10);
    }

    private static double sampleVariance(double[][] x, double[] w) {
        double[] t = new double[x.length];
        double mean = 0;
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < w.length; j++) t[i] += x[i][j] * w[j];
            mean += t[i] / x.length;
        }
        double ss = 0;
        for (double v : t) ss += (v - mean) * (v - mean);
        return ss / (x.length - 1);
    }
}
