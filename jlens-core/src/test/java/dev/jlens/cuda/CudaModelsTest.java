package dev.jlens.cuda;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.KvCache;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whole models on the GPU against the Hugging Face goldens: every causal fixture found under the fixtures
 * folder (those jlens has a family for), every golden hook and the logits, within 1e-4 in fp32 and with a
 * per-hook cosine ≥ 0.999 in bf16; greedy generation with the KV cache on the GPU reproducing stories260k's
 * generate.json; and one timing line. The model is driven without a tokenizer (the goldens carry the token
 * ids), so that the device check needs no tokenizer native library.
 */
class CudaModelsTest {

    static final double FP32_ATOL = 1e-4;
    static final double BF16_MIN_COSINE = 0.999;

    static double cosine(float[] a, float[] b) {
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        if (aa == 0 && bb == 0) return 1;
        return ab / Math.sqrt(aa * bb);
    }

    /** Fixture folders with goldens whose config.json names a causal family jlens runs. */
    static List<String> causalFixtures() {
        List<String> out = new ArrayList<>();
        Path root = Fixtures.root();
        try (Stream<Path> dirs = Files.list(root)) {
            for (Path d : dirs.sorted().toList()) {
                if (!Files.isRegularFile(d.resolve("golden.json")) || !Files.isRegularFile(d.resolve("config.json"))) continue;
                try {
                    ModelFamily f = ModelFamilies.forConfig(ModelConfig.read(d.resolve("config.json")));
                    if (!f.name().equals("bert")) out.add(d.getFileName().toString());
                } catch (JlensException e) {
                    System.out.println("fixture " + d.getFileName() + ": skipped, no family for it yet (" + e.getMessage() + ")");
                }
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return out;
    }

    /** A model and its open checkpoint (closed together). */
    record Loaded(TransformerModel model, TensorSource weights) implements AutoCloseable {
        @Override
        public void close() {
            weights.close();
        }
    }

    static Loaded load(Path dir, Backend backend) {
        ModelConfig cfg = ModelConfig.read(dir.resolve("config.json"));
        TensorSource weights = Checkpoints.open(dir);
        try {
            return new Loaded(ModelFamilies.forConfig(cfg).load(cfg, weights, backend), weights);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    /** Every hook point's value and the logits of one prompt. */
    static Map<String, float[]> run(TransformerModel m, int[] ids) {
        Map<String, float[]> got = new HashMap<>();
        Hooks hooks = Hooks.none().with(name -> true, (point, value, batch) -> {
            got.put(point.name(), value.data().clone());
            return value;
        });
        FloatTensor logits = m.forward(TokenBatch.single(ids), ForwardOptions.full(), hooks);
        got.put("logits", logits.data());
        return got;
    }

    @TestFactory
    Stream<DynamicTest> everyCausalFixtureMatchesItsGoldensInFp32() {
        return causalFixtures().stream().map(f -> DynamicTest.dynamicTest(f + " fp32", () -> check(f, ComputeMode.FP32)));
    }

    @TestFactory
    Stream<DynamicTest> everyCausalFixtureStaysCloseInBf16() {
        return causalFixtures().stream().map(f -> DynamicTest.dynamicTest(f + " bf16", () -> check(f, ComputeMode.BF16)));
    }

    private static void check(String fixture, ComputeMode mode) {
        Backend backend = CudaTestSupport.backend(mode);
        Fixtures.Golden g = Fixtures.golden(fixture);
        long t0 = System.nanoTime();
        try (Loaded l = load(g.dir(), backend)) {
            long loaded = System.nanoTime();
            int checked = 0;
            double worst = mode == ComputeMode.FP32 ? 0 : 1;
            String worstName = "";
            for (Fixtures.Prompt p : g.prompts()) {
                Map<String, float[]> got = run(l.model, p.ids());
                String prefix = "p" + p.index() + ".";
                for (String name : g.names()) {
                    if (!name.startsWith(prefix)) continue;
                    String hook = name.substring(prefix.length());
                    if (hook.equals("input_ids") || hook.equals("ln_final.hook_out")) continue;
                    float[] have = got.get(hook);
                    assertNotNull(have, fixture + ": the model has no hook " + hook + " (golden " + name + ")");
                    float[] want = g.tensor(name);
                    double score = mode == ComputeMode.FP32 ? Fixtures.maxAbsDiff(want, have) : cosine(want, have);
                    if (mode == ComputeMode.FP32 ? score > worst : score < worst) {
                        worst = score;
                        worstName = name;
                    }
                    checked++;
                }
                if (!g.has(prefix + "logits")) {
                    float[] want = Fixtures.logitsFromFinalNorm(g, p.index());
                    float[] have = got.get("logits");
                    double score = mode == ComputeMode.FP32 ? Fixtures.maxAbsDiff(want, have) : cosine(want, have);
                    if (mode == ComputeMode.FP32 ? score > worst : score < worst) {
                        worst = score;
                        worstName = prefix + "ln_final.hook_out x unembedding";
                    }
                    checked++;
                }
            }
            long done = System.nanoTime();
            System.out.printf("parity %s %s on %s: %d golden tensors, %s %.3g at %s; load %.0f ms, forwards %.0f ms%n", fixture,
                    mode.label(), backend.name(), checked, mode == ComputeMode.FP32 ? "worst max-abs" : "lowest cosine", worst,
                    worstName, (loaded - t0) / 1e6, (done - loaded) / 1e6);
            assertTrue(checked > 20, "too few golden tensors checked: " + checked);
            if (mode == ComputeMode.FP32) {
                assertTrue(worst <= FP32_ATOL, fixture + " fp32: worst max-abs error " + worst + " at " + worstName);
            } else {
                assertTrue(worst >= BF16_MIN_COSINE, fixture + " bf16: lowest cosine " + worst + " at " + worstName);
            }
        }
    }


    /** Greedy decoding with the KV cache: prefill, then one token at a time, argmax of the last row. */
    static int[] greedy(TransformerModel m, int[] prompt, int steps) {
        int vocab = m.info().vocabSize();
        KvCache cache = KvCache.create(1);
        int[] out = new int[steps];
        int[] next = prompt;
        for (int i = 0; i < steps; i++) {
            FloatTensor logits = m.forward(cache.batch(List.of(next)), ForwardOptions.full(), Hooks.none(), cache);
            float[] z = logits.data();
            int last = z.length / vocab - 1, best = 0;
            for (int v = 1; v < vocab; v++) if (z[last * vocab + v] > z[last * vocab + best]) best = v;
            out[i] = best;
            next = new int[]{best};
        }
        return out;
    }

    record Generation(int[] prompt, int[] want) {
        static Generation read(Path file) throws IOException {
            JsonNode j = new ObjectMapper().readTree(file.toFile());
            int[] prompt = new int[j.get("prompt_ids").size()], want = new int[j.get("new_token_ids").size()];
            for (int i = 0; i < prompt.length; i++) prompt[i] = j.get("prompt_ids").get(i).asInt();
            for (int i = 0; i < want.length; i++) want[i] = j.get("new_token_ids").get(i).asInt();
            return new Generation(prompt, want);
        }
    }

    @Test
    void greedyGenerationWithTheKvCacheOnTheGpuEqualsHuggingFace() throws IOException {
        for (ComputeMode mode : ComputeMode.values()) {
            if (mode == ComputeMode.BF16 && CudaTestSupport.cpuStandIn()) continue;
            Backend backend = CudaTestSupport.backend(mode);
            Path dir = Fixtures.dir("stories260k");
            Assumptions.assumeTrue(Files.isRegularFile(dir.resolve("generate.json")), "no " + dir.resolve("generate.json"));
            Generation g = Generation.read(dir.resolve("generate.json"));
            try (Loaded l = load(dir, backend)) {
                long t0 = System.nanoTime();
                int[] got = greedy(l.model, g.prompt, g.want.length);
                System.out.printf("generate stories260k %s on %s: %d tokens in %.0f ms, %s%n", mode.label(), backend.name(),
                        got.length, (System.nanoTime() - t0) / 1e6, java.util.Arrays.equals(got, g.want) ? "equal to HF" : "DIFFERENT");
                assertArrayEquals(g.want, got, "stories260k greedy tokens with the KV cache, " + mode.label());
            }
        }
    }

    @Test
    void timingLine() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        List<String> fixtures = causalFixtures();
        Assumptions.assumeFalse(fixtures.isEmpty(), "no causal fixture");
        String fixture = fixtures.contains("stories260k") ? "stories260k" : fixtures.getFirst();
        Fixtures.Golden g = Fixtures.golden(fixture);
        int[] ids = g.prompts().stream().map(Fixtures.Prompt::ids).max(java.util.Comparator.comparingInt(a -> a.length)).orElseThrow();
        StringBuilder line = new StringBuilder("timing " + fixture + ", " + ids.length + " tokens, ms per forward (median of 15):");
        for (Backend b : List.of(gpu, Backend.cpu(Runtime.getRuntime().availableProcessors()))) {
            try (Loaded l = load(g.dir(), b)) {
                long[] t = new long[15];
                for (int i = 0; i < 3; i++) l.model.forward(TokenBatch.single(ids), ForwardOptions.full(), Hooks.none());
                for (int i = 0; i < t.length; i++) {
                    long s = System.nanoTime();
                    l.model.forward(TokenBatch.single(ids), ForwardOptions.full(), Hooks.none());
                    t[i] = System.nanoTime() - s;
                }
                java.util.Arrays.sort(t);
                line.append(String.format(" %s %.2f", b.name() + (b == gpu ? "" : "(" + b.threads() + " threads)"), t[t.length / 2] / 1e6));
            }
        }
        System.out.println(line);
    }
}
