package dev.jlens.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A family's checkpoint tensor names are written only in its own folder, dev/jlens/model/&lt;family&gt;/ (issue 12:
 * the family answers what loaders, the memory estimate and the orthogonalizer need). This reads the main
 * sources of every module as text, since a name hides in a string or a comment where no bytecode rule sees it.
 * Tests are out of scope: they read fixtures by their real names.
 */
class FamilyNamesStayInFamiliesTest {

    /**
     * Distinctive fragments of each family's Hugging Face tensor names, keyed by its folder under
     * dev/jlens/model. Generic words that configs or hooks also use (max_position_embeddings,
     * tie_word_embeddings, ln_final) are left out; a fragment listed here must occur in its family's folder.
     */
    private static final Map<String, List<String>> FRAGMENTS_BY_FAMILY = Map.of(
            "gptneox", List.of("gpt_neox.", "embed_in", "embed_out", "query_key_value", "dense_h_to_4h",
                    "dense_4h_to_h", "attention.dense"),
            "gpt2", List.of("c_attn", "c_proj", "c_fc", "\"wte\"", "\"wpe\"", "\"ln_f\"", "ln_1", "ln_2"),
            "llama", List.of("embed_tokens", "self_attn.", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                    "up_proj", "down_proj", "input_layernorm", "post_attention_layernorm", "lm_head"),
            "bert", List.of("embeddings.word_embeddings", "embeddings.position_embeddings",
                    "token_type_embeddings", "attention.self.", "intermediate.dense", "output.dense",
                    "LayerNorm.weight", "encoder.layer."));

    private static final Path FAMILIES = Path.of("dev", "jlens", "model");

    @Test
    void noFileOutsideAFamilyNamesAFamilysTensors() throws IOException {
        List<String> found = new ArrayList<>();
        for (Path root : mainSourceRoots()) {
            try (Stream<Path> files = Files.walk(root)) {
                for (Path file : files.filter(f -> f.toString().endsWith(".java")).sorted().toList()) {
                    if (inAFamilyFolder(root.relativize(file))) continue;
                    List<String> lines = Files.readAllLines(file);
                    for (int i = 0; i < lines.size(); i++) {
                        for (var family : FRAGMENTS_BY_FAMILY.entrySet()) {
                            for (String fragment : family.getValue()) {
                                if (lines.get(i).contains(fragment)) {
                                    found.add(repoRoot().relativize(file) + ":" + (i + 1) + " names " + family.getKey()
                                            + "'s \"" + fragment + "\"");
                                }
                            }
                        }
                    }
                }
            }
        }
        if (!found.isEmpty()) {
            fail("tensor names belong in their family's folder (" + FAMILIES + "/<family>/), which answers for them:\n  "
                    + String.join("\n  ", found));
        }
    }

    /** Keeps the table honest: a misspelt or renamed fragment would otherwise never match anything. */
    @Test
    void everyFragmentOccursInItsFamilysFolder() throws IOException {
        Path core = repoRoot().resolve("jlens-core/src/main/java").resolve(FAMILIES);
        List<String> missing = new ArrayList<>();
        for (var family : FRAGMENTS_BY_FAMILY.entrySet()) {
            Path folder = core.resolve(family.getKey());
            assertTrue(Files.isDirectory(folder), "no family folder " + folder + "; update FRAGMENTS_BY_FAMILY");
            String text;
            try (Stream<Path> files = Files.walk(folder)) {
                StringBuilder all = new StringBuilder();
                for (Path f : files.filter(p -> p.toString().endsWith(".java")).toList()) {
                    all.append(Files.readString(f)).append('\n');
                }
                text = all.toString();
            }
            for (String fragment : family.getValue()) {
                if (!text.contains(fragment)) missing.add(family.getKey() + ": \"" + fragment + "\"");
            }
        }
        assertTrue(missing.isEmpty(), "fragments not found in their family's folder: " + missing);
    }

    private static boolean inAFamilyFolder(Path relative) {
        return relative.getNameCount() > FAMILIES.getNameCount() + 1 && relative.startsWith(FAMILIES);
    }

    private static List<Path> mainSourceRoots() throws IOException {
        try (Stream<Path> modules = Files.list(repoRoot())) {
            List<Path> roots = modules.map(m -> m.resolve("src/main/java")).filter(Files::isDirectory).sorted().toList();
            assertTrue(roots.size() >= 3, "expected the modules' src/main/java under " + repoRoot() + ", found " + roots);
            return roots;
        }
    }

    /** Surefire runs a module's tests in the module's folder; the checkout is the folder above it. */
    private static Path repoRoot() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("jlens-core/pom.xml"))) return dir;
        }
        throw new IllegalStateException("no jlens checkout above " + Path.of("").toAbsolutePath());
    }
}
