package dev.jlens.cuda;

import dev.jlens.io.DType;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.RotaryEmbedding;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.tensor.FloatTensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every {@link Backend} operation of the CUDA backend against {@link Backend#reference()}, op by op, on random
 * shapes (odd sizes, one row, several sequences, cached prefixes, grouped heads, windows, soft-caps, head
 * sizes past the online kernel's limit). Skipped without a GPU (see {@link CudaTestSupport}).
 */
class CudaOpsTest {

    static final Backend REF = Backend.reference();

    static float[] random(Random r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextGaussian();
        return a;
    }

    /** The same values on both backends. */
    record Pair(DeviceTensor gpu, DeviceTensor ref) {
    }

    static Pair pair(Backend gpu, float[] values, int rows, int cols) {
        return new Pair(gpu.upload(values.clone(), rows, cols), REF.upload(values.clone(), rows, cols));
    }

    static Pair zeros(Backend gpu, int rows, int cols) {
        return new Pair(gpu.allocate(rows, cols), REF.allocate(rows, cols));
    }

    /** |got − want| ≤ tol · max(1, |want|) everywhere. */
    static void assertClose(Backend gpu, Pair p, double tol, String what) {
        float[] got = gpu.toHost(p.gpu, p.gpu.rows(), p.gpu.cols()).data();
        float[] want = REF.toHost(p.ref, p.ref.rows(), p.ref.cols()).data();
        assertEquals(want.length, got.length, what);
        double worst = 0;
        int at = -1;
        for (int i = 0; i < want.length; i++) {
            double e = Math.abs(got[i] - want[i]) / Math.max(1.0, Math.abs(want[i]));
            if (!(e <= worst)) {
                worst = e;
                at = i;
            }
        }
        assertTrue(worst <= tol, what + ": worst relative error " + worst + " at " + at + " (got " + (at < 0 ? "" : got[at])
                + ", want " + (at < 0 ? "" : want[at]) + ")");
    }

    static WeightMatrix weight(String name, DType dtype, float[] values, int rows, int cols) {
        if (dtype == DType.F32) return WeightMatrix.ofFloats(name, values, rows, cols);
        MemorySegment seg = MemorySegment.ofArray(new short[values.length]);
        ValueLayout.OfShort s = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < values.length; i++) {
            short bits = dtype == DType.F16 ? Float.floatToFloat16(values[i]) : (short) (Float.floatToRawIntBits(values[i]) >>> 16);
            seg.setAtIndex(s, i, bits);
        }
        return WeightMatrix.of(name, dtype, seg, rows, cols);
    }

    @Test
    void memoryOperations() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(1);
        float[] a = random(r, 13 * 37);
        Pair p = pair(gpu, a, 13, 37);
        assertClose(gpu, p, 0, "upload and toHost");
        FloatTensor host = gpu.toHost(p.gpu, 13, 37);
        host.data()[5] = 42f;
        gpu.fromHost(host, p.gpu);
        assertEquals(42f, gpu.toHost(p.gpu, 13 * 37).data()[5], "fromHost writes a hook's change back");
        REF.fromHost(new FloatTensor(host.data().clone(), 13, 37), p.ref);
        Pair dst = zeros(gpu, 20, 37);
        gpu.copyRows(p.gpu, 2, dst.gpu, 5, 9);
        REF.copyRows(p.ref, 2, dst.ref, 5, 9);
        assertClose(gpu, dst, 0, "copyRows");
        Pair cols = zeros(gpu, 13, 50);
        gpu.copyColumns(p.gpu, 3, cols.gpu, 11, 30);
        REF.copyColumns(p.ref, 3, cols.ref, 11, 30);
        assertClose(gpu, cols, 0, "copyColumns");
        DeviceTensor view = p.gpu.view(37, 13);
        assertEquals(13 * 37, gpu.toHost(view, 37, 13).data().length);
        assertEquals(0, gpu.allocate(0, 64).size(), "empty tensors exist");
    }

    @Test
    void matmulInEveryWeightType() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(2);
        int[][] shapes = {{1, 64, 48}, {7, 33, 129}, {33, 300, 17}, {5, 1, 9}};
        for (DType dtype : new DType[]{DType.F32, DType.F16, DType.BF16}) {
            for (int[] s : shapes) {
                int m = s[0], k = s[1], n = s[2];
                WeightMatrix w = weight("w", dtype, random(r, n * k), n, k);
                float[] bias = r.nextBoolean() ? random(r, n) : null;
                Pair x = pair(gpu, random(r, m * k), m, k), out = zeros(gpu, m, n);
                gpu.prepare(w);
                gpu.matmul(x.gpu, w, bias, out.gpu);
                REF.matmul(x.ref, w, bias, out.ref);
                assertClose(gpu, out, 2e-5 * Math.sqrt(k), "matmul " + dtype + " " + m + "x" + k + "x" + n + (bias == null ? "" : " +bias"));
            }
        }
    }

    @Test
    void gatherInEveryWeightType() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(3);
        int[] ids = {0, 5, 5, 99, 17, 3};
        for (DType dtype : new DType[]{DType.F32, DType.F16, DType.BF16}) {
            WeightMatrix table = weight("table", dtype, random(r, 100 * 45), 100, 45);
            for (float scale : new float[]{1f, 6.7f}) {
                Pair out = zeros(gpu, ids.length, 45);
                gpu.gather(table, ids, scale, out.gpu);
                REF.gather(table, ids, scale, out.ref);
                assertClose(gpu, out, 0, "gather " + dtype + " × " + scale);
            }
        }
    }

    @Test
    void norms() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(4);
        for (int d : new int[]{1, 31, 64, 1000, 2049}) {
            int rows = 1 + r.nextInt(9);
            float[] x = random(r, rows * d);
            for (int i = 0; i < x.length; i++) x[i] = x[i] * 3 + 0.5f;
            float[] g = random(r, d), b = random(r, d);
            for (boolean withWeights : new boolean[]{false, true}) {
                Pair in = pair(gpu, x, rows, d), out = zeros(gpu, rows, d);
                gpu.layerNorm(in.gpu, out.gpu, withWeights ? g : null, withWeights ? b : null, 1e-5f);
                REF.layerNorm(in.ref, out.ref, withWeights ? g : null, withWeights ? b : null, 1e-5f);
                assertClose(gpu, out, 2e-6, "layerNorm d=" + d + (withWeights ? " with weights" : ""));
            }
            for (boolean onePlus : new boolean[]{false, true}) {
                Pair inPlace = pair(gpu, x, rows, d);
                gpu.rmsNorm(inPlace.gpu, inPlace.gpu, g, 1e-6f, onePlus);
                REF.rmsNorm(inPlace.ref, inPlace.ref, g, 1e-6f, onePlus);
                assertClose(gpu, inPlace, 2e-6, "rmsNorm in place d=" + d + (onePlus ? " (1 + w)" : ""));
            }
            for (boolean ln : new boolean[]{false, true}) {
                Pair in = pair(gpu, x, rows, d), scale = zeros(gpu, rows, 1), normalized = zeros(gpu, rows, d);
                gpu.normStats(ln, in.gpu, 1e-5f, scale.gpu, normalized.gpu);
                REF.normStats(ln, in.ref, 1e-5f, scale.ref, normalized.ref);
                assertClose(gpu, scale, 1e-6, "normStats scale " + (ln ? "LayerNorm" : "RMSNorm"));
                assertClose(gpu, normalized, 1e-6, "normStats normalized " + (ln ? "LayerNorm" : "RMSNorm"));
            }
        }
    }

    @Test
    void rotaryBothLayoutsFullAndPartial() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(5);
        for (RotaryEmbedding.Layout layout : RotaryEmbedding.Layout.values()) {
            for (int headDim : new int[]{16, 64, 80}) {
                for (int rot : new int[]{headDim, headDim / 2}) {
                    float[] inv = RotaryEmbedding.defaultInvFreq(rot, 10000);
                    for (int i = 0; i < inv.length; i++) if (i % 3 == 0) inv[i] /= 8f; // scaled frequencies
                    RotaryEmbedding rope = new RotaryEmbedding(rot, inv, layout);
                    int rows = 6, heads = 3;
                    int[] pos = {0, 1, 2, 7, 500, 4095};
                    Pair x = pair(gpu, random(r, rows * heads * headDim), rows, heads * headDim);
                    gpu.rotary(x.gpu, heads, headDim, pos, rope);
                    REF.rotary(x.ref, heads, headDim, pos, rope);
                    assertClose(gpu, x, 1e-6, "rotary " + layout + " " + rot + " of " + headDim);
                }
            }
        }
    }

    @Test
    void attentionEveryLayoutWithAndWithoutPattern() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(6);
        int[][] heads = {{4, 4, 16}, {8, 2, 64}, {6, 1, 40}, {2, 2, 300}};
        for (int[] hcfg : heads) {
            int nHeads = hcfg[0], nKv = hcfg[1], hd = hcfg[2];
            AttentionSpec base = AttentionSpec.causal(nHeads, nKv, hd);
            AttentionSpec[] specs = {base, base.withWindow(3), base.withSoftcap(2.5f), base.withScale(0.07f).withWindow(40),
                    new AttentionSpec(nHeads, nKv, hd, base.scale(), false, 0, 0f)};
            for (AttentionSpec spec : specs) {
                // Three sequences; the second continues 5 cached keys; the third is long enough for several tiles.
                int[] qLen = {7, 3, 70}, past = {0, 5, 0};
                if (!spec.causal()) past = new int[]{0, 0, 0};
                int[] qOff = new int[3], kOff = new int[3], kLen = new int[3];
                int rows = 0, kRows = 0, patternSize = 0;
                for (int s = 0; s < 3; s++) {
                    qOff[s] = rows;
                    kOff[s] = kRows;
                    kLen[s] = past[s] + qLen[s];
                    rows += qLen[s];
                    kRows += kLen[s];
                    patternSize += nHeads * qLen[s] * kLen[s];
                }
                AttentionLayout layout = new AttentionLayout(qOff, qLen, kOff, kLen);
                Pair q = pair(gpu, random(r, rows * nHeads * hd), rows, nHeads * hd);
                Pair k = pair(gpu, random(r, kRows * nKv * hd), kRows, nKv * hd);
                Pair v = pair(gpu, random(r, kRows * nKv * hd), kRows, nKv * hd);
                String what = nHeads + "/" + nKv + " heads of " + hd + ", " + spec;
                for (boolean withPattern : new boolean[]{false, true}) {
                    Pair out = zeros(gpu, rows, nHeads * hd);
                    Pair pattern = withPattern ? zeros(gpu, 1, patternSize) : null;
                    gpu.attention(q.gpu, k.gpu, v.gpu, out.gpu, layout, spec, pattern == null ? null : pattern.gpu);
                    REF.attention(q.ref, k.ref, v.ref, out.ref, layout, spec, pattern == null ? null : pattern.ref);
                    assertClose(gpu, out, 1e-5, what + (withPattern ? " (pattern kernel)" : " (online kernel)"));
                    if (pattern != null) assertClose(gpu, pattern, 1e-6, what + " pattern");
                }
            }
        }
    }

    @Test
    void elementwise() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.FP32);
        Random r = new Random(7);
        int rows = 17, cols = 301;
        float[] x = random(r, rows * cols), y = random(r, rows * cols);
        for (int i = 0; i < x.length; i++) x[i] *= 4;
        for (Activation act : Activation.values()) {
            Pair a = pair(gpu, x, rows, cols);
            gpu.activate(a.gpu, act);
            REF.activate(a.ref, act);
            assertClose(gpu, a, 5e-6, "activate " + act);
            Pair gate = pair(gpu, x, rows, cols), up = pair(gpu, y, rows, cols);
            gpu.gatedActivate(gate.gpu, up.gpu, act);
            REF.gatedActivate(gate.ref, up.ref, act);
            assertClose(gpu, gate, 5e-6, "gatedActivate " + act);
        }
        Pair out = pair(gpu, x, rows, cols), other = pair(gpu, y, rows, cols);
        gpu.add(out.gpu, other.gpu);
        REF.add(out.ref, other.ref);
        assertClose(gpu, out, 0, "add");
        Pair capped = pair(gpu, x, rows, cols);
        gpu.softcap(capped.gpu, 3f);
        REF.softcap(capped.ref, 3f);
        assertClose(gpu, capped, 1e-6, "softcap");
    }

    @Test
    void bf16ProductsStayClose() {
        Backend gpu = CudaTestSupport.backend(ComputeMode.BF16);
        Random r = new Random(8);
        int m = 9, k = 256, n = 70;
        for (DType dtype : new DType[]{DType.F32, DType.F16, DType.BF16}) {
            WeightMatrix w = weight("w", dtype, random(r, n * k), n, k);
            Pair x = pair(gpu, random(r, m * k), m, k), out = zeros(gpu, m, n);
            float[] bias = random(r, n);
            gpu.matmul(x.gpu, w, bias, out.gpu);
            REF.matmul(x.ref, w, bias, out.ref);
            float[] got = gpu.toHost(out.gpu, m, n).data(), want = REF.toHost(out.ref, m, n).data();
            double cos = CudaModelsTest.cosine(got, want);
            assertTrue(cos >= 0.999, "bf16 matmul of " + dtype + " weights: cosine " + cos);
        }
    }
}
