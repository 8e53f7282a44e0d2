package dev.jlens.detect;

import dev.jlens.JlensException;

import java.util.Locale;

/**
 * How a detector turns the raw scores of a prompt's tokens into one prompt score.
 *
 * <p>A detector's raw score is defined per token: the saved standardisation and linear form applied to each
 * token's residual at the detector's hook. For a linear detector (logistic, diff-means) the mean of the token
 * scores is the score of the mean-pooled activation and the last token's score is the score of the last-token
 * activation, so {@link #MEAN}, {@link #MEAN_SKIP_FIRST} and {@link #LAST} are the activation poolings the
 * probe always had. {@link #MAX} and {@link #windowMean(int)} have no activation counterpart: they let a
 * short harmful span inside a long benign prompt decide, which a mean dilutes.
 *
 * @param kind  the aggregation
 * @param width the window of {@link Kind#WINDOW_MEAN}, in tokens (0 for the others)
 */
public record TokenAggregation(Kind kind, int width) {

    public enum Kind { MEAN, MEAN_SKIP_FIRST, LAST, MAX, WINDOW_MEAN }

    /** Window of {@code window-mean} when none is given: about a clause of English. */
    public static final int DEFAULT_WINDOW = 8;

    public static final TokenAggregation MEAN = new TokenAggregation(Kind.MEAN, 0);
    public static final TokenAggregation MEAN_SKIP_FIRST = new TokenAggregation(Kind.MEAN_SKIP_FIRST, 0);
    public static final TokenAggregation LAST = new TokenAggregation(Kind.LAST, 0);
    public static final TokenAggregation MAX = new TokenAggregation(Kind.MAX, 0);

    public TokenAggregation {
        if (kind == Kind.WINDOW_MEAN ? width < 1 : width != 0) {
            throw new JlensException("window-mean needs a window of at least 1 token, got " + width);
        }
    }

    public static TokenAggregation windowMean(int width) {
        return new TokenAggregation(Kind.WINDOW_MEAN, width);
    }

    /** The four reported side by side in PROBE.html. */
    public static java.util.List<TokenAggregation> compared() {
        return java.util.List.of(MEAN, MAX, windowMean(DEFAULT_WINDOW), LAST);
    }

    /** mean, mean-skip-first, last, max, window-mean or window-mean:K. */
    public static TokenAggregation parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        switch (t) {
            case "mean" -> { return MEAN; }
            case "mean-skip-first" -> { return MEAN_SKIP_FIRST; }
            case "last" -> { return LAST; }
            case "max" -> { return MAX; }
            case "window-mean" -> { return windowMean(DEFAULT_WINDOW); }
            default -> {
                if (t.startsWith("window-mean:")) {
                    try {
                        return windowMean(Integer.parseInt(t.substring("window-mean:".length())));
                    } catch (NumberFormatException e) {
                        // fall through to the error below
                    }
                }
                throw new JlensException("token aggregation \"" + s + "\": expected mean, mean-skip-first, last, max, "
                        + "window-mean or window-mean:K (K tokens)");
            }
        }
    }

    public String cliName() {
        return switch (kind) {
            case MEAN -> "mean";
            case MEAN_SKIP_FIRST -> "mean-skip-first";
            case LAST -> "last";
            case MAX -> "max";
            case WINDOW_MEAN -> "window-mean:" + width;
        };
    }

    /** Whether this is an activation pooling too (the probe can fit on the pooled activation directly). */
    public boolean isActivationPooling() {
        return kind == Kind.MEAN || kind == Kind.MEAN_SKIP_FIRST || kind == Kind.LAST;
    }

    /**
     * The prompt's score from its tokens' raw scores, in a fixed order in double. A window longer than the
     * prompt is the whole prompt.
     */
    public double aggregate(double[] raw) {
        int n = raw.length;
        if (n == 0) throw new JlensException("a prompt with no tokens has no score");
        switch (kind) {
            case LAST -> {
                return raw[n - 1];
            }
            case MAX -> {
                double m = raw[0];
                for (double v : raw) m = Math.max(m, v);
                return m;
            }
            case MEAN, MEAN_SKIP_FIRST -> {
                int from = kind == Kind.MEAN_SKIP_FIRST && n > 1 ? 1 : 0;
                double s = 0;
                for (int t = from; t < n; t++) s += raw[t];
                return s / (n - from);
            }
            case WINDOW_MEAN -> {
                int w = Math.min(width, n);
                double best = Double.NEGATIVE_INFINITY;
                for (int start = 0; start + w <= n; start++) {
                    double s = 0;
                    for (int t = start; t < start + w; t++) s += raw[t];
                    best = Math.max(best, s / w);
                }
                return best;
            }
            default -> throw new IllegalStateException(kind.toString());
        }
    }
}
