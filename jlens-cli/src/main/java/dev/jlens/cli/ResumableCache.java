package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import dev.jlens.tensor.FloatTensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.IntFunction;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * Runs the forward passes of a cache in batches and saves each batch as its own safetensors file under
 * {@code OUT/.jlens-partial/}, so a run killed half-way starts again where it stopped. Batches are
 * independent (packed sequences, deterministic kernels), so a resumed run is bit-identical to an
 * uninterrupted one. At the end the batches are merged into {@code activations.safetensors} and the partial
 * folder is removed.
 */
final class ResumableCache {

    static final String PARTIAL = ".jlens-partial";

    private ResumableCache() {
    }

    /**
     * @param fingerprint everything that determines the numbers (model, revision, prompts hash, hooks,
     *                    pooling, batch size, logits): a partial run made with other arguments is refused
     * @return the merged activations file (open it with {@link SafetensorsFile#open})
     */
    static Path run(Path out, String fingerprint, HookedModel m, List<int[]> ids, HookPattern pattern,
                    Supplier<ActivationCache> newCache, List<String> hooks, int batchSize, boolean logits,
                    ProgressListener progress) {
        return run(out, fingerprint, m, ids, pattern, from -> newCache.get(), hooks, batchSize, logits, progress);
    }

    /** As above; {@code newCacheAt} gets the index of the batch's first prompt (for per-prompt settings). */
    static Path run(Path out, String fingerprint, HookedModel m, List<int[]> ids, HookPattern pattern,
                    IntFunction<ActivationCache> newCacheAt, List<String> hooks, int batchSize, boolean logits,
                    ProgressListener progress) {
        Path partial = out.resolve(PARTIAL);
        Path state = partial.resolve("run.json");
        ObjectMapper om = new ObjectMapper();
        try {
            if (Files.isRegularFile(state)) {
                JsonNode s = om.readTree(state.toFile());
                if (!fingerprint.equals(s.path("fingerprint").asText())) {
                    throw new JlensException(out + " holds an unfinished run made with other arguments (" + state
                            + "); use the same arguments to resume it, --force to discard it, or another --out");
                }
            } else {
                Files.createDirectories(partial);
                AtomicFiles.writeString(state, om.createObjectNode().put("fingerprint", fingerprint)
                        .put("prompts", ids.size()).put("batch_size", batchSize).toString());
            }
        } catch (IOException e) {
            throw new JlensException("cannot use " + partial + ": " + e.getMessage()
                    + " (is the folder writable and is there space left on the disk?)", e);
        }
        int nBatches = (ids.size() + batchSize - 1) / batchSize;
        int resumed = 0;
        for (int b = 0; b < nBatches; b++) {
            Path file = batchFile(partial, b);
            int from = b * batchSize, to = Math.min(ids.size(), from + batchSize);
            if (Files.isRegularFile(file)) {
                resumed++;
            } else {
                ActivationCache cache = newCacheAt.apply(from);
                m.runWithCache(ids.subList(from, to), CacheRequest.of(pattern).into(cache).batchSize(batchSize).logits(logits));
                writeBatch(file, cache, hooks, ids, from, to);
            }
            progress.progress(to, ids.size());
        }
        if (resumed > 0) System.err.printf("resumed: %d of %d batches were already done%n", resumed, nBatches);
        Path merged = out.resolve("activations.safetensors");
        merge(partial, nBatches, hooks, merged);
        return merged;
    }

    /** Deletes an unfinished run's batches. */
    static void discard(Path out) {
        Path partial = out.resolve(PARTIAL);
        if (!Files.isDirectory(partial)) return;
        try (Stream<Path> s = Files.walk(partial)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new JlensException("cannot delete " + partial + ": " + e.getMessage(), e);
        }
    }

    private static Path batchFile(Path partial, int b) {
        return partial.resolve(String.format("batch-%06d.safetensors", b));
    }

    private static void writeBatch(Path file, ActivationCache cache, List<String> hooks, List<int[]> ids, int from, int to) {
        SafetensorsWriter w = new SafetensorsWriter();
        if (cache.pooling() == dev.jlens.hooks.Pooling.ALL) {
            for (int i = from; i < to; i++) {
                long[] li = new long[ids.get(i).length];
                for (int t = 0; t < li.length; t++) li[t] = ids.get(i)[t];
                w.putI64("p" + i + ".input_ids", li, li.length);
                for (String h : hooks) put(w, "p" + i + "." + h, cache.perPrompt(h).get(i - from));
                if (cache.has("logits")) put(w, "p" + i + ".logits", cache.perPrompt("logits").get(i - from));
            }
        } else {
            for (String h : hooks) put(w, h, cache.pooled(h));
        }
        w.write(file);
    }

    private static void put(SafetensorsWriter w, String name, FloatTensor t) {
        int[] s = t.shape();
        long[] shape = new long[s.length];
        for (int i = 0; i < s.length; i++) shape[i] = s[i];
        w.putF32(name, t.data(), shape);
    }

    /** Concatenates pooled rows batch after batch; per-prompt tensors are copied as they are. */
    private static void merge(Path partial, int nBatches, List<String> hooks, Path target) {
        List<SafetensorsFile> files = new ArrayList<>();
        for (int b = 0; b < nBatches; b++) files.add(SafetensorsFile.open(batchFile(partial, b)));
        SafetensorsWriter w = new SafetensorsWriter();
        w.putMetadata("format", "jlens-activations");
        boolean pooled = files.get(0).contains(hooks.get(0));
        if (pooled) {
            for (String h : hooks) {
                int rows = 0, d = -1;
                for (SafetensorsFile f : files) {
                    TensorEntry e = f.require(h);
                    rows += (int) e.shape()[0];
                    d = (int) e.shape()[1];
                }
                float[] all = new float[rows * d];
                int at = 0;
                for (SafetensorsFile f : files) {
                    float[] part = f.require(h).toFloatArray();
                    System.arraycopy(part, 0, all, at, part.length);
                    at += part.length;
                }
                w.putF32(h, all, rows, d);
            }
        } else {
            for (SafetensorsFile f : files) {
                for (String name : f.names()) {
                    TensorEntry e = f.find(name);
                    if (e.dtype() == dev.jlens.io.DType.I64) w.putI64(name, e.toLongArray(), e.shape());
                    else w.putF32(name, e.toFloatArray(), e.shape());
                }
            }
        }
        w.write(target);
    }
}
