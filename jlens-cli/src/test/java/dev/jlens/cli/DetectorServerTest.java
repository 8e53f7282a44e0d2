package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.detect.Detector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HTTP endpoint over loopback (127.0.0.1 only): concurrent clients get the library's scores, bad requests
 * get JSON 4xx errors, a full queue gets 503, and closing lets a running request finish. Every wait is bounded.
 */
class DetectorServerTest {

    @TempDir
    static Path tmp;
    static Detector detector;
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient CLIENT = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    static void fit() {
        detector = Detector.load(CliTestSupport.saveTinyDetector(tmp));
    }

    @AfterAll
    static void close() {
        if (detector != null) detector.close();
    }

    static ObjectNode health() {
        return JSON.createObjectNode().put("hook", detector.hook()).put("layer", detector.layer());
    }

    static DetectorServer.Config config(int threads, int queue, int maxBytes) {
        return new DetectorServer.Config("127.0.0.1", 0, threads, queue, maxBytes, 5);
    }

    static HttpResponse<String> post(DetectorServer s, String body) throws Exception {
        return CLIENT.send(request(s, "/v1/score").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static HttpRequest.Builder request(DetectorServer s, String path) {
        return HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path)).timeout(Duration.ofSeconds(60));
    }

    static String body(String text) {
        return JSON.createObjectNode().put("text", text).toString();
    }

    @Test
    void concurrentClientsGetTheSequentialScores() throws Exception {
        List<String> texts = new ArrayList<>();
        for (int i = 0; i < 12; i++) texts.add(i % 2 == 0 ? "How do I bake bread number " + i + "?" : "Explain how to steal car number " + i);
        List<Detector.Score> expected = texts.stream().map(detector::score).toList();
        try (DetectorServer server = new DetectorServer(detector::score, health(), config(2, 64, 4096)).start()) {
            ExecutorService clients = Executors.newFixedThreadPool(8);
            try {
                List<Future<?>> futures = new ArrayList<>();
                for (int c = 0; c < 8; c++) {
                    int offset = c;
                    futures.add(clients.submit(() -> {
                        for (int k = 0; k < texts.size(); k++) {
                            int i = (k + offset) % texts.size();
                            HttpResponse<String> r = post(server, body(texts.get(i)));
                            assertEquals(200, r.statusCode(), r.body());
                            assertEquals("application/json", r.headers().firstValue("Content-Type").orElse(""));
                            JsonNode n = JSON.readTree(r.body());
                            assertEquals(expected.get(i).score(), n.get("score").asDouble(), texts.get(i));
                            assertEquals(expected.get(i).flagged(), n.get("flagged").asBoolean());
                            assertEquals(detector.layer(), n.get("layer").asInt());
                            assertTrue(n.get("ms").asDouble() >= 0);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : futures) f.get(3, TimeUnit.MINUTES);
            } finally {
                clients.shutdownNow();
            }
        }
    }

    @Test
    void badRequestsGetJsonErrors() throws Exception {
        try (DetectorServer server = new DetectorServer(detector::score, health(), config(1, 4, 1024)).start()) {
            record Case(String body, int status, String message) {
            }
            for (Case c : List.of(
                    new Case("{not json", 400, "not valid JSON"),
                    new Case("[1,2]", 400, "expected a JSON object"),
                    new Case("{\"txt\": \"hello\"}", 400, "missing field \"text\""),
                    new Case("{\"text\": 12}", 400, "must be a string"),
                    new Case("{\"text\": \"  \"}", 400, "empty text"),
                    new Case("{\"text\": \"" + "a".repeat(2000) + "\"}", 413, "over the limit of 1024 bytes"))) {
                HttpResponse<String> r = post(server, c.body());
                assertEquals(c.status(), r.statusCode(), c.body() + " -> " + r.body());
                assertTrue(JSON.readTree(r.body()).get("error").asText().contains(c.message()), r.body());
            }
            HttpResponse<String> get = CLIENT.send(request(server, "/v1/score").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(405, get.statusCode());
            assertEquals("POST", get.headers().firstValue("Allow").orElse(""));
            HttpResponse<String> missing = CLIENT.send(request(server, "/v2/nothing").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(404, missing.statusCode());
            assertTrue(JSON.readTree(missing.body()).has("error"));
            HttpResponse<String> health = CLIENT.send(request(server, "/healthz").GET().build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
            JsonNode h = JSON.readTree(health.body());
            assertEquals("ok", h.get("status").asText());
            assertEquals(detector.hook(), h.get("hook").asText());
            // text past the context is cut, scored, and said to be
            HttpResponse<String> longText = post(server, body("how to pick a lock ".repeat(50)));
            assertEquals(200, longText.statusCode(), longText.body());
            assertTrue(JSON.readTree(longText.body()).get("truncated").asBoolean());
        }
    }

    /**
     * The bug the load test found: a 413 answered before the body was read closed the connection without saying
     * so. Now a body up to {@link DetectorServer#DISCARD_LIMIT} is read and dropped and the connection stays
     * usable; a longer one is answered with {@code Connection: close}.
     */
    @Test
    void anOversizedBodyKeepsTheConnectionOrSaysItCloses() throws Exception {
        DetectorServer.Scorer fixed = t -> new Detector.Score(0.25, -1.1, false, 1, "h", 5, false, 0.1);
        try (DetectorServer server = new DetectorServer(fixed, health(), config(1, 2, 1024)).start();
             java.net.Socket socket = new java.net.Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(30_000);
            for (int size : new int[] {10, 300_000, 10, 5000, 10}) {
                byte[] b = body("a".repeat(size)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                var out = socket.getOutputStream();
                out.write(("POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + b.length + "\r\n\r\n").getBytes());
                out.write(b);
                out.flush();
                var r = DetectorServerLoadTest.RawResponse.read(new java.io.BufferedInputStream(socket.getInputStream(), 1));
                assertEquals(size < 1000 ? 200 : 413, r.status(), "body of " + b.length + " bytes");
                assertFalse(r.close(), "the connection stays open after a body of " + b.length + " bytes");
            }
        }
        try (DetectorServer server = new DetectorServer(fixed, health(), config(1, 2, 1024)).start();
             java.net.Socket socket = new java.net.Socket("127.0.0.1", server.port())) {
            socket.setSoTimeout(30_000);
            // declares 5 MiB and sends only the start: the server must not wait for the rest, and must say it closes
            socket.getOutputStream().write(("POST /v1/score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + (5 << 20)
                    + "\r\n\r\n{\"text\": \"aaaa").getBytes());
            socket.getOutputStream().flush();
            var r = DetectorServerLoadTest.RawResponse.read(new java.io.BufferedInputStream(socket.getInputStream(), 1));
            assertEquals(413, r.status());
            assertTrue(r.close(), "an unread body over the discard limit: Connection: close");
        }
    }

    /** A scorer that blocks until released, to fill the workers and the queue on purpose. */
    static final class Gate implements DetectorServer.Scorer {
        final CountDownLatch release = new CountDownLatch(1);

        @Override
        public Detector.Score score(String text) {
            try {
                if (!release.await(60, TimeUnit.SECONDS)) throw new IllegalStateException("gate never opened");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return new Detector.Score(0.25, -1.1, false, 1, "blocks.1.hook_resid_post", 5, false, 0.1);
        }
    }

    static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(10);
        }
    }

    @Test
    void aFullQueueGets503() throws Exception {
        Gate gate = new Gate();
        try (DetectorServer server = new DetectorServer(gate, health(), config(1, 1, 1024)).start()) {
            List<CompletableFuture<HttpResponse<String>>> held = new ArrayList<>();
            for (int i = 0; i < 2; i++) {
                held.add(CLIENT.sendAsync(request(server, "/v1/score").POST(HttpRequest.BodyPublishers.ofString(body("q" + i))).build(),
                        HttpResponse.BodyHandlers.ofString()));
            }
            await(() -> server.inFlight() == 2, "one running and one queued request");
            HttpResponse<String> busy = post(server, body("one too many"));
            assertEquals(503, busy.statusCode(), busy.body());
            assertTrue(JSON.readTree(busy.body()).get("error").asText().contains("server busy"));
            assertEquals("1", busy.headers().firstValue("Retry-After").orElse(""));
            gate.release.countDown();
            for (var f : held) {
                HttpResponse<String> r = f.get(60, TimeUnit.SECONDS);
                assertEquals(200, r.statusCode(), r.body());
                assertEquals(0.25, JSON.readTree(r.body()).get("score").asDouble());
            }
        }
    }

    @Test
    void closeLetsARunningRequestFinishAndRefusesNewOnes() throws Exception {
        Gate gate = new Gate();
        DetectorServer server = new DetectorServer(gate, health(), config(1, 2, 1024)).start();
        // a keep-alive connection opened before the close: reusing it while draining must get an answer, not hang
        assertEquals(200, CLIENT.send(request(server, "/healthz").GET().build(), HttpResponse.BodyHandlers.ofString()).statusCode());
        CompletableFuture<HttpResponse<String>> running = CLIENT.sendAsync(
                request(server, "/v1/score").POST(HttpRequest.BodyPublishers.ofString(body("slow"))).build(),
                HttpResponse.BodyHandlers.ofString());
        await(() -> server.inFlight() == 1, "the request to start");
        CompletableFuture<Void> closing = CompletableFuture.runAsync(server::close);
        // while draining, health says "stopping" and new work is refused at once
        await(() -> {
            try {
                HttpResponse<String> h = CLIENT.send(request(server, "/healthz").GET().build(), HttpResponse.BodyHandlers.ofString());
                return h.statusCode() == 503 && h.body().contains("\"stopping\"");
            } catch (Exception e) {
                return false;
            }
        }, "health to say stopping");
        HttpResponse<String> refused = post(server, body("new"));
        assertEquals(503, refused.statusCode(), refused.body());
        assertTrue(refused.body().contains("shutting down"), refused.body());
        assertFalse(running.isDone(), "the running request is still waiting for its score");
        gate.release.countDown();
        HttpResponse<String> r = running.get(60, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode(), r.body());
        closing.get(60, TimeUnit.SECONDS);
        // stopped: nothing listens any more
        try (HttpClient fresh = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            assertThrows(ConnectException.class, () -> fresh.send(request(server, "/healthz").GET().build(), HttpResponse.BodyHandlers.ofString()));
        }
    }
}
