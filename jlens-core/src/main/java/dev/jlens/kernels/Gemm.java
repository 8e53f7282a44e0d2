package dev.jlens.kernels;

import dev.jlens.io.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * out[m, n] = x[m, :] · W[n, :] + bias[n] on {@link PackedWeights}: a register-blocked outer-product GEMM.
 *
 * <p>Every output is one fused multiply-add chain over k = 0 .. K-1 in order, started from its bias (or
 * zero): the micro-kernels keep an MR × NR tile of those chains in registers, the K loop is cut into
 * blocks only so the widened weight strip stays in cache (a partial sum stored between blocks is an exact
 * float, so blocking does not change the chain), and each chunk of output panels is computed by one
 * participant. Hence the bits of every output are those of a scalar
 * {@code acc = Math.fma(x[i][k], w[j][k], acc)} loop, whatever the thread count, the batch size M, the
 * row's position in the batch, or which path (large or small M) ran.
 *
 * <p>Large M: activations are packed per call into MR-row tiles, K-major within each K block (shared by
 * all participants, packed in parallel); participants then claim chunks of output panels and, per panel
 * and K block, widen the weight strip into their own buffer and sweep it over every row tile, or, for
 * 8-row tiles (batched decode), sweep the packed strip itself, widening in registers (finite F16 weights, stored
 * times 2^s ({@link PackedWeights#halfShift}), to w·2^(s-112) in three operations against activations packed
 * times 2^(112-s), as in the streaming kernels).
 * Small M (generation): BF16 and F32 through
 * {@link StreamingKernels}, which read the packed weights in place (no widened copy) with a 4-row kernel or a
 * 1-row kernel over four panels a quarter of the matrix apart ({@link #oneRow}), so the FMA units see enough
 * independent chains while the weights stream from memory once, in long runs the prefetchers follow; F16 the
 * same way when the matrix holds no infinity or NaN and every activation is below
 * {@link PackedWeights#halfActivationLimit} in magnitude (2^26 for weights below 64: almost always), else widened {@link #F16_BLOCK} steps at a time into L1 buffers and multiplied by the same shapes of
 * kernel.
 */
final class Gemm {

    static final VectorSpecies<Float> S = PackedWeights.S;
    static final int L = PackedWeights.L;
    static final int NR = PackedWeights.NR;
    /** Rows of the large micro-kernel: 12 × 2 accumulators + 2 weight vectors + a broadcast fit 32 registers. */
    static final int MR = 12;
    static final int MR_SMALL = 4;
    /** Rows of the large path's tiles for batches that are a multiple of 8 but not of 12 ({@link #rowTile}). */
    static final int MR8 = 8;
    /**
     * Below this many rows the small-M path runs. Its kernels re-read each panel once per four rows, but after the
     * first four the panel comes from L2, and they widen in registers instead of storing and reloading a widened
     * strip: measured 2026-12-07 on the quiet 2-core Zen 5 (docs/PERFORMANCE.md), batched decode at 8 and 16 rows
     * ran 1.2-1.6x faster this way than through the 8-row tiles, and at 32 rows the two were within noise.
     */
    static final int SMALL_M = 32;
    /**
     * Reduction steps per K block. Measured on Zen 4 (2 threads, M = 512, K = 2048 and 8192): 256 gives
     * ~80% of the FMA peak, 1024 and more ~86–90%; longer blocks mean fewer round trips of the C tile, whose
     * rows are a power-of-two stride apart and so compete for the same L1 sets. The 128 KB weight strip
     * stays in L2.
     */
    static final int DEFAULT_KC = 1024;
    /**
     * Reduction steps per block of the small-M path for F16 weights with infinities or NaNs, which are
     * widened into float buffers first: four panels' blocks (4 × 64 × NR floats) stay in L1. Widening is the JDK's
     * {@link Float#float16ToFloat} loop, which C2 vectorises with the hardware conversion. The Vector API's
     * exact arithmetic conversion ({@link PackedWeights#widenF16}) costs about twelve operations per vector,
     * and inlined eight times into a register-widening one-row kernel it made C2 give up inlining (that loop
     * then ran ~10 times slower), which is why such F16 matrices do not use {@link StreamingKernels} (finite
     * ones do, with a three-operation conversion of finite halves to w·2^(s-112) against activations pre-scaled by
     * 2^(112-s), s the {@link PackedWeights#halfShift}).
     */
    static final int F16_BLOCK = 64;

    /** One participant's buffers, reused across calls so the hot loops allocate nothing. */
    static final class Scratch {
        final float[][] w;
        /** w[0] as a segment, for the 8-row kernel, which reads its weights from one. */
        final MemorySegment wSegment;
        final float[] tile = new float[MR * NR];
        final float[] init = new float[NR];
        final float[] zeros = new float[4 * NR];
        /** The even/odd kernels' sums between their permutes ({@link StreamingKernels#evenOddSums}): up to 8 rows of NR. */
        final float[] sums = new float[MR8 * NR];
        /**
         * The sum of the bytes {@link StreamingKernels#eightRowsEvenOdd} touched: kept so the JIT cannot drop
         * those loads, never read.
         */
        int touched;

        Scratch(int kc) {
            w = new float[][]{new float[kc * NR], new float[F16_BLOCK * NR], new float[F16_BLOCK * NR], new float[F16_BLOCK * NR],
                    new float[F16_BLOCK * NR]};
            wSegment = MemorySegment.ofArray(w[0]);
        }
    }

    private final WorkerPool pool;
    private final Scratch[] scratch;
    private float[] packedA = new float[0];
    private float[] smallA = new float[0];
    private float[] scaledX = new float[0];
    /** {@link #oneRow}'s claimable ranges of sweeps, one per product and participant. */
    private AtomicLongArray claims = new AtomicLongArray(0);
    private final AtomicInteger leftoverNext = new AtomicInteger();

    /** The K block: a parameter (not a constant) so tuning runs can compare block sizes in one process. */
    private final int kBlock;
    /** {@link StreamingKernels#TWO_STEPS}, a parameter so tests check both loops on any machine. */
    private final boolean twoSteps;
    /** {@link StreamingKernels#EVEN_ODD_TILES}, a parameter for the same reason. */
    private final boolean evenOddTiles;

    Gemm(WorkerPool pool) {
        this(pool, DEFAULT_KC);
    }

    Gemm(WorkerPool pool, int kc) {
        this(pool, kc, StreamingKernels.TWO_STEPS);
    }

    Gemm(WorkerPool pool, int kc, boolean twoSteps) {
        this(pool, kc, twoSteps, StreamingKernels.EVEN_ODD_TILES);
    }

    Gemm(WorkerPool pool, int kc, boolean twoSteps, boolean evenOddTiles) {
        this.pool = pool;
        this.kBlock = kc;
        this.twoSteps = twoSteps;
        this.evenOddTiles = evenOddTiles;
        this.scratch = new Scratch[pool.size()];
        for (int i = 0; i < scratch.length; i++) scratch[i] = new Scratch(kc);
    }

    /** Callers serialise calls (the kernels' operation lock): the buffers are shared state. */
    void multiply(float[] x, int m, PackedWeights w, float[] bias, float[] out) {
        multiplyAll(x, m, new PackedWeights[]{w}, new float[][]{bias}, new float[][]{out});
    }

    /**
     * outs[i] = x · ws[i] + biases[i] for several weights applied to the same input (q, k and v; gate and up), each
     * output with the bits {@link #multiply} gives it alone: the input is packed (and, for F16, scaled) once, and
     * the participants claim chunks from one queue over every product's panels, so none waits for the others at
     * the end of each product. The weights share k and their kind ({@link PackedWeights#sameKind}: callers
     * group them so); biases[i] may be null.
     */
    void multiplyAll(float[] x, int m, PackedWeights[] ws, float[][] biases, float[][] outs) {
        int k = ws[0].cols();
        PackedWeights w0 = ws[0];
        for (PackedWeights w : ws) {
            if (w.cols() != k || !w.sameKind(w0)) {
                throw new IllegalArgumentException("multiplyAll: weights differ in columns, type or F16 storage");
            }
        }
        if (m == 0) return;
        if (k == 0) {
            for (int g = 0; g < ws.length; g++) {
                int n = ws[g].rows();
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) outs[g][i * n + j] = biases[g] == null ? 0f : biases[g][j];
                }
            }
            return;
        }
        if (m < SMALL_M) {
            // F16 streams when its halves are finite and the activations can be pre-scaled exactly.
            float[] scaled = w0.dtype() == DType.F16 && w0.finiteHalves() ? scaleForHalves(x, m * k, w0) : null;
            float[] xs = scaled != null ? scaled : x;
            boolean streamF16 = scaled != null;
            if (m == 1 && (w0.dtype() != DType.F16 || streamF16)) {
                oneRow(xs, ws, biases, outs, streamF16);
                return;
            }
            float[] a = packSmall(xs, m, k);
            int[] first = chunkStarts(ws, 4);
            pool.forEach(first[ws.length], (id, c) -> {
                int g = product(first, c);
                int p0 = (c - first[g]) * 4, panels = ws[g].panels();
                small(id, a, xs, m, ws[g], biases[g], outs[g], p0, Math.min(panels, p0 + 4), streamF16);
            });
            return;
        }
        int mr = rowTile(m);
        int tiles = (m + mr - 1) / mr;
        long need = (long) tiles * mr * k;
        if (need > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("matmul of " + m + " rows x " + k + " is too large for one call");
        }
        if (packedA.length < need) packedA = new float[(int) need];
        float[] ap = packedA;
        // Finite F16 panels of 8-row tiles are read in place, widened in three operations to w·2^(s-112) against
        // packed activations that carry the 2^(112-s) (s: PackedWeights.halfShift). 12-row tiles (prefill) widen each
        // strip once for many tiles, where the cheaper conversion gained nothing measurable and the scan of the activations would cost (PERFORMANCE.md).
        boolean unbiasedHalves = mr == MR8 && w0.dtype() == DType.F16 && w0.finiteHalves() && scalableForHalves(x, m * k, w0);
        float factor = unbiasedHalves ? w0.halfActivationScale() : 1f;
        pool.forEach(tiles, (id, t) -> packTile(x, m, k, ap, mr, tiles * mr, t, factor));
        // A few chunks per thread: small enough to balance a preempted core, large enough that each chunk
        // reuses the L2-resident activation block over several panels.
        int panels = 0;
        for (PackedWeights w : ws) panels += w.panels();
        int chunk = Math.max(1, Math.min(8, panels / (4 * pool.size())));
        int[] first = chunkStarts(ws, chunk);
        pool.forEach(first[ws.length], (id, c) -> {
            int g = product(first, c);
            int p0 = (c - first[g]) * chunk;
            large(id, ap, mr, tiles, m, ws[g], biases[g], outs[g], p0, Math.min(ws[g].panels(), p0 + chunk), unbiasedHalves);
        });
    }

    /** first[g]: the index of product g's first chunk of the given number of panels; first[ws.length]: all chunks. */
    private static int[] chunkStarts(PackedWeights[] ws, int chunk) {
        int[] first = new int[ws.length + 1];
        for (int g = 0; g < ws.length; g++) first[g + 1] = first[g] + (ws[g].panels() + chunk - 1) / chunk;
        return first;
    }

    /** The product that chunk c belongs to. */
    private static int product(int[] first, int c) {
        int g = 0;
        while (c >= first[g + 1]) g++;
        return g;
    }

    /**
     * Rows per tile of the large path: 12 (the most FMAs per load), except for batches that 8-row tiles cover with
     * fewer padding rows (32, 40, 56, 64: batched generation; fewer than {@link #SMALL_M} rows stream instead),
     * where 12-row tiles would spend up to a third of their FMAs on zero rows (32 rows: 36 computed).
     */
    static int rowTile(int m) {
        int pad8 = (m + MR8 - 1) / MR8 * MR8, pad12 = (m + MR - 1) / MR * MR;
        return m <= 64 && pad8 < pad12 ? MR8 : MR;
    }

    /**
     * x[0 .. n) times w's {@link PackedWeights#halfActivationScale} (2^102 for weights stored times 2^10) for the
     * F16 streaming kernels ({@link StreamingKernels}), or null when some |x| is at or above
     * {@link PackedWeights#halfActivationLimit} or not finite (the scaled value would overflow, so the product would no longer
     * be x·w exactly): then the product takes the L1-buffer path.
     */
    private float[] scaleForHalves(float[] x, int n, PackedWeights w) {
        if (scaledX.length < n) scaledX = new float[n];
        float[] s = scaledX;
        float scale = w.halfActivationScale(), limit = w.halfActivationLimit();
        boolean exact = true;
        for (int i = 0; i < n; i++) {
            float v = x[i];
            exact &= Math.abs(v) < limit;
            s[i] = v * scale;
        }
        return exact ? s : null;
    }

    /**
     * Whether every |x[i]| (i &lt; n) is below w's {@link PackedWeights#halfActivationLimit}, so x times the scale is
     * finite and exact (NaN: no).
     */
    private static boolean scalableForHalves(float[] x, int n, PackedWeights w) {
        float limit = w.halfActivationLimit();
        boolean exact = true;
        for (int i = 0; i < n; i++) exact &= Math.abs(x[i]) < limit;
        return exact;
    }

    /** Rows of a small batch in groups of four, [chunk][k][4], zero-padded. */
    private float[] packSmall(float[] x, int m, int k) {
        int chunks = (m + MR_SMALL - 1) / MR_SMALL;
        if (smallA.length < chunks * MR_SMALL * k) smallA = new float[chunks * MR_SMALL * k];
        float[] a = smallA;
        for (int c = 0; c < chunks; c++) {
            for (int i = 0; i < MR_SMALL; i++) {
                int row = c * MR_SMALL + i;
                int d = c * MR_SMALL * k + i;
                if (row < m) {
                    for (int kk = 0; kk < k; kk++, d += MR_SMALL) a[d] = x[row * k + kk];
                } else {
                    for (int kk = 0; kk < k; kk++, d += MR_SMALL) a[d] = 0f;
                }
            }
        }
        return a;
    }

    /**
     * Rows [t*mr, t*mr+mr) of x, times factor (1, or {@link PackedWeights#halfActivationScale} for finite halves
     * read in place: a power of two, exact on the range {@link #scalableForHalves} admits), into ap: per K block, [kk][i] (rows past m are zero).
     */
    private void packTile(float[] x, int m, int k, float[] ap, int mr, int mPad, int t, float factor) {
        for (int k0 = 0; k0 < k; k0 += kBlock) {
            int kc = Math.min(kBlock, k - k0);
            int base = mPad * k0 + t * mr * kc;
            for (int i = 0; i < mr; i++) {
                int row = t * mr + i;
                if (row < m) {
                    int src = row * k + k0;
                    for (int kk = 0, d = base + i; kk < kc; kk++, d += mr) ap[d] = x[src + kk] * factor;
                } else {
                    for (int kk = 0, d = base + i; kk < kc; kk++, d += mr) ap[d] = 0f;
                }
            }
        }
    }

    /**
     * Panels [p0, p1) against every row tile, K block by K block. 8-row tiles (batched decode) read each panel in
     * place and widen it in registers ({@link StreamingKernels#eightRowsOnePanel}); 12-row tiles, and F16 panels
     * that cannot take the cheap conversion, first widen the panel's strip into the participant's buffer, which
     * serves every tile.
     */
    private void large(int id, float[] ap, int mr, int tiles, int m, PackedWeights w, float[] bias, float[] out, int p0, int p1,
                       boolean unbiasedHalves) {
        int n = w.rows(), k = w.cols();
        Scratch s = scratch[id];
        float[] wb = s.w[0];
        int mPad = tiles * mr;
        // Measured at M = 32 (docs/PERFORMANCE.md): 7-10% faster than widening into the buffer, for every type.
        boolean inPlace = mr == MR8 && (w.dtype() != DType.F16 || unbiasedHalves);
        boolean evenOdd = inPlace && evenOddTiles && w.dtype() != DType.F32;
        for (int k0 = 0; k0 < k; k0 += kBlock) {
            int kc = Math.min(kBlock, k - k0);
            int base = mPad * k0;
            boolean first = k0 == 0;
            for (int p = p0; p < p1; p++) {
                int col0 = p * NR;
                int valid = Math.min(NR, n - col0);
                float[] init = first ? initPanel(s, bias, col0, valid) : null;
                long off = w.byteOffset(p, k0);
                if (!inPlace) w.widen(p, k0, kc, wb);
                // The even/odd kernel touches the strip this loop reads next (the next panel, or the first
                // panel's next K block), a share per tile; nothing when that strip is shorter than this one.
                long touch = off;
                int touchStride = 0;
                if (evenOdd) {
                    int np = p + 1 < p1 ? p + 1 : p0, nk0 = p + 1 < p1 ? k0 : k0 + kBlock;
                    if (nk0 < k && Math.min(kBlock, k - nk0) >= kc) {
                        touch = w.byteOffset(np, nk0);
                        touchStride = 2 * NR / tiles;
                    }
                }
                for (int t = 0; t < tiles; t++) {
                    int r0 = t * mr;
                    int rows = Math.min(mr, m - r0);
                    int aOff = base + t * mr * kc;
                    boolean whole = rows == mr && valid == NR;
                    // a partial tile goes through s.tile, holding its partial sums after the first K block
                    float[] c = whole ? out : s.tile;
                    int cOff = whole ? r0 * n + col0 : 0, ldc = whole ? n : NR;
                    if (!whole && !first) for (int i = 0; i < rows; i++) System.arraycopy(out, (r0 + i) * n + col0, c, i * NR, valid);
                    if (mr == MR) kernel12(ap, aOff, wb, kc, c, cOff, ldc, init);
                    else if (evenOdd) {
                        s.touched += StreamingKernels.eightRowsEvenOdd(w.dtype(), w.data(), off, ap, aOff, kc, c, cOff, ldc, init,
                                s.sums, touch + (long) t * kc * touchStride, touchStride);
                    } else if (inPlace) StreamingKernels.eightRowsOnePanel(w.dtype(), w.data(), off, ap, aOff, kc, c, cOff, ldc, init);
                    else StreamingKernels.eightRowsOnePanel(DType.F32, s.wSegment, 0, ap, aOff, kc, c, cOff, ldc, init);
                    if (!whole) for (int i = 0; i < rows; i++) System.arraycopy(c, i * NR, out, (r0 + i) * n + col0, valid);
                }
            }
        }
    }

    private static float[] initPanel(Scratch s, float[] bias, int col0, int valid) {
        float[] init = s.init;
        for (int j = 0; j < NR; j++) init[j] = bias != null && j < valid ? bias[col0 + j] : 0f;
        return init;
    }

    /**
     * One row (a decoding step) against every weight of ws, each output with the bits {@link #multiply} gives it.
     *
     * <p>The kernel sweeps four panels at once, and which four decides how fast the weights come from memory.
     * Each product's whole panels are cut into quarters; sweep t takes panel t of every quarter, so its four
     * streams lie a quarter of the matrix apart, and sweep t + 1 continues each of them at the next panel. The
     * sweeps are then split into one contiguous range per participant, claimed from the front by their owner:
     * each core reads four long sequential streams per product, which the hardware prefetchers follow. A
     * participant that runs out takes sweeps from the back of another's range, so a descheduled core is still
     * covered and the owner's streams stay unbroken until the end. (Four adjacent panels per claim, as before,
     * start four new streams every 128 KB-512 KB: on the 2-core VM with memory at 48-67 GB/s, Pythia-1.4B's
     * products read 0.82 of the streaming probe that way against 0.89-0.90 this way, 2026-12-07,
     * docs/PERFORMANCE.md.) Panels that make no whole sweep go through the four-row kernel.
     */
    private void oneRow(float[] x, PackedWeights[] ws, float[][] biases, float[][] outs, boolean streamF16) {
        int parts = pool.size(), products = ws.length;
        if (claims.length() < products * parts) claims = new AtomicLongArray(products * parts);
        AtomicLongArray owned = claims;
        // firstLeftover[g]: the index of product g's first left-over panel among all products' (as chunkStarts).
        int[] firstLeftover = new int[products + 1];
        for (int g = 0; g < products; g++) {
            int sweeps = sweeps(ws[g]);
            for (int i = 0; i < parts; i++) {
                owned.set(g * parts + i, range(sweeps * i / parts, sweeps * (i + 1) / parts));
            }
            firstLeftover[g + 1] = firstLeftover[g] + ws[g].panels() - 4 * sweeps;
        }
        int leftovers = firstLeftover[products];
        float[] a = leftovers > 0 ? packSmall(x, 1, ws[0].cols()) : null;
        leftoverNext.set(0);
        pool.forEach(parts, (id, part) -> {
            Scratch s = scratch[id];
            for (int g = 0; g < products; g++) {
                for (int t = claimFront(owned, g * parts + part); t >= 0; t = claimFront(owned, g * parts + part)) {
                    sweep(s, x, ws[g], biases[g], outs[g], t, twoSteps);
                }
            }
            for (int d = 1; d < parts; d++) {
                int other = (part + d) % parts;
                for (int g = products - 1; g >= 0; g--) {
                    for (int t = claimBack(owned, g * parts + other); t >= 0; t = claimBack(owned, g * parts + other)) {
                        sweep(s, x, ws[g], biases[g], outs[g], t, twoSteps);
                    }
                }
            }
            for (int i = leftoverNext.getAndIncrement(); i < leftovers; i = leftoverNext.getAndIncrement()) {
                int g = product(firstLeftover, i), p = 4 * sweeps(ws[g]) + i - firstLeftover[g];
                small(id, a, x, 1, ws[g], biases[g], outs[g], p, p + 1, streamF16);
            }
        });
    }

    /** Sweeps of four whole panels in w: a quarter of its whole panels. */
    private static int sweeps(PackedWeights w) {
        return w.rows() / NR / 4;
    }

    /** Sweep t of w: panels t + i·{@link #sweeps}(w), i &lt; 4, for one row. */
    private static void sweep(Scratch s, float[] x, PackedWeights w, float[] bias, float[] out, int t, boolean twoSteps) {
        int quarter = sweeps(w), col0 = t * NR, stride = quarter * NR;
        StreamingKernels.oneRowFourStreams(w.dtype(), w.data(), w.byteOffset(t, 0), w.byteOffset(quarter, 0), x, 0,
                w.cols(), out, col0, stride, bias != null ? bias : s.zeros, bias != null ? col0 : 0, bias != null ? stride : NR,
                twoSteps, s.sums);
    }

    /** A claimable range [from, to) of sweeps, as one long: from in the high half, to in the low. */
    private static long range(int from, int to) {
        return (long) from << 32 | to;
    }

    /** The first unclaimed sweep of range r, now claimed, or -1 when none is left. */
    private static int claimFront(AtomicLongArray ranges, int r) {
        while (true) {
            long v = ranges.get(r);
            int from = (int) (v >>> 32), to = (int) v;
            if (from >= to) return -1;
            if (ranges.compareAndSet(r, v, range(from + 1, to))) return from;
        }
    }

    /** The last unclaimed sweep of range r, now claimed, or -1 when none is left. */
    private static int claimBack(AtomicLongArray ranges, int r) {
        while (true) {
            long v = ranges.get(r);
            int from = (int) (v >>> 32), to = (int) v;
            if (from >= to) return -1;
            if (ranges.compareAndSet(r, v, range(from, to - 1))) return to - 1;
        }
    }

    /**
     * Panels [p0, p1) for a small batch, each over all of k at once ({@link StreamingKernels}: the weights are
     * read in place, once per group of four rows): four rows (zero-padded) against one panel. One row
     * ({@link #oneRow}) comes here only for the panels its four-stream sweeps leave over.
     */
    private void small(int id, float[] a, float[] x, int m, PackedWeights w, float[] bias, float[] out, int p0, int p1,
                       boolean streamF16) {
        int n = w.rows(), k = w.cols();
        Scratch s = scratch[id];
        DType dt = w.dtype();
        MemorySegment seg = w.data();
        int chunks = (m + MR_SMALL - 1) / MR_SMALL;
        if (dt == DType.F16 && !streamF16) {
            smallF16(s, a, x, m, w, bias, out, p0, p1);
            return;
        }
        for (int p = p0; p < p1; p++) {
            int col0 = p * NR;
            int valid = Math.min(NR, n - col0);
            float[] init = initPanel(s, bias, col0, valid);
            long off = w.byteOffset(p, 0);
            for (int c = 0; c < chunks; c++) {
                int r0 = c * MR_SMALL;
                int rows = Math.min(MR_SMALL, m - r0);
                int aOff = c * MR_SMALL * k;
                if (rows == MR_SMALL && valid == NR) {
                    StreamingKernels.fourRowsOnePanel(dt, seg, off, a, aOff, k, out, r0 * n + col0, n, init);
                } else {
                    float[] tile = s.tile;
                    StreamingKernels.fourRowsOnePanel(dt, seg, off, a, aOff, k, tile, 0, NR, init);
                    for (int i = 0; i < rows; i++) System.arraycopy(tile, i * NR, out, (r0 + i) * n + col0, valid);
                }
            }
        }
    }

    /**
     * The small-M path for F16: per block of {@link #F16_BLOCK} reduction steps, each panel's strip is widened
     * into an L1-resident float buffer and multiplied there (the float chains carry over between blocks
     * through the output, which stores exact floats).
     */
    private void smallF16(Scratch s, float[] a, float[] x, int m, PackedWeights w, float[] bias, float[] out, int p0, int p1) {
        int n = w.rows(), k = w.cols();
        int chunks = (m + MR_SMALL - 1) / MR_SMALL;
        int fullEnd = Math.min(p1, n / NR);
        for (int k0 = 0; k0 < k; k0 += F16_BLOCK) {
            int kc = Math.min(F16_BLOCK, k - k0);
            boolean first = k0 == 0;
            int p = p0;
            if (m == 1) {
                for (; p + 4 <= fullEnd; p += 4) {
                    for (int g = 0; g < 4; g++) widenHalves(w, p + g, k0, kc, s.w[1 + g]);
                    int col0 = p * NR;
                    if (!first) kernel1x4(x, k0, s.w, 1, kc, out, col0, null, 0);
                    else if (bias != null) kernel1x4(x, k0, s.w, 1, kc, out, col0, bias, col0);
                    else kernel1x4(x, k0, s.w, 1, kc, out, col0, s.zeros, 0);
                }
            }
            for (; p < p1; p++) {
                float[] wb = s.w[1];
                widenHalves(w, p, k0, kc, wb);
                int col0 = p * NR;
                int valid = Math.min(NR, n - col0);
                float[] init = first ? initPanel(s, bias, col0, valid) : null;
                for (int c = 0; c < chunks; c++) {
                    int r0 = c * MR_SMALL;
                    int rows = Math.min(MR_SMALL, m - r0);
                    int aOff = c * MR_SMALL * k + k0 * MR_SMALL;
                    if (rows == MR_SMALL && valid == NR) {
                        kernel4(a, aOff, wb, kc, out, r0 * n + col0, n, init);
                    } else {
                        float[] tile = s.tile;
                        if (!first) for (int i = 0; i < rows; i++) System.arraycopy(out, (r0 + i) * n + col0, tile, i * NR, valid);
                        kernel4(a, aOff, wb, kc, tile, 0, NR, init);
                        for (int i = 0; i < rows; i++) System.arraycopy(tile, i * NR, out, (r0 + i) * n + col0, valid);
                    }
                }
            }
        }
    }

    /** Panel p's F16 strip for steps [k0, k0+kc) as floats in dst[0 .. kc·NR) (undoing {@link PackedWeights#halfShift}, exactly). */
    private static void widenHalves(PackedWeights w, int p, int k0, int kc, float[] dst) {
        int n = kc * NR;
        MemorySegment seg = w.data();
        long off = w.byteOffset(p, k0);
        float unshift = Math.scalb(1f, -w.halfShift());
        // C2 vectorises this loop, memory-segment loads included (faster than copying to a short[] first).
        for (int i = 0; i < n; i++) dst[i] = Float.float16ToFloat(seg.get(HALF, off + 2L * i)) * unshift;
    }

    private static final java.lang.foreign.ValueLayout.OfShort HALF =
            java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /**
     * The large micro-kernel: rows a[aOff + kk*MR + i] (i &lt; 12) times the widened strip w[kk*NR + j],
     * accumulated into c[cOff + i*ldc + j] (j &lt; NR); init, when given, replaces the loaded tile (first
     * K block: the bias).
     */
    static void kernel12(float[] a, int aOff, float[] w, int kc, float[] c, int cOff, int ldc, float[] init) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71, c80, c81, c90, c91, ca0, ca1, cb0, cb1;
        if (init != null) {
            FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
            c00 = b0; c01 = b1;
            c10 = b0; c11 = b1;
            c20 = b0; c21 = b1;
            c30 = b0; c31 = b1;
            c40 = b0; c41 = b1;
            c50 = b0; c51 = b1;
            c60 = b0; c61 = b1;
            c70 = b0; c71 = b1;
            c80 = b0; c81 = b1;
            c90 = b0; c91 = b1;
            ca0 = b0; ca1 = b1;
            cb0 = b0; cb1 = b1;
        } else {
            c00 = FloatVector.fromArray(S, c, cOff); c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc); c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
            c40 = FloatVector.fromArray(S, c, cOff + 4 * ldc); c41 = FloatVector.fromArray(S, c, cOff + 4 * ldc + L);
            c50 = FloatVector.fromArray(S, c, cOff + 5 * ldc); c51 = FloatVector.fromArray(S, c, cOff + 5 * ldc + L);
            c60 = FloatVector.fromArray(S, c, cOff + 6 * ldc); c61 = FloatVector.fromArray(S, c, cOff + 6 * ldc + L);
            c70 = FloatVector.fromArray(S, c, cOff + 7 * ldc); c71 = FloatVector.fromArray(S, c, cOff + 7 * ldc + L);
            c80 = FloatVector.fromArray(S, c, cOff + 8 * ldc); c81 = FloatVector.fromArray(S, c, cOff + 8 * ldc + L);
            c90 = FloatVector.fromArray(S, c, cOff + 9 * ldc); c91 = FloatVector.fromArray(S, c, cOff + 9 * ldc + L);
            ca0 = FloatVector.fromArray(S, c, cOff + 10 * ldc); ca1 = FloatVector.fromArray(S, c, cOff + 10 * ldc + L);
            cb0 = FloatVector.fromArray(S, c, cOff + 11 * ldc); cb1 = FloatVector.fromArray(S, c, cOff + 11 * ldc + L);
        }
        int ai = aOff, wi = 0;
        for (int kk = 0; kk < kc; kk++, ai += MR, wi += NR) {
            FloatVector w0 = FloatVector.fromArray(S, w, wi), w1 = FloatVector.fromArray(S, w, wi + L);
            FloatVector b;
            b = FloatVector.broadcast(S, a[ai]); c00 = b.fma(w0, c00); c01 = b.fma(w1, c01);
            b = FloatVector.broadcast(S, a[ai + 1]); c10 = b.fma(w0, c10); c11 = b.fma(w1, c11);
            b = FloatVector.broadcast(S, a[ai + 2]); c20 = b.fma(w0, c20); c21 = b.fma(w1, c21);
            b = FloatVector.broadcast(S, a[ai + 3]); c30 = b.fma(w0, c30); c31 = b.fma(w1, c31);
            b = FloatVector.broadcast(S, a[ai + 4]); c40 = b.fma(w0, c40); c41 = b.fma(w1, c41);
            b = FloatVector.broadcast(S, a[ai + 5]); c50 = b.fma(w0, c50); c51 = b.fma(w1, c51);
            b = FloatVector.broadcast(S, a[ai + 6]); c60 = b.fma(w0, c60); c61 = b.fma(w1, c61);
            b = FloatVector.broadcast(S, a[ai + 7]); c70 = b.fma(w0, c70); c71 = b.fma(w1, c71);
            b = FloatVector.broadcast(S, a[ai + 8]); c80 = b.fma(w0, c80); c81 = b.fma(w1, c81);
            b = FloatVector.broadcast(S, a[ai + 9]); c90 = b.fma(w0, c90); c91 = b.fma(w1, c91);
            b = FloatVector.broadcast(S, a[ai + 10]); ca0 = b.fma(w0, ca0); ca1 = b.fma(w1, ca1);
            b = FloatVector.broadcast(S, a[ai + 11]); cb0 = b.fma(w0, cb0); cb1 = b.fma(w1, cb1);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc); c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc); c51.intoArray(c, cOff + 5 * ldc + L);
        c60.intoArray(c, cOff + 6 * ldc); c61.intoArray(c, cOff + 6 * ldc + L);
        c70.intoArray(c, cOff + 7 * ldc); c71.intoArray(c, cOff + 7 * ldc + L);
        c80.intoArray(c, cOff + 8 * ldc); c81.intoArray(c, cOff + 8 * ldc + L);
        c90.intoArray(c, cOff + 9 * ldc); c91.intoArray(c, cOff + 9 * ldc + L);
        ca0.intoArray(c, cOff + 10 * ldc); ca1.intoArray(c, cOff + 10 * ldc + L);
        cb0.intoArray(c, cOff + 11 * ldc); cb1.intoArray(c, cOff + 11 * ldc + L);

    }

    static void kernel4(float[] a, int aOff, float[] w, int kc, float[] c, int cOff, int ldc, float[] init) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31;
        if (init != null) {
            FloatVector b0 = FloatVector.fromArray(S, init, 0), b1 = FloatVector.fromArray(S, init, L);
            c00 = b0; c01 = b1;
            c10 = b0; c11 = b1;
            c20 = b0; c21 = b1;
            c30 = b0; c31 = b1;
        } else {
            c00 = FloatVector.fromArray(S, c, cOff); c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + ldc); c11 = FloatVector.fromArray(S, c, cOff + ldc + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * ldc); c21 = FloatVector.fromArray(S, c, cOff + 2 * ldc + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * ldc); c31 = FloatVector.fromArray(S, c, cOff + 3 * ldc + L);
        }
        int ai = aOff, wi = 0;
        for (int kk = 0; kk < kc; kk++, ai += MR_SMALL, wi += NR) {
            FloatVector w0 = FloatVector.fromArray(S, w, wi), w1 = FloatVector.fromArray(S, w, wi + L);
            FloatVector b;
            b = FloatVector.broadcast(S, a[ai]); c00 = b.fma(w0, c00); c01 = b.fma(w1, c01);
            b = FloatVector.broadcast(S, a[ai + 1]); c10 = b.fma(w0, c10); c11 = b.fma(w1, c11);
            b = FloatVector.broadcast(S, a[ai + 2]); c20 = b.fma(w0, c20); c21 = b.fma(w1, c21);
            b = FloatVector.broadcast(S, a[ai + 3]); c30 = b.fma(w0, c30); c31 = b.fma(w1, c31);
        }
        c00.intoArray(c, cOff); c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc); c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc); c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc); c31.intoArray(c, cOff + 3 * ldc + L);

    }

    /** One row against four full panels at once: eight independent chains hide the FMA latency. */
    static void kernel1x4(float[] x, int xOff, float[][] w, int w0i, int kc, float[] c, int cOff, float[] bias, int biasOff) {
        // bias: the initial values (first K block), or null to continue from c; w[w0i .. w0i+3]: the four strips
        float[] w0 = w[w0i], w1 = w[w0i + 1], w2 = w[w0i + 2], w3 = w[w0i + 3];
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31;
        if (bias != null) {
            c00 = FloatVector.fromArray(S, bias, biasOff);
            c01 = FloatVector.fromArray(S, bias, biasOff + L);
            c10 = FloatVector.fromArray(S, bias, biasOff + NR);
            c11 = FloatVector.fromArray(S, bias, biasOff + NR + L);
            c20 = FloatVector.fromArray(S, bias, biasOff + 2 * NR);
            c21 = FloatVector.fromArray(S, bias, biasOff + 2 * NR + L);
            c30 = FloatVector.fromArray(S, bias, biasOff + 3 * NR);
            c31 = FloatVector.fromArray(S, bias, biasOff + 3 * NR + L);
        } else {
            c00 = FloatVector.fromArray(S, c, cOff);
            c01 = FloatVector.fromArray(S, c, cOff + L);
            c10 = FloatVector.fromArray(S, c, cOff + NR);
            c11 = FloatVector.fromArray(S, c, cOff + NR + L);
            c20 = FloatVector.fromArray(S, c, cOff + 2 * NR);
            c21 = FloatVector.fromArray(S, c, cOff + 2 * NR + L);
            c30 = FloatVector.fromArray(S, c, cOff + 3 * NR);
            c31 = FloatVector.fromArray(S, c, cOff + 3 * NR + L);
        }
        for (int kk = 0, wi = 0; kk < kc; kk++, wi += NR) {
            FloatVector b = FloatVector.broadcast(S, x[xOff + kk]);
            c00 = b.fma(FloatVector.fromArray(S, w0, wi), c00);
            c01 = b.fma(FloatVector.fromArray(S, w0, wi + L), c01);
            c10 = b.fma(FloatVector.fromArray(S, w1, wi), c10);
            c11 = b.fma(FloatVector.fromArray(S, w1, wi + L), c11);
            c20 = b.fma(FloatVector.fromArray(S, w2, wi), c20);
            c21 = b.fma(FloatVector.fromArray(S, w2, wi + L), c21);
            c30 = b.fma(FloatVector.fromArray(S, w3, wi), c30);
            c31 = b.fma(FloatVector.fromArray(S, w3, wi + L), c31);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + NR);
        c11.intoArray(c, cOff + NR + L);
        c20.intoArray(c, cOff + 2 * NR);
        c21.intoArray(c, cOff + 2 * NR + L);
        c30.intoArray(c, cOff + 3 * NR);
        c31.intoArray(c, cOff + 3 * NR + L);
    }
}
