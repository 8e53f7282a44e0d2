package dev.jlens.cli.report;

import dev.jlens.tensor.FloatTensor;

import java.util.List;
import java.util.Locale;

/**
 * ATTENTION.html of {@code jlens attention}: the patterns of every layer and head embedded as JSON, drawn by a
 * few lines of plain JavaScript as a query × key table (layer and head pickers, one small thumbnail per head of
 * the chosen layer, exact weights on hover). Written by hand because CircuitsVis loads React from a CDN and the
 * page must work offline.
 */
public final class AttentionView {

    private AttentionView() {
    }

    public static String html(String model, String prompt, List<String> tokens, List<FloatTensor> patterns) {
        StringBuilder data = new StringBuilder("{\"tokens\":[");
        for (int i = 0; i < tokens.size(); i++) data.append(i == 0 ? "" : ",").append(jsonString(tokens.get(i)));
        data.append("],\"layers\":[");
        for (int l = 0; l < patterns.size(); l++) {
            FloatTensor p = patterns.get(l);
            int heads = p.dim(0), n = p.dim(1);
            data.append(l == 0 ? "[" : ",[");
            for (int h = 0; h < heads; h++) {
                data.append(h == 0 ? "[" : ",[");
                for (int q = 0; q < n; q++) {
                    data.append(q == 0 ? "[" : ",[");
                    for (int k = 0; k < n; k++) {
                        float v = p.data()[(h * n + q) * n + k];
                        data.append(k == 0 ? "" : ",").append(String.format(Locale.ROOT, "%.5g", v));
                    }
                    data.append("]");
                }
                data.append("]");
            }
            data.append("]");
        }
        data.append("]}");
        String css = DirectionReport.CSS + "#view td{width:22px;height:22px;padding:0;border:1px solid #f0f0f0}"
                + "#view th{font-size:11px;font-weight:normal;white-space:nowrap}#view th.k{writing-mode:vertical-rl;transform:rotate(180deg)}"
                + ".thumbs{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}.thumbs canvas{border:2px solid #ddd;cursor:pointer}"
                + ".thumbs canvas.on{border-color:#3b82f6}#hover{min-height:1.4em;font-family:monospace}";
        String js = """
                const D = JSON.parse(document.getElementById('data').textContent);
                const layerSel = document.getElementById('layer'), headSel = document.getElementById('head');
                D.layers.forEach((_, l) => layerSel.add(new Option('layer ' + l, l)));
                function colour(v) { const t = Math.max(0, Math.min(1, v)); return 'rgb(' + Math.round(255 - 189 * t) + ','
                    + Math.round(255 - 122 * t) + ',' + Math.round(255 - 11 * t) + ')'; }
                function heads() { headSel.innerHTML = ''; D.layers[+layerSel.value].forEach((_, h) => headSel.add(new Option('head ' + h, h))); }
                function thumbs() {
                  const box = document.getElementById('thumbs'); box.innerHTML = '';
                  D.layers[+layerSel.value].forEach((pat, h) => {
                    const c = document.createElement('canvas'), n = pat.length, s = Math.max(2, Math.floor(64 / n));
                    c.width = c.height = n * s; c.title = 'head ' + h; c.className = h == +headSel.value ? 'on' : '';
                    const g = c.getContext('2d');
                    pat.forEach((row, q) => row.forEach((v, k) => { g.fillStyle = colour(v); g.fillRect(k * s, q * s, s, s); }));
                    c.onclick = () => { headSel.value = h; draw(); };
                    box.appendChild(c);
                  });
                }
                function draw() {
                  const pat = D.layers[+layerSel.value][+headSel.value], t = D.tokens;
                  let h = '<tr><th>query \\\\ key</th>' + t.map((s, k) => '<th class="k">' + k + ' ' + esc(s) + '</th>').join('') + '</tr>';
                  pat.forEach((row, q) => {
                    h += '<tr><th>' + q + ' ' + esc(t[q]) + '</th>' + row.map((v, k) => '<td style="background:' + colour(v)
                      + '" title="' + esc(t[q]) + ' → ' + esc(t[k]) + ': ' + v.toFixed(4) + '" data-v="' + v + '"></td>').join('') + '</tr>';
                  });
                  document.getElementById('view').innerHTML = h;
                  document.getElementById('caption').textContent = 'layer ' + layerSel.value + ', head ' + headSel.value;
                  thumbs();
                }
                function esc(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'); }
                document.getElementById('view').addEventListener('mouseover', e => {
                  if (e.target.tagName === 'TD') document.getElementById('hover').textContent = e.target.title; });
                layerSel.onchange = () => { heads(); draw(); };
                headSel.onchange = draw;
                heads(); draw();
                """;
        return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>jlens attention: " + AnalyzeReport.esc(model)
                + "</title><style>" + css + "</style></head><body><h1>Attention patterns</h1><p class=\"sub\">"
                + AnalyzeReport.esc(model) + " · " + AnalyzeReport.esc(prompt) + "</p>"
                + "<p class=\"note\">Row = query token, column = key token it attends to; darker = more weight. Click a thumbnail "
                + "or pick a head; hover a cell for its weight.</p>"
                + "<p><select id=\"layer\"></select> <select id=\"head\"></select> <b id=\"caption\"></b></p>"
                + "<div class=\"thumbs\" id=\"thumbs\"></div><div id=\"hover\"></div><table id=\"view\"></table>"
                + "<script type=\"application/json\" id=\"data\">" + data.toString().replace("</", "<\\/") + "</script>"
                + "<script>" + js + "</script></body></html>";
    }

    private static String jsonString(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        return b.append('"').toString();
    }
}
