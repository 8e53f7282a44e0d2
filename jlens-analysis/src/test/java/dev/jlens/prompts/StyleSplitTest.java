package dev.jlens.prompts;

import dev.jlens.JlensException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StyleSplitTest {

    @ParameterizedTest
    @ValueSource(strings = {"neutral", "harmful", "harmless", "jailbreak", "hard_negative"})
    void heldOutStylesAreTheWholeTestSplitAndNoStyleIsOnBothSides(String name) {
        PromptSet set = PromptSets.builtin(name);
        PromptSet style = SplitScheme.STYLE.apply(set);
        assertEquals(name + "[split=style]", style.name());
        assertEquals(set.sha256(), style.sha256());
        assertEquals(set.texts(), style.texts(), "same prompts, same order");
        Set<String> testStyles = styles(style.filterSplit("test"));
        Set<String> fitStyles = styles(style.filterSplit("train"));
        fitStyles.addAll(styles(style.filterSplit("val")));
        assertEquals(Set.of(), intersection(testStyles, fitStyles), name + ": a style on both sides");
        assertEquals(new TreeSet<>(PromptSets.HELD_OUT_STYLES), new TreeSet<>(testStyles), name + ": test styles");
        assertTrue(fitStyles.contains("plain"));
        // every held-out item is in test, every other one in train or val
        for (Prompt p : style.prompts()) {
            assertEquals(PromptSets.HELD_OUT_STYLES.contains(p.style()), p.split().equals("test"), p.id());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"neutral", "harmful", "harmless", "jailbreak", "hard_negative"})
    void styleSplitIsDeterministicAndCoversEveryCategory(String name) {
        PromptSet set = PromptSets.builtin(name);
        List<Prompt> first = SplitScheme.STYLE.apply(set).prompts();
        assertEquals(first, SplitScheme.STYLE.apply(PromptSets.builtin(name)).prompts());
        Map<String, Set<String>> splits = new HashMap<>();
        for (Prompt p : first) splits.computeIfAbsent(p.category(), c -> new TreeSet<>()).add(p.split());
        splits.forEach((c, s) -> assertEquals(new TreeSet<>(PromptSets.SPLITS), s, name + "/" + c));
        // train:val is 3:1 within each category's kept prompts
        Map<String, Integer> position = new HashMap<>();
        for (Prompt p : first) {
            if (p.split().equals("test")) continue;
            int j = position.merge(p.category(), 1, Integer::sum) - 1;
            assertEquals(j % 4 == 3 ? "val" : "train", p.split(), p.id());
        }
    }

    @Test
    void randomSchemeIsTheFilesOwnSplitAndDiffersFromTheStyleSplit() {
        PromptSet set = PromptSets.builtin("harmful");
        assertSame(set, SplitScheme.RANDOM.apply(set));
        assertNotEquals(set.prompts().stream().map(Prompt::split).toList(),
                SplitScheme.STYLE.apply(set).prompts().stream().map(Prompt::split).toList());
        // the random split mixes styles: some held-out style in train, some plain prompt in test
        assertTrue(set.filterSplit("train").prompts().stream().anyMatch(p -> PromptSets.HELD_OUT_STYLES.contains(p.style())));
        assertTrue(set.filterSplit("test").prompts().stream().anyMatch(p -> p.style().equals("plain")));
    }

    @Test
    void schemeNamesParseAndBadOnesAreExplained() {
        assertEquals(SplitScheme.STYLE, SplitScheme.parse("style"));
        assertEquals(SplitScheme.RANDOM, SplitScheme.parse(" Random "));
        assertEquals(SplitScheme.STYLE, SplitScheme.DEFAULT);
        JlensException e = assertThrows(JlensException.class, () -> SplitScheme.parse("grouped"));
        assertTrue(e.getMessage().contains("\"grouped\"") && e.getMessage().contains("random") && e.getMessage().contains("style"),
                e.getMessage());
    }

    @Test
    void aFileWithoutStylesHoldsNothingOut() {
        PromptSet set = PromptSet.of("user", List.of(new Prompt("a", "alpha", "harmful", "c", "test"),
                new Prompt("b", "beta", "harmful", "c", "test", "casual")));
        List<Prompt> split = SplitScheme.STYLE.apply(set).prompts();
        assertEquals("train", split.get(0).split());
        assertEquals("test", split.get(1).split());
    }

    private static Set<String> styles(PromptSet s) {
        return s.prompts().stream().map(Prompt::style).collect(Collectors.toCollection(TreeSet::new));
    }

    private static Set<String> intersection(Set<String> a, Set<String> b) {
        Set<String> out = new TreeSet<>(a);
        out.retainAll(b);
        return out;
    }
}
