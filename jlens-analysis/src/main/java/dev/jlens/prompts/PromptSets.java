package dev.jlens.prompts;

import dev.jlens.JlensException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The built-in prompt sets (see docs/PROMPTS.md) and the loader for user prompt files.
 *
 * <p>Formats {@link #load} accepts, chosen by extension (case-insensitive):
 * <ul>
 *   <li>{@code .txt}: one prompt per line. Blank lines are skipped, and so are lines whose first non-blank
 *       character is {@code #}, so a list can carry comments and headings; a prompt that really starts with
 *       {@code #} belongs in a .jsonl or .csv file.</li>
 *   <li>{@code .jsonl} (or {@code .ndjson}): one JSON object per line, blank lines skipped. The prompt is the
 *       string field {@code field} (default {@code "text"}); string fields {@code id}, {@code label},
 *       {@code category} and {@code split} are used when present.</li>
 *   <li>{@code .csv}: RFC 4180 with a header row; quoted fields may hold commas, doubled quotes and line
 *       breaks. The prompt is column {@code field} (default {@code "text"}; AdvBench's
 *       {@code harmful_behaviors.csv} needs {@code "goal"}); columns {@code id}, {@code label},
 *       {@code category} and {@code split} are used when present. Every row must have as many values as the
 *       header, which catches the usual mistake of an unquoted comma inside a prompt.</li>
 * </ul>
 * Every file is read as UTF-8 (a leading byte-order mark is ignored) and each prompt's surrounding
 * whitespace is removed. Where a file does not say, a prompt's id is {@code <file stem>-<line>}, its label is
 * {@code defaultLabel}, its category is the file stem, and its split follows {@link #splitForPosition}
 * within its category, the same rule the built-in files were written with.
 */
public final class PromptSets {

    /** Split names, in the order the split rule hands them out. */
    public static final List<String> SPLITS = List.of("train", "val", "test");

    /** The prompt field or column used when {@code load} is given none. */
    public static final String DEFAULT_FIELD = "text";

    /**
     * The styles the style split holds out as its test split. Each is a shift no training style shows: a long,
     * first-person register (rambling), misspelt slang without punctuation (casual), and other languages
     * (non-english). Train and val see well-formed English of short to medium length: plain, terse, formal,
     * roleplay and paraphrase (the paraphrases re-word train/val-side items, so holding them out would leak).
     */
    public static final List<String> HELD_OUT_STYLES = List.of("rambling", "casual", "non-english");

    private static final List<String> BUILTIN = List.of("neutral", "harmful", "harmless", "jailbreak", "hard_negative");
    /**
     * Built-in conversation sets (docs/PROMPTS.md): {@code multi_turn} (harmful intent spread over turns, and
     * benign multi-turn controls; a model without a chat template sees their plain rendering) and
     * {@code response_pairs} ((prompt, response) pairs: harmful compliance vs refusals and benign answers, for
     * response-level detectors).
     */
    private static final List<String> CONVERSATIONS = List.of("multi_turn", "response_pairs");
    private static final String RESOURCE_DIR = "/dev/jlens/prompts/";

    /** Prompt files are hand-sized; refusing huge ones gives a clear error instead of running out of memory. */
    static final long MAX_FILE_BYTES = 256L * 1024 * 1024;

    private PromptSets() {
    }

    public static List<String> builtinNames() {
        return BUILTIN;
    }

    /** The built-in conversation sets, loaded with {@link #builtin(String)} like the others. */
    public static List<String> conversationNames() {
        return CONVERSATIONS;
    }

    /** One of {@link #builtinNames()} or {@link #conversationNames()}; see docs/PROMPTS.md for what each holds. */
    public static PromptSet builtin(String name) {
        if (!BUILTIN.contains(name) && !CONVERSATIONS.contains(name)) {
            throw new JlensException("unknown built-in prompt set \"" + name + "\"; expected one of "
                    + String.join(", ", BUILTIN) + ", " + String.join(", ", CONVERSATIONS));
        }
        String resource = RESOURCE_DIR + name + ".jsonl";
        byte[] bytes;
        try (InputStream in = PromptSets.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new JlensException("built-in prompt set \"" + name + "\": resource " + resource
                        + " is missing from the jlens-analysis jar");
            }
            bytes = in.readAllBytes();
        } catch (IOException e) {
            throw new JlensException("built-in prompt set \"" + name + "\": cannot read " + resource + ": " + e.getMessage(), e);
        }
        // Built-in files carry every field, so no default label is needed; a line without one is a bug here.
        return PromptFileReader.read("built-in prompt set " + resource, name, name, PromptFileReader.Format.JSONL,
                bytes, DEFAULT_FIELD, null);
    }

    /**
     * Loads a user prompt file (formats in the class comment).
     *
     * @param field        JSONL field or CSV column holding the prompt; null or blank means {@value #DEFAULT_FIELD}.
     *                     Ignored for .txt.
     * @param defaultLabel label for prompts whose file gives none; may be null when every prompt has a label
     */
    public static PromptSet load(Path file, String field, String defaultLabel) {
        if (!Files.exists(file)) {
            throw new JlensException(file + ": prompt file not found; expected a .txt, .jsonl or .csv file");
        }
        if (!Files.isRegularFile(file)) {
            throw new JlensException(file + ": not a regular file; expected a .txt, .jsonl or .csv prompt file");
        }
        String fileName = file.getFileName().toString();
        int dot = fileName.lastIndexOf('.');
        String ext = dot < 0 ? "" : fileName.substring(dot + 1).toLowerCase(Locale.ROOT);
        String stem = dot <= 0 ? fileName : fileName.substring(0, dot);
        PromptFileReader.Format format = switch (ext) {
            case "txt" -> PromptFileReader.Format.TXT;
            case "jsonl", "ndjson" -> PromptFileReader.Format.JSONL;
            case "csv" -> PromptFileReader.Format.CSV;
            default -> throw new JlensException(file + ": unsupported prompt file extension "
                    + (ext.isEmpty() ? "(none)" : "\"." + ext + "\"")
                    + "; expected .txt (one prompt per line), .jsonl (one JSON object per line) or .csv (with a header row)");
        };
        byte[] bytes;
        try {
            long size = Files.size(file);
            if (size > MAX_FILE_BYTES) {
                throw new JlensException(file + ": " + size + " bytes is too large for a prompt file (limit "
                        + MAX_FILE_BYTES + " bytes)");
            }
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new JlensException(file + ": cannot read prompt file: " + e.getMessage(), e);
        }
        String f = field == null || field.isBlank() ? DEFAULT_FIELD : field;
        String label = defaultLabel == null || defaultLabel.isBlank() ? null : defaultLabel.strip();
        return PromptFileReader.read(file.toString(), stem, stem, format, bytes, f, label);
    }

    /**
     * The style split of a set: every prompt whose style is in {@code heldOut} goes to test; the others go to
     * train or val by their 0-based position {@code j} among the kept prompts of their category, in file
     * order: val when {@code j % 4} is 3, else train (train:val 3:1, as 60:20 in {@link #splitForPosition}).
     * Deterministic: it depends on the file order only. The set keeps its hash and records the split in its
     * name ({@code harmful[split=style]}).
     */
    public static PromptSet splitByStyle(PromptSet set, java.util.Collection<String> heldOut) {
        java.util.Map<String, Integer> perCategory = new java.util.HashMap<>();
        java.util.List<Prompt> out = new java.util.ArrayList<>(set.size());
        for (Prompt p : set.prompts()) {
            String split;
            if (heldOut.contains(p.style())) {
                split = "test";
            } else {
                int j = perCategory.merge(p.category(), 1, Integer::sum) - 1;
                split = j % 4 == 3 ? "val" : "train";
            }
            out.add(p.withSplit(split));
        }
        return new PromptSet(set.name() + "[split=style]", out, set.sha256());
    }

    /**
     * The split rule: the prompt at 0-based position {@code i} among the prompts of its category (in file
     * order) goes to train when {@code i % 5} is 0, 1 or 2, to val when it is 3 and to test when it is 4,
     * about 60/20/20 stratified by category, with every category of five or more prompts in all three splits.
     */
    public static String splitForPosition(int i) {
        if (i < 0) throw new IllegalArgumentException("position " + i);
        return switch (i % 5) {
            case 3 -> "val";
            case 4 -> "test";
            default -> "train";
        };
    }
}
