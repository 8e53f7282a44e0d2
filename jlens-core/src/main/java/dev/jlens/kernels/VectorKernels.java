package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.ref.Cleaner;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The CPU kernels on the Vector API, running on a fixed pool of platform threads that this instance owns.
 * Weights are multiplied through {@link Gemm} on their {@link PackedWeights} form; row-wise operations
 * split rows between the threads, attention splits (sequence, head) pairs. Every output element is
 * computed by exactly one thread with a fixed operation order, so results are bit-identical for any
 * thread count and any batch composition. Operations on one instance are serialised (they share the
 * threads and the scratch buffers); use one instance per concurrent caller if that matters.
 */
final class VectorKernels implements Kernels {

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Below this many elements an elementwise operation is not worth waking the threads for. */
    private static final int PARALLEL_MIN = 1 << 15;
    private static final Cleaner CLEANER = Cleaner.create();

    private final WorkerPool pool;
    private final Gemm gemm;
    private final ReentrantLock lock = new ReentrantLock();
    private final AttentionScratch[] attentionScratch;

    private static final class AttentionScratch {
        float[] keysT = new float[0];
        float[] scores = new float[0];
    }

    private static final class Shared {
        static final VectorKernels INSTANCE = new VectorKernels(Runtime.getRuntime().availableProcessors());
    }

    VectorKernels(int threads) {
        this.pool = new WorkerPool(threads);
        this.gemm = new Gemm(pool);
        this.attentionScratch = new AttentionScratch[threads];
        for (int i = 0; i < threads; i++) attentionScratch[i] = new AttentionScratch();
        WorkerPool p = pool;
        CLEANER.register(this, p::shutdown);
    }

    /** The process-wide instance behind {@link Kernels#defaults()}, one thread per available core. */
    static VectorKernels shared() {
        return Shared.INSTANCE;
    }

    @Override
    public int threads() {
        return pool.size();
    }

    @Override
    public void prepare(WeightMatrix w) {
        lock.lock();
        try {
            w.packed(this::pack);
        } finally {
            lock.unlock();
        }
    }

    private PackedWeights pack(WeightMatrix w) {
        return PackedWeights.pack(w, pool);
    }

    @Override
    public void matmul(float[] x, int m, WeightMatrix w, float[] bias, float[] out) {
        int n = w.rows(), k = w.cols();
        if ((long) m * k > x.length) {
            throw new IllegalArgumentException("matmul " + w.name() + ": input has " + x.length + " values, "
                    + m + " rows of " + k + " need " + (long) m * k);
        }
        if ((long) m * n > out.length) {
            throw new IllegalArgumentException("matmul " + w.name() + ": output has " + out.length + " values, "
                    + m + " rows of " + n + " need " + (long) m * n);
        }
        if (bias != null && bias.length < n) {
            throw new IllegalArgumentException("matmul " + w.name() + ": bias has " + bias.length + " values, expected " + n);
        }
        lock.lock();
        try {
            gemm.multiply(x, m, w.packed(this::pack), bias, out);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void layerNorm(float[] x, float[] out, int rows, int d, float[] gamma, float[] beta, float eps) {
        forRows(rows, d, (r0, r1) -> {
            for (int r = r0; r < r1; r++) layerNormRow(x, out, r * d, d, gamma, beta, eps);
        });
    }

    /**
     * Mean and biased variance accumulate in L float lanes (each lane a fixed stride of the row), combined
     * in double in lane order; the normalisation is the reference's (x − mean)·inv·γ + β, op for op.
     */
    private static void layerNormRow(float[] x, float[] out, int base, int d, float[] gamma, float[] beta, float eps) {
        int bound = d - d % L;
        FloatVector acc = FloatVector.zero(S);
        for (int j = 0; j < bound; j += L) acc = acc.add(FloatVector.fromArray(S, x, base + j));
        double sum = lanesInOrder(acc);
        for (int j = bound; j < d; j++) sum += x[base + j];
        double mean = sum / d;
        float fm = (float) mean;
        FloatVector m = FloatVector.broadcast(S, fm);
        acc = FloatVector.zero(S);
        for (int j = 0; j < bound; j += L) {
            FloatVector c = FloatVector.fromArray(S, x, base + j).sub(m);
            acc = c.fma(c, acc);
        }
        double var = lanesInOrder(acc);
        for (int j = bound; j < d; j++) {
            double c = x[base + j] - fm;
            var += c * c;
        }
        var /= d;
        float inv = (float) (1.0 / Math.sqrt(var + eps));
        for (int j = 0; j < bound; j += L) {
            FloatVector v = FloatVector.fromArray(S, x, base + j).sub(m).mul(inv);
            if (gamma != null) v = v.mul(FloatVector.fromArray(S, gamma, j));
            if (beta != null) v = v.add(FloatVector.fromArray(S, beta, j));
            v.intoArray(out, base + j);
        }
        for (int j = bound; j < d; j++) {
            float v = (x[base + j] - fm) * inv;
            if (gamma != null) v *= gamma[j];
            if (beta != null) v += beta[j];
            out[base + j] = v;
        }
    }

    /** The lanes of v summed in double, lane 0 first (reduceLanes leaves the order to the JIT). */
    private static double lanesInOrder(FloatVector v) {
        double s = 0;
        for (int i = 0; i < L; i++) s += v.lane(i);
        return s;
    }

    @Override
    public void rmsNorm(float[] x, float[] out, int rows, int d, float[] gamma, float eps) {
        forRows(rows, d, (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int base = r * d;
                int bound = d - d % L;
                FloatVector acc = FloatVector.zero(S);
                for (int j = 0; j < bound; j += L) {
                    FloatVector v = FloatVector.fromArray(S, x, base + j);
                    acc = v.fma(v, acc);
                }
                double ss = lanesInOrder(acc);
                for (int j = bound; j < d; j++) ss += (double) x[base + j] * x[base + j];
                float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
                for (int j = 0; j < bound; j += L) {
                    FloatVector v = FloatVector.fromArray(S, x, base + j).mul(inv);
                    if (gamma != null) v = FloatVector.fromArray(S, gamma, j).mul(v);
                    v.intoArray(out, base + j);
                }
                for (int j = bound; j < d; j++) {
                    float v = x[base + j] * inv;
                    out[base + j] = gamma == null ? v : gamma[j] * v;
                }
            }
        });
    }

    @Override
    public void activate(float[] x, int n, Activation act) {
        forRange(n, (i0, i1) -> VectorMath.activate(act, x, i0, i1));
    }

    @Override
    public void addInPlace(float[] out, float[] a, int n) {
        forRange(n, (i0, i1) -> {
            int i = i0;
            for (; i + L <= i1; i += L) {
                FloatVector.fromArray(S, out, i).add(FloatVector.fromArray(S, a, i)).intoArray(out, i);
            }
            for (; i < i1; i++) out[i] += a[i];
        });
    }

    @Override
    public void attention(float[] q, float[] k, float[] v, float[] out, AttentionLayout layout, int nHeads, int nKvHeads,
                          int headDim, float scale, AttentionMask mask, float[] patternOut) {
        int seqs = layout.sequences();
        int[] patternBase = new int[seqs];
        int pb = 0;
        for (int s = 0; s < seqs; s++) {
            patternBase[s] = pb;
            pb += nHeads * layout.qLen()[s] * layout.kLen()[s];
        }
        int tasks = seqs * nHeads;
        lock.lock();
        try {
            // Each (sequence, head) is computed by one thread in a fixed order, so who claims it does not
            // change its bits; claiming balances unequal sequence lengths.
            pool.forEach(tasks, (id, t) -> attendOne(attentionScratch[id], q, k, v, out, layout, t / nHeads, t % nHeads,
                    nHeads, nKvHeads, headDim, scale, mask, patternOut, patternBase[t / nHeads]));
        } finally {
            lock.unlock();
        }
    }

    /**
     * One head of one sequence. Keys are gathered transposed ([c][j]) so scores for L keys come out of one
     * FMA chain over the head dimension; the weighted sum of values runs over keys in order, L head dims at
     * a time. The softmax sum is accumulated in double, as in the reference.
     */
    private static void attendOne(AttentionScratch sc, float[] q, float[] k, float[] v, float[] out,
                                  AttentionLayout layout, int s, int h, int nHeads, int nKvHeads, int headDim,
                                  float scale, AttentionMask mask, float[] patternOut, int patternBase) {
        int qStride = nHeads * headDim, kStride = nKvHeads * headDim;
        int kvh = h / (nHeads / nKvHeads);
        int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
        int past = kLen - qLen;
        int kPad = (kLen + L - 1) / L * L;
        if (sc.keysT.length < headDim * kPad) sc.keysT = new float[headDim * kPad];
        if (sc.scores.length < kPad) sc.scores = new float[kPad];
        float[] kt = sc.keysT, scores = sc.scores;
        for (int j = 0; j < kPad; j++) {
            if (j < kLen) {
                int src = (kOff + j) * kStride + kvh * headDim;
                for (int c = 0; c < headDim; c++) kt[c * kPad + j] = k[src + c];
            } else {
                for (int c = 0; c < headDim; c++) kt[c * kPad + j] = 0f;
            }
        }
        int vBound = headDim - headDim % L;
        for (int i = 0; i < qLen; i++) {
            int qPos = past + i;
            int lo = 0, hi = kLen;
            if (mask.causal()) {
                hi = Math.min(kLen, qPos + 1);
                if (mask.window() > 0) lo = Math.max(0, qPos - mask.window() + 1);
            }
            int qBase = (qOff + i) * qStride + h * headDim;
            int jEnd = (hi + L - 1) / L * L;
            for (int jb = 0; jb < jEnd; jb += L) {
                FloatVector acc = FloatVector.zero(S);
                for (int c = 0; c < headDim; c++) {
                    acc = FloatVector.broadcast(S, q[qBase + c]).fma(FloatVector.fromArray(S, kt, c * kPad + jb), acc);
                }
                acc.mul(scale).intoArray(scores, jb);
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int j = lo; j < hi; j++) max = Math.max(max, scores[j]);
            FloatVector mv = FloatVector.broadcast(S, max);
            for (int jb = 0; jb < jEnd; jb += L) {
                VectorMath.exp(FloatVector.fromArray(S, scores, jb).sub(mv)).intoArray(scores, jb);
            }
            double sum = 0;
            for (int j = lo; j < hi; j++) sum += scores[j];
            float inv = (float) (1.0 / sum);
            for (int j = lo; j < hi; j++) scores[j] *= inv;
            int oBase = (qOff + i) * qStride + h * headDim;
            for (int cb = 0; cb < vBound; cb += L) {
                FloatVector acc = FloatVector.zero(S);
                for (int j = lo; j < hi; j++) {
                    acc = FloatVector.broadcast(S, scores[j])
                            .fma(FloatVector.fromArray(S, v, (kOff + j) * kStride + kvh * headDim + cb), acc);
                }
                acc.intoArray(out, oBase + cb);
            }
            for (int c = vBound; c < headDim; c++) {
                float acc = 0f;
                for (int j = lo; j < hi; j++) acc = Math.fma(scores[j], v[(kOff + j) * kStride + kvh * headDim + c], acc);
                out[oBase + c] = acc;
            }
            if (patternOut != null) {
                int p = patternBase + (h * qLen + i) * kLen;
                for (int j = 0; j < kLen; j++) patternOut[p + j] = (j >= lo && j < hi) ? scores[j] : 0f;
            }
        }
    }

    @FunctionalInterface
    private interface RangeBody {
        void run(int from, int to);
    }

    /** Rows split into one contiguous range per thread (inline when the work is small). */
    private void forRows(int rows, int d, RangeBody body) {
        if ((long) rows * d < PARALLEL_MIN || rows < 2) {
            body.run(0, rows);
            return;
        }
        lock.lock();
        try {
            int parts = pool.size();
            pool.run(id -> {
                int r0 = PackedWeights.split(rows, parts, id), r1 = PackedWeights.split(rows, parts, id + 1);
                if (r0 < r1) body.run(r0, r1);
            });
        } finally {
            lock.unlock();
        }
    }

    /** [0, n) split into one range per thread, each boundary on a multiple of the vector length. */
    private void forRange(int n, RangeBody body) {
        if (n < PARALLEL_MIN) {
            body.run(0, n);
            return;
        }
        lock.lock();
        try {
            int parts = pool.size();
            int blocks = (n + L - 1) / L;
            pool.run(id -> {
                int i0 = PackedWeights.split(blocks, parts, id) * L;
                int i1 = Math.min(n, PackedWeights.split(blocks, parts, id + 1) * L);
                if (i0 < i1) body.run(i0, i1);
            });
        } finally {
            lock.unlock();
        }
    }
}
