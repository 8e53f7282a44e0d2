package dev.jlens.bench;

import dev.jlens.kernels.FmaPeak;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * The float32 FMA peak on all cores (register-only Vector API loop), the denominator of the GEMM
 * efficiency: the score is GFLOP/s, not time.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class PeakBenchmark {

    @Benchmark
    public double fmaPeakGflops() {
        double g = FmaPeak.measureGflops(Runtime.getRuntime().availableProcessors(), 300);
        System.out.printf(" [%.1f GFLOP/s]", g);
        return g;
    }
}
