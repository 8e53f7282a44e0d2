package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.WeightMatrix;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;

/**
 * Reads a family's tensors by name and checks each shape against what config.json implies, so a checkpoint
 * that does not fit its config fails at load with the tensor, both shapes and the file named.
 */
public final class Weights {

    private final TensorSource source;
    private final ModelConfig config;
    private long parameterCount;

    public Weights(TensorSource source, ModelConfig config) {
        this.source = source;
        this.config = config;
    }

    public TensorSource source() {
        return source;
    }

    public long parameterCount() {
        return parameterCount;
    }

    /**
     * Checks a layer count from config.json against the checkpoint before anything is sized by it: every
     * layer has at least one tensor, so a count beyond the checkpoint's tensor count means the config does not
     * belong to these weights (and a huge one would otherwise allocate per claimed layer).
     */
    public void requireLayers(String field, int nLayers) {
        int have = source.names().size();
        if (nLayers > have) {
            throw new JlensException(config.file() + ": field \"" + field + "\" is " + nLayers + ", but "
                    + source.describe() + " holds only " + have + " tensors; the config does not belong to these weights");
        }
    }

    /**
     * The same check for a family's spec, before it sizes anything per layer: with no checkpoint yet (synth)
     * only an absurd count is refused.
     */
    public static void checkLayers(ModelConfig config, TensorSource source, String field, int nLayers) {
        if (source != null) {
            new Weights(source, config).requireLayers(field, nLayers);
        } else if (nLayers > MAX_LAYERS) {
            throw new JlensException(config.file() + ": field \"" + field + "\" is " + nLayers + "; no model jlens knows has more "
                    + "than " + MAX_LAYERS + " layers");
        }
    }

    private static final int MAX_LAYERS = 10_000;

    public TensorEntry entry(String name, long... expectedShape) {
        TensorEntry e = source.find(name);
        if (e == null) throw missing(List.of(name));
        if (!Arrays.equals(e.shape(), expectedShape)) {
            throw new JlensException(e.source() + ": tensor \"" + name + "\" has shape " + e.shapeString()
                    + " but " + config.file() + " implies " + Arrays.toString(expectedShape));
        }
        if (!e.dtype().isFloat()) {
            throw new JlensException(e.source() + ": tensor \"" + name + "\" is " + e.dtype() + "; expected a float type");
        }
        parameterCount += e.numel();
        return e;
    }

    /**
     * Checks up front that every named tensor is present, so that a checkpoint of another family or with
     * another naming fails with several of the missing names and some names the file does have, rather
     * than with the first missing one alone.
     */
    public void requirePresent(Collection<String> names) {
        List<String> missing = new ArrayList<>();
        for (String n : names) if (!source.contains(n)) missing.add(n);
        if (!missing.isEmpty()) throw missing(missing);
    }

    private static final int LISTED = 5;

    private JlensException missing(List<String> missing) {
        StringBuilder sb = new StringBuilder(source.describe()).append(": ");
        sb.append(missing.size() == 1 ? "missing tensor " : missing.size() + " tensors missing, e.g. ");
        sb.append(quoted(missing.subList(0, Math.min(LISTED, missing.size()))));
        sb.append(", required by ").append(config.file().getFileName())
                .append(" (").append(String.join(", ", config.architectures())).append(")");
        sb.append("; the checkpoint has ").append(source.names().size()).append(" tensors");
        List<String> have = similarNames(missing.getFirst());
        if (!have.isEmpty()) sb.append(", e.g. ").append(quoted(have));
        return new JlensException(sb.toString());
    }

    /**
     * Up to five names the file has, those ending like the missing name first (the usual mismatch is a
     * prefix: "transformer.h.0..." against "h.0..."), then the first in sorted order.
     */
    private List<String> similarNames(String missingName) {
        String[] parts = missingName.split("\\.");
        String tail = parts.length >= 2 ? parts[parts.length - 2] + "." + parts[parts.length - 1] : missingName;
        List<String> sorted = new ArrayList<>(source.names());
        sorted.sort(null);
        List<String> out = new ArrayList<>();
        for (String n : sorted) if (out.size() < LISTED && n.endsWith(tail)) out.add(n);
        for (String n : sorted) if (out.size() < LISTED && !out.contains(n)) out.add(n);
        return out;
    }

    private static String quoted(List<String> names) {
        List<String> q = new ArrayList<>();
        for (String n : names) q.add("\"" + n + "\"");
        return String.join(", ", q);
    }

    public float[] vector(String name, int n) {
        return entry(name, n).toFloatArray();
    }

    public WeightMatrix matrix(String name, int rows, int cols) {
        return WeightMatrix.of(entry(name, rows, cols));
    }

    /** A matrix stored [in, out] (GPT-2 Conv1D), returned in [out, in] layout. */
    public WeightMatrix transposedMatrix(String name, int in, int out) {
        return WeightMatrix.transposed(entry(name, in, out));
    }
}
