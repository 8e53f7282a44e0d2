package dev.jlens.prompts;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.testing.FuzzInput;

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

    private static void load(String ext, byte[] input) throws Exception {
        if (input.length == 0) return;
        Path file = FuzzInput.write("prompts." + ext, java.util.Arrays.copyOfRange(input, 1, input.length));
        String label = (input[0] & 1) == 1 ? "harmless" : null;
        FuzzInput.parsesOrFailsCleanly(() -> {
            PromptSet set = PromptSets.load(file, "text", label);
            assertTrue(set.size() > 0);
            for (Prompt p : set.prompts()) {
                assertFalse(p.text().isBlank(), "blank prompt " + p.id());
                assertNotNull(p.label());
                assertTrue(PromptSets.SPLITS.contains(p.split()), p.split());
            }
        });
    }

    @FuzzTest(maxDuration = "3m")
    void jsonl(byte[] input) throws Exception {
        load("jsonl", input);
    }

    @FuzzTest(maxDuration = "3m")
    void csv(byte[] input) throws Exception {
        load("csv", input);
    }

    @FuzzTest(maxDuration = "3m")
    void txt(byte[] input) throws Exception {
        load("txt", input);
    }
}
