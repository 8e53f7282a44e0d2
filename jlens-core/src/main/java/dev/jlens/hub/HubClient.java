package dev.jlens.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Downloads the files jlens needs from a Hugging Face Hub ({@code HF_ENDPOINT}) into the standard cache, the way
 * Python's {@code snapshot_download} does: list the revision ({@code GET /api/models/REPO/revision/REV} gives the
 * commit and the file names), then for each needed file {@code HEAD /REPO/resolve/COMMIT/FILE} for its ETag
 * (sha256 for LFS files, from {@code X-Linked-Etag}), size and download location (a 302 to a CDN for LFS files),
 * and fetch it into {@code blobs/<etag>} with a relative link from {@code snapshots/<commit>/FILE}; at the end
 * {@code refs/REV} records the commit. Files already in the cache are not asked for again.
 *
 * <p>Written on the JDK's HttpClient rather than a hub library because no maintained Java client implements the
 * hub's cache layout; using the layout is what lets jlens and Python share one cache.
 */
public final class HubClient implements AutoCloseable {

    /**
     * @param maxAttempts    consecutive tries without progress before a request or download gives up
     * @param firstRetryWait the pause before the first retry; it doubles up to 16 times this
     * @param connectTimeout how long to wait for a connection
     * @param requestTimeout how long to wait for a metadata answer's headers
     * @param stallTimeout   how long a download may receive nothing before the connection is dropped and resumed
     */
    public record Options(int maxAttempts, Duration firstRetryWait, Duration connectTimeout, Duration requestTimeout,
                          Duration stallTimeout) {
        public static final Options DEFAULTS = new Options(5, Duration.ofSeconds(1), Duration.ofSeconds(10),
                Duration.ofSeconds(30), Duration.ofSeconds(60));

        public Options {
            if (maxAttempts < 1) throw new IllegalArgumentException("maxAttempts must be at least 1");
            Objects.requireNonNull(firstRetryWait);
            Objects.requireNonNull(connectTimeout);
            Objects.requireNonNull(requestTimeout);
            Objects.requireNonNull(stallTimeout);
        }
    }

    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*");
    private static final ObjectMapper JSON = new ObjectMapper();
    /** A revision listing of even the largest repository is a few megabytes; more is not a hub answer. */
    private static final int MAX_JSON = 64 << 20;
    private static final int MAX_REDIRECTS = 10;
    private static final String USER_AGENT = "jlens/0.1; java/" + Runtime.version().feature();

    private final HubSettings settings;
    private final Options options;
    private final HttpClient http;

    public HubClient(HubSettings settings) {
        this(settings, Options.DEFAULTS);
    }

    public HubClient(HubSettings settings, Options options) {
        this.settings = Objects.requireNonNull(settings);
        this.options = Objects.requireNonNull(options);
        // Redirects are followed by hand: a HEAD must stop at the CDN redirect to read its X-Linked-* headers,
        // and the token must be dropped when a redirect leaves the hub's origin.
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .followRedirects(HttpClient.Redirect.NEVER).connectTimeout(options.connectTimeout()).build();
    }

    public HubSettings settings() {
        return settings;
    }

    /**
     * Makes sure {@code repoId} at {@code revision} (a branch, tag or commit; null means {@code main}) has
     * config.json, tokenizer.json, the optional tokenizer/generation configs and one format of weights in the
     * cache, downloading what is missing, and returns its snapshot folder.
     */
    public Path download(String repoId, String revision, DownloadProgress progress) {
        String rev = revision == null ? "main" : revision;
        if (repoId == null || !REPO_ID.matcher(repoId).matches() || repoId.contains("..")) {
            throw new JlensException("--model " + repoId + ": not a Hugging Face repository id; expected ORG/NAME");
        }
        HubCache.checkRepoPath(rev, "--revision");
        if (settings.offline()) {
            throw new JlensException(repoId + " at revision " + rev + " is not complete in the Hugging Face cache ("
                    + settings.cache() + ") and HF_HUB_OFFLINE is set, so jlens does not download it. Unset "
                    + "HF_HUB_OFFLINE to download, or copy the model into the cache.");
        }
        DownloadProgress p = progress == null ? DownloadProgress.NONE : progress;
        HubCache cache = new HubCache(settings.cache(), repoId);
        Listing listing = listing(repoId, rev);
        HubFiles.Plan plan = HubFiles.plan(repoId, rev, listing.files());
        for (String f : plan.files()) fetch(cache, repoId, rev, listing.commit(), f, p);
        if (plan.index() != null) {
            List<String> shards = HubFiles.shards(repoId, rev, plan.index(),
                    HubCache.shardsOf(cache.pointer(listing.commit(), plan.index())), listing.files());
            for (String s : shards) fetch(cache, repoId, rev, listing.commit(), s, p);
        }
        cache.writeRef(rev, listing.commit());
        return cache.snapshot(listing.commit());
    }

    @Override
    public void close() {
        http.close();
    }

    // ---- listing -------------------------------------------------------------------------------------------

    private record Listing(String commit, Set<String> files) {
    }

    private Listing listing(String repoId, String rev) {
        URI uri = URI.create(settings.endpoint() + "/api/models/" + repoId + "/revision/" + encode(rev, false));
        String ctx = repoId + " at revision " + rev;
        HttpResponse<InputStream> r = getFollowing(uri, ctx);
        JsonNode root;
        try (InputStream in = r.body()) {
            byte[] body = in.readNBytes(MAX_JSON + 1);
            if (body.length > MAX_JSON) throw new IOException("answer larger than " + MAX_JSON + " bytes");
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw new JlensException(ctx + ": the hub's file listing " + uri + " is not valid JSON (" + e.getMessage()
                    + "); is HF_ENDPOINT (" + settings.endpoint() + ") a Hugging Face Hub?", e);
        }
        JsonNode sha = root == null ? null : root.get("sha");
        if (sha == null || !sha.isTextual() || !HubCache.COMMIT.matcher(sha.asText()).matches()) {
            throw new JlensException(ctx + ": the hub's listing " + uri + " has no field \"sha\" with a 40-hex-digit "
                    + "commit hash (got " + sha + ")");
        }
        JsonNode siblings = root.get("siblings");
        if (siblings == null || !siblings.isArray()) {
            throw new JlensException(ctx + ": the hub's listing " + uri + " has no \"siblings\" array of files");
        }
        Set<String> files = new LinkedHashSet<>();
        for (JsonNode s : siblings) {
            JsonNode name = s.get("rfilename");
            if (name != null && name.isTextual()) files.add(name.asText());
        }
        return new Listing(sha.asText(), files);
    }

    // ---- one file --------------------------------------------------------------------------------------------

    private record FileMeta(String etag, long size, URI location) {
    }

    private void fetch(HubCache cache, String repoId, String rev, String commit, String file, DownloadProgress p) {
        Path pointer = cache.pointer(commit, file);
        if (Files.isRegularFile(pointer)) {
            long n = sizeOf(pointer);
            p.update(file, n, n);
            return;
        }
        String ctx = repoId + " at revision " + rev;
        URI resolve = URI.create(settings.endpoint() + "/" + repoId + "/resolve/" + commit + "/" + encode(file, true));
        FileMeta meta = head(resolve, ctx, file);
        Path blob = cache.blob(meta.etag());
        if (!usable(blob, meta.size())) {
            Path lock = cache.lockFile(meta.etag());
            try {
                Files.createDirectories(lock.getParent());
                try (FileChannel ch = FileChannel.open(lock, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
                     FileLock ignored = lock(ch, lock)) {
                    // Another process may have finished this blob while we waited for the lock.
                    if (!usable(blob, meta.size())) {
                        Files.deleteIfExists(blob);
                        // Python drops the token whenever the file comes from elsewhere (the CDN); so do we.
                        boolean token = meta.location().equals(resolve);
                        new BlobDownload(this, http, options, ctx, file, meta.location(), token, meta.etag(),
                                meta.size(), cache.incomplete(meta.etag()), p).run(blob);
                    }
                }
            } catch (IOException e) {
                throw new JlensException("cannot lock or write in " + cache.repoDir() + ": " + e.getMessage()
                        + " (is the Hugging Face cache writable?)", e);
            }
        }
        p.update(file, sizeOf(blob), sizeOf(blob));
        cache.link(blob, pointer);
    }

    /** A blob already on disk is trusted when its size matches, as huggingface_hub trusts it. */
    private static boolean usable(Path blob, long size) {
        return Files.isRegularFile(blob) && (size < 0 || sizeOf(blob) == size);
    }

    private FileMeta head(URI resolve, String ctx, String file) {
        URI uri = resolve;
        for (int hop = 0; ; hop++) {
            HttpResponse<Void> r = sendWithRetry(request(uri, true).method("HEAD", HttpRequest.BodyPublishers.noBody())
                    .build(), HttpResponse.BodyHandlers.discarding(), ctx + ", file " + file);
            int s = r.statusCode();
            HttpHeaders h = r.headers();
            URI location = uri;
            if (s >= 300 && s < 400) {
                String loc = h.firstValue("Location").orElse(null);
                if (loc == null) throw new JlensException(ctx + ": HTTP " + s + " for " + uri + " without a Location");
                URI next = resolveLocation(uri, loc);
                if (isRelative(loc)) {
                    // A renamed repository: the hub redirects within itself; huggingface_hub follows these.
                    if (hop >= MAX_REDIRECTS) throw new JlensException(ctx + ": too many redirects from " + resolve);
                    uri = next;
                    continue;
                }
                location = next;
            } else if (s != 200) {
                throw httpError(s, h, null, uri, file);
            }
            String etag = normalizeEtag(h.firstValue("X-Linked-Etag").orElse(h.firstValue("ETag").orElse(null)));
            if (etag == null) {
                throw new JlensException(ctx + ": the hub sent no ETag for " + file + " (" + uri + "); without it "
                        + "the download cannot be verified or cached. Is HF_ENDPOINT a Hugging Face Hub?");
            }
            long size = parseSize(h.firstValue("X-Linked-Size").orElse(h.firstValue("Content-Length").orElse(null)));
            return new FileMeta(HubCache.checkBlobName(etag), size, location);
        }
    }

    // ---- HTTP ------------------------------------------------------------------------------------------------

    HttpRequest.Builder request(URI uri, boolean token) {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri).timeout(options.requestTimeout())
                .header("User-Agent", USER_AGENT).header("Accept-Encoding", "identity");
        if (token && settings.token() != null && sameOrigin(uri, settings.endpoint())) {
            b.header("Authorization", "Bearer " + settings.token());
        }
        return b;
    }

    /** A GET that follows redirects (dropping the token when one leaves the hub's origin) and retries. */
    private HttpResponse<InputStream> getFollowing(URI start, String ctx) {
        URI uri = start;
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpResponse<InputStream> r = sendWithRetry(request(uri, true).GET().build(),
                    HttpResponse.BodyHandlers.ofInputStream(), ctx);
            int s = r.statusCode();
            if (s >= 300 && s < 400) {
                String loc = r.headers().firstValue("Location").orElse(null);
                closeQuietly(r.body());
                if (loc == null) throw new JlensException(ctx + ": HTTP " + s + " for " + uri + " without a Location");
                uri = resolveLocation(uri, loc);
                continue;
            }
            if (s != 200) {
                String snippet;
                try (InputStream in = r.body()) {
                    snippet = readSnippet(in);
                } catch (IOException e) {
                    snippet = null;
                }
                throw httpError(s, r.headers(), snippet, uri, null);
            }
            return r;
        }
        throw new JlensException(ctx + ": more than " + MAX_REDIRECTS + " redirects from " + start);
    }

    /** Retries dropped connections, timeouts, 429 and 5xx answers with a growing pause; other answers return. */
    private <T> HttpResponse<T> sendWithRetry(HttpRequest req, HttpResponse.BodyHandler<T> handler, String ctx) {
        String last = null;
        for (int attempt = 1; ; attempt++) {
            try {
                HttpResponse<T> r = send(req, handler);
                int s = r.statusCode();
                if (s != 429 && s < 500) return r;
                last = "HTTP " + s;
                if (r.body() instanceof InputStream in) closeQuietly(in);
                if (attempt >= options.maxAttempts()) {
                    throw httpError(s, r.headers(), null, req.uri(), null);
                }
            } catch (IOException e) {
                last = e.getMessage() == null ? e.toString() : e.getMessage();
                // No server answering at all will not change in a few seconds: say so at once (as
                // huggingface_hub does) rather than keep a user without network waiting.
                boolean unreachable = e instanceof java.net.ConnectException
                        || e instanceof java.net.http.HttpConnectTimeoutException;
                if (unreachable || attempt >= options.maxAttempts()) {
                    throw new JlensException(ctx + ": cannot reach the Hugging Face Hub at " + settings.endpoint()
                            + " (" + last + (attempt > 1 ? ", after " + attempt + " tries" : "") + "). Check the network connection, set "
                            + "HF_ENDPOINT for a mirror, or put the model in the cache (" + settings.cache()
                            + ") and set HF_HUB_OFFLINE=1.", e);
                }
            }
            pause(options.firstRetryWait().multipliedBy(1L << Math.min(attempt - 1, 4)));
        }
    }

    <T> HttpResponse<T> send(HttpRequest req, HttpResponse.BodyHandler<T> handler) throws IOException {
        try {
            return http.send(req, handler);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JlensException("download from " + req.uri().getHost() + " interrupted", e);
        }
    }

    void pause(Duration d) {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JlensException("download interrupted", e);
        }
    }

    /** Turns a failed answer into a message that says what to do; the hub explains itself in X-Error-Code. */
    JlensException httpError(int status, HttpHeaders h, String body, URI uri, String file) {
        String code = h.firstValue("X-Error-Code").orElse("");
        String server = h.firstValue("X-Error-Message").map(HubClient::clean).orElse(body == null ? "" : body);
        String repo = repoOf(uri);
        String rev = revisionOf(uri);
        String ctx = (repo == null ? uri.toString() : repo + " at revision " + rev) + (file == null ? "" : ", file " + file);
        String page = settings.endpoint() + (repo == null ? "" : "/" + repo);
        String tokens = settings.endpoint() + "/settings/tokens";
        String detail = server.isBlank() ? "" : " (hub: " + server + ")";
        return new JlensException(switch (status) {
            case 401 -> settings.token() == null
                    ? ctx + ": the hub answered 401 Unauthorized" + detail + ". The model is gated or private (or "
                    + "the name is wrong). Create an access token at " + tokens + ", set HF_TOKEN to it, and if the "
                    + "model is gated accept its terms on " + page + "."
                    : ctx + ": the hub answered 401 Unauthorized although HF_TOKEN is set" + detail + ": the token "
                    + "is invalid or expired, or the repository does not exist. Set HF_TOKEN to a valid token from "
                    + tokens + ".";
            case 403 -> code.equals("GatedRepo")
                    ? ctx + ": this is a gated model and the account behind HF_TOKEN has not been granted access"
                    + detail + ". Accept its terms on " + page + " and set HF_TOKEN to that account's token."
                    : ctx + ": the hub answered 403 Forbidden" + detail + ". Set HF_TOKEN to a token with read access "
                    + "to this repository (" + tokens + "); for a gated model also accept its terms on " + page + ".";
            case 404 -> switch (code) {
                case "RevisionNotFound" -> repo + ": revision '" + rev + "' does not exist on " + settings.endpoint()
                        + detail + ". Give --revision as a branch, a tag or a full commit hash of " + repo + ".";
                case "EntryNotFound" -> ctx + ": no such file in the repository" + detail + ".";
                default -> ctx + ": not found on " + settings.endpoint() + " (HTTP 404" + (code.isEmpty() ? "" : " "
                        + code) + ")" + detail + ". Check the ORG/NAME spelling and --revision; a private model "
                        + "also answers 404 unless HF_TOKEN holds a token that can see it.";
            };
            default -> ctx + ": the hub answered HTTP " + status + " for " + uri + detail + ".";
        });
    }

    // ---- small helpers ---------------------------------------------------------------------------------------

    /** {@code repo} and {@code revision} as they appear in our own resolve and listing URLs, for messages. */
    private String repoOf(URI uri) {
        String path = uri.getRawPath();
        String base = settings.endpoint().getRawPath() == null ? "" : settings.endpoint().getRawPath();
        if (!path.startsWith(base)) return null;
        String[] parts = path.substring(base.length()).split("/");
        // /api/models/ORG/NAME/revision/REV  or  /ORG/NAME/resolve/REV/FILE
        if (parts.length >= 6 && parts[1].equals("api") && parts[2].equals("models")) return parts[3] + "/" + parts[4];
        if (parts.length >= 5 && parts[3].equals("resolve")) return parts[1] + "/" + parts[2];
        return null;
    }

    private String revisionOf(URI uri) {
        String path = uri.getRawPath();
        String base = settings.endpoint().getRawPath() == null ? "" : settings.endpoint().getRawPath();
        if (!path.startsWith(base)) return null;
        String[] parts = path.substring(base.length()).split("/");
        String raw = null;
        if (parts.length >= 7 && parts[1].equals("api") && parts[5].equals("revision")) raw = parts[6];
        else if (parts.length >= 5 && parts[3].equals("resolve")) raw = parts[4];
        return raw == null ? null : java.net.URLDecoder.decode(raw.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    URI resolveLocation(URI base, String location) {
        try {
            URI next = base.resolve(new URI(location));
            String scheme = next.getScheme() == null ? "" : next.getScheme().toLowerCase(Locale.ROOT);
            if (!scheme.equals("http") && !scheme.equals("https")) throw new URISyntaxException(location, "not http(s)");
            return next;
        } catch (URISyntaxException | IllegalArgumentException e) {
            throw new JlensException("the hub redirected " + base + " to '" + location + "', which is not a usable "
                    + "http(s) address");
        }
    }

    private static boolean isRelative(String location) {
        try {
            URI u = new URI(location);
            return u.getScheme() == null && u.getRawAuthority() == null;
        } catch (URISyntaxException e) {
            return false;
        }
    }

    static boolean sameOrigin(URI a, URI b) {
        return Objects.equals(lower(a.getScheme()), lower(b.getScheme())) && Objects.equals(lower(a.getHost()),
                lower(b.getHost())) && port(a) == port(b);
    }

    private static String lower(String s) {
        return s == null ? null : s.toLowerCase(Locale.ROOT);
    }

    private static int port(URI u) {
        if (u.getPort() >= 0) return u.getPort();
        return "https".equalsIgnoreCase(u.getScheme()) ? 443 : 80;
    }

    /** huggingface_hub's {@code _normalize_etag}, plus the weak-validator prefix, which the hub never sends. */
    static String normalizeEtag(String etag) {
        if (etag == null) return null;
        String e = etag.strip();
        if (e.startsWith("W/")) e = e.substring(2);
        while (e.startsWith("\"")) e = e.substring(1);
        while (e.endsWith("\"")) e = e.substring(0, e.length() - 1);
        return e.isEmpty() ? null : e;
    }

    private static long parseSize(String v) {
        if (v == null) return -1;
        try {
            long n = Long.parseLong(v.strip());
            return n >= 0 ? n : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Percent-encodes like Python's {@code urllib.parse.quote}: letters, digits and {@code _.-~} stay. */
    static String encode(String s, boolean keepSlash) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
            int c = x & 0xff;
            boolean plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'
                    || c == '.' || c == '-' || c == '~' || (keepSlash && c == '/');
            if (plain) b.append((char) c);
            else b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                    .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
        }
        return b.toString();
    }

    static String readSnippet(InputStream in) {
        try {
            return clean(new String(in.readNBytes(2048), StandardCharsets.UTF_8));
        } catch (IOException e) {
            return "";
        }
    }

    private static String clean(String s) {
        String t = s.replaceAll("[\\p{Cntrl}]+", " ").strip();
        if (t.startsWith("{")) {
            try {
                JsonNode err = JSON.readTree(t).get("error");
                if (err != null && err.isTextual()) t = err.asText();
            } catch (IOException ignored) {
                // not JSON after all: show the text
            }
        }
        if (t.startsWith("<")) return ""; // an HTML error page says nothing useful in one line
        return t.length() > 300 ? t.substring(0, 300) + "..." : t;
    }

    private static FileLock lock(FileChannel ch, Path lock) throws IOException {
        // FileChannel.lock excludes other processes; a second download in this JVM gets
        // OverlappingFileLockException instead of waiting, so it waits here.
        while (true) {
            try {
                return ch.lock();
            } catch (OverlappingFileLockException e) {
                try {
                    Thread.sleep(50);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new JlensException("interrupted while waiting for " + lock, ie);
                }
            }
        }
    }

    private static long sizeOf(Path p) {
        try {
            return Files.size(p);
        } catch (IOException e) {
            return -1;
        }
    }

    private static void closeQuietly(InputStream in) {
        try {
            in.close();
        } catch (IOException ignored) {
            // the answer is already being discarded
        }
    }
}
