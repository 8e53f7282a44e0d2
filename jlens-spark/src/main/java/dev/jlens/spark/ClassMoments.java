package dev.jlens.spark;

import java.io.Serializable;

/**
 * The sufficient statistics of one class's vectors at one hook: count, mean, the centred scatter matrix
 * M2 = Σ (x−μ)(x−μ)ᵀ and the sum of norms. Rows are added with Welford's update and partitions merged with
 * Chan et al.'s pairwise formula, so the driver gets d + d² numbers per class and hook, never the vectors, and
 * the scatter is accumulated around the running mean (no E[xxᵀ]−μμᵀ cancellation).
 */
final class ClassMoments implements Serializable {

    final int d;
    long n;
    final double[] mean;
    final double[] m2;
    double sumNorm;

    ClassMoments(int d) {
        this.d = d;
        this.mean = new double[d];
        this.m2 = new double[d * d];
    }

    /** An independent copy ({@link #merge} updates its receiver). */
    ClassMoments copy() {
        ClassMoments c = new ClassMoments(d);
        c.n = n;
        System.arraycopy(mean, 0, c.mean, 0, d);
        System.arraycopy(m2, 0, c.m2, 0, m2.length);
        c.sumNorm = sumNorm;
        return c;
    }

    void add(float[] x) {
        n++;
        double[] delta = new double[d];
        double norm2 = 0;
        for (int j = 0; j < d; j++) {
            delta[j] = x[j] - mean[j];
            norm2 += (double) x[j] * x[j];
        }
        sumNorm += Math.sqrt(norm2);
        double scale = (double) (n - 1) / n;
        for (int j = 0; j < d; j++) mean[j] += delta[j] / n;
        for (int i = 0; i < d; i++) {
            double di = delta[i] * scale;
            int row = i * d;
            for (int j = 0; j < d; j++) m2[row + j] += di * delta[j];
        }
    }

    ClassMoments merge(ClassMoments o) {
        if (o.n == 0) return this;
        if (n == 0) return o;
        long total = n + o.n;
        double[] delta = new double[d];
        for (int j = 0; j < d; j++) delta[j] = o.mean[j] - mean[j];
        double w = (double) n * o.n / total;
        for (int i = 0; i < d; i++) {
            int row = i * d;
            for (int j = 0; j < d; j++) m2[row + j] += o.m2[row + j] + w * delta[i] * delta[j];
        }
        for (int j = 0; j < d; j++) mean[j] += delta[j] * o.n / total;
        sumNorm += o.sumNorm;
        n = total;
        return this;
    }

    double trace() {
        double t = 0;
        for (int i = 0; i < d; i++) t += m2[i * d + i];
        return t;
    }

    /** Mean squared distance to the centroid, per dimension (docs/METRICS.md disp). */
    double dispersion() {
        return trace() / n / d;
    }

    /** (Σλ)²/Σλ² of the covariance; the normalisation of M2 cancels. */
    double participationRatio() {
        double frob = 0;
        for (double v : m2) frob += v * v;
        double t = trace();
        return frob == 0 ? Double.NaN : t * t / frob;
    }

    /** Sample variance (n−1) of the projections on the unit vector w. */
    double projectedVariance(double[] w) {
        if (n < 2) return 0;
        double q = 0;
        for (int i = 0; i < d; i++) {
            double s = 0;
            int row = i * d;
            for (int j = 0; j < d; j++) s += m2[row + j] * w[j];
            q += w[i] * s;
        }
        return q / (n - 1);
    }
}
