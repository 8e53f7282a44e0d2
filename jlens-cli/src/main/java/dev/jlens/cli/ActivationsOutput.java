package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.model.HookedModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;

/**
 * The description written next to {@code activations.safetensors}: how it was made, and (last of all) that
 * it is complete. Pooled hooks are stored as {@code {hook}} [n_prompts, d]; with pooling "all" each prompt i
 * has {@code p{i}.{hook}} [len_i, d], {@code p{i}.input_ids} and with --logits {@code p{i}.logits}.
 */
final class ActivationsOutput {

    private ActivationsOutput() {
    }

    /**
     * Refuses to overwrite a finished run unless forced; a forced run starts from scratch and first withdraws
     * the finished run's completion markers, so that a redo interrupted half-way never looks finished (the old
     * result files stay until the new ones replace them).
     */
    static void guardFinished(Path out, String marker, boolean force) {
        Path f = out.resolve(marker);
        boolean complete = false;
        if (Files.isRegularFile(f)) {
            try {
                JsonNode n = new ObjectMapper().readTree(f.toFile());
                complete = n != null && n.path("complete").asBoolean(false);
            } catch (IOException e) {
                complete = false;
            }
        }
        if (complete && !force) {
            throw new JlensException(out + " already holds a finished run (" + f + "); pass --force to redo it, "
                    + "or choose another --out");
        }
        if (force) {
            ResumableCache.discard(out);
            // analyze's activations carry their own marker; a redo replaces them too
            for (Path m : List.of(f, out.resolve("activations.json"))) {
                try {
                    Files.deleteIfExists(m);
                } catch (IOException e) {
                    throw new JlensException("cannot redo the run in " + out + ": its completion marker " + m
                            + " cannot be removed (" + e.getMessage() + "); is the folder writable?", e);
                }
            }
        }
    }

    static void writeMetadata(Path dir, HookedModel model, int prompts, Pooling pooling, boolean logits,
                              List<String> hooks, String promptSource, String promptSha256) {
        writeMetadata(dir, model, prompts, pooling, logits, hooks, promptSource, promptSha256, java.util.Map.of());
    }

    /** As above, with extra fields (e.g. the chat template and each prompt's post-instruction token count). */
    static void writeMetadata(Path dir, HookedModel model, int prompts, Pooling pooling, boolean logits,
                              List<String> hooks, String promptSource, String promptSha256,
                              java.util.Map<String, Object> extra) {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode meta = om.createObjectNode();
        meta.put("jlens_version", JlensCli.VERSION);
        meta.put("model", model.location().id());
        meta.put("model_path", model.location().dir() == null ? null : model.location().dir().toString());
        meta.put("revision", model.location().revision());
        meta.put("architecture", model.info().architecture());
        meta.put("d_model", model.info().dModel());
        meta.put("n_layers", model.info().nLayers());
        var hk = meta.putArray("hooks");
        hooks.forEach(hk::add);
        meta.put("pooling", pooling.cliName());
        meta.put("logits", logits);
        meta.put("prompt_count", prompts);
        meta.put("prompts", promptSource);
        meta.put("prompts_sha256", promptSha256);
        extra.forEach((k, v) -> meta.set(k, om.valueToTree(v)));
        meta.put("created", Instant.now().toString());
        meta.put("complete", true);
        try {
            AtomicFiles.writeString(dir.resolve("activations.json"), om.writeValueAsString(meta) + "\n");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A pooled hook's rows [n, d] as doubles, the form the statistics take. */
    static double[][] pooledRows(SafetensorsFile file, String hook) {
        TensorEntry e = file.require(hook);
        int n = (int) e.shape()[0], d = (int) e.shape()[1];
        float[] v = e.toFloatArray();
        double[][] out = new double[n][d];
        for (int i = 0; i < n; i++) for (int j = 0; j < d; j++) out[i][j] = v[i * d + j];
        return out;
    }

    static String fingerprint(Object... parts) {
        StringBuilder sb = new StringBuilder();
        for (Object p : parts) sb.append(p).append('\u0000');
        try {
            var md = java.security.MessageDigest.getInstance("SHA-256");
            return java.util.HexFormat.of().formatHex(md.digest(sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
