package dev.jlens.geometry;

/** A point estimate with its 95% bootstrap percentile interval; lo and hi are NaN when none was computed. */
public record Estimate(double value, double lo, double hi) {

    public static Estimate point(double value) {
        return new Estimate(value, Double.NaN, Double.NaN);
    }

    public boolean contains(double x) {
        return lo <= x && x <= hi;
    }
}
