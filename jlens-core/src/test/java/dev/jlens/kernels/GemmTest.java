package dev.jlens.kernels;

import dev.jlens.io.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.function.IntUnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packed GEMM against its contract: every output is exactly the scalar chain
 * {@code acc = fma(x[i][k], w[j][k], acc)} from the bias, so the comparison is bitwise, for every shape
 * edge (partial panels, partial row tiles, K blocks), both M paths, all weight types and thread counts.
 */
class GemmTest {

    static final Backend ONE = Backend.cpu(1);
    static final Backend THREE = Backend.cpu(3);

    @AfterAll
    static void touch() {
        // keep the instances reachable until all tests ran
        assertEquals(1, ONE.threads());
        assertEquals(3, THREE.threads());
    }

    private static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static WeightMatrix randomWeights(Random r, DType dt, int n, int k) {
        MemorySegment seg = MemorySegment.ofArray(new byte[n * k * dt.bytes()]);
        for (long i = 0; i < (long) n * k; i++) {
            float v = (float) r.nextGaussian() * 0.5f;
            switch (dt) {
                case F32 -> seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i * 4, v);
                case F16 -> seg.set(LE_SHORT, i * 2, Float.floatToFloat16(v));
                case BF16 -> seg.set(LE_SHORT, i * 2,
                        (short) (Float.floatToRawIntBits(v) >>> 16));
                default -> throw new IllegalStateException();
            }
        }
        return WeightMatrix.of("w", dt, seg, n, k);
    }

    static float[] reference(float[] x, int m, WeightMatrix w, float[] bias) {
        int n = w.rows(), k = w.cols();
        float[] out = new float[m * n];
        float[] row = new float[k];
        for (int j = 0; j < n; j++) {
            w.row(j, row);
            for (int i = 0; i < m; i++) {
                float acc = bias == null ? 0f : bias[j];
                for (int kk = 0; kk < k; kk++) acc = Math.fma(x[i * k + kk], row[kk], acc);
                out[i * n + j] = acc;
            }
        }
        return out;
    }

    static float[] randomArray(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    static void assertBitsEqual(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                throw new AssertionError(what + ": element " + i + " is " + got[i] + ", expected exactly " + want[i]);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void everyOutputIsTheScalarFmaChain(DType dt) {
        Random r = new Random(42 + dt.ordinal());
        int[] ms = {1, 2, 3, 4, 5, 7, 8, 12, 13, 25, 40};
        int[][] nk = {{1, 1}, {31, 7}, {32, 256}, {33, 257}, {100, 40}, {130, 600}, {64, 513}, {200, 3}, {40, 2100}};
        for (int[] shape : nk) {
            int n = shape[0], k = shape[1];
            WeightMatrix w = randomWeights(r, dt, n, k);
            float[] bias = randomArray(r, n);
            for (int m : ms) {
                float[] x = randomArray(r, m * k);
                for (float[] b : new float[][]{null, bias}) {
                    float[] want = reference(x, m, w, b);
                    float[] one = new float[m * n];
                    float[] three = new float[m * n];
                    ONE.matmul(h(x, m, w.cols()), w, b, h(one, m, w.rows()));
                    THREE.matmul(h(x, m, w.cols()), w, b, h(three, m, w.rows()));
                    String what = dt + " m=" + m + " n=" + n + " k=" + k + (b == null ? "" : " +bias");
                    assertBitsEqual(want, one, what + " (1 thread)");
                    assertBitsEqual(want, three, what + " (3 threads)");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void batchedGenerationTilesOfEightRowsGiveTheScalarChain(DType dt) {
        // 32..64 rows that 8-row tiles cover with less padding take an 8-row kernel (StreamingKernels.eightRowsOnePanel or
        // eightRowsEvenOdd); the others stay on 12-row tiles, and fewer than 32 stream
        assertEquals(Gemm.MR8, Gemm.rowTile(8));
        assertEquals(Gemm.MR8, Gemm.rowTile(32));
        assertEquals(Gemm.MR8, Gemm.rowTile(64));
        assertEquals(Gemm.MR, Gemm.rowTile(36));
        assertEquals(Gemm.MR, Gemm.rowTile(48));
        assertEquals(Gemm.MR, Gemm.rowTile(65));
        Random r = new Random(11 + dt.ordinal());
        int n = 2 * Gemm.NR + 5, k = 301;
        WeightMatrix w = randomWeights(r, dt, n, k);
        float[] bias = randomArray(r, n);
        WorkerPool pool = new WorkerPool(2);
        try {
            PackedWeights pw = PackedWeights.pack(w, pool);
            for (int m : new int[]{8, 9, 15, 16, 31, 32, 33, 40, 48, 56, 63, 64, 65}) {
                float[] x = randomArray(r, m * k);
                for (float[] b : new float[][]{null, bias}) {
                    float[] want = reference(x, m, w, b);
                    // both 8-row kernels on any machine (StreamingKernels.EVEN_ODD_TILES picks one); K blocks of
                    // 100 leave a last block of 1, whose strip the kernel must not touch past
                    for (int kBlock : new int[]{100, 1024}) {
                        for (boolean evenOdd : new boolean[]{false, true}) {
                            float[] out = new float[m * n];
                            Arrays.fill(out, Float.NaN);
                            new Gemm(pool, kBlock, StreamingKernels.TWO_STEPS, evenOdd).multiply(x, m, pw, b, out);
                            assertBitsEqual(want, out, dt + " m=" + m + " K block " + kBlock + (b == null ? "" : " +bias")
                                    + (evenOdd ? ", even/odd" : ""));
                        }
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void productsOfOneInputInOnePassGiveEachProductsOwnBits(DType dt) {
        // q, k, v of a grouped-query layer: unequal widths, a partial last panel, one product without bias
        Random r = new Random(23 + dt.ordinal());
        int k = 130;
        WeightMatrix[] ws = {randomWeights(r, dt, 3 * Gemm.NR, k), randomWeights(r, dt, Gemm.NR + 7, k), randomWeights(r, dt, 5, k)};
        float[][] biases = {randomArray(r, ws[0].rows()), null, randomArray(r, 5)};
        for (int m : new int[]{1, 3, 4, 17, Gemm.SMALL_M, 40, 77}) {
            float[] x = randomArray(r, m * k);
            for (Backend backend : new Backend[]{ONE, THREE}) {
                DeviceTensor[] outs = new DeviceTensor[ws.length];
                float[][] got = new float[ws.length][];
                for (int i = 0; i < ws.length; i++) {
                    got[i] = new float[m * ws[i].rows()];
                    outs[i] = h(got[i], m, ws[i].rows());
                }
                backend.matmuls(h(x, m, k), ws, biases, outs);
                for (int i = 0; i < ws.length; i++) {
                    assertBitsEqual(reference(x, m, ws[i], biases[i]), got[i],
                            dt + " product " + i + " m=" + m + " (" + backend.threads() + " threads)");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void aDecodingStepSweepsEachProductInLongStreamsWithTheScalarBits(DType dt) {
        // One row reads panels t, t + Q, t + 2Q, t + 3Q together (Q: a quarter of the whole panels), each
        // participant owning a range of t and taking others' from the back. Shapes with several sweeps per
        // quarter, panels left over (whole and partial), and too few panels for one sweep; 1, 2 and 3
        // participants; alone and as one pass over several products. Outputs start as NaN, so a sweep that
        // nobody computed shows.
        Random r = new Random(31 + dt.ordinal());
        int k = 37;
        int[] widths = {4 * Gemm.NR * 5 + Gemm.NR + 7, 4 * Gemm.NR * 7, 4 * Gemm.NR * 2 + 3 * Gemm.NR, 3 * Gemm.NR, 4 * Gemm.NR};
        WeightMatrix[] ws = new WeightMatrix[widths.length];
        float[][] biases = new float[widths.length][];
        for (int i = 0; i < widths.length; i++) {
            ws[i] = randomWeights(r, dt, widths[i], k);
            biases[i] = i % 2 == 0 ? randomArray(r, widths[i]) : null;
        }
        float[] x = randomArray(r, k);
        Backend two = Backend.cpu(2);
        for (Backend backend : new Backend[]{ONE, two, THREE}) {
            String on = " (" + backend.threads() + " threads)";
            for (int i = 0; i < ws.length; i++) {
                float[] got = new float[widths[i]];
                Arrays.fill(got, Float.NaN);
                backend.matmul(h(x, 1, k), ws[i], biases[i], h(got, 1, widths[i]));
                assertBitsEqual(reference(x, 1, ws[i], biases[i]), got, dt + " n=" + widths[i] + on);
            }
            DeviceTensor[] outs = new DeviceTensor[ws.length];
            float[][] got = new float[ws.length][];
            for (int i = 0; i < ws.length; i++) {
                got[i] = new float[widths[i]];
                Arrays.fill(got[i], Float.NaN);
                outs[i] = h(got[i], 1, widths[i]);
            }
            backend.matmuls(h(x, 1, k), ws, biases, outs);
            for (int i = 0; i < ws.length; i++) {
                assertBitsEqual(reference(x, 1, ws[i], biases[i]), got[i], dt + " product " + i + " of " + ws.length + on);
            }
        }
    }

    @Test
    void productsOfWeightsOfDifferentKindsFallBackToOneAtATime() {
        // a finite F16 matrix and one holding an infinity cannot share one scaled packing of the input
        Random r = new Random(24);
        int k = 301;
        WeightMatrix[] ws = {halves(r, 40, k, (short) 0, -1), halves(r, 40, k, (short) 0x7c00, 7), randomWeights(r, DType.BF16, 33, k)};
        float[][] biases = {null, randomArray(r, 40), null};
        for (int m : new int[]{1, 5, 40}) {
            float[] x = randomArray(r, m * k);
            float[][] got = {new float[m * 40], new float[m * 40], new float[m * 33]};
            THREE.matmuls(h(x, m, k), ws, biases, new DeviceTensor[]{h(got[0], m, 40), h(got[1], m, 40), h(got[2], m, 33)});
            for (int i = 0; i < ws.length; i++) assertBitsEqual(reference(x, m, ws[i], biases[i]), got[i], "product " + i + " m=" + m);
        }
        assertThrows(IllegalArgumentException.class, () -> THREE.matmuls(h(new float[k], 1, k), ws, new float[2][], new DeviceTensor[3]));
    }

    @Test
    void theKBlockSizeDoesNotChangeTheBits() {
        Random r = new Random(9);
        int n = 70, k = 333;
        WeightMatrix w = randomWeights(r, DType.BF16, n, k);
        float[] bias = randomArray(r, n);
        WorkerPool pool = new WorkerPool(2);
        try {
            PackedWeights pw = PackedWeights.pack(w, pool);
            for (int m : new int[]{1, 3, 6, 17}) {
                float[] x = randomArray(r, m * k);
                float[] want = reference(x, m, w, bias);
                for (int kBlock : new int[]{1, 16, 100, 333, 1024}) {
                    float[] out = new float[m * n];
                    new Gemm(pool, kBlock).multiply(x, m, pw, bias, out);
                    assertBitsEqual(want, out, "m=" + m + " K block " + kBlock);
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void aRowGetsTheSameBitsAloneAndInABatch() {
        Random r = new Random(7);
        int n = 96, k = 700;
        WeightMatrix w = randomWeights(r, DType.F16, n, k);
        int m = 29;
        float[] x = randomArray(r, m * k);
        float[] all = new float[m * n];
        THREE.matmul(h(x, m, w.cols()), w, null, h(all, m, w.rows()));
        for (int row : new int[]{0, 11, 28}) {
            float[] single = new float[n];
            THREE.matmul(h(java.util.Arrays.copyOfRange(x, row * k, row * k + k), 1, k), w, null, h(single, 1, n));
            assertBitsEqual(java.util.Arrays.copyOfRange(all, row * n, row * n + n), single, "row " + row);
        }
    }

    @Test
    void prepareInstallsThePackedCopyOnce() {
        WeightMatrix w = randomWeights(new Random(1), DType.BF16, 40, 50);
        assertFalse(w.isPacked());
        THREE.prepare(w);
        assertTrue(w.isPacked());
        float[] x = randomArray(new Random(2), 3 * 50);
        float[] out = new float[3 * 40];
        ONE.matmul(h(x, 3, w.cols()), w, null, h(out, 3, w.rows()));
        assertBitsEqual(reference(x, 3, w, null), out, "prepared by one instance, used by another");
    }

    @Test
    void theStreamingHalfConversionIsExactForEveryFiniteHalf() {
        MemorySegment seg = MemorySegment.ofArray(new short[65536]);
        for (int i = 0; i < 65536; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) i);
        float[] got = new float[65536];
        for (int i = 0; i < 65536; i += PackedWeights.L) StreamingKernels.f16(seg, 2L * i).intoArray(got, i);
        int checked = 0;
        for (int i = 0; i < 65536; i++) {
            if ((i & 0x7c00) == 0x7c00) continue; // infinities and NaNs: ruled out by PackedWeights.finiteHalves
            float want = Float.float16ToFloat((short) i);
            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[i]), "half " + Integer.toHexString(i));
            checked++;
        }
        assertEquals(65536 - 2 * 1024, checked);
    }

    /** An n × k F16 matrix whose i-th half (row-major) is the low 16 bits of half(i), called for i = 0, 1, … in order. */
    static WeightMatrix f16Weights(int n, int k, IntUnaryOperator half) {
        MemorySegment seg = MemorySegment.ofArray(new byte[n * k * 2]);
        for (int i = 0; i < n * k; i++) seg.set(LE_SHORT, i * 2L, (short) half.applyAsInt(i));
        return WeightMatrix.of("w", DType.F16, seg, n, k);
    }

    /** Halves drawn from every finite bit pattern (zeros, subnormals, up to ±65504), or with one special value. */
    static WeightMatrix halves(Random r, int n, int k, short special, int at) {
        return f16Weights(n, k, i -> {
            int h;
            do {
                h = r.nextInt(65536);
            } while ((h & 0x7c00) == 0x7c00);
            // a tenth of them subnormal or zero, far more than real weights have
            if (r.nextInt(10) == 0) h &= 0x83ff;
            return i == at ? special : h;
        });
    }

    @Test
    void finiteHalvesStreamAndMatrixWithInfinitiesFallBackWithTheSameBits() {
        Random r = new Random(16);
        WorkerPool pool = new WorkerPool(2);
        try {
            int n = 200, k = 301;
            WeightMatrix finite = halves(r, n, k, (short) 0, -1);
            WeightMatrix inf = halves(r, n, k, (short) 0x7c00, 77 * k + 5);
            WeightMatrix nan = halves(r, n, k, (short) 0xfe01, 3);
            assertTrue(PackedWeights.pack(finite, pool).finiteHalves());
            assertFalse(PackedWeights.pack(inf, pool).finiteHalves());
            assertFalse(PackedWeights.pack(nan, pool).finiteHalves());
            assertFalse(PackedWeights.pack(randomWeights(r, DType.BF16, 40, 50), pool).finiteHalves());
            float[] bias = randomArray(r, n);
            for (WeightMatrix w : new WeightMatrix[]{finite, inf}) {
                int[] ms = new int[Gemm.SMALL_M + 4];
                for (int i = 0; i < Gemm.SMALL_M - 1; i++) ms[i] = i + 1;
                // and the tiled paths: 8-row tiles read finite halves in place as w·2^-112 against activations packed
                // times 2^112, 12-row tiles (100 rows) widen every panel exactly
                System.arraycopy(new int[]{Gemm.SMALL_M, Gemm.SMALL_M + 1, 40, 64, 100}, 0, ms, Gemm.SMALL_M - 1, 5);
                for (int m : ms) {
                    // Activations are pre-scaled by 2^112 for streaming: the largest below 2^16 and a subnormal
                    // still stream, one of 2^16 or more sends the product down the L1-buffer (or exact widening) path.
                    for (float extreme : new float[]{0f, Math.nextDown(0x1p16f), -0x1p16f, 70000f}) {
                        float[] x = randomArray(r, m * k);
                        if (extreme != 0f) {
                            x[r.nextInt(m * k)] = extreme;
                            x[r.nextInt(m * k)] = 1e-40f;
                        }
                        float[] out = new float[m * n];
                        THREE.matmul(h(x, m, k), w, bias, h(out, m, n));
                        assertBitsEqual(reference(x, m, w, bias), out,
                                (w == inf ? "with an infinity" : "finite") + " m=" + m + " x up to " + extreme);
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    /**
     * Weights as real checkpoints hold them (|w| around 0.02), with many subnormal halves, exact and signed zeros,
     * and optionally one large weight at index at.
     */
    static WeightMatrix smallHalves(Random r, int n, int k, float large, int at) {
        return f16Weights(n, k, i -> {
            short h = Float.floatToFloat16((float) r.nextGaussian() * 0.02f);
            int pick = r.nextInt(20);
            if (pick == 0) h &= (short) 0x83ff; // subnormal (or zero)
            if (pick == 1) h = (short) (r.nextBoolean() ? 0 : 0x8000);
            if (i == at) h = Float.floatToFloat16(large);
            return h;
        });
    }

    @Test
    void subnormalHalvesAreStoredScaledToNormalOnesWithTheScalarBits() {
        Random r = new Random(61);
        WorkerPool pool = new WorkerPool(2);
        try {
            int n = 130, k = 301;
            // below 64 every half takes the full shift; 100 (exponent field 21) leaves 9, 65504 (field 30) none
            WeightMatrix typical = smallHalves(r, n, k, 0f, -1);
            WeightMatrix hundred = smallHalves(r, n, k, -100f, 17 * k + 3);
            WeightMatrix largest = smallHalves(r, n, k, 65504f, 5);
            PackedWeights p = PackedWeights.pack(typical, pool);
            assertEquals(PackedWeights.HALF_SHIFT, p.halfShift());
            assertTrue(p.finiteHalves());
            assertEquals(0x1p102f, p.halfActivationScale());
            assertEquals(9, PackedWeights.pack(hundred, pool).halfShift());
            assertEquals(0, PackedWeights.pack(largest, pool).halfShift());
            assertEquals(0, PackedWeights.pack(halves(r, 40, 50, (short) 0x7c00, 7), pool).halfShift());
            assertEquals(0, PackedWeights.pack(randomWeights(r, DType.BF16, 40, 50), pool).halfShift());
            assertFalse(p.sameKind(PackedWeights.pack(hundred, pool)));
            // the stored halves are the weights times 2^10, every one a normal half or a zero
            MemorySegment data = p.data();
            float[] row = new float[k];
            typical.row(0, row);
            for (int kk = 0; kk < k; kk++) {
                short stored = data.get(LE_SHORT, p.byteOffset(0, kk));
                assertEquals(row[kk] * 1024f, Float.float16ToFloat(stored), "step " + kk);
                assertTrue((stored & 0x7c00) != 0 || (stored & 0x3ff) == 0, "step " + kk + " is subnormal");
            }
            float[] bias = randomArray(r, n);
            for (WeightMatrix w : new WeightMatrix[]{typical, hundred, largest}) {
                for (int m : new int[]{1, 2, 3, 4, 5, 9, 31, 32, 40, 100}) {
                    // 2^26 is where x·2^102 would overflow: just below it streams, at it the L1-buffer path runs
                    for (float extreme : new float[]{0f, Math.nextDown(0x1p26f), -0x1p26f}) {
                        float[] x = randomArray(r, m * k);
                        if (extreme != 0f) {
                            x[r.nextInt(m * k)] = extreme;
                            x[r.nextInt(m * k)] = 1e-40f;
                        }
                        float[] want = reference(x, m, w, bias);
                        for (Backend b : new Backend[]{ONE, THREE}) {
                            float[] out = new float[m * n];
                            b.matmul(h(x, m, k), w, bias, h(out, m, n));
                            assertBitsEqual(want, out, "m=" + m + " x up to " + extreme + ", " + b.threads() + " threads, "
                                    + (w == typical ? "typical" : w == hundred ? "a weight of -100" : "a weight of 65504"));
                        }
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F16", "BF16"})
    void theOneRowKernelsGiveTheScalarBitsOneOrTwoStepsAtATime(DType dt) {
        // Each machine runs one of the two loops (StreamingKernels.TWO_STEPS); both are checked here, with odd k
        // (a last single step after the pairs) and sweeps that leave panels over.
        Random r = new Random(71 + dt.ordinal());
        WorkerPool pool = new WorkerPool(2);
        try {
            for (boolean twoSteps : new boolean[]{false, true}) {
                Gemm gemm = new Gemm(pool, Gemm.DEFAULT_KC, twoSteps);
                for (int k : new int[]{1, 2, 37, 64, 301}) {
                    for (int n : new int[]{4 * Gemm.NR * 3, 4 * Gemm.NR * 2 + Gemm.NR + 5}) {
                        WeightMatrix w = dt == DType.F16 ? smallHalves(r, n, k, 0f, -1) : randomWeights(r, dt, n, k);
                        float[] x = randomArray(r, k);
                        float[] bias = randomArray(r, n);
                        float[] out = new float[n];
                        Arrays.fill(out, Float.NaN);
                        gemm.multiply(x, 1, PackedWeights.pack(w, pool), bias, out);
                        assertBitsEqual(reference(x, 1, w, bias), out, dt + " k=" + k + " n=" + n + (twoSteps ? ", two steps" : ", one step"));
                    }
                }
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void halfWideningMatchesFloat16ToFloatForEveryValue() {
        MemorySegment seg = MemorySegment.ofArray(new short[65536]);
        for (int i = 0; i < 65536; i++) seg.setAtIndex(ValueLayout.JAVA_SHORT, i, (short) i);
        float[] f16 = new float[65536];
        float[] bf16 = new float[65536];
        PackedWeights.widenF16(seg, 0, f16, 65536, 0x1p112f);
        PackedWeights.widenBF16(seg, 0, bf16, 65536);
        for (int i = 0; i < 65536; i++) {
            float want = Float.float16ToFloat((short) i);
            if (Float.isNaN(want)) {
                assertTrue(Float.isNaN(f16[i]), "half " + Integer.toHexString(i) + " should widen to NaN");
            } else {
                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(f16[i]), "half " + Integer.toHexString(i));
            }
            assertEquals(i << 16, Float.floatToRawIntBits(bf16[i]), "bfloat16 " + Integer.toHexString(i));
        }
    }

    /** A heap array as a CPU backend tensor (the CPU backends share its memory). */
    static DeviceTensor h(float[] a, int rows, int cols) {
        return new HeapTensor(a, rows, cols);
    }
}
