package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.prompts.SplitScheme;
import dev.jlens.tokenizer.ChatTemplate;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;

/**
 * The labelled prompts of a probe, each with its split and its reporting group. Harmful (label
 * {@code harmful}) is the positive class. Groups: {@code jailbreak} for categories starting with
 * "jailbreak", {@code hard-negative} for harmless prompts in the category "hard-negative" (alarming words,
 * harmless intent), else the label itself ({@code harmful} = direct requests, {@code harmless} = plain).
 */
public final class ProbeData {

    public static final String HARMFUL = "harmful";
    public static final String HARMLESS = "harmless";
    public static final String JAILBREAK = "jailbreak";
    public static final String HARD_NEGATIVE = "hard-negative";
    private static final List<String> KNOWN_GROUPS = List.of(HARMFUL, JAILBREAK, HARD_NEGATIVE, HARMLESS);

    /**
     * One prompt of the probe; {@code messages} is its conversation (empty for a single prompt), {@code text} then
     * its plain rendering.
     */
    public record Example(String id, String text, boolean positive, String group, String split, String source,
                          List<ChatTemplate.Message> messages) {
        public Example {
            messages = messages == null ? List.of() : List.copyOf(messages);
        }

        public Example(String id, String text, boolean positive, String group, String split, String source) {
            this(id, text, positive, group, split, source, List.of());
        }

        /** As a {@link Prompt}, for {@link PromptEncoder#encode(Prompt, PoolScope, java.util.function.Consumer)}. */
        public Prompt prompt() {
            return new Prompt(id, text, positive ? HARMFUL : HARMLESS, group, split, Prompt.DEFAULT_STYLE, messages);
        }
    }

    private final List<Example> examples;
    private final String description;

    private ProbeData(List<Example> examples, String description) {
        this.examples = List.copyOf(examples);
        this.description = description;
    }

    /** The built-in sets cut by the default split ({@link SplitScheme#DEFAULT}). */
    public static ProbeData builtin() {
        return builtin(SplitScheme.DEFAULT);
    }

    /**
     * The built-in sets: harmful + jailbreak (positive) and harmless + hard_negative (negative), cut into splits
     * by {@code scheme}. Every scheme gives the same examples in the same order; only their splits differ.
     */
    public static ProbeData builtin(SplitScheme scheme) {
        List<Example> out = new ArrayList<>();
        for (String set : List.of("harmful", "jailbreak", "harmless", "hard_negative")) {
            PromptSet s = scheme.apply(PromptSets.builtin(set));
            for (Prompt p : s.prompts()) out.add(example(p, p.split(), "built-in " + set));
        }
        return new ProbeData(out, "built-in harmful+jailbreak vs harmless+hard_negative, " + describe(scheme));
    }

    /** How a scheme cuts the built-in sets, in words. */
    public static String describe(SplitScheme scheme) {
        return scheme == SplitScheme.RANDOM ? "random split (split fields)"
                : "style split (test = held-out styles " + String.join(", ", PromptSets.HELD_OUT_STYLES) + ")";
    }

    /**
     * Built-in sets (e.g. {@code response_pairs}), each prompt in the split its file gives it; every prompt must be
     * labelled harmful or harmless.
     */
    public static ProbeData builtin(List<String> sets) {
        List<Example> out = new ArrayList<>();
        for (String set : sets) {
            for (Prompt p : PromptSets.builtin(set).prompts()) out.add(example(p, p.split(), "built-in " + set));
        }
        return new ProbeData(out, "built-in " + String.join("+", sets) + ", split fields");
    }

    /** Whether any example is a conversation. */
    public boolean hasConversations() {
        return examples.stream().anyMatch(e -> !e.messages().isEmpty());
    }

    /**
     * Prompts for each split: a null list takes that split from the built-in sets. A file's own split field is
     * ignored: the option it was given under decides.
     */
    public static ProbeData of(List<PromptSet> train, List<PromptSet> val, List<PromptSet> test) {
        return of(train, val, test, SplitScheme.DEFAULT);
    }

    /** As {@link #of(List, List, List)}, the built-in splits cut by {@code scheme}. */
    public static ProbeData of(List<PromptSet> train, List<PromptSet> val, List<PromptSet> test, SplitScheme scheme) {
        ProbeData builtin = null;
        List<Example> out = new ArrayList<>();
        List<String> parts = new ArrayList<>();
        String[] names = {"train", "val", "test"};
        List<List<PromptSet>> given = java.util.Arrays.asList(train, val, test);
        for (int s = 0; s < 3; s++) {
            if (given.get(s) == null) {
                if (builtin == null) builtin = builtin(scheme);
                String split = names[s];
                builtin.examples.stream().filter(e -> e.split().equals(split)).forEach(out::add);
                parts.add(split + " = built-in (" + scheme.cliName() + " split)");
            } else {
                List<String> files = new ArrayList<>();
                for (PromptSet set : given.get(s)) {
                    for (Prompt p : set.prompts()) out.add(example(p, names[s], set.name()));
                    files.add(set.name());
                }
                parts.add(names[s] + " = " + String.join(" + ", files));
            }
        }
        return new ProbeData(out, String.join("; ", parts));
    }

    /** Examples made by the caller (each with its split), e.g. synthetic data in tests. */
    public static ProbeData ofExamples(List<Example> examples, String description) {
        return new ProbeData(examples, description);
    }

    private static Example example(Prompt p, String split, String source) {
        boolean positive;
        if (p.label().equals(HARMFUL)) positive = true;
        else if (p.label().equals(HARMLESS)) positive = false;
        else {
            throw new JlensException(source + ": prompt " + p.id() + " has label \"" + p.label()
                    + "\"; a probe needs label harmful or harmless on every prompt");
        }
        String cat = p.category().toLowerCase(java.util.Locale.ROOT);
        String group;
        if (cat.startsWith("jailbreak")) group = JAILBREAK;
        else if (cat.startsWith("hard-negative") || cat.startsWith("hard_negative")) group = HARD_NEGATIVE;
        else group = p.label();
        if (group.equals(JAILBREAK) && !positive || group.equals(HARD_NEGATIVE) && positive) {
            group = p.label();   // a harmless "jailbreak-" category or a harmful "hard-negative" is reported by its label
        }
        return new Example(p.id(), p.text(), positive, group, split, source, p.messages());
    }

    public List<Example> examples() {
        return examples;
    }

    public String description() {
        return description;
    }

    public int[] indices(String split) {
        return IntStream.range(0, examples.size()).filter(i -> examples.get(i).split().equals(split)).toArray();
    }

    public boolean[] positive() {
        boolean[] p = new boolean[examples.size()];
        for (int i = 0; i < p.length; i++) p[i] = examples.get(i).positive();
        return p;
    }

    public List<String> texts() {
        return examples.stream().map(Example::text).toList();
    }

    /** Each example's words within a pooling scope ({@link PoolScope#words}): what the baselines read. */
    public List<String> texts(PoolScope scope) {
        return examples.stream().map(e -> scope.words(e.text(), e.messages())).toList();
    }

    /** Known groups first in a fixed order (harmful, jailbreak, hard-negative, harmless), then others by name. */
    public static List<String> groupOrder(List<String> groups) {
        Set<String> distinct = new LinkedHashSet<>(groups);
        List<String> out = new ArrayList<>();
        for (String g : KNOWN_GROUPS) if (distinct.remove(g)) out.add(g);
        distinct.stream().sorted(Comparator.naturalOrder()).forEach(out::add);
        return out;
    }
}
