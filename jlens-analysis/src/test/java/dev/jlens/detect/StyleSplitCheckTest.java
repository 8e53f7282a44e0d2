package dev.jlens.detect;

import dev.jlens.geometry.Estimate;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StyleSplitCheckTest {

    static final Prober.Options OPTIONS = new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), 200, 3, 0.95);

    /**
     * Synthetic activations for the built-in sets: at hook "style-free" the class is one coordinate; at hook
     * "style-bound" the class shows only in prompts not of a held-out style, as a feature that would not carry
     * over to a new way of writing.
     */
    static double[][] rows(List<Prompt> prompts, int positivesFrom, boolean styleBound, Random r) {
        double[][] x = new double[prompts.size()][4];
        for (int i = 0; i < x.length; i++) {
            boolean pos = i >= positivesFrom;
            boolean heldOut = PromptSets.HELD_OUT_STYLES.contains(prompts.get(i).style());
            for (int j = 0; j < 4; j++) x[i][j] = r.nextGaussian();
            if (!styleBound || !heldOut) x[i][0] += pos ? 3 : -3;
        }
        return x;
    }

    @Test
    void aFeatureTiedToTheTrainingStylesFailsOnTheHeldOutOnes() {
        PromptSet harmless = PromptSets.builtin("harmless"), harmful = PromptSets.builtin("harmful");
        List<Prompt> all = new java.util.ArrayList<>(harmless.prompts());
        all.addAll(harmful.prompts());
        Random r = new Random(5);
        double[][] free = rows(all, harmless.size(), false, r), bound = rows(all, harmless.size(), true, r);
        StyleSplitCheck.Outcome o = StyleSplitCheck.measure(harmless, harmful, List.of("style-free", "style-bound"), List.of(0, 1),
                h -> h.equals("style-free") ? free : bound, OPTIONS);
        StyleSplitCheck c = o.check();
        assertNull(o.skipped());
        assertEquals(PromptSets.HELD_OUT_STYLES, c.heldOutStyles());
        int heldOutHarmless = (int) harmless.prompts().stream().filter(p -> PromptSets.HELD_OUT_STYLES.contains(p.style())).count();
        assertEquals(heldOutHarmless, c.counts()[2][0]);
        assertEquals(harmless.size(), c.counts()[0][0] + c.counts()[1][0] + c.counts()[2][0]);
        Estimate carries = c.probe().get("style-free"), fails = c.probe().get("style-bound");
        assertTrue(carries.value() > 0.97, "a style-free feature carries over: " + carries);
        assertTrue(Math.abs(fails.value() - 0.5) < 0.15, "a feature of the training styles only does not: " + fails);
        assertEquals("style-free", c.bestHook());
        assertEquals(TextBaselines.TFIDF, c.baselines().getFirst().name());
    }

    @Test
    void setsWithoutHeldOutStylesAreNotMeasuredAndSayWhy() {
        PromptSet harmless = PromptSets.builtin("harmless");
        PromptSet plain = PromptSet.of("mine.txt", List.of(new Prompt("a", "one harmful thing", "harmful", "misc", "train"),
                new Prompt("b", "another harmful thing", "harmful", "misc", "train"), new Prompt("c", "a third", "harmful", "misc", "train")));
        StyleSplitCheck.Outcome o = StyleSplitCheck.measure(harmless, plain, List.of("h"), List.of(0), h -> new double[0][], OPTIONS);
        assertNull(o.check());
        assertTrue(o.skipped().contains("the harmful prompts have"), o.skipped());
        assertTrue(o.skipped().contains("a prompt file needs a style field"), o.skipped());
    }
}
