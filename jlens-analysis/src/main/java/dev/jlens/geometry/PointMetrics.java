package dev.jlens.geometry;

import dev.jlens.stats.LinAlg;

/** The metrics that need only the two classes' rows (no reference set, no randomness), in one O(n·d) pass. */
record PointMetrics(double[] meanA, double[] meanB, double cosRaw, double l2Raw, double l2Rel, double normA,
                    double normB, double dispA, double dispB, double fisher) {

    double dispRatio() {
        return dispA / dispB;
    }

    static PointMetrics of(double[][] a, double[][] b) {
        int d = a[0].length;
        double[] muA = mean(a), muB = mean(b);
        double sumNormA = 0, sumNormB = 0;
        for (double[] x : a) sumNormA += LinAlg.norm(x);
        for (double[] x : b) sumNormB += LinAlg.norm(x);
        double normA = sumNormA / a.length, normB = sumNormB / b.length;
        double[] delta = new double[d];
        for (int j = 0; j < d; j++) delta[j] = muB[j] - muA[j];
        double l2 = LinAlg.norm(delta);
        double meanNorm = (sumNormA + sumNormB) / (a.length + b.length);
        double fisher;
        if (l2 == 0) {
            fisher = 0;
        } else {
            double[] w = new double[d];
            for (int j = 0; j < d; j++) w[j] = delta[j] / l2;
            double spread = projectedVariance(a, w) + projectedVariance(b, w);
            fisher = l2 * l2 / spread;
        }
        return new PointMetrics(muA, muB, LinAlg.cosine(muA, muB), l2, l2 / meanNorm, normA, normB,
                dispersion(a, muA), dispersion(b, muB), fisher);
    }

    static double[] mean(double[][] x) {
        double[] m = new double[x[0].length];
        for (double[] row : x) LinAlg.axpy(1, row, m);
        for (int j = 0; j < m.length; j++) m[j] /= x.length;
        return m;
    }

    /** Mean squared distance to the centroid, per dimension. Computed from the deviations, not as E‖x‖²−‖μ‖², which would cancel badly when the spread is small against the norm. */
    static double dispersion(double[][] x, double[] mu) {
        double sum = 0;
        double[] dev = new double[mu.length];
        for (double[] row : x) {
            for (int j = 0; j < dev.length; j++) dev[j] = row[j] - mu[j];
            sum += LinAlg.dot(dev, dev);
        }
        return sum / x.length / mu.length;
    }

    /** Sample variance (n−1) of the projections onto the unit vector w. */
    private static double projectedVariance(double[][] x, double[] w) {
        if (x.length < 2) return 0;
        double[] t = new double[x.length];
        double mean = 0;
        for (int i = 0; i < x.length; i++) {
            t[i] = LinAlg.dot(x[i], w);
            mean += t[i];
        }
        mean /= x.length;
        double ss = 0;
        for (double v : t) ss += (v - mean) * (v - mean);
        return ss / (x.length - 1);
    }
}
