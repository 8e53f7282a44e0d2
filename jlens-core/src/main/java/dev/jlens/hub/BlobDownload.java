package dev.jlens.hub;

import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Fetches one blob into {@code blobs/<etag>.incomplete}, resuming with a Range request after a dropped or stalled
 * connection (or from what an earlier run, jlens or Python, left there), checks its size and hash against the hub's
 * metadata, and only then renames it to {@code blobs/<etag>}. The JDK client has no per-read timeout, so a watchdog
 * interrupts a read that has made no progress for {@code stallTimeout}; the reader then resumes like after a drop.
 */
final class BlobDownload {

    private static final Pattern CONTENT_RANGE = Pattern.compile("bytes (\\d+)-(\\d+)/(\\d+|\\*)");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final Pattern GIT_SHA1 = Pattern.compile("[0-9a-f]{40}");
    private static final int BUFFER = 1 << 20;
    private static final int MAX_REDIRECTS = 10;

    private final HubClient client;
    private final HttpClient http;
    private final HubClient.Options options;
    private final String what;
    private final String file;
    private final URI location;
    private final boolean sendToken;
    private final String etag;
    private final long size;
    private final Path incomplete;
    private final DownloadProgress progress;

    /** Hashes the bytes in order as they are written; {@code fed} says how many it has seen. */
    private MessageDigest sha256;
    private long fed;

    BlobDownload(HubClient client, HttpClient http, HubClient.Options options, String what, String file, URI location,
                 boolean sendToken, String etag, long size, Path incomplete, DownloadProgress progress) {
        this.client = client;
        this.http = http;
        this.options = options;
        this.what = what;
        this.file = file;
        this.location = location;
        this.sendToken = sendToken;
        this.etag = etag;
        this.size = size;
        this.incomplete = incomplete;
        this.progress = progress;
    }

    /** Downloads, verifies and renames into {@code blob}; on a verification failure nothing is left behind. */
    void run(Path blob) {
        checkDiskSpace();
        int idle = 0;
        while (true) {
            long before = onDisk();
            if (size >= 0 && before > size) {
                // More bytes than the hub says the file has: not a prefix of this file, start over.
                delete(incomplete);
                before = 0;
            }
            if (size >= 0 && before == size) break;
            Outcome o;
            try {
                o = attempt(before);
            } catch (IOException e) {
                o = new Outcome(false, e.getMessage() == null ? e.toString() : e.getMessage());
            }
            if (o.complete()) break;
            idle = onDisk() > before ? 0 : idle + 1;
            if (idle >= options.maxAttempts()) {
                throw new JlensException(what + ": downloading " + file + " from " + location.getHost() + " failed "
                        + idle + " times in a row without progress (last: " + o.problem() + "). The " + onDisk()
                        + " bytes received so far are kept in " + incomplete + "; run again to resume.");
            }
            client.pause(options.firstRetryWait().multipliedBy(1L << Math.min(Math.max(idle - 1, 0), 4)));
        }
        verify();
        try {
            AtomicFiles.commit(incomplete, blob);
        } catch (IOException e) {
            throw new JlensException("cannot move " + incomplete + " to " + blob + ": " + e.getMessage(), e);
        }
    }

    private record Outcome(boolean complete, String problem) {
    }

    private Outcome attempt(long have) throws IOException {
        progress.update(file, have, size);
        URI uri = location;
        boolean token = sendToken;
        HttpResponse<InputStream> r = null;
        for (int hop = 0; ; hop++) {
            HttpRequest.Builder b = client.request(uri, token).GET();
            if (have > 0) b.header("Range", "bytes=" + have + "-");
            r = client.send(b.build(), HttpResponse.BodyHandlers.ofInputStream());
            int s = r.statusCode();
            if (s < 300 || s >= 400) break;
            String loc = r.headers().firstValue("Location").orElse(null);
            r.body().close();
            if (loc == null || hop >= MAX_REDIRECTS) {
                return new Outcome(false, "HTTP " + s + " redirect without a usable Location");
            }
            URI next = client.resolveLocation(uri, loc);
            // Like Python's requests: credentials never follow a redirect to another origin.
            if (!HubClient.sameOrigin(next, uri)) token = false;
            uri = next;
        }
        int status = r.statusCode();
        try (InputStream in = r.body()) {
            if (status == 416) {
                // What we hold is not a prefix the server can continue: start from byte 0.
                delete(incomplete);
                return new Outcome(false, "HTTP 416 for Range bytes=" + have + "-; restarting from the beginning");
            }
            if (status == 429 || status >= 500) {
                return new Outcome(false, "HTTP " + status);
            }
            if (status != 200 && status != 206) {
                throw client.httpError(status, r.headers(), HubClient.readSnippet(in), uri, file);
            }
            long start = 0;
            if (status == 206) {
                start = contentRangeStart(r.headers());
                if (start != have) {
                    delete(incomplete);
                    return new Outcome(false, "the server resumed at byte " + start + " instead of " + have);
                }
            } else if (have > 0) {
                // The server ignored the Range header and sent the whole file.
                delete(incomplete);
            }
            return new Outcome(stream(in, start), null);
        }
    }

    /** Appends the body to the partial file; true when the whole file has arrived. */
    private boolean stream(InputStream in, long start) throws IOException {
        syncDigest(start);
        AtomicLong lastProgress = new AtomicLong(System.nanoTime());
        AtomicBoolean done = new AtomicBoolean();
        AtomicBoolean stalled = new AtomicBoolean();
        Thread reader = Thread.currentThread();
        long stallNanos = options.stallTimeout().toNanos();
        Thread watchdog = Thread.ofVirtual().start(() -> {
            long step = Math.max(1, Math.min(stallNanos / 4, 1_000_000_000L) / 1_000_000);
            while (!done.get()) {
                try {
                    Thread.sleep(step);
                } catch (InterruptedException e) {
                    return;
                }
                if (!done.get() && System.nanoTime() - lastProgress.get() > stallNanos) {
                    stalled.set(true);
                    reader.interrupt();
                    return;
                }
            }
        });
        long pos = start;
        try (FileChannel out = FileChannel.open(incomplete, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.APPEND)) {
            byte[] buf = new byte[BUFFER];
            int n;
            while ((n = in.read(buf)) > 0) {
                lastProgress.set(System.nanoTime());
                if (size >= 0 && pos + n > size) {
                    throw new JlensException(what + ": the server sent more than the " + size + " bytes the hub "
                            + "announced for " + file + "; refusing the download");
                }
                ByteBuffer bb = ByteBuffer.wrap(buf, 0, n);
                while (bb.hasRemaining()) out.write(bb);
                if (sha256 != null) sha256.update(buf, 0, n);
                fed += n;
                pos += n;
                progress.update(file, pos, size);
            }
            return size < 0 || pos == size;
        } catch (IOException e) {
            if (stalled.get()) throw new IOException("no data for " + options.stallTimeout().toMillis() / 1000.0 + " s", e);
            throw e;
        } catch (JlensException e) {
            delete(incomplete);
            throw e;
        } finally {
            done.set(true);
            watchdog.interrupt();
            try {
                watchdog.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            // The watchdog's interrupt was meant for the blocked read only; do not let it leak to the caller.
            if (stalled.get()) Thread.interrupted();
        }
    }

    /** Brings the running hash up to the bytes already on disk (after a restart or a resume by another run). */
    private void syncDigest(long have) throws IOException {
        if (!SHA256.matcher(etag).matches()) return;
        if (sha256 != null && fed == have) return;
        sha256 = newDigest("SHA-256");
        fed = 0;
        if (have == 0) return;
        try (InputStream in = Files.newInputStream(incomplete)) {
            byte[] buf = new byte[BUFFER];
            long left = have;
            int n;
            while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) > 0) {
                sha256.update(buf, 0, n);
                left -= n;
            }
            fed = have - left;
        }
    }

    /**
     * The hub's ETag is the content's sha256 for LFS files and the git blob id (sha1 of "blob SIZE\0" + content)
     * for small files kept in git; both are checked. Any other ETag form (a mirror's) gets the size check only.
     */
    private void verify() {
        long got = onDisk();
        if (size >= 0 && got != size) {
            delete(incomplete);
            throw new JlensException(what + ": " + file + " arrived with " + got + " bytes but the hub announced "
                    + size + "; the download was removed, run again to retry");
        }
        String actual = null;
        String kind = null;
        try {
            if (SHA256.matcher(etag).matches()) {
                if (sha256 == null || fed != got) syncDigest(got);
                actual = HexFormat.of().formatHex(sha256.digest());
                kind = "sha256";
            } else if (GIT_SHA1.matcher(etag).matches()) {
                actual = gitBlobId(incomplete, got);
                kind = "git blob sha1";
            }
        } catch (IOException e) {
            throw new JlensException("cannot read back " + incomplete + ": " + e.getMessage(), e);
        }
        if (actual != null && !actual.equals(etag.toLowerCase(Locale.ROOT))) {
            delete(incomplete);
            throw new JlensException(what + ": checksum mismatch for " + file + ": the hub says " + kind + " "
                    + etag + " but the downloaded bytes hash to " + actual + ". The corrupt download was removed; "
                    + "run again to retry (a proxy or mirror that alters files would cause this every time).");
        }
    }

    static String gitBlobId(Path file, long length) throws IOException {
        MessageDigest md = newDigest("SHA-1");
        md.update(("blob " + length + "\0").getBytes(StandardCharsets.US_ASCII));
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[BUFFER];
            int n;
            while ((n = in.read(buf)) > 0) md.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    private void checkDiskSpace() {
        if (size < 0) return;
        try {
            Path dir = incomplete.getParent();
            Files.createDirectories(dir);
            long need = size - onDisk();
            long free = Files.getFileStore(dir).getUsableSpace();
            if (need > free) {
                throw new JlensException(what + ": not enough disk space for " + file + ": it needs " + need
                        + " more bytes but " + dir + " has " + free + " free. Free some space or set HF_HUB_CACHE "
                        + "to a larger disk.");
            }
        } catch (IOException e) {
            throw new JlensException("cannot prepare " + incomplete.getParent() + ": " + e.getMessage(), e);
        }
    }

    private static long contentRangeStart(HttpHeaders h) throws IOException {
        String cr = h.firstValue("Content-Range").orElse("");
        Matcher m = CONTENT_RANGE.matcher(cr.trim());
        if (!m.matches()) throw new IOException("206 response with an unreadable Content-Range '" + cr + "'");
        return Long.parseLong(m.group(1));
    }

    private long onDisk() {
        try {
            return Files.exists(incomplete) ? Files.size(incomplete) : 0;
        } catch (IOException e) {
            return 0;
        }
    }

    private void delete(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new JlensException("cannot delete " + p + ": " + e.getMessage(), e);
        }
        sha256 = null;
        fed = 0;
    }

    private static MessageDigest newDigest(String alg) {
        try {
            return MessageDigest.getInstance(alg);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(alg + " is part of every JDK", e);
        }
    }
}
