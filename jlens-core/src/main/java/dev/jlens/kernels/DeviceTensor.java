package dev.jlens.kernels;

/**
 * A row-major float tensor {@code [rows, cols]} owned by a {@link Backend}: heap memory for the CPU backends,
 * device memory for a GPU one. The forward pass only ever hands these back to the backend that made them;
 * the values reach Java code through {@link Backend#toHost} when a hook asks for them.
 */
public interface DeviceTensor {

    int rows();

    int cols();

    default long size() {
        return (long) rows() * cols();
    }

    /**
     * The same storage seen as {@code [rows, cols]} with the same number of values, e.g. {@code [T, heads*d_head]}
     * as {@code [T*heads, d_head]} for a per-head norm. Writes through either view are visible in the other.
     */
    DeviceTensor view(int rows, int cols);
}
