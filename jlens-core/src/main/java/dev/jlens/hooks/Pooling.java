package dev.jlens.hooks;

import dev.jlens.JlensException;

/** How a cached activation is reduced over a prompt's tokens. Means accumulate in float64. */
public enum Pooling {
    /** Every real token: one [len, d] tensor per prompt. */
    ALL("all"),
    /** Mean over the prompt's real tokens. */
    MEAN("mean"),
    /** The last real token. */
    LAST("last"),
    /** Mean over real tokens except the first (which often carries an attention-sink outlier). */
    MEAN_SKIP_FIRST("mean-skip-first");

    private final String cliName;

    Pooling(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static Pooling parse(String s) {
        for (Pooling p : values()) if (p.cliName.equalsIgnoreCase(s) || p.name().equalsIgnoreCase(s)) return p;
        throw new JlensException("--pool \"" + s + "\": expected one of all, mean, last, mean-skip-first");
    }

    /** Pools rows [offset, offset+len) of a [rows, d] array into out (length d). */
    public void pool(float[] data, int d, int offset, int len, float[] out) {
        switch (this) {
            case LAST -> System.arraycopy(data, (offset + len - 1) * d, out, 0, d);
            case MEAN, MEAN_SKIP_FIRST -> {
                int from = this == MEAN_SKIP_FIRST && len > 1 ? 1 : 0;
                double[] acc = new double[d];
                for (int t = from; t < len; t++) {
                    int base = (offset + t) * d;
                    for (int j = 0; j < d; j++) acc[j] += data[base + j];
                }
                int n = len - from;
                for (int j = 0; j < d; j++) out[j] = (float) (acc[j] / n);
            }
            case ALL -> throw new IllegalStateException("ALL is not a reduction");
        }
    }
}
