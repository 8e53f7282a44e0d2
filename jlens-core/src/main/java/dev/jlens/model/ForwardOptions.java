package dev.jlens.model;

import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;

import java.util.List;

/**
 * What a forward pass must produce. Doing only the work asked for is part of the design: without logits the
 * unembedding is skipped, with {@code lastLayer} set the blocks after it are not run at all, and without logits
 * the causal runner also stops after the deepest hooked block.
 *
 * @param logits         compute the LM-head output (for encoders: the final hidden states)
 * @param lastLayer      the last block to run, or -1 for all of them
 * @param lastTokenOnly  causal models: logits only for each sequence's last new token, [sequences, vocab], row s
 *                       for sequence s (zeros for a sequence that brings no tokens): generation needs no
 *                       more, and the unembedding is the largest single product of a step
 */
public record ForwardOptions(boolean logits, int lastLayer, boolean lastTokenOnly) {

    public ForwardOptions(boolean logits, int lastLayer) {
        this(logits, lastLayer, false);
    }

    public static ForwardOptions full() {
        return new ForwardOptions(true, -1);
    }

    /** All blocks, and logits for each sequence's last new token only (what generation samples from). */
    public static ForwardOptions lastTokenLogits() {
        return new ForwardOptions(true, -1, true);
    }

    /**
     * No logits: a runner stops after the deepest block a hook is on (a hook on the final norm runs them all).
     */
    public static ForwardOptions hooksOnly() {
        return new ForwardOptions(false, -1);
    }

    /** Run blocks 0..layer (inclusive) and stop; no logits. */
    public static ForwardOptions upTo(int layer) {
        return new ForwardOptions(false, layer);
    }

    /** The number of blocks to run for a model with n layers. */
    public int blocksToRun(int nLayers) {
        return logits || lastLayer < 0 ? nLayers : Math.min(nLayers, lastLayer + 1);
    }

    /**
     * Blocks to run for a pass whose only outputs are its hooks and, with logits, the logits: with logits all of
     * them, else up to the deepest block a hook is on (all of them for a hook on the final norm), or
     * {@code lastLayer} if that comes first.
     */
    public int blocksToRun(int nLayers, Hooks hooks, List<HookPoint> points) {
        int n = blocksToRun(nLayers);
        if (logits) return n;
        int deepest = hooks.deepestLayer(points);
        return deepest == Integer.MAX_VALUE ? n : Math.min(n, deepest + 1);
    }
}
