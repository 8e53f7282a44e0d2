package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.cuda.ComputeMode;
import dev.jlens.cuda.CudaBackend;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --device on a machine without a usable GPU: cuda is a clear error, auto runs on the CPU and says so. */
class DeviceOptionTest {

    private static String model() {
        return CliTestSupport.fixtures().resolve("stories260k").toString();
    }

    private static void assumeNoGpu() {
        try {
            CudaBackend.open(ComputeMode.FP32);
            Assumptions.abort("a GPU is usable here");
        } catch (JlensException e) {
            // expected without a GPU
        }
    }

    @Test
    void cudaWithoutAGpuIsAClearError() {
        assumeNoGpu();
        CliTestSupport.Result r = CliTestSupport.run("inspect", "--model", model(), "--device", "cuda");
        assertEquals(1, r.exitCode(), "stderr: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertTrue(r.err().contains("CUDA") && r.err().contains("libcuda"), r.err());
    }

    @Test
    void autoWithoutAGpuRunsOnTheCpuAndSaysSo() {
        assumeNoGpu();
        CliTestSupport.Result r = CliTestSupport.run("inspect", "--model", model(), "--device", "auto");
        assertEquals(0, r.exitCode(), "stderr: " + r.err());
        assertTrue(r.err().contains("--device auto: using the CPU"), r.err());
    }

    @Test
    void anUnknownDeviceIsRefused() {
        CliTestSupport.Result r = CliTestSupport.run("inspect", "--model", model(), "--device", "tpu");
        assertNotEquals(0, r.exitCode());
        assertTrue(r.err().contains("cpu, cuda or auto"), r.err());
    }

    @Test
    void everyModelCommandTakesTheOption() {
        for (String cmd : new String[]{"inspect", "cache", "analyze", "direction", "steer", "generate", "probe", "orthogonalize",
                "detect", "serve"}) {
            CliTestSupport.Result r = CliTestSupport.run(cmd, "--help");
            assertTrue(r.out().contains("--device") && r.out().contains("--compute"), cmd + " --help: " + r.out());
        }
    }
}
