package dev.jlens.steering;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Arditi et al.'s rule on synthetic scores, against a choice worked out by hand. */
class ArditiSelectionTest {

    private static ArditiSelection.Candidate c(int layer, String pos, double bypass, double induce, double kl) {
        return new ArditiSelection.Candidate("blocks." + layer + ".hook_resid_pre", layer, pos, bypass, induce, kl);
    }

    @Test
    void lowestBypassAmongThosePassingEveryFilter() {
        // 10 layers: (int) (10 * 0.8) = 8, so layers 8 and 9 are out.
        List<ArditiSelection.Candidate> cs = List.of(
                c(2, "last", -1.0, 0.5, 0.05),      // passes
                c(3, "last-1", -2.5, -0.1, 0.01),   // induce below 0
                c(4, "last", -2.0, 1.2, 0.2),       // KL too large
                c(8, "last", -5.0, 3.0, 0.01),      // too late
                c(5, "last-2", -1.5, 0.01, 0.099),  // passes: the lowest bypass that does
                c(6, "last", Double.NaN, 1.0, 0.01),// not scored
                c(7, "last", -1.5, 1.0, 0.01));     // passes, ties with layer 5: the first listed is kept
        ArditiSelection.Choice ch = ArditiSelection.choose(cs, 10, ArditiSelection.KL_MAX);
        assertEquals(cs.get(4), ch.chosen());
        assertEquals(7, ch.candidates().size());
        List<Boolean> passes = ch.candidates().stream().map(ArditiSelection.Scored::passes).toList();
        assertEquals(List.of(true, false, false, false, true, false, true), passes);
        assertTrue(ch.candidates().get(1).reasons().getFirst().contains("induce"));
        assertTrue(ch.candidates().get(2).reasons().getFirst().contains("KL"));
        assertTrue(ch.candidates().get(3).reasons().getFirst().contains("last 20%"));
        assertTrue(ch.why().contains("layer 5") && ch.why().contains("3 of 7"), ch.why());
    }

    @Test
    void boundariesAreStrict() {
        assertEquals(8, ArditiSelection.firstExcludedLayer(10));
        assertEquals(4, ArditiSelection.firstExcludedLayer(6));
        assertEquals(4, ArditiSelection.firstExcludedLayer(5));
        ArditiSelection.Choice ch = ArditiSelection.choose(List.of(c(1, "last", -1, 0.0, 0.01), c(1, "last-1", -1, 0.5, 0.1)),
                10, 0.1);
        assertNull(ch.chosen());
        assertFalse(ch.candidates().get(0).passes());
        assertFalse(ch.candidates().get(1).passes());
        assertTrue(ch.why().startsWith("no candidate passes"), ch.why());
    }
}
