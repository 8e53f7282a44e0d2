package dev.jlens.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The library search on a made-up file system: order of the places, sonames, and what a miss reports. */
class CudaLibrariesTest {

    @TempDir
    Path root;

    private Path touch(String rel) throws IOException {
        Path p = root.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.writeString(p, "not a real library");
        return p;
    }

    @Test
    void findsEachLibraryWhereInstallationsPutThem() throws IOException {
        Path driver = touch("drivers/libcuda.so.1");
        touch("usr/local/cuda-12.4/lib64/libnvrtc.so.12");
        Path nvrtc13 = touch("usr/local/cuda-13.0/lib64/libnvrtc.so.13");
        Path cublas = touch("usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublas.so.13");
        Path lt = touch("usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib/libcublasLt.so.13");
        CudaLibraries libs = CudaLibraries.discover(Map.of("LD_LIBRARY_PATH", root.resolve("drivers").toString()), root, false);

        assertEquals(driver, libs.find(CudaLibraries.DRIVER).orElseThrow().path());
        CudaLibraries.Found n = libs.find(CudaLibraries.NVRTC).orElseThrow();
        assertEquals(nvrtc13, n.path(), "the newer soname first");
        CudaLibraries.Found c = libs.find(CudaLibraries.CUBLAS).orElseThrow();
        assertEquals(cublas, c.path());
        assertEquals("libcublas.so.13", c.soname());
        assertEquals(lt, CudaLibraries.sibling(c, "libcublasLt.so.13").orElseThrow());
        // LD_LIBRARY_PATH before /usr/local/cuda*, newest CUDA folder before older ones.
        List<Path> f = libs.folders();
        assertTrue(f.indexOf(root.resolve("drivers")) < f.indexOf(root.resolve("usr/local/cuda-13.0/lib64")));
        assertTrue(f.indexOf(root.resolve("usr/local/cuda-13.0/lib64")) < f.indexOf(root.resolve("usr/local/cuda-12.4/lib64")));
    }

    @Test
    void jlensCudaLibsComesFirst() throws IOException {
        Path mine = touch("mine/libnvrtc.so.12");
        touch("usr/local/cuda/lib64/libnvrtc.so.12");
        CudaLibraries libs = CudaLibraries.discover(Map.of("JLENS_CUDA_LIBS", root.resolve("mine").toString()), root, false);
        assertEquals(mine, libs.find(CudaLibraries.NVRTC).orElseThrow().path());
    }

    @Test
    void aMissReportsTheNamesAndFoldersSearched() throws IOException {
        Files.createDirectories(root.resolve("usr/local/cuda/lib64"));
        CudaLibraries libs = CudaLibraries.discover(Map.of(), root, false);
        assertTrue(libs.find(CudaLibraries.DRIVER).isEmpty());
        String msg = libs.describeSearch(CudaLibraries.DRIVER);
        assertTrue(msg.contains("libcuda.so.1"), msg);
        assertTrue(msg.contains(root.resolve("usr/local/cuda/lib64").toString()), msg);
        assertTrue(msg.contains("ldconfig -p gave nothing"), msg);
    }

    @Test
    void readsLdconfigListing() {
        Map<String, Path> m = CudaLibraries.parseLdconfig(List.of(
                "1234 libs found in cache `/etc/ld.so.cache'",
                "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1",
                "\tlibcuda.so.1 (libc6) => /usr/lib/i386-linux-gnu/libcuda.so.1",
                "\tlibcublas.so.12 (libc6,x86-64) => /usr/local/cuda-12.8/targets/x86_64-linux/lib/libcublas.so.12"));
        assertEquals(Path.of("/usr/lib/x86_64-linux-gnu/libcuda.so.1"), m.get("libcuda.so.1"));
        assertEquals(2, m.size());
    }

    @Test
    void kernelCacheKeyChangesWithEverythingThatShapesTheCubin() {
        String k = KernelModule.cacheKey("src", "sm_90", 13000, 13000);
        assertTrue(k.contains("sm_90") && k.contains("nvrtc13000") && k.contains("driver13000"), k);
        assertTrue(!k.equals(KernelModule.cacheKey("src2", "sm_90", 13000, 13000)));
        assertTrue(!k.equals(KernelModule.cacheKey("src", "sm_80", 13000, 13000)));
        assertTrue(!k.equals(KernelModule.cacheKey("src", "sm_90", 13000, 12080)));
    }

    @Test
    void kernelSourceIsAResource() {
        String src = KernelModule.source();
        for (String k : List.of("layer_norm", "rms_norm", "rotary", "attention_online", "attention_pattern", "gather_rows",
                "gated_activate", "copy_columns", "norm_stats", "softcap", "to_bf16", "widen", "fill_bias")) {
            assertTrue(src.contains("void " + k + "("), "kernels.cu lacks " + k);
        }
    }
}
