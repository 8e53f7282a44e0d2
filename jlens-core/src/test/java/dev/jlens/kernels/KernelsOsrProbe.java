package dev.jlens.kernels;

import dev.jlens.io.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Child-JVM main of {@link KernelsCompileTest}: runs every product path of {@link Gemm} once with one K block
 * of {@code args[0]} steps, so each kernel's loop runs long enough in one call for the JIT to compile it for
 * on-stack replacement. Prints "probe done" at the end.
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
        System.out.println("probe done");
        System.exit(0);
    }
}
