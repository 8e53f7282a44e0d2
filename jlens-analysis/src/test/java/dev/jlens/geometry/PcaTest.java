package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.jlens.JlensException;
import dev.jlens.stats.LinAlg;
import java.util.Random;
import org.junit.jupiter.api.Test;

class PcaTest {

    /** Points on a line: the first coordinate is the signed position along it, the second is zero. */
    @Test
    void pointsOnALineProjectOntoTheFirstAxis() {
        for (int d : new int[] {3, 50}) {   // scatter path (n > d) and Gram path (n ≤ d)
            Random rng = new Random(d);
            int n = 30;
            double[] u = new double[d], c = new double[d];
            for (int j = 0; j < d; j++) {
                u[j] = rng.nextGaussian();
                c[j] = 5 * rng.nextGaussian();
            }
            double un = Synthetic.norm(u);
            for (int j = 0; j < d; j++) u[j] /= un;
            double[] t = new double[n];
            double tMean = 0;
            double[][] x = new double[n][d];
            for (int i = 0; i < n; i++) {
                t[i] = 3 * rng.nextGaussian();
                tMean += t[i] / n;
                for (int j = 0; j < d; j++) x[i][j] = c[j] + t[i] * u[j];
            }
            Pca.Projection p = Pca.fit2d(x);
            double sign = Math.signum(LinAlg.dot(p.components()[0], u));
            for (int i = 0; i < n; i++) {
                assertEquals(sign * (t[i] - tMean), p.coords()[i][0], 1e-9);
                assertEquals(0, p.coords()[i][1], 1e-9);
            }
            assertEquals(1, p.explainedVarianceRatio()[0], 1e-12);
            assertEquals(0, p.explainedVarianceRatio()[1], 1e-12);
            assertEquals(0, LinAlg.dot(p.components()[0], p.components()[1]), 1e-12);
            assertEquals(Pca.project2d(x)[7][0], p.coords()[7][0], 0);
        }
    }

    /** Both paths agree with the eigenvalues of the sample covariance computed directly. */
    @Test
    void explainedVarianceMatchesTheCovarianceSpectrum() {
        Random rng = new Random(8);
        int d = 6;
        double[] scales = {4, 2, 1, 0.5, 0.3, 0.1};
        for (int n : new int[] {4, 200}) {
            double[][] x = new double[n][d];
            for (double[] row : x) for (int j = 0; j < d; j++) row[j] = scales[j] * rng.nextGaussian();
            double[] mu = PointMetrics.mean(x);
            double[][] cov = new double[d][d];
            for (double[] row : x) {
                for (int i = 0; i < d; i++) for (int j = 0; j < d; j++) cov[i][j] += (row[i] - mu[i]) * (row[j] - mu[j]) / (n - 1);
            }
            LinAlg.SymEigen eig = LinAlg.jacobi(cov);
            double total = 0;
            for (double v : eig.values()) total += v;
            Pca.Projection p = Pca.fit2d(x);
            for (int k = 0; k < 2; k++) {
                assertEquals(eig.values()[k], p.explainedVariance()[k], 1e-9 * eig.values()[0]);
                assertEquals(eig.values()[k] / total, p.explainedVarianceRatio()[k], 1e-9);
                assertEquals(1, Math.abs(LinAlg.dot(eig.vectors()[k], p.components()[k])), 1e-7);
            }
        }
    }

    @Test
    void rejectsTooFewRows() {
        assertThrows(JlensException.class, () -> Pca.project2d(new double[][] {{1, 2, 3}}));
    }
}
