package dev.jlens.cli.report;

import dev.jlens.eval.Proportion;
import dev.jlens.io.AtomicFiles;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * EVAL.html of {@code jlens eval}: attack success rate per category (rows) and condition (columns) with 95%
 * bootstrap intervals, refusal and over-refusal, the cost, and example completions side by side.
 */
public final class EvalReport {

    public record Info(String model, String benchmark, String format, String sha256, String judge, int prompts, int maxNewTokens) {
    }

    /** One condition's numbers. */
    public record Column(String name, String spec, Map<String, Proportion> asrByCategory, Proportion asr, Proportion refusal,
                         Proportion overRefusal, int unclear, double ce, double kl) {
    }

    /** One prompt and each condition's completion (in column order). */
    public record Example(String id, String category, boolean harmful, String prompt, List<String> completions) {
    }

    private EvalReport() {
    }

    public static void write(Path file, Info info, List<String> categories, List<Column> cols, List<Example> examples) {
        AtomicFiles.writeString(file, html(info, categories, cols, examples));
    }

    static String html(Info info, List<String> categories, List<Column> cols, List<Example> examples) {
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens eval: ").append(esc(info.model()))
                .append("</title><style>").append(DirectionReport.CSS)
                .append("td.c{white-space:pre-wrap;vertical-align:top;text-align:left;font-size:13px;max-width:420px}</style></head><body>");
        h.append("<h1>Evaluation: ").append(esc(info.benchmark())).append("</h1><p class=\"sub\">").append(esc(info.model()))
                .append(" · ").append(info.prompts()).append(" prompts, ").append(esc(info.format())).append(" layout, sha256 ")
                .append(esc(info.sha256().substring(0, 12))).append("… · judge ").append(esc(info.judge())).append(" · greedy, ")
                .append(info.maxNewTokens()).append(" new tokens</p>");
        h.append("<p class=\"note\">Attack success rate (ASR): the share of harmful prompts whose completion the judge calls a "
                + "success, with a 95% percentile-bootstrap interval. Over-refusal: the share of safe prompts answered with a "
                + "refusal phrase. On a random or tiny model these numbers mean nothing (docs/EVALUATION.md).</p>");
        h.append("<h2>Conditions</h2><ul>");
        for (Column c : cols) h.append("<li><b>").append(esc(c.name())).append("</b>: ").append(esc(c.spec())).append("</li>");
        h.append("</ul><h2>Attack success rate per category</h2><table><tr><th>category</th>");
        for (Column c : cols) h.append("<th>").append(esc(c.name())).append("</th>");
        h.append("</tr>");
        for (String cat : categories) {
            boolean any = cols.stream().anyMatch(c -> c.asrByCategory().containsKey(cat));
            if (!any) continue;
            h.append("<tr><td>").append(esc(cat)).append("</td>");
            for (Column c : cols) h.append("<td>").append(ci(c.asrByCategory().get(cat))).append("</td>");
            h.append("</tr>");
        }
        row(h, "<b>all harmful</b>", cols, Column::asr);
        row(h, "refusal rate (phrases)", cols, Column::refusal);
        row(h, "over-refusal (safe prompts)", cols, Column::overRefusal);
        h.append("<tr><td>unclear verdicts</td>");
        for (Column c : cols) h.append("<td>").append(c.unclear()).append("</td>");
        h.append("</tr><tr><td>cross-entropy, harmless corpus (nats/token)</td>");
        for (Column c : cols) h.append("<td>").append(AnalyzeReport.fmt(c.ce())).append("</td>");
        h.append("</tr><tr><td>KL on harmless prompts (nats)</td>");
        for (Column c : cols) h.append("<td>").append(AnalyzeReport.fmt(c.kl())).append("</td>");
        h.append("</tr></table>");
        if (!examples.isEmpty()) {
            h.append("<h2>Example completions</h2><table><tr><th>prompt</th>");
            for (Column c : cols) h.append("<th>").append(esc(c.name())).append("</th>");
            h.append("</tr>");
            for (Example e : examples) {
                h.append("<tr><td class=\"c\"><b>").append(esc(e.id())).append("</b> · ").append(esc(e.category()))
                        .append(e.harmful() ? " · harmful" : " · safe").append("\n").append(esc(e.prompt())).append("</td>");
                for (String t : e.completions()) h.append("<td class=\"c\">").append(esc(t)).append("</td>");
                h.append("</tr>");
            }
            h.append("</table>");
        }
        h.append("</body></html>\n");
        return h.toString();
    }

    private static void row(StringBuilder h, String label, List<Column> cols, java.util.function.Function<Column, Proportion> f) {
        h.append("<tr><td>").append(label).append("</td>");
        for (Column c : cols) h.append("<td>").append(ci(f.apply(c))).append("</td>");
        h.append("</tr>");
    }

    static String ci(Proportion p) {
        if (p == null || p.n() == 0) return "–";
        String r = String.format(Locale.ROOT, "%.1f%% (%d/%d)", 100 * p.rate(), p.successes(), p.n());
        return Double.isNaN(p.lo()) ? r : r + String.format(Locale.ROOT, " [%.1f, %.1f]", 100 * p.lo(), 100 * p.hi());
    }

    private static String esc(String s) {
        return AnalyzeReport.esc(s);
    }
}
