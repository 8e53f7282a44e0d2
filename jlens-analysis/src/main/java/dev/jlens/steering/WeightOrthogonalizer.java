package dev.jlens.steering;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.TensorRole;
import dev.jlens.model.TensorSpec;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Directional ablation baked into the weights (Arditi et al. 2024, "weight orthogonalization"): every matrix
 * that writes into the residual stream gets r̂ projected out of its output space, W ← (I − r̂r̂ᵀ)W, and so does
 * its bias, b ← b − (b·r̂)r̂; embedding rows e ← e − (e·r̂)r̂. Then nothing any block or embedding writes has a
 * component along r̂, which is exactly what ablating r̂ at every resid_pre, attn_out and mlp_out does, so the
 * new checkpoint's plain forward pass equals the ablated forward pass of the original.
 *
 * <p>Which tensors those are is the family's knowledge ({@link TensorRole#writesResidual()}): the token (and
 * learned position) embeddings, the attention output and MLP down projections, and their biases; a Conv1D
 * weight (GPT-2, stored [in, out]) has one output vector per stored row. A tied unembedding must not change,
 * so the original embedding is written as the family's unembedding and the config is untied. Changed tensors are written as float32 (computed in double), the others byte for byte.
 */
public final class WeightOrthogonalizer {

    /** How one tensor changes. */
    enum Edit {
        /** Each stored row is a vector in residual space: row ← row − (row·r̂)r̂. */
        ROWS,
        /** An nn.Linear [d_model, in] writing to the residual: W ← W − r̂(r̂ᵀW). */
        OUT_LINEAR,
        /** A bias in residual space. */
        VECTOR
    }

    /** What was written: the tensors changed and whether the unembedding had to be untied. */
    public record Summary(Path out, List<String> changed, boolean untied, int copied) {
    }

    private WeightOrthogonalizer() {
    }

    public static Summary orthogonalize(Path srcDir, float[] direction, Path outDir, Map<String, Object> provenance) {
        ModelConfig cfg = ModelConfig.read(srcDir.resolve("config.json"));
        ModelFamily family = ModelFamilies.forConfig(cfg);
        if (srcDir.toAbsolutePath().normalize().equals(outDir.toAbsolutePath().normalize())) {
            throw new JlensException("--out " + outDir + " is the model's own folder; write the orthogonalised copy elsewhere");
        }
        double[] r = unit(direction);
        try (TensorSource src = Checkpoints.open(srcDir)) {
            // The family says which tensors write to the residual stream; nothing here knows their names.
            List<TensorSpec> tensors = family.tensors(cfg, src);
            if (tensors.stream().noneMatch(t -> t.role() == TensorRole.UNEMBED || t.role() == TensorRole.FINAL_NORM)) {
                throw new JlensException(cfg.file() + ": weight orthogonalisation needs a causal language model; family "
                        + family.name() + " is an encoder. Ablate at run time instead (jlens steer --mode ablate)");
            }
            // A post-norm (Gemma 2/3, OLMo-2) turns a branch's output x into g ⊙ x / rms(x) before the residual add.
            // Projecting r̂ out of the output and down projections leaves a component along r̂ after the g scaling; projecting
            // g ⊙ r̂ out instead does give an output ⊥ r̂, but rms(x) changes with it, so the checkpoint would not
            // equal run-time ablation (which removes r̂ after the norm). Refuse rather than write a model that is
            // neither.
            TensorSpec postNorm = tensors.stream().filter(t -> t.role() == TensorRole.POST_ATTN_NORM
                    || t.role() == TensorRole.POST_MLP_NORM).findFirst().orElse(null);
            if (postNorm != null) {
                throw new JlensException(cfg.file() + ": weight orthogonalisation needs every block to write its "
                        + "output straight into the residual stream; family " + family.name() + " normalises each branch "
                        + "first (" + postNorm.name() + "), which rescales the output per dimension, so no edit of the "
                        + "projections before it equals ablating the direction. Ablate at run time instead "
                        + "(jlens steer --mode ablate, or the library's Intervention.ablate)");
            }
            boolean tied = tensors.stream().noneMatch(t -> t.role() == TensorRole.UNEMBED);
            String embedName = null;
            Map<String, Edit> edits = new LinkedHashMap<>();
            for (TensorSpec t : tensors) {
                if (!t.role().writesResidual()) continue;
                if (t.role() == TensorRole.EMBED) embedName = t.name();
                // Embedding rows and Conv1D rows ([in, out]) are vectors in residual space; nn.Linear [d, in] writes columns.
                Edit edit = t.bias() ? Edit.VECTOR : t.role().isEmbedding() || t.transposed() ? Edit.ROWS : Edit.OUT_LINEAR;
                edits.put(t.name(), edit);
            }
            for (String n : edits.keySet()) {
                TensorEntry e = src.find(n);
                if (e == null) throw new JlensException(src.describe() + ": missing tensor \"" + n + "\" (" + family.name() + " layout)");
                long width = edits.get(n) == Edit.OUT_LINEAR ? e.shape()[0] : e.shape()[e.rank() - 1];
                if (width != r.length || !e.dtype().isFloat()) {
                    throw new JlensException(src.describe() + ": tensor \"" + n + "\" has shape " + e.shapeString() + " "
                            + e.dtype() + "; the direction has " + r.length + " dimensions (d_model)");
                }
            }
            try {
                Files.createDirectories(outDir);
            } catch (IOException e) {
                throw new JlensException(outDir + ": cannot create the output folder: " + e.getMessage(), e);
            }
            SafetensorsWriter w = new SafetensorsWriter().putMetadata("format", "pt");
            List<String> names = new ArrayList<>(src.names());
            names.sort(null);
            int copied = 0;
            String unembedName = unembedName(family, cfg, embedName);
            if (tied) names.remove(unembedName);   // a stale copy; HF uses the embedding when tied
            for (String n : names) {
                TensorEntry e = src.find(n);
                Edit edit = edits.get(n);
                if (edit == null) {
                    w.putStreamed(n, e.dtype(), e.shape(), out -> copyBytes(e.data(), out));
                    copied++;
                } else {
                    w.putStreamed(n, DType.F32, e.shape(), out -> writeEdited(e, edit, r, out));
                }
            }
            if (tied) {
                TensorEntry emb = src.find(embedName);
                w.putStreamed(unembedName, emb.dtype(), emb.shape(), out -> copyBytes(emb.data(), out));
            }
            w.write(outDir.resolve("model.safetensors"));
            writeConfig(srcDir, outDir, tied);
            copyTokenizerFiles(srcDir, outDir);
            writeProvenance(outDir, provenance, edits.keySet(), tied);
            return new Summary(outDir, List.copyOf(edits.keySet()), tied, copied);
        }
    }

    /** The name an untied unembedding has in this family: what its tensor list says once tie_word_embeddings is false. */
    private static String unembedName(ModelFamily family, ModelConfig cfg, String embedName) {
        com.fasterxml.jackson.databind.node.ObjectNode untied = cfg.json().deepCopy();
        untied.put("tie_word_embeddings", false);
        for (TensorSpec t : family.tensors(new ModelConfig(cfg.file(), untied), null)) {
            if (t.role() == TensorRole.UNEMBED) return t.name();
        }
        throw new JlensException(cfg.file() + ": family " + family.name() + " has no unembedding to untie " + embedName + " into");
    }

    private static double[] unit(float[] direction) {
        double n = 0;
        for (float v : direction) n += (double) v * v;
        n = Math.sqrt(n);
        if (!(n > 0) || !Double.isFinite(n)) throw new JlensException("the direction is a zero (or non-finite) vector");
        double[] r = new double[direction.length];
        for (int i = 0; i < r.length; i++) r[i] = direction[i] / n;
        return r;
    }

    private static void copyBytes(MemorySegment data, OutputStream out) throws IOException {
        long size = data.byteSize();
        int chunk = 1 << 20;
        for (long off = 0; off < size; off += chunk) {
            out.write(data.asSlice(off, Math.min(chunk, size - off)).toArray(ValueLayout.JAVA_BYTE));
        }
    }

    /** Streams the edited tensor as little-endian float32, one stored row at a time. */
    static void writeEdited(TensorEntry e, Edit edit, double[] r, OutputStream out) throws IOException {
        int d = r.length;
        long rows = e.rank() == 1 ? 1 : e.shape()[0];
        int cols = e.rank() == 1 ? (int) e.shape()[0] : (int) e.shape()[1];
        double[] u = null;
        if (edit == Edit.OUT_LINEAR) {
            // u = r̂ᵀW, one pass over the rows; then row i of the result is W[i,:] − r_i·u.
            u = new double[cols];
            for (int i = 0; i < d; i++) {
                for (int j = 0; j < cols; j++) u[j] += r[i] * e.getFloat((long) i * cols + j);
            }
        }
        ByteBuffer buf = ByteBuffer.allocate(cols * 4).order(ByteOrder.LITTLE_ENDIAN);
        double[] row = new double[cols];
        for (long i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) row[j] = e.getFloat(i * cols + j);
            if (edit == Edit.OUT_LINEAR) {
                for (int j = 0; j < cols; j++) row[j] -= r[(int) i] * u[j];
            } else {
                double p = 0;
                for (int j = 0; j < cols; j++) p += row[j] * r[j];
                for (int j = 0; j < cols; j++) row[j] -= p * r[j];
            }
            buf.clear();
            for (int j = 0; j < cols; j++) buf.putFloat((float) row[j]);
            out.write(buf.array(), 0, cols * 4);
        }
    }

    private static void writeConfig(Path srcDir, Path outDir, boolean untie) {
        Path src = srcDir.resolve("config.json");
        try {
            if (!untie) {
                AtomicFiles.writeString(outDir.resolve("config.json"), Files.readString(src));
                return;
            }
            ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode root = (ObjectNode) om.readTree(Files.readString(src));
            root.put("tie_word_embeddings", false);
            AtomicFiles.writeString(outDir.resolve("config.json"), om.writeValueAsString(root) + "\n");
        } catch (IOException e) {
            throw new JlensException(src + ": cannot copy: " + e.getMessage(), e);
        }
    }

    /** The tokenizer and generation files HF loads next to the weights; weights and anything else stay behind. */
    private static void copyTokenizerFiles(Path srcDir, Path outDir) {
        try (var files = Files.list(srcDir)) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                boolean wanted = n.startsWith("tokenizer") || n.equals("special_tokens_map.json")
                        || n.equals("generation_config.json") || n.equals("added_tokens.json") || n.startsWith("vocab.")
                        || n.equals("merges.txt") || n.startsWith("chat_template");
                if (wanted && Files.isRegularFile(f)) {
                    Files.copy(f, outDir.resolve(n), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
                }
            }
        } catch (IOException e) {
            throw new JlensException(srcDir + ": cannot copy the tokenizer files: " + e.getMessage(), e);
        }
    }

    private static void writeProvenance(Path outDir, Map<String, Object> provenance, java.util.Collection<String> changed,
                                        boolean untied) {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = om.createObjectNode();
        root.put("what", "jlens orthogonalize: r̂ projected out of every matrix and bias writing to the residual stream");
        if (provenance != null) provenance.forEach((k, v) -> root.set(k, om.valueToTree(v)));
        root.put("untied_unembedding", untied);
        var arr = root.putArray("changed_tensors");
        changed.forEach(arr::add);
        try {
            AtomicFiles.writeString(outDir.resolve("orthogonalization.json"), om.writeValueAsString(root) + "\n");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
