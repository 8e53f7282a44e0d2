package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code jlens probe} on synthetic prompt files whose label is one word: the TF-IDF baseline reaches AUROC ≈ 1,
 * and PROBE.html, probe.json and stdout say that the residual probe does not beat the words.
 */
class ProbeBaselinesCliTest {

    @TempDir
    static Path tmp;
    static final ObjectMapper JSON = new ObjectMapper();
    static final String[] FILLER = ("river stone window paper garden quiet yellow table morning basket cloud simple orange "
            + "letter bridge candle forest music pocket silver").split(" ");

    static Path file(String name, int n, Random rnd) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            boolean harmful = i % 2 == 0;
            List<String> w = new ArrayList<>();
            for (int k = 0, len = 6 + rnd.nextInt(5); k < len; k++) w.add(FILLER[rnd.nextInt(FILLER.length)]);
            if (harmful) w.add(rnd.nextInt(w.size() + 1), "zorblax");
            lines.add(JSON.createObjectNode().put("id", name + "-" + i).put("text", String.join(" ", w))
                    .put("label", harmful ? "harmful" : "harmless").put("category", harmful ? "marked" : "plain").toString());
        }
        Path f = tmp.resolve(name + ".jsonl");
        Files.write(f, lines);
        return f;
    }

    @Test
    void aSingleLabelWordIsCaughtByTheWordsAndTheReportSaysSo() throws Exception {
        Random rnd = new Random(5);
        Path train = file("train", 160, rnd), val = file("val", 80, rnd), test = file("test", 80, rnd);
        Path out = tmp.resolve("probe");
        CliTestSupport.Result r = CliTestSupport.run("probe", "--model", CliTestSupport.fixtures().resolve("gpt_neox_tiny").toString(),
                "--hooks", "blocks.1.hook_resid_post", "--detectors", "logistic", "--bootstrap", "200",
                "--train", train.toString(), "--val", val.toString(), "--test", test.toString(), "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode b = JSON.readTree(out.resolve("probe.json").toFile()).get("baselines");
        double auc = b.path("tf-idf").path("test").path("auroc").path("value").asDouble();
        assertTrue(auc > 0.995, "TF-IDF AUROC " + auc);
        assertTrue(b.path("length").path("test").path("auroc").has("ci_lo"));
        assertFalse(b.path("probe_beats_tf_idf").asBoolean());
        assertTrue(r.out().contains("does not beat the words"), r.out());
        String html = Files.readString(out.resolve("PROBE.html"));
        assertTrue(html.contains("<b>does not beat the words</b>"), "the Reading says it plainly");
        assertTrue(html.contains("Baselines: what the words alone achieve"));
        // the user's own splits: there is no random-vs-style comparison to make
        assertTrue(JSON.readTree(out.resolve("probe.json").toFile()).get("cross_split").isNull());
        assertFalse(Files.exists(out.resolve("splits.csv")));
        assertFalse(html.contains("Random split vs style-held-out split"));
    }
}
