package dev.jlens.hub;

import dev.jlens.JlensException;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/** Which of a repository's files jlens needs: the configs, the tokenizer (with its chat template) and one format of weights, nothing else. */
final class HubFiles {

    static final String SAFETENSORS = "model.safetensors";
    static final String SAFETENSORS_INDEX = "model.safetensors.index.json";
    static final String BIN = "pytorch_model.bin";
    static final String BIN_INDEX = "pytorch_model.bin.index.json";

    private static final List<String> REQUIRED = List.of("config.json", "tokenizer.json");
    private static final List<String> OPTIONAL = List.of("tokenizer_config.json", "special_tokens_map.json",
            "generation_config.json", "chat_template.jinja", "chat_template.json");
    /** In order of preference, as {@link dev.jlens.io.Checkpoints} prefers them. */
    private static final List<String> WEIGHTS = List.of(SAFETENSORS, SAFETENSORS_INDEX, BIN, BIN_INDEX);

    /**
     * @param files the files to fetch, small ones first and the weights (or their index) last
     * @param index the weights index among them whose shards must follow, or null for a single weights file
     */
    record Plan(List<String> files, String index) {
    }

    private HubFiles() {
    }

    static Plan plan(String repoId, String revision, Set<String> siblings) {
        List<String> files = new ArrayList<>();
        for (String f : REQUIRED) {
            if (!siblings.contains(f)) {
                throw new JlensException(repoId + " at revision " + revision + " has no " + f + " (files: "
                        + preview(siblings) + "); jlens needs config.json, the fast-tokenizer file tokenizer.json "
                        + "and weights");
            }
            files.add(f);
        }
        for (String f : OPTIONAL) {
            if (siblings.contains(f)) files.add(f);
        }
        for (String w : WEIGHTS) {
            if (siblings.contains(w)) {
                files.add(w);
                return new Plan(List.copyOf(files), w.endsWith(".index.json") ? w : null);
            }
        }
        throw new JlensException(repoId + " at revision " + revision + " has no weights jlens can read (files: "
                + preview(siblings) + "); expected " + String.join(", ", WEIGHTS));
    }

    /** The shards an index names, each of which the repository must list. */
    static List<String> shards(String repoId, String revision, String index, List<String> names, Set<String> siblings) {
        List<String> absent = names.stream().filter(s -> !siblings.contains(s)).toList();
        if (!absent.isEmpty()) {
            throw new JlensException(repoId + " at revision " + revision + ": " + index + " names shards the "
                    + "repository does not have: " + String.join(", ", absent));
        }
        return names;
    }

    private static String preview(Set<String> siblings) {
        List<String> all = new ArrayList<>(new TreeSet<>(siblings));
        if (all.size() <= 20) return String.join(", ", all);
        return String.join(", ", all.subList(0, 20)) + ", ... (" + all.size() + " in all)";
    }
}
