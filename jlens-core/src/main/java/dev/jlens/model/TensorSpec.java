package dev.jlens.model;

import java.util.Arrays;

/**
 * One tensor a family reads from a checkpoint: its name there, the shape config.json implies (as stored),
 * what it is for, and its layer (-1 outside the blocks).
 *
 * @param bias       a bias (or a LayerNorm's beta) rather than a weight
 * @param transposed a linear weight stored {@code [in, out]} (GPT-2's Conv1D) instead of {@code [out, in]}
 */
public record TensorSpec(String name, long[] shape, TensorRole role, int layer, boolean bias, boolean transposed) {

    public TensorSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Values in the tensor. */
    public long numel() {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    @Override
    public String toString() {
        return name + Arrays.toString(shape) + " " + role + (bias ? " bias" : "");
    }
}
