package dev.jlens.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * kernels.cu through NVRTC, which needs no GPU: every kernel compiles for Turing, Ampere and Hopper. Runs where
 * NVRTC is found (a CUDA toolkit, the nvidia-cuda-nvrtc wheel, or a folder in JLENS_CUDA_LIBS), else skips.
 */
class NvrtcCompileTest {

    static final List<String> KERNELS = List.of("widen", "to_bf16", "fill_bias", "copy_columns", "gather_rows", "layer_norm",
            "rms_norm", "norm_stats", "rotary", "attention_pattern", "attention_online", "activate", "gated_activate", "add",
            "softcap");

    @Test
    void everyKernelCompilesForEachArchitecture() {
        CudaLibraries libs = CudaLibraries.discover();
        Nvrtc nvrtc = Nvrtc.find(libs);
        if (nvrtc == null) {
            if (CudaTestSupport.required()) throw new AssertionError("no NVRTC: " + libs.describeSearch(CudaLibraries.NVRTC));
            Assumptions.abort("no NVRTC here: " + libs.describeSearch(CudaLibraries.NVRTC));
        }
        System.out.println("NVRTC " + CudaBackend.version(nvrtc.version()) + " at " + nvrtc.lib.path);
        for (String arch : List.of("sm_75", "sm_80", "sm_90")) {
            byte[] cubin = nvrtc.compile(KernelModule.source(), KernelModule.SOURCE, arch, KernelModule.OPTIONS);
            String text = new String(cubin, StandardCharsets.ISO_8859_1);
            assertTrue(text.startsWith("\u007fELF"), arch + ": NVRTC did not return an ELF cubin");
            for (String k : KERNELS) assertTrue(text.contains(k + "\0"), arch + ": the cubin has no kernel " + k);
        }
    }
}
