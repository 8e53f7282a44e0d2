package dev.jlens.kernels;

import dev.jlens.io.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Child-JVM main of {@link KernelsCompileTest}: runs every product path of {@link Gemm} once with one K block
 * of {@code args[0]} steps, and the CPU backend's other kernels on rows as long, so each kernel's loop runs long
 * enough in one call for the JIT to compile it for on-stack replacement. Prints "probe done" at the end.
 */
final class KernelsOsrProbe {

    private KernelsOsrProbe() {
    }

    public static void main(String[] args) {
        int k = Integer.parseInt(args[0]);
        WorkerPool pool = new WorkerPool(1);
        Random r = new Random(1);
        for (DType dt : new DType[]{DType.F16, DType.BF16, DType.F32}) {
            // 4 panels: one sweep of the one-row kernel
            int n = 4 * Gemm.NR;
            MemorySegment seg = Arena.ofAuto().allocate((long) n * k * dt.bytes(), 64);
            for (long i = 0; i < (long) n * k; i++) {
                float v = (float) (r.nextGaussian() * 0.02);
                switch (dt) {
                    case F16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, Float.floatToFloat16(v));
                    case BF16 -> seg.set(ValueLayout.JAVA_SHORT_UNALIGNED, 2 * i, (short) (Float.floatToRawIntBits(v) >>> 16));
                    default -> seg.set(ValueLayout.JAVA_FLOAT_UNALIGNED, 4 * i, v);
                }
            }
            PackedWeights w = PackedWeights.pack(WeightMatrix.of("probe", dt, seg, n, k), pool);
            // one row (both loops), a small batch, 8-row tiles (both kernels), 12-row tiles
            for (int m : new int[]{1, 4, 32, 48}) {
                float[] x = new float[m * k], out = new float[m * n];
                for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                for (boolean fast : new boolean[]{true, false}) {
                    new Gemm(pool, k, fast, fast).multiply(x, m, w, null, out);
                }
            }
        }
        backendOps(k, r);
        System.out.println("probe done");
        System.exit(0);
    }

    /**
     * The CPU backend's element-wise, norm, rotary and attention kernels, each call over k elements per row
     * (one query against k keys for attention), so their loops also reach on-stack replacement in one call.
     */
    private static void backendOps(int k, Random r) {
        Backend cpu = Backend.cpu(1);
        int rows = 2;
        float[] data = new float[rows * k];
        for (int i = 0; i < data.length; i++) data[i] = (float) r.nextGaussian();
        float[] gamma = new float[k], beta = new float[k];
        java.util.Arrays.fill(gamma, 1f);
        DeviceTensor x = cpu.upload(data, rows, k), out = cpu.allocate(rows, k), other = cpu.upload(data.clone(), rows, k);
        cpu.layerNorm(x, out, gamma, beta, 1e-5f);
        cpu.rmsNorm(x, out, gamma, 1e-6f, false);
        cpu.rmsNorm(x, out, gamma, 1e-6f, true);
        for (Activation act : Activation.values()) {
            cpu.activate(cpu.upload(data.clone(), rows, k), act);
            cpu.gatedActivate(cpu.upload(data.clone(), rows, k), cpu.upload(data.clone(), rows, k), act);
        }
        cpu.add(out, other);
        cpu.softcap(out, 30f);
        // rotary over k / 2 positions of two 64-dim heads: the loop over positions needs that many to reach OSR
        int headDim = 64, positions = k / 2;
        int[] pos = new int[positions];
        for (int i = 0; i < positions; i++) pos[i] = i;
        float[] rotated = new float[positions * headDim * rows];
        for (int i = 0; i < rotated.length; i++) rotated[i] = data[i % data.length];
        cpu.rotary(cpu.upload(rotated, positions, headDim * rows), rows, headDim, pos, RotaryEmbedding.halfSplit(headDim, 10000));
        // one new query of 2 heads against k / 2 cached keys (decode), and a short causal prefill
        int keys = k / 2, width = rows * headDim;
        float[] kv = new float[keys * width];
        for (int i = 0; i < kv.length; i++) kv[i] = (float) r.nextGaussian();
        DeviceTensor kt = cpu.upload(kv, keys, width), vt = cpu.upload(kv.clone(), keys, width);
        AttentionSpec spec = AttentionSpec.causal(rows, rows, headDim);
        DeviceTensor q1 = cpu.upload(java.util.Arrays.copyOf(data, width), 1, width), o1 = cpu.allocate(1, width);
        cpu.attention(q1, kt, vt, o1, new AttentionLayout(new int[]{0}, new int[]{1}, new int[]{0}, new int[]{keys}), spec, null);
        int n = 64;
        DeviceTensor qn = cpu.upload(java.util.Arrays.copyOf(kv, n * width), n, width), on = cpu.allocate(n, width);
        cpu.attention(qn, kt, vt, on, AttentionLayout.selfAttention(new int[]{0}, new int[]{n}), spec, null);
    }
}
