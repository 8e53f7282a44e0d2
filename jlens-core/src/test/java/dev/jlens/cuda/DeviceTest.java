package dev.jlens.cuda;

import dev.jlens.JlensException;
import dev.jlens.kernels.Backend;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** --device's choice where no GPU is usable (this test's own machine without one; skipped on a GPU machine). */
class DeviceTest {

    @Test
    void parsesNames() {
        assertEquals(Device.CUDA, Device.parse("CUDA"));
        assertEquals(Device.AUTO, Device.parse(" auto "));
        assertEquals(ComputeMode.BF16, ComputeMode.parse("bf16"));
        JlensException e = assertThrows(JlensException.class, () -> Device.parse("tpu"));
        assertTrue(e.getMessage().contains("cpu, cuda or auto"), e.getMessage());
        assertThrows(JlensException.class, () -> ComputeMode.parse("fp8"));
    }

    @Test
    void cudaWithoutAGpuFailsSayingWhatWasSearched() {
        Assumptions.assumeFalse(CudaTestSupport.available(), "a GPU is usable here");
        JlensException e = assertThrows(JlensException.class, () -> Device.CUDA.backend(ComputeMode.FP32, s -> { }));
        assertTrue(e.getMessage().contains("CUDA") || e.getMessage().contains("GPU"), e.getMessage());
    }

    @Test
    void autoWithoutAGpuUsesTheCpuAndSaysSo() {
        Assumptions.assumeFalse(CudaTestSupport.available(), "a GPU is usable here");
        List<String> notes = new ArrayList<>();
        Backend b = Device.AUTO.backend(ComputeMode.FP32, notes::add);
        assertSame(Backend.defaults(), b);
        assertEquals(1, notes.size());
        assertTrue(notes.getFirst().contains("using the CPU") && notes.getFirst().contains("no usable GPU"), notes.getFirst());
    }

    @Test
    void cpuRefusesBf16() {
        JlensException e = assertThrows(JlensException.class, () -> Device.CPU.backend(ComputeMode.BF16, s -> { }));
        assertTrue(e.getMessage().contains("--compute bf16"), e.getMessage());
    }

    @Test
    void noDriverNamesTheSearch(@TempDir Path root) throws IOException {
        Files.createDirectories(root.resolve("usr/local/cuda/lib64"));
        CudaLibraries libs = CudaLibraries.discover(Map.of(), root, false);
        JlensException e = assertThrows(JlensException.class, () -> CudaBackend.open(ComputeMode.FP32, libs, Map.of()));
        assertTrue(e.getMessage().startsWith("no CUDA driver"), e.getMessage());
        assertTrue(e.getMessage().contains("libcuda.so.1") && e.getMessage().contains(root.resolve("usr/local/cuda/lib64").toString()),
                e.getMessage());
    }

    @Test
    void aBrokenDriverFileIsAClearError(@TempDir Path root) throws IOException {
        Path fake = root.resolve("lib/libcuda.so.1");
        Files.createDirectories(fake.getParent());
        Files.writeString(fake, "this is not an ELF file");
        CudaLibraries libs = CudaLibraries.discover(Map.of("JLENS_CUDA_LIBS", fake.getParent().toString()), root, false);
        JlensException e = assertThrows(JlensException.class, () -> CudaBackend.open(ComputeMode.FP32, libs, Map.of()));
        assertTrue(e.getMessage().contains(fake.toString()) && e.getMessage().contains("could not be loaded"), e.getMessage());
    }
}
