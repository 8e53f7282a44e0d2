package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.detect.Detector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A bounded loopback load test of {@code jlens serve}: many keep-alive clients for a few seconds, mixing good
 * requests with malformed and oversized bodies, on a server with one worker and a short queue so that overload
 * happens too. Every request must get an answer (no connection reset, no broken keep-alive), every answer must be
 * 200, 400, 413 or 503, and {@code /healthz} must be healthy afterwards. Nothing here is timed: the throughput
 * and latency figures in docs/PERFORMANCE.md come from {@code jlens bench --serve}.
 *
 * <p>Two kinds of client: the JDK's {@link HttpClient} (which pools and reuses connections, as the load test
 * that found the bug did), and a raw socket client that writes one request after another on the same
 * connection and reopens only when the server said {@code Connection: close}, which checks the protocol itself.
 */
class DetectorServerLoadTest {

    @TempDir
    static Path tmp;
    static Detector detector;
    static final ObjectMapper JSON = new ObjectMapper();
    static final int MAX_BYTES = 2048;
    static final Set<Integer> ALLOWED = Set.of(200, 400, 413, 503);

    @BeforeAll
    static void fit() {
        detector = Detector.load(CliTestSupport.saveTinyDetector(tmp));
    }

    @AfterAll
    static void close() {
        if (detector != null) detector.close();
    }

    /** The request bodies the clients cycle through: good, malformed, slightly and far oversized. */
    static String body(Random rnd) {
        int k = rnd.nextInt(10);
        if (k < 5) return JSON.createObjectNode().put("text", "How do I bake bread number " + rnd.nextInt(1000) + "?").toString();
        if (k == 5) return "{not json";
        if (k == 6) return "{\"text\": 12}";
        if (k == 7) return "{\"text\": \"" + "a".repeat(MAX_BYTES + rnd.nextInt(4 * MAX_BYTES)) + "\"}";
        if (k == 8) return "{\"text\": \"" + "b".repeat(200_000 + rnd.nextInt(200_000)) + "\"}";
        return "";
    }

    record Tally(Map<Integer, AtomicInteger> statuses, List<String> errors, AtomicInteger reopened) {
        Tally() {
            this(new ConcurrentHashMap<>(), java.util.Collections.synchronizedList(new ArrayList<>()), new AtomicInteger());
        }

        void status(int s) {
            statuses.computeIfAbsent(s, x -> new AtomicInteger()).incrementAndGet();
        }

        int count(int s) {
            AtomicInteger n = statuses.get(s);
            return n == null ? 0 : n.get();
        }

        @Override
        public String toString() {
            Map<Integer, Integer> m = new TreeMap<>();
            statuses.forEach((k, v) -> m.put(k, v.get()));
            return m + ", " + errors.size() + " connection error(s)" + (errors.isEmpty() ? "" : ", first: " + errors.getFirst());
        }
    }

    @Test
    void keepAliveClientsSurviveBadRequestsAndOverload() throws Exception {
        DetectorServer.Config config = new DetectorServer.Config("127.0.0.1", 0, 1, 2, MAX_BYTES, 5);
        Tally tally = new Tally();
        long runNanos = TimeUnit.MILLISECONDS.toNanos(2500);
        try (DetectorServer server = new DetectorServer(detector::score, JSON.createObjectNode().put("hook", detector.hook()), config).start()) {
            ExecutorService clients = Executors.newFixedThreadPool(12);
            try {
                List<Future<?>> futures = new ArrayList<>();
                for (int c = 0; c < 12; c++) {
                    long seed = c;
                    boolean raw = c % 2 == 1;
                    futures.add(clients.submit(() -> {
                        long end = System.nanoTime() + runNanos;
                        if (raw) rawClient(server.port(), new Random(seed), end, tally);
                        else jdkClient(server.port(), new Random(seed), end, tally);
                        return null;
                    }));
                }
                for (Future<?> f : futures) f.get(2, TimeUnit.MINUTES);
            } finally {
                clients.shutdownNow();
            }
            tally.errors().stream().limit(30).forEach(System.out::println);
            assertTrue(tally.errors().isEmpty(), tally.toString());
            for (int s : tally.statuses().keySet()) assertTrue(ALLOWED.contains(s), "unexpected status " + s + ": " + tally);
            assertTrue(tally.count(200) > 0 && tally.count(400) > 0 && tally.count(413) > 0, tally.toString());
            assertTrue(tally.count(503) > 0, "the load should have overflowed one worker and a queue of 2: " + tally);
            // the raw clients kept their connection across answers that did not ask to close it
            assertTrue(tally.reopened().get() < tally.statuses().values().stream().mapToInt(AtomicInteger::get).sum(), tally.toString());
            try (HttpClient fresh = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                HttpResponse<String> h = fresh.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/healthz"))
                        .timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, h.statusCode(), h.body());
                JsonNode n = JSON.readTree(h.body());
                assertEquals("ok", n.get("status").asText());
                assertEquals(0, n.get("in_flight").asInt());
                HttpResponse<String> s = fresh.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/v1/score"))
                        .timeout(Duration.ofSeconds(30)).POST(HttpRequest.BodyPublishers.ofString("{\"text\": \"a last request\"}")).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(200, s.statusCode(), s.body());
                assertEquals(detector.score("a last request").score(), JSON.readTree(s.body()).get("score").asDouble());
            }
        }
        System.out.printf(Locale.ROOT, "load test: %s, %d raw reconnects%n", tally, tally.reopened().get());
    }

    private static void jdkClient(int port, Random rnd, long end, Tally tally) {
        try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build()) {
            URI uri = URI.create("http://127.0.0.1:" + port + "/v1/score");
            while (System.nanoTime() < end) {
                try {
                    HttpResponse<String> r = client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(30))
                            .POST(HttpRequest.BodyPublishers.ofString(body(rnd))).build(), HttpResponse.BodyHandlers.ofString());
                    tally.status(r.statusCode());
                } catch (IOException e) {
                    tally.errors().add("HttpClient: " + e);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** HTTP/1.1 by hand on one socket: keep-alive unless the answer says {@code Connection: close}. */
    private static void rawClient(int port, Random rnd, long end, Tally tally) {
        Socket socket = null;
        int used = 0;
        String previous = "";
        try {
            while (System.nanoTime() < end) {
                if (socket == null) {
                    socket = new Socket();
                    socket.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
                    socket.setSoTimeout(30_000);
                    used = 0;
                }
                byte[] body = body(rnd).getBytes(StandardCharsets.UTF_8);
                used++;
                try {
                    OutputStream out = socket.getOutputStream();
                    out.write(("POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                            + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(body);
                    out.flush();
                    RawResponse r = RawResponse.read(new BufferedInputStream(socket.getInputStream(), 1));
                    tally.status(r.status());
                    previous = r.status() + "/" + body.length;
                    if (r.close()) {
                        socket.close();
                        socket = null;
                        tally.reopened().incrementAndGet();
                    }
                } catch (IOException e) {
                    tally.errors().add("raw socket, request of " + body.length + " bytes after " + used + " on this connection, previous answer " + previous + ": " + e);
                    socket.close();
                    socket = null;
                }
            }
        } catch (IOException e) {
            tally.errors().add("raw socket connect: " + e);
        } finally {
            try {
                if (socket != null) socket.close();
            } catch (IOException ignored) {
                // closing at the end of the test
            }
        }
    }

    record RawResponse(int status, boolean close) {
        static RawResponse read(InputStream in) throws IOException {
            String statusLine = line(in);
            if (statusLine == null) throw new IOException("connection closed before a status line");
            int status = Integer.parseInt(statusLine.split(" ")[1]);
            int length = -1;
            boolean close = false;
            for (String h = line(in); h != null && !h.isEmpty(); h = line(in)) {
                int colon = h.indexOf(':');
                String name = h.substring(0, colon).trim().toLowerCase(Locale.ROOT), value = h.substring(colon + 1).trim();
                if (name.equals("content-length")) length = Integer.parseInt(value);
                if (name.equals("connection") && value.equalsIgnoreCase("close")) close = true;
            }
            if (length < 0) throw new IOException("answer without Content-Length: " + statusLine);
            if (in.readNBytes(length).length != length) throw new IOException("answer body cut short: " + statusLine);
            return new RawResponse(status, close);
        }

        private static String line(InputStream in) throws IOException {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            for (int c = in.read(); c != '\n'; c = in.read()) {
                if (c < 0) return b.size() == 0 ? null : b.toString(StandardCharsets.US_ASCII);
                if (c != '\r') b.write(c);
            }
            return b.toString(StandardCharsets.US_ASCII);
        }
    }
}
