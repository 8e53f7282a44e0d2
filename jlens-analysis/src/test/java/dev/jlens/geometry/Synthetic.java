package dev.jlens.geometry;

import java.util.Random;

/** Seeded synthetic activations for the geometry tests. */
final class Synthetic {

    private Synthetic() {
    }

    /** n rows of N(mean, sigma² I). */
    static double[][] gaussian(Random rng, int n, double[] mean, double sigma) {
        double[][] x = new double[n][mean.length];
        for (double[] row : x) for (int j = 0; j < mean.length; j++) row[j] = mean[j] + sigma * rng.nextGaussian();
        return x;
    }

    static double[] vector(int d, double... head) {
        double[] v = new double[d];
        System.arraycopy(head, 0, v, 0, head.length);
        return v;
    }

    static double norm(double[] v) {
        double s = 0;
        for (double x : v) s += x * x;
        return Math.sqrt(s);
    }

    static double cosine(double[] u, double[] v) {
        double s = 0;
        for (int j = 0; j < u.length; j++) s += u[j] * v[j];
        return s / (norm(u) * norm(v));
    }
}
