package dev.jlens.prompts;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BuiltinPromptSetsTest {

    private static final Set<String> REQUIRED_HARM_CATEGORIES = Set.of("cybercrime", "weapons", "drugs", "fraud",
            "harassment", "hate", "self-harm", "privacy", "violence", "extremism", "misinformation", "theft",
            "law-evasion", "dangerous-chemistry", "child-safety");

    private static final Set<String> JAILBREAK_STYLES = Set.of("roleplay", "hypothetical", "fiction", "base64",
            "leetspeak", "wordsplit", "prefix-injection", "ignore-instructions", "authority");

    /** The writing styles of the built-in sets (docs/PROMPTS.md); the original items are plain. */
    static final List<String> STYLES = List.of("plain", "terse", "rambling", "formal", "casual", "roleplay", "paraphrase",
            "non-english");

    /**
     * Words that make a harmless prompt look alarming; every hard negative must use one. The list is unchanged by
     * the non-English hard negatives: they borrow the English word ("killen", "shooter") or its cognate ("bomba").
     */
    private static final List<String> ALARM_WORDS = List.of("kill", "shoot", "shot", "execute", "bomb", "destroy",
            "knife", "terminate", "blow", "nuke", "chemical", "hack", "crack", "beat", "cat", "zombie", "steal",
            "attack", "trap", "fatal", "choke", "murder", "dead", "dispose", "explode", "meltdown", "break",
            "exploit", "ld50", "sword", "thieves", "smoke", "hitting", "assassin", "fire", "butcher",
            "inject", "panic", "trojan", "exterminate", "gunpowder", "bullet", "trigger", "snake", "poison",
            "drugs", "cut", "heroin", "drown", "demolition", "reactor", "hang", "died");

    private static int words(String text) {
        return (int) Arrays.stream(text.split("[\\s\\p{Punct}]+")).filter(w -> !w.isEmpty()).count();
    }

    private static String firstWord(String text) {
        return Arrays.stream(text.split("[\\s\\p{Punct}]+")).filter(w -> !w.isEmpty()).findFirst()
                .orElseThrow().toLowerCase(Locale.ROOT);
    }

    private static double mean(int[] xs) {
        return Arrays.stream(xs).average().orElseThrow();
    }

    private static double sd(int[] xs) {
        double m = mean(xs);
        return Math.sqrt(Arrays.stream(xs).mapToDouble(x -> (x - m) * (x - m)).sum() / xs.length);
    }

    @Test
    void namesAreTheFiveBuiltins() {
        assertEquals(List.of("neutral", "harmful", "harmless", "jailbreak", "hard_negative"), PromptSets.builtinNames());
    }

    @Test
    void countsLabelsAndCategories() {
        PromptSet neutral = PromptSets.builtin("neutral");
        PromptSet harmful = PromptSets.builtin("harmful");
        PromptSet harmless = PromptSets.builtin("harmless");
        PromptSet jailbreak = PromptSets.builtin("jailbreak");
        PromptSet hard = PromptSets.builtin("hard_negative");

        assertEquals(290, neutral.size());
        assertEquals(330, harmful.size());
        assertEquals(330, harmless.size());
        assertEquals(135, jailbreak.size());
        assertEquals(110, hard.size());

        assertTrue(neutral.prompts().stream().allMatch(p -> p.label().equals("neutral")));
        assertTrue(harmful.prompts().stream().allMatch(p -> p.label().equals("harmful")));
        assertTrue(harmless.prompts().stream().allMatch(p -> p.label().equals("harmless")));
        assertTrue(jailbreak.prompts().stream().allMatch(p -> p.label().equals("harmful")));
        assertTrue(hard.prompts().stream().allMatch(p -> p.label().equals("harmless")));

        assertEquals(REQUIRED_HARM_CATEGORIES, categories(harmful));
        assertEquals(JAILBREAK_STYLES.stream().map(s -> "jailbreak-" + s).collect(Collectors.toSet()),
                categories(jailbreak));
        assertEquals(Set.of("hard-negative"), categories(hard));
        assertTrue(categories(neutral).size() >= 8, "neutral topics: " + categories(neutral));
        assertTrue(categories(harmless).size() >= 8, "harmless task kinds: " + categories(harmless));
        // Many harm categories, each with enough prompts to appear in every split.
        for (PromptSet set : List.of(neutral, harmful, harmless, jailbreak, hard)) {
            countsByCategory(set).forEach((c, n) -> assertTrue(n >= 5, set.name() + "/" + c + ": " + n));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"neutral", "harmful", "harmless", "jailbreak", "hard_negative"})
    void everyFieldIsFilledAndTextIsClean(String name) {
        PromptSet set = PromptSets.builtin(name);
        assertEquals(name, set.name());
        for (Prompt p : set.prompts()) {
            assertFalse(p.id().isBlank());
            assertEquals(p.text().strip(), p.text(), p.id());
            assertFalse(p.text().contains("\n"), p.id());
            assertFalse(p.category().isBlank(), p.id());
            assertTrue(PromptSets.SPLITS.contains(p.split()), p.id() + ": " + p.split());
            assertTrue(p.id().startsWith(p.category()) || p.id().startsWith(name + "-" + p.category()), p.id());
            assertTrue(STYLES.contains(p.style()), p.id() + ": style " + p.style());
        }
    }

    /**
     * The widening: harmful and harmless hold each new style once per category (so a held-out style covers every
     * harm category and task kind), jailbreak each of five styles once per framing, hard_negative five per style,
     * and the originals (the first 225 / 225 / 90 / 75 / 210 lines) stay plain.
     */
    @Test
    void stylesCoverEveryCategory() {
        Map<String, Integer> originals = Map.of("harmful", 225, "harmless", 225, "jailbreak", 90, "hard_negative", 75, "neutral", 210);
        for (String name : PromptSets.builtinNames()) {
            List<Prompt> ps = PromptSets.builtin(name).prompts();
            for (int i = 0; i < ps.size(); i++) {
                assertEquals(i < originals.get(name), ps.get(i).style().equals("plain"), name + " line " + (i + 1) + ": " + ps.get(i).style());
            }
        }
        for (String name : List.of("harmful", "harmless")) {
            PromptSet set = PromptSets.builtin(name);
            for (String category : categories(set)) {
                Map<String, Long> perStyle = set.prompts().stream().filter(p -> p.category().equals(category))
                        .collect(Collectors.groupingBy(Prompt::style, Collectors.counting()));
                assertEquals(new TreeSet<>(STYLES), new TreeSet<>(perStyle.keySet()), name + "/" + category);
                STYLES.stream().filter(st -> !st.equals("plain")).forEach(st -> assertEquals(1L, perStyle.get(st), name + "/" + category + "/" + st));
            }
        }
        PromptSet jailbreak = PromptSets.builtin("jailbreak");
        for (String category : categories(jailbreak)) {
            assertEquals(Set.of("plain", "terse", "rambling", "formal", "casual", "non-english"), jailbreak.prompts().stream()
                    .filter(p -> p.category().equals(category)).map(Prompt::style).collect(Collectors.toSet()), category);
        }
        Map<String, Long> hard = PromptSets.builtin("hard_negative").prompts().stream()
                .collect(Collectors.groupingBy(Prompt::style, Collectors.counting()));
        STYLES.stream().filter(st -> !st.equals("plain")).forEach(st -> assertEquals(5L, hard.get(st), "hard_negative/" + st));
    }

    @Test
    void idsAndTextsAreUniqueAcrossAllSets() {
        Set<String> ids = new HashSet<>();
        Set<String> texts = new HashSet<>();
        for (String name : PromptSets.builtinNames()) {
            for (Prompt p : PromptSets.builtin(name).prompts()) {
                assertTrue(ids.add(p.id()), "duplicate id " + p.id());
                assertTrue(texts.add(p.text().toLowerCase(Locale.ROOT)), "duplicate text " + p.id() + ": " + p.text());
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"neutral", "harmful", "harmless", "jailbreak", "hard_negative"})
    void splitsFollowTheDocumentedRuleAndCoverEveryCategory(String name) {
        PromptSet set = PromptSets.builtin(name);
        Map<String, Integer> position = new HashMap<>();
        Map<String, Set<String>> splitsPerCategory = new HashMap<>();
        for (Prompt p : set.prompts()) {
            int i = position.merge(p.category(), 1, Integer::sum) - 1;
            assertEquals(PromptSets.splitForPosition(i), p.split(), p.id());
            splitsPerCategory.computeIfAbsent(p.category(), c -> new TreeSet<>()).add(p.split());
        }
        splitsPerCategory.forEach((c, splits) ->
                assertEquals(new TreeSet<>(PromptSets.SPLITS), splits, name + "/" + c));

        int train = set.filterSplit("train").size();
        int val = set.filterSplit("val").size();
        int test = set.filterSplit("test").size();
        assertEquals(set.size(), train + val + test);
        double trainShare = (double) train / set.size();
        assertTrue(trainShare >= 0.58 && trainShare <= 0.68, name + " train share " + trainShare);
        assertTrue(Math.abs(val - test) <= splitsPerCategory.size(), name + " val " + val + " test " + test);
    }

    @Test
    void harmlessLengthsMatchHarmful() {
        int[] harmful = PromptSets.builtin("harmful").texts().stream().mapToInt(BuiltinPromptSetsTest::words).toArray();
        int[] harmless = PromptSets.builtin("harmless").texts().stream().mapToInt(BuiltinPromptSetsTest::words).toArray();
        double meanRatio = mean(harmless) / mean(harmful);
        double sdRatio = sd(harmless) / sd(harmful);
        assertTrue(Math.abs(meanRatio - 1) <= 0.10, "mean words harmless/harmful = " + meanRatio);
        assertTrue(Math.abs(sdRatio - 1) <= 0.10, "sd words harmless/harmful = " + sdRatio);
        // and within every style, so a split that holds styles out stays length-matched
        for (String style : STYLES) {
            int[] a = PromptSets.builtin("harmful").prompts().stream().filter(p -> p.style().equals(style))
                    .mapToInt(p -> words(p.text())).toArray();
            int[] b = PromptSets.builtin("harmless").prompts().stream().filter(p -> p.style().equals(style))
                    .mapToInt(p -> words(p.text())).toArray();
            double r = mean(b) / mean(a);
            assertTrue(Math.abs(r - 1) <= 0.10, style + ": mean words harmless/harmful = " + r);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"harmful", "harmless", "jailbreak", "hard_negative"})
    void noFirstWordStartsMoreThanFifteenPercent(String name) {
        List<String> texts = PromptSets.builtin(name).texts();
        Map<String, Long> counts = texts.stream()
                .collect(Collectors.groupingBy(BuiltinPromptSetsTest::firstWord, LinkedHashMap::new, Collectors.counting()));
        counts.forEach((word, n) -> assertTrue(n <= 0.15 * texts.size(),
                name + ": " + n + " of " + texts.size() + " start with \"" + word + "\""));
    }

    @Test
    void neutralSentencesAreStatementsNotRequests() {
        for (Prompt p : PromptSets.builtin("neutral").prompts()) {
            assertTrue(p.text().endsWith("."), p.id() + ": " + p.text());
            assertFalse(p.text().contains("?"), p.id());
        }
    }

    @Test
    void everyHardNegativeUsesAnAlarmingWord() {
        List<String> missing = new ArrayList<>();
        for (Prompt p : PromptSets.builtin("hard_negative").prompts()) {
            String lower = p.text().toLowerCase(Locale.ROOT);
            if (ALARM_WORDS.stream().noneMatch(lower::contains)) missing.add(p.id() + ": " + p.text());
        }
        assertEquals(List.of(), missing);
    }

    @Test
    void shaIsOfTheResourceBytesAndSurvivesFiltering() throws IOException {
        for (String name : PromptSets.builtinNames()) {
            byte[] bytes;
            try (InputStream in = PromptSets.class.getResourceAsStream("/dev/jlens/prompts/" + name + ".jsonl")) {
                bytes = in.readAllBytes();
            }
            PromptSet set = PromptSets.builtin(name);
            assertEquals(PromptSet.sha256(bytes), set.sha256());
            assertEquals(64, set.sha256().length());
            PromptSet train = set.filterSplit("train");
            assertEquals(set.sha256(), train.sha256());
            assertEquals(name + "[split=train]", train.name());
            assertTrue(train.prompts().stream().allMatch(p -> p.split().equals("train")));
        }
        assertNotEquals(PromptSets.builtin("harmful").sha256(), PromptSets.builtin("harmless").sha256());
    }

    @Test
    void filterLabelSeparatesAMixedSet() {
        List<Prompt> mixed = new ArrayList<>(PromptSets.builtin("harmful").prompts());
        mixed.addAll(PromptSets.builtin("hard_negative").prompts());
        PromptSet set = PromptSet.of("mixed", mixed);
        assertEquals(PromptSets.builtin("harmful").texts(), set.filterLabel("harmful").texts());
        assertEquals(PromptSets.builtin("hard_negative").texts(), set.filterLabel("harmless").texts());
        assertEquals(0, set.filterLabel("neutral").size());
        assertEquals(set.sha256(), PromptSet.of("other name", mixed).sha256());
        assertNotEquals(set.sha256(), PromptSet.of("mixed", mixed.subList(1, mixed.size())).sha256());
    }

    private static Set<String> categories(PromptSet set) {
        return set.prompts().stream().map(Prompt::category).collect(Collectors.toSet());
    }

    private static Map<String, Integer> countsByCategory(PromptSet set) {
        Map<String, Integer> counts = new LinkedHashMap<>();
        set.prompts().forEach(p -> counts.merge(p.category(), 1, Integer::sum));
        return counts;
    }
}
