package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LengthMatcherTest {

    @Test
    void exactMatchingPairsEqualLengthsWithoutReuseAndAsManyAsPossible() {
        Random rng = new Random(1);
        int[] la = new int[120], lb = new int[90];
        for (int i = 0; i < la.length; i++) la[i] = 3 + rng.nextInt(15);
        for (int i = 0; i < lb.length; i++) lb[i] = 8 + rng.nextInt(15);
        LengthMatcher.Pairs p = LengthMatcher.match(la, lb, 0, new SplittableRandom(5));
        Set<Integer> usedA = new HashSet<>(), usedB = new HashSet<>();
        for (int k = 0; k < p.size(); k++) {
            assertEquals(la[p.a()[k]], lb[p.b()[k]]);
            assertTrue(usedA.add(p.a()[k]) && usedB.add(p.b()[k]), "prompt used twice");
        }
        Map<Integer, Integer> ca = new HashMap<>(), cb = new HashMap<>();
        for (int l : la) ca.merge(l, 1, Integer::sum);
        for (int l : lb) cb.merge(l, 1, Integer::sum);
        int best = 0;
        for (var e : ca.entrySet()) best += Math.min(e.getValue(), cb.getOrDefault(e.getKey(), 0));
        assertEquals(best, p.size());
    }

    @Test
    void caliperBoundsTheLengthDifferenceAndSameSeedSamePairs() {
        Random rng = new Random(2);
        int[] la = new int[80], lb = new int[80];
        for (int i = 0; i < 80; i++) {
            la[i] = 2 * rng.nextInt(20);        // even lengths only
            lb[i] = 2 * rng.nextInt(20) + 1;    // odd lengths only
        }
        assertEquals(0, LengthMatcher.match(la, lb, 0, new SplittableRandom(1)).size());
        LengthMatcher.Pairs p = LengthMatcher.match(la, lb, 1, new SplittableRandom(1));
        assertTrue(p.size() > 40);
        for (int k = 0; k < p.size(); k++) assertEquals(1, Math.abs(la[p.a()[k]] - lb[p.b()[k]]));
        LengthMatcher.Pairs again = LengthMatcher.match(la, lb, 1, new SplittableRandom(1));
        assertEquals(java.util.Arrays.toString(p.a()), java.util.Arrays.toString(again.a()));
        assertEquals(java.util.Arrays.toString(p.b()), java.util.Arrays.toString(again.b()));
    }
}
