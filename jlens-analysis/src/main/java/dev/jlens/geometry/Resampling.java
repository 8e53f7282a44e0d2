package dev.jlens.geometry;

import dev.jlens.stats.Auroc;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.Seeds;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Bootstrap and permutation draws without touching d-dimensional vectors per draw.
 *
 * <p>Every statistic resampled here (cosine and distance of the class means, mean norm, dispersions) is a
 * function of a few sums: with rows x′ᵢ = xᵢ − m₀ centred on the pooled mean m₀ and multiplicities cᵢ of a draw,
 * ‖Σcᵢx′ᵢ‖², the cross term between the classes, Σcᵢ‖x′ᵢ‖², Σcᵢ(x′ᵢ·m₀) and Σcᵢ‖xᵢ‖. The last three are sums of
 * precomputed per-prompt scalars. The quadratic forms come from the n×n Gram matrix G′ = X′X′ᵀ, built once
 * (n²d/2 multiply-adds): cᵀG′c costs a sum of at most n rows of G′, O(n²) per draw instead of O(n·d). When d is
 * small against n, summing the d-dimensional rows is cheaper than building G′, and this class does that
 * instead; both paths give the same numbers up to rounding. Centring on m₀ keeps the Gram entries small (no
 * cancellation between large norms) and makes the two classes' sums under a permutation exact negatives of each
 * other, so a permutation needs one quadratic form, over the smaller class.
 *
 * <p>Draws run in parallel, each on its own generator split off in draw order, so the numbers do not depend on
 * the thread count.
 */
final class Resampling {

    /** Largest pooled n for which G′ is held in memory (8·n² bytes: 134 MB at 4096). */
    static final int GRAM_MAX = 4096;

    private final int nA, nB, n, d;
    private final double[][] centred;   // x′ᵢ, A rows then B rows
    private final double[][] gram;      // G′, or null on the d-space path
    private final double[] sq;          // ‖x′ᵢ‖²
    private final double[] proj;        // x′ᵢ · m₀
    private final double[] norm;        // ‖xᵢ‖ (uncentred)
    private final double m0sq;          // ‖m₀‖²
    private final double sqTotal;

    Resampling(double[][] a, double[][] b, int bootstrap, int permutations) {
        this(a, b, bootstrap, permutations, null);
    }

    /** @param forceGram true or false to pick the path (tests), null to choose by cost */
    Resampling(double[][] a, double[][] b, int bootstrap, int permutations, Boolean forceGram) {
        nA = a.length;
        nB = b.length;
        n = nA + nB;
        d = a[0].length;
        double[] m0 = new double[d];
        for (double[] x : a) LinAlg.axpy(1, x, m0);
        for (double[] x : b) LinAlg.axpy(1, x, m0);
        for (int j = 0; j < d; j++) m0[j] /= n;
        m0sq = LinAlg.dot(m0, m0);
        centred = new double[n][d];
        sq = new double[n];
        proj = new double[n];
        norm = new double[n];
        double total = 0;
        for (int i = 0; i < n; i++) {
            double[] x = i < nA ? a[i] : b[i - nA];
            double[] c = centred[i];
            for (int j = 0; j < d; j++) c[j] = x[j] - m0[j];
            sq[i] = LinAlg.dot(c, c);
            proj[i] = LinAlg.dot(c, m0);
            norm[i] = LinAlg.norm(x);
            total += sq[i];
        }
        sqTotal = total;
        gram = (forceGram != null ? forceGram : useGram(bootstrap, permutations)) ? LinAlg.gram(centred) : null;
    }

    /**
     * Rough multiply-add counts of the two paths. Gram: build n²d/2, then per bootstrap draw a weighted sum of
     * the ~63% distinct drawn rows (length n for A, n_B for B), per permutation m rows of length n. d-space: the
     * same row counts, each of length d. The build is left out of the comparison: without G′ the silhouette and
     * the participation ratios need Gram matrices of about the same total size anyway.
     */
    private boolean useGram(int bootstrap, int permutations) {
        if (n > GRAM_MAX) return false;
        int m = Math.min(nA, nB);
        double gramDraws = bootstrap * 0.632 * ((double) nA * n + (double) nB * nB) + permutations * (double) m * n;
        double dDraws = bootstrap * 0.632 * (double) n * d + permutations * (double) m * d;
        return gramDraws < dDraws;
    }

    /** G′ (rows centred on the pooled mean), or null when the d-space path was chosen. */
    double[][] gram() {
        return gram;
    }

    double[][] centred() {
        return centred;
    }

    /** Per-draw statistics: cos_raw, l2_rel, disp_ratio, probe AUROC. */
    record BootstrapDraws(double[] cosRaw, double[] l2Rel, double[] dispRatio, double[] auroc) {
    }

    BootstrapDraws bootstrap(int draws, SplittableRandom parent, Auroc.Resampler scores) {
        SplittableRandom[] rngs = Seeds.perDraw(parent, draws);
        double[] cos = new double[draws], l2 = new double[draws], disp = new double[draws], auc = new double[draws];
        IntStream.range(0, draws).parallel().forEach(t -> {
            SplittableRandom rng = rngs[t];
            int[][] counts = Resamples.bootstrapCounts(rng, nA, nB);
            int[] cA = counts[0], cB = counts[1];
            double[] forms = quadraticForms(cA, cB);
            double pa = 0, pb = 0, qa = 0, qb = 0, norms = 0;
            for (int i = 0; i < nA; i++) {
                if (cA[i] == 0) continue;
                pa += cA[i] * proj[i];
                qa += cA[i] * sq[i];
                norms += cA[i] * norm[i];
            }
            for (int j = 0; j < nB; j++) {
                if (cB[j] == 0) continue;
                pb += cB[j] * proj[nA + j];
                qb += cB[j] * sq[nA + j];
                norms += cB[j] * norm[nA + j];
            }
            double[] st = Resamples.bootstrapStatistics(forms[0], forms[1], forms[2], pa, pb, qa, qb, norms, nA, nB, d,
                    m0sq);
            cos[t] = st[0];
            l2[t] = st[1];
            disp[t] = st[2];
            auc[t] = scores == null ? Double.NaN : scores.auroc(cA, cB);
        });
        return new BootstrapDraws(cos, l2, disp, auc);
    }

    /** ‖Σ cA x′‖², ‖Σ cB x′‖² and (Σ cA x′)·(Σ cB x′). */
    private double[] quadraticForms(int[] cA, int[] cB) {
        if (gram != null) {
            double[] uA = new double[n];
            for (int i = 0; i < nA; i++) if (cA[i] != 0) LinAlg.axpy(cA[i], gram[i], uA);
            double[] uB = new double[nB];
            for (int j = 0; j < nB; j++) if (cB[j] != 0) LinAlg.axpy(cB[j], gram[nA + j], nA, uB, 0, nB);
            double aa = 0, ab = 0, bb = 0;
            for (int i = 0; i < nA; i++) aa += cA[i] * uA[i];
            for (int j = 0; j < nB; j++) {
                ab += cB[j] * uA[nA + j];
                bb += cB[j] * uB[j];
            }
            return new double[] {aa, bb, ab};
        }
        double[] sA = new double[d], sB = new double[d];
        for (int i = 0; i < nA; i++) if (cA[i] != 0) LinAlg.axpy(cA[i], centred[i], sA);
        for (int j = 0; j < nB; j++) if (cB[j] != 0) LinAlg.axpy(cB[j], centred[nA + j], sB);
        return new double[] {LinAlg.dot(sA, sA), LinAlg.dot(sB, sB), LinAlg.dot(sA, sB)};
    }

    /** Null distributions of l2_raw and |log disp_ratio| under random relabelling with the class sizes kept. */
    record PermutationDraws(double[] l2Raw, double[] absLogDispRatio) {
    }

    PermutationDraws permutations(int draws, SplittableRandom parent) {
        SplittableRandom[] rngs = Seeds.perDraw(parent, draws);
        double[] l2 = new double[draws], disp = new double[draws];
        int m = Math.min(nA, nB);
        IntStream.range(0, draws).parallel().forEach(t -> {
            SplittableRandom rng = rngs[t];
            int[] idx = Resamples.permutationOrder(rng, n, m);
            double ss = subsetSquaredNorm(idx, m);
            double qs = 0;
            for (int k = 0; k < m; k++) qs += sq[idx[k]];
            double[] st = Resamples.permutationStatistics(ss, qs, sqTotal, nA, nB, d);
            l2[t] = st[0];
            disp[t] = st[1];
        });
        return new PermutationDraws(l2, disp);
    }

    private double subsetSquaredNorm(int[] idx, int m) {
        if (gram != null) {
            double[] u = new double[n];
            for (int k = 0; k < m; k++) LinAlg.axpy(1, gram[idx[k]], u);
            double s = 0;
            for (int k = 0; k < m; k++) s += u[idx[k]];
            return s;
        }
        double[] s = new double[d];
        for (int k = 0; k < m; k++) LinAlg.axpy(1, centred[idx[k]], s);
        return LinAlg.dot(s, s);
    }
}
