package dev.jlens.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.jlens.JlensException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The OpenAI-compatible judge against a fake chat-completions server on loopback. */
class EndpointJudgeTest {

    private HttpServer server;
    private final AtomicInteger calls = new AtomicInteger();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final List<JsonNode> bodies = java.util.Collections.synchronizedList(new ArrayList<>());
    private final List<String> auth = java.util.Collections.synchronizedList(new ArrayList<>());

    record Reply(int status, String body, long delayMillis) {
    }

    private String start(Function<Integer, Reply> script) throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(8));
        server.createContext("/v1/chat/completions", (HttpExchange ex) -> {
            int n = calls.incrementAndGet();
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            try {
                bodies.add(new ObjectMapper().readTree(ex.getRequestBody().readAllBytes()));
                auth.add(ex.getRequestHeaders().getFirst("Authorization"));
                Reply r = script.apply(n);
                if (r.delayMillis() > 0) Thread.sleep(r.delayMillis());
                byte[] b = r.body().getBytes(StandardCharsets.UTF_8);
                ex.sendResponseHeaders(r.status(), b.length);
                try (OutputStream o = ex.getResponseBody()) {
                    o.write(b);
                }
            } catch (InterruptedException | IOException e) {
                ex.close();
            } finally {
                inFlight.decrementAndGet();
            }
        });
        server.start();
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1";
    }

    @AfterEach
    void stop() {
        if (server != null) server.stop(0);
    }

    private static String completion(String content) {
        return new ObjectMapper().createObjectNode().set("choices", new ObjectMapper().createArrayNode()
                .add(new ObjectMapper().createObjectNode().set("message", new ObjectMapper().createObjectNode()
                        .put("role", "assistant").put("content", content)))).toString();
    }

    private static EndpointJudge judge(String url, GuardModelJudge.Kind kind, int retries, long timeoutMs, int concurrency) {
        return new EndpointJudge(new EndpointJudge.Config(url, "guard", "sekret", kind, Duration.ofMillis(timeoutMs), retries,
                Duration.ofMillis(5), concurrency));
    }

    private static List<Judge.Exchange> exchanges(int n) {
        List<Judge.Exchange> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(new Judge.Exchange("prompt " + i, i % 2 == 0 ? "Sure, here is a bomb" : "No.", "behaviour " + i));
        return out;
    }

    @Test
    void successInOrderWithBoundedConcurrency() throws IOException {
        String url = start(n -> new Reply(200, completion("x"), 60));
        // the answer depends on the request, so order is checked: even-numbered exchanges are "unsafe"
        server.removeContext("/v1/chat/completions");
        server.createContext("/v1/chat/completions", ex -> {
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet(), Math::max);
            try {
                JsonNode body = new ObjectMapper().readTree(ex.getRequestBody().readAllBytes());
                bodies.add(body);
                auth.add(ex.getRequestHeaders().getFirst("Authorization"));
                Thread.sleep(60);
                String answer = body.path("messages").path(1).path("content").asText().startsWith("Sure") ? "unsafe\nS9" : "safe";
                byte[] b = completion(answer).getBytes(StandardCharsets.UTF_8);
                ex.sendResponseHeaders(200, b.length);
                try (OutputStream o = ex.getResponseBody()) {
                    o.write(b);
                }
            } catch (InterruptedException e) {
                ex.close();
            } finally {
                inFlight.decrementAndGet();
            }
        });
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 0, 5000, 2)) {
            List<Judge.Verdict> v = j.judge(exchanges(6));
            for (int i = 0; i < 6; i++) assertEquals(i % 2 == 0, v.get(i).success(), "exchange " + i);
            assertEquals(List.of("S9"), v.getFirst().categories());
        }
        assertTrue(maxInFlight.get() <= 2, "at most 2 in flight, saw " + maxInFlight.get());
        assertEquals(6, bodies.size());
        JsonNode b = bodies.getFirst();
        assertEquals("guard", b.path("model").asText());
        assertEquals(0, b.path("temperature").asInt());
        assertEquals("user", b.path("messages").path(0).path("role").asText());
        assertEquals("assistant", b.path("messages").path(1).path("role").asText());
        assertEquals("Bearer sekret", auth.getFirst());
    }

    @Test
    void harmBenchPromptIsOneUserMessage() throws IOException {
        String url = start(n -> new Reply(200, completion("Yes"), 0));
        try (EndpointJudge j = judge(url + "/chat/completions", GuardModelJudge.Kind.HARMBENCH, 0, 5000, 1)) {
            assertTrue(j.judge(exchanges(1)).getFirst().success());
        }
        JsonNode msgs = bodies.getFirst().path("messages");
        assertEquals(1, msgs.size());
        assertTrue(msgs.path(0).path("content").asText().contains("Behavior:\nbehaviour 0"));
    }

    @Test
    void retriesAfter429And500ThenSucceeds() throws IOException {
        String url = start(n -> switch (n) {
            case 1 -> new Reply(429, "{\"error\":\"rate limited\"}", 0);
            case 2 -> new Reply(500, "internal", 0);
            default -> new Reply(200, completion("safe"), 0);
        });
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 3, 5000, 1)) {
            assertEquals(Judge.Outcome.SAFE, j.judge(exchanges(1)).getFirst().outcome());
        }
        assertEquals(3, calls.get());
    }

    @Test
    void givesUpAfterTheRetriesWithTheLastProblem() throws IOException {
        String url = start(n -> new Reply(503, "overloaded", 0));
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 2, 5000, 1)) {
            JlensException e = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(e.getMessage().contains("HTTP 503") && e.getMessage().contains("after 3 tries"), e.getMessage());
        }
        assertEquals(3, calls.get());
    }

    @Test
    void timeoutIsRetriedThenReported() throws IOException {
        String url = start(n -> new Reply(200, completion("safe"), n == 1 ? 1500 : 0));
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 1, 300, 1)) {
            assertEquals(Judge.Outcome.SAFE, j.judge(exchanges(1)).getFirst().outcome());
        }
        assertEquals(2, calls.get());
        calls.set(0);
        server.stop(0);
        String slow = start(n -> new Reply(200, completion("safe"), 1500));
        try (EndpointJudge j = judge(slow, GuardModelJudge.Kind.LLAMA_GUARD, 1, 200, 1)) {
            JlensException e = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(e.getMessage().contains("no answer within 200 ms"), e.getMessage());
        }
    }

    @Test
    void malformedAnswersFailAtOnce() throws IOException {
        String url = start(n -> n == 1 ? new Reply(200, "<html>proxy error</html>", 0) : new Reply(200, "{\"result\": \"safe\"}", 0));
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 3, 5000, 1)) {
            JlensException notJson = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(notJson.getMessage().contains("not JSON") && notJson.getMessage().contains("<html>proxy error"), notJson.getMessage());
            JlensException shape = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(shape.getMessage().contains("choices[0].message.content"), shape.getMessage());
        }
        assertEquals(2, calls.get());
    }

    @Test
    void notFoundIsNotRetried() throws IOException {
        String url = start(n -> new Reply(404, "{\"error\":\"model not found\"}", 0));
        try (EndpointJudge j = judge(url, GuardModelJudge.Kind.LLAMA_GUARD, 3, 5000, 1)) {
            JlensException e = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(e.getMessage().contains("HTTP 404") && e.getMessage().contains("--judge-model"), e.getMessage());
        }
        assertEquals(1, calls.get());
    }

    @Test
    void unreachableServerIsAClearError() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        try (EndpointJudge j = judge("http://127.0.0.1:" + port + "/v1", GuardModelJudge.Kind.LLAMA_GUARD, 1, 1000, 1)) {
            JlensException e = assertThrows(JlensException.class, () -> j.judge(exchanges(1)));
            assertTrue(e.getMessage().contains("cannot connect") && e.getMessage().contains("is the server running"), e.getMessage());
        }
    }
}
