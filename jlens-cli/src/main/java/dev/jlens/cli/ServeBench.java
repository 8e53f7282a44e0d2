package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.ProbeData;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;

import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * {@code jlens bench --detector D --serve}: the HTTP service under a loopback load. {@code clients} keep-alive
 * clients (each its own JDK {@link HttpClient}, so each reuses one connection) send requests back to back for
 * {@code seconds}: built-in test prompts, with one request in five malformed JSON and one in ten a body over the
 * size limit. The server runs in this process with the defaults of {@code jlens serve}. Reported: scores per
 * second, the latency of the 200 answers (median, p90, p99), every status code counted, and connection errors
 * (which must be zero; the suite's DetectorServerLoadTest asserts the same without timing anything).
 */
final class ServeBench {

    private ServeBench() {
    }

    static int run(Path dir, String model, String revision, int clients, int seconds, PrintStream out) throws InterruptedException {
        if (clients < 1) throw new JlensException("--clients " + clients + ": expected a positive number");
        if (seconds < 1) throw new JlensException("--seconds " + seconds + ": expected a positive number");
        HookedModel m = model == null ? null : ModelLoader.load(model, revision);
        ObjectMapper json = new ObjectMapper();
        try (Detector d = m == null ? Detector.load(dir) : Detector.load(dir, m)) {
            List<String> prompts = ProbeData.builtin().examples().stream()
                    .filter(e -> e.split().equals("test")).map(ProbeData.Example::text).toList();
            int threads = Math.min(2, Runtime.getRuntime().availableProcessors()), queue = 32, maxBytes = 262_144;
            for (int i = 0; i < Math.min(40, prompts.size()); i++) d.score(prompts.get(i));
            DetectorServer.Config config = new DetectorServer.Config("127.0.0.1", 0, threads, queue, maxBytes, 10);
            List<Long> latencies = Collections.synchronizedList(new ArrayList<>());
            Map<Integer, Integer> statuses = Collections.synchronizedMap(new TreeMap<>());
            List<String> errors = Collections.synchronizedList(new ArrayList<>());
            long t0, elapsed;
            try (DetectorServer server = new DetectorServer(d::score, json.createObjectNode(), config).start()) {
                URI uri = URI.create("http://127.0.0.1:" + server.port() + "/v1/score");
                String oversized = json.createObjectNode().put("text", "x".repeat(maxBytes + 1000)).toString();
                ExecutorService pool = Executors.newFixedThreadPool(clients);
                t0 = System.nanoTime();
                long end = t0 + TimeUnit.SECONDS.toNanos(seconds);
                List<Future<?>> futures = new ArrayList<>();
                for (int c = 0; c < clients; c++) {
                    Random rnd = new Random(c);
                    futures.add(pool.submit(() -> {
                        try (HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
                            while (System.nanoTime() < end) {
                                int k = rnd.nextInt(10);
                                String body = k < 7 ? json.createObjectNode().put("text", prompts.get(rnd.nextInt(prompts.size()))).toString()
                                        : k < 9 ? "{\"text\": " : oversized;
                                long s = System.nanoTime();
                                try {
                                    HttpResponse<Void> r = client.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(60))
                                            .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.discarding());
                                    if (r.statusCode() == 200) latencies.add(System.nanoTime() - s);
                                    statuses.merge(r.statusCode(), 1, Integer::sum);
                                } catch (IOException e) {
                                    errors.add(e.toString());
                                }
                            }
                        }
                        return null;
                    }));
                }
                for (Future<?> f : futures) {
                    try {
                        f.get();
                    } catch (java.util.concurrent.ExecutionException e) {
                        throw new JlensException("load client failed: " + e.getCause(), e.getCause());
                    }
                }
                elapsed = System.nanoTime() - t0;
                pool.shutdown();
            }
            long[] lat = latencies.stream().mapToLong(Long::longValue).toArray();
            Arrays.sort(lat);
            out.printf(Locale.ROOT, "detector     %s: %s at %s (layer %d), model %s%n", dir, d.params().kind().cliName(), d.hook(),
                    d.layer(), d.model().location().id());
            out.printf(Locale.ROOT, "load         %d keep-alive clients for %d s on loopback: 70%% built-in test prompts, 20%% malformed "
                    + "JSON, 10%% bodies over %d bytes; server: %d worker(s), queue %d, %d cores%n", clients, seconds, maxBytes,
                    threads, queue, Runtime.getRuntime().availableProcessors());
            out.printf(Locale.ROOT, "answers      %s%n", statuses);
            out.printf(Locale.ROOT, "scores       %d, %.1f per second%n", lat.length, lat.length / (elapsed / 1e9));
            if (lat.length > 0) {
                out.printf(Locale.ROOT, "latency      median %.1f ms, p90 %.1f ms, p99 %.1f ms (200 answers, client side)%n",
                        q(lat, 0.5), q(lat, 0.9), q(lat, 0.99));
            }
            out.printf(Locale.ROOT, "errors       %d connection error(s)%s%n", errors.size(), errors.isEmpty() ? "" : ", first: " + errors.getFirst());
            return errors.isEmpty() ? 0 : 1;
        } finally {
            if (m != null) m.close();
        }
    }

    private static double q(long[] sorted, double p) {
        int i = (int) Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
        return sorted[i] / 1e6;
    }
}
