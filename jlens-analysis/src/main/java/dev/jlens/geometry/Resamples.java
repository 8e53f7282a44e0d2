package dev.jlens.geometry;

import dev.jlens.stats.LinAlg;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * The random choices and per-draw formulas of {@link GeometryAnalyzer}, public so that a distributed
 * implementation (jlens-spark's {@code analyze}) draws exactly the same resamples from the same seeded streams
 * and turns the same sums into the same statistics: one definition, used by both, instead of two copies that
 * could drift apart.
 */
public final class Resamples {

    /** Above this many prompts the silhouette uses a seeded stratified subsample of this size. */
    public static final int SILHOUETTE_MAX = GeometryAnalyzer.SILHOUETTE_MAX;

    private Resamples() {
    }

    /** The multiplicities {cA, cB} of one bootstrap draw: n_A draws with replacement from A, then n_B from B. */
    public static int[][] bootstrapCounts(SplittableRandom rng, int nA, int nB) {
        int[] cA = new int[nA], cB = new int[nB];
        for (int k = 0; k < nA; k++) cA[rng.nextInt(nA)]++;
        for (int k = 0; k < nB; k++) cB[rng.nextInt(nB)]++;
        return new int[][] {cA, cB};
    }

    /**
     * One label permutation: the pooled indices (A rows 0..n_A−1, then B rows) after a partial Fisher–Yates
     * shuffle of the first m positions; those m indices form the relabelled smaller class.
     */
    public static int[] permutationOrder(SplittableRandom rng, int n, int m) {
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        for (int k = 0; k < m; k++) {
            int j = k + rng.nextInt(n - k);
            int tmp = idx[k];
            idx[k] = idx[j];
            idx[j] = tmp;
        }
        return idx;
    }

    /**
     * cos_raw, l2_rel and disp_ratio of one bootstrap draw from sums over the drawn rows x′ = x − m₀ (centred on
     * the pooled mean m₀, with multiplicities c): ‖Σ_A c x′‖², ‖Σ_B c x′‖², their dot product, Σ_A c (x′·m₀),
     * Σ_B c (x′·m₀), Σ_A c ‖x′‖², Σ_B c ‖x′‖² and Σ c ‖x‖ over both classes.
     */
    public static double[] bootstrapStatistics(double sumAA, double sumBB, double sumAB, double projA, double projB,
                                               double sqA, double sqB, double norms, int nA, int nB, int d,
                                               double m0sq) {
        int n = nA + nB;
        double aa = sumAA / ((double) nA * nA), bb = sumBB / ((double) nB * nB);
        double ab = sumAB / ((double) nA * nB);
        double pa = projA / nA, pb = projB / nB;
        // Means of the resample: m_X = m′_X + m₀, so dot products pick up the m₀ terms.
        double normMA = aa + 2 * pa + m0sq, normMB = bb + 2 * pb + m0sq;
        double dotAB = ab + pa + pb + m0sq;
        double cos = normMA > 0 && normMB > 0 ? Math.max(-1, Math.min(1, dotAB / Math.sqrt(normMA * normMB)))
                : Double.NaN;
        double l2 = Math.sqrt(Math.max(0, aa + bb - 2 * ab)) / (norms / n);
        double dA = (sqA / nA - aa) / d, dB = (sqB / nB - bb) / d;
        return new double[] {cos, l2, dA / dB};
    }

    /**
     * l2_raw and |log disp_ratio| of one permutation from ‖s‖² and Σ‖x′‖² of the m relabelled rows (s their sum
     * of x′), and Σ‖x′‖² of all rows. Σ over all x′ is 0, so the other class's sum is −s: the mean difference is
     * s/n_A + s/n_B, and each class's dispersion follows from ‖s‖² and its Σ‖x′‖².
     */
    public static double[] permutationStatistics(double subsetSquaredNorm, double subsetSq, double sqTotal, int nA,
                                                 int nB, int d) {
        double ss = subsetSquaredNorm;
        boolean subsetIsA = nA <= nB;
        double l2 = Math.sqrt(ss) * (1.0 / nA + 1.0 / nB);
        double qA = subsetIsA ? subsetSq : sqTotal - subsetSq, qB = sqTotal - qA;
        double dA = (qA / nA - ss / ((double) nA * nA)) / d, dB = (qB / nB - ss / ((double) nB * nB)) / d;
        return new double[] {l2, Math.abs(Math.log(dA / dB))};
    }

    /**
     * The pooled indices (A rows 0..n_A−1, then B rows) that take part in the silhouette, ascending: all of them
     * up to {@link #SILHOUETTE_MAX} prompts, else a stratified sample of that size drawn from rng.
     */
    public static int[] silhouetteIndices(int nA, int nB, SplittableRandom rng) {
        int n = nA + nB;
        if (n <= SILHOUETTE_MAX) return range(0, n);
        int kA = (int) Math.round((double) SILHOUETTE_MAX * nA / n);
        kA = Math.max(2, Math.min(kA, SILHOUETTE_MAX - 2));
        int[] pickA = sample(nA, Math.min(kA, nA), rng), pickB = sample(nB, Math.min(SILHOUETTE_MAX - kA, nB), rng);
        int[] idx = new int[pickA.length + pickB.length];
        System.arraycopy(pickA, 0, idx, 0, pickA.length);
        for (int k = 0; k < pickB.length; k++) idx[pickA.length + k] = nA + pickB[k];
        return idx;
    }

    /** Mean silhouette of the rows (any common translation of the points) with their classes. */
    public static double silhouette(double[][] rows, boolean[] isB) {
        return Silhouette.of(LinAlg.gram(rows), range(0, rows.length), isB);
    }

    /** The length-matched pairs {indices into A, indices into B} of {@link LengthMatcher}, pair by pair. */
    public static int[][] lengthMatch(int[] lengthsA, int[] lengthsB, int caliper, SplittableRandom rng) {
        LengthMatcher.Pairs p = LengthMatcher.match(lengthsA, lengthsB, caliper, rng);
        return new int[][] {p.a(), p.b()};
    }

    static int[] range(int from, int to) {
        int[] r = new int[to - from];
        for (int i = 0; i < r.length; i++) r[i] = from + i;
        return r;
    }

    /** k distinct indices of 0..n-1, sorted. */
    private static int[] sample(int n, int k, SplittableRandom rng) {
        int[] idx = range(0, n);
        for (int i = 0; i < k; i++) {
            int j = i + rng.nextInt(n - i);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        int[] out = Arrays.copyOf(idx, k);
        Arrays.sort(out);
        return out;
    }
}
