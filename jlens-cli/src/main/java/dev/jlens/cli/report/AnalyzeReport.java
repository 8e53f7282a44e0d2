package dev.jlens.cli.report;

import dev.jlens.detect.TextBaselines;
import dev.jlens.geometry.Estimate;
import dev.jlens.geometry.LayerMetrics;
import dev.jlens.geometry.Pca;
import dev.jlens.io.AtomicFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * REPORT.html of {@code jlens analyze}: charts first (angle, distance, dispersion, separability, a PCA
 * scatter at the peak layer), then a plain-language reading with the caveats that apply, then the settings
 * and the full table. One self-contained file: charts are embedded PNGs, no script, no network.
 */
public final class AnalyzeReport {

    private AnalyzeReport() {
    }

    /** @param styleReading the style-held-out check in one sentence of plain text (or why it was not made) */
    public static void write(Path file, RunInfo info, List<LayerMetrics> rows, Map<String, LayerMetrics> peaks,
                             String peakHook, double[][] peakActs, int nA, int nB, Map<String, Estimate> baselines,
                             String styleReading) {
        AtomicFiles.writeString(file, html(info, rows, peaks, peakHook, peakActs, nA, nB, baselines, styleReading));
    }

    static String html(RunInfo info, List<LayerMetrics> rows, Map<String, LayerMetrics> peaks, String peakHook,
                       double[][] peakActs, int nA, int nB, Map<String, Estimate> baselines, String styleReading) {
        Map<String, List<LayerMetrics>> byKind = groupByKind(rows);
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens analyze: ")
                .append(esc(info.model())).append("</title><style>")
                .append("body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1360px;margin:24px auto;padding:0 16px;color:#222}")
                .append("h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}")
                .append(".sub{color:#666;margin-top:0}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:12px}")
                .append(".card{border:1px solid #e3e3e3;border-radius:8px;padding:8px;background:#fff}.card img{width:100%;height:auto}")
                .append(".card p{margin:4px 8px 8px;color:#555;font-size:13px}table{border-collapse:collapse;font-size:12px}")
                .append("td,th{border:1px solid #e3e3e3;padding:3px 6px;text-align:right}th{background:#f5f5f5}td:first-child{text-align:left}")
                .append(".reading li{margin:6px 0}.caveat{background:#fff8e5;border-left:4px solid #f0b429;padding:8px 14px}")
                .append("</style></head><body>");
        h.append("<h1>Where do harmless and harmful prompts separate?</h1>");
        h.append("<p class=\"sub\">").append(esc(info.model())).append(" · ").append(esc(info.architecture()))
                .append(" · ").append(info.nLayers()).append(" layers, d_model ").append(info.dModel())
                .append(" · class A = ").append(esc(info.setA())).append(" (").append(info.nA()).append(")")
                .append(", class B = ").append(esc(info.setB())).append(" (").append(info.nB()).append(")")
                .append(" · pooling ").append(esc(info.pooling())).append("</p>");

        h.append("<h2>Reading</h2><ul class=\"reading\">");
        for (String s : reading(rows, peaks, info)) h.append("<li>").append(s).append("</li>");
        String words = baselineReading(peaks.get("probe_auroc"), baselines, info.cvFolds());
        if (words != null) h.append("<li>").append(words).append("</li>");
        if (styleReading != null) h.append("<li><b>Held-out styles</b>: ").append(esc(styleReading)).append("</li>");
        h.append("</ul>");

        h.append("<h2>Charts</h2><div class=\"grid\">");
        card(h, lineChart("Angle between class means", "cosine", byKind, List.of(
                new Metric("cos_raw", LayerMetrics::cosRaw, LayerMetrics::cosRawCi, false),
                new Metric("cos_centered", LayerMetrics::cosCentered, r -> null, false),
                new Metric("cos_std", LayerMetrics::cosStd, r -> null, false))),
                "cos_raw is the cosine of the raw class means (with 95% bootstrap band); cos_centered subtracts the neutral "
                        + "reference mean first, cos_std also divides each dimension by the reference's standard deviation.");
        card(h, lineChart("Distance between class means", "‖mean_A − mean_B‖ / mean ‖x‖", byKind, List.of(
                new Metric("l2_rel", LayerMetrics::l2Rel, LayerMetrics::l2RelCi, false),
                new Metric("l2_rel (length-matched)", r -> r.lengthControl() == null ? Double.NaN : r.lengthControl().l2Rel(), r -> null, true))),
                "Relative L2 distance between the class means, so layers with larger norms are comparable; dashed: the same on a "
                        + "length-matched subsample.");
        card(h, lineChart("Dispersion (per-dimension variance)", "mean squared distance to centroid / d", byKind, List.of(
                new Metric("disp_A (harmless)", LayerMetrics::dispA, r -> null, false),
                new Metric("disp_B (harmful)", LayerMetrics::dispB, r -> null, false))),
                "How spread out each class is around its own centroid. Absolute dispersion grows with the residual norm.");
        card(h, lineChart("Dispersion ratio A / B", "disp_A / disp_B", byKind, List.of(
                new Metric("disp_ratio", LayerMetrics::dispRatio, LayerMetrics::dispRatioCi, false),
                new Metric("disp_ratio (length-matched)", r -> r.lengthControl() == null ? Double.NaN : r.lengthControl().dispRatio(), r -> null, true))),
                "Above 1: harmless prompts scatter more than harmful ones. The band is a 95% bootstrap CI.");
        card(h, lineChart("Linear separability", "probe AUROC (5-fold CV)", byKind, List.of(
                new Metric("probe_auroc", LayerMetrics::probeAuroc, LayerMetrics::probeAurocCi, false),
                new Metric("probe_auroc (length-matched)", r -> r.lengthControl() == null ? Double.NaN : r.lengthControl().probeAuroc(), r -> null, true)
        )),
                "Out-of-fold AUROC of an L2-regularised logistic probe (0.5 = chance, 1 = perfect), with bootstrap band.");
        card(h, lineChart("Norms", "mean ‖x‖", byKind, List.of(
                new Metric("norm_A", LayerMetrics::normA, r -> null, false),
                new Metric("norm_B", LayerMetrics::normB, r -> null, false))),
                "Residual-stream norms usually grow with depth; compare distances in relative terms.");
        if (peakActs != null && peakActs.length == nA + nB) {
            double[][] xy = Pca.project2d(peakActs);
            List<double[][]> pts = List.of(java.util.Arrays.copyOfRange(xy, 0, nA), java.util.Arrays.copyOfRange(xy, nA, nA + nB));
            card(h, Charts.scatter("PCA of prompts at " + peakHook, "PC 1", "PC 2",
                    List.of("A: " + info.setA(), "B: " + info.setB()), pts),
                    "Each dot is one prompt's pooled activation at the layer of peak relative distance, projected on the "
                            + "first two principal components of both classes together.");
        }
        h.append("</div>");

        h.append("<h2>Caveats</h2><div class=\"caveat\"><ul>")
                .append("<li>Raw cosine between class means near 1 is expected in transformer residual streams: a few large, shared "
                        + "(\"rogue\") dimensions dominate every vector. Read cos_centered and cos_std, and the distances, instead.</li>")
                .append("<li>Norms grow with depth, so absolute L2 and dispersion rise layer by layer; use l2_rel and disp_ratio.</li>")
                .append("<li>Prompt length and template homogeneity can create dispersion and distance differences on their own "
                        + "(prompts written from one template cluster tightly). The length-matched columns show how much survives "
                        + "when lengths are equal; a difference that vanishes there is a length effect.</li>")
                .append("<li>Separability is not mechanism: a probe that separates the classes shows the information is linearly "
                        + "present, not that the model uses it to refuse.</li>")
                .append("</ul></div>");

        if (info.seedCompat()) h.append(seedCompatSection(rows));

        h.append("<h2>Settings</h2><table>");
        row(h, "model", info.model() + (info.revision() == null ? "" : " @ " + info.revision()));
        row(h, "hooks", info.hooks());
        row(h, "pooling", info.pooling() + (info.seedCompat() ? " (seed-compat: per-token mean over d_model removed)" : ""));
        row(h, "class A", info.setA() + ", " + info.nA() + " prompts, " + fmt(info.meanLenA()) + " ± " + fmt(info.sdLenA()) + " tokens");
        row(h, "class B", info.setB() + ", " + info.nB() + " prompts, " + fmt(info.meanLenB()) + " ± " + fmt(info.sdLenB()) + " tokens");
        row(h, "reference", info.setRef() + ", " + info.nRef() + " prompts");
        row(h, "bootstrap / permutations", info.bootstrap() + " / " + info.permutations());
        row(h, "probe", "L2-regularised logistic regression, " + info.cvFolds() + "-fold CV");
        row(h, "seed", Long.toString(info.seed()));
        h.append("</table>");

        h.append("<h2>All metrics</h2><table><tr>");
        for (String c : List.of("hook", "cos_raw", "cos_centered", "cos_std", "l2_raw", "l2_rel", "norm_A", "norm_B", "disp_A",
                "disp_B", "disp_ratio", "p(disp_ratio)", "p(l2_raw)", "fisher", "pr_A", "pr_B", "probe_acc", "probe_auroc", "silhouette")) {
            h.append("<th>").append(c).append("</th>");
        }
        h.append("</tr>");
        for (LayerMetrics r : rows) {
            h.append("<tr><td>").append(esc(r.hook())).append("</td>");
            for (double v : new double[]{r.cosRaw(), r.cosCentered(), r.cosStd(), r.l2Raw(), r.l2Rel(), r.normA(), r.normB(),
                    r.dispA(), r.dispB(), r.dispRatio(), r.pDispRatio(), r.pL2Raw(), r.fisher(), r.participationRatioA(),
                    r.participationRatioB(), r.probeAcc(), r.probeAuroc(), r.silhouette()}) {
                h.append("<td>").append(fmt(v)).append("</td>");
            }
            h.append("</tr>");
        }
        h.append("</table><p class=\"sub\">Definitions: docs/METRICS.md. Generated by jlens in ")
                .append(String.format(Locale.ROOT, "%.1f", info.seconds())).append(" s.</p></body></html>\n");
        return h.toString();
    }

    private record Metric(String name, ToDoubleFunction<LayerMetrics> value, Function<LayerMetrics, Estimate> ci, boolean dashed) {
    }

    private static Map<String, List<LayerMetrics>> groupByKind(List<LayerMetrics> rows) {
        Map<String, List<LayerMetrics>> m = new LinkedHashMap<>();
        for (LayerMetrics r : rows) {
            String hook = r.hook();
            String kind = hook.startsWith("blocks.") ? hook.substring(hook.indexOf('.', 7) + 1) : hook;
            m.computeIfAbsent(kind, k -> new ArrayList<>()).add(r);
        }
        return m;
    }

    private static String lineChart(String title, String yLabel, Map<String, List<LayerMetrics>> byKind, List<Metric> metrics) {
        List<Charts.Line> lines = new ArrayList<>();
        boolean several = byKind.size() > 1;
        for (var e : byKind.entrySet()) {
            List<LayerMetrics> rs = e.getValue();
            double[] x = new double[rs.size()];
            for (int i = 0; i < x.length; i++) x[i] = rs.get(i).layer();
            for (Metric m : metrics) {
                double[] y = new double[x.length], lo = new double[x.length], hi = new double[x.length];
                boolean any = false;
                for (int i = 0; i < x.length; i++) {
                    y[i] = m.value().applyAsDouble(rs.get(i));
                    any |= !Double.isNaN(y[i]);
                    Estimate ci = m.ci().apply(rs.get(i));
                    lo[i] = ci == null ? Double.NaN : ci.lo();
                    hi[i] = ci == null ? Double.NaN : ci.hi();
                }
                if (any) lines.add(new Charts.Line(several ? m.name() + " · " + e.getKey() : m.name(), x, y, lo, hi, m.dashed()));
            }
        }
        return Charts.lineChart(title, "layer", yLabel, lines, null, null);
    }

    private static void card(StringBuilder h, String png, String caption) {
        h.append("<div class=\"card\"><img alt=\"chart\" src=\"").append(png).append("\"><p>").append(esc(caption)).append("</p></div>");
    }

    private static void row(StringBuilder h, String k, String v) {
        h.append("<tr><th>").append(esc(k)).append("</th><td style=\"text-align:left\">").append(esc(v)).append("</td></tr>");
    }

    /** A few sentences a researcher would say after looking at the table. */
    /** The probe's best AUROC against the words-only baselines, in plain words; null without either. */
    static String baselineReading(LayerMetrics best, Map<String, Estimate> baselines, int folds) {
        Estimate words = baselines == null ? null : baselines.get(TextBaselines.TFIDF);
        if (best == null || words == null) return null;
        Estimate probe = best.probeAurocCi() == null ? Estimate.point(best.probeAuroc()) : best.probeAurocCi();
        Estimate length = baselines.get(TextBaselines.LENGTH);
        boolean beats = TextBaselines.beats(probe, words);
        return String.format(Locale.ROOT, "<b>Against the words</b>: a TF-IDF bag-of-words logistic regression, cross-validated the "
                        + "same way (%d folds, same penalty), reaches AUROC %.3f%s%s. The probe at %s (%.3f%s) %s", folds, words.value(),
                ciText(words), length == null ? "" : String.format(Locale.ROOT, "; prompt length alone %.3f%s", length.value(), ciText(length)),
                esc(best.hook()), probe.value(), ciText(probe), beats ? "<b>beats the words</b>: its interval lies above theirs."
                        : "<b>does not beat the words</b>: the intervals overlap, so the separation shown here may be lexical.");
    }

    static List<String> reading(List<LayerMetrics> rows, Map<String, LayerMetrics> peaks, RunInfo info) {
        List<String> out = new ArrayList<>();
        LayerMetrics auc = peaks.get("probe_auroc");
        if (auc != null) {
            LayerMetrics first = null;
            for (LayerMetrics r : rows) {
                double lo = r.probeAurocCi() == null ? Double.NaN : r.probeAurocCi().lo();
                if ((Double.isNaN(lo) ? r.probeAuroc() : lo) >= 0.95) {
                    first = r;
                    break;
                }
            }
            out.add(String.format(Locale.ROOT, "A linear probe separates the classes best at <b>%s</b> (AUROC %.3f%s). %s",
                    esc(auc.hook()), auc.probeAuroc(), ciText(auc.probeAurocCi()),
                    first == null ? "No layer reaches an AUROC whose 95% CI lower bound is at least 0.95."
                            : "The earliest hook whose AUROC CI lower bound reaches 0.95 is <b>" + esc(first.hook()) + "</b>."));
        }
        LayerMetrics l2 = peaks.get("l2_rel");
        if (l2 != null) {
            out.add(String.format(Locale.ROOT, "The class means are furthest apart, relative to the activation norm, at <b>%s</b> "
                    + "(l2_rel %.4f%s; permutation p = %s).", esc(l2.hook()), l2.l2Rel(), ciText(l2.l2RelCi()), fmt(l2.pL2Raw())));
        }
        double minCos = rows.stream().mapToDouble(LayerMetrics::cosRaw).min().orElse(Double.NaN);
        double minCtr = rows.stream().mapToDouble(LayerMetrics::cosCentered).filter(v -> !Double.isNaN(v)).min().orElse(Double.NaN);
        out.add(String.format(Locale.ROOT, "Raw cosine between the class means stays at or above %.4f at every hook; after centring on the "
                + "neutral reference it drops to %s at its lowest, which is the more informative angle.", minCos, fmt(minCtr)));
        LayerMetrics last = rows.get(rows.size() - 1);
        out.add(String.format(Locale.ROOT, "Dispersion ratio (harmless / harmful) at %s is %.3f%s, permutation p = %s: %s.",
                esc(last.hook()), last.dispRatio(), ciText(last.dispRatioCi()), fmt(last.pDispRatio()),
                last.pDispRatio() < 0.05 ? (last.dispRatio() > 1 ? "harmless prompts scatter more" : "harmful prompts scatter more")
                        : "no reliable difference in spread"));
        if (auc != null && auc.lengthControl() != null) {
            double d = auc.probeAuroc() - auc.lengthControl().probeAuroc();
            out.add(String.format(Locale.ROOT, "On a length-matched subsample (%d per class) the probe AUROC at %s is %.3f (%s), so %s.",
                    auc.lengthControl().nPerClass(), esc(auc.hook()), auc.lengthControl().probeAuroc(),
                    d > 0.05 ? "lower by " + fmt(d) : "about the same",
                    d > 0.05 ? "part of the separation comes from prompt length" : "prompt length does not explain the separation"));
        }
        out.add(String.format(Locale.ROOT, "Class A prompts average %.1f ± %.1f tokens, class B %.1f ± %.1f.",
                info.meanLenA(), info.sdLenA(), info.meanLenB(), info.sdLenB()));
        return out;
    }

    private static String seedCompatSection(List<LayerMetrics> rows) {
        StringBuilder h = new StringBuilder("<h2>Day-1 protocol (--seed-compat)</h2><p>This run follows the public Day-1 experiment: "
                + "Pythia-1.4B through TransformerLens' <code>HookedTransformer.from_pretrained</code>, whose defaults fold the "
                + "LayerNorms and centre the writing weights, so its residual stream equals Hugging Face's minus each token's mean "
                + "over d_model (applied here); <code>blocks.{l}.hook_resid_post</code> for every layer; the mean over all tokens; "
                + "raw cosine and raw L2 between class means; per-dimension variance.</p>"
                + "<p>Reported figures: cosine &gt; 0.99 until layer 23, L2 peaking at layer 15 (41.63), variance 0.62 (safe) vs 0.27 "
                + "(harmful). They apply to Pythia-1.4B and the Day-1 prompt sets only.</p>");
        LayerMetrics peak = rows.stream().max(java.util.Comparator.comparingDouble(LayerMetrics::l2Raw)).orElseThrow();
        LayerMetrics last = rows.get(rows.size() - 1);
        h.append(String.format(Locale.ROOT, "<p>This run: L2 peaks at %s (%.2f); at %s the variances are %.3f (A) vs %.3f (B); the "
                        + "lowest raw cosine is %.4f.</p>", esc(peak.hook()), peak.l2Raw(), esc(last.hook()), last.dispA(), last.dispB(),
                rows.stream().mapToDouble(LayerMetrics::cosRaw).min().orElse(Double.NaN)));
        h.append("<p>How jlens' defaults differ, and why: jlens hooks Hugging Face's residual stream as is (no folding or centring), "
                + "because that is what the model computes; it reports centred and standardised cosines, since raw cosine is dominated "
                + "by shared rogue dimensions; relative L2 and dispersion ratios, since norms grow with depth; and CIs and permutation "
                + "p-values, since one number per layer says nothing about noise.</p>");
        return h.toString();
    }

    private static String ciText(Estimate e) {
        if (e == null || Double.isNaN(e.lo())) return "";
        return String.format(Locale.ROOT, ", 95%% CI %.3f–%.3f", e.lo(), e.hi());
    }

    static String fmt(double v) {
        if (Double.isNaN(v)) return "–";
        double a = Math.abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) return String.format(Locale.ROOT, "%.2e", v);
        return String.format(Locale.ROOT, "%.4f", v);
    }

    static String esc(String s) {
        if (s == null) return "";
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
