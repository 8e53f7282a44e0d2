package dev.jlens.steering;

import dev.jlens.JlensException;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Layers with per-layer weights, as steering is shared: {@code 8:1.0,9:0.5} adds the layer-8 direction with weight
 * 1 and the layer-9 direction with weight 0.5 (each times α). A layer without a weight ({@code 8}) or a range
 * ({@code 4-6}) has weight 1.
 */
public record WeightedLayers(List<Entry> entries) {

    public record Entry(int layer, double weight) {
    }

    public WeightedLayers {
        entries = List.copyOf(entries);
    }

    public static WeightedLayers parse(String spec, int nLayers) {
        if (spec == null || spec.isBlank()) throw new JlensException("--layers: empty; expected e.g. 8 or 8:1.0,9:0.5");
        Map<Integer, Double> out = new LinkedHashMap<>();
        for (String raw : spec.split(",", -1)) {
            String t = raw.strip();
            int colon = t.indexOf(':');
            String layerPart = colon < 0 ? t : t.substring(0, colon).strip();
            double w = 1;
            if (colon >= 0) {
                try {
                    w = Double.parseDouble(t.substring(colon + 1).strip());
                } catch (NumberFormatException e) {
                    throw new JlensException("--layers \"" + spec + "\": weight \"" + t.substring(colon + 1) + "\" is not a number; "
                            + "expected LAYER:WEIGHT, e.g. 8:1.0,9:0.5");
                }
                if (!Double.isFinite(w)) throw new JlensException("--layers \"" + spec + "\": weight " + w + " is not finite");
            }
            for (int l : SteeringSweep.parseLayers(layerPart, nLayers)) {
                if (out.put(l, w) != null) throw new JlensException("--layers \"" + spec + "\": layer " + l + " is given twice");
            }
        }
        List<Entry> e = new ArrayList<>();
        out.forEach((l, w) -> e.add(new Entry(l, w)));
        return new WeightedLayers(e);
    }

    public List<Integer> layers() {
        return entries.stream().map(Entry::layer).toList();
    }

    /** The spec back as text, e.g. 8:1,9:0.5. */
    public String text() {
        StringBuilder sb = new StringBuilder();
        for (Entry e : entries) {
            if (!sb.isEmpty()) sb.append(',');
            sb.append(e.layer()).append(':').append(e.weight() == Math.rint(e.weight()) ? Long.toString((long) e.weight()) : Double.toString(e.weight()));
        }
        return sb.toString();
    }
}
