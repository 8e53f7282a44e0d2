package dev.jlens.detect;

import dev.jlens.geometry.Estimate;
import dev.jlens.stats.Quantiles;
import dev.jlens.stats.Seeds;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Test-split metrics of one detector with percentile bootstrap intervals. A bootstrap draw resamples every
 * group (direct harmful, jailbreak, hard negative, plain harmless, or a file's own categories) with
 * replacement within itself, so group and class sizes stay as they are and each group's metric has an
 * interval of its own.
 *
 * @param overall     metric name ({@link #METRICS}) to estimate
 * @param groups      per group, in {@link ProbeData#groupOrder} order
 * @param reliability ten equal-width bins of predicted probability (point estimates)
 * @param roc         the empirical ROC curve, (FPR, TPR) points
 */
public record Evaluation(Map<String, Estimate> overall, Map<String, GroupMetrics> groups, List<ReliabilityBin> reliability,
                         List<double[]> roc, int nPositive, int nNegative) {

    public static final String AUROC = "auroc";
    public static final String ACCURACY = "accuracy";
    public static final String TPR_AT_1 = "tpr_at_fpr_1pct";
    public static final String TPR_AT_5 = "tpr_at_fpr_5pct";
    public static final String TPR = "tpr_at_threshold";
    public static final String FPR = "fpr_at_threshold";
    public static final String ECE = "ece";
    public static final String BRIER = "brier";
    public static final List<String> METRICS = List.of(AUROC, ACCURACY, TPR_AT_1, TPR_AT_5, TPR, FPR, ECE, BRIER);

    /**
     * One group's numbers: AUROC of the group against the whole other class, and the share of the group that
     * is flagged at the detector's threshold (its TPR for a harmful group, its FPR for a harmless one).
     */
    public record GroupMetrics(String group, boolean positive, int n, Estimate auroc, Estimate flagRate) {
    }

    /** A reliability-curve bin [lo, hi): how many test prompts, their mean probability, the harmful share. */
    public record ReliabilityBin(double lo, double hi, int n, double meanPredicted, double observed) {
    }

    static final int BINS = 10;
    private static final double[] FPR_BOUNDS = {0.01, 0.05};

    /**
     * @param logit     calibrated log-odds per test example; ranking metrics use it, calibration metrics use
     *                  σ(logit)
     * @param group     group name per test example
     * @param threshold flag when logit ≥ threshold
     * @param level     interval level, e.g. 0.95
     */
    public static Evaluation of(double[] logit, boolean[] positive, String[] group, double threshold,
                                int bootstrap, SplittableRandom rng, double level) {
        int n = logit.length;
        double[] probability = new double[n];
        for (int i = 0; i < n; i++) probability[i] = DetectorParams.probabilityOfLogit(logit[i]);
        List<String> names = ProbeData.groupOrder(List.of(group));
        Map<String, int[]> members = new LinkedHashMap<>();
        for (String g : names) members.put(g, IntStream.range(0, n).filter(i -> group[i].equals(g)).toArray());
        int[] all = IntStream.range(0, n).toArray();
        int[] negatives = IntStream.range(0, n).filter(i -> !positive[i]).toArray();
        int[] positives = IntStream.range(0, n).filter(i -> positive[i]).toArray();
        Roc overallRoc = new Roc(logit, positive, all);
        Map<String, Roc> groupRocs = new LinkedHashMap<>();
        Map<String, Boolean> groupPositive = new LinkedHashMap<>();
        for (var e : members.entrySet()) {
            boolean pos = positive[e.getValue()[0]];
            for (int i : e.getValue()) {
                if (positive[i] != pos) {
                    throw new dev.jlens.JlensException("group \"" + e.getKey() + "\" holds both harmful and harmless prompts; "
                            + "a category must belong to one class");
                }
            }
            groupPositive.put(e.getKey(), pos);
            groupRocs.put(e.getKey(), new Roc(logit, positive, concat(e.getValue(), pos ? negatives : positives)));
        }
        boolean[] flagged = new boolean[n];
        for (int i = 0; i < n; i++) flagged[i] = logit[i] >= threshold;

        int[] unit = new int[n];
        java.util.Arrays.fill(unit, 1);
        double[] point = statistics(unit, probability, positive, flagged, overallRoc, groupRocs, members);

        int stats = point.length;
        double[][] draws = new double[bootstrap][];
        SplittableRandom[] rngs = Seeds.perDraw(rng, bootstrap);
        IntStream.range(0, bootstrap).parallel().forEach(t -> {
            int[] counts = new int[n];
            for (int[] m : members.values()) for (int k = 0; k < m.length; k++) counts[m[rngs[t].nextInt(m.length)]]++;
            draws[t] = statistics(counts, probability, positive, flagged, overallRoc, groupRocs, members);
        });
        Estimate[] est = new Estimate[stats];
        for (int s = 0; s < stats; s++) {
            if (bootstrap == 0) {
                est[s] = Estimate.point(point[s]);
                continue;
            }
            double[] col = new double[bootstrap];
            for (int t = 0; t < bootstrap; t++) col[t] = draws[t][s];
            double[] ci = Quantiles.percentileInterval(col, level);
            est[s] = new Estimate(point[s], ci[0], ci[1]);
        }
        Map<String, Estimate> overall = new LinkedHashMap<>();
        for (int s = 0; s < METRICS.size(); s++) overall.put(METRICS.get(s), est[s]);
        Map<String, GroupMetrics> groups = new LinkedHashMap<>();
        int at = METRICS.size();
        for (String g : members.keySet()) {
            groups.put(g, new GroupMetrics(g, groupPositive.get(g), members.get(g).length, est[at], est[at + 1]));
            at += 2;
        }
        int nPos = positives.length;
        return new Evaluation(overall, groups, reliability(probability, positive), overallRoc.curve(), nPos, n - nPos);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    /** METRICS in order, then (auroc, flag rate) per group. */
    private static double[] statistics(int[] counts, double[] p, boolean[] positive, boolean[] flagged, Roc roc,
                                       Map<String, Roc> groupRocs, Map<String, int[]> members) {
        double[] out = new double[METRICS.size() + 2 * members.size()];
        out[0] = roc.auroc(counts);
        double total = 0, correct = 0, pos = 0, neg = 0, tp = 0, fp = 0, brier = 0;
        double[] binW = new double[BINS], binP = new double[BINS], binY = new double[BINS];
        for (int i = 0; i < counts.length; i++) {
            int c = counts[i];
            if (c == 0) continue;
            total += c;
            if (flagged[i] == positive[i]) correct += c;
            double y = positive[i] ? 1 : 0;
            if (positive[i]) {
                pos += c;
                if (flagged[i]) tp += c;
            } else {
                neg += c;
                if (flagged[i]) fp += c;
            }
            brier += c * (p[i] - y) * (p[i] - y);
            int b = bin(p[i]);
            binW[b] += c;
            binP[b] += c * p[i];
            binY[b] += c * y;
        }
        double[] tpr = roc.tprAtFpr(counts, FPR_BOUNDS);
        out[1] = correct / total;
        out[2] = tpr[0];
        out[3] = tpr[1];
        out[4] = pos == 0 ? Double.NaN : tp / pos;
        out[5] = neg == 0 ? Double.NaN : fp / neg;
        double ece = 0;
        for (int b = 0; b < BINS; b++) if (binW[b] > 0) ece += Math.abs(binY[b] - binP[b]) / total;
        out[6] = ece;
        out[7] = brier / total;
        int at = METRICS.size();
        for (var e : members.entrySet()) {
            out[at] = groupRocs.get(e.getKey()).auroc(counts);
            double w = 0, f = 0;
            for (int i : e.getValue()) {
                w += counts[i];
                if (flagged[i]) f += counts[i];
            }
            out[at + 1] = w == 0 ? Double.NaN : f / w;
            at += 2;
        }
        return out;
    }

    static int bin(double p) {
        return Math.min(BINS - 1, Math.max(0, (int) Math.floor(p * BINS)));
    }

    private static List<ReliabilityBin> reliability(double[] p, boolean[] positive) {
        int[] n = new int[BINS];
        double[] sp = new double[BINS], sy = new double[BINS];
        for (int i = 0; i < p.length; i++) {
            int b = bin(p[i]);
            n[b]++;
            sp[b] += p[i];
            if (positive[i]) sy[b]++;
        }
        List<ReliabilityBin> out = new ArrayList<>();
        for (int b = 0; b < BINS; b++) {
            out.add(new ReliabilityBin((double) b / BINS, (double) (b + 1) / BINS, n[b],
                    n[b] == 0 ? Double.NaN : sp[b] / n[b], n[b] == 0 ? Double.NaN : sy[b] / n[b]));
        }
        return out;
    }
}
