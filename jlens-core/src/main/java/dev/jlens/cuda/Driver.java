package dev.jlens.cuda;

import dev.jlens.JlensException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

import static dev.jlens.cuda.NativeLib.ADDR;
import static dev.jlens.cuda.NativeLib.INT;
import static dev.jlens.cuda.NativeLib.LONG;
import static dev.jlens.cuda.NativeLib.args;
import static dev.jlens.cuda.NativeLib.call;

/**
 * The CUDA driver API ({@code libcuda}) functions jlens uses, bound with the prototypes of cuda.h (CUdevice is
 * int, CUdeviceptr a 64-bit integer, handles are pointers; the {@code _v2} names are the ones cuda.h's macros
 * resolve to).
 */
final class Driver {

    static final int CUDA_SUCCESS = 0;
    static final int CUDA_ERROR_OUT_OF_MEMORY = 2;
    static final int CUDA_ERROR_INSUFFICIENT_DRIVER = 35;
    static final int CUDA_ERROR_NO_DEVICE = 100;
    static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;

    /** The oldest driver API jlens accepts: CUDA 12.0 (bf16 GEMMs, NVRTC cubins for Hopper). */
    static final int MIN_DRIVER_VERSION = 12000;

    final NativeLib lib;
    private final MethodHandle cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName,
            cuDeviceGetAttribute, cuDeviceTotalMem, cuDevicePrimaryCtxRetain, cuCtxSetCurrent, cuMemAlloc, cuMemFree,
            cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD, cuMemsetD32, cuModuleLoadData, cuModuleGetFunction,
            cuLaunchKernel, cuCtxSynchronize, cuGetErrorName, cuGetErrorString;

    Driver(NativeLib lib) {
        this.lib = lib;
        cuInit = lib.intFunction("cuInit", args(INT));
        cuDriverGetVersion = lib.intFunction("cuDriverGetVersion", args(ADDR));
        cuDeviceGetCount = lib.intFunction("cuDeviceGetCount", args(ADDR));
        cuDeviceGet = lib.intFunction("cuDeviceGet", args(ADDR, INT));
        cuDeviceGetName = lib.intFunction("cuDeviceGetName", args(ADDR, INT, INT));
        cuDeviceGetAttribute = lib.intFunction("cuDeviceGetAttribute", args(ADDR, INT, INT));
        cuDeviceTotalMem = lib.intFunction("cuDeviceTotalMem_v2", args(ADDR, INT));
        cuDevicePrimaryCtxRetain = lib.intFunction("cuDevicePrimaryCtxRetain", args(ADDR, INT));
        cuCtxSetCurrent = lib.intFunction("cuCtxSetCurrent", args(ADDR));
        cuMemAlloc = lib.intFunction("cuMemAlloc_v2", args(ADDR, LONG));
        cuMemFree = lib.intFunction("cuMemFree_v2", args(LONG));
        cuMemcpyHtoD = lib.intFunction("cuMemcpyHtoD_v2", args(LONG, ADDR, LONG));
        cuMemcpyDtoH = lib.intFunction("cuMemcpyDtoH_v2", args(ADDR, LONG, LONG));
        cuMemcpyDtoD = lib.intFunction("cuMemcpyDtoD_v2", args(LONG, LONG, LONG));
        cuMemsetD32 = lib.intFunction("cuMemsetD32_v2", args(LONG, INT, LONG));
        cuModuleLoadData = lib.intFunction("cuModuleLoadData", args(ADDR, ADDR));
        cuModuleGetFunction = lib.intFunction("cuModuleGetFunction", args(ADDR, ADDR, ADDR));
        cuLaunchKernel = lib.intFunction("cuLaunchKernel", args(ADDR, INT, INT, INT, INT, INT, INT, INT, ADDR, ADDR, ADDR));
        cuCtxSynchronize = lib.intFunction("cuCtxSynchronize", args());
        cuGetErrorName = lib.intFunction("cuGetErrorName", args(INT, ADDR));
        cuGetErrorString = lib.intFunction("cuGetErrorString", args(INT, ADDR));
    }

    /** "CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for a result code. */
    String describe(int result) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            String name = call(cuGetErrorName, result, p) == 0 ? NativeLib.cString(p.get(ADDR, 0)) : "CUresult " + result;
            String text = call(cuGetErrorString, result, p) == 0 ? NativeLib.cString(p.get(ADDR, 0)) : "";
            return name + (text.isEmpty() ? "" : " (" + text + ")");
        }
    }

    void check(int result, String during) {
        if (result != CUDA_SUCCESS) throw new CudaException(during + " failed: " + describe(result), result);
    }

    int init() {
        return call(cuInit, 0);
    }

    int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            check(call(cuDriverGetVersion, v), "cuDriverGetVersion");
            return v.get(INT, 0);
        }
    }

    int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            int r = call(cuDeviceGetCount, v);
            if (r == CUDA_ERROR_NO_DEVICE) return 0;
            check(r, "cuDeviceGetCount");
            return v.get(INT, 0);
        }
    }

    int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            check(call(cuDeviceGet, v, ordinal), "cuDeviceGet(" + ordinal + ")");
            return v.get(INT, 0);
        }
    }

    String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(256);
            check(call(cuDeviceGetName, s, 256, device), "cuDeviceGetName");
            return s.getString(0);
        }
    }

    int attribute(int device, int attribute) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            check(call(cuDeviceGetAttribute, v, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
            return v.get(INT, 0);
        }
    }

    long totalMemory(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(LONG);
            check(call(cuDeviceTotalMem, v, device), "cuDeviceTotalMem");
            return v.get(LONG, 0);
        }
    }

    MemorySegment retainPrimaryContext(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDR);
            check(call(cuDevicePrimaryCtxRetain, v, device), "cuDevicePrimaryCtxRetain");
            return v.get(ADDR, 0);
        }
    }

    void setCurrent(MemorySegment context) {
        check(call(cuCtxSetCurrent, context), "cuCtxSetCurrent");
    }

    /** cuMemAlloc's result code and, on success, the pointer in {@code out[0]}. */
    int alloc(long bytes, long[] out) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(LONG);
            int r = call(cuMemAlloc, v, bytes);
            if (r == CUDA_SUCCESS) out[0] = v.get(LONG, 0);
            return r;
        }
    }

    void free(long ptr) {
        check(call(cuMemFree, ptr), "cuMemFree");
    }

    void copyToDevice(long dst, MemorySegment src, long bytes) {
        check(call(cuMemcpyHtoD, dst, src, bytes), "cuMemcpyHtoD (" + bytes + " bytes)");
    }

    void copyToHost(MemorySegment dst, long src, long bytes) {
        check(call(cuMemcpyDtoH, dst, src, bytes), "cuMemcpyDtoH (" + bytes + " bytes)");
    }

    void copyOnDevice(long dst, long src, long bytes) {
        check(call(cuMemcpyDtoD, dst, src, bytes), "cuMemcpyDtoD (" + bytes + " bytes)");
    }

    void zero(long ptr, long words) {
        check(call(cuMemsetD32, ptr, 0, words), "cuMemsetD32");
    }

    /** Loads a cubin; the result code is returned so that the caller can explain a too-old driver. */
    int loadModule(MemorySegment image, MemorySegment[] out) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDR);
            int r = call(cuModuleLoadData, v, image);
            if (r == CUDA_SUCCESS) out[0] = v.get(ADDR, 0);
            return r;
        }
    }

    MemorySegment function(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ADDR);
            check(call(cuModuleGetFunction, v, module, a.allocateFrom(name)), "cuModuleGetFunction(" + name + ")");
            return v.get(ADDR, 0);
        }
    }

    void launch(MemorySegment function, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes,
                MemorySegment params, String name) {
        check(call(cuLaunchKernel, function, gx, gy, gz, bx, by, bz, sharedBytes, MemorySegment.NULL, params,
                MemorySegment.NULL), "launching kernel " + name + " grid (" + gx + "," + gy + "," + gz + ") block (" + bx + "," + by + "," + bz + ")");
    }

    void synchronize(String after) {
        check(call(cuCtxSynchronize), "synchronizing after " + after);
    }

    /** A CUDA call's failure with its result code, so that callers can react to out-of-memory. */
    static final class CudaException extends JlensException {
        final int result;

        CudaException(String message, int result) {
            super(message);
            this.result = result;
        }
    }
}
