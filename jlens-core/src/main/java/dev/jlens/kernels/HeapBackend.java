package dev.jlens.kernels;

import dev.jlens.tensor.FloatTensor;

/**
 * The memory operations both CPU backends share: their tensors are heap arrays ({@link HeapTensor}), so
 * uploads adopt the array, hooks see the activation's own memory, and copies are array copies.
 */
abstract class HeapBackend implements Backend {

    @Override
    public DeviceTensor allocate(int rows, int cols) {
        return new HeapTensor(new float[Math.multiplyExact(rows, cols)], rows, cols);
    }

    @Override
    public DeviceTensor upload(float[] host, int rows, int cols) {
        return new HeapTensor(host, rows, cols);
    }

    @Override
    public FloatTensor toHost(DeviceTensor t, int... shape) {
        return view(t, shape);
    }

    @Override
    public void fromHost(FloatTensor host, DeviceTensor t) {
        writeBack(host, t);
    }

    @Override
    public void copyRows(DeviceTensor src, int srcRow, DeviceTensor dst, int dstRow, int rows) {
        copyRowsOf(src, srcRow, dst, dstRow, rows);
    }

    @Override
    public void copyColumns(DeviceTensor src, int srcCol, DeviceTensor dst, int dstCol, int width) {
        copyColumnsOf(src, srcCol, dst, dstCol, width);
    }

    @Override
    public void gather(WeightMatrix table, int[] ids, float scale, DeviceTensor out) {
        gatherRows(table, ids, scale, out);
    }

    @Override
    public void normStats(boolean layerNorm, DeviceTensor x, float eps, DeviceTensor scale, DeviceTensor normalized) {
        float[] xs = HeapTensor.of(x), sc = HeapTensor.of(scale), nm = HeapTensor.of(normalized);
        if (layerNorm) NormStats.layerNorm(xs, x.rows(), x.cols(), eps, sc, nm);
        else NormStats.rmsNorm(xs, x.rows(), x.cols(), eps, sc, nm);
    }

    /** A host tensor over the same array: on the CPU a hook reads and writes the activation itself. */
    private static FloatTensor view(DeviceTensor t, int... shape) {
        float[] data = HeapTensor.of(t);
        int n = Math.toIntExact(t.size());
        long want = 1;
        for (int s : shape) want *= s;
        if (want != n) throw new IllegalArgumentException("cannot see " + t + " as shape " + java.util.Arrays.toString(shape));
        if (data.length != n) {
            // A scratch buffer larger than this batch: FloatTensor needs an exact array, so hand out a copy
            // (the runner gives hooked points exact arrays, so this path serves only unhooked reads).
            data = java.util.Arrays.copyOf(data, n);
        }
        return new FloatTensor(data, shape);
    }

    private static void writeBack(FloatTensor host, DeviceTensor t) {
        float[] dst = HeapTensor.of(t);
        if (host.data() == dst) return;
        int n = Math.toIntExact(t.size());
        if (host.data().length != n) {
            throw new IllegalArgumentException("a hook returned " + host.data().length + " values for " + t);
        }
        System.arraycopy(host.data(), 0, dst, 0, n);
    }

    private static void copyRowsOf(DeviceTensor src, int srcRow, DeviceTensor dst, int dstRow, int rows) {
        int w = src.cols();
        if (dst.cols() != w) throw new IllegalArgumentException("copyRows from " + src + " to " + dst);
        if (srcRow < 0 || dstRow < 0 || srcRow + rows > src.rows() || dstRow + rows > dst.rows()) {
            throw new IndexOutOfBoundsException("rows " + srcRow + "+" + rows + " of " + src + " to " + dstRow + " of " + dst);
        }
        System.arraycopy(HeapTensor.of(src), srcRow * w, HeapTensor.of(dst), dstRow * w, rows * w);
    }

    private static void copyColumnsOf(DeviceTensor src, int srcCol, DeviceTensor dst, int dstCol, int width) {
        int rows = src.rows();
        if (dst.rows() != rows || srcCol + width > src.cols() || dstCol + width > dst.cols()) {
            throw new IndexOutOfBoundsException("columns " + srcCol + "+" + width + " of " + src + " to " + dstCol + " of " + dst);
        }
        float[] s = HeapTensor.of(src), d = HeapTensor.of(dst);
        int sw = src.cols(), dw = dst.cols();
        for (int r = 0; r < rows; r++) System.arraycopy(s, r * sw + srcCol, d, r * dw + dstCol, width);
    }

    private static void gatherRows(WeightMatrix table, int[] ids, float scale, DeviceTensor out) {
        int cols = table.cols();
        if (out.cols() != cols || out.rows() != ids.length) {
            throw new IllegalArgumentException("gather of " + ids.length + " rows of " + table.name() + " into " + out);
        }
        float[] o = HeapTensor.of(out);
        float[] row = new float[cols];
        for (int t = 0; t < ids.length; t++) {
            table.row(ids[t], row);
            if (scale != 1f) for (int c = 0; c < cols; c++) row[c] *= scale;
            System.arraycopy(row, 0, o, t * cols, cols);
        }
    }
}
