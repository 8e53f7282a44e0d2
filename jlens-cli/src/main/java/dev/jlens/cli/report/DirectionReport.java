package dev.jlens.cli.report;

import dev.jlens.io.AtomicFiles;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionSet;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * DIRECTIONS.html of {@code jlens direction}: per hook kind and token position, how stable the direction is
 * across depth (cosine between every two layers' directions, as a heat map) and how far apart the classes
 * are along it, then the full table. One self-contained file (embedded PNGs).
 */
public final class DirectionReport {

    static final String CSS = "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1360px;margin:24px auto;padding:0 16px;color:#222}"
            + "h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}"
            + ".sub{color:#666;margin-top:0}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px}"
            + ".card{border:1px solid #e3e3e3;border-radius:8px;padding:8px;background:#fff}.card img{width:100%;height:auto}"
            + ".card p{margin:4px 8px 8px;color:#555;font-size:13px}table{border-collapse:collapse;font-size:12px}"
            + "td,th{border:1px solid #e3e3e3;padding:3px 6px;text-align:right}th{background:#f5f5f5}td:first-child{text-align:left}"
            + ".note{background:#eef6ff;border-left:4px solid #3b82f6;padding:8px 14px}pre{white-space:pre-wrap;font-size:12px}";

    private DirectionReport() {
    }

    public static void write(Path file, DirectionSet set) {
        AtomicFiles.writeString(file, html(set));
    }

    /** Cosine between the unit directions of the given layers. */
    public static double[][] cosineMatrix(List<Direction> byLayer) {
        int n = byLayer.size();
        double[][] m = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double dot = 0, ni = 0, nj = 0;
                float[] a = byLayer.get(i).unit(), b = byLayer.get(j).unit();
                for (int k = 0; k < a.length; k++) {
                    dot += (double) a[k] * b[k];
                    ni += (double) a[k] * a[k];
                    nj += (double) b[k] * b[k];
                }
                m[i][j] = dot / Math.sqrt(ni * nj);
            }
        }
        return m;
    }

    static String html(DirectionSet set) {
        DirectionSet.Meta meta = set.meta();
        StringBuilder h = new StringBuilder();
        h.append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens direction: ")
                .append(AnalyzeReport.esc(meta.model())).append("</title><style>").append(CSS).append("</style></head><body>");
        h.append("<h1>Directions from ").append(AnalyzeReport.esc(meta.classA().name())).append(" (A) towards ")
                .append(AnalyzeReport.esc(meta.classB().name())).append(" (B)</h1>");
        h.append("<p class=\"sub\">").append(AnalyzeReport.esc(meta.model())).append(" · ").append(AnalyzeReport.esc(meta.architecture()))
                .append(" · ").append(meta.nLayers()).append(" layers, d_model ").append(meta.dModel())
                .append(" · method ").append(meta.method().cliName())
                .append(" · A: ").append(meta.classA().size()).append(" prompts, B: ").append(meta.classB().size())
                .append(" prompts</p>");
        h.append("<h2>Stability across depth</h2><p>Each map shows the cosine between the directions of every two layers "
                + "for one hook kind and token position. A bright block along the diagonal means neighbouring layers "
                + "share the direction; white (0) means orthogonal directions.</p><div class=\"grid\">");
        for (String suffix : set.hookSuffixes()) {
            for (String pos : meta.positions()) {
                List<Integer> layers = set.layers(suffix, pos);
                if (layers.size() < 2) continue;
                List<Direction> ds = new ArrayList<>();
                for (int l : layers) ds.add(set.find("blocks." + l + "." + suffix, pos));
                int[] lab = layers.stream().mapToInt(Integer::intValue).toArray();
                card(h, SteeringCharts.heatMap("cos between layers: " + suffix + " @ " + pos, "layer", lab, cosineMatrix(ds)),
                        "Cosine similarity of the " + meta.method().cliName() + " directions at " + suffix + ", position " + pos + ".");
                double[] x = new double[lab.length], rel = new double[lab.length];
                for (int i = 0; i < lab.length; i++) {
                    x[i] = lab[i];
                    rel[i] = ds.get(i).norm() / ds.get(i).meanNorm();
                }
                card(h, Charts.lineChart("Separation along r̂: " + suffix + " @ " + pos, "layer", "(μ_B − μ_A)·r̂ / mean ‖x‖",
                        List.of(Charts.Line.of("relative separation", x, rel)), null, null),
                        "How far apart the class means are along the direction, relative to the typical activation norm.");
            }
        }
        h.append("</div>");
        h.append("<h2>All directions</h2><table><tr><th>name</th><th>layer</th><th>position</th><th>norm</th>"
                + "<th>norm / mean ‖x‖</th><th>mean x·r̂ (A)</th><th>mean x·r̂ (B)</th><th>n A</th><th>n B</th><th>cos to diff-means</th></tr>");
        for (Direction d : set.directions()) {
            h.append("<tr><td>").append(AnalyzeReport.esc(d.name())).append("</td><td>").append(d.layer()).append("</td><td>")
                    .append(AnalyzeReport.esc(d.position())).append("</td><td>").append(num(d.norm())).append("</td><td>")
                    .append(num(d.norm() / d.meanNorm())).append("</td><td>").append(num(d.meanProjA())).append("</td><td>")
                    .append(num(d.meanProjB())).append("</td><td>").append(d.nA()).append("</td><td>").append(d.nB())
                    .append("</td><td>").append(num(d.cosToDiffMeans())).append("</td></tr>");
        }
        h.append("</table>");
        h.append("<h2>Settings</h2><table>");
        row(h, "class A", meta.classA().name() + " (" + meta.classA().size() + " prompts, sha256 " + meta.classA().sha256() + ")");
        row(h, "class B", meta.classB().name() + " (" + meta.classB().size() + " prompts, sha256 " + meta.classB().sha256() + ")");
        row(h, "hooks", String.join(", ", meta.hooks()));
        row(h, "positions", String.join(", ", meta.positions()));
        row(h, "method", meta.method().cliName());
        row(h, "jlens", meta.jlensVersion() + ", " + meta.created());
        h.append("</table><p>Formulas: docs/STEERING.md.</p></body></html>\n");
        return h.toString();
    }

    static String num(double v) {
        if (!Double.isFinite(v)) return "–";
        double a = Math.abs(v);
        return a != 0 && (a < 1e-3 || a >= 1e5) ? String.format(Locale.ROOT, "%.3e", v) : String.format(Locale.ROOT, "%.4f", v);
    }

    static void card(StringBuilder h, String png, String caption) {
        h.append("<div class=\"card\"><img alt=\"chart\" src=\"").append(png).append("\"><p>")
                .append(AnalyzeReport.esc(caption)).append("</p></div>");
    }

    static void row(StringBuilder h, String k, String v) {
        h.append("<tr><th>").append(AnalyzeReport.esc(k)).append("</th><td style=\"text-align:left\">")
                .append(AnalyzeReport.esc(v)).append("</td></tr>");
    }
}
