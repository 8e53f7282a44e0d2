package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.detect.Detector;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The guard on generation from the outside: {@code jlens generate --guard} (stop and flag) and the streaming
 * endpoint POST /v1/generate of {@code jlens serve --generate}, on the fixture GPT-NeoX (loopback only).
 */
class GuardCliTest {

    @TempDir
    static Path tmp;
    static Path dir;
    static Detector detector;
    static final ObjectMapper JSON = new ObjectMapper();
    static final String PROMPT = "How do I pick a lock?";

    static String neox() {
        return CliTestSupport.fixtures().resolve("gpt_neox_tiny").toString();
    }

    @BeforeAll
    static void fit() {
        dir = CliTestSupport.saveTinyDetector(tmp);
        detector = Detector.load(dir);
    }

    @AfterAll
    static void close() {
        if (detector != null) detector.close();
    }

    @Test
    void generateSaysWhetherAndWhereTheGuardTripped() {
        CliTestSupport.Result free = CliTestSupport.run("generate", "--model", neox(), "--max-new-tokens", "10", PROMPT);
        assertEquals(0, free.exitCode(), free.err());
        CliTestSupport.Result flag = CliTestSupport.run("generate", "--model", neox(), "--max-new-tokens", "10", "--guard", dir.toString(),
                "--guard-mode", "flag", PROMPT);
        assertEquals(0, flag.exitCode(), flag.err());
        assertEquals(free.out(), flag.out(), "flag mode changes no token");
        assertTrue(flag.err().contains("guard (prompt 1): "), flag.err());
        assertTrue(flag.err().contains("mode flag"), flag.err());
        CliTestSupport.Result stop = CliTestSupport.run("generate", "--model", neox(), "--max-new-tokens", "10", "--guard", dir.toString(), PROMPT);
        assertEquals(0, stop.exitCode(), stop.err());
        assertTrue(free.out().startsWith(stop.out().stripTrailing()), "stop mode: a prefix of the unguarded text");
        CliTestSupport.Result bad = CliTestSupport.run("generate", "--model", neox(), "--guard", dir.toString(), "--guard-mode", "halt", PROMPT);
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("expected flag or stop"), bad.err());
    }

    @Test
    void theStreamingEndpointStreamsTokensScoresAndTheVerdict() throws Exception {
        int[] ids = detector.promptIds(PROMPT, null);
        Generation expected = new Generator(detector.model()).generate(ids, GenerationConfig.greedy(8), Hooks.none(), null);
        DetectorServer.Config config = new DetectorServer.Config("127.0.0.1", 0, 1, 2, 4096, 5);
        try (DetectorServer server = new DetectorServer(detector::score, new GuardedStreamer(detector), 8,
                JSON.createObjectNode(), config).start();
             HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/generate");
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60)).POST(
                    HttpRequest.BodyPublishers.ofString("{\"text\": \"" + PROMPT + "\", \"max_new_tokens\": 50, \"mode\": \"flag\"}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertEquals("application/x-ndjson", r.headers().firstValue("Content-Type").orElse(""));
            List<Integer> tokens = new ArrayList<>();
            int scores = 0;
            JsonNode end = null;
            for (String line : r.body().strip().split("\n")) {
                JsonNode n = JSON.readTree(line);
                switch (n.get("type").asText()) {
                    case "token" -> tokens.add(n.get("id").asInt());
                    case "score" -> {
                        scores++;
                        assertTrue(n.get("running_score").asDouble() >= 0 && n.get("running_score").asDouble() <= 1);
                    }
                    case "end" -> end = n;
                    default -> { }
                }
            }
            // the server's cap (8) wins over the request's 50; flag mode leaves the tokens as they were
            assertEquals(8, tokens.size());
            for (int k = 0; k < 8; k++) assertEquals(expected.newIds()[k], tokens.get(k));
            assertEquals(8, scores, "the prompt's pass and the 7 tokens fed back were scored");
            assertEquals("max_tokens", end.get("stop").asText());
            assertEquals(expected.text(), end.get("text").asText());
            assertEquals("flag", end.path("guard").path("mode").asText());
            HttpResponse<String> bad = client.send(HttpRequest.newBuilder(uri).POST(
                    HttpRequest.BodyPublishers.ofString("{\"text\": \"x\", \"max_new_tokens\": -3}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(400, bad.statusCode(), bad.body());
            HttpResponse<String> health = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + "/healthz")).GET().build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, health.statusCode());
        }
        try (DetectorServer plain = new DetectorServer(detector::score, JSON.createObjectNode(), config).start();
             HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
            HttpResponse<String> r = client.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + plain.port() + "/v1/generate"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"text\": \"x\"}")).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(404, r.statusCode());
            assertTrue(r.body().contains("--generate"), r.body());
        }
    }
}
