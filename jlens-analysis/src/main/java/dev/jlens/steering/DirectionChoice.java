package dev.jlens.steering;

import dev.jlens.JlensException;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Which directions of a file a command uses: a hook kind (suffix such as hook_resid_pre) and a token
 * position, with defaults (the file's first hook kind; position last if present, else the first) and errors
 * that list what the file has.
 */
public record DirectionChoice(String hookSuffix, String position) {

    public static DirectionChoice resolve(DirectionSet set, String hookOpt, String positionOpt, Path dir) {
        List<String> suffixes = set.hookSuffixes();
        String suffix;
        if (hookOpt == null) {
            suffix = suffixes.getFirst();
        } else {
            String h = hookOpt.strip();
            suffix = h.startsWith("hook_") ? h : "hook_" + h;
            if (!suffixes.contains(suffix)) {
                throw new JlensException("--hook " + hookOpt + ": " + dir.resolve(DirectionSet.METADATA) + " has directions at "
                        + String.join(", ", suffixes));
            }
        }
        List<String> positions = set.meta().positions();
        String position;
        if (positionOpt == null) {
            position = positions.contains("last") ? "last" : positions.getFirst();
        } else {
            position = positionOpt.strip().toLowerCase(Locale.ROOT);
            if (!positions.contains(position)) {
                throw new JlensException("--position " + positionOpt + ": " + dir.resolve(DirectionSet.METADATA)
                        + " has positions " + String.join(", ", positions));
            }
        }
        if (set.layers(suffix, position).isEmpty()) {
            throw new JlensException(dir.resolve(DirectionSet.METADATA) + ": no per-layer direction at " + suffix + " @ " + position);
        }
        return new DirectionChoice(suffix, position);
    }

    public String hookAt(int layer) {
        return "blocks." + layer + "." + hookSuffix;
    }

    /** The direction at a layer, with an error naming the valid range and the layers the file has. */
    public Direction at(DirectionSet set, int layer, Path dir) {
        int n = set.meta().nLayers();
        if (layer < 0 || layer >= n) {
            throw new JlensException("layer " + layer + " is out of range: the model has " + n + " layers (0.." + (n - 1) + ")");
        }
        Direction d = set.find(hookAt(layer), position);
        if (d == null) {
            throw new JlensException("layer " + layer + ": " + dir.resolve(DirectionSet.TENSORS) + " has no direction at "
                    + hookAt(layer) + " @ " + position + "; it has layers " + set.layers(hookSuffix, position));
        }
        return d;
    }

    /**
     * The default layer when none is given: the largest separation relative to the activation norm,
     * (μ_B − μ_A)·r̂ / mean ‖x‖, among the first 80% of layers (late layers mostly shape the output and make
     * poor intervention sites, as Arditi et al. found).
     */
    public int defaultLayer(DirectionSet set) {
        int limit = maxSelectableLayer(set.meta().nLayers());
        int best = -1;
        double bestScore = Double.NEGATIVE_INFINITY;
        for (int l : set.layers(hookSuffix, position)) {
            if (l > limit) continue;
            Direction d = set.find(hookAt(l), position);
            double score = d.norm() / d.meanNorm();
            if (score > bestScore) {
                bestScore = score;
                best = l;
            }
        }
        if (best < 0) best = set.layers(hookSuffix, position).getFirst();
        return best;
    }

    /** The last layer that direction selection may pick: layers from 0.8·n on are excluded. */
    public static int maxSelectableLayer(int nLayers) {
        return Math.max(0, (int) Math.ceil(0.8 * nLayers) - 1);
    }
}
