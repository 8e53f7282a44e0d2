package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.List;

/**
 * One architecture's forward pass with hooks. Implementations are immutable after loading and safe to call
 * from several threads at once: each call allocates its own working tensors on the backend, which serialises
 * its operations.
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

    /**
     * Runs the batch's new tokens after the tokens held in {@code cache} (see {@link KvCache}), adding their
     * keys and values to it; with a null cache this is the plain forward above. Hooks see only the new rows,
     * and the batch's {@code pastLengths} tell them each row's absolute position. Causal families support it;
     * others throw a {@link JlensException}.
     */
    default FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks, KvCache cache) {
        if (cache == null) return forward(batch, options, hooks);
        throw new JlensException(info().architecture() + " (" + info().family() + ") has no KV cache: "
                + (info().causal() ? "it is not supported for this family yet" : "it is a bidirectional encoder, "
                + "so every token attends to later ones and a cached prefix cannot be continued"));
    }

    /**
     * The final norm and unembedding, for instruments that read the residual stream out as logits (logit lens,
     * direct attribution). Causal families have one; an encoder throws a {@link JlensException}.
     */
    default Readout readout() {
        throw new JlensException(info().architecture() + " (" + info().family() + ") has no unembedding: the logit lens, "
                + "attribution and patching need a causal language model");
    }
}
