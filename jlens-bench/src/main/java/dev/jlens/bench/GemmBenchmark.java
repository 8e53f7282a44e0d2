package dev.jlens.bench;

import dev.jlens.io.DType;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.WeightMatrix;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The packed GEMM at Pythia-1.4B shapes: attention dense (2048×2048, M = 512 tokens = a 16×32 batch), the
 * MLP up and down projections (8192×2048 and 2048×8192), and generation-sized M. The score is products per
 * second; the {@code matmul:flop} counter is FLOP/s (2·M·N·K per product): compare it with
 * {@link PeakBenchmark} on the same machine.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class GemmBenchmark {

    /** out features x in features x tokens */
    @Param({"2048x2048x512", "8192x2048x512", "2048x8192x512", "2048x2048x1", "8192x2048x4"})
    public String shape;

    @Param({"F16", "F32"})
    public String dtype;

    @Param({"0"})
    public int threads;

    private Backend kernels;
    private DeviceTensor xt, outT;
    private WeightMatrix w;
    private float[] x, bias, out;
    private int m;
    private long flopPerCall;

    @Setup(Level.Trial)
    public void setUp() {
        String[] p = shape.split("x");
        int n = Integer.parseInt(p[0]), k = Integer.parseInt(p[1]);
        m = Integer.parseInt(p[2]);
        DType dt = DType.valueOf(dtype);
        kernels = threads > 0 ? Backend.cpu(threads) : Backend.defaults();
        Random r = new Random(1);
        w = randomWeights(r, dt, n, k);
        kernels.prepare(w);
        x = new float[m * k];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        bias = new float[n];
        out = new float[m * n];
        xt = kernels.upload(x, m, x.length / m);
        outT = kernels.upload(out, m, n);
        flopPerCall = 2L * m * n * k;
    }

    /** An [n, k] matrix of N(0, 0.02²) weights in the given type. */
    static WeightMatrix randomWeights(Random r, DType dt, int n, int k) {
        MemorySegment seg = MemorySegment.ofArray(new byte[n * k * dt.bytes()]);
        ValueLayout.OfShort i16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < (long) n * k; i++) {
            float v = (float) r.nextGaussian() * 0.02f;
            if (dt == DType.F32) seg.set(f32, i * 4, v);
            else seg.set(i16, i * 2, dt == DType.F16 ? Float.floatToFloat16(v) : (short) (Float.floatToRawIntBits(v) >>> 16));
        }
        return WeightMatrix.of("bench", dt, seg, n, k);
    }

    /** Counts FLOP per second alongside the time per product. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Flops {
        public long flop;
    }

    @Benchmark
    public float[] matmul(Flops counter) {
        kernels.matmul(xt, w, bias, outT);
        counter.flop += flopPerCall;
        return out;
    }
}
