package dev.jlens.detect;

import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSets;
import dev.jlens.prompts.SplitScheme;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProbeDataSplitTest {

    /** Styles of the built-in probe examples, in ProbeData.builtin's order. */
    private static List<String> styles() {
        List<String> out = new ArrayList<>();
        for (String set : List.of("harmful", "jailbreak", "harmless", "hard_negative")) {
            for (Prompt p : PromptSets.builtin(set).prompts()) out.add(p.style());
        }
        return out;
    }

    @Test
    void bothSchemesHoldTheSamePromptsAndTheStyleTestHasEveryGroup() {
        ProbeData random = ProbeData.builtin(SplitScheme.RANDOM), style = ProbeData.builtin(SplitScheme.STYLE);
        assertEquals(random.texts(), style.texts());
        assertEquals(style.texts(), ProbeData.builtin().texts());
        assertEquals((330 + 135) + (330 + 110), style.examples().size());
        List<String> st = styles();
        Set<String> testStyles = new TreeSet<>(), fitStyles = new TreeSet<>();
        for (int i : style.indices("test")) testStyles.add(st.get(i));
        for (int i : style.indices("train")) fitStyles.add(st.get(i));
        for (int i : style.indices("val")) fitStyles.add(st.get(i));
        assertEquals(new TreeSet<>(PromptSets.HELD_OUT_STYLES), testStyles);
        fitStyles.retainAll(testStyles);
        assertEquals(Set.of(), fitStyles);
        Set<String> groups = new TreeSet<>();
        for (int i : style.indices("test")) groups.add(style.examples().get(i).group());
        assertEquals(Set.of(ProbeData.HARMFUL, ProbeData.JAILBREAK, ProbeData.HARD_NEGATIVE, ProbeData.HARMLESS), groups);
        // 45 harmful + 27 jailbreak, 45 harmless + 15 hard negatives
        assertEquals(132, style.indices("test").length);
        assertTrue(style.description().contains("style split"), style.description());
        assertTrue(random.description().contains("random split"), random.description());
    }

    /**
     * A feature that carries the label only in the training styles: the random split (held-out styles in every split)
     * still scores well, the style split (held-out styles only in test) falls to chance. This is the gap the
     * cross-split figure of jlens probe measures.
     */
    @Test
    void aStyleBoundFeatureFlattersTheRandomSplitOnly() {
        ProbeData random = ProbeData.builtin(SplitScheme.RANDOM), style = ProbeData.builtin(SplitScheme.STYLE);
        List<String> st = styles();
        boolean[] pos = random.positive();
        SplittableRandom rng = new SplittableRandom(7);
        double[][] x = new double[pos.length][3];
        for (int i = 0; i < x.length; i++) {
            boolean heldOut = PromptSets.HELD_OUT_STYLES.contains(st.get(i));
            x[i][0] = (heldOut ? (rng.nextBoolean() ? 1 : -1) : (pos[i] ? 1 : -1)) + 0.3 * rng.nextGaussian();
            x[i][1] = rng.nextGaussian();
            x[i][2] = rng.nextGaussian();
        }
        Prober.Options o = new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), 200, 1, 0.95);
        SplitComparison r = SplitComparison.measure(SplitScheme.RANDOM, random, DetectorKind.LOGISTIC, List.of("h"), List.of(0), h -> x, o);
        SplitComparison s = SplitComparison.measure(SplitScheme.STYLE, style, DetectorKind.LOGISTIC, List.of("h"), List.of(0), h -> x, o);
        double ar = r.probeAuroc("h").value(), as = s.probeAuroc("h").value();
        assertTrue(ar > 0.8, "random split AUROC " + ar);
        assertTrue(Math.abs(as - 0.5) < 0.15, "style split AUROC " + as);
        assertEquals(72, s.splitSize("test")[0]);
        assertEquals(60, s.splitSize("test")[1]);
        assertEquals(2, s.baselines().size());
        assertEquals(TextBaselines.TFIDF, s.baseline(TextBaselines.TFIDF).name());
    }
}
