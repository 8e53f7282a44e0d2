package dev.jlens.cuda;

import dev.jlens.JlensException;
import dev.jlens.kernels.Backend;
import org.junit.jupiter.api.Assumptions;

import java.util.EnumMap;
import java.util.Map;

/**
 * The backend the GPU tests run on. Without a usable GPU they are skipped, with the reason the CUDA backend
 * gave (what it searched and found), unless {@code -Djlens.cuda.required=true} (the device check sets it), in
 * which case they fail. {@code -Djlens.test.backend=cpu} runs the same tests on the CPU backend instead: the
 * device check's harness is exercised on a machine without a GPU (fp32 only; bf16 tests skip).
 */
final class CudaTestSupport {

    private static final Map<ComputeMode, Object> OPENED = new EnumMap<>(ComputeMode.class);

    private CudaTestSupport() {
    }

    static boolean required() {
        return Boolean.getBoolean("jlens.cuda.required");
    }

    static boolean cpuStandIn() {
        return "cpu".equals(System.getProperty("jlens.test.backend"));
    }

    /** The CUDA backend in this mode (one per mode per JVM), or the test is skipped/failed as above. */
    static synchronized Backend backend(ComputeMode mode) {
        if (cpuStandIn()) {
            Assumptions.assumeTrue(mode == ComputeMode.FP32, "the CPU stand-in (-Djlens.test.backend=cpu) computes in fp32 only");
            return Backend.cpu(2);
        }
        Object o = OPENED.computeIfAbsent(mode, m -> {
            try {
                CudaBackend b = CudaBackend.open(m);
                System.out.println("cuda: " + b.info().describe());
                return b;
            } catch (JlensException | UnsatisfiedLinkError e) {
                return e.getMessage();
            }
        });
        if (o instanceof Backend b) return b;
        String why = "no usable CUDA GPU: " + o;
        if (required()) throw new AssertionError("-Djlens.cuda.required=true but " + why);
        Assumptions.abort(why);
        return null;
    }

    /** Whether a GPU is usable here (without skipping). */
    static synchronized boolean available() {
        try {
            backend(ComputeMode.FP32);
            return !cpuStandIn();
        } catch (org.opentest4j.TestAbortedException e) {
            return false;
        }
    }
}
