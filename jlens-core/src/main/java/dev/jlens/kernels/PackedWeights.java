package dev.jlens.kernels;

import dev.jlens.io.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A weight matrix re-laid out for the CPU GEMM: its outputs cut into panels of {@link #NR} rows, each panel
 * stored K-major ({@code [k][j]}, j the output within the panel), so the micro-kernel reads one contiguous
 * strip of NR weights per step of the reduction. The last panel is padded with zeros. 16-bit weights stay
 * 16-bit here and are widened one block at a time into a cache-resident float buffer ({@link #widen}), or in
 * registers by the streaming kernels.
 *
 * <p>Finite F16 weights are stored times 2^{@link #halfShift} (10 unless some |w| is 64 or more), an exact
 * change of scale that makes every subnormal half a normal one. The kernels widen a half in three integer
 * operations to w·2^-112 as a float, which for a subnormal half is a subnormal float, and on Intel cores a
 * fused multiply-add with a subnormal input takes a microcode assist: on the 2-core Sapphire Rapids-class VM
 * with Pythia-shaped weights (0.2% of the halves subnormal, about one 16-lane vector in 25 holding one) the
 * one-row kernel read 16.5 GB/s from L2 against 56 GB/s for the same matrix without subnormals (2026-12-07,
 * docs/PERFORMANCE.md; AMD's Zen cores take subnormals at full speed). Scaled, the widened weight is
 * w·2^(halfShift-112), always normal (or zero), and the activations are pre-scaled by 2^(112-halfShift)
 * instead of 2^112: the same exact product inside each FMA, so the bits are unchanged.
 * Stored off-heap ({@link NativeMemory}): a 2.8B-parameter model's packed copy must not depend on the Java heap limit.
 */
final class PackedWeights {

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Outputs per panel: two vectors, the width of the micro-kernel. */
    static final int NR = 2 * L;

    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, S.vectorShape());
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final int rows;
    private final int cols;
    private final int panels;
    private final DType dtype;
    private final MemorySegment data;
    private final boolean finiteHalves;
    private final int halfShift;

    /** The power of two finite F16 weights are stored times when every |w| is below 64 (class comment). */
    static final int HALF_SHIFT = 10;
    /** The largest half exponent field (biased) that survives a shift by {@link #HALF_SHIFT}: 30 is the largest finite. */
    private static final int MAX_SHIFTABLE_EXPONENT = 30 - HALF_SHIFT;

    private PackedWeights(int rows, int cols, DType dtype, MemorySegment data, boolean finiteHalves, int halfShift) {
        this.rows = rows;
        this.cols = cols;
        this.panels = (rows + NR - 1) / NR;
        this.dtype = dtype;
        this.data = data;
        this.finiteHalves = finiteHalves;
        this.halfShift = halfShift;
    }

    int rows() {
        return rows;
    }

    int cols() {
        return cols;
    }

    int panels() {
        return panels;
    }

    DType dtype() {
        return dtype;
    }

    /**
     * F16 weights without an infinity or NaN (checked once, when packing): they can be widened by the cheap
     * exact conversion of {@link StreamingKernels}, which is wrong only for those. False for other types.
     */
    boolean finiteHalves() {
        return finiteHalves;
    }

    /**
     * The power of two the stored F16 values are the weights times (class comment): {@link #HALF_SHIFT}, less when a
     * weight is 64 or more in magnitude, 0 for other types and for halves with infinities or NaNs.
     */
    int halfShift() {
        return halfShift;
    }

    /**
     * 2^(112 − halfShift): the three-operation widening turns a stored half into w·2^(halfShift − 112), so the
     * streaming F16 kernels pre-scale their activations by this (each product is then x·w exactly), and
     * {@link #widenF16} multiplies by it to give w.
     */
    float halfActivationScale() {
        return Math.scalb(1f, 112 - halfShift);
    }

    /** 2^(16 + halfShift): activations this large or larger overflow when pre-scaled by {@link #halfActivationScale}. */
    float halfActivationLimit() {
        return Math.scalb(1f, 16 + halfShift);
    }

    /** Whether one packing of the input serves both in one pass: same type, and the same F16 storage. */
    boolean sameKind(PackedWeights o) {
        return dtype == o.dtype && finiteHalves == o.finiteHalves && halfShift == o.halfShift;
    }

    /** The packed values, panel after panel, each [k][j]. */
    MemorySegment data() {
        return data;
    }

    /** Byte offset of panel p's strip for reduction step k0 (its NR values follow). */
    long byteOffset(int p, int k0) {
        return ((long) p * cols + k0) * NR * dtype.bytes();
    }

    /** Bytes of the packed copy: what one pass over this weight reads. */
    long bytes() {
        return data.byteSize();
    }

    /**
     * Packs w, the participants of the pool claiming chunks of panels. When w is a slice of
     * a memory-mapped checkpoint its pages are released afterwards: the packed copy replaces them, and
     * keeping both resident would double the memory a model needs (the OS page cache still holds the
     * file, so a later row read faults back in cheaply).
     */
    static PackedWeights pack(WeightMatrix w, WorkerPool pool) {
        int n = w.rows(), k = w.cols();
        DType dt = w.dtype();
        int panels = (n + NR - 1) / NR;
        MemorySegment dst = NativeMemory.allocate((long) panels * k * NR * dt.bytes());
        int shift = dt == DType.F16 ? HALF_SHIFT : 0;
        int top = packAll(w, dst, pool, shift);
        boolean finite = dt == DType.F16 && top < 31;
        if (dt == DType.F16 && top > MAX_SHIFTABLE_EXPONENT) {
            // Rare (a weight of 64 or more, or an infinity or NaN): pack again with the largest shift that stays finite.
            shift = finite ? 30 - top : 0;
            packAll(w, dst, pool, shift);
        }
        if (w.segment().isMapped()) {
            try {
                w.segment().unload();
            } catch (RuntimeException ignored) {
                // releasing pages is only a memory saving; a mapping that refuses it is still correct
            }
        }
        return new PackedWeights(n, k, dt, dst, finite, shift);
    }

    /**
     * Packs every panel of w into dst, 16-bit values times 2^shift, the participants of the pool claiming chunks of
     * panels; returns the largest half exponent field among the source values (16-bit types; 0 for F32).
     */
    private static int packAll(WeightMatrix w, MemorySegment dst, WorkerPool pool, int shift) {
        int n = w.rows(), k = w.cols();
        int bytes = w.dtype().bytes();
        int panels = (n + NR - 1) / NR;
        MemorySegment src = w.segment();
        Object[] buffers = new Object[pool.size() * 2];
        int[] top = new int[pool.size()];
        int chunk = 4;
        pool.forEach((panels + chunk - 1) / chunk, (id, c) -> {
            int p0 = c * chunk, p1 = Math.min(panels, p0 + chunk);
            if (bytes == 2) {
                if (buffers[2 * id] == null) {
                    buffers[2 * id] = new short[NR * k];
                    buffers[2 * id + 1] = new short[NR * k];
                }
                top[id] = Math.max(top[id], packShorts(src, dst, n, k, p0, p1, (short[]) buffers[2 * id], (short[]) buffers[2 * id + 1], shift));
            } else {
                if (buffers[2 * id] == null) {
                    buffers[2 * id] = new float[NR * k];
                    buffers[2 * id + 1] = new float[NR * k];
                }
                packFloats(src, dst, n, k, p0, p1, (float[]) buffers[2 * id], (float[]) buffers[2 * id + 1]);
            }
        });
        int max = 0;
        for (int t : top) max = Math.max(max, t);
        return max;
    }

    /** Start of share i of n items split into parts as evenly as possible. */
    static int split(int n, int parts, int i) {
        return (int) ((long) n * i / parts);
    }

    /**
     * Packs panels [p0, p1) of 16-bit weights, as halves times 2^shift when shift &gt; 0; returns the largest
     * exponent field among the source values read as IEEE halves (31: an infinity or NaN), found on each panel
     * while it is in cache.
     */
    private static int packShorts(MemorySegment src, MemorySegment dst, int n, int k, int p0, int p1,
                                  short[] rowsBuf, short[] panel, int shift) {
        int top = 0;
        float scale = Math.scalb(1f, shift);
        for (int p = p0; p < p1; p++) {
            int valid = Math.min(NR, n - p * NR);
            for (int j = 0; j < valid; j++) {
                MemorySegment.copy(src, I16, ((long) (p * NR + j) * k) * 2, rowsBuf, j * k, k);
            }
            if (valid < NR) java.util.Arrays.fill(rowsBuf, valid * k, NR * k, (short) 0);
            // Blocked transpose [j][k] -> [k][j]: a 32x32 block stays in L1 on both sides.
            for (int k0 = 0; k0 < k; k0 += 32) {
                int k1 = Math.min(k, k0 + 32);
                for (int j = 0; j < NR; j++) {
                    int s = j * k;
                    for (int kk = k0; kk < k1; kk++) panel[kk * NR + j] = rowsBuf[s + kk];
                }
            }
            // a max reduction C2 vectorises
            int exponents = 0;
            for (int i = 0; i < NR * k; i++) exponents = Math.max(exponents, panel[i] & 0x7c00);
            top = Math.max(top, exponents >> 10);
            // Exact while the exponent stays below 31 (else the caller packs again with a smaller shift); the JDK's
            // half conversions are hardware instructions, and C2 vectorises the loop.
            if (shift > 0 && exponents >> 10 <= 30 - shift) {
                for (int i = 0; i < NR * k; i++) panel[i] = Float.floatToFloat16(Float.float16ToFloat(panel[i]) * scale);
            }
            MemorySegment.copy(panel, 0, dst, I16, (long) p * k * NR * 2, NR * k);
        }
        return top;
    }

    private static void packFloats(MemorySegment src, MemorySegment dst, int n, int k, int p0, int p1,
                                   float[] rowsBuf, float[] panel) {
        for (int p = p0; p < p1; p++) {
            int valid = Math.min(NR, n - p * NR);
            for (int j = 0; j < valid; j++) {
                MemorySegment.copy(src, F32, ((long) (p * NR + j) * k) * 4, rowsBuf, j * k, k);
            }
            if (valid < NR) java.util.Arrays.fill(rowsBuf, valid * k, NR * k, 0f);
            for (int k0 = 0; k0 < k; k0 += 32) {
                int k1 = Math.min(k, k0 + 32);
                for (int j = 0; j < NR; j++) {
                    int s = j * k;
                    for (int kk = k0; kk < k1; kk++) panel[kk * NR + j] = rowsBuf[s + kk];
                }
            }
            MemorySegment.copy(panel, 0, dst, F32, (long) p * k * NR * 4, NR * k);
        }
    }

    /** Panel p, reduction steps [k0, k0+kc), widened to float into dst[0 .. kc*NR) as [kk][j]. */
    void widen(int p, int k0, int kc, float[] dst) {
        long first = ((long) p * cols + k0) * NR;
        int n = kc * NR;
        switch (dtype) {
            case F32 -> MemorySegment.copy(data, F32, first * 4, dst, 0, n);
            case F16 -> widenF16(data, first * 2, dst, n, halfActivationScale());
            case BF16 -> widenBF16(data, first * 2, dst, n);
            default -> throw new IllegalStateException(dtype.name());
        }
    }

    /**
     * IEEE half to float without a lookup table or scalar loop, bit-identical to {@link Float#float16ToFloat}
     * (rebias 2^112) or to it times 2^(rebias exponent − 112), for halves stored shifted ({@link #halfShift}):
     * exponent and mantissa are moved into float position and rescaled by rebias, which is exact for normal and
     * subnormal halves alike; infinities and NaNs get the float's all-ones exponent with their payload kept.
     * (The Vector API has no half-precision conversion yet.)
     */
    static void widenF16(MemorySegment seg, long byteOff, float[] dst, int n, float rebias) {
        int i = 0;
        int bound = n - n % L;
        for (; i < bound; i += L) {
            ShortVector h = ShortVector.fromMemorySegment(SS, seg, byteOff + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector v = (IntVector) h.convertShape(VectorOperators.S2I, IS, 0);
            IntVector em = v.and(0x7fff);
            IntVector shifted = em.lanewise(VectorOperators.LSHL, 13);
            IntVector bits = shifted.reinterpretAsFloats().mul(rebias).reinterpretAsInts();
            VectorMask<Integer> special = em.compare(VectorOperators.GE, 0x7c00);
            bits = bits.blend(shifted.or(0x7f800000), special);
            bits = bits.or(v.and(0x8000).lanewise(VectorOperators.LSHL, 16));
            bits.reinterpretAsFloats().intoArray(dst, i);
        }
        float unshift = rebias * 0x1p-112f;
        for (; i < n; i++) dst[i] = Float.float16ToFloat(seg.get(I16, byteOff + 2L * i)) * unshift;
    }

    /** bfloat16 is the top half of a float: sign-extend to int and shift the extension out. */
    static void widenBF16(MemorySegment seg, long byteOff, float[] dst, int n) {
        int i = 0;
        int bound = n - n % L;
        for (; i < bound; i += L) {
            ShortVector h = ShortVector.fromMemorySegment(SS, seg, byteOff + 2L * i, ByteOrder.LITTLE_ENDIAN);
            IntVector v = (IntVector) h.convertShape(VectorOperators.S2I, IS, 0);
            v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < n; i++) dst[i] = Float.intBitsToFloat((seg.get(I16, byteOff + 2L * i) & 0xffff) << 16);
    }
}
