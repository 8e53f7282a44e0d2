package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.stats.LinAlg;

import java.util.stream.IntStream;

/**
 * A covariance shrunk towards a multiple of the identity, Σ(δ) = (1 − δ)·S + δ·μ·I with μ = tr(S)/d, and its
 * inverse. With fewer prompts than dimensions S is singular, and the Mahalanobis distance only exists after
 * shrinkage. The Ledoit–Wolf (2004) δ is the one scikit-learn's {@code ledoit_wolf_shrinkage} computes; its
 * sums come from the n×n Gram matrix of the centred rows, so nothing d×d is needed to find δ. Written by hand
 * because the project has no linear-algebra dependency, and a Cholesky factor and a triangular inverse are a
 * few lines each.
 */
final class Shrinkage {

    private final double[][] cov;   // S = XᵀX / n of the centred rows
    private final double mu;        // tr(S) / d
    private final double ledoitWolf;

    /** @param centred rows minus their mean (n ≥ 2 rows of equal length d) */
    Shrinkage(double[][] centred) {
        int n = centred.length, d = centred[0].length;
        double[][] gram = LinAlg.gram(centred);
        double trace = 0, fourth = 0, frob = 0;
        for (int i = 0; i < n; i++) {
            trace += gram[i][i];
            fourth += gram[i][i] * gram[i][i];
            for (int k = 0; k < n; k++) frob += gram[i][k] * gram[i][k];
        }
        trace /= n;
        frob /= (double) n * n;                  // ‖S‖²_F
        mu = trace / d;
        double delta = (frob - d * mu * mu) / d; // ‖S − μI‖²_F / d
        double beta = (fourth / n - frob) / ((double) d * n);
        beta = Math.min(beta, delta);
        ledoitWolf = delta <= 0 ? 1 : Math.max(0, beta / delta);
        double[][] t = LinAlg.transpose(centred);   // d × n: rows of S are dot products of these columns
        cov = new double[d][d];
        IntStream.range(0, d).parallel().forEach(a -> {
            for (int b = 0; b <= a; b++) cov[a][b] = LinAlg.dot(t[a], t[b]) / n;
        });
        for (int a = 0; a < d; a++) for (int b = 0; b < a; b++) cov[b][a] = cov[a][b];
    }

    double ledoitWolf() {
        return ledoitWolf;
    }

    double mu() {
        return mu;
    }

    /**
     * (Σ(δ))⁻¹, row-major d×d. The target μ·I is used only when the rows vary at all (μ &gt; 0); otherwise the
     * identity stands in for it so the inverse exists.
     */
    double[] precision(double delta) {
        if (!(delta > 0 && delta <= 1)) throw new IllegalArgumentException("shrinkage " + delta + " outside (0, 1]");
        int d = cov.length;
        double target = mu > 0 ? mu : 1;
        double[][] a = new double[d][d];
        for (int i = 0; i < d; i++) {
            for (int j = 0; j <= i; j++) a[i][j] = (1 - delta) * cov[i][j];
            a[i][i] += delta * target;
        }
        double[][] l = cholesky(a);
        double[][] inv = lowerInverse(l);
        // P = L⁻ᵀ L⁻¹: P_ij = Σ_{k ≥ max(i,j)} inv[k][i]·inv[k][j]; columns of inv as rows make that a dot product.
        double[][] cols = LinAlg.transpose(inv);
        double[] p = new double[d * d];
        IntStream.range(0, d).parallel().forEach(i -> {
            for (int j = 0; j <= i; j++) {
                double s = 0;
                double[] ci = cols[i], cj = cols[j];
                for (int k = i; k < d; k++) s += ci[k] * cj[k];
                p[i * d + j] = s;
            }
        });
        for (int i = 0; i < d; i++) for (int j = 0; j < i; j++) p[j * d + i] = p[i * d + j];
        return p;
    }

    /** Lower-triangular L with L·Lᵀ = a (only a's lower triangle is read). */
    static double[][] cholesky(double[][] a) {
        int d = a.length;
        double[][] l = new double[d][];
        for (int i = 0; i < d; i++) {
            l[i] = new double[d];
            for (int j = 0; j <= i; j++) {
                double s = a[i][j];
                double[] li = l[i], lj = l[j];
                for (int k = 0; k < j; k++) s -= li[k] * lj[k];
                if (i == j) {
                    if (!(s > 0)) {
                        throw new JlensException("covariance is not positive definite at dimension " + i
                                + " (pivot " + s + "); the activations hold NaN or infinite values, or shrinkage is too small");
                    }
                    li[i] = Math.sqrt(s);
                } else {
                    li[j] = s / lj[j];
                }
            }
        }
        return l;
    }

    /** L⁻¹ of a lower-triangular L by forward substitution, column by column. */
    static double[][] lowerInverse(double[][] l) {
        int d = l.length;
        double[][] inv = new double[d][d];
        for (int c = 0; c < d; c++) {
            inv[c][c] = 1 / l[c][c];
            for (int i = c + 1; i < d; i++) {
                double s = 0;
                for (int k = c; k < i; k++) s -= l[i][k] * inv[k][c];
                inv[i][c] = s / l[i][i];
            }
        }
        return inv;
    }
}
