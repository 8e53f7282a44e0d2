package dev.jlens.model;

/**
 * What a forward pass must produce. Doing only the work asked for is part of the design: without logits the
 * unembedding is skipped, and with {@code lastLayer} set the blocks after it are not run at all.
 *
 * @param logits    compute the LM-head output (for encoders: the final hidden states)
 * @param lastLayer the last block to run, or -1 for all of them
 */
public record ForwardOptions(boolean logits, int lastLayer) {

    public static ForwardOptions full() {
        return new ForwardOptions(true, -1);
    }

    /** Run blocks 0..layer (inclusive) and stop; no logits. */
    public static ForwardOptions upTo(int layer) {
        return new ForwardOptions(false, layer);
    }

    /** The number of blocks to run for a model with n layers. */
    public int blocksToRun(int nLayers) {
        return logits || lastLayer < 0 ? nLayers : Math.min(nLayers, lastLayer + 1);
    }
}
