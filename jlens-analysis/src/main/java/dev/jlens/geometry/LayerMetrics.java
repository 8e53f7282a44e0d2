package dev.jlens.geometry;

import java.util.ArrayList;
import java.util.List;

/**
 * Every geometry metric of one layer (hook) for class A (harmless) against class B (harmful). Definitions and
 * formulas are in docs/METRICS.md; a NaN marks a metric that was not computed or is undefined (e.g. the
 * centred cosines without a reference set, or p-values with 0 permutations).
 */
public record LayerMetrics(String hook, int layer, int nA, int nB,
                           double cosRaw, double cosCentered, double cosStd, double l2Raw, double l2Rel,
                           double normA, double normB,
                           double dispA, double dispB, double dispRelA, double dispRelB, double dispRatio,
                           double participationRatioA, double participationRatioB, double fisher,
                           double probeAcc, double probeAuroc, double silhouette,
                           Estimate cosRawCi, Estimate l2RelCi, Estimate dispRatioCi, Estimate probeAurocCi,
                           double pL2Raw, double pDispRatio, LengthControl lengthControl) {

    private static final List<String> COLUMNS = List.of(
            "layer", "hook", "n_A", "n_B",
            "cos_raw", "cos_centered", "cos_std", "l2_raw", "l2_rel", "norm_A", "norm_B",
            "disp_A", "disp_B", "disp_rel_A", "disp_rel_B", "disp_ratio", "pr_A", "pr_B", "fisher",
            "probe_acc", "probe_auroc", "silhouette",
            "cos_raw_lo", "cos_raw_hi", "l2_rel_lo", "l2_rel_hi", "disp_ratio_lo", "disp_ratio_hi",
            "probe_auroc_lo", "probe_auroc_hi", "p_l2_raw", "p_disp_ratio",
            "len_n", "len_cos_raw", "len_l2_rel", "len_disp_ratio", "len_probe_auroc", "len_mean_A", "len_mean_B");

    /** CSV header, in the order of {@link #csvValues()}. */
    public static List<String> csvColumns() {
        return COLUMNS;
    }

    /**
     * One CSV row. Numbers use Java's shortest round-trip form (e.g. 0.25, 1.0E-5) and NaN for a missing value,
     * which pandas and R both read as missing; without length control the len_* cells are NaN. The hook name
     * is quoted only if it contains a comma, quote or line break.
     */
    public List<String> csvValues() {
        List<String> v = new ArrayList<>(COLUMNS.size());
        v.add(Integer.toString(layer));
        v.add(quote(hook));
        v.add(Integer.toString(nA));
        v.add(Integer.toString(nB));
        for (double x : new double[] {cosRaw, cosCentered, cosStd, l2Raw, l2Rel, normA, normB, dispA, dispB,
                dispRelA, dispRelB, dispRatio, participationRatioA, participationRatioB, fisher, probeAcc, probeAuroc,
                silhouette}) {
            v.add(num(x));
        }
        for (Estimate e : new Estimate[] {cosRawCi, l2RelCi, dispRatioCi, probeAurocCi}) {
            v.add(num(e == null ? Double.NaN : e.lo()));
            v.add(num(e == null ? Double.NaN : e.hi()));
        }
        v.add(num(pL2Raw));
        v.add(num(pDispRatio));
        LengthControl lc = lengthControl;
        v.add(lc == null ? "NaN" : Integer.toString(lc.nPerClass()));
        for (double x : lc == null ? new double[] {Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                Double.NaN} : new double[] {lc.cosRaw(), lc.l2Rel(), lc.dispRatio(), lc.probeAuroc(), lc.meanLenA(),
                lc.meanLenB()}) {
            v.add(num(x));
        }
        return v;
    }

    private static String num(double x) {
        return Double.isNaN(x) ? "NaN" : Double.toString(x);
    }

    private static String quote(String s) {
        if (s == null) return "";
        if (s.indexOf(',') < 0 && s.indexOf('"') < 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0) return s;
        return '"' + s.replace("\"", "\"\"") + '"';
    }
}
