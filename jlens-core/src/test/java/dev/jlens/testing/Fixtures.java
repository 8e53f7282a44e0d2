package dev.jlens.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.io.safetensors.SafetensorsFile;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** The golden Hugging Face outputs in ../shared/fixtures (see its README). */
public final class Fixtures {

    private Fixtures() {
    }

    public static Path root() {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        if (!Files.isDirectory(root)) root = Path.of("../shared/fixtures");
        if (!Files.isDirectory(root)) throw new IllegalStateException("fixtures not found at " + root.toAbsolutePath());
        return root.toAbsolutePath().normalize();
    }

    public static Path dir(String name) {
        return root().resolve(name);
    }

    public record Prompt(int index, String text, int[] ids) {
    }

    public record Golden(Path dir, JsonNode json, SafetensorsFile tensors) {

        public List<Prompt> prompts() {
            List<Prompt> out = new ArrayList<>();
            for (JsonNode p : json.get("prompts")) {
                int[] ids = new int[p.get("input_ids").size()];
                for (int i = 0; i < ids.length; i++) ids[i] = p.get("input_ids").get(i).asInt();
                out.add(new Prompt(p.get("index").asInt(), p.get("text").asText(), ids));
            }
            return out;
        }

        public int nLayers() {
            return json.get("n_layers").asInt();
        }

        public float[] tensor(String name) {
            TensorEntry e = tensors.find(name);
            return e == null ? null : e.toFloatArray();
        }

        public boolean has(String name) {
            return tensors.contains(name);
        }

        public List<String> names() {
            return new ArrayList<>(tensors.names());
        }
    }

    public static Golden golden(String name) {
        Path dir = dir(name);
        Assumptions.assumeTrue(Files.isDirectory(dir), "fixture " + dir + " missing");
        try {
            JsonNode json = new ObjectMapper().readTree(dir.resolve("golden.json").toFile());
            return new Golden(dir, json, SafetensorsFile.open(dir.resolve("golden.safetensors")));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static double maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) throw new AssertionError("length " + a.length + " vs " + b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) m = Math.max(m, Math.abs((double) a[i] - b[i]));
        return m;
    }

    /**
     * HF's logits as its final norm's output (ln_final.hook_out) times the unembedding, in double: the check
     * for fixtures that keep no logits (fixtures README, "Logits").
     */
    public static float[] logitsFromFinalNorm(Fixtures.Golden g, int prompt) {
        float[] hidden = g.tensor("p" + prompt + ".ln_final.hook_out");
        try (TensorSource weights = Checkpoints.open(g.dir())) {
            TensorEntry unembed = null;
            for (String name : List.of("lm_head.weight", "embed_out.weight", "transformer.wte.weight", "model.embed_tokens.weight")) {
                unembed = weights.find(name);
                if (unembed != null) break;
            }
            if (unembed == null) throw new IllegalStateException("no unembedding in " + g.dir());
            float[] w = unembed.toFloatArray();
            int vocab = (int) unembed.shape()[0], d = (int) unembed.shape()[1];
            int seq = hidden.length / d;
            float[] logits = new float[seq * vocab];
            for (int t = 0; t < seq; t++) {
                for (int v = 0; v < vocab; v++) {
                    double s = 0;
                    for (int j = 0; j < d; j++) s += (double) hidden[t * d + j] * w[v * d + j];
                    logits[t * vocab + v] = (float) s;
                }
            }
            return logits;
        }
    }
}
