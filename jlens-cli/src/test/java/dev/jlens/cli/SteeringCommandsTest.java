package dev.jlens.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jlens direction, steer and orthogonalize on stories260k and MiniLM, and their errors for bad input. */
class SteeringCommandsTest {

    @TempDir
    static Path tmp;

    static Path happy, sad, storiesDirections;

    static String stories() {
        return CliTestSupport.fixtures().resolve("stories260k").toString();
    }

    /** The children's-story sentences of jlens-analysis' end-to-end test. */
    static Path promptFile(String name) throws IOException {
        Path src = Path.of("../jlens-analysis/src/test/resources/dev/jlens/steering", name);
        Path dst = tmp.resolve(name);
        Files.copy(src, dst);
        return dst;
    }

    @BeforeAll
    static void directions() throws IOException {
        happy = promptFile("happy.txt");
        sad = promptFile("sad.txt");
        storiesDirections = tmp.resolve("dir-stories");
        CliTestSupport.Result r = CliTestSupport.run("direction", "--model", stories(), "--safe", happy.toString(),
                "--harmful", sad.toString(), "--positions", "last,mean", "--out", storiesDirections.toString());
        assertEquals(0, r.exitCode(), r.err());
    }

    @Test
    void directionWritesTensorsMetadataAndHeatMap() throws IOException {
        for (String f : List.of("directions.safetensors", "directions.json", "DIRECTIONS.html")) {
            assertTrue(Files.isRegularFile(storiesDirections.resolve(f)), f);
        }
        String html = Files.readString(storiesDirections.resolve("DIRECTIONS.html"));
        assertTrue(html.contains("data:image/png;base64,"), "the heat map is embedded");
        assertTrue(html.contains("Stability across depth"));
        String json = Files.readString(storiesDirections.resolve("directions.json"));
        assertTrue(json.contains("\"d_model\" : 64") && json.contains("\"n_layers\" : 5") && json.contains("\"sha256\""), json);
    }

    @Test
    void steerAddAblateAndClampWriteTheirResults() throws IOException {
        String[] common = {"--model", stories(), "--direction", storiesDirections.toString(), "--safe", happy.toString(),
                "--harmful", sad.toString(), "--eval-prompts", "4", "--cost-prompts", "4", "--centroid-prompts", "8",
                "--ce-tokens", "256", "--ce-window", "64", "--samples", "1", "--max-new-tokens", "6"};
        Path add = tmp.resolve("steer-add");
        CliTestSupport.Result r = CliTestSupport.run(concat(new String[]{"steer", "--mode", "add", "--alpha", "1x,4x",
                "--layers", "1,2", "--effect", "class", "--position", "mean", "--out", add.toString()}, common));
        assertEquals(0, r.exitCode(), r.err());
        List<String> csv = Files.readAllLines(add.resolve("steer.csv"));
        assertEquals("mode,layer,alpha,value,proj_before,proj_after,class_score,refusal_logodds,refusal_rate,effect,ce,kl,emb_change",
                csv.getFirst());
        assertEquals(1 + 1 + 2 * 2, csv.size(), String.join("\n", csv));
        assertTrue(csv.get(1).startsWith("none,,,"), csv.get(1));
        assertTrue(csv.get(2).startsWith("add,1,1x,"), csv.get(2));
        assertTrue(r.out().contains("selected: ") || r.out().contains("no selection: "), r.out());
        assertEquals(5, Files.readAllLines(add.resolve("samples.jsonl")).size(), "one sample per setting");
        String html = Files.readString(add.resolve("STEER.html"));
        assertTrue(html.contains("Effect against cost") && html.contains("data:image/png;base64,"));
        assertTrue(Files.readString(add.resolve("selection.json")).contains("\"why\""));

        Path ablate = tmp.resolve("steer-ablate");
        r = CliTestSupport.run(concat(new String[]{"steer", "--mode", "ablate", "--layers", "2", "--out", ablate.toString()}, common));
        assertEquals(0, r.exitCode(), r.err());
        List<String> rows = Files.readAllLines(ablate.resolve("steer.csv"));
        assertEquals(3, rows.size());
        String[] cells = rows.get(2).split(",", -1);
        assertEquals("ablate", cells[0]);
        assertTrue(Math.abs(Double.parseDouble(cells[5])) < 1e-4, "projection after ablation: " + rows.get(2));

        Path clamp = tmp.resolve("steer-clamp");
        r = CliTestSupport.run(concat(new String[]{"steer", "--mode", "clamp", "--alpha", "a,0", "--layers", "3",
                "--tokens", "generated", "--out", clamp.toString()}, common));
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(4, Files.readAllLines(clamp.resolve("steer.csv")).size());
    }

    @Test
    void orthogonalizedCopyLoadsUntiedAndGenerates() throws IOException {
        Path orth = tmp.resolve("stories-orth");
        CliTestSupport.Result r = CliTestSupport.run("orthogonalize", "--model", stories(), "--direction",
                storiesDirections.toString(), "--layer", "2", "--out", orth.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("the tied embedding is kept as a separate unembedding"), r.out());
        assertTrue(Files.readString(orth.resolve("config.json")).contains("\"tie_word_embeddings\" : false"));
        r = CliTestSupport.run("generate", "--model", orth.toString(), "--max-new-tokens", "8", "Once upon a time");
        assertEquals(0, r.exitCode(), r.err());
        assertFalse(r.out().isBlank());
        r = CliTestSupport.run("orthogonalize", "--model", stories(), "--direction", storiesDirections.toString(),
                "--out", tmp.resolve("stories-orth-default").toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("largest separation"), r.err());
    }

    @Test
    void encoderDirectionAndSteeringUseEmbeddings() throws IOException {
        Path dir = tmp.resolve("dir-minilm");
        CliTestSupport.Result r = CliTestSupport.run("direction", "--model", "minilm", "--safe", happy.toString(),
                "--harmful", sad.toString(), "--split", "all", "--out", dir.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(Files.readString(dir.resolve("directions.json")).contains("blocks.5.hook_resid_post:mean"));
        Path out = tmp.resolve("steer-minilm");
        r = CliTestSupport.run("steer", "--model", "minilm", "--direction", dir.toString(), "--safe", happy.toString(),
                "--harmful", sad.toString(), "--mode", "add", "--alpha", "1x,4x", "--layers", "3", "--eval-prompts", "5",
                "--cost-prompts", "5", "--centroid-prompts", "10", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        List<String> csv = Files.readAllLines(out.resolve("steer.csv"));
        assertEquals(4, csv.size());
        String[] x1 = csv.get(2).split(",", -1), x4 = csv.get(3).split(",", -1);
        // effect grows with alpha; the cost is the embedding change; no KL, CE or refusal for an encoder
        assertTrue(Double.parseDouble(x4[9]) > Double.parseDouble(x1[9]) && Double.parseDouble(x1[9]) > 0, csv.toString());
        assertTrue(Double.parseDouble(x4[12]) > Double.parseDouble(x1[12]) && Double.parseDouble(x1[12]) > 0, csv.toString());
        assertEquals("", x1[11]);
        assertEquals("", x1[10]);
        assertEquals("", x1[7]);
        r = CliTestSupport.run("steer", "--model", "minilm", "--direction", dir.toString(), "--effect", "refusal", "--out",
                tmp.resolve("x").toString());
        assertClearError(r, "encoder");
    }

    @Test
    void badInputIsAClearError() throws IOException {
        Path llamaDir = tmp.resolve("dir-llama");
        CliTestSupport.Result r = CliTestSupport.run("direction", "--model", CliTestSupport.fixtures().resolve("llama_tiny").toString(),
                "--safe", happy.toString(), "--harmful", sad.toString(), "--out", llamaDir.toString());
        assertEquals(0, r.exitCode(), r.err());
        // A direction file from another model: 3 layers against stories260k's 5.
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", llamaDir.toString(),
                "--layers", "1", "--out", tmp.resolve("o1").toString()), "3 layers", "has 5");
        assertClearError(CliTestSupport.run("orthogonalize", "--model", stories(), "--direction", llamaDir.toString(),
                "--layer", "1", "--out", tmp.resolve("o2").toString()), "3 layers", "has 5");
        // d_model 64 against MiniLM's 384.
        assertClearError(CliTestSupport.run("steer", "--model", "minilm", "--direction", storiesDirections.toString(),
                "--layers", "1", "--out", tmp.resolve("o3").toString()), "d_model 64", "d_model 384");
        // Alpha lists that do not parse, layers out of range, unknown modes and positions.
        String dir = storiesDirections.toString();
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--alpha", "1,abc"), "--alpha", "\"abc\"");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--alpha", "1,,2"), "--alpha", "empty item");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--alpha", "b"), "clamp only");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--layers", "7"),
                "layer 7 is out of range", "5 layers (0..4)");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--layers", "one"), "--layers", "\"one\"");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--mode", "push"), "--mode", "add, ablate or clamp");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", dir, "--position", "first"), "--position", "last, mean");
        assertClearError(CliTestSupport.run("orthogonalize", "--model", stories(), "--direction", dir, "--layer", "9",
                "--out", tmp.resolve("o4").toString()), "layer 9 is out of range");
        assertClearError(CliTestSupport.run("steer", "--model", stories(), "--direction", tmp.resolve("nothing").toString()),
                "no such folder");
        assertClearError(CliTestSupport.run("direction", "--model", stories(), "--positions", "last:x", "--out",
                tmp.resolve("o5").toString()), "--positions");
        assertClearError(CliTestSupport.run("direction", "--model", stories(), "--method", "svm", "--out",
                tmp.resolve("o6").toString()), "--method");
        assertClearError(CliTestSupport.run("orthogonalize", "--model", "minilm", "--direction", dir, "--out",
                tmp.resolve("o7").toString()), "embedded encoder");
    }

    private static void assertClearError(CliTestSupport.Result r, String... mustContain) {
        assertEquals(1, r.exitCode(), "exit code; stderr: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(r.err().contains("internal error"), r.err());
        for (String s : mustContain) assertTrue(r.err().contains(s), "stderr should mention '" + s + "': " + r.err());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
