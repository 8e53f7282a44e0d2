package dev.jlens.prompts;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.JlensException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of the prompt file reader for each format. Property: a file either loads
 * into a non-empty set of non-blank prompts or is refused with a JlensException with a message; nothing
 * else escapes. Inputs with an odd first byte are loaded with a default label, the others without (so the
 * "no label" path is reached too). A normal test run replays the inputs under
 * src/test/resources/dev/jlens/prompts/PromptFileFuzzTestInputs; {@code JAZZER_FUZZ=1} fuzzes.
 */
class PromptFileFuzzTest {

    private static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("jlens-prompt-fuzz");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        DIR.toFile().deleteOnExit();
    }

    private static void load(String ext, byte[] input) throws IOException {
        if (input.length == 0) return;
        Path file = DIR.resolve(Thread.currentThread().threadId() + "-prompts." + ext);
        Files.write(file, java.util.Arrays.copyOfRange(input, 1, input.length));
        file.toFile().deleteOnExit();
        String label = (input[0] & 1) == 1 ? "harmless" : null;
        try {
            PromptSet set = PromptSets.load(file, "text", label);
            assertTrue(set.size() > 0);
            for (Prompt p : set.prompts()) {
                assertFalse(p.text().isBlank(), "blank prompt " + p.id());
                assertNotNull(p.label());
                assertTrue(PromptSets.SPLITS.contains(p.split()), p.split());
            }
        } catch (JlensException e) {
            assertNotNull(e.getMessage());
            assertFalse(e.getMessage().isBlank());
        }
    }

    @FuzzTest(maxDuration = "3m")
    void jsonl(byte[] input) throws IOException {
        load("jsonl", input);
    }

    @FuzzTest(maxDuration = "3m")
    void csv(byte[] input) throws IOException {
        load("csv", input);
    }

    @FuzzTest(maxDuration = "3m")
    void txt(byte[] input) throws IOException {
        load("txt", input);
    }
}
