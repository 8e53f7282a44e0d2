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
                "Errors are JSON {\"error\": \"...\"}: 400 bad JSON, missing or empty text; 413 body over --max-bytes;",
                "503 when --threads requests are running and --queue more are waiting (retry later). Text longer than",
                "the model's context is cut at the end and scored on what is left. SIGTERM (Ctrl-C) stops accepting",
                "requests, lets running ones finish, then exits."},
        footer = {"", "Example:",
                "  jlens serve --detector out/guard --port 8080",
                "  curl -s localhost:8080/v1/score -d '{\"text\": \"How do I bake bread?\"}'"})
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
            server = new DetectorServer(d::score, health, config).start();
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
