package dev.jlens.cli.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.detect.DetectorKind;
import dev.jlens.detect.Evaluation;
import dev.jlens.detect.ProbeData;
import dev.jlens.detect.Prober;
import dev.jlens.detect.SplitComparison;
import dev.jlens.detect.TextBaselines;
import dev.jlens.prompts.PromptSets;
import dev.jlens.prompts.SplitScheme;
import dev.jlens.geometry.Estimate;
import dev.jlens.io.AtomicFiles;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * PROBE.html of {@code jlens probe}: test AUROC and TPR at 1% FPR by layer with CI bands, per-category curves,
 * ROC and reliability curves at the chosen layer, the probe-versus-centroid scatter, a plain-language reading
 * and the full tables. One self-contained file: embedded PNG charts, no script, no network.
 */
public final class ProbeReport {

    private ProbeReport() {
    }

    /**
     * @param aggregations per hook, per token aggregation (mean, max, window-mean, last), the main kind's detector
     *                     scored that way (empty: no such section)
     * @param crossSplit   the random and the style-held-out split measured on the same prompts (empty: no such section,
     *                     e.g. when the user gave the splits)
     */
    public static void write(Path file, ObjectNode summary, List<Prober.HookResult> results, ProbeData data,
                             List<DetectorKind> kinds, DetectorKind mainKind, String chosenHook, double target,
                             Map<String, Map<String, Prober.KindResult>> aggregations, List<TextBaselines.Result> baselines,
                             List<SplitComparison> crossSplit) {
        AtomicFiles.writeString(file, html(summary, results, data, kinds, mainKind, chosenHook, target, aggregations, baselines,
                crossSplit));
    }

    static String html(ObjectNode summary, List<Prober.HookResult> results, ProbeData data, List<DetectorKind> kinds,
                       DetectorKind mainKind, String chosenHook, double target,
                       Map<String, Map<String, Prober.KindResult>> aggregations, List<TextBaselines.Result> baselines,
                       List<SplitComparison> crossSplit) {
        JsonNode run = summary.get("run");
        Prober.HookResult chosen = results.stream().filter(r -> r.hook().equals(chosenHook)).findFirst().orElseThrow();
        Map<String, List<Prober.HookResult>> byKind = groupByHookKind(results);
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens probe: ")
                .append(esc(run.path("model").asText())).append("</title><style>")
                .append("body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1360px;margin:24px auto;padding:0 16px;color:#222}")
                .append("h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}")
                .append(".sub{color:#666;margin-top:0}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:12px}")
                .append(".card{border:1px solid #e3e3e3;border-radius:8px;padding:8px;background:#fff}.card img{width:100%;height:auto}")
                .append(".card p{margin:4px 8px 8px;color:#555;font-size:13px}table{border-collapse:collapse;font-size:12px;margin-bottom:12px}")
                .append("td,th{border:1px solid #e3e3e3;padding:3px 6px;text-align:right}th{background:#f5f5f5}td:first-child{text-align:left}")
                .append(".reading li{margin:6px 0}.caveat{background:#fff8e5;border-left:4px solid #f0b429;padding:8px 14px}")
                .append("</style></head><body>");
        h.append("<h1>How early can a harmful request be recognised?</h1>");
        h.append("<p class=\"sub\">").append(esc(run.path("model").asText())).append(" · ").append(esc(run.path("architecture").asText()))
                .append(" · ").append(run.path("n_layers").asInt()).append(" layers, d_model ").append(run.path("d_model").asInt())
                .append(" · pooling ").append(esc(run.path("pooling").asText()))
                .append(run.path("aggregation").isTextual() && !run.path("aggregation").asText().equals(run.path("pooling").asText())
                        ? " · token scores aggregated by " + esc(run.path("aggregation").asText()) : "").append(" · ").append(esc(data.description()))
                .append("</p>");

        h.append("<h2>Reading</h2><ul class=\"reading\">");
        for (String s : reading(summary, results, kinds, mainKind, chosen, target)) h.append("<li>").append(s).append("</li>");
        for (String s : baselineReading(baselines, chosen, mainKind)) h.append("<li>").append(s).append("</li>");
        for (String s : crossSplitReading(crossSplit, chosenHook)) h.append("<li>").append(s).append("</li>");
        for (String s : aggregationReading(aggregations, results, mainKind, target)) h.append("<li>").append(s).append("</li>");
        h.append("</ul>");

        h.append("<h2>Charts</h2><div class=\"grid\">");
        List<Charts.Line> auc = new ArrayList<>();
        for (DetectorKind k : kinds) auc.addAll(layerLines(byKind, k.cliName(), r -> r.get(k).test().overall().get(Evaluation.AUROC)));
        double[] xs = results.stream().mapToDouble(Prober.HookResult::layer).distinct().toArray();
        double[] ts = new double[xs.length];
        java.util.Arrays.fill(ts, target);
        auc.add(new Charts.Line("target " + fmt(target), xs, ts, null, null, true));
        for (TextBaselines.Result b : baselines) {
            Estimate e = b.test().overall().get(Evaluation.AUROC);
            double[] v = new double[xs.length], lo = new double[xs.length], hi = new double[xs.length];
            java.util.Arrays.fill(v, e.value());
            java.util.Arrays.fill(lo, e.lo());
            java.util.Arrays.fill(hi, e.hi());
            auc.add(new Charts.Line("baseline: " + b.name() + " (words only)", xs, v, lo, hi, true));
        }
        card(h, Charts.lineChart("Test AUROC by layer", "layer", "AUROC (95% CI)", auc, null, null),
                "AUROC of each detector on the test split, with 95% bootstrap bands; dashed: the target the CI lower bound must reach, "
                        + "and the words-only baselines (TF-IDF bag of words, prompt length) on the same splits, flat because they "
                        + "do not depend on the layer.");
        List<Charts.Line> tpr = new ArrayList<>();
        for (DetectorKind k : kinds) tpr.addAll(layerLines(byKind, k.cliName(), r -> r.get(k).test().overall().get(Evaluation.TPR_AT_1)));
        card(h, Charts.lineChart("Test TPR at 1% FPR by layer", "layer", "TPR at FPR ≤ 1% (95% CI)", tpr, null, null),
                "Share of harmful test prompts caught while at most 1% of harmless ones are flagged. With "
                        + chosen.get(mainKind).test().nNegative() + " harmless test prompts this means no false positive at all.");
        for (DetectorKind k : kinds) {
            List<Charts.Line> cat = new ArrayList<>();
            for (String g : groups(results, k)) {
                cat.addAll(layerLines(byKind, g, r -> {
                    Evaluation.GroupMetrics gm = r.get(k).test().groups().get(g);
                    return gm == null ? Estimate.point(Double.NaN) : gm.auroc();
                }));
            }
            card(h, Charts.lineChart("AUROC per category: " + k.cliName(), "layer", "AUROC vs the other class (95% CI)", cat, null, null),
                    "Each harmful category against all harmless test prompts, each harmless category against all harmful ones.");
        }
        List<Charts.Line> flags = new ArrayList<>();
        for (String g : groups(results, mainKind)) {
            flags.addAll(layerLines(byKind, g, r -> {
                Evaluation.GroupMetrics gm = r.get(mainKind).test().groups().get(g);
                return gm == null ? Estimate.point(Double.NaN) : gm.flagRate();
            }));
        }
        card(h, Charts.lineChart("Flagged share per category: " + mainKind.cliName(), "layer", "flagged at the validation threshold",
                flags, -0.02, 1.02), "Harmful categories: the higher the better (TPR). Harmless categories: the lower the better (FPR).");
        List<Charts.Line> roc = new ArrayList<>();
        for (DetectorKind k : kinds) {
            List<double[]> pts = chosen.get(k).test().roc();
            roc.add(Charts.Line.of(k.cliName() + " (AUROC " + fmt(chosen.get(k).test().overall().get(Evaluation.AUROC).value()) + ")",
                    pts.stream().mapToDouble(p -> p[0]).toArray(), pts.stream().mapToDouble(p -> p[1]).toArray()));
        }
        roc.add(new Charts.Line("chance", new double[] {0, 1}, new double[] {0, 1}, null, null, true));
        card(h, Charts.curveChart("ROC at " + chosen.hook(), "false-positive rate", "true-positive rate", roc, 0, 1, 0, 1.02),
                "Test ROC curves of every detector at the chosen layer.");
        List<Charts.Line> rel = new ArrayList<>();
        for (DetectorKind k : kinds) {
            List<Evaluation.ReliabilityBin> bins = chosen.get(k).test().reliability();
            rel.add(Charts.Line.of(k.cliName() + " (ECE " + fmt(chosen.get(k).test().overall().get(Evaluation.ECE).value()) + ")",
                    bins.stream().mapToDouble(Evaluation.ReliabilityBin::meanPredicted).toArray(),
                    bins.stream().mapToDouble(Evaluation.ReliabilityBin::observed).toArray()));
        }
        rel.add(new Charts.Line("perfect calibration", new double[] {0, 1}, new double[] {0, 1}, null, null, true));
        card(h, Charts.curveChart("Reliability at " + chosen.hook(), "mean predicted probability (bin)", "observed harmful share",
                rel, 0, 1, -0.02, 1.02), "Test prompts in ten equal-width bins of predicted probability (Platt-calibrated on the "
                + "validation split); points on the diagonal are well calibrated. Empty bins are left out.");
        if (kinds.contains(DetectorKind.LOGISTIC) && kinds.contains(DetectorKind.MAHALANOBIS)) {
            double[] lx = chosen.get(DetectorKind.LOGISTIC).testLogit(), my = chosen.get(DetectorKind.MAHALANOBIS).testLogit();
            int[] test = data.indices("test");
            Map<String, List<double[]>> pts = new LinkedHashMap<>();
            for (String g : groups(results, DetectorKind.LOGISTIC)) pts.put(g, new ArrayList<>());
            for (int k = 0; k < test.length; k++) pts.get(data.examples().get(test[k]).group()).add(new double[] {lx[k], my[k]});
            List<double[][]> arrays = new ArrayList<>();
            for (List<double[]> l : pts.values()) arrays.add(l.toArray(new double[0][]));
            card(h, Charts.scatter("Two readings at " + chosen.hook(), "logistic probe (logit)",
                    "closeness to harmful centroid (logit)", new ArrayList<>(pts.keySet()), arrays),
                    "Each dot is a test prompt. x: the linear probe; y: the calibrated negative Mahalanobis distance to the harmful "
                            + "centroid. Agreement puts the classes in opposite corners; a category the centroid misses sits low on y.");
        }
        if (!aggregations.isEmpty()) {
            List<Charts.Line> agg = new ArrayList<>();
            List<String> names = new ArrayList<>(aggregations.values().iterator().next().keySet());
            for (String a : names) {
                Map<String, List<Prober.HookResult>> one = groupByHookKind(results);
                agg.addAll(layerLines(one, a, r -> aggregations.get(r.hook()).get(a).test().overall().get(Evaluation.AUROC)));
            }
            card(h, Charts.lineChart("Token aggregations: " + mainKind.cliName(), "layer", "test AUROC (95% CI)", agg, null, null),
                    "The same direction at each layer, each token of a prompt scored, the prompt score taken as the mean, the max, "
                            + "the best window mean or the last token's score; Platt map and threshold chosen on validation for each.");
        }
        h.append("</div>");

        if (!aggregations.isEmpty()) {
            List<String> names = new ArrayList<>(aggregations.values().iterator().next().keySet());
            h.append("<h2>Token aggregations side by side (").append(esc(mainKind.cliName())).append(")</h2><table><tr><th>hook</th>");
            for (String a : names) h.append("<th>").append(esc(a)).append(" AUROC</th><th>").append(esc(a)).append(" TPR@1%FPR</th>");
            h.append("</tr>");
            for (var e : aggregations.entrySet()) {
                h.append("<tr><td>").append(esc(e.getKey())).append("</td>");
                for (String a : names) {
                    Map<String, Estimate> o = e.getValue().get(a).test().overall();
                    h.append("<td>").append(ci(o.get(Evaluation.AUROC))).append("</td><td>").append(ci(o.get(Evaluation.TPR_AT_1))).append("</td>");
                }
                h.append("</tr>");
            }
            h.append("</table>");
        }

        h.append("<h2>Caveats</h2><div class=\"caveat\"><ul>")
                .append("<li>The test split is small (").append(chosen.get(mainKind).test().nPositive()).append(" harmful, ")
                .append(chosen.get(mainKind).test().nNegative()).append(" harmless prompts): read the intervals, not the points. "
                        + "TPR at 1% FPR can only resolve FPR in steps of 1/" + chosen.get(mainKind).test().nNegative() + ".</li>")
                .append("<li>The earliest qualifying layer is picked by looking at test intervals of every layer; treat it as a "
                        + "shortlist and confirm it on fresh data (pass --test) before relying on it.</li>")
                .append("<li>Hand-written prompt sets share templates and vocabulary; a detector can learn the wording of the "
                        + "sets rather than intent. The hard negatives (alarming words, harmless intent) and jailbreak wrappers "
                        + "are there to show how far that goes.</li>")
                .append("<li>Recognising a request is not refusing it: these numbers say the information is present at a layer, "
                        + "not that the model acts on it.</li>")
                .append("</ul></div>");

        if (!baselines.isEmpty()) {
            h.append("<h2>Baselines: what the words alone achieve</h2><table><tr><th>model</th><th>features</th><th>C (val)</th>")
                    .append("<th>AUROC [95% CI]</th><th>TPR@1%FPR [95% CI]</th>");
            List<String> gs = new ArrayList<>(chosen.get(mainKind).test().groups().keySet());
            for (String g : gs) h.append("<th>").append(esc(g)).append(" AUROC</th>");
            h.append("</tr>");
            Prober.KindResult main = chosen.get(mainKind);
            h.append("<tr><td>").append(esc(mainKind.cliName())).append(" probe at ").append(esc(chosen.hook())).append("</td><td>residual, d_model ")
                    .append(main.fitted().params().dModel()).append("</td><td>").append(esc(String.valueOf(main.fitted().hyper().getOrDefault("C", Double.NaN))))
                    .append("</td><td>").append(ci(main.test().overall().get(Evaluation.AUROC))).append("</td><td>")
                    .append(ci(main.test().overall().get(Evaluation.TPR_AT_1))).append("</td>");
            for (String g : gs) h.append("<td>").append(ci(main.test().groups().get(g).auroc())).append("</td>");
            h.append("</tr>");
            for (TextBaselines.Result b : baselines) {
                h.append("<tr><td>").append(esc(b.name())).append(" logistic regression</td><td>").append(b.features()).append("</td><td>")
                        .append(fmt(b.c())).append("</td><td>").append(ci(b.test().overall().get(Evaluation.AUROC))).append("</td><td>")
                        .append(ci(b.test().overall().get(Evaluation.TPR_AT_1))).append("</td>");
                for (String g : gs) {
                    Evaluation.GroupMetrics gm = b.test().groups().get(g);
                    h.append("<td>").append(gm == null ? "–" : ci(gm.auroc())).append("</td>");
                }
                h.append("</tr>");
            }
            h.append("</table><p class=\"sub\">Same train/val/test prompts; C, the Platt map and the threshold chosen on validation. "
                    + "TF-IDF: lower-cased words seen in at least two train prompts. Category AUROCs: each "
                    + "category against all test prompts of the other class.</p>");
        }

        if (!crossSplit.isEmpty()) {
            h.append("<h2>Random split vs style-held-out split</h2><table><tr><th>scorer</th><th>layer</th>");
            for (SplitComparison c : crossSplit) {
                h.append("<th>").append(esc(c.scheme().cliName())).append(" split AUROC [95% CI]</th>");
            }
            h.append("<th>difference</th></tr>");
            SplitComparison first = crossSplit.getFirst(), last = crossSplit.getLast();
            for (Prober.HookResult r : first.probe()) {
                h.append("<tr><td>").append(esc(first.kind().cliName())).append(" probe at ").append(esc(r.hook()))
                        .append(r.hook().equals(chosenHook) ? " (chosen)" : "").append("</td><td>").append(r.layer()).append("</td>");
                for (SplitComparison c : crossSplit) h.append("<td>").append(ci(c.probeAuroc(r.hook()))).append("</td>");
                h.append("<td>").append(signed(last.probeAuroc(r.hook()).value() - first.probeAuroc(r.hook()).value())).append("</td></tr>");
            }
            for (TextBaselines.Result b : first.baselines()) {
                h.append("<tr><td>").append(esc(b.name())).append(" (words only)</td><td>–</td>");
                for (SplitComparison c : crossSplit) {
                    h.append("<td>").append(ci(c.baseline(b.name()).test().overall().get(Evaluation.AUROC))).append("</td>");
                }
                h.append("<td>").append(signed(last.baseline(b.name()).test().overall().get(Evaluation.AUROC).value()
                        - b.test().overall().get(Evaluation.AUROC).value())).append("</td></tr>");
            }
            h.append("</table><p class=\"sub\">The same prompts cut two ways. Random: each prompt's split field, 60/20/20 within "
                    + "each category, so test prompts share the styles of the training ones. Style: the styles ")
                    .append(esc(String.join(", ", PromptSets.HELD_OUT_STYLES)))
                    .append(" held out whole as test, train and val from the others. ");
            for (SplitComparison c : crossSplit) {
                int[] tr = c.splitSize("train"), te = c.splitSize("test");
                h.append(esc(c.scheme().cliName())).append(": train ").append(tr[0]).append(" harmful + ").append(tr[1])
                        .append(" harmless, test ").append(te[0]).append(" + ").append(te[1]).append(". ");
            }
            h.append("The probe is fitted on pooled activations (pooling ").append(esc(run.path("pooling").asText()))
                    .append("), C, calibration and threshold on each scheme's own val.</p>");
        }

        h.append("<h2>Per category at ").append(esc(chosen.hook())).append("</h2>");
        for (DetectorKind k : kinds) {
            h.append("<table><tr><th>").append(esc(k.cliName())).append("</th><th>class</th><th>n</th><th>AUROC [95% CI]</th>")
                    .append("<th>flagged [95% CI]</th></tr>");
            for (Evaluation.GroupMetrics g : chosen.get(k).test().groups().values()) {
                h.append("<tr><td>").append(esc(g.group())).append("</td><td>").append(g.positive() ? "harmful" : "harmless")
                        .append("</td><td>").append(g.n()).append("</td><td>").append(ci(g.auroc())).append("</td><td>")
                        .append(ci(g.flagRate())).append("</td></tr>");
            }
            h.append("</table>");
        }

        h.append("<h2>Settings</h2><table>");
        row(h, "model", run.path("model").asText() + (run.path("revision").isTextual() ? " @ " + run.path("revision").asText() : ""));
        row(h, "hooks / pooling", run.path("hooks").asText() + " / " + run.path("pooling").asText());
        row(h, "data", data.description());
        for (String s : List.of("train", "val", "test")) {
            row(h, s, run.path(s).path("harmful").asInt() + " harmful, " + run.path(s).path("harmless").asInt() + " harmless");
        }
        row(h, "threshold rule (val)", run.path("threshold_rule").asText());
        row(h, "logistic C grid (val)", run.path("c_grid").toString());
        row(h, "bootstrap / seed", run.path("bootstrap").asInt() + " / " + run.path("seed").asLong());
        row(h, "target", fmt(target));
        h.append("</table>");

        h.append("<h2>All layers</h2><table><tr>");
        for (String c : List.of("hook", "detector", "AUROC", "accuracy", "TPR@1%FPR", "TPR@5%FPR", "TPR@thr", "FPR@thr", "ECE",
                "Brier", "val AUROC", "chosen on val")) {
            h.append("<th>").append(c).append("</th>");
        }
        h.append("</tr>");
        for (Prober.HookResult r : results) {
            for (DetectorKind k : kinds) {
                Prober.KindResult kr = r.get(k);
                Map<String, Estimate> o = kr.test().overall();
                h.append("<tr><td>").append(esc(r.hook())).append("</td><td>").append(esc(k.cliName())).append("</td>");
                for (String m : List.of(Evaluation.AUROC, Evaluation.ACCURACY, Evaluation.TPR_AT_1, Evaluation.TPR_AT_5,
                        Evaluation.TPR, Evaluation.FPR, Evaluation.ECE, Evaluation.BRIER)) {
                    h.append("<td>").append(ci(o.get(m))).append("</td>");
                }
                StringBuilder hyper = new StringBuilder();
                kr.fitted().hyper().forEach((n, v) -> hyper.append(n).append('=').append(fmt(v)).append(' '));
                hyper.append("thr=").append(fmt(kr.fitted().params().thresholdProbability()));
                h.append("<td>").append(fmt(kr.fitted().valAuroc())).append("</td><td>").append(esc(hyper.toString())).append("</td></tr>");
            }
        }
        h.append("</table><p class=\"sub\">Methods and definitions: docs/DETECTION.md. Generated by jlens.</p></body></html>\n");
        return h.toString();
    }

    private static List<String> groups(List<Prober.HookResult> results, DetectorKind k) {
        return new ArrayList<>(results.getFirst().get(k).test().groups().keySet());
    }

    private static Map<String, List<Prober.HookResult>> groupByHookKind(List<Prober.HookResult> results) {
        Map<String, List<Prober.HookResult>> m = new LinkedHashMap<>();
        for (Prober.HookResult r : results) {
            String hook = r.hook();
            String kind = hook.startsWith("blocks.") ? hook.substring(hook.indexOf('.', 7) + 1) : hook;
            m.computeIfAbsent(kind, k -> new ArrayList<>()).add(r);
        }
        return m;
    }

    private static List<Charts.Line> layerLines(Map<String, List<Prober.HookResult>> byKind, String name,
                                                Function<Prober.HookResult, Estimate> value) {
        List<Charts.Line> out = new ArrayList<>();
        boolean several = byKind.size() > 1;
        for (var e : byKind.entrySet()) {
            List<Prober.HookResult> rs = e.getValue();
            int n = rs.size();
            double[] x = new double[n], y = new double[n], lo = new double[n], hi = new double[n];
            for (int i = 0; i < n; i++) {
                Estimate est = value.apply(rs.get(i));
                x[i] = rs.get(i).layer();
                y[i] = est.value();
                lo[i] = est.lo();
                hi[i] = est.hi();
            }
            out.add(new Charts.Line(several ? name + " · " + e.getKey() : name, x, y, lo, hi, false));
        }
        return out;
    }

    static List<String> reading(ObjectNode summary, List<Prober.HookResult> results, List<DetectorKind> kinds,
                                DetectorKind mainKind, Prober.HookResult chosen, double target) {
        List<String> out = new ArrayList<>();
        JsonNode earliest = summary.get("earliest");
        for (DetectorKind k : kinds) {
            JsonNode e = earliest.get(k.cliName());
            if (e == null || e.isNull()) {
                out.add(String.format(Locale.ROOT, "<b>%s</b>: no layer reaches a test AUROC whose 95%% CI lower bound is at least %s.",
                        esc(k.cliName()), fmt(target)));
            } else {
                Prober.HookResult r = results.stream().filter(x -> x.hook().equals(e.get("hook").asText())).findFirst().orElseThrow();
                out.add(String.format(Locale.ROOT, "<b>%s</b>: the earliest layer whose test AUROC CI lower bound reaches %s is "
                                + "<b>layer %d</b> (%s), AUROC %s, TPR at 1%% FPR %s.", esc(k.cliName()), fmt(target), r.layer(),
                        esc(r.hook()), ci(r.get(k).test().overall().get(Evaluation.AUROC)),
                        ci(r.get(k).test().overall().get(Evaluation.TPR_AT_1))));
            }
        }
        Prober.KindResult main = chosen.get(mainKind);
        Map<String, Evaluation.GroupMetrics> g = main.test().groups();
        StringBuilder cats = new StringBuilder();
        for (Evaluation.GroupMetrics gm : g.values()) {
            if (!cats.isEmpty()) cats.append("; ");
            cats.append(esc(gm.group())).append(' ').append(gm.positive() ? "caught " : "falsely flagged ")
                    .append(pct(gm.flagRate()));
        }
        out.add(String.format(Locale.ROOT, "At %s, the %s detector with its validation threshold (%s): %s.", esc(chosen.hook()),
                esc(mainKind.cliName()), fmt(main.fitted().params().thresholdProbability()), cats));
        if (g.containsKey(ProbeData.JAILBREAK) && g.containsKey(ProbeData.HARMFUL)) {
            double dj = g.get(ProbeData.HARMFUL).auroc().value() - g.get(ProbeData.JAILBREAK).auroc().value();
            out.add(String.format(Locale.ROOT, "Jailbreak-wrapped requests: AUROC %s against all harmless prompts, versus %s for "
                            + "direct ones; %s", ci(g.get(ProbeData.JAILBREAK).auroc()), ci(g.get(ProbeData.HARMFUL).auroc()),
                    dj > 0.02 ? "the wrapper hides part of the request at this layer."
                            : "the wrapper does not hide the request from this detector."));
        }
        if (chosen.kinds().containsKey(DetectorKind.MAHALANOBIS) && chosen.kinds().containsKey(DetectorKind.LOGISTIC)) {
            Estimate ma = chosen.get(DetectorKind.MAHALANOBIS).test().overall().get(Evaluation.AUROC);
            Estimate lo = chosen.get(DetectorKind.LOGISTIC).test().overall().get(Evaluation.AUROC);
            boolean worse = ma.value() < lo.value() - 0.03;
            out.add(String.format(Locale.ROOT, "The cluster reading (\"harmful prompts converge to a tight region\"): distance to "
                            + "the harmful centroid gives AUROC %s against the probe's %s at %s. %s", ci(ma), ci(lo), esc(chosen.hook()),
                    worse ? "Harmful prompts are better described as lying on one side of a direction than as one tight cluster."
                            : "Closeness to the harmful centroid separates about as well as the linear probe here."));
        }
        Estimate ece = main.test().overall().get(Evaluation.ECE);
        out.add(String.format(Locale.ROOT, "Calibration of the %s scores at %s: ECE %s, Brier %s (0 is perfect).",
                esc(mainKind.cliName()), esc(chosen.hook()), ci(ece), ci(main.test().overall().get(Evaluation.BRIER))));
        return out;
    }

    /** The plain reading of the probe against the words-only baselines, overall and per category. */
    static List<String> crossSplitReading(List<SplitComparison> crossSplit, String chosenHook) {
        if (crossSplit.size() < 2) return List.of();
        SplitComparison random = crossSplit.stream().filter(c -> c.scheme() == SplitScheme.RANDOM).findFirst().orElseThrow();
        SplitComparison style = crossSplit.stream().filter(c -> c.scheme() == SplitScheme.STYLE).findFirst().orElseThrow();
        Estimate pr = random.probeAuroc(chosenHook), ps = style.probeAuroc(chosenHook);
        Estimate wr = random.baseline(TextBaselines.TFIDF).test().overall().get(Evaluation.AUROC);
        Estimate ws = style.baseline(TextBaselines.TFIDF).test().overall().get(Evaluation.AUROC);
        String verdict = TextBaselines.beats(ps, ws) ? "still beats the words there" : "does not beat the words there (the CIs overlap)";
        return List.of("<b>Held-out styles.</b> On a test split of styles it never saw ("
                + esc(String.join(", ", PromptSets.HELD_OUT_STYLES)) + "), the " + esc(style.kind().cliName()) + " probe at "
                + esc(chosenHook) + " reaches AUROC " + ci(ps) + ", against " + ci(pr) + " on the random split of the same prompts; "
                + "TF-IDF goes from " + ci(wr) + " to " + ci(ws) + ". The probe " + verdict + ". The random split's figure is "
                + "what a test written in the training's own style gives; the held-out one is closer to what new users' wording gives. "
                + "Best layer on each: " + best(random) + " (random), " + best(style) + " (style).");
    }

    /** The hook with the highest AUROC on one scheme, e.g. "0.982 at layer 3". */
    private static String best(SplitComparison c) {
        Prober.HookResult top = c.probe().getFirst();
        for (Prober.HookResult r : c.probe()) if (c.probeAuroc(r.hook()).value() > c.probeAuroc(top.hook()).value()) top = r;
        return fmt(c.probeAuroc(top.hook()).value()) + " at layer " + top.layer();
    }

    private static String signed(double v) {
        return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%+.3f", v);
    }

    static List<String> baselineReading(List<TextBaselines.Result> baselines, Prober.HookResult chosen, DetectorKind mainKind) {
        if (baselines.isEmpty()) return List.of();
        TextBaselines.Result words = baselines.getFirst();
        Prober.KindResult main = chosen.get(mainKind);
        Estimate p = main.test().overall().get(Evaluation.AUROC), w = words.test().overall().get(Evaluation.AUROC);
        List<String> out = new ArrayList<>();
        StringBuilder others = new StringBuilder();
        for (TextBaselines.Result b : baselines.subList(1, baselines.size())) {
            others.append(", ").append(esc(b.name())).append(" alone ").append(ci(b.test().overall().get(Evaluation.AUROC)));
        }
        boolean beats = TextBaselines.beats(p, w);
        out.add(String.format(Locale.ROOT, "<b>Against the words</b>: a %s bag-of-words logistic regression on the same splits reaches "
                        + "test AUROC %s%s. The %s probe at %s (%s) %s", esc(words.name()), ci(w), others, esc(mainKind.cliName()),
                esc(chosen.hook()), ci(p), beats ? "<b>beats the words</b>: its interval lies above theirs."
                        : "<b>does not beat the words</b>: the intervals overlap, so this probe has not shown that it reads more "
                        + "than which words the prompt contains."));
        StringBuilder notBeaten = new StringBuilder(), beaten = new StringBuilder();
        for (Evaluation.GroupMetrics g : main.test().groups().values()) {
            Evaluation.GroupMetrics gw = words.test().groups().get(g.group());
            if (gw == null) continue;
            StringBuilder sb = TextBaselines.beats(g.auroc(), gw.auroc()) ? beaten : notBeaten;
            if (!sb.isEmpty()) sb.append("; ");
            sb.append(esc(g.group())).append(' ').append(ci(g.auroc())).append(" vs ").append(ci(gw.auroc()));
        }
        out.add("Per category (probe vs " + esc(words.name()) + " AUROC): "
                + (beaten.isEmpty() ? "" : "the probe beats the words on " + beaten + ". ")
                + (notBeaten.isEmpty() ? "" : "It does not beat them on " + notBeaten + "."));
        return out;
    }

    /** Which aggregation reaches the target first, and which is best at the chosen layer. */
    static List<String> aggregationReading(Map<String, Map<String, Prober.KindResult>> aggregations, List<Prober.HookResult> results,
                                           DetectorKind mainKind, double target) {
        if (aggregations.isEmpty()) return List.of();
        List<String> names = new ArrayList<>(aggregations.values().iterator().next().keySet());
        StringBuilder first = new StringBuilder();
        for (String a : names) {
            String layer = "none";
            for (Prober.HookResult r : results) {
                if (Prober.reaches(aggregations.get(r.hook()).get(a).test().overall().get(Evaluation.AUROC), target)) {
                    layer = "layer " + r.layer();
                    break;
                }
            }
            if (!first.isEmpty()) first.append("; ");
            first.append(esc(a)).append(": ").append(layer);
        }
        String best = null;
        double bestAuc = -1;
        String bestHook = null;
        for (var e : aggregations.entrySet()) {
            for (String a : names) {
                double v = e.getValue().get(a).test().overall().get(Evaluation.AUROC).value();
                if (v > bestAuc + 1e-12) {
                    bestAuc = v;
                    best = a;
                    bestHook = e.getKey();
                }
            }
        }
        return List.of(String.format(Locale.ROOT, "Token aggregations of the %s detector's token scores: earliest layer whose test "
                        + "AUROC CI lower bound reaches %s: %s. Highest test AUROC: %s at %s (%s).", esc(mainKind.cliName()), fmt(target),
                first, esc(best), esc(bestHook), fmt(bestAuc)));
    }

    private static String pct(Estimate e) {
        if (Double.isNaN(e.lo())) return String.format(Locale.ROOT, "%.0f%%", 100 * e.value());
        return String.format(Locale.ROOT, "%.0f%% [%.0f, %.0f]", 100 * e.value(), 100 * e.lo(), 100 * e.hi());
    }

    private static void card(StringBuilder h, String png, String caption) {
        h.append("<div class=\"card\"><img alt=\"chart\" src=\"").append(png).append("\"><p>").append(esc(caption)).append("</p></div>");
    }

    private static void row(StringBuilder h, String k, String v) {
        h.append("<tr><th>").append(esc(k)).append("</th><td style=\"text-align:left\">").append(esc(v)).append("</td></tr>");
    }

    static String ci(Estimate e) {
        if (e == null || Double.isNaN(e.value())) return "–";
        if (Double.isNaN(e.lo())) return fmt(e.value());
        return String.format(Locale.ROOT, "%.3f [%.3f, %.3f]", e.value(), e.lo(), e.hi());
    }

    static String fmt(double v) {
        if (Double.isNaN(v)) return "–";
        double a = Math.abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) return String.format(Locale.ROOT, "%.2e", v);
        return String.format(Locale.ROOT, "%.3f", v);
    }

    static String esc(String s) {
        if (s == null) return "";
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
