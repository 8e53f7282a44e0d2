package dev.jlens.bench;

import dev.jlens.io.DType;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.WeightMatrix;
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

import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * Products of one input, one after another ({@code separate}: three or two {@link Backend#matmul} calls) or in
 * one pass ({@code shared}: {@link Backend#matmuls}), at Llama-3.2-1B shapes: q, k, v (2048, 512 and 512 outputs
 * from 2048) and gate, up (8192 each from 2048). The score is passes per second; compare the two modes in one run.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class SharedInputBenchmark {

    @Param({"qkv", "gateUp"})
    public String products;

    @Param({"1", "32"})
    public int tokens;

    @Param({"BF16"})
    public String dtype;

    private Backend kernels;
    private DeviceTensor x;
    private WeightMatrix[] ws;
    private float[][] biases;
    private DeviceTensor[] outs;

    @Setup(Level.Trial)
    public void setUp() {
        int k = 2048;
        int[] rows = products.equals("qkv") ? new int[]{2048, 512, 512} : new int[]{8192, 8192};
        DType dt = DType.valueOf(dtype);
        kernels = Backend.defaults();
        Random r = new Random(1);
        ws = new WeightMatrix[rows.length];
        biases = new float[rows.length][];
        outs = new DeviceTensor[rows.length];
        for (int i = 0; i < rows.length; i++) {
            ws[i] = GemmBenchmark.randomWeights(r, dt, rows[i], k);
            kernels.prepare(ws[i]);
            outs[i] = kernels.allocate(tokens, rows[i]);
        }
        float[] xs = new float[tokens * k];
        for (int i = 0; i < xs.length; i++) xs[i] = (float) r.nextGaussian();
        x = kernels.upload(xs, tokens, k);
    }

    @Benchmark
    public DeviceTensor[] separate() {
        for (int i = 0; i < ws.length; i++) kernels.matmul(x, ws[i], biases[i], outs[i]);
        return outs;
    }

    @Benchmark
    public DeviceTensor[] shared() {
        kernels.matmuls(x, ws, biases, outs);
        return outs;
    }
}
