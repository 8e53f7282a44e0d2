package dev.jlens.detect;

import dev.jlens.geometry.Estimate;
import dev.jlens.stats.Auroc;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The statistics behind the detector report, against brute-force definitions. */
class DetectStatsTest {

    /** Largest TPR over every threshold t (flag score ≥ t) whose FPR is at most the bound, by brute force. */
    private static double bruteTprAt(double[] s, boolean[] pos, int[] counts, double bound) {
        double best = 0, nPos = 0, nNeg = 0;
        for (int i = 0; i < s.length; i++) {
            if (pos[i]) nPos += counts[i];
            else nNeg += counts[i];
        }
        double[] cuts = Arrays.copyOf(s, s.length + 1);
        cuts[s.length] = Double.POSITIVE_INFINITY;
        for (double t : cuts) {
            double tp = 0, fp = 0;
            for (int i = 0; i < s.length; i++) {
                if (s[i] >= t) {
                    if (pos[i]) tp += counts[i];
                    else fp += counts[i];
                }
            }
            if (fp / nNeg <= bound + 1e-12) best = Math.max(best, tp / nPos);
        }
        return best;
    }

    @Test
    void rocMatchesBruteForceUnderMultiplicities() {
        Random rng = new Random(3);
        for (int rep = 0; rep < 40; rep++) {
            int n = 20 + rng.nextInt(60);
            double[] s = new double[n];
            boolean[] pos = new boolean[n];
            for (int i = 0; i < n; i++) {
                pos[i] = i % 2 == 0;
                s[i] = Math.round((rng.nextGaussian() + (pos[i] ? 1 : 0)) * 3) / 3.0;   // ties
            }
            int[] counts = new int[n];
            for (int k = 0; k < n; k++) counts[rng.nextInt(n)]++;
            counts[0]++;
            counts[1]++;   // both classes present
            Roc roc = new Roc(s, pos, IntStream.range(0, n).toArray());
            double[] tpr = roc.tprAtFpr(counts, new double[] {0.01, 0.05, 0.2});
            assertEquals(bruteTprAt(s, pos, counts, 0.01), tpr[0], 1e-12);
            assertEquals(bruteTprAt(s, pos, counts, 0.05), tpr[1], 1e-12);
            assertEquals(bruteTprAt(s, pos, counts, 0.2), tpr[2], 1e-12);
            double[] neg = expand(s, pos, counts, false), p = expand(s, pos, counts, true);
            assertEquals(Auroc.of(neg, p), roc.auroc(counts), 1e-12);
        }
    }

    private static double[] expand(double[] s, boolean[] pos, int[] counts, boolean cls) {
        return IntStream.range(0, s.length).filter(i -> pos[i] == cls)
                .flatMap(i -> IntStream.range(0, counts[i]).map(c -> i)).mapToDouble(i -> s[i]).toArray();
    }

    @Test
    void youdenThresholdSeparatesSeparableScores() {
        double[] s = {0.1, 0.2, 0.3, 0.7, 0.8, 0.9};
        boolean[] pos = {false, false, false, true, true, true};
        double t = Calibration.threshold(s, pos, ThresholdRule.youden());
        assertEquals(0.5, t, 1e-12, "midpoint between the highest negative and the lowest positive");
        // a false-positive budget of 0 with an overlapping negative on top keeps every negative below the threshold
        double[] s2 = {0.1, 0.2, 0.95, 0.7, 0.8, 0.9};
        double t2 = Calibration.threshold(s2, pos, ThresholdRule.maxFpr(0));
        for (int i = 0; i < 3; i++) assertTrue(s2[i] < t2);
        double t3 = Calibration.threshold(s2, pos, ThresholdRule.maxFpr(0.34));
        assertEquals((0.7 + 0.2) / 2, t3, 1e-12, "one false positive of three is allowed: every positive is flagged");
    }

    @Test
    void plattRecoversTheLogisticMapOfItsData() {
        // labels drawn from P(y=1|s) = σ(2s − 1): Platt's fit should come back near (2, −1)
        SplittableRandom rng = new SplittableRandom(5);
        int n = 20000;
        double[] s = new double[n];
        boolean[] y = new boolean[n];
        for (int i = 0; i < n; i++) {
            s[i] = rng.nextDouble(-4, 4) * 3 + 10;   // raw units far from 0 and 1
            double p = DetectorParams.sigmoid(2 * ((s[i] - 10) / 3) - 1);
            y[i] = rng.nextDouble() < p;
        }
        double[] ab = Calibration.platt(s, y);
        assertEquals(2.0 / 3, ab[0], 0.05);
        assertEquals(-1 - 20.0 / 3, ab[1], 0.3);
    }

    @Test
    void plattStaysFiniteOnSeparatedScores() {
        double[] ab = Calibration.platt(new double[] {-3, -2, -1, 1, 2, 3}, new boolean[] {false, false, false, true, true, true});
        assertTrue(Double.isFinite(ab[0]) && ab[0] > 0 && Double.isFinite(ab[1]));
    }

    @Test
    void ledoitWolfMatchesTheDirectFormulaAndPrecisionInvertsTheShrunkCovariance() {
        Random rng = new Random(7);
        int n = 12, d = 9;
        double[][] x = new double[n][d];
        for (double[] r : x) for (int j = 0; j < d; j++) r[j] = rng.nextGaussian() * (1 + j);
        double[] m = new double[d];
        for (double[] r : x) for (int j = 0; j < d; j++) m[j] += r[j] / n;
        for (double[] r : x) for (int j = 0; j < d; j++) r[j] -= m[j];
        double[][] s = new double[d][d];
        for (double[] r : x) for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) s[a][b] += r[a] * r[b] / n;
        double mu = 0;
        for (int a = 0; a < d; a++) mu += s[a][a] / d;
        // scikit-learn's ledoit_wolf_shrinkage written out with d×d matrices
        double delta = 0, beta = 0;
        for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) delta += Math.pow(s[a][b] - (a == b ? mu : 0), 2);
        delta /= d;
        for (double[] r : x) {
            double q = 0;
            for (int a = 0; a < d; a++) for (int b = 0; b < d; b++) q += Math.pow(r[a] * r[b] - s[a][b], 2);
            beta += q;
        }
        beta /= (double) d * n * n;
        double expected = Math.min(beta, delta) / delta;
        Shrinkage sh = new Shrinkage(x);
        assertEquals(expected, sh.ledoitWolf(), 1e-10);
        assertEquals(mu, sh.mu(), 1e-10);
        double dl = 0.3;
        double[] p = sh.precision(dl);
        for (int a = 0; a < d; a++) {
            for (int b = 0; b < d; b++) {
                double v = 0;
                for (int k = 0; k < d; k++) v += p[a * d + k] * ((1 - dl) * s[k][b] + (k == b ? dl * mu : 0));
                assertEquals(a == b ? 1 : 0, v, 1e-9);
            }
        }
    }

    @Test
    void evaluationReportsGroupsAndIntervalsThatContainThePoint() {
        Random rng = new Random(11);
        int n = 120;
        double[] logit = new double[n];
        boolean[] pos = new boolean[n];
        String[] group = new String[n];
        List<String> names = List.of(ProbeData.HARMFUL, ProbeData.JAILBREAK, ProbeData.HARD_NEGATIVE, ProbeData.HARMLESS);
        for (int i = 0; i < n; i++) {
            group[i] = names.get(i % 4);
            pos[i] = i % 4 < 2;
            double shift = switch (i % 4) {
                case 0 -> 3;
                case 1 -> 1;      // jailbreaks are harder
                case 2 -> -0.5;   // hard negatives look a little harmful
                default -> -3;
            };
            logit[i] = shift + rng.nextGaussian();
        }
        Evaluation ev = Evaluation.of(logit, pos, group, 0, 300, new SplittableRandom(1), 0.95);
        assertEquals(names, List.copyOf(ev.groups().keySet()));
        for (Estimate e : ev.overall().values()) {
            assertTrue(e.lo() <= e.hi(), e.toString());
        }
        Estimate auc = ev.overall().get(Evaluation.AUROC);
        assertTrue(auc.contains(auc.value()), auc.toString());
        assertTrue(ev.groups().get(ProbeData.HARMFUL).auroc().value() > ev.groups().get(ProbeData.JAILBREAK).auroc().value());
        assertTrue(ev.groups().get(ProbeData.HARMLESS).auroc().value() > ev.groups().get(ProbeData.HARD_NEGATIVE).auroc().value());
        // flag rates at logit 0 against a direct count
        int caught = 0;
        for (int i = 1; i < n; i += 4) if (logit[i] >= 0) caught++;
        assertEquals(caught / 30.0, ev.groups().get(ProbeData.JAILBREAK).flagRate().value(), 1e-12);
        int total = ev.reliability().stream().mapToInt(Evaluation.ReliabilityBin::n).sum();
        assertEquals(n, total);
        assertFalse(Double.isNaN(ev.overall().get(Evaluation.ECE).value()));
    }
}
