package dev.jlens.hooks;

import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

/**
 * Called with an activation as the forward pass produces it. Return {@code value} (read-only use, or after
 * modifying its data in place) or a new tensor of the same shape; the forward pass continues with what is
 * returned.
 */
@FunctionalInterface
public interface Hook {
    FloatTensor apply(HookPoint point, FloatTensor value, TokenBatch batch);
}
