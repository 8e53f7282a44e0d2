package dev.jlens.detect;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * ROC statistics of a fixed set of scored examples under bootstrap multiplicities: the scores are sorted once,
 * and each resample (given as how often each example was drawn) costs one pass. AUROC counts ties as one
 * half (the Mann–Whitney statistic); TPR at a false-positive bound is read off the empirical ROC step curve
 * without interpolation: the largest TPR of any cut (flag score ≥ t) whose FPR stays at or below the bound.
 */
final class Roc {

    private final int[] members;     // example indices, ascending score
    private final int[] groupEnd;    // members[start..groupEnd[g]) share one score
    private final boolean[] positive;

    /** @param subset the example indices this curve covers (both classes should be present) */
    Roc(double[] scores, boolean[] positive, int[] subset) {
        this.positive = positive;
        Integer[] boxed = Arrays.stream(subset).boxed().toArray(Integer[]::new);
        Arrays.sort(boxed, (a, b) -> Double.compare(scores[a], scores[b]));
        members = Arrays.stream(boxed).mapToInt(Integer::intValue).toArray();
        int[] ends = new int[members.length];
        int g = 0;
        for (int i = 0; i < members.length; i++) {
            if (i + 1 == members.length || scores[members[i + 1]] != scores[members[i]]) ends[g++] = i + 1;
        }
        groupEnd = Arrays.copyOf(ends, g);
    }

    /** AUROC under the multiplicities; NaN without a negative or a positive. */
    double auroc(int[] counts) {
        double below = 0, sum = 0, nNeg = 0, nPos = 0;
        int start = 0;
        for (int end : groupEnd) {
            double neg = 0, pos = 0;
            for (int k = start; k < end; k++) {
                int i = members[k];
                if (positive[i]) pos += counts[i];
                else neg += counts[i];
            }
            sum += pos * (below + 0.5 * neg);
            below += neg;
            nNeg += neg;
            nPos += pos;
            start = end;
        }
        return nNeg == 0 || nPos == 0 ? Double.NaN : sum / (nNeg * nPos);
    }

    /** TPR at each false-positive bound under the multiplicities. */
    double[] tprAtFpr(int[] counts, double[] bounds) {
        double nNeg = 0, nPos = 0;
        for (int i : members) {
            if (positive[i]) nPos += counts[i];
            else nNeg += counts[i];
        }
        double[] out = new double[bounds.length];
        if (nNeg == 0 || nPos == 0) {
            Arrays.fill(out, Double.NaN);
            return out;
        }
        double tp = 0, fp = 0;
        for (int g = groupEnd.length - 1; g >= 0; g--) {
            int start = g == 0 ? 0 : groupEnd[g - 1];
            for (int k = start; k < groupEnd[g]; k++) {
                int i = members[k];
                if (positive[i]) tp += counts[i];
                else fp += counts[i];
            }
            for (int b = 0; b < bounds.length; b++) {
                // a small slack so that e.g. 3 of 300 counts as exactly 1%
                if (fp / nNeg <= bounds[b] + 1e-12) out[b] = Math.max(out[b], tp / nPos);
            }
        }
        return out;
    }

    /** The empirical ROC curve with unit counts: (FPR, TPR) points from (0,0) to (1,1). */
    List<double[]> curve() {
        double nNeg = 0, nPos = 0;
        for (int i : members) {
            if (positive[i]) nPos++;
            else nNeg++;
        }
        List<double[]> pts = new ArrayList<>();
        pts.add(new double[] {0, 0});
        double tp = 0, fp = 0;
        for (int g = groupEnd.length - 1; g >= 0; g--) {
            int start = g == 0 ? 0 : groupEnd[g - 1];
            for (int k = start; k < groupEnd[g]; k++) {
                if (positive[members[k]]) tp++;
                else fp++;
            }
            pts.add(new double[] {nNeg == 0 ? 0 : fp / nNeg, nPos == 0 ? 0 : tp / nPos});
        }
        return pts;
    }
}
