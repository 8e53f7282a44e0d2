package dev.jlens.stats;

import java.util.SplittableRandom;
import java.util.stream.IntStream;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The few dense double-precision kernels the geometry metrics need: dot products, Gram matrices, a pivoted
 * Cholesky factor, and eigenpairs of small or low-rank symmetric matrices. Written by hand because the project
 * has no linear-algebra dependency and these kernels are a few dozen lines each; the Gram matrix is the hot
 * spot (n²·d/2 multiply-adds per layer), so it runs on the Vector API and on all cores. Every entry is computed
 * by one fixed sequence of operations, so results do not depend on the number of threads.
 */
public final class LinAlg {

    private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;

    private LinAlg() {
    }

    /**
     * Sum of the lanes in lane order. reduceLanes(ADD) leaves the order of the additions to the implementation,
     * and the interpreter and the JIT intrinsic do differ in the last bit; a fixed order keeps every result
     * bit-identical between runs, threads and warm-up states.
     */
    private static double sumLanes(DoubleVector v) {
        double s = 0;
        for (double x : v.toArray()) s += x;
        return s;
    }

    public static double dot(double[] a, double[] b) {
        int n = a.length;
        int i = 0;
        DoubleVector acc = DoubleVector.zero(S);
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            acc = DoubleVector.fromArray(S, a, i).fma(DoubleVector.fromArray(S, b, i), acc);
        }
        double s = sumLanes(acc);
        for (; i < n; i++) s += a[i] * b[i];
        return s;
    }

    /** y[yOff..yOff+len) += alpha · x[xOff..xOff+len). */
    public static void axpy(double alpha, double[] x, int xOff, double[] y, int yOff, int len) {
        int i = 0;
        DoubleVector va = DoubleVector.broadcast(S, alpha);
        for (int bound = S.loopBound(len); i < bound; i += S.length()) {
            DoubleVector.fromArray(S, x, xOff + i).fma(va, DoubleVector.fromArray(S, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        for (; i < len; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    public static void axpy(double alpha, double[] x, double[] y) {
        axpy(alpha, x, 0, y, 0, x.length);
    }

    /** Cosine similarity, clamped to [-1, 1] against rounding; NaN when either vector is zero. */
    public static double cosine(double[] u, double[] v) {
        double nu = dot(u, u), nv = dot(v, v);
        if (nu == 0 || nv == 0) return Double.NaN;
        return Math.max(-1, Math.min(1, dot(u, v) / Math.sqrt(nu * nv)));
    }

    public static double norm(double[] a) {
        return Math.sqrt(dot(a, a));
    }

    /** The n×n Gram matrix G[i][j] = x_i · x_j of the rows of x (all rows must have the same length). */
    public static double[][] gram(double[][] x) {
        int n = x.length;
        double[][] g = new double[n][n];
        int pairs = (n + 1) / 2;
        // Rows go in pairs (2p, 2p+1) through a 2×4 register block; pair p and pair pairs-1-p share one task so
        // every task computes about the same number of entries of the lower triangle.
        IntStream.range(0, (pairs + 1) / 2).parallel().forEach(t -> {
            gramRowPair(x, g, 2 * t);
            int mirror = pairs - 1 - t;
            if (mirror != t) gramRowPair(x, g, 2 * mirror);
        });
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < i; j++) g[j][i] = g[i][j];
        }
        return g;
    }

    /** Entries j ≤ i of rows i and i+1 (when it exists). */
    private static void gramRowPair(double[][] x, double[][] g, int i) {
        boolean two = i + 1 < x.length;
        int j = 0;
        if (two) {
            for (; j + 3 <= i; j += 4) dot2x4(x[i], x[i + 1], x[j], x[j + 1], x[j + 2], x[j + 3], g[i], g[i + 1], j);
        }
        for (int r = i; r <= (two ? i + 1 : i); r++) {
            for (int c = j; c <= r; c++) g[r][c] = dot(x[r], x[c]);
        }
    }

    /**
     * Eight dot products, rows a0, a1 against b0..b3, in one pass: each loaded vector feeds two or four FMAs,
     * which keeps the kernel from being bound by loads.
     */
    private static void dot2x4(double[] a0, double[] a1, double[] b0, double[] b1, double[] b2, double[] b3,
                               double[] out0, double[] out1, int off) {
        int n = a0.length;
        int i = 0;
        DoubleVector z = DoubleVector.zero(S);
        DoubleVector c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;
        for (int bound = S.loopBound(n); i < bound; i += S.length()) {
            DoubleVector va = DoubleVector.fromArray(S, a0, i), vb = DoubleVector.fromArray(S, a1, i);
            DoubleVector w = DoubleVector.fromArray(S, b0, i);
            c00 = va.fma(w, c00);
            c10 = vb.fma(w, c10);
            w = DoubleVector.fromArray(S, b1, i);
            c01 = va.fma(w, c01);
            c11 = vb.fma(w, c11);
            w = DoubleVector.fromArray(S, b2, i);
            c02 = va.fma(w, c02);
            c12 = vb.fma(w, c12);
            w = DoubleVector.fromArray(S, b3, i);
            c03 = va.fma(w, c03);
            c13 = vb.fma(w, c13);
        }
        double s00 = sumLanes(c00), s01 = sumLanes(c01);
        double s02 = sumLanes(c02), s03 = sumLanes(c03);
        double s10 = sumLanes(c10), s11 = sumLanes(c11);
        double s12 = sumLanes(c12), s13 = sumLanes(c13);
        for (; i < n; i++) {
            s00 += a0[i] * b0[i];
            s01 += a0[i] * b1[i];
            s02 += a0[i] * b2[i];
            s03 += a0[i] * b3[i];
            s10 += a1[i] * b0[i];
            s11 += a1[i] * b1[i];
            s12 += a1[i] * b2[i];
            s13 += a1[i] * b3[i];
        }
        out0[off] = s00;
        out0[off + 1] = s01;
        out0[off + 2] = s02;
        out0[off + 3] = s03;
        out1[off] = s10;
        out1[off + 1] = s11;
        out1[off + 2] = s12;
        out1[off + 3] = s13;
    }

    public static double[][] transpose(double[][] x) {
        int n = x.length, d = x[0].length;
        double[][] t = new double[d][n];
        for (int i = 0; i < n; i++) {
            double[] xi = x[i];
            for (int j = 0; j < d; j++) t[j][i] = xi[j];
        }
        return t;
    }

    /**
     * A factor L (n rows, r columns) with K ≈ L·Lᵀ for a symmetric positive semi-definite K, by Cholesky with
     * diagonal pivoting. It stops once the largest remaining diagonal is at most relTol times the largest
     * diagonal of K, so r is the numerical rank. Rows of L are coordinates of the points behind K in an
     * orthonormal basis of their span: inner products, and hence any L2-penalised linear model, are preserved.
     */
    public static double[][] pivotedCholesky(double[][] k, double relTol) {
        int n = k.length;
        double[] diag = new double[n];
        double maxDiag = 0;
        for (int i = 0; i < n; i++) {
            diag[i] = k[i][i];
            maxDiag = Math.max(maxDiag, diag[i]);
        }
        boolean[] used = new boolean[n];
        double[][] cols = new double[n][];
        int r = 0;
        while (r < n) {
            int p = -1;
            double best = -1;
            for (int i = 0; i < n; i++) {
                if (!used[i] && diag[i] > best) {
                    best = diag[i];
                    p = i;
                }
            }
            if (!(best > relTol * maxDiag) || best <= 0) break;
            double[] col = k[p].clone();
            for (int s = 0; s < r; s++) axpy(-cols[s][p], cols[s], col);
            double sq = Math.sqrt(best);
            used[p] = true;
            for (int i = 0; i < n; i++) {
                if (used[i]) {
                    col[i] = 0;
                } else {
                    col[i] /= sq;
                    diag[i] -= col[i] * col[i];
                }
            }
            col[p] = sq;
            cols[r++] = col;
        }
        double[][] l = new double[n][r];
        for (int s = 0; s < r; s++) {
            double[] c = cols[s];
            for (int i = 0; i < n; i++) l[i][s] = c[i];
        }
        return l;
    }

    /** Eigenpairs of a symmetric matrix, eigenvalues in descending order; vectors[k] is the k-th eigenvector. */
    public record SymEigen(double[] values, double[][] vectors) {
    }

    /**
     * All eigenpairs of a small symmetric matrix by cyclic Jacobi rotations: simple and accurate to working
     * precision, but O(m³) per sweep, so meant for matrices of a few dozen rows (Rayleigh–Ritz steps).
     */
    public static SymEigen jacobi(double[][] sym) {
        int m = sym.length;
        double[][] a = new double[m][];
        for (int i = 0; i < m; i++) a[i] = sym[i].clone();
        double[][] v = new double[m][m];
        for (int i = 0; i < m; i++) v[i][i] = 1;
        for (int sweep = 0; sweep < 100; sweep++) {
            double off = 0, total = 0;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < m; j++) {
                    total += a[i][j] * a[i][j];
                    if (i != j) off += a[i][j] * a[i][j];
                }
            }
            if (off <= 1e-30 * total || off == 0) break;
            for (int p = 0; p < m; p++) {
                for (int q = p + 1; q < m; q++) {
                    double apq = a[p][q];
                    if (apq == 0) continue;
                    double theta = (a[q][q] - a[p][p]) / (2 * apq);
                    double t = Math.signum(theta) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.sqrt(t * t + 1), s = t * c;
                    for (int r = 0; r < m; r++) {
                        double arp = a[r][p], arq = a[r][q];
                        a[r][p] = c * arp - s * arq;
                        a[r][q] = s * arp + c * arq;
                    }
                    for (int r = 0; r < m; r++) {
                        double apr = a[p][r], aqr = a[q][r];
                        a[p][r] = c * apr - s * aqr;
                        a[q][r] = s * apr + c * aqr;
                    }
                    for (int r = 0; r < m; r++) {
                        double vrp = v[r][p], vrq = v[r][q];
                        v[r][p] = c * vrp - s * vrq;
                        v[r][q] = s * vrp + c * vrq;
                    }
                }
            }
        }
        Integer[] order = new Integer[m];
        for (int i = 0; i < m; i++) order[i] = i;
        java.util.Arrays.sort(order, (x, y) -> Double.compare(a[y][y], a[x][x]));
        double[] values = new double[m];
        double[][] vectors = new double[m][m];
        for (int k = 0; k < m; k++) {
            int c = order[k];
            values[k] = a[c][c];
            for (int r = 0; r < m; r++) vectors[k][r] = v[r][c];
        }
        return new SymEigen(values, vectors);
    }

    /**
     * The leading k eigenpairs of a symmetric positive semi-definite m×m matrix by block subspace iteration with
     * Rayleigh–Ritz (oversampled by 10 vectors, so convergence goes as (λ_{k+10}/λ_k)^iterations). Small
     * matrices go straight to {@link #jacobi}. The start block comes from a fixed seed, so the result is
     * reproducible.
     */
    public static SymEigen topEigen(double[][] psd, int k) {
        int m = psd.length;
        if (m <= 48) {
            SymEigen all = jacobi(psd);
            int kk = Math.min(k, m);
            return new SymEigen(java.util.Arrays.copyOf(all.values(), kk),
                    java.util.Arrays.copyOf(all.vectors(), kk));
        }
        int b = Math.min(m, k + 10);
        SplittableRandom rng = new SplittableRandom(0x5EEDL);
        double[][] q = new double[b][m];
        for (double[] row : q) for (int i = 0; i < m; i++) row[i] = rng.nextDouble() - 0.5;
        orthonormalize(q, rng);
        double[] prev = null;
        SymEigen ritz = null;
        double[][] y = new double[b][];
        for (int iter = 0; iter < 500; iter++) {
            for (int c = 0; c < b; c++) y[c] = multiply(psd, q[c]);
            // Rayleigh–Ritz: eigenpairs of Qᵀ·M·Q rotate the block onto the best approximations in its span.
            double[][] small = new double[b][b];
            for (int i = 0; i < b; i++) for (int j = 0; j < b; j++) small[i][j] = dot(q[i], y[j]);
            for (int i = 0; i < b; i++) for (int j = 0; j < i; j++) small[i][j] = small[j][i] = 0.5 * (small[i][j] + small[j][i]);
            ritz = jacobi(small);
            double[][] rotated = new double[b][m];
            for (int c = 0; c < b; c++) for (int j = 0; j < b; j++) axpy(ritz.vectors()[c][j], y[j], rotated[c]);
            double[] vals = ritz.values();
            boolean done = prev != null;
            for (int c = 0; c < k && done; c++) {
                done = Math.abs(vals[c] - prev[c]) <= 1e-13 * Math.max(Math.abs(vals[0]), Double.MIN_NORMAL);
            }
            if (done || iter == 499) break;
            prev = vals.clone();
            q = rotated;
            orthonormalize(q, rng);
        }
        // The Ritz vectors are the last basis q rotated by the small eigenvectors.
        double[][] vectors = new double[k][m];
        for (int c = 0; c < k; c++) {
            for (int j = 0; j < b; j++) axpy(ritz.vectors()[c][j], q[j], vectors[c]);
            double nv = norm(vectors[c]);
            if (nv > 0) for (int i = 0; i < m; i++) vectors[c][i] /= nv;
        }
        return new SymEigen(java.util.Arrays.copyOf(ritz.values(), k), vectors);
    }

    private static double[] multiply(double[][] sym, double[] x) {
        double[] out = new double[sym.length];
        for (int i = 0; i < sym.length; i++) out[i] = dot(sym[i], x);
        return out;
    }

    /** Modified Gram–Schmidt (twice, for stability); a vector that collapses is replaced by a random one. */
    private static void orthonormalize(double[][] q, SplittableRandom rng) {
        for (int c = 0; c < q.length; c++) {
            for (int attempt = 0; ; attempt++) {
                double before = norm(q[c]);
                for (int pass = 0; pass < 2; pass++) {
                    for (int j = 0; j < c; j++) axpy(-dot(q[j], q[c]), q[j], q[c]);
                }
                double after = norm(q[c]);
                if (after > 1e-10 * before && after > 0) {
                    for (int i = 0; i < q[c].length; i++) q[c][i] /= after;
                    break;
                }
                if (attempt > 5) throw new IllegalStateException("cannot complete an orthonormal basis");
                for (int i = 0; i < q[c].length; i++) q[c][i] = rng.nextDouble() - 0.5;
            }
        }
    }
}
