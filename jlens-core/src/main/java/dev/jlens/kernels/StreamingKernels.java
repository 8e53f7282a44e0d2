package dev.jlens.kernels;

import dev.jlens.io.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The small-M kernels of {@link Gemm} (generation: up to 31 new tokens per product, one per sequence of a batch), which are bound by
 * how fast the weights stream from memory, not by arithmetic. They read the packed weights in place, in
 * their stored order, widening each bfloat16 strip in registers right before its fused multiply-adds: no
 * widened copy is written and read back (the large-M path's widening buffer costs a store and a load per
 * weight, which at M = 1 is most of the work). Each output is still the fused multiply-add chain over k in
 * order from its bias, so the bits equal the large-M path's and the scalar loop's.
 *
 * <p>F16 only for matrices without infinities or NaNs ({@link PackedWeights#finiteHalves}), which {@link #f16}
 * (the four-row kernel's conversion, as a method for tests) widens exactly in four operations (three in the
 * kernels, whose activations come pre-scaled by 2^112 divided by the halves' stored scale; the one-row kernel
 * reads two halves per int lane, see the comment above it); the general exact conversion ({@link PackedWeights#widenF16}) needs about
 * twelve, and with eight of those inlined into one loop C2 stopped inlining and the loop ran an order of
 * magnitude slower, so other F16 matrices go through {@link Gemm}'s small blocks and the JDK's hardware
 * half-to-float conversion. Written out once per type rather than dispatched per load, so each loop is
 * straight SIMD code; the copies come from one template (the same body with a different load) and must be
 * edited alike, except the even/odd kernels ({@link #oneRowFourStreamsEvenOdd}, {@link #eightRowsEvenOdd}), whose
 * accumulators hold even and odd rows and which serve F16 and BF16 with one loop body each.
 *
 * <p>Every load and widening is spelled out in the loop, from Vector API methods only (the JDK marks them
 * force-inline), never through a helper of ours: C2 inlines a helper only while its graph stays under a node
 * budget, and one that is not inlined returns its vector as a heap object, allocated per call. With a
 * {@code bf16(seg, off)} helper at the eight loads, about one JVM run in 15 compiled the BF16 kernel with one
 * call left out ({@code -XX:+PrintInlining}: "NodeCountInliningCutoff"), and that run's decoding allocated
 * 934 MB per step against 0.9 and read the weights at 22 GB/s against 48-54 (2026-12-07, docs/PERFORMANCE.md).
 */
final class StreamingKernels {

    static final VectorSpecies<Float> S = PackedWeights.S;
    static final int L = PackedWeights.L;
    static final int NR = PackedWeights.NR;
    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class, VectorShape.forBitSize(L * 16));
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class, S.vectorShape());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private StreamingKernels() {
    }

    /**
     * Whether the F16 and BF16 one-row kernels should take two reduction steps per iteration, reading two cache lines
     * of each of their four streams at once: on Intel cores. On the 2-core Sapphire Rapids-class VM, Pythia-1.4B-shaped
     * decoding products read 0.89 of the streaming probe that way against 0.84-0.85 one step at a time, and one
     * thread 0.94-0.95 against 0.90 (2026-12-07); on the 2-core AMD Zen VM the two-step loop read 0.81 against 0.85
     * from memory, though faster from cache (docs/PERFORMANCE.md, issue 16). The BF16 kernel, already two loads per
     * stream and step, gained nothing from two steps on Intel as it was, but did read as one int vector per stream
     * and step ({@link #oneRowFourStreamsEvenOdd}).
     */
    static final boolean TWO_STEPS = "GenuineIntel".equals(cpuVendor());

    /** The first {@code vendor_id} of /proc/cpuinfo, or "" where there is none (not Linux on x86). */
    private static String cpuVendor() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst().orElse("");
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /**
     * A finite IEEE half to float, exactly (the same bits as {@link Float#float16ToFloat}; wrong for infinities
     * and NaNs, which callers rule out). The sign-extended half shifted left by 13 has its exponent and
     * mantissa in a float's low exponent bits and mantissa, and copies of the sign in bits 28–31; clearing
     * bits 28–30 leaves the sign in place, and the product by 2^112 rebiases the exponent (15 to 127). That
     * product is exact: a normal half becomes a normal float times a power of two, a subnormal half (a float
     * subnormal here) m·2^-24 exactly, and zeros stay signed zeros.
     */
    static FloatVector f16(MemorySegment seg, long off) {
        IntVector v = (IntVector) ShortVector.fromMemorySegment(SS, seg, off, LE).convertShape(VectorOperators.S2I, IS, 0);
        return v.lanewise(VectorOperators.LSHL, 13).and(F16_SIGN_EXP_MANT).reinterpretAsFloats().mul(F16_REBIAS);
    }

    /** Sign, exponent and mantissa bits of a half shifted into float position (bits 28–30 cleared). */
    private static final int F16_SIGN_EXP_MANT = 0x8fffffff;
    /** 2^(127−15): a half's exponent bias to a float's. */
    static final float F16_REBIAS = 0x1p112f;

    /**
     * One row x[xOff ..] against four full panels, over all k: panel g's packed strip starts at off + g·streamBytes
     * and its NR outputs go to c[cOff + g·cStride ..], starting from init[initOff + g·initStride ..] (bias or
     * zeros). Eight independent chains hide the FMA latency. The caller picks panels a quarter of its range apart
     * ({@link Gemm}), so the four streams each run on through consecutive panels call after call, which is what
     * the hardware prefetchers need to keep up with the memory. twoSteps: F16 and BF16 take two reduction steps
     * per iteration ({@link #TWO_STEPS}); F32 ignores it.
     */
    static void oneRowFourStreams(DType dt, MemorySegment seg, long off, long streamBytes, float[] x, int xOff, int k,
                                  float[] c, int cOff, int cStride, float[] init, int initOff, int initStride, boolean twoSteps,
                                  float[] sums) {
        switch (dt) {
            case F32 -> oneRowFourStreamsF32(seg, off, streamBytes, x, xOff, k, c, cOff, cStride, init, initOff, initStride);
            case BF16 -> {
                if (twoSteps) {
                    oneRowFourStreamsEvenOdd(true, seg, off, streamBytes, x, xOff, k, c, cOff, cStride, init, initOff, initStride,
                            true, sums);
                } else {
                    oneRowFourStreamsBF16(seg, off, streamBytes, x, xOff, k, c, cOff, cStride, init, initOff, initStride);
                }
            }
            case F16 -> oneRowFourStreamsEvenOdd(false, seg, off, streamBytes, x, xOff, k, c, cOff, cStride, init, initOff, initStride,
                    twoSteps, sums);
            default -> throw new IllegalStateException(dt.name());
        }
    }

    /**
     * Four rows (a[aOff + kk·4 + i], i &lt; 4, zero-padded) against one panel over all k, into
     * c[cOff + i·ldc + j], starting from init[0 .. NR).
     */
    static void fourRowsOnePanel(DType dt, MemorySegment seg, long off, float[] a, int aOff, int k, float[] c, int cOff,
                                 int ldc, float[] init) {
        switch (dt) {
            case F32 -> fourRowsOnePanelF32(seg, off, a, aOff, k, c, cOff, ldc, init);
            case BF16 -> fourRowsOnePanelBF16(seg, off, a, aOff, k, c, cOff, ldc, init);
            case F16 -> fourRowsOnePanelF16(seg, off, a, aOff, k, c, cOff, ldc, init);
            default -> throw new IllegalStateException(dt.name());
        }
    }

    private static void oneRowFourStreamsF32(MemorySegment seg, long off, long streamBytes, float[] x, int xOff, int k,
                                             float[] c, int cOff, int cStride, float[] init, int initOff, int initStride) {
        FloatVector c00 = FloatVector.fromArray(S, init, initOff), c01 = FloatVector.fromArray(S, init, initOff + L);
        FloatVector c10 = FloatVector.fromArray(S, init, initOff + initStride), c11 = FloatVector.fromArray(S, init, initOff + initStride + L);
        FloatVector c20 = FloatVector.fromArray(S, init, initOff + 2 * initStride), c21 = FloatVector.fromArray(S, init, initOff + 2 * initStride + L);
        FloatVector c30 = FloatVector.fromArray(S, init, initOff + 3 * initStride), c31 = FloatVector.fromArray(S, init, initOff + 3 * initStride + L);
        long o0 = off, o1 = off + streamBytes, o2 = off + 2 * streamBytes, o3 = off + 3 * streamBytes;
        for (int kk = 0; kk < k; kk++, o0 += 4L * NR, o1 += 4L * NR, o2 += 4L * NR, o3 += 4L * NR) {
            FloatVector xb = FloatVector.broadcast(S, x[xOff + kk]);
            c00 = xb.fma(FloatVector.fromMemorySegment(S, seg, o0, LE), c00);
            c01 = xb.fma(FloatVector.fromMemorySegment(S, seg, o0 + 4L * L, LE), c01);
            c10 = xb.fma(FloatVector.fromMemorySegment(S, seg, o1, LE), c10);
            c11 = xb.fma(FloatVector.fromMemorySegment(S, seg, o1 + 4L * L, LE), c11);
            c20 = xb.fma(FloatVector.fromMemorySegment(S, seg, o2, LE), c20);
            c21 = xb.fma(FloatVector.fromMemorySegment(S, seg, o2 + 4L * L, LE), c21);
            c30 = xb.fma(FloatVector.fromMemorySegment(S, seg, o3, LE), c30);
            c31 = xb.fma(FloatVector.fromMemorySegment(S, seg, o3 + 4L * L, LE), c31);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + cStride);
        c11.intoArray(c, cOff + cStride + L);
        c20.intoArray(c, cOff + 2 * cStride);
        c21.intoArray(c, cOff + 2 * cStride + L);
        c30.intoArray(c, cOff + 3 * cStride);
        c31.intoArray(c, cOff + 3 * cStride + L);
    }

    private static void fourRowsOnePanelF32(MemorySegment seg, long off, float[] a, int aOff, int k, float[] c, int cOff,
                                            int ldc, float[] init) {
        FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
        FloatVector c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
        long o = off;
        for (int kk = 0, ai = aOff; kk < k; kk++, ai += 4, o += 4L * NR) {
            FloatVector w0 = FloatVector.fromMemorySegment(S, seg, o, LE), w1 = FloatVector.fromMemorySegment(S, seg, o + 4L * L, LE);
            FloatVector xb;
            xb = FloatVector.broadcast(S, a[ai]); c00 = xb.fma(w0, c00); c01 = xb.fma(w1, c01);
            xb = FloatVector.broadcast(S, a[ai + 1]); c10 = xb.fma(w0, c10); c11 = xb.fma(w1, c11);
            xb = FloatVector.broadcast(S, a[ai + 2]); c20 = xb.fma(w0, c20); c21 = xb.fma(w1, c21);
            xb = FloatVector.broadcast(S, a[ai + 3]); c30 = xb.fma(w0, c30); c31 = xb.fma(w1, c31);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);
    }

    private static void oneRowFourStreamsBF16(MemorySegment seg, long off, long streamBytes, float[] x, int xOff, int k,
                                             float[] c, int cOff, int cStride, float[] init, int initOff, int initStride) {
        FloatVector c00 = FloatVector.fromArray(S, init, initOff), c01 = FloatVector.fromArray(S, init, initOff + L);
        FloatVector c10 = FloatVector.fromArray(S, init, initOff + initStride), c11 = FloatVector.fromArray(S, init, initOff + initStride + L);
        FloatVector c20 = FloatVector.fromArray(S, init, initOff + 2 * initStride), c21 = FloatVector.fromArray(S, init, initOff + 2 * initStride + L);
        FloatVector c30 = FloatVector.fromArray(S, init, initOff + 3 * initStride), c31 = FloatVector.fromArray(S, init, initOff + 3 * initStride + L);
        long o0 = off, o1 = off + streamBytes, o2 = off + 2 * streamBytes, o3 = off + 3 * streamBytes;
        for (int kk = 0; kk < k; kk++, o0 += 2L * NR, o1 += 2L * NR, o2 += 2L * NR, o3 += 2L * NR) {
            FloatVector xb = FloatVector.broadcast(S, x[xOff + kk]);
            c00 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o0, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c00);
            c01 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o0 + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c01);
            c10 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o1, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c10);
            c11 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o1 + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c11);
            c20 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o2, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c20);
            c21 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o2 + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c21);
            c30 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o3, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c30);
            c31 = xb.fma(((IntVector) ShortVector.fromMemorySegment(SS, seg, o3 + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c31);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + cStride);
        c11.intoArray(c, cOff + cStride + L);
        c20.intoArray(c, cOff + 2 * cStride);
        c21.intoArray(c, cOff + 2 * cStride + L);
        c30.intoArray(c, cOff + 3 * cStride);
        c31.intoArray(c, cOff + 3 * cStride + L);
    }

    private static void fourRowsOnePanelBF16(MemorySegment seg, long off, float[] a, int aOff, int k, float[] c, int cOff,
                                            int ldc, float[] init) {
        FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
        FloatVector c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
        long o = off;
        for (int kk = 0, ai = aOff; kk < k; kk++, ai += 4, o += 2L * NR) {
            FloatVector w0 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), w1 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            FloatVector xb;
            xb = FloatVector.broadcast(S, a[ai]); c00 = xb.fma(w0, c00); c01 = xb.fma(w1, c01);
            xb = FloatVector.broadcast(S, a[ai + 1]); c10 = xb.fma(w0, c10); c11 = xb.fma(w1, c11);
            xb = FloatVector.broadcast(S, a[ai + 2]); c20 = xb.fma(w0, c20); c21 = xb.fma(w1, c21);
            xb = FloatVector.broadcast(S, a[ai + 3]); c30 = xb.fma(w0, c30); c31 = xb.fma(w1, c31);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);
    }

    // The F16 kernels take activations pre-scaled by 2^(112-s) (s: PackedWeights.halfShift, the power of two the
    // halves are stored times, 10 for all weights below 64; Gemm scales only when every |x| < 2^(16+s), so the
    // scaling is exact and finite) and multiply them by the stored halves as f16 leaves them before its final
    // product, w·2^(s-112) exactly, a normal float for every finite weight when s = 10: x·2^(112-s) · w·2^(s-112)
    // is the same exact product inside the FMA, so the bits equal an FMA of x and w, with one operation per
    // weight vector fewer. Each load spells the conversion out (class
    // comment): as a call, C2 refused to inline it after a few in every run and the loop ran at a fifth of the
    // BF16 one's speed.
    //
    // A panel's step k holds its NR = 2L rows' halves side by side, so one int lane holds rows 2i (low half) and
    // 2i + 1 (high half). Read as ints, the odd rows widen in two operations (an arithmetic shift right by 3
    // puts sign, exponent and mantissa in float position, with the sign copied into bits 28–30; the mask
    // clears those and the even row's bits below) and the even rows in three (a shift left by 16 first), where
    // sign-extending each half to an int took three for every row. The accumulators hold even and odd rows,
    // split from init and merged into c once per call; every row's chain is the same FMA sequence, so the
    // bits are. A strip held in L2 read 48.8–50.9 GB/s this way against 39.5–45.3 (one thread, 2026-12-07).
    private static final int F16_HIGH_HALF = 0x8fffe000;
    /** A bfloat16 in an int lane's high half is already a float's top half: the mask clears the low one. */
    private static final int BF16_HIGH_HALF = 0xffff0000;
    /** Lane indexes into two vectors (0 .. 2L−1): the even and odd rows of a panel, and back to row order. */
    private static final FloatVector EVEN = indexes(0), ODD = indexes(1), LOW = merge(0), HIGH = merge(L / 2);

    private static FloatVector indexes(int first) {
        float[] r = new float[L];
        for (int i = 0; i < L; i++) r[i] = 2 * i + first;
        return FloatVector.fromArray(S, r, 0);
    }

    /** Rows [2·from, 2·from + L) from the even rows' vector (indexes 0 ..) and the odd rows' (L ..). */
    private static FloatVector merge(int from) {
        float[] r = new float[L];
        for (int i = 0; i < L; i++) r[i] = i % 2 == 0 ? from + i / 2 : L + from + i / 2;
        return FloatVector.fromArray(S, r, 0);
    }

    /**
     * The one-row kernel for finite F16 (activations pre-scaled as above) and, on machines that take two steps
     * at a time ({@link #TWO_STEPS}), for BF16: each stream's step is read as one int vector, whose lanes hold
     * an even row (low half) and an odd row (high half), and the accumulators hold even and odd rows. A BF16 row
     * widens in one operation (the even row shifted left by 16, the odd row masked), where the plain BF16 kernel's
     * sign-extending load and shift take two; on the Intel VM its decoding products read 0.82-0.84 of the probe
     * against 0.80 that way (three alternating pairs of runs, 2026-12-07), but one step at a time less than the
     * plain kernel, so BF16 comes here only with twoSteps. One loop body for both types, as in
     * {@link #eightRowsEvenOdd}: C2 unswitches it on the invariant type test. Like that kernel's, the loops are
     * methods of their own on the sums in {@link #evenOddSums}' order (sums: the participant's scratch), which
     * keeps each small enough for C1: with both loops in one method (1997 bytes), C1's tier-3 compilation for
     * on-stack replacement ran out of virtual registers, the failure that left {@link #eightRowsEvenOdd} at tier 2
     * for good.
     */
    private static void oneRowFourStreamsEvenOdd(boolean bf16, MemorySegment seg, long off, long streamBytes, float[] x, int xOff,
                                                 int k, float[] c, int cOff, int cStride, float[] init, int initOff,
                                                 int initStride, boolean twoSteps, float[] sums) {
        evenOddSums(init, initOff, initStride, 4, sums);
        int done = twoSteps ? k & ~1 : 0;
        if (done > 0) oneRowFourStreamsEvenOddTwoSteps(bf16, seg, off, streamBytes, x, xOff, done, sums);
        // one step at a time (AMD's F16), or the odd last step: the same chains, so the same bits
        if (done < k) {
            oneRowFourStreamsEvenOddOneStep(bf16, seg, off + 2L * NR * done, streamBytes, x, xOff + done, k - done, sums);
        }
        columnOrderSums(sums, 4, c, cOff, cStride);
    }

    /** {@link #oneRowFourStreamsEvenOdd}'s loop two steps per iteration, over an even k. */
    private static void oneRowFourStreamsEvenOddTwoSteps(boolean bf16, MemorySegment seg, long off, long streamBytes, float[] x,
                                                         int xOff, int k, float[] sums) {
        FloatVector c0e = FloatVector.fromArray(S, sums, 0), c0o = FloatVector.fromArray(S, sums, L);
        FloatVector c1e = FloatVector.fromArray(S, sums, 2 * L), c1o = FloatVector.fromArray(S, sums, 3 * L);
        FloatVector c2e = FloatVector.fromArray(S, sums, 4 * L), c2o = FloatVector.fromArray(S, sums, 5 * L);
        FloatVector c3e = FloatVector.fromArray(S, sums, 6 * L), c3o = FloatVector.fromArray(S, sums, 7 * L);
        long o0 = off, o1 = off + streamBytes, o2 = off + 2 * streamBytes, o3 = off + 3 * streamBytes;
        int kk = 0;
        FloatVector e0, e1, e2, e3, o0v, o1v, o2v, o3v;
        // two steps per iteration: two cache lines of each stream at once (see TWO_STEPS)
        for (; kk + 1 < k; kk += 2, o0 += 4L * NR, o1 += 4L * NR, o2 += 4L * NR, o3 += 4L * NR) {
            FloatVector xb = FloatVector.broadcast(S, x[xOff + kk]);
            IntVector v0 = IntVector.fromMemorySegment(IS, seg, o0, LE), v1 = IntVector.fromMemorySegment(IS, seg, o1, LE);
            IntVector v2 = IntVector.fromMemorySegment(IS, seg, o2, LE), v3 = IntVector.fromMemorySegment(IS, seg, o3, LE);
            if (bf16) {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o0v = v0.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o1v = v1.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o2v = v2.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o3v = v3.and(BF16_HIGH_HALF).reinterpretAsFloats();
            } else {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o0v = v0.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o1v = v1.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o2v = v2.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o3v = v3.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            }
            c0e = xb.fma(e0, c0e);
            c0o = xb.fma(o0v, c0o);
            c1e = xb.fma(e1, c1e);
            c1o = xb.fma(o1v, c1o);
            c2e = xb.fma(e2, c2e);
            c2o = xb.fma(o2v, c2o);
            c3e = xb.fma(e3, c3e);
            c3o = xb.fma(o3v, c3o);
            xb = FloatVector.broadcast(S, x[xOff + kk + 1]);
            v0 = IntVector.fromMemorySegment(IS, seg, o0 + 2L * NR, LE);
            v1 = IntVector.fromMemorySegment(IS, seg, o1 + 2L * NR, LE);
            v2 = IntVector.fromMemorySegment(IS, seg, o2 + 2L * NR, LE);
            v3 = IntVector.fromMemorySegment(IS, seg, o3 + 2L * NR, LE);
            if (bf16) {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o0v = v0.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o1v = v1.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o2v = v2.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o3v = v3.and(BF16_HIGH_HALF).reinterpretAsFloats();
            } else {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o0v = v0.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o1v = v1.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o2v = v2.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o3v = v3.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            }
            c0e = xb.fma(e0, c0e);
            c0o = xb.fma(o0v, c0o);
            c1e = xb.fma(e1, c1e);
            c1o = xb.fma(o1v, c1o);
            c2e = xb.fma(e2, c2e);
            c2o = xb.fma(o2v, c2o);
            c3e = xb.fma(e3, c3e);
            c3o = xb.fma(o3v, c3o);
        }
        c0e.intoArray(sums, 0); c0o.intoArray(sums, L); c1e.intoArray(sums, 2 * L); c1o.intoArray(sums, 3 * L);
        c2e.intoArray(sums, 4 * L); c2o.intoArray(sums, 5 * L); c3e.intoArray(sums, 6 * L); c3o.intoArray(sums, 7 * L);
    }

    /** {@link #oneRowFourStreamsEvenOdd}'s loop one step per iteration. */
    private static void oneRowFourStreamsEvenOddOneStep(boolean bf16, MemorySegment seg, long off, long streamBytes, float[] x,
                                                        int xOff, int k, float[] sums) {
        FloatVector c0e = FloatVector.fromArray(S, sums, 0), c0o = FloatVector.fromArray(S, sums, L);
        FloatVector c1e = FloatVector.fromArray(S, sums, 2 * L), c1o = FloatVector.fromArray(S, sums, 3 * L);
        FloatVector c2e = FloatVector.fromArray(S, sums, 4 * L), c2o = FloatVector.fromArray(S, sums, 5 * L);
        FloatVector c3e = FloatVector.fromArray(S, sums, 6 * L), c3o = FloatVector.fromArray(S, sums, 7 * L);
        long o0 = off, o1 = off + streamBytes, o2 = off + 2 * streamBytes, o3 = off + 3 * streamBytes;
        int kk = 0;
        FloatVector e0, e1, e2, e3, o0v, o1v, o2v, o3v;
        for (; kk < k; kk++, o0 += 2L * NR, o1 += 2L * NR, o2 += 2L * NR, o3 += 2L * NR) {
            FloatVector xb = FloatVector.broadcast(S, x[xOff + kk]);
            IntVector v0 = IntVector.fromMemorySegment(IS, seg, o0, LE), v1 = IntVector.fromMemorySegment(IS, seg, o1, LE);
            IntVector v2 = IntVector.fromMemorySegment(IS, seg, o2, LE), v3 = IntVector.fromMemorySegment(IS, seg, o3, LE);
            if (bf16) {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o0v = v0.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o1v = v1.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o2v = v2.and(BF16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                o3v = v3.and(BF16_HIGH_HALF).reinterpretAsFloats();
            } else {
                e0 = v0.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o0v = v0.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e1 = v1.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o1v = v1.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e2 = v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o2v = v2.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                e3 = v3.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                o3v = v3.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            }
            c0e = xb.fma(e0, c0e);
            c0o = xb.fma(o0v, c0o);
            c1e = xb.fma(e1, c1e);
            c1o = xb.fma(o1v, c1o);
            c2e = xb.fma(e2, c2e);
            c2o = xb.fma(o2v, c2o);
            c3e = xb.fma(e3, c3e);
            c3o = xb.fma(o3v, c3o);
        }
        c0e.intoArray(sums, 0); c0o.intoArray(sums, L); c1e.intoArray(sums, 2 * L); c1o.intoArray(sums, 3 * L);
        c2e.intoArray(sums, 4 * L); c2o.intoArray(sums, 5 * L); c3e.intoArray(sums, 6 * L); c3o.intoArray(sums, 7 * L);
    }

    private static void fourRowsOnePanelF16(MemorySegment seg, long off, float[] a, int aOff, int k, float[] c, int cOff,
                                            int ldc, float[] init) {
        FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
        FloatVector c00 = b0, c01 = b1, c10 = b0, c11 = b1, c20 = b0, c21 = b1, c30 = b0, c31 = b1;
        long o = off;
        for (int kk = 0, ai = aOff; kk < k; kk++, ai += 4, o += 2L * NR) {
            FloatVector w0 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_SIGN_EXP_MANT).reinterpretAsFloats(), w1 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o + 2L * L, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, 13).and(F16_SIGN_EXP_MANT).reinterpretAsFloats();
            FloatVector xb;
            xb = FloatVector.broadcast(S, a[ai]); c00 = xb.fma(w0, c00); c01 = xb.fma(w1, c01);
            xb = FloatVector.broadcast(S, a[ai + 1]); c10 = xb.fma(w0, c10); c11 = xb.fma(w1, c11);
            xb = FloatVector.broadcast(S, a[ai + 2]); c20 = xb.fma(w0, c20); c21 = xb.fma(w1, c21);
            xb = FloatVector.broadcast(S, a[ai + 3]); c30 = xb.fma(w0, c30); c31 = xb.fma(w1, c31);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);
    }

    /**
     * Eight rows (a[aOff + kk·8 + i], i &lt; 8: the tiled path's packed activations) against one panel's steps
     * [0, kc) read in place from off, into c[cOff + i·ldc + j], starting from init[0 .. NR) or, when init is null,
     * from c (a later K block). F16 must be finite halves against activations pre-scaled by
     * {@link PackedWeights#halfActivationScale} (the conversion of {@link #f16} without its product by
     * {@link #F16_REBIAS}). The weights are widened in registers: at 8 rows a step's 16 FMAs keep the two FMA
     * pipes busy for 8 cycles, and the six widening operations fit beside them on the other vector pipes, where a
     * widened copy in memory would cost a store and four reloads per vector.
     */
    static void eightRowsOnePanel(DType dt, MemorySegment seg, long off, float[] a, int aOff, int kc, float[] c, int cOff,
                                  int ldc, float[] init) {
        if (dt != DType.F32 && dt != DType.BF16 && dt != DType.F16) throw new IllegalStateException(dt.name());
        // One loop for the three types: the 16-bit ones differ only in a loop-invariant shift and mask (a
        // bfloat16 is a float's top half, shifted 16 and masked with nothing), and C2 unswitches the loop on
        // the invariant F32 test, so each type runs its own branch-free copy (JMH at M = 32 against three
        // separate methods, two runs each: F16 +4%, BF16 -2%, F32 -5%, inside the runs' ±5% noise).
        boolean f32 = dt == DType.F32;
        int shift = dt == DType.BF16 ? 16 : 13, mask = dt == DType.BF16 ? -1 : F16_SIGN_EXP_MANT;
        long step = (long) dt.bytes() * NR, half = (long) dt.bytes() * L;
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (init != null) {
            FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
            c00 = b0; c01 = b1; c10 = b0; c11 = b1; c20 = b0; c21 = b1; c30 = b0; c31 = b1;
            c40 = b0; c41 = b1; c50 = b0; c51 = b1; c60 = b0; c61 = b1; c70 = b0; c71 = b1;
        } else {
            c00 = FloatVector.fromArray(S, c, cOff); c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc); c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
            c60 = FloatVector.fromArray(S, c, cOff + 6 * ldc); c61 = FloatVector.fromArray(S, c, cOff + 6 * ldc + L);
            c70 = FloatVector.fromArray(S, c, cOff + 7 * ldc); c71 = FloatVector.fromArray(S, c, cOff + 7 * ldc + L);
        }
        long o = off;
        for (int kk = 0, ai = aOff; kk < kc; kk++, ai += 8, o += step) {
            FloatVector w0, w1;
            if (f32) {
                w0 = FloatVector.fromMemorySegment(S, seg, o, LE);
                w1 = FloatVector.fromMemorySegment(S, seg, o + half, LE);
            } else {
                w0 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, shift).and(mask).reinterpretAsFloats();
                w1 = ((IntVector) ShortVector.fromMemorySegment(SS, seg, o + half, LE).convertShape(VectorOperators.S2I, IS, 0)).lanewise(VectorOperators.LSHL, shift).and(mask).reinterpretAsFloats();
            }
            FloatVector xb;
            xb = FloatVector.broadcast(S, a[ai]); c00 = xb.fma(w0, c00); c01 = xb.fma(w1, c01);
            xb = FloatVector.broadcast(S, a[ai + 1]); c10 = xb.fma(w0, c10); c11 = xb.fma(w1, c11);
            xb = FloatVector.broadcast(S, a[ai + 2]); c20 = xb.fma(w0, c20); c21 = xb.fma(w1, c21);
            xb = FloatVector.broadcast(S, a[ai + 3]); c30 = xb.fma(w0, c30); c31 = xb.fma(w1, c31);
            xb = FloatVector.broadcast(S, a[ai + 4]); c40 = xb.fma(w0, c40); c41 = xb.fma(w1, c41);
            xb = FloatVector.broadcast(S, a[ai + 5]); c50 = xb.fma(w0, c50); c51 = xb.fma(w1, c51);
            xb = FloatVector.broadcast(S, a[ai + 6]); c60 = xb.fma(w0, c60); c61 = xb.fma(w1, c61);
            xb = FloatVector.broadcast(S, a[ai + 7]); c70 = xb.fma(w0, c70); c71 = xb.fma(w1, c71);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + L);
        c60.intoArray(c, cOff + 6 * ldc); c61.intoArray(c, cOff + 6 * ldc + L);
        c70.intoArray(c, cOff + 7 * ldc); c71.intoArray(c, cOff + 7 * ldc + L);
    }

    /**
     * Whether 8-row tiles of 16-bit weights (batched decode) run {@link #eightRowsEvenOdd}: on Intel cores, like
     * {@link #TWO_STEPS}. There the vector shifts, masks and sign extensions that widen the weights issue on the
     * same two ports as the FMAs, so {@link #eightRowsOnePanel}'s six widening operations per step cost nearly
     * as much as six FMAs; on AMD's Zen cores they have pipes of their own, and that kernel reached 60-72% of
     * the FMA peak at batch 32 (docs/PERFORMANCE.md).
     */
    static final boolean EVEN_ODD_TILES = TWO_STEPS;

    /**
     * {@link #eightRowsOnePanel} for BF16, or finite F16 against activations pre-scaled as there, reading each
     * step as one int vector like the one-row kernels (two operations widen BF16's 32 weights, five F16's, against
     * six), the accumulators holding even and odd rows. Each output is the same FMA chain, so the bits are the
     * same.
     *
     * <p>It also touches the next strip the caller will read: one byte per step from touch + kk·touchStride
     * (stride 0: one byte, again and again), summed into the returned value, which the caller must keep. A
     * strip's first pass is the only one from memory (the other row tiles find it in L2), and it ran at the
     * FMAs' pace from one stream, so the memory sat idle while later tiles computed and the FMAs waited during
     * first passes. A touch is a plain load, Java having no prefetch instruction: spread over the previous
     * strip's tiles (a quarter of the strip per tile at 4 tiles), each line arrives while other tiles compute.
     * Batch 32, all 97 Pythia-1.4B-shaped products from memory, 2 threads, Intel VM (2026-12-08), fraction of
     * the FMA peak: {@link #eightRowsOnePanel} 0.37-0.39 for F16 and BF16; with the touches 0.44 and 0.43-0.45;
     * this kernel (both) 0.46-0.47 and 0.49-0.53. Touching the whole next strip during the first tile, or 16
     * lines in a burst every 64 steps, read less than spreading the touches evenly.
     *
     * <p>The work is split into small methods (the sums' permutes, the two-step loop, an odd last step) to keep
     * each small enough for C1. As one method of 2350 bytes, its tier-3 compilation for on-stack replacement
     * ran out of virtual registers ("COMPILE SKIPPED: out of virtual registers in linear scan"), and in a JVM
     * that had compiled it at tier 2 first (HotSpot does that while its C2 queue is long), it stayed at tier 2
     * and never reached C2: 1.2-1.9 GFLOP/s against 270-300, in 3 of 4 runs of the harness at 1024 × 1024,
     * M = 32 (2026-12-08, docs/PERFORMANCE.md). The loop now compiles on its own (1316 bytes); sums is the participant's scratch
     * for 8 rows of NR.
     */
    static int eightRowsEvenOdd(DType dt, MemorySegment seg, long off, float[] a, int aOff, int kc, float[] c, int cOff,
                                int ldc, float[] init, float[] sums, long touch, int touchStride) {
        if (dt != DType.BF16 && dt != DType.F16) throw new IllegalStateException(dt.name());
        boolean bf16 = dt == DType.BF16;
        int even = kc & ~1;
        if (init != null) evenOddSums(init, 0, 0, 8, sums);
        else evenOddSums(c, cOff, ldc, 8, sums);
        int touched = eightRowsEvenOddSteps(bf16, seg, off, a, aOff, even, sums, touch, touchStride);
        columnOrderSums(sums, 8, c, cOff, ldc);
        if (even < kc) {
            touched += eightRowsEvenOddLastStep(bf16, seg, off + 2L * NR * even, a, aOff + 8 * even, c, cOff, ldc,
                    touch + (long) touchStride * even);
        }
        return touched;
    }

    /**
     * The loop of {@link #eightRowsEvenOdd}, over an even number of steps, on the sums in {@link #evenOddSums}' order.
     * A method of its own, holding nothing but the loop's values: with the tile's c, offset and stride live
     * across it as well, C2 kept the loop counter on the stack and the products read about 15% slower.
     */
    private static int eightRowsEvenOddSteps(boolean bf16, MemorySegment seg, long off, float[] a, int aOff, int kc,
                                             float[] sums, long touch, int touchStride) {
        FloatVector c0e = FloatVector.fromArray(S, sums, 0), c0o = FloatVector.fromArray(S, sums, L);
        FloatVector c1e = FloatVector.fromArray(S, sums, 2 * L), c1o = FloatVector.fromArray(S, sums, 3 * L);
        FloatVector c2e = FloatVector.fromArray(S, sums, 4 * L), c2o = FloatVector.fromArray(S, sums, 5 * L);
        FloatVector c3e = FloatVector.fromArray(S, sums, 6 * L), c3o = FloatVector.fromArray(S, sums, 7 * L);
        FloatVector c4e = FloatVector.fromArray(S, sums, 8 * L), c4o = FloatVector.fromArray(S, sums, 9 * L);
        FloatVector c5e = FloatVector.fromArray(S, sums, 10 * L), c5o = FloatVector.fromArray(S, sums, 11 * L);
        FloatVector c6e = FloatVector.fromArray(S, sums, 12 * L), c6o = FloatVector.fromArray(S, sums, 13 * L);
        FloatVector c7e = FloatVector.fromArray(S, sums, 14 * L), c7o = FloatVector.fromArray(S, sums, 15 * L);
        int touched = 0;
        // One loop for both types: C2 unswitches it on the invariant type test, so each type runs a straight
        // copy with its widening spelled out (class comment). Two steps per iteration (one touch, twice the
        // stride; an odd last step is eightRowsEvenOddLastStep's): C2 did not unroll a one-step loop, and its
        // loop control and touch then took issue slots beside 16 FMAs (harness: 0.49-0.52 of the peak against
        // 0.47-0.48 for BF16, 0.47-0.48 against 0.44-0.45 for F16). Every index is a linear function of the
        // one counter i: C2 then proves the activations' and weights' indexes in bounds before the loop. With
        // separate running offsets it checked them in every iteration, kept the activation offset on the stack
        // and the touch sum in a vector register (two moves on the FMA ports per iteration); the kernel alone,
        // on a strip in L1, read 0.63-0.69 of one core's peak this way against 0.59-0.65 (2026-12-08).
        int pairs = kc >> 1;
        long touchStep = 2L * touchStride;
        for (int i = 0; i < pairs; i++) {
            int ai = aOff + 16 * i;
            long o = off + 4L * NR * i;
            touched += seg.get(ValueLayout.JAVA_BYTE, touch + touchStep * i);
            IntVector v = IntVector.fromMemorySegment(IS, seg, o, LE);
            FloatVector we, wo, xb;
            if (bf16) {
                we = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                wo = v.and(BF16_HIGH_HALF).reinterpretAsFloats();
            } else {
                we = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                wo = v.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            }
            xb = FloatVector.broadcast(S, a[ai]); c0e = xb.fma(we, c0e); c0o = xb.fma(wo, c0o);
            xb = FloatVector.broadcast(S, a[ai + 1]); c1e = xb.fma(we, c1e); c1o = xb.fma(wo, c1o);
            xb = FloatVector.broadcast(S, a[ai + 2]); c2e = xb.fma(we, c2e); c2o = xb.fma(wo, c2o);
            xb = FloatVector.broadcast(S, a[ai + 3]); c3e = xb.fma(we, c3e); c3o = xb.fma(wo, c3o);
            xb = FloatVector.broadcast(S, a[ai + 4]); c4e = xb.fma(we, c4e); c4o = xb.fma(wo, c4o);
            xb = FloatVector.broadcast(S, a[ai + 5]); c5e = xb.fma(we, c5e); c5o = xb.fma(wo, c5o);
            xb = FloatVector.broadcast(S, a[ai + 6]); c6e = xb.fma(we, c6e); c6o = xb.fma(wo, c6o);
            xb = FloatVector.broadcast(S, a[ai + 7]); c7e = xb.fma(we, c7e); c7o = xb.fma(wo, c7o);
            v = IntVector.fromMemorySegment(IS, seg, o + 2L * NR, LE);
            if (bf16) {
                we = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
                wo = v.and(BF16_HIGH_HALF).reinterpretAsFloats();
            } else {
                we = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
                wo = v.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            }
            xb = FloatVector.broadcast(S, a[ai + 8]); c0e = xb.fma(we, c0e); c0o = xb.fma(wo, c0o);
            xb = FloatVector.broadcast(S, a[ai + 9]); c1e = xb.fma(we, c1e); c1o = xb.fma(wo, c1o);
            xb = FloatVector.broadcast(S, a[ai + 10]); c2e = xb.fma(we, c2e); c2o = xb.fma(wo, c2o);
            xb = FloatVector.broadcast(S, a[ai + 11]); c3e = xb.fma(we, c3e); c3o = xb.fma(wo, c3o);
            xb = FloatVector.broadcast(S, a[ai + 12]); c4e = xb.fma(we, c4e); c4o = xb.fma(wo, c4o);
            xb = FloatVector.broadcast(S, a[ai + 13]); c5e = xb.fma(we, c5e); c5o = xb.fma(wo, c5o);
            xb = FloatVector.broadcast(S, a[ai + 14]); c6e = xb.fma(we, c6e); c6o = xb.fma(wo, c6o);
            xb = FloatVector.broadcast(S, a[ai + 15]); c7e = xb.fma(we, c7e); c7o = xb.fma(wo, c7o);
        }
        c0e.intoArray(sums, 0); c0o.intoArray(sums, L); c1e.intoArray(sums, 2 * L); c1o.intoArray(sums, 3 * L);
        c2e.intoArray(sums, 4 * L); c2o.intoArray(sums, 5 * L); c3e.intoArray(sums, 6 * L); c3o.intoArray(sums, 7 * L);
        c4e.intoArray(sums, 8 * L); c4o.intoArray(sums, 9 * L); c5e.intoArray(sums, 10 * L); c5o.intoArray(sums, 11 * L);
        c6e.intoArray(sums, 12 * L); c6o.intoArray(sums, 13 * L); c7e.intoArray(sums, 14 * L); c7o.intoArray(sums, 15 * L);
        return touched;
    }

    /**
     * Rows r &lt; rows of NR values at from[first + r·stride ..] (stride 0: one row for all) into sums, each row as
     * its even columns then its odd ones: the accumulators of the even/odd kernels ({@link #eightRowsEvenOdd},
     * {@link #oneRowFourStreamsEvenOdd}). The permutes live here and in {@link #columnOrderSums}, not in the
     * kernels' loop methods, to keep those small enough for C1 (see {@link #eightRowsEvenOdd}); they cost two
     * stores and two loads per row and call.
     */
    private static void evenOddSums(float[] from, int first, int stride, int rows, float[] sums) {
        for (int r = 0; r < rows; r++) {
            FloatVector i0 = FloatVector.fromArray(S, from, first + r * stride), i1 = FloatVector.fromArray(S, from, first + r * stride + L);
            EVEN.selectFrom(i0, i1).intoArray(sums, 2 * r * L);
            ODD.selectFrom(i0, i1).intoArray(sums, (2 * r + 1) * L);
        }
    }

    /** {@link #evenOddSums} undone: sums' rows back into column order at c[cOff + r·ldc ..]. */
    private static void columnOrderSums(float[] sums, int rows, float[] c, int cOff, int ldc) {
        for (int r = 0; r < rows; r++) {
            FloatVector e = FloatVector.fromArray(S, sums, 2 * r * L), o = FloatVector.fromArray(S, sums, (2 * r + 1) * L);
            LOW.selectFrom(e, o).intoArray(c, cOff + r * ldc);
            HIGH.selectFrom(e, o).intoArray(c, cOff + r * ldc + L);
        }
    }

    /**
     * The last step of {@link #eightRowsEvenOdd} when its block has an odd number of steps: one more FMA per
     * output, on top of the sums in c. The weights are put in column order here (two permutes) instead of the
     * sums in even/odd order (32): the same products and sums, so the same bits.
     */
    private static int eightRowsEvenOddLastStep(boolean bf16, MemorySegment seg, long off, float[] a, int ai, float[] c,
                                                int cOff, int ldc, long touch) {
        int touched = seg.get(ValueLayout.JAVA_BYTE, touch);
        IntVector v = IntVector.fromMemorySegment(IS, seg, off, LE);
        FloatVector we, wo;
        if (bf16) {
            we = v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            wo = v.and(BF16_HIGH_HALF).reinterpretAsFloats();
        } else {
            we = v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
            wo = v.lanewise(VectorOperators.ASHR, 3).and(F16_HIGH_HALF).reinterpretAsFloats();
        }
        FloatVector lo = LOW.selectFrom(we, wo), hi = HIGH.selectFrom(we, wo);
        for (int r = 0; r < 8; r++) {
            FloatVector xb = FloatVector.broadcast(S, a[ai + r]);
            int o = cOff + r * ldc;
            xb.fma(lo, FloatVector.fromArray(S, c, o)).intoArray(c, o);
            xb.fma(hi, FloatVector.fromArray(S, c, o + L)).intoArray(c, o + L);
        }
        return touched;
    }
}
