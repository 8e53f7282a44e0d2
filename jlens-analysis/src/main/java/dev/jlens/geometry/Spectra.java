package dev.jlens.geometry;

import dev.jlens.stats.LinAlg;

/**
 * Participation ratio (Σλ)²/Σλ² of a class covariance. Only trace(C) and trace(C²) are needed, and both are
 * the same for the d×d scatter XcᵀXc and the n×n centred Gram matrix XcXcᵀ (they share their non-zero
 * eigenvalues), so no eigendecomposition is done and the smaller of the two matrices is used. The (n−1)
 * normalisation of C cancels in the ratio.
 */
final class Spectra {

    private Spectra() {
    }

    static double participationRatio(double[][] rows) {
        int n = rows.length, d = rows[0].length;
        double[] mu = PointMetrics.mean(rows);
        double[][] centred = new double[n][d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) centred[i][j] = rows[i][j] - mu[j];
        double[][] k = n <= d ? LinAlg.gram(centred) : LinAlg.gram(LinAlg.transpose(centred));
        return ratio(k, 0, k.length);
    }

    /**
     * The same from a block [from, to) of a Gram matrix of rows that may be centred differently: the block is
     * double-centred first (K = H·G·H), which is the Gram matrix of the rows centred on their own mean.
     */
    static double participationRatioFromGram(double[][] g, int from, int to) {
        int m = to - from;
        double[] rowMean = new double[m];
        double total = 0;
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int j = 0; j < m; j++) s += g[from + i][from + j];
            rowMean[i] = s / m;
            total += s;
        }
        total /= (double) m * m;
        double trace = 0, frob = 0;
        for (int i = 0; i < m; i++) {
            double[] gi = g[from + i];
            for (int j = 0; j < m; j++) {
                double kij = gi[from + j] - rowMean[i] - rowMean[j] + total;
                frob += kij * kij;
                if (i == j) trace += kij;
            }
        }
        return frob == 0 ? Double.NaN : trace * trace / frob;
    }

    private static double ratio(double[][] k, int from, int to) {
        double trace = 0, frob = 0;
        for (int i = from; i < to; i++) {
            trace += k[i][i];
            for (int j = from; j < to; j++) frob += k[i][j] * k[i][j];
        }
        return frob == 0 ? Double.NaN : trace * trace / frob;
    }
}
