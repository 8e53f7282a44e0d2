package dev.jlens.cuda;

import dev.jlens.JlensException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static dev.jlens.cuda.NativeLib.ADDR;
import static dev.jlens.cuda.NativeLib.INT;
import static dev.jlens.cuda.NativeLib.LONG;
import static dev.jlens.cuda.NativeLib.args;
import static dev.jlens.cuda.NativeLib.call;

/**
 * cuBLAS (cublas_api.h) through {@code cublasGemmEx}: one entry point for FP32 products (compute type
 * CUBLAS_COMPUTE_32F, which never uses TF32) and bf16 products (bf16 inputs, FP32 accumulation and output).
 * Device pointers are passed as 64-bit integers, which the x86-64 and AArch64 calling conventions pass
 * exactly like pointers.
 */
final class Cublas {

    static final int OP_N = 0, OP_T = 1;
    static final int R_32F = 0, R_16F = 2, R_16BF = 14;
    static final int COMPUTE_32F = 68;
    static final int GEMM_DEFAULT = -1;
    static final int DEFAULT_MATH = 0;

    final NativeLib lib;
    private final MethodHandle create, setMathMode, getVersion, gemmEx;
    private final MemorySegment handle;
    private final MemorySegment one, zero;

    Cublas(NativeLib lib) {
        this.lib = lib;
        create = lib.intFunction("cublasCreate_v2", args(ADDR));
        setMathMode = lib.intFunction("cublasSetMathMode", args(ADDR, INT));
        getVersion = lib.intFunction("cublasGetVersion_v2", args(ADDR, ADDR));
        gemmEx = lib.intFunction("cublasGemmEx", args(ADDR, INT, INT, INT, INT, INT, ADDR, LONG, INT, INT, LONG, INT, INT,
                ADDR, LONG, INT, INT, INT, INT));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(ADDR);
            check(call(create, h), "cublasCreate (needs a current CUDA context)");
            handle = h.get(ADDR, 0);
        }
        check(call(setMathMode, handle, DEFAULT_MATH), "cublasSetMathMode(CUBLAS_DEFAULT_MATH)");
        one = Arena.global().allocateFrom(ValueLayout.JAVA_FLOAT, 1f);
        zero = Arena.global().allocateFrom(ValueLayout.JAVA_FLOAT, 0f);
    }

    private void check(int status, String during) {
        if (status != 0) throw new JlensException("cuBLAS (" + lib.path + "): " + during + " failed with cublasStatus_t " + status);
    }

    int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(INT);
            check(call(getVersion, handle, v), "cublasGetVersion");
            return v.get(INT, 0);
        }
    }

    /**
     * Row-major out[m, n] (+)= x[m, k] · w[n, k]ᵀ. In cuBLAS' column-major terms that is outᵀ (n×m) = w (k×n)ᵀ ·
     * xᵀ (k×m), so w is passed transposed with leading dimension k. {@code accumulate}: add to what out holds
     * (a bias broadcast into it beforehand).
     */
    void rowMajorTimesTransposed(long x, int xType, long w, int wType, long out, int m, int n, int k, boolean accumulate) {
        check(call(gemmEx, handle, OP_T, OP_N, n, m, k, one, w, wType, k, x, xType, k, accumulate ? one : zero, out, R_32F, n,
                COMPUTE_32F, GEMM_DEFAULT), "cublasGemmEx(" + m + "x" + k + " · " + n + "x" + k + "ᵀ, types " + xType + "/" + wType + ")");
    }
}
