package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.stats.Auroc;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Activations that depend only on token length, with class B prompts longer: the raw metrics see a large class
 * difference, the length-matched control must see none.
 */
class LengthConfoundTest {

    private static final int D = 64, N = 300;

    private static double[] direction(Random rng) {
        double[] v = new double[D];
        for (int j = 0; j < D; j++) v[j] = rng.nextGaussian();
        double norm = Synthetic.norm(v);
        for (int j = 0; j < D; j++) v[j] /= norm;
        return v;
    }

    /** x = (len / 2)·v + N(0, I): nothing but length. */
    private static double[][] activations(Random rng, int[] lengths, double[] v) {
        double[][] x = new double[lengths.length][D];
        for (int i = 0; i < lengths.length; i++) {
            for (int j = 0; j < D; j++) x[i][j] = 0.5 * lengths[i] * v[j] + rng.nextGaussian();
        }
        return x;
    }

    private static int[] lengths(Random rng, int from, int to) {
        int[] l = new int[N];
        for (int i = 0; i < N; i++) l[i] = from + rng.nextInt(to - from + 1);
        return l;
    }

    @Test
    void lengthControlRemovesAPureLengthConfound() {
        Random rng = new Random(21);
        double[] v = direction(rng);
        int[] lenA = lengths(rng, 5, 25), lenB = lengths(rng, 12, 32);
        double[][] a = activations(rng, lenA, v), b = activations(rng, lenB, v);
        LayerMetrics m = new GeometryAnalyzer(GeometryOptions.defaults()).analyze("h", 2, a, b, null, lenA, lenB);

        // Length is all there is to learn, so the raw probe does about as well as the lengths themselves (≈ 0.77).
        double lengthAuroc = Auroc.of(toDouble(lenA), toDouble(lenB));
        assertTrue(lengthAuroc > 0.7);
        assertEquals(lengthAuroc, m.probeAuroc(), 0.05);
        assertTrue(m.pL2Raw() < 0.01, "raw p " + m.pL2Raw());
        LengthControl lc = m.lengthControl();
        assertNotNull(lc);
        // Overlap 12..25 holds about 14/21 of each class: roughly 200 exact pairs.
        assertTrue(lc.nPerClass() > 150 && lc.nPerClass() <= 200, "pairs " + lc.nPerClass());
        assertEquals(lc.meanLenA(), lc.meanLenB(), 0.0, "exact matching pairs equal lengths");
        assertEquals(0.5, lc.probeAuroc(), 0.1);
        // Raw mean difference ≈ 3.5 along v; matched, only noise is left: ≈ √(2d/n) ≈ 0.8.
        assertTrue(lc.l2Rel() < m.l2Rel() / 3, "l2_rel raw " + m.l2Rel() + " vs matched " + lc.l2Rel());
        assertEquals(1.0, lc.dispRatio(), 0.2);
    }

    @Test
    void lengthControlIsSkippedWithoutLengthsOrWhenDisabled() {
        Random rng = new Random(22);
        double[] v = direction(rng);
        int[] lenA = lengths(rng, 5, 25), lenB = lengths(rng, 12, 32);
        double[][] a = activations(rng, lenA, v), b = activations(rng, lenB, v);
        GeometryOptions off = new GeometryOptions(0, 0, 42, 5, 1.0, false);
        assertNull(new GeometryAnalyzer(off).analyze("h", 0, a, b, null, lenA, lenB).lengthControl());
        GeometryOptions on = new GeometryOptions(0, 0, 42, 5, 1.0, true);
        assertNull(new GeometryAnalyzer(on).analyze("h", 0, a, b, null, null, null).lengthControl());
    }

    @Test
    void disjointLengthsLeaveNothingToCompare() {
        Random rng = new Random(23);
        double[] v = direction(rng);
        int[] lenA = lengths(rng, 5, 10), lenB = lengths(rng, 20, 30);
        double[][] a = activations(rng, lenA, v), b = activations(rng, lenB, v);
        LayerMetrics m = new GeometryAnalyzer(new GeometryOptions(0, 0, 42, 5, 1.0, true))
                .analyze("h", 0, a, b, null, lenA, lenB);
        assertEquals(0, m.lengthControl().nPerClass());
        assertTrue(Double.isNaN(m.lengthControl().probeAuroc()));
        // A caliper wide enough to bridge the gap pairs the closest lengths again.
        LayerMetrics wide = new GeometryAnalyzer(new GeometryOptions(0, 0, 42, 5, 1.0, true, 10))
                .analyze("h", 0, a, b, null, lenA, lenB);
        assertTrue(wide.lengthControl().nPerClass() > 0);
    }

    private static double[] toDouble(int[] v) {
        return Arrays.stream(v).asDoubleStream().toArray();
    }
}
