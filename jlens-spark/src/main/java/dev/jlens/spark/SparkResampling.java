package dev.jlens.spark;

import dev.jlens.geometry.Resamples;
import dev.jlens.stats.LinAlg;
import dev.jlens.stats.Seeds;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The bootstrap and permutation draws of {@code jlens analyze} (GeometryAnalyzer, docs/METRICS.md) at one hook,
 * summed over the partitions. Every resampled statistic is a function of a few sums over the drawn rows
 * (Resamples.bootstrapStatistics / permutationStatistics, the formulas jlens analyze uses): per draw the sum of
 * the centred vectors x′ = x − m₀ of each class with the draw's multiplicities, and sums of per-prompt scalars.
 * Each partition computes those sums for its own rows and every draw; the driver adds the partitions' sums and
 * applies the formulas. The driver receives (2·bootstrap + permutations)·d numbers per hook, never a vector.
 *
 * <p>The draws are jlens analyze's, not merely draws like them: a draw's multiplicities (or relabelled subset)
 * come from the same seeded generator {@code Seeds.perDraw(Seeds.stream(seed, layer, purpose), draws)} in the
 * same order, indexed by each prompt's pooled index (its rank in class A, or n_A + its rank in class B). Each
 * partition replays every draw's generator in full and keeps the entries of its own rows: O(n) random numbers
 * per draw and partition, cheap against the O(rows·d) sums while n is below some millions, and the price of
 * reproducing the single-machine numbers exactly (a per-row hash would scale better but give other draws).
 */
final class SparkResampling {

    /** What a partition needs: sizes, the pooled mean, the draws and their seeds. */
    record Plan(int nA, int nB, int d, double[] m0, int bootstrap, int permutations, long seed, int layer)
            implements Serializable {
        int n() {
            return nA + nB;
        }
    }

    /** Per draw: Σ c x′ of each class, Σ c x′·m₀, Σ c ‖x′‖², Σ c ‖x‖; per permutation: Σ x′ and Σ ‖x′‖² of the subset. */
    static final class Sums implements Serializable {
        final double[][] sumA, sumB, subset;
        final double[] projA, projB, sqA, sqB, norms, subsetSq;
        double sqTotal;

        Sums(Plan p) {
            sumA = new double[p.bootstrap()][p.d()];
            sumB = new double[p.bootstrap()][p.d()];
            projA = new double[p.bootstrap()];
            projB = new double[p.bootstrap()];
            sqA = new double[p.bootstrap()];
            sqB = new double[p.bootstrap()];
            norms = new double[p.bootstrap()];
            subset = new double[p.permutations()][p.d()];
            subsetSq = new double[p.permutations()];
        }

        Sums merge(Sums o) {
            for (int t = 0; t < sumA.length; t++) {
                LinAlg.axpy(1, o.sumA[t], sumA[t]);
                LinAlg.axpy(1, o.sumB[t], sumB[t]);
                projA[t] += o.projA[t];
                projB[t] += o.projB[t];
                sqA[t] += o.sqA[t];
                sqB[t] += o.sqB[t];
                norms[t] += o.norms[t];
            }
            for (int t = 0; t < subset.length; t++) {
                LinAlg.axpy(1, o.subset[t], subset[t]);
                subsetSq[t] += o.subsetSq[t];
            }
            sqTotal += o.sqTotal;
            return this;
        }
    }

    /** The per-draw statistics, as GeometryAnalyzer computes them. */
    record Draws(double[] cosRaw, double[] l2Rel, double[] dispRatio, double[] l2Raw, double[] absLogDispRatio) {
    }

    private SparkResampling() {
    }

    /** One row of a partition: pooled index, x′, ‖x′‖², x′·m₀, ‖x‖. */
    private record Point(int index, double[] centred, double sq, double proj, double norm) {
    }

    /**
     * The sums of one partition's rows.
     *
     * @param rows pooled index and vector of each row of this hook in the partition
     */
    static Sums partition(Iterator<IndexedVector> rows, Plan p) {
        double m0sq = LinAlg.dot(p.m0(), p.m0());
        List<Point> points = new ArrayList<>();
        Sums s = new Sums(p);
        while (rows.hasNext()) {
            IndexedVector r = rows.next();
            double[] c = new double[p.d()];
            double xx = 0;
            for (int j = 0; j < c.length; j++) {
                double x = r.vector()[j];
                c[j] = x - p.m0()[j];
                xx += x * x;
            }
            double sq = LinAlg.dot(c, c);
            points.add(new Point(r.index(), c, sq, LinAlg.dot(c, p.m0()), Math.sqrt(xx)));
            s.sqTotal += sq;
        }
        if (points.isEmpty()) return s;
        int nA = p.nA();
        SplittableRandom[] boot = Seeds.perDraw(Seeds.stream(p.seed(), p.layer(), "bootstrap"), p.bootstrap());
        for (int t = 0; t < p.bootstrap(); t++) {
            int[][] counts = Resamples.bootstrapCounts(boot[t], nA, p.nB());
            for (Point x : points) {
                boolean isA = x.index() < nA;
                int c = isA ? counts[0][x.index()] : counts[1][x.index() - nA];
                if (c == 0) continue;
                if (isA) {
                    LinAlg.axpy(c, x.centred(), s.sumA[t]);
                    s.projA[t] += c * x.proj();
                    s.sqA[t] += c * x.sq();
                } else {
                    LinAlg.axpy(c, x.centred(), s.sumB[t]);
                    s.projB[t] += c * x.proj();
                    s.sqB[t] += c * x.sq();
                }
                s.norms[t] += c * x.norm();
            }
        }
        int n = p.n(), m = Math.min(nA, p.nB());
        SplittableRandom[] perm = Seeds.perDraw(Seeds.stream(p.seed(), p.layer(), "permutation"), p.permutations());
        boolean[] inSubset = new boolean[n];
        for (int t = 0; t < p.permutations(); t++) {
            int[] order = Resamples.permutationOrder(perm[t], n, m);
            for (int k = 0; k < m; k++) inSubset[order[k]] = true;
            for (Point x : points) {
                if (!inSubset[x.index()]) continue;
                LinAlg.axpy(1, x.centred(), s.subset[t]);
                s.subsetSq[t] += x.sq();
            }
            for (int k = 0; k < m; k++) inSubset[order[k]] = false;
        }
        return s;
    }

    /** A row as a partition sees it: its pooled index and its vector. */
    record IndexedVector(int index, float[] vector) implements Serializable {
    }

    /** The statistics of every draw from the summed partitions. */
    static Draws draws(Sums s, Plan p) {
        double m0sq = LinAlg.dot(p.m0(), p.m0());
        int b = p.bootstrap();
        double[] cos = new double[b], l2 = new double[b], disp = new double[b];
        for (int t = 0; t < b; t++) {
            double[] st = Resamples.bootstrapStatistics(LinAlg.dot(s.sumA[t], s.sumA[t]), LinAlg.dot(s.sumB[t], s.sumB[t]),
                    LinAlg.dot(s.sumA[t], s.sumB[t]), s.projA[t], s.projB[t], s.sqA[t], s.sqB[t], s.norms[t], p.nA(), p.nB(),
                    p.d(), m0sq);
            cos[t] = st[0];
            l2[t] = st[1];
            disp[t] = st[2];
        }
        int q = p.permutations();
        double[] pl2 = new double[q], pdisp = new double[q];
        for (int t = 0; t < q; t++) {
            double[] st = Resamples.permutationStatistics(LinAlg.dot(s.subset[t], s.subset[t]), s.subsetSq[t], s.sqTotal,
                    p.nA(), p.nB(), p.d());
            pl2[t] = st[0];
            pdisp[t] = st[1];
        }
        return new Draws(cos, l2, disp, pl2, pdisp);
    }

    /** The AUROC of every bootstrap draw, from the out-of-fold scores (driver side: n doubles and the same draws). */
    static double[] aurocDraws(double[] scoresA, double[] scoresB, Plan p) {
        dev.jlens.stats.Auroc.Resampler r = new dev.jlens.stats.Auroc.Resampler(scoresA, scoresB);
        SplittableRandom[] boot = Seeds.perDraw(Seeds.stream(p.seed(), p.layer(), "bootstrap"), p.bootstrap());
        double[] auc = new double[p.bootstrap()];
        for (int t = 0; t < auc.length; t++) {
            int[][] counts = Resamples.bootstrapCounts(boot[t], p.nA(), p.nB());
            auc[t] = r.auroc(counts[0], counts[1]);
        }
        return auc;
    }
}
