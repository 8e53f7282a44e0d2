package dev.jlens.steering;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.ModelInfo;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The directions {@code jlens direction} writes: {@code directions.safetensors} with one float32 unit vector
 * [d_model] per (hook, position), named {@code <hook>:<position>} (e.g. {@code blocks.3.hook_resid_pre:last}),
 * and {@code directions.json} with the model, the prompt sets (name, size, SHA-256), the method and, per
 * direction, its raw norm and class statistics. Python reads them with
 * {@code safetensors.numpy.load_file} and {@code json.load}.
 */
public final class DirectionSet {

    public static final String TENSORS = "directions.safetensors";
    public static final String METADATA = "directions.json";
    static final String FORMAT = "jlens-directions";

    /** A prompt set as recorded: its name, number of prompts used and the SHA-256 of its source. */
    public record SetInfo(String name, int size, String sha256) {
    }

    /** What the directions were computed from. */
    public record Meta(String model, String revision, String architecture, String family, int dModel, int nLayers,
                       DirectionMethod method, List<String> hooks, List<String> positions, SetInfo classA,
                       SetInfo classB, String jlensVersion, String created) {
    }

    private final Meta meta;
    private final Map<String, Direction> byName;

    public DirectionSet(Meta meta, List<Direction> directions) {
        this.meta = meta;
        this.byName = new LinkedHashMap<>();
        for (Direction d : directions) {
            if (d.dModel() != meta.dModel()) {
                throw new IllegalArgumentException(d.name() + " has width " + d.dModel() + ", metadata says d_model " + meta.dModel());
            }
            byName.put(d.name(), d);
        }
    }

    public Meta meta() {
        return meta;
    }

    public List<Direction> directions() {
        return List.copyOf(byName.values());
    }

    public Direction find(String hook, String position) {
        return byName.get(Direction.nameOf(hook, position));
    }

    /** The direction at a hook and position, or an error that lists what the file has. */
    public Direction require(String hook, String position, Path dir) {
        Direction d = find(hook, position);
        if (d == null) {
            throw new JlensException((dir == null ? "" : dir.resolve(TENSORS) + ": ") + "no direction for hook " + hook
                    + " at position " + position + "; the file has hooks " + describeHooks() + " at positions "
                    + String.join(", ", meta.positions()));
        }
        return d;
    }

    /** Layers that have a direction for this hook suffix (e.g. hook_resid_pre) and position, ascending. */
    public List<Integer> layers(String hookSuffix, String position) {
        List<Integer> out = new ArrayList<>();
        for (Direction d : byName.values()) {
            if (d.layer() >= 0 && d.hookSuffix().equals(hookSuffix) && d.position().equals(position)) out.add(d.layer());
        }
        out.sort(null);
        return out;
    }

    /** Distinct hook suffixes in the file, in order of first appearance. */
    public List<String> hookSuffixes() {
        List<String> out = new ArrayList<>();
        for (Direction d : byName.values()) if (!out.contains(d.hookSuffix())) out.add(d.hookSuffix());
        return out;
    }

    private String describeHooks() {
        List<String> s = new ArrayList<>();
        for (String h : hookSuffixes()) s.add(h);
        return String.join(", ", s);
    }

    /**
     * Refuses directions from a model of another shape: the width must equal d_model and the layer count must
     * match, because a direction is only meaningful in the residual space it was measured in. A different
     * model name with the same shape (an orthogonalised copy, a local folder of the same checkpoint) is
     * allowed; the returned warning says so, or is null.
     */
    public String checkCompatible(ModelInfo info, String modelId, Path dir) {
        String where = dir == null ? "directions" : dir.resolve(METADATA).toString();
        if (meta.dModel() != info.dModel()) {
            throw new JlensException(where + ": the directions were computed on " + meta.model() + " with d_model "
                    + meta.dModel() + ", but --model " + modelId + " has d_model " + info.dModel()
                    + "; directions only apply to the model (or a copy of it) they were computed on");
        }
        if (meta.nLayers() != info.nLayers()) {
            throw new JlensException(where + ": the directions were computed on " + meta.model() + " with "
                    + meta.nLayers() + " layers, but --model " + modelId + " has " + info.nLayers()
                    + "; directions only apply to the model (or a copy of it) they were computed on");
        }
        if (!meta.model().equals(modelId)) {
            return "the directions were computed on " + meta.model() + ", not " + modelId
                    + "; the shapes match (d_model " + info.dModel() + ", " + info.nLayers() + " layers), so they are used";
        }
        return null;
    }

    // ---------------------------------------------------------------------------------------------- files

    public void save(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new JlensException(dir + ": cannot create the output folder: " + e.getMessage(), e);
        }
        SafetensorsWriter w = new SafetensorsWriter().putMetadata("format", FORMAT)
                .putMetadata("model", meta.model()).putMetadata("method", meta.method().cliName());
        for (Direction d : byName.values()) w.putF32(d.name(), d.unit(), d.dModel());
        w.write(dir.resolve(TENSORS));
        AtomicFiles.writeString(dir.resolve(METADATA), metadataJson());
    }

    String metadataJson() {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = om.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", 1);
        root.put("jlens_version", meta.jlensVersion());
        root.put("created", meta.created());
        root.put("model", meta.model());
        if (meta.revision() != null) root.put("revision", meta.revision());
        root.put("architecture", meta.architecture());
        root.put("family", meta.family());
        root.put("d_model", meta.dModel());
        root.put("n_layers", meta.nLayers());
        root.put("method", meta.method().cliName());
        ArrayNode hooks = root.putArray("hooks");
        meta.hooks().forEach(hooks::add);
        ArrayNode positions = root.putArray("positions");
        meta.positions().forEach(positions::add);
        for (String cls : List.of("class_a", "class_b")) {
            SetInfo s = cls.equals("class_a") ? meta.classA() : meta.classB();
            root.putObject(cls).put("name", s.name()).put("size", s.size()).put("sha256", s.sha256());
        }
        ArrayNode list = root.putArray("directions");
        for (Direction d : byName.values()) {
            ObjectNode o = list.addObject();
            o.put("name", d.name());
            o.put("hook", d.hook());
            o.put("layer", d.layer());
            o.put("position", d.position());
            putNumber(o, "norm", d.norm());
            putNumber(o, "mean_proj_a", d.meanProjA());
            putNumber(o, "mean_proj_b", d.meanProjB());
            putNumber(o, "mean_activation_norm", d.meanNorm());
            o.put("n_a", d.nA());
            o.put("n_b", d.nB());
            putNumber(o, "cos_to_diff_means", d.cosToDiffMeans());
        }
        try {
            return om.writeValueAsString(root) + "\n";
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void putNumber(ObjectNode o, String field, double v) {
        if (Double.isFinite(v)) o.put(field, v);
        else o.putNull(field);
    }

    /** Reads a folder written by {@link #save}; every problem names the file and field. */
    public static DirectionSet load(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new JlensException("--direction " + dir + ": no such folder; expected the --out folder of jlens direction "
                    + "(with " + TENSORS + " and " + METADATA + ")");
        }
        Path jsonFile = dir.resolve(METADATA), tensorFile = dir.resolve(TENSORS);
        for (Path f : List.of(jsonFile, tensorFile)) {
            if (!Files.isRegularFile(f)) {
                throw new JlensException(f + ": missing; a directions folder holds " + TENSORS + " and " + METADATA
                        + " as jlens direction writes them");
            }
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(jsonFile));
        } catch (IOException e) {
            throw new JlensException(jsonFile + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
        if (root == null || !root.isObject()) throw new JlensException(jsonFile + ": expected a JSON object");
        if (!FORMAT.equals(root.path("format").asText())) {
            throw new JlensException(jsonFile + ": field \"format\" is " + root.get("format") + "; expected \"" + FORMAT + "\"");
        }
        int d = positiveInt(root, "d_model", jsonFile);
        int layers = positiveInt(root, "n_layers", jsonFile);
        DirectionMethod method;
        try {
            method = DirectionMethod.parse(text(root, "method", jsonFile));
        } catch (JlensException e) {
            throw new JlensException(jsonFile + ": field \"method\" is " + root.get("method") + "; expected diff-means, pca, probe or control-vector");
        }
        Meta meta = new Meta(text(root, "model", jsonFile), root.path("revision").isTextual() ? root.get("revision").asText() : null,
                root.path("architecture").asText(""), root.path("family").asText(""), d, layers, method,
                strings(root, "hooks", jsonFile), strings(root, "positions", jsonFile),
                setInfo(root, "class_a", jsonFile), setInfo(root, "class_b", jsonFile),
                root.path("jlens_version").asText(""), root.path("created").asText(""));
        JsonNode list = root.get("directions");
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw new JlensException(jsonFile + ": field \"directions\" must be a non-empty array");
        }
        List<Direction> out = new ArrayList<>();
        try (SafetensorsFile st = SafetensorsFile.open(tensorFile)) {
            for (int i = 0; i < list.size(); i++) {
                JsonNode e = list.get(i);
                String field = "directions[" + i + "]";
                String hook = text(e, "hook", jsonFile, field);
                String position = text(e, "position", jsonFile, field);
                String name = Direction.nameOf(hook, position);
                TensorEntry t = st.find(name);
                if (t == null) throw new JlensException(tensorFile + ": missing tensor \"" + name + "\" listed in " + jsonFile);
                if (t.rank() != 1 || t.shape()[0] != d) {
                    throw new JlensException(tensorFile + ": tensor \"" + name + "\" has shape " + t.shapeString()
                            + "; expected [" + d + "] (d_model in " + jsonFile.getFileName() + ")");
                }
                float[] unit = t.toFloatArray();
                double n2 = 0;
                for (float v : unit) n2 += (double) v * v;
                if (!(Math.abs(Math.sqrt(n2) - 1) < 1e-3)) {
                    throw new JlensException(tensorFile + ": tensor \"" + name + "\" has norm " + Math.sqrt(n2)
                            + "; directions are stored unit-normalised");
                }
                out.add(new Direction(hook, e.path("layer").asInt(-1), position, unit, number(e, "norm"),
                        number(e, "mean_proj_a"), number(e, "mean_proj_b"), number(e, "mean_activation_norm"),
                        e.path("n_a").asInt(0), e.path("n_b").asInt(0), number(e, "cos_to_diff_means")));
            }
        }
        for (Direction x : out) {
            if (x.layer() >= layers) {
                throw new JlensException(jsonFile + ": direction " + x.name() + " is at layer " + x.layer() + " but n_layers is " + layers);
            }
        }
        return new DirectionSet(meta, out);
    }

    private static int positiveInt(JsonNode n, String field, Path file) {
        JsonNode v = n.get(field);
        if (v == null || !v.isIntegralNumber() || v.asInt() <= 0) {
            throw new JlensException(file + ": field \"" + field + "\" is " + v + "; expected a positive integer");
        }
        return v.asInt();
    }

    private static String text(JsonNode n, String field, Path file) {
        return text(n, field, file, null);
    }

    private static String text(JsonNode n, String field, Path file, String parent) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) {
            throw new JlensException(file + ": field \"" + (parent == null ? "" : parent + ".") + field + "\" is " + v
                    + "; expected a non-empty string");
        }
        return v.asText();
    }

    private static List<String> strings(JsonNode n, String field, Path file) {
        JsonNode v = n.get(field);
        if (v == null || !v.isArray()) throw new JlensException(file + ": field \"" + field + "\" is " + v + "; expected an array of strings");
        List<String> out = new ArrayList<>();
        v.forEach(x -> out.add(x.asText()));
        return out;
    }

    private static SetInfo setInfo(JsonNode n, String field, Path file) {
        JsonNode v = n.get(field);
        if (v == null || !v.isObject()) throw new JlensException(file + ": field \"" + field + "\" is " + v + "; expected {name, size, sha256}");
        return new SetInfo(v.path("name").asText(""), v.path("size").asInt(0), v.path("sha256").asText(""));
    }

    private static double number(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v != null && v.isNumber() ? v.asDouble() : Double.NaN;
    }
}
