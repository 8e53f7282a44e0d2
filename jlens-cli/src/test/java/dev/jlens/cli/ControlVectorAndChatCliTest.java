package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** jlens control-vector export/import through the CLI, and jlens generate --chat. */
class ControlVectorAndChatCliTest {

    @TempDir
    Path tmp;

    @Test
    void exportThenImportGivesTheScaledDirections() throws IOException {
        String model = CliTestSupport.fixtures().resolve("stories260k").toString();
        Path safe = tmp.resolve("a.txt"), harmful = tmp.resolve("b.txt");
        Files.writeString(safe, "Lily played with her ball.\nTom ate a red apple.\nA cat sat on the mat.\n");
        Files.writeString(harmful, "The dog bit Tom very hard.\nLily broke the window.\nThe bad man stole a toy.\n");
        Path dir = tmp.resolve("dir");
        assertEquals(0, CliTestSupport.run("direction", "--model", model, "--safe", safe.toString(), "--harmful", harmful.toString(),
                "--split", "all", "--positions", "last", "--out", dir.toString()).exitCode());
        Path gguf = tmp.resolve("cv.gguf");
        var r = CliTestSupport.run("control-vector", "export", "--direction", dir.toString(), "--layers", "2:1.0,4:0.5",
                "--alpha", "3", "--out", gguf.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("[direction.1, direction.3]") && r.out().contains("model_hint \"llama\""), r.out());

        Path back = tmp.resolve("back");
        r = CliTestSupport.run("control-vector", "import", gguf.toString(), "--model", model, "--out", back.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode orig = new ObjectMapper().readTree(dir.resolve("directions.json").toFile());
        JsonNode imp = new ObjectMapper().readTree(back.resolve("directions.json").toFile());
        assertEquals("control-vector", imp.get("method").asText());
        assertEquals(2, imp.get("directions").size());
        assertEquals("blocks.1.hook_resid_post", imp.get("directions").get(0).get("hook").asText());
        assertEquals("blocks.3.hook_resid_post", imp.get("directions").get(1).get("hook").asText());
        // α 3 × weight: the imported norms are the vectors' lengths
        assertEquals(3.0, imp.get("directions").get(0).get("norm").asDouble(), 1e-5);
        assertEquals(1.5, imp.get("directions").get(1).get("norm").asDouble(), 1e-5);
        assertEquals(orig.get("d_model").asInt(), imp.get("d_model").asInt());

        // the imported folder steers like any other
        r = CliTestSupport.run("steer", "--model", model, "--direction", back.toString(), "--mode", "add", "--alpha", "1x",
                "--safe", safe.toString(), "--harmful", harmful.toString(), "--eval-split", "all", "--samples", "0",
                "--ce-window", "0", "--out", tmp.resolve("steer").toString());
        assertEquals(0, r.exitCode(), r.err());

        // vector arithmetic: 2·dir has the same unit directions and twice the norms
        Path twice = tmp.resolve("twice");
        r = CliTestSupport.run("direction", "--combine", dir + ":2", "--out", twice.toString());
        assertEquals(0, r.exitCode(), r.err());
        JsonNode tw = new ObjectMapper().readTree(twice.resolve("directions.json").toFile());
        assertEquals(2 * orig.get("directions").get(2).get("norm").asDouble(), tw.get("directions").get(2).get("norm").asDouble(), 1e-4);

        // steered generation with two weighted layers, as the control vector applies them
        r = CliTestSupport.run("generate", "--model", model, "--direction", dir.toString(), "--layers", "2:1.0,4:0.5", "--alpha", "30",
                "--max-new-tokens", "8", "Once upon a time");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("steering: add blocks.2.hook_resid_pre +"), r.err());
        var unsteered = CliTestSupport.run("generate", "--model", model, "--max-new-tokens", "8", "Once upon a time");
        assertNotEquals(unsteered.out(), r.out(), "steering changes the continuation");

        r = CliTestSupport.run("control-vector", "export", "--direction", dir.toString(), "--layers", "1", "--out", tmp.resolve("x.gguf").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("llama.cpp never steers the input of block 1"), r.err());
    }

    @Test
    void generateChatWrapsThePromptInTheTemplate() throws IOException {
        Path chatModel = FamiliesAndChatCliTest.chatModel(tmp.resolve("chat"), FamiliesAndChatCliTest.LLAMA2_CHAT);
        var chat = CliTestSupport.run("generate", "--model", chatModel.toString(), "--chat", "--max-new-tokens", "12", "Tell me a story");
        assertEquals(0, chat.exitCode(), chat.err());
        assertTrue(chat.err().contains("chat template: "), chat.err());
        var plain = CliTestSupport.run("generate", "--model", chatModel.toString(), "--max-new-tokens", "12", "Tell me a story");
        assertEquals(0, plain.exitCode(), plain.err());
        assertNotEquals(plain.out(), chat.out(), "the template changes what the model continues");
        var bad = CliTestSupport.run("generate", "--model", chatModel.toString(), "--system", "Be brief", "hi");
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("--system needs --chat"), bad.err());
    }
}
