package dev.jlens.steering;

import dev.jlens.JlensException;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Weighted sums of saved directions, checked against sums worked out by hand. */
class DirectionArithmeticTest {

    private static DirectionSet set(String name, float[] unitL0, double normL0, float[] unitL1, double normL1) {
        List<Direction> ds = List.of(
                new Direction("blocks.0.hook_resid_pre", 0, "last", unitL0, normL0, 0, 1, 1, 2, 2, 1),
                new Direction("blocks.1.hook_resid_pre", 1, "last", unitL1, normL1, 0, 1, 1, 2, 2, 1));
        return new DirectionSet(new DirectionSet.Meta("m", null, "A", "llama", 2, 2, DirectionMethod.DIFF_MEANS,
                List.of("blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"), List.of("last"),
                new DirectionSet.SetInfo(name + "-a", 2, "x"), new DirectionSet.SetInfo(name + "-b", 2, "y"), "t", "now"), ds);
    }

    @Test
    void sumsTheRawVectors() {
        // layer 0: 2·(1,0) − 0.5·4·(0,1) = (2, −2) → norm 2√2, unit (1/√2, −1/√2)
        // layer 1: 2·3·(0.6,0.8) − 0.5·10·(0.6,0.8) = (0.6, 0.8) → norm 1
        DirectionSet a = set("a", new float[]{1, 0}, 1, new float[]{0.6f, 0.8f}, 3);
        DirectionSet b = set("b", new float[]{0, 1}, 4, new float[]{0.6f, 0.8f}, 10);
        DirectionSet c = DirectionArithmetic.combine(List.of(new DirectionArithmetic.Term(Path.of("a"), a, 2),
                new DirectionArithmetic.Term(Path.of("b"), b, -0.5)), "t");
        Direction l0 = c.find("blocks.0.hook_resid_pre", "last");
        assertEquals(2 * Math.sqrt(2), l0.norm(), 1e-6);
        assertEquals(1 / Math.sqrt(2), l0.unit()[0], 1e-6);
        assertEquals(-1 / Math.sqrt(2), l0.unit()[1], 1e-6);
        Direction l1 = c.find("blocks.1.hook_resid_pre", "last");
        assertEquals(1.0, l1.norm(), 1e-5);
        assertEquals(0.6, l1.unit()[0], 1e-5);
        assertTrue(c.meta().classA().name().contains("2.0·a") && c.meta().classA().name().contains("-0.5·b"));
    }

    @Test
    void cancellingOrMismatchedDirectionsAreErrors() {
        DirectionSet a = set("a", new float[]{1, 0}, 1, new float[]{0, 1}, 1);
        assertThrows(JlensException.class, () -> DirectionArithmetic.combine(List.of(new DirectionArithmetic.Term(Path.of("a"), a, 1),
                new DirectionArithmetic.Term(Path.of("a"), a, -1)), "t"));
        DirectionSet wide = new DirectionSet(new DirectionSet.Meta("m", null, "A", "llama", 3, 2, DirectionMethod.DIFF_MEANS,
                List.of("blocks.0.hook_resid_pre"), List.of("last"), new DirectionSet.SetInfo("a", 2, "x"),
                new DirectionSet.SetInfo("b", 2, "y"), "t", "now"),
                List.of(new Direction("blocks.0.hook_resid_pre", 0, "last", new float[]{1, 0, 0}, 1, 0, 1, 1, 2, 2, 1)));
        JlensException e = assertThrows(JlensException.class, () -> DirectionArithmetic.combine(List.of(
                new DirectionArithmetic.Term(Path.of("a"), a, 1), new DirectionArithmetic.Term(Path.of("w"), wide, 1)), "t"));
        assertTrue(e.getMessage().contains("same model"), e.getMessage());
    }
}
