package dev.jlens.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * One repository's folder in the standard Hugging Face cache, laid out as Python's huggingface_hub lays it out so
 * either program can read what the other wrote:
 * <pre>
 * models--ORG--NAME/blobs/&lt;etag&gt;                     file contents, named by git-sha1 or (LFS) sha256
 * models--ORG--NAME/blobs/&lt;etag&gt;.incomplete          a download in progress (resumable by either program)
 * models--ORG--NAME/snapshots/&lt;commit&gt;/&lt;file&gt;        relative symlink to ../../blobs/&lt;etag&gt;
 * models--ORG--NAME/refs/&lt;branch or tag&gt;             the commit hash it points at (no newline)
 * .locks/models--ORG--NAME/&lt;etag&gt;.lock                held while one process downloads that blob
 * </pre>
 */
public record HubCache(Path cache, String repoId) {

    static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");
    /** A blob name must be one plain path segment: the hub sends hex hashes; anything else is refused. */
    private static final Pattern BLOB_NAME = Pattern.compile("[A-Za-z0-9_=+-][A-Za-z0-9._=+-]{0,127}");
    private static final ObjectMapper JSON = new ObjectMapper();

    public static String folderName(String repoId) {
        return "models--" + repoId.replace("/", "--");
    }

    public Path repoDir() {
        return cache.resolve(folderName(repoId));
    }

    Path blob(String etag) {
        return repoDir().resolve("blobs").resolve(checkBlobName(etag));
    }

    Path incomplete(String etag) {
        return repoDir().resolve("blobs").resolve(checkBlobName(etag) + ".incomplete");
    }

    Path lockFile(String etag) {
        return cache.resolve(".locks").resolve(folderName(repoId)).resolve(checkBlobName(etag) + ".lock");
    }

    public Path snapshot(String commit) {
        if (!COMMIT.matcher(commit).matches()) {
            throw new JlensException(repoId + ": '" + commit + "' is not a 40-hex-digit commit hash");
        }
        return repoDir().resolve("snapshots").resolve(commit);
    }

    Path pointer(String commit, String file) {
        return snapshot(commit).resolve(checkRepoPath(file, "file name"));
    }

    Path ref(String revision) {
        return repoDir().resolve("refs").resolve(checkRepoPath(revision, "revision"));
    }

    /** The commit a branch or tag points at in {@code refs/}, or null when this cache has no such ref. */
    public String readRef(String revision) {
        Path ref = ref(revision);
        if (!Files.isRegularFile(ref)) return null;
        try {
            return Files.readString(ref).trim();
        } catch (IOException e) {
            throw new JlensException(ref + ": cannot read: " + e.getMessage(), e);
        }
    }

    /** Records that {@code revision} now means {@code commit}; a commit hash needs no ref, as in huggingface_hub. */
    void writeRef(String revision, String commit) {
        if (revision.equals(commit)) return;
        if (commit.equals(readRef(revision))) return;
        AtomicFiles.writeString(ref(revision), commit);
    }

    /**
     * Points {@code pointer} at {@code blob} with a relative link ({@code ../../blobs/<etag>}, deeper for files in
     * sub-folders), so the cache still works after it is moved. The link is made under a temporary name and renamed
     * over the old one, so a reader never sees the name missing. Where links are not allowed (some Windows set-ups)
     * the blob is copied, as huggingface_hub does.
     */
    void link(Path blob, Path pointer) {
        Path dir = pointer.getParent();
        Path tmp = dir.resolve("." + pointer.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            Files.createDirectories(dir);
            try {
                Files.createSymbolicLink(tmp, dir.relativize(blob));
            } catch (UnsupportedOperationException | FileSystemException e) {
                Files.copy(blob, tmp, StandardCopyOption.REPLACE_EXISTING);
            }
            AtomicFiles.commit(tmp, pointer);
        } catch (IOException e) {
            try {
                Files.deleteIfExists(tmp);
            } catch (IOException ignored) {
                // the original error is the one worth reporting
            }
            throw new JlensException("cannot create " + pointer + " -> " + blob + ": " + e.getMessage()
                    + " (is the cache folder writable?)", e);
        }
    }

    /**
     * What a snapshot folder lacks before jlens can load it: config.json, tokenizer.json and a complete set of
     * weights (model.safetensors, or an index and every shard it names, or the pytorch_model.bin equivalents).
     * A link whose blob is gone counts as missing. Empty means the snapshot is complete.
     */
    public static List<String> missingFiles(Path snapshot) {
        List<String> missing = new ArrayList<>();
        for (String f : List.of("config.json", "tokenizer.json")) {
            if (!Files.isRegularFile(snapshot.resolve(f))) missing.add(f);
        }
        List<String> weights = missingWeights(snapshot);
        if (weights != null) missing.addAll(weights);
        return missing;
    }

    /** Null when some preferred weights format is complete, else what the first format found still lacks. */
    private static List<String> missingWeights(Path snapshot) {
        for (String single : List.of(HubFiles.SAFETENSORS, HubFiles.BIN)) {
            if (Files.isRegularFile(snapshot.resolve(single))) return null;
        }
        for (String index : List.of(HubFiles.SAFETENSORS_INDEX, HubFiles.BIN_INDEX)) {
            Path idx = snapshot.resolve(index);
            if (!Files.isRegularFile(idx)) continue;
            List<String> lacking = new ArrayList<>();
            for (String shard : shardsOf(idx)) {
                if (!Files.isRegularFile(snapshot.resolve(shard))) lacking.add(shard);
            }
            return lacking.isEmpty() ? null : lacking;
        }
        return List.of(HubFiles.SAFETENSORS + " (or a sharded index, or " + HubFiles.BIN + ")");
    }

    /** The shard file names an index's {@code weight_map} points to, each checked to be a plain relative path. */
    static List<String> shardsOf(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(index.toFile());
        } catch (IOException e) {
            throw new JlensException(index + ": not valid JSON (" + e.getMessage() + "); expected a weights index "
                    + "with a \"weight_map\" object", e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw new JlensException(index + ": field \"weight_map\" missing or empty; expected an object from "
                    + "tensor names to shard file names");
        }
        TreeSet<String> shards = new TreeSet<>();
        for (JsonNode v : map) {
            if (!v.isTextual()) {
                throw new JlensException(index + ": field \"weight_map\" has a non-string shard name " + v);
            }
            shards.add(checkRepoPath(v.asText(), "shard name in " + index.getFileName()));
        }
        return List.copyOf(shards);
    }

    /**
     * A name from the hub or the user that becomes part of a local path: it must be relative and stay inside its
     * folder, so a hostile server or index cannot make jlens write outside the cache.
     */
    static String checkRepoPath(String name, String what) {
        boolean ok = name != null && !name.isEmpty() && name.length() <= 1024 && !name.startsWith("/")
                && name.indexOf('\\') < 0 && name.indexOf('\0') < 0 && name.indexOf(':') < 0;
        if (ok) {
            for (String seg : name.split("/", -1)) {
                if (seg.isEmpty() || seg.equals(".") || seg.equals("..")) {
                    ok = false;
                    break;
                }
            }
        }
        if (!ok) {
            throw new JlensException(what + " '" + name + "' is not a plain relative path (no leading '/', no '..', "
                    + "no empty parts, no '\\' or ':'); refusing to use it in the cache");
        }
        return name;
    }

    static String checkBlobName(String etag) {
        if (etag == null || !BLOB_NAME.matcher(etag).matches()) {
            throw new JlensException("the hub sent the ETag '" + etag + "', which is not a plain hash; refusing to "
                    + "use it as a file name in the cache");
        }
        return etag;
    }
}
