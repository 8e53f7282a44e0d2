package dev.jlens.model;

/**
 * What a checkpoint tensor is for, whatever a family calls it. Code outside a family's own file asks these
 * questions (which tensors write to the residual stream, which are embeddings, which get packed) instead of
 * matching tensor names.
 */
public enum TensorRole {
    EMBED, POS_EMBED,
    ATTN_NORM, Q, K, V, QKV, Q_NORM, K_NORM, O, POST_ATTN_NORM,
    MLP_NORM, GATE, UP, GATE_UP, DOWN, POST_MLP_NORM,
    FINAL_NORM, UNEMBED;

    /** Whether the tensor's output is added straight into the residual stream (weight orthogonalisation edits these). */
    public boolean writesResidual() {
        return this == EMBED || this == POS_EMBED || this == O || this == DOWN;
    }

    /** An embedding table: read a row at a time, never multiplied, so never packed. */
    public boolean isEmbedding() {
        return this == EMBED || this == POS_EMBED;
    }

    /** A norm's weight (or bias): a vector, kept on the heap. */
    public boolean isNorm() {
        return this == ATTN_NORM || this == Q_NORM || this == K_NORM || this == POST_ATTN_NORM || this == MLP_NORM
                || this == POST_MLP_NORM || this == FINAL_NORM;
    }

    /** A linear layer's weight: multiplied through the backend's packed layout. */
    public boolean isLinear() {
        return !isEmbedding() && !isNorm();
    }
}
