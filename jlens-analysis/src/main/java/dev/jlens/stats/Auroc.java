package dev.jlens.stats;

import java.util.Arrays;

/**
 * Area under the ROC curve as the Mann–Whitney rank statistic: the probability that a positive scores above a
 * negative, ties counting one half. Exact with ties, no threshold sweep.
 */
public final class Auroc {

    private Auroc() {
    }

    public static double of(double[] negatives, double[] positives) {
        int[] cn = new int[negatives.length], cp = new int[positives.length];
        Arrays.fill(cn, 1);
        Arrays.fill(cp, 1);
        return new Resampler(negatives, positives).auroc(cn, cp);
    }

    /**
     * Sorts the pooled scores once; a bootstrap resample is then given as multiplicities (how often each
     * negative and each positive was drawn), and its AUROC costs one linear pass instead of a sort.
     */
    public static final class Resampler {
        private final int nNeg;
        private final int[] order;      // pooled index (negatives first, then positives), ascending score
        private final int[] groupEnd;   // order[groupStart..groupEnd) share one score
        private final int groups;

        public Resampler(double[] negatives, double[] positives) {
            nNeg = negatives.length;
            int n = nNeg + positives.length;
            double[] all = new double[n];
            System.arraycopy(negatives, 0, all, 0, nNeg);
            System.arraycopy(positives, 0, all, nNeg, positives.length);
            Integer[] boxed = new Integer[n];
            for (int i = 0; i < n; i++) boxed[i] = i;
            Arrays.sort(boxed, (x, y) -> Double.compare(all[x], all[y]));
            order = new int[n];
            for (int i = 0; i < n; i++) order[i] = boxed[i];
            int[] ends = new int[n];
            int g = 0;
            for (int i = 0; i < n; i++) {
                if (i + 1 == n || all[order[i + 1]] != all[order[i]]) ends[g++] = i + 1;
            }
            groupEnd = Arrays.copyOf(ends, g);
            groups = g;
        }

        /** AUROC of the resample; NaN when it holds no negative or no positive. */
        public double auroc(int[] negCounts, int[] posCounts) {
            double below = 0;   // negatives (with multiplicity) scoring strictly below the current group
            double sum = 0, totalNeg = 0, totalPos = 0;
            int start = 0;
            for (int g = 0; g < groups; g++) {
                double neg = 0, pos = 0;
                for (int i = start; i < groupEnd[g]; i++) {
                    int idx = order[i];
                    if (idx < nNeg) neg += negCounts[idx];
                    else pos += posCounts[idx - nNeg];
                }
                sum += pos * (below + 0.5 * neg);
                below += neg;
                totalNeg += neg;
                totalPos += pos;
                start = groupEnd[g];
            }
            return totalNeg == 0 || totalPos == 0 ? Double.NaN : sum / (totalNeg * totalPos);
        }
    }
}
