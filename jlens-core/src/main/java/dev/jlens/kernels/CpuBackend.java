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
final class CpuBackend extends HeapBackend {

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
        /** One vector's lanes, for {@link #lanesInOrder(FloatVector, float[])}. */
        final float[] lanes = new float[L];
    }

    private static final class Shared {
        static final CpuBackend INSTANCE = new CpuBackend(Runtime.getRuntime().availableProcessors());
    }

    CpuBackend(int threads) {
        this.pool = new WorkerPool(threads);
        this.gemm = new Gemm(pool);
        this.attentionScratch = new AttentionScratch[threads];
        for (int i = 0; i < threads; i++) attentionScratch[i] = new AttentionScratch();
        WorkerPool p = pool;
        CLEANER.register(this, p::shutdown);
    }

    /** The process-wide instance behind {@link Backend#defaults()}, one thread per available core. */
    static CpuBackend shared() {
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
            w.packed(this, this::pack);
        } finally {
            lock.unlock();
        }
    }

    private PackedWeights pack(WeightMatrix w) {
        return PackedWeights.pack(w, pool);
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public void matmul(DeviceTensor xt, WeightMatrix w, float[] bias, DeviceTensor outT) {
        checkProduct(xt, w, bias, outT);
        lock.lock();
        try {
            gemm.multiply(HeapTensor.of(xt), xt.rows(), w.packed(this, this::pack), bias, HeapTensor.of(outT));
        } finally {
            lock.unlock();
        }
    }

    /**
     * One pass when the weights are of one kind ({@link PackedWeights#sameKind}: type and F16 storage), so one packing of
     * the input serves them all (weights of one layer always do); otherwise one product after another.
     */
    @Override
    public void matmuls(DeviceTensor xt, WeightMatrix[] ws, float[][] biases, DeviceTensor[] outs) {
        if (ws.length != biases.length || ws.length != outs.length) {
            throw new IllegalArgumentException("matmuls: " + ws.length + " weights, " + biases.length + " biases, "
                    + outs.length + " outputs; expected as many of each");
        }
        if (ws.length == 0) return;
        for (int i = 0; i < ws.length; i++) checkProduct(xt, ws[i], biases[i], outs[i]);
        lock.lock();
        try {
            PackedWeights[] packed = new PackedWeights[ws.length];
            float[][] out = new float[ws.length][];
            boolean oneKind = true;
            for (int i = 0; i < ws.length; i++) {
                packed[i] = ws[i].packed(this, this::pack);
                out[i] = HeapTensor.of(outs[i]);
                oneKind &= packed[i].sameKind(packed[0]);
            }
            float[] x = HeapTensor.of(xt);
            if (oneKind) gemm.multiplyAll(x, xt.rows(), packed, biases, out);
            else for (int i = 0; i < ws.length; i++) gemm.multiply(x, xt.rows(), packed[i], biases[i], out[i]);
        } finally {
            lock.unlock();
        }
    }

    private static void checkProduct(DeviceTensor xt, WeightMatrix w, float[] bias, DeviceTensor outT) {
        int m = xt.rows(), n = w.rows(), k = w.cols();
        if (xt.cols() != k) {
            throw new IllegalArgumentException("matmul " + w.name() + ": input is " + xt + ", the weight needs " + k + " columns");
        }
        if (outT.rows() != m || outT.cols() != n) {
            throw new IllegalArgumentException("matmul " + w.name() + ": output is " + outT + ", expected [" + m + ", " + n + "]");
        }
        if (bias != null && bias.length < n) {
            throw new IllegalArgumentException("matmul " + w.name() + ": bias has " + bias.length + " values, expected " + n);
        }
    }

    @Override
    public void layerNorm(DeviceTensor xt, DeviceTensor outT, float[] gamma, float[] beta, float eps) {
        float[] x = HeapTensor.of(xt), out = HeapTensor.of(outT);
        int rows = xt.rows(), d = xt.cols();
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

    /** {@link #lanesInOrder(FloatVector, float[])} for the norms, which run it once per row: no scratch to keep. */
    private static double lanesInOrder(FloatVector v) {
        return lanesInOrder(v, new float[L]);
    }

    /**
     * The lanes of v summed in double, lane 0 first (reduceLanes leaves the order to the JIT), through a scratch
     * array of L floats: the attention scores run it once per key and head, and {@code FloatVector.lane(i)} cost
     * 22 ns a vector against 7.4 through {@code intoArray} (16 lanes, 2026-12-08).
     */
    private static double lanesInOrder(FloatVector v, float[] lanes) {
        v.intoArray(lanes, 0);
        double s = 0;
        for (int i = 0; i < L; i++) s += lanes[i];
        return s;
    }

    @Override
    public void rmsNorm(DeviceTensor xt, DeviceTensor outT, float[] gamma, float eps, boolean onePlus) {
        float[] x = HeapTensor.of(xt), out = HeapTensor.of(outT);
        int rows = xt.rows(), d = xt.cols();
        FloatVector one = FloatVector.broadcast(S, 1f);
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
                    if (gamma != null) {
                        FloatVector g = FloatVector.fromArray(S, gamma, j);
                        v = (onePlus ? one.add(g) : g).mul(v);
                    }
                    v.intoArray(out, base + j);
                }
                for (int j = bound; j < d; j++) {
                    float v = x[base + j] * inv;
                    out[base + j] = gamma == null ? v : (onePlus ? 1f + gamma[j] : gamma[j]) * v;
                }
            }
        });
    }

    @Override
    public void activate(DeviceTensor xt, Activation act) {
        float[] x = HeapTensor.of(xt);
        forRange((int) xt.size(), (i0, i1) -> VectorMath.activate(act, x, i0, i1));
    }

    @Override
    public void gatedActivate(DeviceTensor gateT, DeviceTensor upT, Activation act) {
        float[] gate = HeapTensor.of(gateT), up = HeapTensor.of(upT);
        forRange((int) gateT.size(), (i0, i1) -> {
            VectorMath.activate(act, gate, i0, i1);
            int i = i0;
            for (; i + L <= i1; i += L) {
                FloatVector.fromArray(S, gate, i).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
            }
            for (; i < i1; i++) gate[i] *= up[i];
        });
    }

    @Override
    public void add(DeviceTensor outT, DeviceTensor at) {
        float[] out = HeapTensor.of(outT), a = HeapTensor.of(at);
        forRange((int) outT.size(), (i0, i1) -> {
            int i = i0;
            for (; i + L <= i1; i += L) {
                FloatVector.fromArray(S, out, i).add(FloatVector.fromArray(S, a, i)).intoArray(out, i);
            }
            for (; i < i1; i++) out[i] += a[i];
        });
    }

    @Override
    public void softcap(DeviceTensor xt, float cap) {
        float[] x = HeapTensor.of(xt);
        forRange((int) xt.size(), (i0, i1) -> {
            for (int i = i0; i < i1; i++) x[i] = (float) Math.tanh(x[i] / cap) * cap;
        });
    }

    /**
     * The pairs of a head are rotated a vector at a time in the half-split layout (the two halves are
     * contiguous); each value is still x1·cos − x2·sin, the same float operations as the scalar loop that
     * the interleaved layout uses.
     */
    @Override
    public void rotary(DeviceTensor xt, int nHeads, int headDim, int[] positions, RotaryEmbedding rope) {
        int dims = rope.rotaryDims();
        if (dims == 0) return;
        float[] x = HeapTensor.of(xt);
        int rows = xt.rows();
        int half = dims / 2;
        boolean split = rope.layout() == RotaryEmbedding.Layout.HALF_SPLIT;
        int bound = split ? half - half % L : 0;
        float[] cos = new float[half];
        float[] sin = new float[half];
        int lastPos = -1;
        for (int r = 0; r < rows; r++) {
            int pos = positions[r];
            if (pos != lastPos) {
                rope.angles(pos, cos, sin);
                lastPos = pos;
            }
            for (int h = 0; h < nHeads; h++) {
                int base = r * nHeads * headDim + h * headDim;
                for (int i = 0; i < bound; i += L) {
                    FloatVector x1 = FloatVector.fromArray(S, x, base + i);
                    FloatVector x2 = FloatVector.fromArray(S, x, base + half + i);
                    FloatVector c = FloatVector.fromArray(S, cos, i), s = FloatVector.fromArray(S, sin, i);
                    x1.mul(c).sub(x2.mul(s)).intoArray(x, base + i);
                    x2.mul(c).add(x1.mul(s)).intoArray(x, base + half + i);
                }
                rope.rotatePairs(x, base, bound, cos, sin);
            }
        }
    }

    @Override
    public void attention(DeviceTensor qt, DeviceTensor kt, DeviceTensor vt, DeviceTensor outT, AttentionLayout layout,
                          AttentionSpec spec, DeviceTensor patternT, DeviceTensor scoresT) {
        float[] q = HeapTensor.of(qt), k = HeapTensor.of(kt), v = HeapTensor.of(vt), out = HeapTensor.of(outT);
        float[] patternOut = patternT == null ? null : HeapTensor.of(patternT);
        float[] scoresOut = scoresT == null ? null : HeapTensor.of(scoresT);
        int nHeads = spec.nHeads();
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
                    spec, patternOut, scoresOut, patternBase[t / nHeads]));
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void softmaxScores(DeviceTensor scores, DeviceTensor pattern, AttentionLayout layout, AttentionSpec spec) {
        AttentionMaps.softmax(HeapTensor.of(scores), HeapTensor.of(pattern), layout, spec);
    }

    @Override
    public void mixValues(DeviceTensor pattern, DeviceTensor v, DeviceTensor out, AttentionLayout layout, AttentionSpec spec) {
        AttentionMaps.mixValues(HeapTensor.of(pattern), HeapTensor.of(v), HeapTensor.of(out), layout, spec);
    }

    /**
     * One head of one sequence. Keys are gathered transposed ([c][j]) so scores for L keys come out of one
     * FMA chain over the head dimension; the weighted sum of values runs over keys in order, L head dims at
     * a time. The softmax sum is accumulated in double, as in the reference. A single query (a decoding
     * step) takes each score as a dot product over the head dimension instead: the transposed copy costs as
     * much as all of a query's work and only pays when many queries share it (it was 8% of a batch-32
     * Pythia-1.4B decoding step, nearly all of the attention's time). The values are summed four output
     * vectors at a time, so that four FMA chains run side by side (one chain waited on each FMA's latency).
     *
     * <p>Tried for a decoding step and not kept (2026-12-07): sweeping whole key rows for all heads, the
     * rows split between the threads for the scores and the heads for the values. 17% faster than the
     * head-by-head loop in a loop over 24 layers' caches with 64 MB read between layers, it was slower inside
     * a generation step (2.26 against 1.62 ms a step for Pythia-1.4B at 32 new tokens, means of 7 and 25 runs),
     * probably because each of its two jobs per layer waits for the worker to finish its share.
     */
    private static void attendOne(AttentionScratch sc, float[] q, float[] k, float[] v, float[] out,
                                  AttentionLayout layout, int s, int h, AttentionSpec spec, float[] patternOut,
                                  float[] scoresOut, int patternBase) {
        int nHeads = spec.nHeads(), nKvHeads = spec.nKvHeads(), headDim = spec.headDim();
        float scale = spec.scale();
        int qStride = nHeads * headDim, kStride = nKvHeads * headDim;
        int kvh = h / (nHeads / nKvHeads);
        int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
        int past = kLen - qLen;
        int kPad = (kLen + L - 1) / L * L;
        // One query (a decoding step) takes dot products and needs no transposed keys.
        boolean oneQuery = qLen == 1;
        if (!oneQuery && sc.keysT.length < headDim * kPad) sc.keysT = new float[headDim * kPad];
        if (sc.scores.length < kPad) sc.scores = new float[kPad];
        float[] kt = sc.keysT, scores = sc.scores;
        if (!oneQuery) {
            for (int j = 0; j < kPad; j++) {
                if (j < kLen) {
                    int src = (kOff + j) * kStride + kvh * headDim;
                    for (int c = 0; c < headDim; c++) kt[c * kPad + j] = k[src + c];
                } else {
                    for (int c = 0; c < headDim; c++) kt[c * kPad + j] = 0f;
                }
            }
        }
        int vBound = headDim - headDim % L;
        for (int i = 0; i < qLen; i++) {
            int qPos = past + i;
            int lo = spec.firstVisible(qPos), hi = spec.endVisible(qPos, kLen);
            int qBase = (qOff + i) * qStride + h * headDim;
            int jEnd = (hi + L - 1) / L * L;
            if (oneQuery) {
                oneQueryScores(q, qBase, k, kOff * kStride + kvh * headDim, kStride, lo, hi, headDim, vBound, scale, scores,
                        sc.lanes);
                // The softmax below reads whole vectors; lanes outside [lo, hi) are never used, only kept finite.
                for (int j = 0; j < lo; j++) scores[j] = 0f;
                for (int j = hi; j < jEnd; j++) scores[j] = 0f;
            } else {
                for (int jb = 0; jb < jEnd; jb += L) {
                    FloatVector acc = FloatVector.zero(S);
                    for (int c = 0; c < headDim; c++) {
                        acc = FloatVector.broadcast(S, q[qBase + c]).fma(FloatVector.fromArray(S, kt, c * kPad + jb), acc);
                    }
                    acc.mul(scale).intoArray(scores, jb);
                }
            }
            if (spec.softcap() > 0f) {
                for (int j = lo; j < hi; j++) scores[j] = spec.cap(scores[j]);
            }
            if (scoresOut != null) {
                int p = patternBase + (h * qLen + i) * kLen;
                for (int j = 0; j < kLen; j++) scoresOut[p + j] = (j >= lo && j < hi) ? scores[j] : Float.NEGATIVE_INFINITY;
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
            int cb = 0;
            // Four output vectors at a time: four independent FMA chains over the keys, each still in key order.
            for (; cb + 4 * L <= vBound; cb += 4 * L) {
                FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
                for (int j = lo; j < hi; j++) {
                    FloatVector p = FloatVector.broadcast(S, scores[j]);
                    int r = (kOff + j) * kStride + kvh * headDim + cb;
                    a0 = p.fma(FloatVector.fromArray(S, v, r), a0);
                    a1 = p.fma(FloatVector.fromArray(S, v, r + L), a1);
                    a2 = p.fma(FloatVector.fromArray(S, v, r + 2 * L), a2);
                    a3 = p.fma(FloatVector.fromArray(S, v, r + 3 * L), a3);
                }
                a0.intoArray(out, oBase + cb);
                a1.intoArray(out, oBase + cb + L);
                a2.intoArray(out, oBase + cb + 2 * L);
                a3.intoArray(out, oBase + cb + 3 * L);
            }
            for (; cb < vBound; cb += L) {
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

    /**
     * A single query's scaled scores against keys [lo, hi), key j at kBase + j·kStride: four keys at a time (four
     * independent FMA chains, four rows in flight), each score exactly {@link #dot}'s.
     */
    private static void oneQueryScores(float[] q, int qBase, float[] k, int kBase, int kStride, int lo, int hi, int headDim,
                                       int vBound, float scale, float[] scores, float[] lanes) {
        int j = lo;
        for (; j + 4 <= hi; j += 4) {
            int r0 = kBase + j * kStride, r1 = r0 + kStride, r2 = r1 + kStride, r3 = r2 + kStride;
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < vBound; c += L) {
                FloatVector x = FloatVector.fromArray(S, q, qBase + c);
                a0 = x.fma(FloatVector.fromArray(S, k, r0 + c), a0);
                a1 = x.fma(FloatVector.fromArray(S, k, r1 + c), a1);
                a2 = x.fma(FloatVector.fromArray(S, k, r2 + c), a2);
                a3 = x.fma(FloatVector.fromArray(S, k, r3 + c), a3);
            }
            float s0 = (float) lanesInOrder(a0, lanes), s1 = (float) lanesInOrder(a1, lanes);
            float s2 = (float) lanesInOrder(a2, lanes), s3 = (float) lanesInOrder(a3, lanes);
            for (int c = vBound; c < headDim; c++) {
                float x = q[qBase + c];
                s0 = Math.fma(x, k[r0 + c], s0);
                s1 = Math.fma(x, k[r1 + c], s1);
                s2 = Math.fma(x, k[r2 + c], s2);
                s3 = Math.fma(x, k[r3 + c], s3);
            }
            scores[j] = s0 * scale;
            scores[j + 1] = s1 * scale;
            scores[j + 2] = s2 * scale;
            scores[j + 3] = s3 * scale;
        }
        for (; j < hi; j++) scores[j] = dot(q, qBase, k, kBase + j * kStride, headDim, vBound, lanes) * scale;
    }

    /**
     * Σ a[ai + c]·b[bi + c] over c < n: L lanes at a time up to vBound, the lanes summed in a fixed order
     * ({@link #lanesInOrder}: a score must not depend on how far the JIT has compiled this), then the rest in order.
     */
    private static float dot(float[] a, int ai, float[] b, int bi, int n, int vBound, float[] lanes) {
        FloatVector acc = FloatVector.zero(S);
        int c = 0;
        for (; c < vBound; c += L) acc = FloatVector.fromArray(S, a, ai + c).fma(FloatVector.fromArray(S, b, bi + c), acc);
        float sum = (float) lanesInOrder(acc, lanes);
        for (; c < n; c++) sum = Math.fma(a[ai + c], b[bi + c], sum);
        return sum;
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
