package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `jlens cache --pool all --logits` reproduces every golden Hugging Face tensor, through the command line. */
class CacheCommandParityTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"gpt_neox_tiny", "gpt_neox_tiny_fp16", "gpt_neox_tiny_seq", "gpt_neox_tiny_sharded",
            "gpt_neox_tiny_bin", "gpt_neox_tiny_bin_sharded", "gpt2_tiny", "llama_tiny", "qwen2_tiny", "stories260k",
            "qwen3_tiny", "gemma2_tiny", "gemma3_tiny", "phi3_tiny", "olmo2_tiny", "mistral_sw_tiny", "llama31_tiny"})
    void cacheCommandMatchesGolden(String fixture) throws Exception {
        Path dir = CliTestSupport.fixtures().resolve(fixture);
        JsonNode golden = new ObjectMapper().readTree(dir.resolve("golden.json").toFile());
        ObjectMapper om = new ObjectMapper();
        StringBuilder jsonl = new StringBuilder();
        // Prompt files refuse empty texts (a blank line is a mistake far more often than a wish), so the
        // Llama fixtures' empty prompt (BOS only) is checked by the library parity test; here golden prompt g
        // becomes our prompt i.
        List<Integer> goldenIndex = new ArrayList<>();
        for (JsonNode p : golden.get("prompts")) {
            if (p.get("text").asText().isEmpty()) continue;
            goldenIndex.add(p.get("index").asInt());
            jsonl.append(om.createObjectNode().put("text", p.get("text").asText())).append('\n');
        }
        Path prompts = tmp.resolve("prompts.jsonl");
        Files.writeString(prompts, jsonl.toString());
        Path out = tmp.resolve("out");
        var r = CliTestSupport.run("cache", "--model", dir.toString(), "--prompts", prompts.toString(), "--hooks", "*",
                "--pool", "all", "--logits", "--batch-size", "3", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        SafetensorsFile got = SafetensorsFile.open(out.resolve("activations.safetensors"));
        // golden.safetensors (residual stream, logits) and golden_heads.safetensors (per-head and MLP hooks; the
        // bin variants hold gpt_neox_tiny_fp16's weights and use its file)
        String headsDir = fixture.startsWith("gpt_neox_tiny_bin") || fixture.equals("gpt_neox_tiny_sharded") ? "gpt_neox_tiny_fp16" : fixture;
        for (Path file : List.of(dir.resolve("golden.safetensors"),
                CliTestSupport.fixtures().resolve(headsDir).resolve("golden_heads.safetensors"))) {
            assertTrue(Files.isRegularFile(file), "missing " + file);
            assertMatches(SafetensorsFile.open(file), got, goldenIndex, fixture + " " + file.getFileName());
        }
        JsonNode meta = om.readTree(out.resolve("activations.json").toFile());
        assertTrue(meta.get("complete").asBoolean());
        assertEquals(goldenIndex.size(), meta.get("prompt_count").asInt());
        assertEquals(64, meta.get("prompts_sha256").asText().length());
        assertTrue(Files.notExists(out.resolve(ResumableCache.PARTIAL)), "partial batches are cleaned up");
    }

    /** Every tensor of want (bar ln_final.hook_out) is in got within 1e-4; masked scores (-inf) exactly. */
    static void assertMatches(SafetensorsFile want, SafetensorsFile got, List<Integer> goldenIndex, String what) {
        int checked = 0;
        double worst = 0;
        String worstName = "";
        for (String name : want.names()) {
            // Extras that are no hook point: the final norm's output, the post-norm families' branches before
            // their post-norm, Gemma 2's logits before the soft-cap.
            if (name.endsWith("ln_final.hook_out") || name.endsWith("_raw") || name.endsWith("logits_before_softcap")) continue;
            int dot = name.indexOf('.');
            int ours = goldenIndex.indexOf(Integer.parseInt(name.substring(1, dot)));
            if (ours < 0) continue;
            TensorEntry g = got.find("p" + ours + name.substring(dot));
            assertTrue(g != null, "missing " + name + " in jlens cache output");
            if (name.endsWith("input_ids")) {
                assertArrayEquals(want.find(name).toLongArray(), g.toLongArray(), name);
                continue;
            }
            assertArrayEquals(want.find(name).shape(), g.shape(), name + " shape");
            float[] a = want.find(name).toFloatArray(), b = g.toFloatArray();
            for (int i = 0; i < a.length; i++) {
                if (Float.isInfinite(a[i]) || Float.isInfinite(b[i])) {
                    assertEquals(a[i], b[i], name + " masked entry " + i);
                    continue;
                }
                double d = Math.abs((double) a[i] - b[i]);
                if (!(d <= worst)) {
                    worst = d;
                    worstName = name;
                }
            }
            checked++;
        }
        assertTrue(checked > 20, what + ": checked only " + checked);
        assertTrue(worst <= 1e-4, what + ": worst max-abs error " + worst + " at " + worstName);
    }

    static List<String> lines(String s) {
        return new ArrayList<>(s.lines().toList());
    }
}
