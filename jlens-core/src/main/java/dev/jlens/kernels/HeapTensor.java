package dev.jlens.kernels;

/**
 * The CPU backends' tensor: a float[] on the Java heap, possibly larger than {@code rows × cols} (scratch
 * buffers are reused for shorter batches), read from index 0.
 */
final class HeapTensor implements DeviceTensor {

    final float[] data;
    private final int rows;
    private final int cols;

    HeapTensor(float[] data, int rows, int cols) {
        if ((long) rows * cols > data.length) {
            throw new IllegalArgumentException("[" + rows + ", " + cols + "] needs " + (long) rows * cols
                    + " values, the array has " + data.length);
        }
        this.data = data;
        this.rows = rows;
        this.cols = cols;
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int cols() {
        return cols;
    }

    @Override
    public DeviceTensor view(int rows, int cols) {
        if ((long) rows * cols != (long) this.rows * this.cols) {
            throw new IllegalArgumentException("cannot view [" + this.rows + ", " + this.cols + "] as [" + rows + ", " + cols + "]");
        }
        return new HeapTensor(data, rows, cols);
    }

    static float[] of(DeviceTensor t) {
        if (t instanceof HeapTensor h) return h.data;
        throw new IllegalArgumentException("a CPU backend was given a tensor of another backend: " + t.getClass().getName());
    }

    @Override
    public String toString() {
        return "HeapTensor[" + rows + ", " + cols + "]";
    }
}
