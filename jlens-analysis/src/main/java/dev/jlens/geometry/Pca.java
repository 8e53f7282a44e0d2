package dev.jlens.geometry;

import dev.jlens.JlensException;
import dev.jlens.stats.LinAlg;

/**
 * Principal component projection for plots. The eigenproblem is solved on whichever of the n×n Gram matrix
 * and the d×d scatter matrix of the centred rows is smaller (they share their non-zero eigenvalues), by
 * subspace iteration, so a few thousand prompts of width 4096 cost one Gram matrix, not a 4096² eigensolve.
 */
public final class Pca {

    private Pca() {
    }

    /**
     * The fitted projection.
     *
     * @param coords                 [rows][k] coordinates of the centred rows on the components
     * @param components             [k][d] unit principal axes; each is signed so that its largest-magnitude
     *                               entry is positive, which makes plots reproducible
     * @param explainedVariance      variance along each axis (eigenvalue of the covariance, n−1 normalised)
     * @param explainedVarianceRatio share of the total variance along each axis
     */
    public record Projection(double[][] coords, double[][] components, double[] explainedVariance,
                             double[] explainedVarianceRatio) {
    }

    public static double[][] project2d(double[][] x) {
        return fit(x, 2).coords();
    }

    public static Projection fit2d(double[][] x) {
        return fit(x, 2);
    }

    /** The first k principal components (k ≤ min(rows, d); axes beyond the rank get zero variance). */
    public static Projection fit(double[][] x, int k) {
        int d = Inputs.matrix(x, "PCA input", "projection", -1, null, 2);
        int n = x.length;
        if (k < 1 || k > Math.min(n, d)) {
            throw new JlensException("PCA: " + k + " components asked of " + n + " rows of width " + d
                    + "; expected 1 to " + Math.min(n, d));
        }
        double[] mu = PointMetrics.mean(x);
        double[][] c = new double[n][d];
        double total = 0;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < d; j++) c[i][j] = x[i][j] - mu[j];
            total += LinAlg.dot(c[i], c[i]);
        }
        boolean viaGram = n <= d;
        double[][] m = viaGram ? LinAlg.gram(c) : LinAlg.gram(LinAlg.transpose(c));
        LinAlg.SymEigen eig = LinAlg.topEigen(m, k);
        double[][] components = new double[k][];
        for (int q = 0; q < k; q++) {
            double[] axis;
            if (viaGram) {
                // Xc = UΣVᵀ: the axis is Xcᵀu / σ, computed and then normalised.
                axis = new double[d];
                double[] u = eig.vectors()[q];
                for (int i = 0; i < n; i++) LinAlg.axpy(u[i], c[i], axis);
            } else {
                axis = eig.vectors()[q].clone();
            }
            double norm = LinAlg.norm(axis);
            if (eig.values()[q] <= 1e-12 * Math.max(eig.values()[0], Double.MIN_NORMAL) || norm == 0) {
                // No variance left: Xcᵀu is rounding noise inside the span already covered, so any unit vector
                // orthogonal to the earlier axes is as good, and a deterministic one keeps plots stable.
                axis = orthogonalUnit(components, q, d);
            } else {
                for (int j = 0; j < d; j++) axis[j] /= norm;
            }
            int arg = 0;
            for (int j = 1; j < d; j++) if (Math.abs(axis[j]) > Math.abs(axis[arg])) arg = j;
            if (axis[arg] < 0) for (int j = 0; j < d; j++) axis[j] = -axis[j];
            components[q] = axis;
        }
        double[][] coords = new double[n][k];
        for (int i = 0; i < n; i++) for (int q = 0; q < k; q++) coords[i][q] = LinAlg.dot(c[i], components[q]);
        double[] var = new double[k], ratio = new double[k];
        for (int q = 0; q < k; q++) {
            var[q] = Math.max(0, eig.values()[q]) / (n - 1);
            ratio[q] = total == 0 ? Double.NaN : Math.max(0, eig.values()[q]) / total;
        }
        return new Projection(coords, components, var, ratio);
    }

    /** The first standard basis vector that stays clear of the first q axes, orthogonalised against them. */
    private static double[] orthogonalUnit(double[][] axes, int q, int d) {
        for (int e = 0; e < d; e++) {
            double[] v = new double[d];
            v[e] = 1;
            for (int pass = 0; pass < 2; pass++) {
                for (int p = 0; p < q; p++) LinAlg.axpy(-LinAlg.dot(axes[p], v), axes[p], v);
            }
            double norm = LinAlg.norm(v);
            if (norm > 1e-3) {
                for (int j = 0; j < d; j++) v[j] /= norm;
                return v;
            }
        }
        throw new IllegalStateException("no axis orthogonal to " + q + " axes in " + d + " dimensions");
    }
}
