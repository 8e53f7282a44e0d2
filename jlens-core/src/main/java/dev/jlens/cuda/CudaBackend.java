package dev.jlens.cuda;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.RotaryEmbedding;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.tensor.FloatTensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The {@link Backend} on an NVIDIA GPU: activations live in device memory, weights are uploaded once (on
 * {@link #prepare} or first use) in their stored type, the products run in cuBLAS and everything else in the
 * CUDA C kernels of {@code kernels.cu}, compiled by NVRTC for the device. A tensor reaches the host only
 * through {@link #toHost} (a hook), so an unhooked forward pass copies nothing back but its logits.
 *
 * <p>Every call runs on the legacy default stream, so each operation sees the results of the previous one and
 * a copy to the host waits for them. Operations are serialised by a lock, like the CPU backend's. Device
 * memory of a tensor that became unreachable goes back to a pool of free blocks by size (via a Cleaner, then
 * reused by the next allocation of that size) and to the driver when an allocation would otherwise fail.
 */
public final class CudaBackend implements Backend {

    private static final Cleaner CLEANER = Cleaner.create();
    private static final int DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2;
    private static final int THREADS = 256;

    /** What was found and opened, for logs and the device check. */
    public record Info(String device, String arch, long memoryBytes, int driverVersion, int nvrtcVersion, int cublasVersion,
                       String driverLib, String nvrtcLib, String cublasLib, boolean kernelsFromCache, String kernelCache) {
        public String describe() {
            return device + " (" + arch + ", " + (memoryBytes >> 20) + " MiB), driver API " + version(driverVersion)
                    + ", NVRTC " + version(nvrtcVersion) + ", cuBLAS " + cublasVersion + "; libraries " + driverLib + ", "
                    + nvrtcLib + ", " + cublasLib + "; kernels " + (kernelsFromCache ? "from cache " : "compiled into ") + kernelCache;
        }
    }

    private final Driver driver;
    private final Cublas cublas;
    private final KernelModule kernels;
    private final MemorySegment context;
    private final ComputeMode mode;
    private final Info info;
    private final ReentrantLock lock = new ReentrantLock();
    private final ThreadLocal<Boolean> contextSet = ThreadLocal.withInitial(() -> false);

    /** Freed blocks by size, reused before asking the driver. Guarded by {@link #lock}. */
    private final Map<Long, ArrayDeque<Long>> pool = new HashMap<>();
    /** Blocks whose tensors became unreachable (filled by the Cleaner thread, drained under the lock). */
    private final ConcurrentLinkedQueue<long[]> released = new ConcurrentLinkedQueue<>();
    /** Device copies of weights, norm vectors and biases, by identity (none of the keys overrides equals). */
    private final Map<WeightMatrix, DeviceWeight> weights = new WeakHashMap<>();
    private final Map<float[], Memory> vectors = new WeakHashMap<>();
    private Memory scratchA, scratchB;

    /** One block of device memory; its release returns it to the pool once no tensor refers to it. */
    static final class Memory {
        final long ptr;
        final long bytes;

        Memory(long ptr, long bytes) {
            this.ptr = ptr;
            this.bytes = bytes;
        }
    }

    private record Release(ConcurrentLinkedQueue<long[]> queue, long ptr, long bytes) implements Runnable {
        @Override
        public void run() {
            queue.add(new long[]{ptr, bytes});
        }
    }

    /** A weight on the device: its memory and element type there. */
    private record DeviceWeight(Memory memory, int dtype) {
    }

    /** The CUDA backend's tensor: a float32 [rows, cols] block from {@code ptr} inside {@code memory}. */
    static final class CudaTensor implements DeviceTensor {
        final Memory memory;
        final long ptr;
        private final int rows, cols;

        CudaTensor(Memory memory, long ptr, int rows, int cols) {
            this.memory = memory;
            this.ptr = ptr;
            this.rows = rows;
            this.cols = cols;
        }

        @Override
        public int rows() {
            return rows;
        }

        @Override
        public int cols() {
            return cols;
        }

        @Override
        public DeviceTensor view(int r, int c) {
            if ((long) r * c != (long) rows * cols) {
                throw new IllegalArgumentException("cannot view [" + rows + ", " + cols + "] as [" + r + ", " + c + "]");
            }
            return new CudaTensor(memory, ptr, r, c);
        }

        @Override
        public String toString() {
            return "CudaTensor[" + rows + ", " + cols + "]";
        }
    }

    private CudaBackend(Driver driver, Cublas cublas, KernelModule kernels, MemorySegment context, ComputeMode mode, Info info) {
        this.driver = driver;
        this.cublas = cublas;
        this.kernels = kernels;
        this.context = context;
        this.mode = mode;
        this.info = info;
        contextSet.set(true);
    }

    /** "12.8" for 12080. */
    static String version(int v) {
        return (v / 1000) + "." + (v % 1000) / 10;
    }

    /**
     * Opens GPU 0 (or $JLENS_CUDA_DEVICE) with the libraries {@link CudaLibraries#discover()} finds. Every way
     * this can fail (no driver, no GPU, a library missing or too old, a kernel that does not compile) is a
     * JlensException saying what was searched and what was found.
     */
    public static CudaBackend open(ComputeMode mode) {
        return open(mode, CudaLibraries.discover(), System.getenv());
    }

    static CudaBackend open(ComputeMode mode, CudaLibraries libs, Map<String, String> env) {
        CudaLibraries.Found driverLib = libs.find(CudaLibraries.DRIVER).orElseThrow(() -> new JlensException(
                "no CUDA driver: " + CudaLibraries.DRIVER.what() + " was not found; " + libs.describeSearch(CudaLibraries.DRIVER)
                        + ". Is an NVIDIA GPU and its driver installed (nvidia-smi)?"));
        Driver driver = new Driver(NativeLib.open(CudaLibraries.DRIVER.what(), driverLib.path()));
        int r = driver.init();
        if (r != Driver.CUDA_SUCCESS) {
            throw new JlensException("the CUDA driver " + driverLib.path() + " found no usable GPU: cuInit failed with "
                    + driver.describe(r) + (r == Driver.CUDA_ERROR_INSUFFICIENT_DRIVER ? " (the kernel module is older than libcuda)" : ""));
        }
        int driverVersion = driver.driverVersion();
        if (driverVersion < Driver.MIN_DRIVER_VERSION) {
            throw new JlensException("the CUDA driver " + driverLib.path() + " supports CUDA " + version(driverVersion)
                    + "; jlens needs CUDA " + version(Driver.MIN_DRIVER_VERSION) + " or newer: update the NVIDIA driver");
        }
        int count = driver.deviceCount();
        if (count == 0) throw new JlensException("the CUDA driver " + driverLib.path() + " (CUDA " + version(driverVersion) + ") sees no GPU");
        int ordinal = 0;
        if (env.get("JLENS_CUDA_DEVICE") != null) {
            try {
                ordinal = Integer.parseInt(env.get("JLENS_CUDA_DEVICE").trim());
            } catch (NumberFormatException e) {
                throw new JlensException("JLENS_CUDA_DEVICE=\"" + env.get("JLENS_CUDA_DEVICE") + "\" is not a GPU number");
            }
            if (ordinal < 0 || ordinal >= count) {
                throw new JlensException("JLENS_CUDA_DEVICE=" + ordinal + " but the driver sees " + count + " GPU(s), numbered from 0");
            }
        }
        int device = driver.device(ordinal);
        int major = driver.attribute(device, Driver.ATTR_COMPUTE_CAPABILITY_MAJOR);
        int minor = driver.attribute(device, Driver.ATTR_COMPUTE_CAPABILITY_MINOR);
        if (major < 7) {
            throw new JlensException(driver.deviceName(device) + " has compute capability " + major + "." + minor
                    + "; jlens' CUDA backend needs 7.0 (Volta) or newer");
        }
        String arch = "sm_" + major + minor;
        MemorySegment ctx = driver.retainPrimaryContext(device);
        driver.setCurrent(ctx);

        Nvrtc nvrtc = Nvrtc.find(libs);
        if (nvrtc == null) {
            throw new JlensException("CUDA driver and GPU found (" + driver.deviceName(device) + ", CUDA " + version(driverVersion)
                    + "), but " + CudaLibraries.NVRTC.what() + " was not: " + libs.describeSearch(CudaLibraries.NVRTC)
                    + ". Install the CUDA toolkit or `pip install nvidia-cuda-nvrtc`, or name its folder in JLENS_CUDA_LIBS");
        }

        CudaLibraries.Found cublasLib = libs.find(CudaLibraries.CUBLAS).orElseThrow(() -> new JlensException(
                "CUDA driver and GPU found (" + driver.deviceName(device) + "), but " + CudaLibraries.CUBLAS.what() + " was not: "
                        + libs.describeSearch(CudaLibraries.CUBLAS)
                        + ". Install the CUDA toolkit or `pip install nvidia-cublas`, or name its folder in JLENS_CUDA_LIBS"));
        // libcublas needs libcublasLt of the same release; without an rpath the loader would not look beside it.
        String lt = "libcublasLt.so." + cublasLib.soname().substring(cublasLib.soname().lastIndexOf(".so") + 3).replaceFirst("^\\.", "");
        CudaLibraries.sibling(cublasLib, lt.endsWith(".") ? "libcublasLt.so" : lt).ifPresent(p -> NativeLib.open("cuBLASLt", p));
        Cublas cublas = new Cublas(NativeLib.open(CudaLibraries.CUBLAS.what(), cublasLib.path()));

        KernelModule module = KernelModule.load(driver, nvrtc, arch, driverVersion, KernelModule.cacheDir(env));
        Info info = new Info(driver.deviceName(device), arch, driver.totalMemory(device), driverVersion, nvrtc.version(),
                cublas.version(), driverLib.path().toString(), nvrtc.lib.path.toString(), cublasLib.path().toString(),
                module.fromCache, module.cubinFile.toString());
        return new CudaBackend(driver, cublas, module, ctx, mode, info);
    }

    public Info info() {
        return info;
    }

    public ComputeMode mode() {
        return mode;
    }

    @Override
    public String name() {
        return "cuda";
    }

    // ---- plumbing

    private void enter() {
        lock.lock();
        if (!contextSet.get()) {
            try {
                driver.setCurrent(context);
            } catch (RuntimeException e) {
                lock.unlock();
                throw e;
            }
            contextSet.set(true);
        }
    }

    private void leave() {
        lock.unlock();
    }

    private Memory alloc(long bytes) {
        drainReleased();
        if (bytes == 0) return new Memory(0, 0);
        ArrayDeque<Long> free = pool.get(bytes);
        Long reused = free == null ? null : free.poll();
        long ptr;
        if (reused != null) {
            ptr = reused;
        } else {
            long[] out = new long[1];
            int r = driver.alloc(bytes, out);
            for (int attempt = 0; r == Driver.CUDA_ERROR_OUT_OF_MEMORY && attempt < 3; attempt++) {
                // Tensors still reachable only through the Java heap's garbage hold device memory until collected.
                releasePool();
                System.gc();
                try {
                    Thread.sleep(50L << attempt);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
                drainReleased();
                releasePool();
                r = driver.alloc(bytes, out);
            }
            if (r != Driver.CUDA_SUCCESS) {
                throw new JlensException("the GPU (" + info().device() + ") could not allocate " + (bytes >> 20) + " MiB: "
                        + driver.describe(r) + "; use a smaller --batch-size or model, or --compute bf16");
            }
            ptr = out[0];
        }
        Memory m = new Memory(ptr, bytes);
        CLEANER.register(m, new Release(released, ptr, bytes));
        return m;
    }

    private void drainReleased() {
        long[] b;
        while ((b = released.poll()) != null) pool.computeIfAbsent(b[1], k -> new ArrayDeque<>()).add(b[0]);
    }

    private void releasePool() {
        for (ArrayDeque<Long> q : pool.values()) for (Long p : q) driver.free(p);
        pool.clear();
    }

    private static CudaTensor t(DeviceTensor d) {
        if (d instanceof CudaTensor c) return c;
        throw new IllegalArgumentException("the CUDA backend was given a tensor of another backend: " + d.getClass().getName());
    }

    private CudaTensor newTensor(int rows, int cols) {
        long n = (long) rows * cols;
        Memory m = alloc(n * 4);
        if (n > 0) driver.zero(m.ptr, n);
        return new CudaTensor(m, m.ptr, rows, cols);
    }

    private Memory uploadBytes(MemorySegment host, long bytes) {
        Memory m = alloc(bytes);
        if (bytes == 0) return m;
        if (host.isNative()) {
            driver.copyToDevice(m.ptr, host, bytes);
        } else {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment tmp = a.allocate(bytes, 16);
                MemorySegment.copy(host, 0, tmp, 0, bytes);
                driver.copyToDevice(m.ptr, tmp, bytes);
            }
        }
        return m;
    }

    private Memory uploadInts(int[] values) {
        return uploadBytes(MemorySegment.ofArray(values), values.length * 4L);
    }

    private Memory uploadFloats(float[] values) {
        return uploadBytes(MemorySegment.ofArray(values), values.length * 4L);
    }

    /** The device copy of a norm weight or bias (null stays null): uploaded on first use, then reused. */
    private long vector(float[] v) {
        if (v == null) return 0;
        return vectors.computeIfAbsent(v, this::uploadFloats).ptr;
    }

    private DeviceWeight weight(WeightMatrix w) {
        DeviceWeight d = weights.get(w);
        if (d == null) {
            d = uploadWeight(w);
            weights.put(w, d);
        }
        return d;
    }

    /**
     * FP32 mode keeps the stored type (16-bit weights stay 16-bit and are widened per product); BF16 mode holds
     * every weight in bf16, converted once here.
     */
    private DeviceWeight uploadWeight(WeightMatrix w) {
        int dtype = switch (w.dtype()) {
            case F32 -> DT_F32;
            case F16 -> DT_F16;
            case BF16 -> DT_BF16;
            default -> throw new JlensException(w.name() + ": " + w.dtype() + " weights cannot go to the GPU");
        };
        long n = (long) w.rows() * w.cols();
        Memory stored = uploadBytes(w.segment(), n * w.dtype().bytes());
        if (mode == ComputeMode.FP32 || dtype == DT_BF16) return new DeviceWeight(stored, dtype);
        Memory bf = alloc(n * 2);
        launch1d("to_bf16", n, stored.ptr, dtype, bf.ptr, n);
        return new DeviceWeight(bf, DT_BF16);
    }

    private Memory scratch(boolean second, long bytes) {
        Memory s = second ? scratchB : scratchA;
        if (s == null || s.bytes < bytes) {
            s = alloc(Math.max(bytes, s == null ? 0 : s.bytes * 2));
            if (second) scratchB = s;
            else scratchA = s;
        }
        return s;
    }

    // ---- kernel launches

    private void launch(String name, int gx, int gy, int bx, Object... args) {
        if (gx == 0 || gy == 0) return;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment params = a.allocate(ValueLayout.ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment slot;
                switch (args[i]) {
                    case Long l -> slot = a.allocateFrom(ValueLayout.JAVA_LONG, l);
                    case Integer n -> slot = a.allocateFrom(ValueLayout.JAVA_INT, n);
                    case Float f -> slot = a.allocateFrom(ValueLayout.JAVA_FLOAT, f);
                    default -> throw new IllegalArgumentException("kernel argument " + args[i]);
                }
                params.setAtIndex(ValueLayout.ADDRESS, i, slot);
            }
            driver.launch(kernels.function(name), gx, gy, 1, bx, 1, 1, 0, params, name);
        }
    }

    private void launch1d(String name, long n, Object... args) {
        if (n == 0) return;
        int blocks = (int) Math.min((n + THREADS - 1) / THREADS, 1 << 20);
        launch(name, blocks, 1, THREADS, args);
    }

    /** Waits for the GPU; a kernel's asynchronous failure surfaces here, named. */
    public void synchronize() {
        enter();
        try {
            driver.synchronize("the last operation");
        } finally {
            leave();
        }
    }

    // ---- memory operations

    @Override
    public DeviceTensor allocate(int rows, int cols) {
        enter();
        try {
            return newTensor(rows, cols);
        } finally {
            leave();
        }
    }

    @Override
    public DeviceTensor upload(float[] host, int rows, int cols) {
        if ((long) rows * cols > host.length) {
            throw new IllegalArgumentException("[" + rows + ", " + cols + "] needs " + (long) rows * cols + " values, the array has " + host.length);
        }
        enter();
        try {
            long bytes = (long) rows * cols * 4;
            Memory m = uploadBytes(MemorySegment.ofArray(host), bytes);
            return new CudaTensor(m, m.ptr, rows, cols);
        } finally {
            leave();
        }
    }

    @Override
    public FloatTensor toHost(DeviceTensor d, int... shape) {
        CudaTensor x = t(d);
        int n = Math.toIntExact(x.size());
        long want = 1;
        for (int s : shape) want *= s;
        if (want != n) throw new IllegalArgumentException("cannot see " + x + " as shape " + java.util.Arrays.toString(shape));
        float[] out = new float[n];
        enter();
        try (Arena a = Arena.ofConfined()) {
            if (n > 0) {
                MemorySegment tmp = a.allocate(n * 4L, 16);
                driver.copyToHost(tmp, x.ptr, n * 4L);
                MemorySegment.copy(tmp, ValueLayout.JAVA_FLOAT, 0, out, 0, n);
            }
        } finally {
            leave();
        }
        return new FloatTensor(out, shape);
    }

    @Override
    public void fromHost(FloatTensor host, DeviceTensor d) {
        CudaTensor x = t(d);
        int n = Math.toIntExact(x.size());
        if (host.data().length != n) throw new IllegalArgumentException("a hook returned " + host.data().length + " values for " + x);
        enter();
        try (Arena a = Arena.ofConfined()) {
            if (n > 0) {
                MemorySegment tmp = a.allocate(n * 4L, 16);
                MemorySegment.copy(host.data(), 0, tmp, ValueLayout.JAVA_FLOAT, 0, n);
                driver.copyToDevice(x.ptr, tmp, n * 4L);
            }
        } finally {
            leave();
        }
    }

    @Override
    public void copyRows(DeviceTensor srcT, int srcRow, DeviceTensor dstT, int dstRow, int rows) {
        CudaTensor src = t(srcT), dst = t(dstT);
        int w = src.cols();
        if (dst.cols() != w) throw new IllegalArgumentException("copyRows from " + src + " to " + dst);
        if (srcRow < 0 || dstRow < 0 || srcRow + rows > src.rows() || dstRow + rows > dst.rows()) {
            throw new IndexOutOfBoundsException("rows " + srcRow + "+" + rows + " of " + src + " to " + dstRow + " of " + dst);
        }
        if (rows == 0 || w == 0) return;
        enter();
        try {
            driver.copyOnDevice(dst.ptr + (long) dstRow * w * 4, src.ptr + (long) srcRow * w * 4, (long) rows * w * 4);
        } finally {
            leave();
        }
    }

    @Override
    public void copyColumns(DeviceTensor srcT, int srcCol, DeviceTensor dstT, int dstCol, int width) {
        CudaTensor src = t(srcT), dst = t(dstT);
        int rows = src.rows();
        if (dst.rows() != rows || srcCol + width > src.cols() || dstCol + width > dst.cols()) {
            throw new IndexOutOfBoundsException("columns " + srcCol + "+" + width + " of " + src + " to " + dstCol + " of " + dst);
        }
        enter();
        try {
            launch1d("copy_columns", (long) rows * width, src.ptr, src.cols(), srcCol, dst.ptr, dst.cols(), dstCol, rows, width);
        } finally {
            leave();
        }
    }

    // ---- weights

    @Override
    public void prepare(WeightMatrix w) {
        enter();
        try {
            weight(w);
        } finally {
            leave();
        }
    }

    @Override
    public void matmul(DeviceTensor xT, WeightMatrix w, float[] bias, DeviceTensor outT) {
        CudaTensor x = t(xT), out = t(outT);
        int m = x.rows(), n = w.rows(), k = w.cols();
        if (x.cols() != k || out.rows() != m || out.cols() != n) {
            throw new IllegalArgumentException("matmul " + w.name() + " [" + n + ", " + k + "]: input " + x + ", output " + out);
        }
        if (bias != null && bias.length != n) throw new IllegalArgumentException("bias of " + bias.length + " for " + w.name() + " [" + n + ", " + k + "]");
        if (m == 0 || n == 0) return;
        enter();
        try {
            DeviceWeight dw = weight(w);
            if (bias != null) launch1d("fill_bias", (long) m * n, out.ptr, vector(bias), m, n);
            boolean acc = bias != null;
            if (k == 0) {
                if (!acc) driver.zero(out.ptr, (long) m * n);
                return;
            }
            if (mode == ComputeMode.BF16) {
                Memory xb = scratch(false, (long) m * k * 2);
                launch1d("to_bf16", (long) m * k, x.ptr, DT_F32, xb.ptr, (long) m * k);
                cublas.rowMajorTimesTransposed(xb.ptr, Cublas.R_16BF, dw.memory.ptr, Cublas.R_16BF, out.ptr, m, n, k, acc);
            } else if (dw.dtype == DT_F32) {
                cublas.rowMajorTimesTransposed(x.ptr, Cublas.R_32F, dw.memory.ptr, Cublas.R_32F, out.ptr, m, n, k, acc);
            } else {
                // A 16-bit weight is widened for this product only, so that it stays 16-bit in device memory.
                long nk = (long) n * k;
                Memory wide = scratch(true, nk * 4);
                launch1d("widen", nk, dw.memory.ptr, dw.dtype, wide.ptr, nk);
                cublas.rowMajorTimesTransposed(x.ptr, Cublas.R_32F, wide.ptr, Cublas.R_32F, out.ptr, m, n, k, acc);
            }
        } finally {
            leave();
        }
    }

    @Override
    public void gather(WeightMatrix table, int[] ids, float scale, DeviceTensor outT) {
        CudaTensor out = t(outT);
        int cols = table.cols();
        if (out.cols() != cols || out.rows() != ids.length) {
            throw new IllegalArgumentException("gather of " + ids.length + " rows of " + table.name() + " into " + out);
        }
        for (int id : ids) {
            if (id < 0 || id >= table.rows()) throw new IndexOutOfBoundsException("row " + id + " of " + table.name() + " [" + table.rows() + ", " + cols + "]");
        }
        if (ids.length == 0) return;
        enter();
        try {
            DeviceWeight dw = weight(table);
            Memory idMem = uploadInts(ids);
            launch("gather_rows", ids.length, 1, THREADS, dw.memory.ptr, dw.dtype, cols, idMem.ptr, scale, out.ptr);
            java.lang.ref.Reference.reachabilityFence(idMem);
        } finally {
            leave();
        }
    }

    // ---- row-wise

    @Override
    public void layerNorm(DeviceTensor xT, DeviceTensor outT, float[] gamma, float[] beta, float eps) {
        CudaTensor x = t(xT), out = t(outT);
        sameShape(x, out, "layerNorm");
        enter();
        try {
            launch("layer_norm", x.rows(), 1, THREADS, x.ptr, out.ptr, vector(gamma), vector(beta), x.cols(), eps);
        } finally {
            leave();
        }
    }

    @Override
    public void rmsNorm(DeviceTensor xT, DeviceTensor outT, float[] gamma, float eps, boolean onePlus) {
        CudaTensor x = t(xT), out = t(outT);
        sameShape(x, out, "rmsNorm");
        enter();
        try {
            launch("rms_norm", x.rows(), 1, THREADS, x.ptr, out.ptr, vector(gamma), x.cols(), eps, onePlus ? 1 : 0);
        } finally {
            leave();
        }
    }

    @Override
    public void normStats(boolean layerNorm, DeviceTensor xT, float eps, DeviceTensor scaleT, DeviceTensor normalizedT) {
        CudaTensor x = t(xT), scale = t(scaleT), normalized = t(normalizedT);
        sameShape(x, normalized, "normStats");
        if (scale.size() != x.rows()) throw new IllegalArgumentException("normStats scale " + scale + " for " + x);
        enter();
        try {
            launch("norm_stats", x.rows(), 1, THREADS, x.ptr, scale.ptr, normalized.ptr, x.cols(), eps, layerNorm ? 1 : 0);
        } finally {
            leave();
        }
    }

    private static void sameShape(CudaTensor a, CudaTensor b, String op) {
        if (a.rows() != b.rows() || a.cols() != b.cols()) throw new IllegalArgumentException(op + ": " + a + " into " + b);
    }

    @Override
    public void rotary(DeviceTensor xT, int nHeads, int headDim, int[] positions, RotaryEmbedding rope) {
        CudaTensor x = t(xT);
        int half = rope.rotaryDims() / 2;
        if (half == 0 || x.rows() == 0) return;
        if (x.cols() != nHeads * headDim || positions.length < x.rows() || rope.rotaryDims() > headDim) {
            throw new IllegalArgumentException("rotary of " + nHeads + " heads of " + headDim + " (" + rope.rotaryDims()
                    + " rotated) on " + x + " with " + positions.length + " positions");
        }
        enter();
        try {
            Memory pos = uploadInts(positions);
            Memory freq = uploadFloats(rope.invFreq());
            launch("rotary", x.rows(), 1, 128, x.ptr, nHeads, headDim, pos.ptr, freq.ptr, half,
                    rope.layout() == RotaryEmbedding.Layout.INTERLEAVED ? 1 : 0);
            java.lang.ref.Reference.reachabilityFence(pos);
            java.lang.ref.Reference.reachabilityFence(freq);
        } finally {
            leave();
        }
    }

    /**
     * With the pre-softmax scores asked for (a hook on hook_attn_scores), attention runs on the host through
     * the reference backend and the results are copied back: scores are hooked for inspection of small runs,
     * and a device kernel for them is part 2's work. Unhooked and pattern-only passes stay on the device.
     */
    @Override
    public void attention(DeviceTensor qT, DeviceTensor kT, DeviceTensor vT, DeviceTensor outT, AttentionLayout layout,
                          AttentionSpec spec, DeviceTensor patternT, DeviceTensor scoresT) {
        if (scoresT == null) {
            attention(qT, kT, vT, outT, layout, spec, patternT);
            return;
        }
        Backend ref = Backend.reference();
        DeviceTensor q = onHost(ref, qT), k = onHost(ref, kT), v = onHost(ref, vT), out = onHost(ref, outT);
        DeviceTensor pattern = patternT == null ? null : onHost(ref, patternT), scores = onHost(ref, scoresT);
        ref.attention(q, k, v, out, layout, spec, pattern, scores);
        back(ref, out, outT);
        back(ref, scores, scoresT);
        if (pattern != null) back(ref, pattern, patternT);
    }

    /** A hook changed the scores: the softmax runs on the host (reference backend) and comes back. */
    @Override
    public void softmaxScores(DeviceTensor scoresT, DeviceTensor patternT, AttentionLayout layout, AttentionSpec spec) {
        Backend ref = Backend.reference();
        DeviceTensor pattern = onHost(ref, patternT);
        ref.softmaxScores(onHost(ref, scoresT), pattern, layout, spec);
        back(ref, pattern, patternT);
    }

    /** A hook changed the pattern: pattern · v runs on the host (reference backend) and comes back. */
    @Override
    public void mixValues(DeviceTensor patternT, DeviceTensor vT, DeviceTensor outT, AttentionLayout layout, AttentionSpec spec) {
        Backend ref = Backend.reference();
        DeviceTensor out = onHost(ref, outT);
        ref.mixValues(onHost(ref, patternT), onHost(ref, vT), out, layout, spec);
        back(ref, out, outT);
    }

    /** A host copy of a device tensor, as a reference-backend tensor. */
    private DeviceTensor onHost(Backend ref, DeviceTensor d) {
        return ref.upload(toHost(d, d.rows(), d.cols()).data(), d.rows(), d.cols());
    }

    private void back(Backend ref, DeviceTensor host, DeviceTensor d) {
        fromHost(ref.toHost(host, host.rows(), host.cols()), d);
    }

    @Override
    public void attention(DeviceTensor qT, DeviceTensor kT, DeviceTensor vT, DeviceTensor outT, AttentionLayout layout,
                          AttentionSpec spec, DeviceTensor patternT) {
        CudaTensor q = t(qT), k = t(kT), v = t(vT), out = t(outT);
        int nHeads = spec.nHeads();
        if (q.cols() != spec.qWidth() || out.cols() != spec.qWidth() || k.cols() != spec.kvWidth() || v.cols() != spec.kvWidth()) {
            throw new IllegalArgumentException("attention " + spec + " on q " + q + ", k " + k + ", v " + v + ", out " + out);
        }
        int rows = 0;
        for (int s = 0; s < layout.sequences(); s++) rows += layout.qLen()[s];
        int[] meta = new int[rows * 6];
        long patternAt = 0;
        int r = 0;
        for (int s = 0; s < layout.sequences(); s++) {
            int qOff = layout.qOff()[s], qLen = layout.qLen()[s], kOff = layout.kOff()[s], kLen = layout.kLen()[s];
            if (qOff + qLen > q.rows() || kOff + kLen > k.rows() || kLen < qLen) {
                throw new IllegalArgumentException("sequence " + s + " of the attention layout does not fit q " + q + " / k " + k);
            }
            for (int i = 0; i < qLen; i++, r++) {
                meta[r * 6] = qOff + i;
                meta[r * 6 + 1] = kOff;
                meta[r * 6 + 2] = kLen;
                meta[r * 6 + 3] = kLen - qLen + i;
                meta[r * 6 + 4] = Math.toIntExact(patternAt + (long) i * kLen);
                meta[r * 6 + 5] = qLen * kLen;
            }
            patternAt += (long) nHeads * qLen * kLen;
        }
        if (patternT != null && patternT.size() != patternAt) {
            throw new IllegalArgumentException("attention pattern " + patternT + " for " + patternAt + " probabilities");
        }
        if (rows == 0) return;
        enter();
        try {
            Memory metaMem = uploadInts(meta);
            int causal = spec.causal() ? 1 : 0;
            if (patternT == null && spec.headDim() <= 256) {
                launch("attention_online", rows, nHeads, 32, q.ptr, k.ptr, v.ptr, out.ptr, metaMem.ptr, nHeads, spec.nKvHeads(),
                        spec.headDim(), spec.scale(), causal, spec.window(), spec.softcap());
            } else {
                CudaTensor pattern = patternT != null ? t(patternT) : newTensor(1, Math.toIntExact(patternAt));
                if (patternT != null) driver.zero(pattern.ptr, patternAt);
                launch("attention_pattern", rows, nHeads, 32, q.ptr, k.ptr, v.ptr, out.ptr, pattern.ptr, metaMem.ptr, nHeads,
                        spec.nKvHeads(), spec.headDim(), spec.scale(), causal, spec.window(), spec.softcap());
                java.lang.ref.Reference.reachabilityFence(pattern);
            }
            java.lang.ref.Reference.reachabilityFence(metaMem);
        } finally {
            leave();
        }
    }

    // ---- elementwise

    private static int code(Activation act) {
        return switch (act) {
            case GELU -> 0;
            case GELU_TANH -> 1;
            case GELU_FAST -> 2;
            case RELU -> 3;
            case SILU -> 4;
        };
    }

    @Override
    public void activate(DeviceTensor xT, Activation act) {
        CudaTensor x = t(xT);
        enter();
        try {
            launch1d("activate", x.size(), x.ptr, x.size(), code(act));
        } finally {
            leave();
        }
    }

    @Override
    public void gatedActivate(DeviceTensor gateT, DeviceTensor upT, Activation act) {
        CudaTensor gate = t(gateT), up = t(upT);
        if (gate.size() != up.size()) throw new IllegalArgumentException("gatedActivate " + gate + " with " + up);
        enter();
        try {
            launch1d("gated_activate", gate.size(), gate.ptr, up.ptr, gate.size(), code(act));
        } finally {
            leave();
        }
    }

    @Override
    public void add(DeviceTensor outT, DeviceTensor aT) {
        CudaTensor out = t(outT), a = t(aT);
        if (out.size() != a.size()) throw new IllegalArgumentException("add " + a + " into " + out);
        enter();
        try {
            launch1d("add", out.size(), out.ptr, a.ptr, out.size());
        } finally {
            leave();
        }
    }

    @Override
    public void softcap(DeviceTensor xT, float cap) {
        CudaTensor x = t(xT);
        enter();
        try {
            launch1d("softcap", x.size(), x.ptr, x.size(), cap);
        } finally {
            leave();
        }
    }

    @Override
    public String toString() {
        return "cuda[" + mode.label() + "] " + info.device();
    }
}
