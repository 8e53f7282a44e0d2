package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jlens direction --select arditi on stories260k: every candidate scored, the filter and the choice recorded. */
class ArditiCommandTest {

    @TempDir
    Path tmp;

    @Test
    void everyCandidateIsScoredAndTheFilterAndChoiceAreRecorded() throws IOException {
        Path safe = tmp.resolve("safe.txt"), harmful = tmp.resolve("harmful.txt");
        Files.writeString(safe, "Lily played with her ball\nTom ate a red apple\nThe sun was warm and nice\nA cat sat on the mat\n");
        Files.writeString(harmful, "The dog bit Tom very hard\nLily broke the window\nThe boy hit his sister\nThe bad man stole a toy\n");
        Path out = tmp.resolve("d");
        var r = CliTestSupport.run("direction", "--model", CliTestSupport.fixtures().resolve("stories260k").toString(),
                "--safe", safe.toString(), "--harmful", harmful.toString(), "--split", "all", "--positions", "last:2",
                "--select", "arditi", "--filter-tokens", "6", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode dirs = new ObjectMapper().readTree(out.resolve("directions.json").toFile());
        JsonNode json = new ObjectMapper().readTree(out.resolve("arditi.json").toFile());
        assertEquals(dirs.get("directions").size(), json.get("candidates").size(), "one candidate per direction");
        for (JsonNode c : json.get("candidates")) {
            for (String f : List.of("bypass_score", "induce_score", "kl_score")) assertTrue(c.get(f).isNumber(), c.toString());
            assertTrue(c.get("kl_score").asDouble() >= 0);
            // the recorded verdict is the rule applied to the recorded scores
            boolean passes = c.get("induce_score").asDouble() > 0 && c.get("kl_score").asDouble() < 0.1
                    && c.get("layer").asInt() < json.at("/rule/first_excluded_layer").asInt();
            assertEquals(passes, c.get("passes").asBoolean(), c.toString());
        }
        assertEquals(4, json.at("/rule/first_excluded_layer").asInt(), "(int) (5 * 0.8)");
        JsonNode f = json.get("filter");
        assertEquals(4, f.get("harmful_total").asInt());
        assertEquals(6, f.get("tokens").asInt());
        assertTrue(f.get("harmful_kept").asInt() <= 4);
        assertTrue(json.has("choice") && json.has("why"));
        List<String> csv = Files.readAllLines(out.resolve("arditi.csv"));
        assertEquals("hook,layer,position,bypass_score,induce_score,kl_score,passes,chosen,reasons", csv.getFirst());
        assertEquals(json.get("candidates").size() + 1, csv.size());
        assertTrue(r.out().contains("selected: ") || r.out().contains("no selection: "), r.out());
    }

    @Test
    void unknownRuleIsAClearError() {
        var r = CliTestSupport.run("direction", "--model", CliTestSupport.fixtures().resolve("stories260k").toString(), "--select", "best");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--select \"best\": expected arditi"), r.err());
    }
}
