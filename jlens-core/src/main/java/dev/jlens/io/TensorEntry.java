package dev.jlens.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One stored tensor: its name, element type, shape, and the raw little-endian bytes (usually a slice of a
 * memory-mapped file, so nothing is copied until a value is read). {@code source} names the file for error
 * messages.
 */
public record TensorEntry(String name, DType dtype, long[] shape, MemorySegment data, String source) {

    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public long numel() {
        long n = 1;
        for (long s : shape) n *= s;
        return n;
    }

    public int rank() {
        return shape.length;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** Element i widened to float, whatever the stored type. */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.get(F32, i * 4);
            case F16 -> Float.float16ToFloat(data.get(I16, i * 2));
            case BF16 -> Float.intBitsToFloat((data.get(I16, i * 2) & 0xffff) << 16);
            case F64 -> (float) data.get(F64, i * 8);
            case I64 -> data.get(I64, i * 8);
            case I32 -> data.get(I32, i * 4);
            case I16 -> data.get(I16, i * 2);
            case I8 -> data.get(ValueLayout.JAVA_BYTE, i);
            case U8, BOOL -> data.get(ValueLayout.JAVA_BYTE, i) & 0xff;
        };
    }

    /** Copies the whole tensor into a new float array (widening 16-bit types). */
    public float[] toFloatArray() {
        long n = numel();
        if (n > Integer.MAX_VALUE - 8) {
            throw new dev.jlens.JlensException(source + ": tensor " + name + " has " + n
                    + " elements, too many for one float array; it must be read in slices");
        }
        float[] out = new float[(int) n];
        if (dtype == DType.F32) {
            MemorySegment.copy(data, F32, 0, out, 0, out.length);
        } else {
            for (int i = 0; i < out.length; i++) out[i] = getFloat(i);
        }
        return out;
    }

    /** Copies an integer tensor into longs. */
    public long[] toLongArray() {
        long n = numel();
        long[] out = new long[(int) n];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (dtype) {
                case I64 -> data.get(I64, i * 8L);
                case I32 -> data.get(I32, i * 4L);
                default -> (long) getFloat(i);
            };
        }
        return out;
    }
}
