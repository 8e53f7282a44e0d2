package dev.jlens.geometry;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;

/**
 * Pairs class A and class B prompts of the same or nearest token length, without replacement. The smaller class
 * (class B on a tie) is walked in a seeded random order; each of its prompts takes a random unused prompt of the
 * other class at the nearest length, provided the lengths differ by at most the caliper. The caliper matters:
 * without one, two classes of equal size would pair every prompt with some prompt, and the "matched" subsample
 * would be the whole data set with its length confound intact.
 */
final class LengthMatcher {

    record Pairs(int[] a, int[] b) {
        int size() {
            return a.length;
        }
    }

    private LengthMatcher() {
    }

    static Pairs match(int[] lengthsA, int[] lengthsB, int caliper, SplittableRandom rng) {
        boolean walkB = lengthsB.length <= lengthsA.length;
        int[] walk = walkB ? lengthsB : lengthsA, pool = walkB ? lengthsA : lengthsB;
        TreeMap<Integer, ArrayDeque<Integer>> byLength = new TreeMap<>();
        for (int i : shuffled(pool.length, rng)) byLength.computeIfAbsent(pool[i], k -> new ArrayDeque<>()).add(i);
        List<int[]> pairs = new ArrayList<>();
        for (int w : shuffled(walk.length, rng)) {
            int len = walk[w];
            Integer lo = byLength.floorKey(len), hi = byLength.ceilingKey(len);
            Integer pick;
            if (lo == null) pick = hi;
            else if (hi == null) pick = lo;
            else if (len - lo != hi - len) pick = len - lo < hi - len ? lo : hi;
            else pick = rng.nextBoolean() ? lo : hi;
            if (pick == null || Math.abs(pick - len) > caliper) continue;
            ArrayDeque<Integer> bucket = byLength.get(pick);
            int p = bucket.poll();
            if (bucket.isEmpty()) byLength.remove(pick);
            pairs.add(walkB ? new int[] {p, w} : new int[] {w, p});
        }
        int[] ia = new int[pairs.size()], ib = new int[pairs.size()];
        for (int k = 0; k < pairs.size(); k++) {
            ia[k] = pairs.get(k)[0];
            ib[k] = pairs.get(k)[1];
        }
        return new Pairs(ia, ib);
    }

    private static int[] shuffled(int n, SplittableRandom rng) {
        int[] idx = new int[n];
        for (int i = 0; i < n; i++) idx[i] = i;
        for (int i = n - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        return idx;
    }
}
