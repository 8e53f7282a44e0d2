package dev.jlens.load;

import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Turns a {@code --model} argument into a folder: an existing path, or {@code ORG/NAME} looked up in the
 * Hugging Face hub cache ({@code $HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else
 * {@code ~/.cache/huggingface/hub}) as {@code models--ORG--NAME/snapshots/<commit>}, where a revision is a
 * branch or tag name in {@code refs/} (Pythia's {@code step143000}) or a commit hash.
 */
public final class ModelResolver {

    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    private final java.util.Map<String, String> env;
    private final Path home;

    public ModelResolver(java.util.Map<String, String> env, Path home) {
        this.env = env;
        this.home = home;
    }

    public static ModelResolver fromSystem() {
        return new ModelResolver(System.getenv(), Path.of(System.getProperty("user.home")));
    }

    public Path hubCache() {
        String c = env.get("HF_HUB_CACHE");
        if (c != null && !c.isBlank()) return Path.of(c);
        String h = env.get("HF_HOME");
        if (h != null && !h.isBlank()) return Path.of(h).resolve("hub");
        return home.resolve(".cache").resolve("huggingface").resolve("hub");
    }

    public ModelLocation resolve(String model, String revision) {
        Path p = Path.of(model);
        if (Files.isDirectory(p)) {
            if (revision != null) {
                throw new JlensException("--revision " + revision + " was given, but --model " + model
                        + " is a plain folder; revisions apply to ORG/NAME models in the Hugging Face cache");
            }
            return new ModelLocation(model, null, p.toAbsolutePath().normalize(), false);
        }
        if (REPO_ID.matcher(model).matches() && !Files.exists(p)) {
            return resolveCached(model, revision == null ? "main" : revision);
        }
        throw new JlensException("--model " + model + ": no such folder. Give a model folder (with config.json, "
                + "tokenizer.json and weights), an ORG/NAME already in the Hugging Face cache (" + hubCache()
                + "), or omit --model to use the embedded default (minilm).");
    }

    private ModelLocation resolveCached(String repoId, String revision) {
        Path repo = hubCache().resolve("models--" + repoId.replace("/", "--"));
        if (!Files.isDirectory(repo)) {
            throw new JlensException("--model " + repoId + ": not in the Hugging Face cache (looked for " + repo
                    + "). Download it with huggingface-cli on a machine with network access, copy the cache, or set "
                    + "HF_HOME/HF_HUB_CACHE to where it is.");
        }
        String commit = revision;
        Path ref = repo.resolve("refs").resolve(revision);
        if (!COMMIT.matcher(revision).matches()) {
            if (!Files.isRegularFile(ref)) {
                throw new JlensException("--revision " + revision + ": " + repoId + " has no such branch or tag in "
                        + repo.resolve("refs") + " (known: " + String.join(", ", listRefs(repo)) + ")");
            }
            try {
                commit = Files.readString(ref).trim();
            } catch (IOException e) {
                throw new JlensException(ref + ": cannot read: " + e.getMessage(), e);
            }
        }
        Path snap = repo.resolve("snapshots").resolve(commit);
        if (!Files.isDirectory(snap)) {
            throw new JlensException("--revision " + revision + ": snapshot " + snap + " is missing from the cache");
        }
        return new ModelLocation(repoId, revision, snap, false);
    }

    private static List<String> listRefs(Path repo) {
        Path refs = repo.resolve("refs");
        List<String> out = new ArrayList<>();
        if (!Files.isDirectory(refs)) return out;
        try (Stream<Path> s = Files.walk(refs)) {
            s.filter(Files::isRegularFile).forEach(f -> out.add(refs.relativize(f).toString()));
        } catch (IOException ignored) {
            // listing is only a hint in an error message
        }
        return out;
    }
}
