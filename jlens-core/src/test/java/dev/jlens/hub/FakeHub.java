package dev.jlens.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A loopback imitation of the Hugging Face Hub for one repository: the revision listing, HEAD/GET on
 * {@code /resolve/} with the hub's headers (git-sha1 ETag for small files; a 302 to a separate "CDN" server with
 * X-Linked-Etag = sha256 and X-Linked-Size for LFS files), Range requests, and the hub's X-Error-Code answers.
 * Faults can be switched on: a connection dropped or stalled after N bytes, corrupt bytes, a gated repository,
 * or failing every request. It binds 127.0.0.1 only, answers at most {@code maxRequests} requests and stops
 * itself after {@code lifetime} even if a test forgets to close it.
 */
final class FakeHub implements AutoCloseable {

    record Request(String server, String method, String path, String range, String authorization) {
    }

    final String repoId;
    final String commit;
    private final Map<String, byte[]> files;
    private final Set<String> lfs;
    private final List<String> extraSiblings;
    private final HttpServer hub;
    private final HttpServer cdn;
    private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
    private final List<Request> requests = Collections.synchronizedList(new ArrayList<>());
    private final AtomicInteger count = new AtomicInteger();
    private final int maxRequests;
    private final Thread reaper;

    volatile String requiredToken;
    volatile boolean failEverything;
    volatile String corruptFile;
    /** The next CDN/resolve GET of {@code faultFile} sends bytes up to offset {@code faultAt}, then fails. */
    volatile String faultFile;
    volatile long faultAt;
    /** Null: drop the connection at the fault; else go silent this long first (a stall), then drop it. */
    volatile Duration faultStall;

    FakeHub(String repoId, String commit, Map<String, byte[]> files, Set<String> lfs, List<String> extraSiblings,
            int maxRequests, Duration lifetime) throws IOException {
        this.repoId = repoId;
        this.commit = commit;
        this.files = new LinkedHashMap<>(files);
        this.lfs = Set.copyOf(lfs);
        this.extraSiblings = List.copyOf(extraSiblings);
        this.maxRequests = maxRequests;
        InetAddress loopback = InetAddress.getLoopbackAddress();
        hub = HttpServer.create(new InetSocketAddress(loopback, 0), 0);
        cdn = HttpServer.create(new InetSocketAddress(loopback, 0), 0);
        hub.createContext("/", ex -> handle("hub", ex));
        cdn.createContext("/", ex -> handle("cdn", ex));
        // Several handlers at once: a stalled answer must not block the client's resumed request.
        hub.setExecutor(pool);
        cdn.setExecutor(pool);
        hub.start();
        cdn.start();
        reaper = Thread.ofVirtual().start(() -> {
            try {
                Thread.sleep(lifetime);
            } catch (InterruptedException e) {
                return;
            }
            stopServers();
        });
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + hub.getAddress().getPort());
    }

    List<Request> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    List<Request> requests(String server, String method) {
        return requests().stream().filter(r -> r.server().equals(server) && r.method().equals(method)).toList();
    }

    boolean overflowed() {
        return count.get() > maxRequests;
    }

    @Override
    public void close() {
        reaper.interrupt();
        stopServers();
    }

    private void stopServers() {
        hub.stop(0);
        cdn.stop(0);
        pool.shutdownNow();
    }

    // ---- request handling ------------------------------------------------------------------------------------

    private void handle(String server, HttpExchange ex) throws IOException {
        try (ex) {
            String rawPath = ex.getRequestURI().getRawPath();
            String method = ex.getRequestMethod();
            requests.add(new Request(server, method, rawPath, ex.getRequestHeaders().getFirst("Range"),
                    ex.getRequestHeaders().getFirst("Authorization")));
            if (count.incrementAndGet() > maxRequests || failEverything) {
                send(ex, 500, "{\"error\":\"fake hub: no requests expected\"}");
                return;
            }
            if (server.equals("cdn")) {
                serveCdn(ex, rawPath);
                return;
            }
            if (rawPath.startsWith("/api/models/")) {
                serveListing(ex, rawPath.substring("/api/models/".length()));
                return;
            }
            serveResolve(ex, rawPath);
        }
    }

    private void serveListing(HttpExchange ex, String rest) throws IOException {
        int i = rest.indexOf("/revision/");
        if (i < 0 || !checkRepo(ex, rest.substring(0, i))) {
            if (i < 0) send(ex, 404, "{\"error\":\"Not Found\"}");
            return;
        }
        String rev = decode(rest.substring(i + "/revision/".length()));
        if (!checkAccess(ex) || !checkRevision(ex, rev)) return;
        StringBuilder json = new StringBuilder("{\"_id\":\"0123\",\"id\":\"" + repoId + "\",\"sha\":\"" + commit
                + "\",\"private\":false,\"siblings\":[");
        List<String> names = new ArrayList<>(extraSiblings);
        names.addAll(files.keySet());
        for (int k = 0; k < names.size(); k++) {
            json.append(k == 0 ? "" : ",").append("{\"rfilename\":\"").append(names.get(k)).append("\"}");
        }
        json.append("]}");
        ex.getResponseHeaders().add("Content-Type", "application/json; charset=utf-8");
        send(ex, 200, json.toString());
    }

    private void serveResolve(HttpExchange ex, String rawPath) throws IOException {
        // /ORG/NAME/resolve/REV/FILE
        String[] parts = rawPath.split("/", 6);
        if (parts.length < 6 || !parts[3].equals("resolve")) {
            send(ex, 404, "Not Found");
            return;
        }
        if (!checkRepo(ex, parts[1] + "/" + parts[2]) || !checkAccess(ex) || !checkRevision(ex, decode(parts[4]))) {
            return;
        }
        String file = decode(parts[5]);
        byte[] content = files.get(file);
        ex.getResponseHeaders().add("X-Repo-Commit", commit);
        if (content == null) {
            ex.getResponseHeaders().add("X-Error-Code", "EntryNotFound");
            send(ex, 404, "Entry not found");
            return;
        }
        if (lfs.contains(file)) {
            String sha = sha256(content);
            ex.getResponseHeaders().add("Location", "http://127.0.0.1:" + cdn.getAddress().getPort() + "/cdn/" + sha);
            ex.getResponseHeaders().add("X-Linked-Etag", "\"" + sha + "\"");
            ex.getResponseHeaders().add("X-Linked-Size", Long.toString(content.length));
            // The ETag of the LFS pointer file itself, which a client must not use for the blob.
            ex.getResponseHeaders().add("ETag", "\"" + gitSha1(("version https://git-lfs.github.com/spec/v1\noid sha256:"
                    + sha + "\nsize " + content.length + "\n").getBytes(StandardCharsets.UTF_8)) + "\"");
            ex.sendResponseHeaders(302, -1);
            return;
        }
        ex.getResponseHeaders().add("ETag", "\"" + gitSha1(content) + "\"");
        serveBytes(ex, file, content);
    }

    private void serveCdn(HttpExchange ex, String rawPath) throws IOException {
        String sha = rawPath.startsWith("/cdn/") ? rawPath.substring(5) : "";
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            if (lfs.contains(e.getKey()) && sha256(e.getValue()).equals(sha)) {
                serveBytes(ex, e.getKey(), e.getValue());
                return;
            }
        }
        send(ex, 403, "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>");
    }

    private void serveBytes(HttpExchange ex, String file, byte[] content) throws IOException {
        byte[] body = content;
        if (file.equals(corruptFile)) {
            body = content.clone();
            body[body.length / 2] ^= 0x5a;
        }
        long start = 0;
        String range = ex.getRequestHeaders().getFirst("Range");
        if (range != null && range.startsWith("bytes=") && range.endsWith("-")) {
            start = Long.parseLong(range.substring(6, range.length() - 1));
            if (start >= body.length) {
                ex.getResponseHeaders().add("Content-Range", "bytes */" + body.length);
                ex.sendResponseHeaders(416, -1);
                return;
            }
            ex.getResponseHeaders().add("Content-Range", "bytes " + start + "-" + (body.length - 1) + "/" + body.length);
        }
        int status = range != null ? 206 : 200;
        long length = body.length - start;
        ex.getResponseHeaders().add("Accept-Ranges", "bytes");
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.getResponseHeaders().add("Content-Length", Long.toString(length));
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, length);
        OutputStream out = ex.getResponseBody();
        long faultAt = this.faultAt;
        if (file.equals(faultFile) && faultAt > start && faultAt < body.length) {
            faultFile = null;
            out.write(body, (int) start, (int) (faultAt - start));
            out.flush();
            Duration stall = faultStall;
            if (stall != null) {
                try {
                    Thread.sleep(stall);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            // Ending the handler with an exception makes the server close the connection mid-body.
            throw new IOException("fake hub: connection dropped after byte " + faultAt);
        }
        out.write(body, (int) start, (int) length);
    }

    private boolean checkRepo(HttpExchange ex, String repo) throws IOException {
        if (repo.equals(repoId)) return true;
        ex.getResponseHeaders().add("X-Error-Code", "RepoNotFound");
        ex.getResponseHeaders().add("X-Error-Message", "Repository not found");
        send(ex, 404, "{\"error\":\"Repository not found\"}");
        return false;
    }

    private boolean checkAccess(HttpExchange ex) throws IOException {
        String need = requiredToken;
        if (need == null) return true;
        String auth = ex.getRequestHeaders().getFirst("Authorization");
        if (auth == null) {
            ex.getResponseHeaders().add("X-Error-Code", "GatedRepo");
            ex.getResponseHeaders().add("X-Error-Message", "Access to model " + repoId + " is restricted. You must "
                    + "have access to it and be authenticated to access it. Please log in.");
            send(ex, 401, "");
            return false;
        }
        if (!auth.equals("Bearer " + need)) {
            ex.getResponseHeaders().add("X-Error-Code", "GatedRepo");
            ex.getResponseHeaders().add("X-Error-Message", "Access to model " + repoId + " is restricted and you "
                    + "are not in the authorized list.");
            send(ex, 403, "");
            return false;
        }
        return true;
    }

    private boolean checkRevision(HttpExchange ex, String rev) throws IOException {
        if (rev.equals("main") || rev.equals(commit)) return true;
        ex.getResponseHeaders().add("X-Error-Code", "RevisionNotFound");
        ex.getResponseHeaders().add("X-Error-Message", "Invalid rev id: " + rev);
        send(ex, 404, "{\"error\":\"Invalid rev id: " + rev + "\"}");
        return false;
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        if (ex.getRequestMethod().equals("HEAD") || b.length == 0) {
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    static String sha256(byte[] b) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    static String gitSha1(byte[] b) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-1");
            md.update(("blob " + b.length + "\0").getBytes(StandardCharsets.US_ASCII));
            return HexFormat.of().formatHex(md.digest(b));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
