package dev.jlens.load;

import dev.jlens.JlensException;
import dev.jlens.hub.DownloadProgress;
import dev.jlens.hub.HubCache;
import dev.jlens.hub.HubClient;
import dev.jlens.hub.HubSettings;
import dev.jlens.model.ModelLocation;

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
 * branch or tag name in {@code refs/} (Pythia's {@code step143000}) or a commit hash. A complete snapshot is used
 * without any network access; one that is missing or incomplete is downloaded from the hub ({@link HubClient})
 * unless {@code HF_HUB_OFFLINE} is set.
 */
public final class ModelResolver {

    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final Pattern COMMIT = Pattern.compile("[0-9a-f]{40}");

    private final java.util.Map<String, String> env;
    private final Path home;
    private final DownloadProgress progress;

    public ModelResolver(java.util.Map<String, String> env, Path home) {
        this(env, home, DownloadProgress.NONE);
    }

    public ModelResolver(java.util.Map<String, String> env, Path home, DownloadProgress progress) {
        this.env = env;
        this.home = home;
        this.progress = progress;
    }

    public static ModelResolver fromSystem() {
        return new ModelResolver(System.getenv(), Path.of(System.getProperty("user.home")));
    }

    public Path hubCache() {
        return HubSettings.hubCache(env, home);
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
        String problem = cacheProblem(repo, repoId, revision);
        if (problem == null) {
            String commit = COMMIT.matcher(revision).matches() ? revision : new HubCache(hubCache(), repoId).readRef(revision);
            return new ModelLocation(repoId, revision, repo.resolve("snapshots").resolve(commit), false);
        }
        HubSettings hub = HubSettings.fromEnv(env, home);
        if (hub.offline()) {
            throw new JlensException(problem + " HF_HUB_OFFLINE is set, so jlens did not try to download it: unset "
                    + "HF_HUB_OFFLINE, or copy the model into the cache (or set HF_HOME/HF_HUB_CACHE to where it is).");
        }
        try (HubClient client = new HubClient(hub)) {
            return new ModelLocation(repoId, revision, client.download(repoId, revision, progress), false);
        }
    }

    /** Why the cache cannot serve this revision as it is, or null when its snapshot is complete. */
    private String cacheProblem(Path repo, String repoId, String revision) {
        if (!Files.isDirectory(repo)) {
            return "--model " + repoId + ": not in the Hugging Face cache (looked for " + repo + ").";
        }
        String commit = revision;
        if (!COMMIT.matcher(revision).matches()) {
            commit = new HubCache(hubCache(), repoId).readRef(revision);
            if (commit == null) {
                return "--revision " + revision + ": " + repoId + " has no such branch or tag in "
                        + repo.resolve("refs") + " (known: " + String.join(", ", listRefs(repo)) + ").";
            }
            if (!COMMIT.matcher(commit).matches()) {
                return repo.resolve("refs").resolve(revision) + ": holds '" + commit + "', not a 40-hex-digit commit hash.";
            }
        }
        Path snap = repo.resolve("snapshots").resolve(commit);
        if (!Files.isDirectory(snap)) {
            return "--revision " + revision + ": snapshot " + snap + " is missing from the cache.";
        }
        List<String> missing = HubCache.missingFiles(snap);
        if (!missing.isEmpty()) {
            return "--revision " + revision + ": snapshot " + snap + " lacks " + String.join(", ", missing) + ".";
        }
        return null;
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
