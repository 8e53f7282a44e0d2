package dev.jlens.eval;

import dev.jlens.stats.Quantiles;
import dev.jlens.stats.Seeds;

import java.util.SplittableRandom;

/**
 * A rate k/n with a percentile bootstrap interval: each draw resamples the n outcomes with replacement, which for
 * 0/1 outcomes is a Binomial(n, k/n) count. NaN everywhere when n is 0.
 */
public record Proportion(int successes, int n, double rate, double lo, double hi) {

    /**
     * @param key names the random stream (e.g. condition/metric/category), so that adding a category or a
     *            condition does not move another's interval
     */
    public static Proportion of(int successes, int n, int draws, double level, long seed, String key) {
        if (n == 0) return new Proportion(0, 0, Double.NaN, Double.NaN, Double.NaN);
        double p = successes / (double) n;
        if (draws <= 0) return new Proportion(successes, n, p, Double.NaN, Double.NaN);
        SplittableRandom rng = Seeds.stream(seed, 0, "eval/" + key);
        double[] rates = new double[draws];
        for (int d = 0; d < draws; d++) {
            int k = 0;
            for (int i = 0; i < n; i++) if (rng.nextInt(n) < successes) k++;
            rates[d] = k / (double) n;
        }
        double[] ci = Quantiles.percentileInterval(rates, level);
        return new Proportion(successes, n, p, ci[0], ci[1]);
    }
}
