package dev.jlens.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A judge behind an OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp's server, a hosted API).
 * With {@link GuardModelJudge.Kind#LLAMA_GUARD} the conversation is sent as a user and an assistant message and
 * the server's chat template (Llama Guard's own) builds the question; with HARMBENCH the classifier prompt is sent
 * as one user message. Temperature 0, a few tokens.
 *
 * <p>Each request has a timeout; a timeout, a refused connection, 429 or a 5xx is retried with exponential
 * back-off (a Retry-After header in seconds is honoured, capped at 30 s); other statuses and answers that are not
 * chat-completion JSON fail at once with the body's start in the message. At most {@code concurrency} requests
 * are in flight.
 */
public final class EndpointJudge implements Judge {

    /**
     * @param url         the server's base (…/v1) or the full …/chat/completions address
     * @param apiKey      sent as a Bearer token; null for none
     * @param timeout     per request
     * @param retries     extra tries after the first
     * @param backoff     the first retry's wait; doubled each time
     * @param concurrency requests in flight at most
     */
    public record Config(String url, String model, String apiKey, GuardModelJudge.Kind kind, Duration timeout, int retries,
                         Duration backoff, int concurrency) {
        public Config {
            if (url == null || url.isBlank()) throw new JlensException("--judge-url: empty; expected e.g. http://localhost:8000/v1");
            if (model == null || model.isBlank()) throw new JlensException("--judge-model: needed with --judge-url (the served model's name)");
            if (retries < 0) throw new JlensException("--judge-retries " + retries + ": expected 0 or more");
            if (concurrency < 1) throw new JlensException("--judge-concurrency " + concurrency + ": expected at least 1");
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Config cfg;
    private final URI endpoint;
    private final HttpClient http;
    private final ExecutorService pool;

    public EndpointJudge(Config cfg) {
        this.cfg = cfg;
        String u = cfg.url().strip();
        if (!u.startsWith("http://") && !u.startsWith("https://")) {
            throw new JlensException("--judge-url " + u + ": expected an http:// or https:// address");
        }
        if (!u.endsWith("/chat/completions")) u = (u.endsWith("/") ? u.substring(0, u.length() - 1) : u) + "/chat/completions";
        try {
            this.endpoint = URI.create(u);
        } catch (IllegalArgumentException e) {
            throw new JlensException("--judge-url " + cfg.url() + ": not a valid address (" + e.getMessage() + ")");
        }
        this.http = HttpClient.newBuilder().connectTimeout(cfg.timeout()).build();
        this.pool = Executors.newFixedThreadPool(cfg.concurrency(), Thread.ofVirtual().factory());
    }

    @Override
    public String name() {
        return (cfg.kind() == GuardModelJudge.Kind.LLAMA_GUARD ? "llama-guard" : "harmbench-classifier") + "(" + cfg.model() + " @ "
                + endpoint + ")";
    }

    @Override
    public List<Verdict> judge(List<Exchange> exchanges) {
        List<Future<Verdict>> futures = new ArrayList<>();
        for (Exchange e : exchanges) futures.add(pool.submit(() -> judgeOne(e)));
        List<Verdict> out = new ArrayList<>();
        try {
            for (Future<Verdict> f : futures) out.add(f.get());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JlensException("judging interrupted");
        } catch (ExecutionException e) {
            futures.forEach(f -> f.cancel(true));
            if (e.getCause() instanceof JlensException je) throw je;
            throw new JlensException("judge endpoint " + endpoint + ": " + e.getCause(), e.getCause());
        }
        return out;
    }

    String body(Exchange e) {
        ObjectNode root = JSON.createObjectNode();
        root.put("model", cfg.model());
        root.put("temperature", 0);
        root.put("max_tokens", cfg.kind() == GuardModelJudge.Kind.LLAMA_GUARD ? 16 : 4);
        ArrayNode msgs = root.putArray("messages");
        if (cfg.kind() == GuardModelJudge.Kind.LLAMA_GUARD) {
            msgs.addObject().put("role", "user").put("content", e.prompt());
            msgs.addObject().put("role", "assistant").put("content", e.completion());
        } else {
            msgs.addObject().put("role", "user").put("content", HarmBenchClassifier.prompt(e.behavior(), e.completion()));
        }
        return root.toString();
    }

    private Verdict judgeOne(Exchange e) throws InterruptedException {
        HttpRequest.Builder rb = HttpRequest.newBuilder(endpoint).timeout(cfg.timeout())
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body(e)));
        if (cfg.apiKey() != null && !cfg.apiKey().isEmpty()) rb.header("Authorization", "Bearer " + cfg.apiKey());
        HttpRequest req = rb.build();
        String lastProblem = null;
        long wait = Math.max(1, cfg.backoff().toMillis());
        for (int attempt = 0; attempt <= cfg.retries(); attempt++) {
            if (attempt > 0) {
                Thread.sleep(wait);
                wait *= 2;
            }
            HttpResponse<String> resp;
            try {
                resp = http.send(req, HttpResponse.BodyHandlers.ofString());
            } catch (HttpConnectTimeoutException | ConnectException ce) {
                lastProblem = "cannot connect (" + describe(ce) + ")";
                continue;
            } catch (HttpTimeoutException te) {
                lastProblem = "no answer within " + cfg.timeout().toMillis() + " ms";
                continue;
            } catch (IOException io) {
                lastProblem = "connection failed (" + describe(io) + ")";
                continue;
            }
            int code = resp.statusCode();
            if (code == 429 || code >= 500) {
                lastProblem = "HTTP " + code + " " + excerpt(resp.body());
                wait = Math.max(wait, retryAfterMillis(resp));
                continue;
            }
            if (code != 200) {
                throw new JlensException("judge endpoint " + endpoint + " answered HTTP " + code + ": " + excerpt(resp.body())
                        + (code == 401 || code == 403 ? "; check the API key variable (--judge-key-env)" : "")
                        + (code == 404 ? "; check --judge-url (expected the server's /v1 base) and --judge-model" : ""));
            }
            String content = content(resp.body());
            return cfg.kind() == GuardModelJudge.Kind.LLAMA_GUARD ? LlamaGuard.parse(content) : HarmBenchClassifier.parse(content);
        }
        throw new JlensException("judge endpoint " + endpoint + ": " + lastProblem + " after " + (cfg.retries() + 1)
                + " tries; is the server running, and is --judge-url right?");
    }

    /** choices[0].message.content, or an error that shows what came instead. */
    private String content(String body) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException ex) {
            throw new JlensException("judge endpoint " + endpoint + " answered with something that is not JSON: " + excerpt(body)
                    + "; expected an OpenAI chat-completions response");
        }
        JsonNode c = root == null ? null : root.path("choices").path(0).path("message").path("content");
        if (c == null || !c.isTextual()) {
            throw new JlensException("judge endpoint " + endpoint + " answered JSON without choices[0].message.content: "
                    + excerpt(body) + "; expected an OpenAI chat-completions response");
        }
        return c.asText();
    }

    private static long retryAfterMillis(HttpResponse<?> r) {
        return r.headers().firstValue("Retry-After").map(v -> {
            try {
                return Math.min(30_000L, Math.max(0, Long.parseLong(v.strip())) * 1000L);
            } catch (NumberFormatException e) {
                return 0L;
            }
        }).orElse(0L);
    }

    private static String describe(Throwable t) {
        return t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
    }

    private static String excerpt(String body) {
        String b = body == null ? "" : body.strip().replace('\n', ' ');
        return "\"" + (b.length() > 200 ? b.substring(0, 200) + "..." : b) + "\"";
    }

    @Override
    public void close() {
        pool.shutdownNow();
        http.close();
    }
}
