package dev.jlens.detect;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fitting on synthetic clusters: each detector finds the signal, every choice depends on train and val only,
 * and the Mahalanobis detector wins where its premise holds (a tight harmful cluster inside a broad harmless
 * cloud, which no linear direction separates).
 */
class DetectorFitterTest {

    private static final int D = 20;

    /** Rows 0..n-1: train, val, test in thirds; even rows harmful. */
    private record Data(double[][] x, boolean[] positive, int[] train, int[] val, int[] test) {
    }

    private static Data shifted(long seed, int n) {
        Random rng = new Random(seed);
        double[][] x = new double[n][D];
        boolean[] pos = new boolean[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i % 2 == 0;
            for (int j = 0; j < D; j++) x[i][j] = rng.nextGaussian() * (j == 1 ? 3 : 1) + 5;
            if (pos[i]) x[i][0] += 2.5;
        }
        return split(x, pos);
    }

    private static Data split(double[][] x, boolean[] pos) {
        int n = x.length;
        return new Data(x, pos, IntStream.range(0, n).filter(i -> i % 3 == 0).toArray(),
                IntStream.range(0, n).filter(i -> i % 3 == 1).toArray(), IntStream.range(0, n).filter(i -> i % 3 == 2).toArray());
    }

    private static double testAuroc(Data data, DetectorParams p) {
        double[] neg = Arrays.stream(data.test).filter(i -> !data.positive[i]).mapToDouble(i -> p.logit(p.raw(data.x[i]))).toArray();
        double[] pos = Arrays.stream(data.test).filter(i -> data.positive[i]).mapToDouble(i -> p.logit(p.raw(data.x[i]))).toArray();
        return dev.jlens.stats.Auroc.of(neg, pos);
    }

    @Test
    void everyKindFindsAMeanShift() {
        Data data = shifted(1, 600);
        DetectorFitter f = new DetectorFitter(data.x, data.positive, data.train, data.val, DetectorFitter.Options.defaults());
        for (DetectorKind k : DetectorKind.values()) {
            DetectorFitter.Fitted fit = f.fit(k);
            double auc = testAuroc(data, fit.params());
            // The distance to the harmful centroid also counts the spread of all 20 dimensions (a χ² term), so on a
            // pure mean shift it trails the linear readings; that is the contrast the report draws.
            double floor = k == DetectorKind.MAHALANOBIS ? 0.65 : 0.9;
            assertTrue(auc > floor, k + " test AUROC " + auc);
            assertTrue(fit.params().plattA() > 0, k + ": calibration keeps the direction");
        }
        // the logistic weight sits on the shifted dimension
        float[] w = f.fit(DetectorKind.LOGISTIC).params().weights();
        int argmax = 0;
        for (int j = 1; j < D; j++) if (Math.abs(w[j]) > Math.abs(w[argmax])) argmax = j;
        assertEquals(0, argmax);
    }

    @Test
    void testRowsDoNotInfluenceTheFit() {
        Data data = shifted(2, 300);
        double[][] other = new double[data.x.length][];
        boolean[] otherPos = data.positive.clone();
        for (int i = 0; i < other.length; i++) other[i] = data.x[i].clone();
        for (int i : data.test) {
            otherPos[i] = !otherPos[i];
            Arrays.fill(other[i], 1e3);
        }
        for (DetectorKind k : DetectorKind.values()) {
            DetectorParams a = new DetectorFitter(data.x, data.positive, data.train, data.val, DetectorFitter.Options.defaults()).fit(k).params();
            DetectorParams b = new DetectorFitter(other, otherPos, data.train, data.val, DetectorFitter.Options.defaults()).fit(k).params();
            assertArrayEquals(a.mean(), b.mean(), k.toString());
            if (a.weights() != null) assertArrayEquals(a.weights(), b.weights(), k.toString());
            if (a.precision() != null) assertArrayEquals(a.precision(), b.precision(), k.toString());
            assertEquals(a.thresholdLogit(), b.thresholdLogit(), k.toString());
            assertEquals(a.plattA(), b.plattA(), k.toString());
        }
    }

    @Test
    void centroidDistanceWinsOnATightClusterInsideABroadCloud() {
        Random rng = new Random(4);
        int n = 600;
        double[][] x = new double[n][D];
        boolean[] pos = new boolean[n];
        for (int i = 0; i < n; i++) {
            pos[i] = i % 2 == 0;
            for (int j = 0; j < D; j++) x[i][j] = rng.nextGaussian() * (pos[i] ? 0.3 : 2.0);
        }
        Data data = split(x, pos);
        DetectorFitter f = new DetectorFitter(x, pos, data.train, data.val, DetectorFitter.Options.defaults());
        double maha = testAuroc(data, f.fit(DetectorKind.MAHALANOBIS).params());
        double dm = testAuroc(data, f.fit(DetectorKind.DIFF_MEANS).params());
        assertTrue(maha > 0.95, "Mahalanobis AUROC " + maha);
        assertTrue(dm < 0.7, "diff-means AUROC " + dm);
        DetectorFitter.Fitted fit = f.fit(DetectorKind.MAHALANOBIS);
        assertTrue(fit.hyper().containsKey("shrinkage") && fit.hyper().containsKey("ledoit_wolf"));
    }

    @Test
    void chosenCIsOneOfTheGridAndIsChosenOnValidation() {
        Data data = shifted(3, 300);
        double[] grid = {0.003, 0.3, 30};
        DetectorFitter.Fitted fit = new DetectorFitter(data.x, data.positive, data.train, data.val,
                new DetectorFitter.Options(grid, DetectorFitter.DEFAULT_SHRINKAGE, ThresholdRule.youden())).fit(DetectorKind.LOGISTIC);
        double c = fit.hyper().get("C");
        assertTrue(Arrays.stream(grid).anyMatch(g -> g == c), "C " + c);
        assertTrue(fit.valAuroc() > 0.9);
    }
}
