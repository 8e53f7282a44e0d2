package dev.jlens.stats;

import java.nio.charset.StandardCharsets;
import java.util.SplittableRandom;

/**
 * Random streams derived from one user seed. Each purpose (cross-validation split, bootstrap, permutations, ...)
 * gets its own stream keyed by seed, layer and a purpose name, so asking for more bootstrap draws does not
 * change the permutation p-values, and one layer's numbers do not depend on which other layers were analysed.
 */
public final class Seeds {

    private Seeds() {
    }

    public static SplittableRandom stream(long seed, int layer, String purpose) {
        long h = mix(seed ^ 0x9E3779B97F4A7C15L);
        h = mix(h ^ (layer * 0xBF58476D1CE4E5B9L));
        for (byte c : purpose.getBytes(StandardCharsets.UTF_8)) h = mix(h ^ (c & 0xFF));
        return new SplittableRandom(h);
    }

    /**
     * One independent generator per draw, split off in draw order. Draws can then run on any number of threads
     * and still see exactly the random numbers a sequential run would.
     */
    public static SplittableRandom[] perDraw(SplittableRandom parent, int draws) {
        SplittableRandom[] out = new SplittableRandom[draws];
        for (int i = 0; i < draws; i++) out[i] = parent.split();
        return out;
    }

    /** Stafford's variant 13 of the MurmurHash3 finaliser. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
