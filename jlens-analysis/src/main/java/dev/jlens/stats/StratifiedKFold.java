package dev.jlens.stats;

import java.util.SplittableRandom;

/** A seeded stratified k-fold split: each fold gets the same share (±1) of every class. */
public final class StratifiedKFold {

    private StratifiedKFold() {
    }

    /**
     * Fold index (0..k-1) per sample. Each class is shuffled and dealt round-robin; the second class continues
     * the deal where the first stopped, so fold sizes also differ by at most one overall.
     */
    public static int[] assign(boolean[] positive, int k, SplittableRandom rng) {
        int n = positive.length;
        int[] fold = new int[n];
        int next = 0;
        for (boolean cls : new boolean[] {false, true}) {
            int count = 0;
            for (boolean p : positive) if (p == cls) count++;
            int[] idx = new int[count];
            int c = 0;
            for (int i = 0; i < n; i++) if (positive[i] == cls) idx[c++] = i;
            for (int i = count - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
            for (int i : idx) {
                fold[i] = next;
                next = (next + 1) % k;
            }
        }
        return fold;
    }
}
