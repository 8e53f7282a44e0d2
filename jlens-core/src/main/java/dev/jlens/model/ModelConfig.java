package dev.jlens.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A model's config.json with typed getters whose errors name the file and field. */
public final class ModelConfig {

    private final Path file;
    private final JsonNode root;

    public ModelConfig(Path file, JsonNode root) {
        this.file = file;
        this.root = root;
    }

    public static ModelConfig read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new JlensException(file + ": config.json not found; a model folder needs the config.json that "
                    + "save_pretrained writes next to the weights");
        }
        try {
            JsonNode root = new ObjectMapper().readTree(Files.readString(file));
            if (root == null || !root.isObject()) throw new JlensException(file + ": expected a JSON object");
            return new ModelConfig(file, root);
        } catch (IOException e) {
            throw new JlensException(file + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
    }

    public Path file() {
        return file;
    }

    public JsonNode json() {
        return root;
    }

    public boolean has(String field) {
        JsonNode n = root.get(field);
        return n != null && !n.isNull();
    }

    public int requireInt(String field) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull()) throw new JlensException(file + ": missing field \"" + field + "\" (expected an integer)");
        if (!n.canConvertToInt() || !n.isIntegralNumber()) {
            throw new JlensException(file + ": field \"" + field + "\" is " + n + "; expected an integer");
        }
        int v = n.asInt();
        if (v <= 0) throw new JlensException(file + ": field \"" + field + "\" is " + v + "; expected a positive integer");
        return v;
    }

    public int getInt(String field, int def) {
        return has(field) ? requireInt(field) : def;
    }

    public double getDouble(String field, double def) {
        if (!has(field)) return def;
        JsonNode n = root.get(field);
        if (!n.isNumber()) throw new JlensException(file + ": field \"" + field + "\" is " + n + "; expected a number");
        return n.asDouble();
    }

    public boolean getBool(String field, boolean def) {
        if (!has(field)) return def;
        JsonNode n = root.get(field);
        if (!n.isBoolean()) throw new JlensException(file + ": field \"" + field + "\" is " + n + "; expected true or false");
        return n.asBoolean();
    }

    public String getString(String field, String def) {
        if (!has(field)) return def;
        return root.get(field).asText();
    }

    public List<String> architectures() {
        List<String> out = new ArrayList<>();
        JsonNode a = root.get("architectures");
        if (a != null && a.isArray()) a.forEach(x -> out.add(x.asText()));
        return out;
    }

    public JlensException invalid(String field, String expected) {
        return new JlensException(file + ": field \"" + field + "\" is " + root.get(field) + "; expected " + expected);
    }

    /**
     * Refuses a config that sets {@code field} (to anything but null, false, 0 or an empty list/object) with an
     * error naming it: for features of a family's real configs that jlens does not run (mixture-of-experts,
     * a vision tower), so that they fail loudly instead of giving wrong numbers.
     */
    public void refuse(String field, String feature) {
        JsonNode n = root.get(field);
        if (n == null || n.isNull() || n.isBoolean() && !n.asBoolean() || n.isNumber() && n.asDouble() == 0
                || n.isContainerNode() && n.isEmpty()) {
            return;
        }
        String shown = n.isContainerNode() ? (n.isObject() ? "an object" : "a list") : n.toString();
        throw new JlensException(file + ": field \"" + field + "\" is " + shown + ": " + feature
                + " is not supported by jlens");
    }
}
