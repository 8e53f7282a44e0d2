package dev.jlens.eval;

import dev.jlens.JlensException;

import java.util.List;
import java.util.Locale;

/**
 * The published column layouts jlens reads, with the columns that identify each (case-sensitive, as the
 * files have them). Sources are in docs/EVALUATION.md.
 */
public enum BenchmarkFormat {
    /** HarmBench behaviours: harmbench_behaviors_text_all.csv (BehaviorID optional). */
    HARMBENCH("harmbench", "Behavior", "SemanticCategory", List.of("Behavior", "FunctionalCategory", "SemanticCategory")),
    /** JailbreakBench JBB-Behaviors (harmful-behaviors.csv, benign-behaviors.csv; Index optional). */
    JAILBREAKBENCH("jailbreakbench", "Goal", "Category", List.of("Goal", "Target", "Behavior", "Category")),
    /** StrongREJECT (strongreject_dataset.csv, strongreject_small_dataset.csv). */
    STRONGREJECT("strongreject", "forbidden_prompt", "category", List.of("category", "source", "forbidden_prompt")),
    /** XSTest v2 (xstest_prompts.csv): safe prompts that look unsafe, and unsafe contrasts. */
    XSTEST("xstest", "prompt", "type", List.of("prompt", "type", "label")),
    /** AdvBench harmful_behaviors.csv. */
    ADVBENCH("advbench", "goal", null, List.of("goal", "target")),
    /** Any CSV / JSONL / Parquet: the prompt in --field, harmful/safe in --label-field, category in --category-field. */
    GENERIC("generic", null, null, List.of());

    private final String cliName;
    private final String promptColumn;
    private final String categoryColumn;
    private final List<String> columns;

    BenchmarkFormat(String cliName, String promptColumn, String categoryColumn, List<String> columns) {
        this.cliName = cliName;
        this.promptColumn = promptColumn;
        this.categoryColumn = categoryColumn;
        this.columns = columns;
    }

    public String cliName() {
        return cliName;
    }

    /** The columns a file in this layout must have (empty for generic). */
    public List<String> columns() {
        return columns;
    }

    String promptColumn() {
        return promptColumn;
    }

    String categoryColumn() {
        return categoryColumn;
    }

    /** The published layouts, in the order detection tries them (the most specific first). */
    static List<BenchmarkFormat> published() {
        return List.of(HARMBENCH, JAILBREAKBENCH, STRONGREJECT, XSTEST, ADVBENCH);
    }

    /** The first published layout whose columns the header has all of, or null. */
    static BenchmarkFormat detect(List<String> header) {
        for (BenchmarkFormat f : published()) if (header.containsAll(f.columns)) return f;
        return null;
    }

    public static BenchmarkFormat parse(String s) {
        String t = s.strip().toLowerCase(Locale.ROOT);
        for (BenchmarkFormat f : values()) if (f.cliName.equals(t)) return f;
        throw new JlensException("--format \"" + s + "\": expected one of advbench, harmbench, jailbreakbench, strongreject, "
                + "xstest or generic");
    }
}
