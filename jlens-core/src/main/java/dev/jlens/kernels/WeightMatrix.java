package dev.jlens.kernels;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A linear layer's weight in the {@code nn.Linear} layout {@code [out, in]} (rows = outputs), kept in its
 * stored type: F32 rows are read straight from the (usually memory-mapped) segment, F16/BF16 rows are
 * widened when a kernel reads them, so 16-bit checkpoints stay 16-bit in memory. A weight also carries a
 * backend's packed copy of itself once it has been multiplied (or {@link Backend#prepare prepared}): the
 * copy is made once per matrix, safely shared between threads, and then replaces the stored form in
 * every product.
 */
public final class WeightMatrix {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int rows;
    private final int cols;
    private final DType dtype;
    private final MemorySegment data;
    private final String name;
    private volatile Prepared packed;

    private WeightMatrix(String name, int rows, int cols, DType dtype, MemorySegment data) {
        this.name = name;
        this.rows = rows;
        this.cols = cols;
        this.dtype = dtype;
        this.data = data;
    }

    public static WeightMatrix of(TensorEntry e) {
        if (e.rank() != 2) throw new JlensException(e.source() + ": tensor " + e.name() + " has shape " + e.shapeString() + "; expected a matrix");
        if (e.dtype() != DType.F32 && e.dtype() != DType.F16 && e.dtype() != DType.BF16) {
            throw new JlensException(e.source() + ": tensor " + e.name() + " is " + e.dtype() + "; expected F32, F16 or BF16 weights");
        }
        return new WeightMatrix(e.name(), Math.toIntExact(e.shape()[0]), Math.toIntExact(e.shape()[1]), e.dtype(), e.data());
    }

    /** A matrix over raw little-endian F32, F16 or BF16 values (benchmarks, generated weights). */
    public static WeightMatrix of(String name, DType dtype, MemorySegment data, int rows, int cols) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
            throw new IllegalArgumentException(name + ": " + dtype + " weights are not supported; expected F32, F16 or BF16");
        }
        if (data.byteSize() != (long) rows * cols * dtype.bytes()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for " + rows + "x" + cols + " " + dtype);
        }
        return new WeightMatrix(name, rows, cols, dtype, data);
    }

    public static WeightMatrix ofFloats(String name, float[] values, int rows, int cols) {
        if ((long) rows * cols != values.length) throw new IllegalArgumentException(name + ": " + values.length + " values for " + rows + "x" + cols);
        return new WeightMatrix(name, rows, cols, DType.F32, MemorySegment.ofArray(values));
    }

    /**
     * The transpose of a stored {@code [in, out]} matrix (GPT-2's Conv1D), materialised once in the same
     * element type so that every kernel sees the {@code [out, in]} layout.
     */
    public static WeightMatrix transposed(TensorEntry e) {
        WeightMatrix src = of(e);
        int r = src.cols, c = src.rows;
        int w = e.dtype().bytes();
        byte[] out = new byte[Math.toIntExact((long) r * c * w)];
        MemorySegment dst = MemorySegment.ofArray(out);
        for (int i = 0; i < src.rows; i++) {
            for (int j = 0; j < src.cols; j++) {
                MemorySegment.copy(src.data, ((long) i * src.cols + j) * w, dst, ((long) j * c + i) * w, w);
            }
        }
        return new WeightMatrix(e.name() + ".T", r, c, e.dtype(), dst);
    }

    /**
     * This weight in {@code owner}'s multiplication layout, made by packer on first use (once per owner, even
     * under concurrent first uses). A backend keeps its copy here so that it lives exactly as long as the
     * weight does.
     */
    @SuppressWarnings("unchecked")
    <T> T packed(Object owner, java.util.function.Function<WeightMatrix, T> packer) {
        Prepared p = packed;
        if (p == null || p.owner != owner) {
            synchronized (this) {
                p = packed;
                if (p == null || p.owner != owner) {
                    p = new Prepared(owner, packer.apply(this));
                    packed = p;
                }
            }
        }
        return (T) p.value;
    }

    /** One backend's prepared form of a weight; a weight used by a second backend is prepared again for it. */
    private record Prepared(Object owner, Object value) {
    }

    /** Whether the packed copy exists yet (tests, diagnostics). */
    public boolean isPacked() {
        return packed != null;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    public DType dtype() {
        return dtype;
    }

    public String name() {
        return name;
    }

    /** The raw segment, for kernels that read F32 rows in place. */
    public MemorySegment segment() {
        return data;
    }

    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case F32 -> data.get(F32, i * 4);
            case F16 -> Float.float16ToFloat(data.get(I16, i * 2));
            case BF16 -> Float.intBitsToFloat((data.get(I16, i * 2) & 0xffff) << 16);
            default -> throw new IllegalStateException();
        };
    }

    /** Row r widened to float into dst[0..cols). */
    public void row(int r, float[] dst) {
        long base = (long) r * cols;
        switch (dtype) {
            case F32 -> MemorySegment.copy(data, F32, base * 4, dst, 0, cols);
            case F16 -> {
                for (int c = 0; c < cols; c++) dst[c] = Float.float16ToFloat(data.get(I16, (base + c) * 2));
            }
            case BF16 -> {
                for (int c = 0; c < cols; c++) dst[c] = Float.intBitsToFloat((data.get(I16, (base + c) * 2) & 0xffff) << 16);
            }
            default -> throw new IllegalStateException();
        }
    }

    /** The whole matrix as floats (small matrices only: embeddings of tiny models, tests). */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact((long) rows * cols)];
        float[] tmp = new float[cols];
        for (int r = 0; r < rows; r++) {
            row(r, tmp);
            System.arraycopy(tmp, 0, out, r * cols, cols);
        }
        return out;
    }
}
