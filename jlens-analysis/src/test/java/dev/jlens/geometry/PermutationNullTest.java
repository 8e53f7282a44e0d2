package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Under identical classes the permutation p-values must be (discretely) uniform. */
class PermutationNullTest {

    @Test
    void pValuesAreUniformUnderTheNull() {
        int reps = 200;
        double[] pL2 = new double[reps], pDisp = new double[reps];
        double[] mu = Synthetic.vector(5, 1, 2);
        GeometryAnalyzer analyzer = new GeometryAnalyzer(new GeometryOptions(0, 199, 11, 3, 1.0, false));
        for (int r = 0; r < reps; r++) {
            Random rng = new Random(5000 + r);
            double[][] a = Synthetic.gaussian(rng, 20, mu, 1.0), b = Synthetic.gaussian(rng, 25, mu, 1.0);
            LayerMetrics m = analyzer.analyze("h", r, a, b, null, null, null);
            pL2[r] = m.pL2Raw();
            pDisp[r] = m.pDispRatio();
        }
        for (double[] p : new double[][] {pL2, pDisp}) {
            // Rejection rate at 5%: binomial sd √(0.05·0.95/200) ≈ 0.015, so ±0.045 is three sd.
            double rejected = Arrays.stream(p).filter(v -> v <= 0.05).count() / (double) reps;
            assertEquals(0.05, rejected, 0.045, "fraction of p ≤ 0.05");
            // Kolmogorov–Smirnov distance to U(0,1); the 0.1% critical value for n = 200 is 1.95/√200 ≈ 0.138.
            double ks = ksUniform(p);
            assertTrue(ks < 0.138, "KS distance " + ks);
        }
    }

    private static double ksUniform(double[] p) {
        double[] s = p.clone();
        Arrays.sort(s);
        double dmax = 0;
        for (int i = 0; i < s.length; i++) {
            dmax = Math.max(dmax, Math.max((i + 1.0) / s.length - s[i], s[i] - (double) i / s.length));
        }
        return dmax;
    }

    @Test
    void aRealDifferenceIsDetected() {
        Random rng = new Random(9);
        double[][] a = Synthetic.gaussian(rng, 40, Synthetic.vector(10, 0), 1.0);
        double[][] b = Synthetic.gaussian(rng, 40, Synthetic.vector(10, 1.5), 2.0);
        LayerMetrics m = new GeometryAnalyzer(new GeometryOptions(0, 499, 1, 5, 1.0, false))
                .analyze("h", 0, a, b, null, null, null);
        assertEquals(1.0 / 500, m.pL2Raw(), 1e-15);
        assertEquals(1.0 / 500, m.pDispRatio(), 1e-15);
    }
}
