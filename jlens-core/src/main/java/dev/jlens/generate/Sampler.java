package dev.jlens.generate;

import dev.jlens.JlensException;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from one row of logits. The warpers follow Hugging Face's {@code generate}: logits /
 * temperature, then top-k (keep tokens whose logit is at least the k-th largest, so ties at the border
 * stay), then top-p (sort ascending, drop the tokens whose cumulative probability is at most 1 − p, always
 * keeping the most likely one), then a draw from the softmax of what is left. Arithmetic is in double.
 */
public final class Sampler {

    private final GenerationConfig config;

    public Sampler(GenerationConfig config) {
        this.config = config;
    }

    /** The random stream of sequence s: depends only on the seed and s, so batching does not change draws. */
    public SplittableRandom random(int sequence) {
        return new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + sequence);
    }

    /** The token for logits[off .. off+vocab). */
    public int next(float[] logits, int off, int vocab, SplittableRandom rng) {
        if (config.greedyDecoding()) return argmax(logits, off, vocab);
        double[] z = new double[vocab];
        double t = config.temperature();
        for (int i = 0; i < vocab; i++) {
            float v = logits[off + i];
            if (Float.isNaN(v)) throw new JlensException("the model produced a NaN logit (token " + i + "); cannot sample");
            z[i] = v / t;
        }
        int k = config.topK();
        if (k > 0 && k < vocab) {
            double[] sorted = z.clone();
            Arrays.sort(sorted);
            double kth = sorted[vocab - k];
            for (int i = 0; i < vocab; i++) if (z[i] < kth) z[i] = Double.NEGATIVE_INFINITY;
        }
        if (config.topP() < 1) {
            Integer[] order = new Integer[vocab];
            for (int i = 0; i < vocab; i++) order[i] = i;
            // Ascending by logit; ties in index order, as a stable sort of HF's keeps them.
            Arrays.sort(order, (a, b) -> Double.compare(z[a], z[b]));
            double[] p = softmax(z);
            double cum = 0;
            for (int r = 0; r < vocab - 1; r++) {   // the last (most likely) token is always kept
                cum += p[order[r]];
                if (cum <= 1 - config.topP()) z[order[r]] = Double.NEGATIVE_INFINITY;
            }
        }
        double[] p = softmax(z);
        double u = rng.nextDouble();
        double acc = 0;
        int last = -1;
        for (int i = 0; i < vocab; i++) {
            if (p[i] == 0) continue;
            acc += p[i];
            last = i;
            if (u < acc) return i;
        }
        return last;   // u fell in the rounding gap above the summed probabilities
    }

    /** Index of the largest logit; the first among ties. */
    public static int argmax(float[] logits, int off, int vocab) {
        int best = 0;
        float bv = logits[off];
        for (int i = 1; i < vocab; i++) {
            float v = logits[off + i];
            if (Float.isNaN(v)) throw new JlensException("the model produced a NaN logit (token " + i + "); cannot pick a token");
            if (v > bv) {
                bv = v;
                best = i;
            }
        }
        if (Float.isNaN(bv)) throw new JlensException("the model produced NaN logits; cannot pick a token");
        return best;
    }

    private static double[] softmax(double[] z) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : z) max = Math.max(max, v);
        double[] p = new double[z.length];
        double sum = 0;
        for (int i = 0; i < z.length; i++) {
            p[i] = z[i] == Double.NEGATIVE_INFINITY ? 0 : Math.exp(z[i] - max);
            sum += p[i];
        }
        for (int i = 0; i < z.length; i++) p[i] /= sum;
        return p;
    }
}
