package dev.jlens.cli;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.GenerationGuard;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The HTTP endpoint of {@code jlens serve}: POST /v1/score and GET /healthz.
 *
 * <p>Built on the JDK's own {@code com.sun.net.httpserver.HttpServer}: it is part of every JDK (module
 * jdk.httpserver), maintained with it, and enough for two small JSON endpoints, so a guard service needs no
 * web framework and no extra dependency with its own release and security cycle.
 *
 * <p>Bounds. Scoring runs on a fixed pool of {@code threads} workers with a queue of {@code queue} waiting
 * requests; when both are full a request gets 503 at once instead of waiting. Each connection's exchange runs
 * on a virtual thread (cheap while it waits for its score), and at most {@code 2 × (threads + queue) + 16}
 * exchanges are admitted at a time, so memory stays bounded under a flood: beyond that, 503 before the body is
 * read. Bodies over {@code maxBytes} get 413. An answer given before the body was read to its end keeps the
 * connection open only if the rest of the body (up to 1 MiB) could be read and dropped; otherwise it carries
 * {@code Connection: close}, so keep-alive clients open a new connection instead of failing on a closed one.
 * Graceful close: answer 503 to new work, let running and queued scores finish (up to {@code graceSeconds}),
 * then stop listening (see {@link #close()}).
 */
final class DetectorServer implements AutoCloseable {

    /** What the server calls to score a text; a {@link Detector} in production, a stub in tests. */
    interface Scorer {
        Detector.Score score(String text);

        /** A conversation (POST /v1/score with "messages", or "prompt" and "response"). */
        default Detector.Score score(java.util.List<dev.jlens.tokenizer.ChatTemplate.Message> messages) {
            throw new JlensException("this server scores text only");
        }

        static Scorer of(Detector d) {
            return new Scorer() {
                @Override
                public Detector.Score score(String text) {
                    return d.score(text);
                }

                @Override
                public Detector.Score score(java.util.List<dev.jlens.tokenizer.ChatTemplate.Message> messages) {
                    return d.score(messages);
                }
            };
        }
    }

    /**
     * A guarded generation for POST /v1/generate: continues {@code text} with at most {@code maxNewTokens} tokens and
     * hands every event (a JSON object: token, score, end) to {@code emit} as it happens. Null when the model cannot
     * generate.
     */
    interface Streamer {
        void generate(String text, int maxNewTokens, GenerationGuard.Mode mode, java.util.function.Consumer<ObjectNode> emit);
    }

    record Config(String host, int port, int threads, int queue, int maxBytes, int graceSeconds) {
        Config {
            if (threads < 1) throw new JlensException("--threads " + threads + ": expected a positive number");
            if (queue < 0) throw new JlensException("--queue " + queue + ": expected 0 or more");
            if (maxBytes < 16) throw new JlensException("--max-bytes " + maxBytes + ": expected at least 16");
            if (port < 0 || port > 65535) throw new JlensException("--port " + port + ": expected 0..65535 (0 = any free port)");
            if (graceSeconds < 0) throw new JlensException("grace period " + graceSeconds + ": expected 0 or more seconds");
        }
    }

    /**
     * Largest unread rest of a request body that is read and dropped before an early answer, keeping the
     * connection; a longer one gets {@code Connection: close} instead. 1 MiB takes well under a millisecond to
     * read on loopback and bounds what a client can make the server read for nothing.
     */
    static final long DISCARD_LIMIT = 1 << 20;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonGenerator.Feature.ESCAPE_NON_ASCII);

    private final Scorer scorer;
    private final Streamer streamer;
    private final int maxNewTokens;
    private final ObjectNode health;
    private final Config config;
    private final HttpServer server;
    private final ThreadPoolExecutor workers;
    private final ExecutorService exchanges;
    private final Semaphore admitted;
    private final AtomicBoolean stopping = new AtomicBoolean();

    /** @param health fields reported by GET /healthz next to "status" (model, hook, layer) */
    DetectorServer(Scorer scorer, ObjectNode health, Config config) {
        this(scorer, null, 0, health, config);
    }

    /** With a streamer, POST /v1/generate streams guarded generations of at most {@code maxNewTokens} tokens. */
    DetectorServer(Scorer scorer, Streamer streamer, int maxNewTokens, ObjectNode health, Config config) {
        this.scorer = scorer;
        this.streamer = streamer;
        this.maxNewTokens = maxNewTokens;
        this.health = health.deepCopy();
        this.config = config;
        BlockingQueue<Runnable> q = config.queue() == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(config.queue());
        workers = new ThreadPoolExecutor(config.threads(), config.threads(), 0, TimeUnit.SECONDS, q,
                Thread.ofPlatform().name("jlens-score-", 0).daemon(true).factory(), new ThreadPoolExecutor.AbortPolicy());
        exchanges = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("jlens-http-", 0).factory());
        admitted = new Semaphore(2 * (config.threads() + config.queue()) + 16);
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getByName(config.host()), config.port()), 64);
        } catch (IOException e) {
            workers.shutdownNow();
            exchanges.shutdownNow();
            throw new JlensException("cannot listen on " + config.host() + ":" + config.port() + ": " + e.getMessage()
                    + " (is the port in use? --port 0 picks a free one)", e);
        }
        server.setExecutor(exchanges);
        server.createContext("/", this::handle);
    }

    DetectorServer start() {
        server.start();
        return this;
    }

    int port() {
        return server.getAddress().getPort();
    }

    /** Requests submitted to the workers and not yet finished (running plus queued). */
    int inFlight() {
        return workers.getActiveCount() + workers.getQueue().size();
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            if (!admitted.tryAcquire()) {
                send(ex, 503, error("server busy: too many open requests; retry later"));
                return;
            }
            try {
                route(ex);
            } finally {
                admitted.release();
            }
        } catch (IOException | UncheckedIOException e) {
            // the client went away; nothing to answer
        }
    }

    private void route(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        String method = ex.getRequestMethod();
        switch (path) {
            case "/healthz" -> {
                if (!method.equals("GET") && !method.equals("HEAD")) {
                    ex.getResponseHeaders().set("Allow", "GET");
                    send(ex, 405, error("use GET /healthz"));
                    return;
                }
                ObjectNode h = health.deepCopy();
                h.put("status", stopping.get() ? "stopping" : "ok");
                h.put("in_flight", inFlight());
                send(ex, stopping.get() ? 503 : 200, h);
            }
            case "/v1/score" -> {
                if (!method.equals("POST")) {
                    ex.getResponseHeaders().set("Allow", "POST");
                    send(ex, 405, error("use POST /v1/score with a JSON body {\"text\": \"...\"}"));
                    return;
                }
                score(ex);
            }
            case "/v1/generate" -> {
                if (streamer == null) {
                    send(ex, 404, error("generation is not served: start jlens serve with --generate (and a causal model)"));
                    return;
                }
                if (!method.equals("POST")) {
                    ex.getResponseHeaders().set("Allow", "POST");
                    send(ex, 405, error("use POST /v1/generate with a JSON body {\"text\": \"...\", \"max_new_tokens\": N, \"mode\": \"stop\"}"));
                    return;
                }
                generate(ex);
            }
            default -> send(ex, 404, error("no such endpoint " + path + "; use POST /v1/score, POST /v1/generate or GET /healthz"));
        }
    }

    /** The request's JSON object with a non-blank string "text", or null after answering with the error. */
    private JsonNode readText(HttpExchange ex) throws IOException {
        return readText(ex, false);
    }

    /** As above; {@code conversations}: a body with "messages" (or "prompt" and "response") is accepted too. */
    private JsonNode readText(HttpExchange ex, boolean conversations) throws IOException {
        if (stopping.get()) {
            send(ex, 503, error("server is shutting down"));
            return null;
        }
        String declared = ex.getRequestHeaders().getFirst("Content-Length");
        if (declared != null) {
            long n;
            try {
                n = Long.parseLong(declared.trim());
            } catch (NumberFormatException e) {
                send(ex, 400, error("Content-Length \"" + declared + "\" is not a number"));
                return null;
            }
            if (n > config.maxBytes()) {
                send(ex, 413, error("request body of " + n + " bytes is over the limit of " + config.maxBytes() + " bytes"));
                return null;
            }
        }
        byte[] body;
        InputStream in = ex.getRequestBody();
        body = in.readNBytes(config.maxBytes() + 1);
        if (body.length > config.maxBytes()) {
            send(ex, 413, error("request body is over the limit of " + config.maxBytes() + " bytes"));
            return null;
        }
        JsonNode node;
        try {
            node = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            String reason = e.getOriginalMessage() == null ? "" : e.getOriginalMessage().lines().findFirst().orElse("");
            send(ex, 400, error("request body is not valid JSON (" + reason + "); expected {\"text\": \"...\"}"));
            return null;
        }
        if (node == null || !node.isObject()) {
            send(ex, 400, error("expected a JSON object {\"text\": \"...\"}"));
            return null;
        }
        if (conversations && (node.has("messages") || node.has("response"))) {
            try {
                if (!dev.jlens.prompts.Conversations.fromJson(node, "text").isEmpty()) return node;
            } catch (JlensException e) {
                send(ex, 400, error(e.getMessage()));
                return null;
            }
        }
        JsonNode text = node.get("text");
        if (text == null || text.isNull()) {
            send(ex, 400, error("missing field \"text\"; expected {\"text\": \"...\"}"
                    + (conversations ? " or a conversation {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}" : "")));
            return null;
        }
        if (!text.isTextual()) {
            send(ex, 400, error("field \"text\" must be a string"));
            return null;
        }
        if (text.asText().isBlank()) {
            send(ex, 400, error("empty text: there is nothing to score"));
            return null;
        }
        return node;
    }

    private void score(HttpExchange ex) throws IOException {
        JsonNode node = readText(ex, true);
        if (node == null) return;
        JsonNode text = node.get("text");
        java.util.List<dev.jlens.tokenizer.ChatTemplate.Message> messages = dev.jlens.prompts.Conversations.fromJson(node, "text");
        Future<Detector.Score> f;
        try {
            f = workers.submit(() -> messages.isEmpty() ? scorer.score(text.asText()) : scorer.score(messages));
        } catch (RejectedExecutionException e) {
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, error("server busy: " + config.threads() + " request(s) running and " + config.queue()
                    + " queued; retry later"));
            return;
        }
        Detector.Score s;
        try {
            s = f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            send(ex, 503, error("server is shutting down"));
            return;
        } catch (ExecutionException e) {
            if (e.getCause() instanceof JlensException je) send(ex, 400, error(je.getMessage()));
            else send(ex, 500, error("internal error: " + e.getCause()));
            return;
        }
        ObjectNode r = JSON.createObjectNode();
        r.put("score", s.score());
        r.put("flagged", s.flagged());
        r.put("layer", s.layer());
        r.put("ms", Math.round(s.ms() * 1000) / 1000.0);
        if (s.truncated()) r.put("truncated", true);
        send(ex, 200, r);
    }

    /**
     * POST /v1/generate: a guarded generation streamed as JSON lines (Content-Type application/x-ndjson, chunked):
     * {"type": "token", ...} per new token, {"type": "score", ...} when a token has been scored by the guard, and a
     * last {"type": "end", "stop", "guard": {...}, "text"}. Errors before the stream starts are the usual JSON
     * 4xx/503; an error during it ends the stream with {"type": "error", "error": ...}.
     */
    private void generate(HttpExchange ex) throws IOException {
        JsonNode node = readText(ex);
        if (node == null) return;
        int n = maxNewTokens;
        JsonNode mx = node.get("max_new_tokens");
        if (mx != null && !mx.isNull()) {
            if (!mx.canConvertToInt() || mx.asInt() < 1 || !mx.isIntegralNumber()) {
                send(ex, 400, error("field \"max_new_tokens\" must be a positive whole number (at most " + maxNewTokens + ")"));
                return;
            }
            n = Math.min(maxNewTokens, mx.asInt());
        }
        GenerationGuard.Mode mode = GenerationGuard.Mode.STOP;
        JsonNode m = node.get("mode");
        if (m != null && !m.isNull()) {
            try {
                mode = GenerationGuard.Mode.parse(m.asText());
            } catch (JlensException e) {
                send(ex, 400, error("field \"mode\" must be \"stop\" or \"flag\""));
                return;
            }
        }
        int limit = n;
        GenerationGuard.Mode chosen = mode;
        String text = node.get("text").asText();
        // The worker streams only once the status line is out; the handler sends it after the worker was accepted,
        // so that a full queue can still be answered with a plain 503.
        java.util.concurrent.CompletableFuture<Void> headersSent = new java.util.concurrent.CompletableFuture<>();
        Future<?> f;
        try {
            f = workers.submit(() -> {
                headersSent.join();
                try {
                    streamer.generate(text, limit, chosen, event -> writeLine(ex, event));
                } catch (JlensException e) {
                    writeLine(ex, JSON.createObjectNode().put("type", "error").put("error", e.getMessage()));
                }
                return null;
            });
        } catch (RejectedExecutionException e) {
            ex.getResponseHeaders().set("Retry-After", "1");
            send(ex, 503, error("server busy: " + config.threads() + " request(s) running and " + config.queue()
                    + " queued; retry later"));
            return;
        }
        ex.getResponseHeaders().set("Content-Type", "application/x-ndjson");
        if (stopping.get()) ex.getResponseHeaders().set("Connection", "close");
        try {
            ex.sendResponseHeaders(200, 0);
        } catch (IOException e) {
            f.cancel(true);
            headersSent.completeExceptionally(e);
            throw e;
        }
        headersSent.complete(null);
        try {
            f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            // a client that went away ends its generation through the failed write; anything else is reported
            if (!(e.getCause() instanceof UncheckedIOException)) {
                writeLine(ex, JSON.createObjectNode().put("type", "error").put("error", "internal error: " + e.getCause()));
            }
        }
        ex.getResponseBody().close();
    }

    /** One JSON line on a streaming answer, flushed so that the client sees it at once. */
    private static void writeLine(HttpExchange ex, ObjectNode event) {
        try {
            var out = ex.getResponseBody();
            synchronized (ex) {
                out.write((JSON.writeValueAsString(event) + "\n").getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Reads and drops what is left of the request body when that is at most {@link #DISCARD_LIMIT} bytes, so that the
     * connection can stay open and a client still writing its body reads our status rather than a reset. True when
     * the body has been read to its end (at once if the handler already read it all); false when it is longer or
     * cannot be read, and the connection must then be closed. (Exchange attributes cannot carry "already read":
     * the JDK server keeps them per context, shared by every exchange.)
     */
    private static boolean discardBody(HttpExchange ex) {
        byte[] sink = new byte[8192];
        try {
            InputStream in = ex.getRequestBody();
            int n = in.read(sink);
            if (n < 0) return true;
            String declared = ex.getRequestHeaders().getFirst("Content-Length");
            if (declared != null) {
                try {
                    if (Long.parseLong(declared.trim()) > DISCARD_LIMIT) return false;
                } catch (NumberFormatException e) {
                    return false;
                }
            }
            for (long left = DISCARD_LIMIT - n; left >= 0; left -= n) {
                n = in.read(sink);
                if (n < 0) return true;
            }
            return false;
        } catch (IOException | UncheckedIOException e) {
            return false;
        }
    }

    private static ObjectNode error(String message) {
        return JSON.createObjectNode().put("error", message);
    }

    private void send(HttpExchange ex, int status, ObjectNode body) throws IOException {
        byte[] bytes = (JSON.writeValueAsString(body) + "\n").getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        // An answer given before the request body was read (413, an early 503, a bad Content-Length) leaves the
        // rest of the body on the connection, and the JDK server then closes it after the answer. It must say so:
        // a keep-alive client that is not told reuses the connection and its next request fails with a reset.
        boolean bodyDone = discardBody(ex);
        if (stopping.get() || !bodyDone) ex.getResponseHeaders().set("Connection", "close");
        if (ex.getRequestMethod().equals("HEAD")) {
            ex.sendResponseHeaders(status, -1);
            return;
        }
        ex.sendResponseHeaders(status, bytes.length);
        // Closing the response first sends it at once; the exchange's own close would first try to drain an unread
        // body, and wait for a client that is not sending it.
        try (var out = ex.getResponseBody()) {
            out.write(bytes);
        }
    }

    /**
     * Drains, then stops. While draining the listener stays open and answers: /healthz says 503 "stopping" (so a
     * load balancer takes this instance out of rotation) and new scores get 503 with {@code Connection: close}.
     * Closing the listener first, as {@code HttpServer.stop} does, leaves a client that reuses a keep-alive
     * connection waiting without an answer until the grace period ends; answering 503 tells it at once. Once the
     * running and queued scores are done (or the grace period is over) the server stops and connections are refused.
     */
    @Override
    public void close() {
        if (!stopping.compareAndSet(false, true)) return;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(config.graceSeconds());
        workers.shutdown();
        try {
            if (!workers.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) workers.shutdownNow();
        } catch (InterruptedException e) {
            workers.shutdownNow();
            Thread.currentThread().interrupt();
        }
        // a finished score still has its response to write: give the exchanges the rest of the grace (at least 1 s)
        server.stop((int) Math.max(1, TimeUnit.NANOSECONDS.toSeconds(deadline - System.nanoTime())));
        exchanges.shutdown();
    }
}
