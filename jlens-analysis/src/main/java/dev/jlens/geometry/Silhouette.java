package dev.jlens.geometry;

/**
 * Mean silhouette coefficient (Rousseeuw 1987) of the two classes as clusters, Euclidean distance, distances
 * read off a Gram matrix: ‖xᵢ − xⱼ‖² = Gᵢᵢ + Gⱼⱼ − 2Gᵢⱼ.
 */
final class Silhouette {

    private Silhouette() {
    }

    /**
     * @param g    Gram matrix of (any translation of) the points
     * @param idx  which rows of g take part
     * @param isB  class per row of g
     */
    static double of(double[][] g, int[] idx, boolean[] isB) {
        int m = idx.length;
        int countB = 0;
        for (int i : idx) if (isB[i]) countB++;
        int countA = m - countB;
        double total = 0;
        for (int p = 0; p < m; p++) {
            int i = idx[p];
            double[] gi = g[i];
            double sameSum = 0, otherSum = 0;
            for (int q = 0; q < m; q++) {
                if (q == p) continue;
                int j = idx[q];
                double dist = Math.sqrt(Math.max(0, gi[i] + g[j][j] - 2 * gi[j]));
                if (isB[j] == isB[i]) sameSum += dist;
                else otherSum += dist;
            }
            int same = (isB[i] ? countB : countA) - 1, other = isB[i] ? countA : countB;
            if (same == 0) continue;   // a singleton cluster scores 0 by convention
            double a = sameSum / same, b = otherSum / other;
            double max = Math.max(a, b);
            total += max == 0 ? 0 : (b - a) / max;
        }
        return total / m;
    }
}
