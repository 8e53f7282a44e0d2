package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.detect.Detector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Serve a saved detector over HTTP (JSON):",
                "  POST /v1/score  {\"text\": \"...\"}  ->  {\"score\", \"flagged\", \"layer\", \"ms\"} (+ \"truncated\": true)",
                "  GET  /healthz                  ->  {\"status\": \"ok\", \"model\", \"hook\", \"layer\", ...}",
                "  POST /v1/generate {\"text\", \"max_new_tokens\", \"mode\": \"stop\"|\"flag\"}  (with --generate, causal models):",
                "       a guarded greedy generation streamed as JSON lines: {\"type\": \"token\"}, {\"type\": \"score\"} per scored",
                "       token (running score, crossed), and {\"type\": \"end\", \"stop\", \"guard\": {\"tripped\", \"token_index\"}}.",
                "Errors are JSON {\"error\": \"...\"}: 400 bad JSON, missing or empty text; 413 body over --max-bytes;",
                "503 when --threads requests are running and --queue more are waiting (retry later). Text longer than",
                "the model's context is cut at the end and scored on what is left. SIGTERM (Ctrl-C) stops accepting",
                "requests, lets running ones finish, then exits."},
        footer = {"", "Example:",
                "  jlens serve --detector out/guard --port 8080",
                "  curl -s localhost:8080/v1/score -d '{\"text\": \"How do I bake bread?\"}'",
                "  jlens serve --detector out/qwen-guard --generate --max-new-tokens 128",
                "  curl -sN localhost:8080/v1/generate -d '{\"text\": \"How do I pick a lock?\", \"mode\": \"stop\"}'"})
final class ServeCommand implements Callable<Integer> {

    @Mixin
    DetectorOptions detectorOptions;

    @Option(names = {"-p", "--port"}, defaultValue = "8080", paramLabel = "P", description = "TCP port (default: ${DEFAULT-VALUE}; 0 = any free port).")
    int port;

    @Option(names = "--bind", defaultValue = "127.0.0.1", paramLabel = "ADDR",
            description = "Address to listen on (default: ${DEFAULT-VALUE}, this machine only; 0.0.0.0 for every interface).")
    String bind;

    @Option(names = "--threads", paramLabel = "N", description = "Requests scored at once (default: 2, or fewer cores).")
    Integer threads;

    @Option(names = "--queue", defaultValue = "32", paramLabel = "N", description = "Requests that may wait for a worker before 503 (default: ${DEFAULT-VALUE}).")
    int queue;

    @Option(names = "--max-bytes", defaultValue = "262144", paramLabel = "B", description = "Largest request body accepted (default: ${DEFAULT-VALUE}).")
    int maxBytes;

    @Option(names = "--generate", description = "Also serve POST /v1/generate: guarded generation streamed as JSON lines (causal models).")
    boolean generate;

    @Option(names = "--max-new-tokens", defaultValue = "128", paramLabel = "N",
            description = "With --generate: the most tokens one request may generate (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--grace", defaultValue = "10", paramLabel = "S", description = "Seconds running requests get to finish on shutdown (default: ${DEFAULT-VALUE}).")
    int grace;

    @Override
    public Integer call() throws InterruptedException {
        // Each forward pass already uses every core for its matrix products; more concurrent requests than
        // that mostly add latency.
        int n = threads != null ? threads : Math.min(2, Runtime.getRuntime().availableProcessors());
        DetectorServer.Config config = new DetectorServer.Config(bind, port, n, queue, maxBytes, grace);
        DetectorOptions.Loaded loaded = detectorOptions.open();
        Detector d = loaded.detector();
        ObjectNode health = new ObjectMapper().createObjectNode();
        health.put("model", d.model().location().id());
        health.put("hook", d.hook());
        health.put("layer", d.layer());
        health.put("kind", d.params().kind().cliName());
        DetectorServer server;
        try {
            if (maxNewTokens < 1) throw new dev.jlens.JlensException("--max-new-tokens " + maxNewTokens + ": expected a positive number");
            server = new DetectorServer(DetectorServer.Scorer.of(d), generate ? new GuardedStreamer(d) : null, maxNewTokens, health, config).start();
        } catch (RuntimeException e) {
            loaded.close();
            throw e;
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.err.println("jlens serve: stopping (letting running requests finish)");
            server.close();
            loaded.close();
            stopped.countDown();
        }, "jlens-serve-shutdown"));
        System.err.printf("jlens serve: %s (%s, layer %d) on http://%s:%d  POST /v1/score, GET /healthz; %d worker(s), queue %d%n",
                d.model().location().id(), d.hook(), d.layer(), bind, server.port(), n, queue);
        System.out.println("listening on " + bind + ":" + server.port());
        System.out.flush();
        stopped.await();
        return 0;
    }
}
