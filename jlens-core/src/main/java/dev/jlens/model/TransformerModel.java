package dev.jlens.model;

import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.List;

/**
 * One architecture's forward pass with hooks. Implementations are immutable after loading and safe to call
 * from several threads at once (all scratch space is per call).
 */
public interface TransformerModel {

    ModelInfo info();

    /** Every hook point, in the order the forward pass reaches them. */
    List<HookPoint> hookPoints();

    /**
     * Runs the packed batch. Returns the logits {@code [totalTokens, vocab]} when {@code options.logits()}
     * (for an encoder: its final hidden states {@code [totalTokens, d]}), else null.
     */
    FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks);
}
