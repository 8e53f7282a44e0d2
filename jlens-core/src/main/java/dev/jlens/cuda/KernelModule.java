package dev.jlens.cuda;

import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The kernels of {@code kernels.cu} (a resource) as a loaded CUDA module. NVRTC compiles them for the device's
 * architecture on first use; the cubin is kept on disk under {@link #cacheDir} in a file named by the source's
 * hash, the compile options, the NVRTC and driver versions and the architecture, so a later process loads it
 * in milliseconds and any change to one of those compiles afresh.
 */
final class KernelModule {

    static final String SOURCE = "kernels.cu";
    /** --fmad=false: no contraction of a*b+c, so that float rounding follows the Java reference. */
    static final List<String> OPTIONS = List.of("--fmad=false");

    private final Driver driver;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new ConcurrentHashMap<>();
    final boolean fromCache;
    final Path cubinFile;

    private KernelModule(Driver driver, MemorySegment module, boolean fromCache, Path cubinFile) {
        this.driver = driver;
        this.module = module;
        this.fromCache = fromCache;
        this.cubinFile = cubinFile;
    }

    static String source() {
        try (InputStream in = KernelModule.class.getResourceAsStream(SOURCE)) {
            if (in == null) throw new JlensException("jlens jar is missing the resource dev/jlens/cuda/" + SOURCE);
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new JlensException("cannot read dev/jlens/cuda/" + SOURCE + ": " + e.getMessage(), e);
        }
    }

    /** $JLENS_CUDA_CACHE, else $XDG_CACHE_HOME/jlens/cuda, else ~/.cache/jlens/cuda. */
    static Path cacheDir(Map<String, String> env) {
        if (env.get("JLENS_CUDA_CACHE") != null) return Path.of(env.get("JLENS_CUDA_CACHE"));
        if (env.get("XDG_CACHE_HOME") != null) return Path.of(env.get("XDG_CACHE_HOME"), "jlens", "cuda");
        return Path.of(System.getProperty("user.home"), ".cache", "jlens", "cuda");
    }

    /** The cache file's name: everything that decides the cubin's bytes. */
    static String cacheKey(String source, String arch, int nvrtcVersion, int driverVersion) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(source.getBytes(StandardCharsets.UTF_8));
            md.update(String.join(" ", OPTIONS).getBytes(StandardCharsets.UTF_8));
            String hash = HexFormat.of().formatHex(md.digest()).substring(0, 16);
            return "kernels-" + hash + "-" + arch + "-nvrtc" + nvrtcVersion + "-driver" + driverVersion + ".cubin";
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static KernelModule load(Driver driver, Nvrtc nvrtc, String arch, int driverVersion, Path cacheDir) {
        String source = source();
        int nvrtcVersion = nvrtc.version();
        Path file = cacheDir.resolve(cacheKey(source, arch, nvrtcVersion, driverVersion));
        byte[] cubin = null;
        boolean cached = false;
        if (Files.isRegularFile(file)) {
            try {
                cubin = Files.readAllBytes(file);
                cached = true;
            } catch (IOException e) {
                cubin = null;
            }
        }
        if (cubin == null) {
            cubin = nvrtc.compile(source, SOURCE, arch, OPTIONS);
            try {
                Files.createDirectories(cacheDir);
                byte[] bytes = cubin;
                AtomicFiles.write(file, out -> out.write(bytes));
            } catch (IOException | JlensException e) {
                // A read-only home only costs a compile per process; the kernels themselves are fine.
                System.err.println("jlens: could not cache CUDA kernels in " + file + " (" + e.getMessage() + ")");
            }
        }
        MemorySegment[] module = new MemorySegment[1];
        int r;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment image = a.allocate(cubin.length + 1L);
            MemorySegment.copy(cubin, 0, image, ValueLayout.JAVA_BYTE, 0, cubin.length);
            r = driver.loadModule(image, module);
        }
        if (r != Driver.CUDA_SUCCESS) {
            throw new JlensException("the CUDA driver (" + driver.lib.path + ", version " + CudaBackend.version(driverVersion)
                    + ") cannot load the kernels NVRTC " + CudaBackend.version(nvrtcVersion) + " (" + nvrtc.lib.path + ") compiled for "
                    + arch + ": " + driver.describe(r) + (cached ? " (cached cubin " + file + ")" : "")
                    + ". An NVRTC newer than the driver makes code the driver cannot load: update the NVIDIA driver, or put an "
                    + "NVRTC no newer than CUDA " + CudaBackend.version(driverVersion) + " first in JLENS_CUDA_LIBS");
        }
        return new KernelModule(driver, module[0], cached, file);
    }

    MemorySegment function(String name) {
        return functions.computeIfAbsent(name, n -> driver.function(module, n));
    }
}
