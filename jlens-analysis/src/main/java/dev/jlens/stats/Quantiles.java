package dev.jlens.stats;

import java.util.Arrays;

/** Percentile intervals and permutation p-values shared by the bootstrap and permutation tests. */
public final class Quantiles {

    private Quantiles() {
    }

    /**
     * The p-quantile (0 ≤ p ≤ 1) of the finite values, linear interpolation between order statistics (the
     * default of R and NumPy); NaN when there is no finite value. Draws whose statistic is undefined (a zero
     * dispersion in the denominator) are left out rather than poisoning the interval.
     */
    public static double quantile(double[] values, double p) {
        double[] v = Arrays.stream(values).filter(Double::isFinite).sorted().toArray();
        return sortedQuantile(v, p);
    }

    /** {lo, hi} of the central percentile interval at the given level (0.95 → 2.5% and 97.5%). */
    public static double[] percentileInterval(double[] values, double level) {
        double[] v = Arrays.stream(values).filter(Double::isFinite).sorted().toArray();
        double tail = (1 - level) / 2;
        return new double[] {sortedQuantile(v, tail), sortedQuantile(v, 1 - tail)};
    }

    private static double sortedQuantile(double[] v, double p) {
        if (v.length == 0) return Double.NaN;
        double h = (v.length - 1) * p;
        int lo = (int) Math.floor(h);
        int hi = Math.min(lo + 1, v.length - 1);
        return v[lo] + (h - lo) * (v[hi] - v[lo]);
    }

    /**
     * Monte-Carlo permutation p-value (1 + #{null ≥ observed}) / (1 + draws), which is never 0 and is valid
     * for a finite number of draws (Phipson &amp; Smyth 2010). A null statistic within a relative 1e-12 of the
     * observed one counts as reaching it, so the identity permutation is not lost to rounding.
     */
    public static double permutationP(double observed, double[] nullStats) {
        if (nullStats.length == 0 || Double.isNaN(observed)) return Double.NaN;
        double bar = observed - 1e-12 * Math.abs(observed);
        int reach = 0;
        for (double s : nullStats) if (s >= bar) reach++;
        return (1.0 + reach) / (1.0 + nullStats.length);
    }
}
