package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** Two Gaussian clusters with chosen means and spreads: every metric against its analytic value. */
class GaussianClustersTest {

    private static final int D = 20, N = 1500;
    private static final double SIGMA_A = 1.0, SIGMA_B = 1.5;
    private static final double[] MU_A = Synthetic.vector(D, 2, 1), MU_B = Synthetic.vector(D, 1, 2);

    private static LayerMetrics analyzeTwoClusters(long dataSeed) {
        Random rng = new Random(dataSeed);
        double[][] a = Synthetic.gaussian(rng, N, MU_A, SIGMA_A);
        double[][] b = Synthetic.gaussian(rng, N, MU_B, SIGMA_B);
        return new GeometryAnalyzer(GeometryOptions.defaults()).analyze("resid", 4, a, b, null, null, null);
    }

    @Test
    void metricsMatchTheirAnalyticValues() {
        LayerMetrics m = analyzeTwoClusters(1);
        assertEquals(N, m.nA());
        assertEquals(N, m.nB());

        // cos(mean_A, mean_B) = (2·1 + 1·2) / 5; the sample means are off by σ/√n ≈ 0.03 per dimension.
        assertEquals(0.8, m.cosRaw(), 0.03);
        // ‖Δ̂‖² is biased upward by d(σ_A² + σ_B²)/n (noise in the two means), so compare with its expectation.
        double l2Expected = Math.sqrt(2 + D * (SIGMA_A * SIGMA_A + SIGMA_B * SIGMA_B) / N);
        double l2Sd = Math.sqrt((SIGMA_A * SIGMA_A + SIGMA_B * SIGMA_B) / N);
        assertEquals(l2Expected, m.l2Raw(), 4 * l2Sd);
        // Dispersion = mean squared distance to the centroid per dimension = σ²(1 − 1/n); relative sd √(2/(nd)).
        double relSd = Math.sqrt(2.0 / (N * D));
        assertEquals(SIGMA_A * SIGMA_A * (1 - 1.0 / N), m.dispA(), 4 * relSd * SIGMA_A * SIGMA_A);
        assertEquals(SIGMA_B * SIGMA_B * (1 - 1.0 / N), m.dispB(), 4 * relSd * SIGMA_B * SIGMA_B);
        assertEquals(SIGMA_A * SIGMA_A / (SIGMA_B * SIGMA_B), m.dispRatio(), 0.02);
        // Along the mean-difference direction each class has variance σ² (Gaussian deviations are independent of
        // the sample mean), so Fisher = ‖Δ̂‖² / (σ_A² + σ_B²); the two variance estimates have a relative sd of
        // √(2/n) ≈ 3.7% each.
        double fisherExpected = m.l2Raw() * m.l2Raw() / (SIGMA_A * SIGMA_A + SIGMA_B * SIGMA_B);
        assertEquals(fisherExpected, m.fisher(), 0.1 * fisherExpected);
        // E‖x‖ ≈ √(‖μ‖² + dσ²) up to a Jensen gap of about σ²/(2E‖x‖) (~1%).
        assertEquals(Math.sqrt(5 + D * SIGMA_A * SIGMA_A), m.normA(), 0.03 * m.normA());
        assertEquals(Math.sqrt(5 + D * SIGMA_B * SIGMA_B), m.normB(), 0.03 * m.normB());
        assertEquals(m.l2Raw() / ((m.normA() + m.normB()) / 2), m.l2Rel(), 1e-12);
        assertEquals(m.dispA() * D / (m.normA() * m.normA()), m.dispRelA(), 1e-12);
        assertEquals(m.dispB() * D / (m.normB() * m.normB()), m.dispRelB(), 1e-12);
        // Isotropic noise in 20 dimensions: participation ratio ≈ d / (1 + d/n).
        assertEquals(D / (1 + (double) D / N), m.participationRatioA(), 0.05 * D);
        assertEquals(D / (1 + (double) D / N), m.participationRatioB(), 0.05 * D);
        // The classes overlap: the Bayes-optimal linear AUROC is Φ(‖Δ‖ / √(σ_A² + σ_B²)) ≈ Φ(0.78) ≈ 0.78.
        assertEquals(0.78, m.probeAuroc(), 0.04);
        // Without a reference set or token lengths these stay undefined.
        assertTrue(Double.isNaN(m.cosCentered()));
        assertTrue(Double.isNaN(m.cosStd()));
        assertEquals(null, m.lengthControl());
    }

    @Test
    void intervalsContainTheTrueValues() {
        LayerMetrics m = analyzeTwoClusters(2);
        assertTrue(m.cosRawCi().contains(0.8), () -> "cos_raw CI " + m.cosRawCi());
        assertTrue(m.dispRatioCi().contains(SIGMA_A * SIGMA_A / (SIGMA_B * SIGMA_B)), () -> "disp_ratio CI " + m.dispRatioCi());
        double meanNorm = (m.normA() + m.normB()) / 2;
        assertTrue(m.l2RelCi().contains(Math.sqrt(2) / meanNorm), () -> "l2_rel CI " + m.l2RelCi());
        assertTrue(m.probeAurocCi().contains(0.78), () -> "probe_auroc CI " + m.probeAurocCi());
        for (Estimate e : new Estimate[] {m.cosRawCi(), m.l2RelCi(), m.dispRatioCi(), m.probeAurocCi()}) {
            assertTrue(e.lo() <= e.value() && e.value() <= e.hi(), () -> "estimate outside its own interval: " + e);
        }
        // Real differences: both permutation tests reject at the smallest attainable p.
        assertEquals(1.0 / 1001, m.pL2Raw(), 1e-15);
        assertEquals(1.0 / 1001, m.pDispRatio(), 1e-15);
    }

    /**
     * Coverage over independent data sets. The percentile interval of a statistic with an O(1/n) bias (cosine,
     * distance and ratio of means) covers a little less than 95% at small n, so the floor is 85%: three binomial
     * standard deviations below the nominal rate for 60 data sets.
     */
    @Test
    void intervalsCoverAtRoughlyTheNominalRate() {
        int reps = 60, n = 150, d = 8;
        double[] muA = Synthetic.vector(d, 2, 1), muB = Synthetic.vector(d, 1, 2);
        GeometryAnalyzer analyzer = new GeometryAnalyzer(new GeometryOptions(400, 0, 7, 5, 1.0, false));
        int cos = 0, disp = 0;
        for (int r = 0; r < reps; r++) {
            Random rng = new Random(100 + r);
            double[][] a = Synthetic.gaussian(rng, n, muA, 1.0), b = Synthetic.gaussian(rng, n, muB, 1.5);
            LayerMetrics m = analyzer.analyze("h", r, a, b, null, null, null);
            if (m.cosRawCi().contains(0.8)) cos++;
            if (m.dispRatioCi().contains(1 / 2.25)) disp++;
        }
        assertTrue(cos >= 0.85 * reps, "cos_raw coverage " + cos + "/" + reps);
        assertTrue(disp >= 0.85 * reps, "disp_ratio coverage " + disp + "/" + reps);
    }

    @Test
    void wellSeparatedClustersAreLinearlySeparableAndFormTightClusters() {
        Random rng = new Random(3);
        int d = 20;
        double[][] a = Synthetic.gaussian(rng, 300, Synthetic.vector(d, 0), 1.0);
        double[][] b = Synthetic.gaussian(rng, 300, Synthetic.vector(d, 100), 1.0);
        LayerMetrics m = new GeometryAnalyzer(GeometryOptions.defaults()).analyze("h", 0, a, b, null, null, null);
        assertEquals(1.0, m.probeAuroc(), 1e-12);
        assertEquals(1.0, m.probeAcc(), 1e-12);
        // Within-class distances ≈ √(2d)σ ≈ 6.3 against ≈ 100 between: silhouette ≈ 1 − 6.3/100.
        assertEquals(1 - Math.sqrt(2.0 * d) / 100, m.silhouette(), 0.01);
        assertTrue(m.fisher() > 1000);
    }

    @Test
    void identicalClustersLookIdentical() {
        Random rng = new Random(4);
        double[] mu = Synthetic.vector(20, 3, -1, 2);
        double[][] a = Synthetic.gaussian(rng, 300, mu, 1.0), b = Synthetic.gaussian(rng, 300, mu, 1.0);
        LayerMetrics m = new GeometryAnalyzer(GeometryOptions.defaults()).analyze("h", 0, a, b, null, null, null);
        // AUROC under the null has sd √((n_A+n_B+1)/(12 n_A n_B)) ≈ 0.024.
        assertEquals(0.5, m.probeAuroc(), 0.1);
        assertEquals(1.0, m.dispRatio(), 0.05);
        assertEquals(1.0, m.cosRaw(), 0.01);
        assertTrue(Math.abs(m.silhouette()) < 0.05, "silhouette " + m.silhouette());
        assertTrue(m.pL2Raw() > 0.01 && m.pDispRatio() > 0.01, m.pL2Raw() + " " + m.pDispRatio());
        assertTrue(m.probeAurocCi().contains(0.5), () -> "AUROC CI " + m.probeAurocCi());
    }
}
