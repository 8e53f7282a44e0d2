package dev.jlens.cli.report;

import dev.jlens.instruments.ActivationPatching;
import dev.jlens.instruments.DirectAttribution;
import dev.jlens.instruments.LogitLens;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The HTML pages of the instruments (jlens lens, attribute, patch, attention): self-contained files whose heat
 * maps are HTML tables (each cell coloured, its exact value in the hover title) and whose curves are embedded
 * PNG charts, so they open offline and a browser's find and copy work on them.
 */
public final class InstrumentReports {

    private InstrumentReports() {
    }

    static final String CSS = DirectionReport.CSS
            + "table.heat td{min-width:34px;text-align:center;font-size:11px;color:#111}table.heat th{font-weight:normal;font-size:11px}"
            + "table.heat th.tok{writing-mode:vertical-rl;transform:rotate(180deg);max-height:140px;white-space:nowrap}";

    static String page(String title, String subtitle, StringBuilder body) {
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) + "</title><style>" + CSS
                + "</style></head><body><h1>" + esc(title) + "</h1><p class=\"sub\">" + esc(subtitle) + "</p>" + body + "</body></html>";
    }

    static String esc(String s) {
        return AnalyzeReport.esc(s);
    }

    static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }

    /**
     * A heat map table: rows × columns, cells coloured on a white-to-blue scale (sequential, from lo to hi) or
     * blue-white-red around 0 (diverging, ±max|v|), each cell showing {@code text} (or the value) and its value
     * on hover.
     */
    public static String heatTable(String id, List<String> rowLabels, List<String> colLabels, double[][] values, String[][] text,
                                   boolean diverging, String valueName) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (double[] r : values) for (double v : r) if (Double.isFinite(v)) {
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        double absMax = Math.max(Math.abs(lo), Math.abs(hi));
        StringBuilder h = new StringBuilder("<table class=\"heat\" id=\"").append(esc(id)).append("\"><tr><th></th>");
        for (String c : colLabels) h.append("<th class=\"tok\">").append(esc(c)).append("</th>");
        h.append("</tr>");
        for (int r = 0; r < values.length; r++) {
            h.append("<tr><th>").append(esc(rowLabels.get(r))).append("</th>");
            for (int c = 0; c < values[r].length; c++) {
                double v = values[r][c];
                String colour = !Double.isFinite(v) ? "#eee"
                        : diverging ? diverging(absMax == 0 ? 0 : v / absMax) : sequential(hi == lo ? 1 : (v - lo) / (hi - lo));
                String label = text != null && text[r][c] != null ? text[r][c] : fmt(v);
                h.append("<td style=\"background:").append(colour).append("\" title=\"").append(esc(rowLabels.get(r)))
                        .append(" · ").append(esc(colLabels.get(c))).append(": ").append(esc(valueName)).append(" = ")
                        .append(fmt(v)).append("\">").append(esc(label)).append("</td>");
            }
            h.append("</tr>");
        }
        return h.append("</table>").toString();
    }

    private static String sequential(double t) {
        t = Math.max(0, Math.min(1, t));
        int r = (int) Math.round(255 - t * (255 - 66)), g = (int) Math.round(255 - t * (255 - 133)), b = (int) Math.round(255 - t * (255 - 244));
        return String.format("#%02x%02x%02x", r, g, b);
    }

    private static String diverging(double t) {
        t = Math.max(-1, Math.min(1, t));
        int r, g, b;
        if (t >= 0) {
            r = 255;
            g = (int) Math.round(255 - t * 180);
            b = (int) Math.round(255 - t * 190);
        } else {
            r = (int) Math.round(255 + t * 190);
            g = (int) Math.round(255 + t * 130);
            b = 255;
        }
        return String.format("#%02x%02x%02x", r, g, b);
    }

    // ---- jlens lens

    /** One prompt's lens for the page: its token strings, the result and how to show a token id. */
    public record LensPrompt(String text, List<String> tokens, LogitLens.Result result, java.util.function.IntFunction<String> show) {
    }

    public static String lens(String model, String scale, List<LensPrompt> prompts, List<String> chosen) {
        StringBuilder b = new StringBuilder();
        b.append("<p class=\"note\">Each layer's residual stream read out through the final norm (").append(esc(scale))
                .append(" scale) and the unembedding. Cells show the top token; colour is ")
                .append(chosen.isEmpty() ? "its probability" : "the probability of " + esc(chosen.getFirst()))
                .append(". The last row is the model's own output.</p>");
        for (int p = 0; p < prompts.size(); p++) {
            LensPrompt lp = prompts.get(p);
            LogitLens.Result r = lp.result();
            b.append("<h2>Prompt ").append(p).append(": ").append(esc(lp.text())).append("</h2>");
            int nl = r.layers().size(), np = r.positions().length;
            double[][] v = new double[nl][np];
            String[][] text = new String[nl][np];
            for (int l = 0; l < nl; l++) {
                for (int i = 0; i < np; i++) {
                    v[l][i] = Math.exp(chosen.isEmpty() ? r.topLogProbs()[l][i][0] : r.tokenLogProbs()[l][i][0]);
                    text[l][i] = lp.show().apply(r.topIds()[l][i][0]);
                }
            }
            List<String> cols = new ArrayList<>();
            for (int pos : r.positions()) cols.add(pos + " " + lp.tokens().get(pos));
            b.append(heatTable("lens-" + p, r.layers(), cols, v, text, false, chosen.isEmpty() ? "P(top)" : "P(" + chosen.getFirst() + ")"));
            if (!chosen.isEmpty()) {
                List<Charts.Line> lines = new ArrayList<>();
                double[] x = new double[nl];
                for (int l = 0; l < nl; l++) x[l] = l;
                for (int t = 0; t < chosen.size(); t++) {
                    double[] y = new double[nl];
                    for (int l = 0; l < nl; l++) y[l] = r.tokenLogProbs()[l][np - 1][t];
                    lines.add(Charts.Line.of(chosen.get(t), x, y));
                }
                b.append("<div class=\"card\"><img alt=\"log-probability per layer\" src=\"")
                        .append(Charts.lineChart("Log-probability at the last position", "readout layer (0 = embeddings, "
                                + (nl - 1) + " = output)", "log P(token)", lines, null, null))
                        .append("\"><p>Per chosen token, across layers, at position ").append(r.positions()[np - 1]).append(".</p></div>");
            }
        }
        return page("jlens lens: " + model, model + " · " + prompts.size() + " prompt(s) · scale " + scale, b);
    }

    // ---- jlens attribute

    public static String attribution(String model, String prompt, String positionToken, DirectAttribution.Result r, int top) {
        StringBuilder b = new StringBuilder();
        b.append("<p class=\"note\">The residual stream at position ").append(r.position()).append(" (").append(esc(positionToken))
                .append(") split into the parts that wrote it, each projected on <b>").append(esc(r.target()))
                .append("</b> after the final norm's scaling. The parts sum to ").append(fmt(r.sum()))
                .append("; the whole residual's projection is ").append(fmt(r.total())).append(".</p>");
        b.append("<h2>Largest parts</h2><table><tr><th>rank</th><th>part</th><th>value</th><th>share of |total|</th></tr>");
        List<DirectAttribution.Component> ranked = r.ranked();
        for (int i = 0; i < Math.min(top, ranked.size()); i++) {
            DirectAttribution.Component c = ranked.get(i);
            b.append("<tr><td>").append(i + 1).append("</td><td>").append(esc(c.name())).append("</td><td>").append(fmt(c.value()))
                    .append("</td><td>").append(r.total() == 0 ? "" : fmt(c.value() / Math.abs(r.total()))).append("</td></tr>");
        }
        b.append("</table>");
        int layers = r.attention().length;
        double[] x = new double[layers];
        for (int l = 0; l < layers; l++) x[l] = l;
        b.append("<h2>Per layer</h2><div class=\"card\"><img alt=\"attention and MLP per layer\" src=\"")
                .append(Charts.lineChart("Attention and MLP output per layer", "layer", "projection",
                        List.of(Charts.Line.of("attention", x, r.attention()), Charts.Line.of("MLP", x, r.mlp())), null, null))
                .append("\"></div>");
        if (r.heads().length > 0 && r.heads()[0].length > 0) {
            List<String> rows = new ArrayList<>(), cols = new ArrayList<>();
            for (int l = 0; l < layers; l++) rows.add("layer " + l);
            for (int h = 0; h < r.heads()[0].length; h++) cols.add("head " + h);
            b.append("<h2>Heads (layer × head)</h2>").append(heatTable("heads", rows, cols, r.heads(), null, true, "projection"));
        }
        return page("jlens attribute: " + model, prompt, b);
    }

    // ---- jlens patch

    public record PatchMaps(List<String> tokens, java.util.Map<String, double[][]> perPosition, double[][] perHead) {
    }

    public static String patching(String model, String clean, String corrupted, String metric, ActivationPatching p, PatchMaps maps) {
        StringBuilder b = new StringBuilder();
        b.append("<p class=\"note\">Metric: ").append(esc(metric)).append(". Clean ").append(fmt(p.cleanMetric()))
                .append(", corrupted ").append(fmt(p.corruptedMetric())).append(". Each cell is (patched − corrupted) / (clean − corrupted)"
                        + " after copying that activation from the clean run into the corrupted one: 1 restores the clean behaviour, 0 nothing.</p>");
        b.append("<p>Clean: ").append(esc(clean)).append("<br>Corrupted: ").append(esc(corrupted)).append("</p>");
        List<String> cols = new ArrayList<>();
        for (int i = 0; i < maps.tokens().size(); i++) cols.add(i + " " + maps.tokens().get(i));
        for (var e : maps.perPosition().entrySet()) {
            List<String> rows = new ArrayList<>();
            for (int l = 0; l < e.getValue().length; l++) rows.add("layer " + l);
            b.append("<h2>").append(esc(e.getKey())).append(" (layer × corrupted position)</h2>")
                    .append(heatTable(e.getKey(), rows, cols, e.getValue(), null, true, "restored"));
        }
        if (maps.perHead() != null) {
            List<String> rows = new ArrayList<>(), heads = new ArrayList<>();
            for (int l = 0; l < maps.perHead().length; l++) rows.add("layer " + l);
            for (int h = 0; h < maps.perHead()[0].length; h++) heads.add("head " + h);
            b.append("<h2>attn.hook_z (layer × head, every position)</h2>").append(heatTable("hook_z", rows, heads, maps.perHead(), null, true, "restored"));
        }
        return page("jlens patch: " + model, model, b);
    }
}
