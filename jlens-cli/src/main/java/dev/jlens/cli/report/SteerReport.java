package dev.jlens.cli.report;

import dev.jlens.io.AtomicFiles;
import dev.jlens.steering.Intervention;
import dev.jlens.steering.SteeringSweep;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * STEER.html of {@code jlens steer}: the selected setting and why, the effect-versus-cost trade-off chart,
 * effect and cost against α per layer, the full table and sample generations. One self-contained file.
 */
public final class SteerReport {

    /** What the page says about the run. */
    public record Info(String model, String directions, String direction, String mode, String evalSet, String effectMetric,
                       boolean causal, double threshold, String scope) {
    }

    private SteerReport() {
    }

    public static void write(Path file, Info info, List<SteeringSweep.Row> rows, SteeringSweep.Selection sel) {
        AtomicFiles.writeString(file, html(info, rows, sel));
    }

    static String label(SteeringSweep.Row r) {
        if (r.setting().isBaseline()) return "baseline";
        return r.setting().mode().cliName() + " L" + r.setting().layer() + (r.setting().alpha() == null ? "" : " α=" + r.setting().alpha().text());
    }

    static String html(Info info, List<SteeringSweep.Row> rows, SteeringSweep.Selection sel) {
        String costName = info.causal() ? "KL (nats)" : "embedding change (1 − cos)";
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens steer: ")
                .append(AnalyzeReport.esc(info.model())).append("</title><style>").append(DirectionReport.CSS).append("</style></head><body>");
        h.append("<h1>Steering: ").append(AnalyzeReport.esc(info.mode())).append(" along ").append(AnalyzeReport.esc(info.direction()))
                .append("</h1><p class=\"sub\">").append(AnalyzeReport.esc(info.model())).append(" · directions ")
                .append(AnalyzeReport.esc(info.directions())).append(" · effect = ").append(AnalyzeReport.esc(info.effectMetric()))
                .append(" on ").append(AnalyzeReport.esc(info.evalSet())).append(" · tokens ").append(AnalyzeReport.esc(info.scope()))
                .append("</p>");
        h.append("<h2>Selection</h2><p class=\"note\">").append(sel.row() == null ? "No setting selected: " : "Selected: ")
                .append(AnalyzeReport.esc(sel.why())).append("</p>");

        // Trade-off: one series per layer (add/clamp: points are alphas) or one series of layers (ablate).
        Map<String, List<SteeringSweep.Row>> groups = new LinkedHashMap<>();
        for (SteeringSweep.Row r : rows) {
            if (r.setting().isBaseline()) continue;
            String key = r.setting().mode() == Intervention.Mode.ABLATE ? "ablate" : "layer " + r.setting().layer();
            groups.computeIfAbsent(key, k -> new ArrayList<>()).add(r);
        }
        List<SteeringCharts.Series> series = new ArrayList<>();
        for (var e : groups.entrySet()) {
            List<SteeringSweep.Row> g = e.getValue();
            double[] x = new double[g.size()], y = new double[g.size()];
            String[] labels = new String[g.size()];
            for (int i = 0; i < g.size(); i++) {
                SteeringSweep.Row r = g.get(i);
                x[i] = cost(r, info.causal());
                y[i] = r.effect();
                labels[i] = r.setting().alpha() != null ? r.setting().alpha().text() : "L" + r.setting().layer();
            }
            series.add(new SteeringCharts.Series(e.getKey(), x, y, labels));
        }
        double[] hl = sel.row() == null ? null : new double[]{cost(sel.row(), info.causal()), sel.row().effect()};
        h.append("<h2>Effect against cost</h2><div class=\"grid\">");
        DirectionReport.card(h, SteeringCharts.tradeOff("Effect vs " + costName, costName, "effect (towards the other class)", series, hl),
                "Each point is one setting; up means a larger effect, right a larger cost. The threshold for selection is "
                        + costName + " < " + info.threshold() + ".");
        if (!groups.containsKey("ablate")) {
            List<Charts.Line> eff = new ArrayList<>(), kl = new ArrayList<>();
            for (var e : groups.entrySet()) {
                List<SteeringSweep.Row> g = e.getValue();
                double[] x = new double[g.size()], y = new double[g.size()], c = new double[g.size()];
                for (int i = 0; i < g.size(); i++) {
                    x[i] = g.get(i).value();
                    y[i] = g.get(i).effect();
                    c[i] = cost(g.get(i), info.causal());
                }
                eff.add(Charts.Line.of(e.getKey(), x, y));
                kl.add(Charts.Line.of(e.getKey(), x, c));
            }
            DirectionReport.card(h, Charts.lineChart("Effect by α", "α (activation units)", "effect", eff, null, null),
                    "The effect of each layer's direction as the coefficient grows.");
            DirectionReport.card(h, Charts.lineChart("Cost by α", "α (activation units)", costName, kl, null, null),
                    "What steering costs on harmless prompts as the coefficient grows.");
        }
        h.append("</div>");

        h.append("<h2>All settings</h2><table><tr><th>setting</th><th>value</th><th>proj before</th><th>proj after</th>"
                + "<th>class score</th><th>refusal log-odds</th><th>refusal rate</th><th>effect</th><th>CE</th><th>KL</th>"
                + "<th>emb change</th></tr>");
        for (SteeringSweep.Row r : rows) {
            h.append("<tr").append(r == sel.row() ? " style=\"background:#eef6ff;font-weight:bold\"" : "").append("><td>")
                    .append(AnalyzeReport.esc(label(r))).append("</td>");
            for (double v : new double[]{r.value(), r.projBefore(), r.metrics().projection(), r.metrics().classScore(),
                    r.metrics().refusalLogOdds(), r.refusalRate(), r.effect(), r.metrics().ce(), r.metrics().kl(), r.metrics().embChange()}) {
                h.append("<td>").append(DirectionReport.num(v)).append("</td>");
            }
            h.append("</tr>");
        }
        h.append("</table>");

        boolean anySamples = rows.stream().anyMatch(r -> !r.samples().isEmpty());
        if (anySamples) {
            h.append("<h2>Sample generations</h2>");
            for (SteeringSweep.Row r : rows) {
                if (r.samples().isEmpty()) continue;
                boolean open = r.setting().isBaseline() || r == sel.row();
                h.append("<details").append(open ? " open" : "").append("><summary>").append(AnalyzeReport.esc(label(r)))
                        .append(r.samples().isEmpty() ? "" : " — refusal rate " + DirectionReport.num(r.refusalRate()))
                        .append("</summary><table>");
                for (SteeringSweep.Sample s : r.samples()) {
                    h.append("<tr><td>").append(AnalyzeReport.esc(s.prompt())).append("</td><td style=\"text-align:left\"><pre>")
                            .append(AnalyzeReport.esc(s.text())).append("</pre></td><td>").append(s.refusal() ? "refusal" : "")
                            .append("</td></tr>");
                }
                h.append("</table></details>");
            }
        }
        h.append("<p>Columns and formulas: docs/STEERING.md.</p></body></html>\n");
        return h.toString();
    }

    private static double cost(SteeringSweep.Row r, boolean causal) {
        return causal ? r.metrics().kl() : r.metrics().embChange();
    }
}
