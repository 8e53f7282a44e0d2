package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `jlens generate`: the text alone on stdout, diagnostics on stderr, clear errors. */
class GenerateCommandTest {

    private static String stories() {
        return CliTestSupport.fixtures().resolve("stories260k").toString();
    }

    @Test
    void greedyContinuationOnStdoutOnly() throws IOException {
        JsonNode ref = new ObjectMapper().readTree(CliTestSupport.fixtures().resolve("stories260k/generate.json").toFile());
        CliTestSupport.Result r = CliTestSupport.run("generate", "--model", stories(), "--max-new-tokens", "40", "Once upon a time");
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(ref.get("new_text").asText() + System.lineSeparator(), r.out());
        assertTrue(r.err().contains("40 new tokens"), r.err());
    }

    @Test
    void severalPromptsAndAStopString() {
        CliTestSupport.Result r = CliTestSupport.run("generate", "--model", stories(), "--max-new-tokens", "30",
                "--stop", "Lily", "Once upon a time", "Lily saw a big ball.");
        assertEquals(0, r.exitCode(), r.err());
        String[] lines = r.out().split("\\R");
        assertEquals(2, lines.length, r.out());
        assertEquals(", there was a little girl named ", lines[0]);
        assertFalse(r.out().contains("Lily"));
        assertTrue(r.err().contains("--- prompt 2: Lily saw a big ball."), r.err());
        assertTrue(r.err().contains("stop string"), r.err());
    }

    @Test
    void seededSamplingRepeats() {
        String[] args = {"generate", "--model", stories(), "--max-new-tokens", "20", "--temperature", "0.9",
                "--top-k", "40", "--top-p", "0.9", "--seed", "3", "Once upon a time"};
        CliTestSupport.Result a = CliTestSupport.run(args), b = CliTestSupport.run(args);
        assertEquals(0, a.exitCode(), a.err());
        assertEquals(a.out(), b.out());
    }

    @Test
    void encoderAndBadSettingsAreClearErrors() {
        CliTestSupport.Result r = CliTestSupport.run("generate", "--model", "minilm", "hello");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("encoder") && r.err().contains("cannot generate"), r.err());
        r = CliTestSupport.run("generate", "--model", stories(), "--temperature", "-1", "hello");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--temperature -1.0"), r.err());
        r = CliTestSupport.run("generate", "--model", stories(), "--top-p", "1.5", "hello");
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("--top-p"), r.err());
        assertFalse(r.err().contains("\tat "));
    }
}
