package dev.jlens.tensor;

import java.util.Arrays;

/**
 * A dense row-major float32 tensor. Activations are mostly 2-D, {@code [tokens, d_model]}, with the tokens
 * of every sequence in a batch packed one after another (see {@link TokenBatch}); there is no padding, so a
 * real token's numbers can never depend on another sequence's length.
 */
public final class FloatTensor {
    private final int[] shape;
    private final float[] data;

    public FloatTensor(float[] data, int... shape) {
        long n = 1;
        for (int s : shape) n *= s;
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        }
        this.shape = shape.clone();
        this.data = data;
    }

    public static FloatTensor zeros(int... shape) {
        long n = 1;
        for (int s : shape) n *= s;
        return new FloatTensor(new float[Math.toIntExact(n)], shape);
    }

    public int[] shape() {
        return shape.clone();
    }


    /** Size of dimension i. */
    public int dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    /** The backing array; writes are visible to the owner (hooks use this to modify in place). */
    public float[] data() {
        return data;
    }

    public int rows() {
        return shape[0];
    }

    /** Size of the last dimension. */
    public int cols() {
        return shape[shape.length - 1];
    }

    public float get(int row, int col) {
        return data[row * cols() + col];
    }

    public void set(int row, int col, float v) {
        data[row * cols() + col] = v;
    }


    /** A deep copy (a hook that keeps a value it may later see changed). */
    public FloatTensor copy() {
        return new FloatTensor(data.clone(), shape);
    }

    /** Rows [from, to) of a 2-D tensor as a new tensor. */
    public FloatTensor rowSlice(int from, int to) {
        int c = cols();
        return new FloatTensor(Arrays.copyOfRange(data, from * c, to * c), to - from, c);
    }

    @Override
    public String toString() {
        return "FloatTensor" + Arrays.toString(shape);
    }
}
