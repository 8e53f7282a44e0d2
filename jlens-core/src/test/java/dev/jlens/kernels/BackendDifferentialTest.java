package dev.jlens.kernels;

import dev.jlens.io.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every {@link Backend} operation of a candidate backend against the scalar {@link Backend#reference()}, op by
 * op, on random data and awkward shapes: odd widths that leave vector tails, grouped-query heads, sliding
 * windows, soft-capping, a cached prefix, partial and interleaved rotary, (1 + w) norms, 16-bit weights. Both
 * sides get the same host values; their outputs are compared on the host. A new backend (a GPU one) is
 * checked by adding it to {@link #candidates()}.
 */
class BackendDifferentialTest {

    static Stream<Backend> candidates() {
        return Stream.of(Backend.cpu(1), Backend.cpu(3));
    }

    private static final Backend REF = Backend.reference();

    /** Runs op on a fresh copy of the inputs on each backend and returns the named output of each. */
    private static float[][] both(Backend cand, float[][] inputs, int[][] shapes, int out, Consumer<Object[]> op) {
        float[][] results = new float[2][];
        Backend[] backends = {cand, REF};
        for (int b = 0; b < 2; b++) {
            DeviceTensor[] t = new DeviceTensor[inputs.length];
            for (int i = 0; i < inputs.length; i++) t[i] = backends[b].upload(inputs[i].clone(), shapes[i][0], shapes[i][1]);
            op.accept(new Object[]{backends[b], t});
            results[b] = backends[b].toHost(t[out], t[out].rows(), t[out].cols()).data().clone();
        }
        return results;
    }

    private static float[] rand(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextGaussian() * scale);
        return a;
    }

    private static void close(float[] want, float[] got, double rel, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            double tol = rel * Math.max(1, Math.abs(want[i]));
            assertTrue(Math.abs(want[i] - got[i]) <= tol, what + " [" + i + "]: reference " + want[i] + ", candidate " + got[i]);
        }
    }

    private static void bitwise(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]),
                    what + " [" + i + "]: reference " + want[i] + ", candidate " + got[i]);
        }
    }

    private static WeightMatrix weight(Random r, DType dt, int rows, int cols) {
        ByteBuffer buf = ByteBuffer.allocate(rows * cols * dt.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < rows * cols; i++) {
            float v = (float) (r.nextGaussian() * 0.3);
            switch (dt) {
                case F32 -> buf.putFloat(v);
                case F16 -> buf.putShort(Float.floatToFloat16(v));
                default -> buf.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
            }
        }
        return WeightMatrix.of("w" + rows + "x" + cols, dt, MemorySegment.ofArray(buf.array()), rows, cols);
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void matmulIsBitwiseTheReferenceFmaChain(Backend cand) {
        Random r = new Random(1);
        for (DType dt : new DType[]{DType.F32, DType.F16, DType.BF16}) {
            for (int[] mnk : new int[][]{{1, 7, 5}, {3, 33, 17}, {13, 65, 130}, {29, 40, 1100}}) {
                int m = mnk[0], n = mnk[1], k = mnk[2];
                WeightMatrix w = weight(r, dt, n, k);
                float[] bias = r.nextBoolean() ? rand(r, n, 1) : null;
                float[][] res = both(cand, new float[][]{rand(r, m * k, 1), new float[m * n]}, new int[][]{{m, k}, {m, n}}, 1,
                        a -> ((Backend) a[0]).matmul(((DeviceTensor[]) a[1])[0], w, bias, ((DeviceTensor[]) a[1])[1]));
                bitwise(res[1], res[0], "matmul " + dt + " " + m + "x" + n + "x" + k);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void productsOfOneInputAreBitwiseTheReferenceFmaChain(Backend cand) {
        Random r = new Random(11);
        for (DType dt : new DType[]{DType.F32, DType.F16, DType.BF16}) {
            for (int m : new int[]{1, 5, 32, 40}) {
                int k = 70;
                int[] ns = {40, 7, 33};
                WeightMatrix[] ws = new WeightMatrix[ns.length];
                float[][] biases = new float[ns.length][];
                for (int i = 0; i < ns.length; i++) {
                    ws[i] = weight(r, dt, ns[i], k);
                    biases[i] = i == 1 ? null : rand(r, ns[i], 1);
                }
                float[][] inputs = {rand(r, m * k, 1), new float[m * ns[0]], new float[m * ns[1]], new float[m * ns[2]]};
                int[][] shapes = {{m, k}, {m, ns[0]}, {m, ns[1]}, {m, ns[2]}};
                for (int out = 1; out <= ns.length; out++) {
                    float[][] res = both(cand, inputs, shapes, out, a -> {
                        DeviceTensor[] t = (DeviceTensor[]) a[1];
                        ((Backend) a[0]).matmuls(t[0], ws, biases, new DeviceTensor[]{t[1], t[2], t[3]});
                    });
                    bitwise(res[1], res[0], "matmuls " + dt + " m=" + m + " product " + (out - 1));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void normsAndStats(Backend cand) {
        Random r = new Random(2);
        for (int[] shape : new int[][]{{1, 7}, {5, 64}, {9, 130}, {40, 2053}}) {
            int rows = shape[0], d = shape[1];
            float[] x = rand(r, rows * d, 3), g = rand(r, d, 1), b = rand(r, d, 1);
            float[][] res = both(cand, new float[][]{x, new float[rows * d]}, new int[][]{shape, shape}, 1,
                    a -> ((Backend) a[0]).layerNorm(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[1], g, b, 1e-5f));
            close(res[1], res[0], 3e-6, "layerNorm " + rows + "x" + d);
            for (boolean onePlus : new boolean[]{false, true}) {
                res = both(cand, new float[][]{x}, new int[][]{shape}, 0, // in place, as the q/k norms run
                        a -> ((Backend) a[0]).rmsNorm(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[0], g, 1e-6f, onePlus));
                close(res[1], res[0], 3e-6, "rmsNorm onePlus=" + onePlus + " " + rows + "x" + d);
            }
            for (boolean ln : new boolean[]{true, false}) {
                res = both(cand, new float[][]{x, new float[rows], new float[rows * d]}, new int[][]{shape, {rows, 1}, shape}, 2,
                        a -> ((Backend) a[0]).normStats(ln, ((DeviceTensor[]) a[1])[0], 1e-5f, ((DeviceTensor[]) a[1])[1],
                                ((DeviceTensor[]) a[1])[2]));
                bitwise(res[1], res[0], "normStats layerNorm=" + ln);
            }
        }
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void elementwise(Backend cand) {
        Random r = new Random(3);
        for (int n : new int[]{1, 17, 1000, 40_003}) {
            float[] x = rand(r, n, 4), y = rand(r, n, 4);
            for (Activation act : Activation.values()) {
                float[][] res = both(cand, new float[][]{x}, new int[][]{{1, n}}, 0,
                        a -> ((Backend) a[0]).activate(((DeviceTensor[]) a[1])[0], act));
                close(res[1], res[0], 1e-6, act + " n=" + n);
                res = both(cand, new float[][]{x, y}, new int[][]{{1, n}, {1, n}}, 0,
                        a -> ((Backend) a[0]).gatedActivate(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[1], act));
                close(res[1], res[0], 1e-5, "gated " + act + " n=" + n);
            }
            float[][] res = both(cand, new float[][]{x, y}, new int[][]{{1, n}, {1, n}}, 0,
                    a -> ((Backend) a[0]).add(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[1]));
            bitwise(res[1], res[0], "add n=" + n);
            res = both(cand, new float[][]{x}, new int[][]{{1, n}}, 0, a -> ((Backend) a[0]).softcap(((DeviceTensor[]) a[1])[0], 3f));
            bitwise(res[1], res[0], "softcap n=" + n);
        }
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void copiesAndGather(Backend cand) {
        Random r = new Random(4);
        float[] src = rand(r, 7 * 11, 1);
        float[][] res = both(cand, new float[][]{src, new float[7 * 5]}, new int[][]{{7, 11}, {7, 5}}, 1,
                a -> ((Backend) a[0]).copyColumns(((DeviceTensor[]) a[1])[0], 3, ((DeviceTensor[]) a[1])[1], 1, 4));
        bitwise(res[1], res[0], "copyColumns");
        res = both(cand, new float[][]{src, new float[9 * 11]}, new int[][]{{7, 11}, {9, 11}}, 1,
                a -> ((Backend) a[0]).copyRows(((DeviceTensor[]) a[1])[0], 2, ((DeviceTensor[]) a[1])[1], 4, 5));
        bitwise(res[1], res[0], "copyRows");
        WeightMatrix table = weight(r, DType.BF16, 50, 13);
        int[] ids = {3, 49, 0, 3, 17};
        res = both(cand, new float[][]{new float[5 * 13]}, new int[][]{{5, 13}}, 0,
                a -> ((Backend) a[0]).gather(table, ids, 8f, ((DeviceTensor[]) a[1])[0]));
        bitwise(res[1], res[0], "gather x8");
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void rotaryEveryLayout(Backend cand) {
        Random r = new Random(5);
        int rows = 6, heads = 3;
        int[] pos = {0, 1, 2, 2, 40, 511};
        for (int headDim : new int[]{8, 24, 64}) {
            for (int rot : new int[]{headDim, headDim / 2, 6}) {
                for (RotaryEmbedding.Layout layout : RotaryEmbedding.Layout.values()) {
                    RotaryEmbedding rope = new RotaryEmbedding(rot, RotaryEmbedding.defaultInvFreq(rot, 10000), layout);
                    float[][] res = both(cand, new float[][]{rand(r, rows * heads * headDim, 1)},
                            new int[][]{{rows, heads * headDim}}, 0,
                            a -> ((Backend) a[0]).rotary(((DeviceTensor[]) a[1])[0], heads, headDim, pos, rope));
                    bitwise(res[1], res[0], "rotary " + layout + " " + rot + "/" + headDim);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource("candidates")
    void attentionEveryVariant(Backend cand) {
        Random r = new Random(6);
        int[][] heads = {{4, 4, 16}, {8, 2, 8}, {3, 1, 24}, {2, 2, 72}};
        for (int[] h : heads) {
            for (AttentionSpec base : new AttentionSpec[]{
                    AttentionSpec.causal(h[0], h[1], h[2]),
                    AttentionSpec.causal(h[0], h[1], h[2]).withWindow(4),
                    AttentionSpec.causal(h[0], h[1], h[2]).withSoftcap(3f).withScale(0.2f),
                    new AttentionSpec(h[0], h[1], h[2], 0.25f, false, 0, 0f)}) {
                // four sequences, the second continuing a cached prefix of 5 keys, the fourth one query (a decoding
                // step, which the CPU backend computes by dot products) after 22 cached keys
                int[] qLen = {7, 3, 19, 1}, past = base.causal() ? new int[]{0, 5, 0, 22} : new int[4];
                int[] qOff = new int[4], kOff = new int[4], kLen = new int[4];
                int rows = 0, kRows = 0, patternSize = 0;
                for (int s = 0; s < 4; s++) {
                    qOff[s] = rows;
                    kOff[s] = kRows;
                    kLen[s] = past[s] + qLen[s];
                    rows += qLen[s];
                    kRows += kLen[s];
                    patternSize += h[0] * qLen[s] * kLen[s];
                }
                AttentionLayout layout = new AttentionLayout(qOff, qLen, kOff, kLen);
                int qw = base.qWidth(), kw = base.kvWidth();
                float[][] in = {rand(r, rows * qw, 1), rand(r, kRows * kw, 1), rand(r, kRows * kw, 1), new float[rows * qw],
                        new float[patternSize]};
                int[][] shapes = {{rows, qw}, {kRows, kw}, {kRows, kw}, {rows, qw}, {1, patternSize}};
                float[][] withScores = {in[0], in[1], in[2], in[3], in[4], new float[patternSize]};
                int[][] scoreShapes = {shapes[0], shapes[1], shapes[2], shapes[3], shapes[4], {1, patternSize}};
                for (int out : new int[]{3, 4, 5}) {
                    float[][] res = both(cand, withScores, scoreShapes, out, a -> {
                        DeviceTensor[] t = (DeviceTensor[]) a[1];
                        ((Backend) a[0]).attention(t[0], t[1], t[2], t[3], layout, base, t[4], t[5]);
                    });
                    String what = (out == 3 ? "attention " : out == 4 ? "pattern " : "scores ") + base;
                    for (int i = 0; i < res[0].length; i++) {
                        if (res[1][i] == Float.NEGATIVE_INFINITY) assertEquals(Float.NEGATIVE_INFINITY, res[0][i], what + " masked");
                        else close(new float[]{res[1][i]}, new float[]{res[0][i]}, 2e-6, what + " [" + i + "]");
                    }
                }
                // a hook's changed scores and pattern are carried on by softmaxScores and mixValues
                float[] scores = rand(r, patternSize, 2), pattern = new float[patternSize];
                float[][] res = both(cand, new float[][]{scores, pattern}, new int[][]{{1, patternSize}, {1, patternSize}}, 1,
                        a -> ((Backend) a[0]).softmaxScores(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[1], layout, base));
                close(res[1], res[0], 2e-6, "softmaxScores " + base);
                res = both(cand, new float[][]{res[1], in[2], new float[rows * qw]},
                        new int[][]{{1, patternSize}, shapes[2], shapes[3]}, 2,
                        a -> ((Backend) a[0]).mixValues(((DeviceTensor[]) a[1])[0], ((DeviceTensor[]) a[1])[1],
                                ((DeviceTensor[]) a[1])[2], layout, base));
                close(res[1], res[0], 2e-6, "mixValues " + base);
            }
        }
    }

    /**
     * Decoding steps alone (one query per sequence), the shape of a generation step: one sequence and five,
     * with key counts on and off the CPU backend's four keys at a time, and head widths on and off its four
     * vectors at a time.
     */
    @ParameterizedTest
    @MethodSource("candidates")
    void decodingStepsMatchTheReference(Backend cand) {
        Random r = new Random(8);
        for (int[] h : new int[][]{{4, 4, 16}, {8, 2, 24}, {2, 2, 72}, {16, 16, 128}}) {
            for (AttentionSpec spec : new AttentionSpec[]{AttentionSpec.causal(h[0], h[1], h[2]),
                    AttentionSpec.causal(h[0], h[1], h[2]).withWindow(6),
                    AttentionSpec.causal(h[0], h[1], h[2]).withSoftcap(3f)}) {
                for (int[] kLen : new int[][]{{1}, {13}, {48}, {3, 16, 9, 1, 30}}) {
                    DecodeCase c = DecodeCase.random(r, spec, kLen);
                    for (int out : new int[]{3, 4, 5}) {
                        float[][] res = both(cand, c.inputs(), c.shapes(), out, a -> c.run((Backend) a[0], (DeviceTensor[]) a[1]));
                        String what = (out == 3 ? "attention " : out == 4 ? "pattern " : "scores ") + spec + " keys "
                                + Arrays.toString(kLen);
                        for (int i = 0; i < res[0].length; i++) {
                            if (res[1][i] == Float.NEGATIVE_INFINITY) assertEquals(Float.NEGATIVE_INFINITY, res[0][i], what + " masked");
                            else close(new float[]{res[1][i]}, new float[]{res[0][i]}, 2e-6, what + " [" + i + "]");
                        }
                    }
                }
            }
        }
    }

    /**
     * A sequence's decoding step has the same bits however many threads share it, whichever other
     * sequences share the call (decoding or prefilling), and whether or not a hook captures its pattern:
     * batched generation equals one-at-a-time generation token for token only if this holds.
     */
    @Test
    void aDecodingStepHasTheSameBitsAloneInABatchAndOnAnyThreads() {
        Random r = new Random(9);
        for (AttentionSpec spec : new AttentionSpec[]{AttentionSpec.causal(16, 16, 128), AttentionSpec.causal(8, 2, 24),
                AttentionSpec.causal(4, 4, 16).withWindow(5).withSoftcap(4f)}) {
            // sequence 0 decodes after 41 cached keys; the others decode or prefill beside it
            DecodeCase alone = DecodeCase.random(r, spec, new int[]{42});
            float[] want = null;
            for (Backend b : new Backend[]{Backend.cpu(1), Backend.cpu(2), Backend.cpu(3)}) {
                for (int[] others : new int[][]{{}, {7, 1, 20}, {-4, 9}}) {
                    DecodeCase c = alone.with(r, others);
                    for (boolean hooked : new boolean[]{false, true}) {
                        DeviceTensor[] t = new DeviceTensor[6];
                        float[][] in = c.inputs();
                        for (int i = 0; i < in.length; i++) t[i] = b.upload(in[i], c.shapes()[i][0], c.shapes()[i][1]);
                        if (!hooked) t[4] = t[5] = null;
                        c.run(b, t);
                        float[] got = Arrays.copyOf(b.toHost(t[3], t[3].rows(), t[3].cols()).data(), spec.qWidth());
                        if (want == null) want = got;
                        else bitwise(want, got, spec + " on " + b.threads() + " threads beside " + Arrays.toString(others)
                                + (hooked ? ", hooked" : ""));
                    }
                }
            }
        }
    }

    /**
     * Queries, cached keys and values for sequences that each bring one new token after kLen − 1 cached ones,
     * laid out with gaps between the sequences' key regions (as in a KV cache); a negative kLen −n stands for a
     * sequence prefilling n tokens. Inputs: q, k, v, out, pattern, scores.
     */
    private record DecodeCase(AttentionSpec spec, AttentionLayout layout, float[][] inputs, int[][] shapes) {

        static DecodeCase random(Random r, AttentionSpec spec, int[] kLen) {
            return build(r, spec, kLen, null);
        }

        /** This case's sequence 0 (same data) followed by others. */
        DecodeCase with(Random r, int[] others) {
            int[] kLen = new int[1 + others.length];
            kLen[0] = layout.kLen()[0];
            System.arraycopy(others, 0, kLen, 1, others.length);
            return build(r, spec, kLen, this);
        }

        private static DecodeCase build(Random r, AttentionSpec spec, int[] lens, DecodeCase first) {
            int n = lens.length, qw = spec.qWidth(), kw = spec.kvWidth();
            int[] qOff = new int[n], qLen = new int[n], kOff = new int[n], kLen = new int[n];
            int rows = 0, kRows = 0, patternSize = 0;
            for (int s = 0; s < n; s++) {
                qLen[s] = lens[s] < 0 ? -lens[s] : 1;
                kLen[s] = Math.abs(lens[s]);
                qOff[s] = rows;
                kOff[s] = kRows + 3;
                rows += qLen[s];
                kRows += kLen[s] + 3 + s;
                patternSize += spec.nHeads() * qLen[s] * kLen[s];
            }
            float[] q = rand(r, rows * qw, 1), k = rand(r, kRows * kw, 1), v = rand(r, kRows * kw, 1);
            if (first != null) {
                // sequence 0's query, keys and values are the first case's
                System.arraycopy(first.inputs[0], 0, q, 0, qw);
                int k0 = first.layout.kOff()[0] * kw, len = kLen[0] * kw;
                System.arraycopy(first.inputs[1], k0, k, kOff[0] * kw, len);
                System.arraycopy(first.inputs[2], k0, v, kOff[0] * kw, len);
            }
            return new DecodeCase(spec, new AttentionLayout(qOff, qLen, kOff, kLen),
                    new float[][]{q, k, v, new float[rows * qw], new float[patternSize], new float[patternSize]},
                    new int[][]{{rows, qw}, {kRows, kw}, {kRows, kw}, {rows, qw}, {1, patternSize}, {1, patternSize}});
        }

        void run(Backend b, DeviceTensor[] t) {
            b.attention(t[0], t[1], t[2], t[3], layout, spec, t[4], t[5]);
        }
    }
}
