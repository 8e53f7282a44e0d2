package dev.jlens.cuda;

import dev.jlens.JlensException;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;

import static dev.jlens.cuda.NativeLib.ADDR;
import static dev.jlens.cuda.NativeLib.INT;
import static dev.jlens.cuda.NativeLib.LONG;
import static dev.jlens.cuda.NativeLib.args;
import static dev.jlens.cuda.NativeLib.call;

/** NVRTC (nvrtc.h): compiles CUDA C source to a cubin for one architecture. */
final class Nvrtc {

    final NativeLib lib;
    private final MethodHandle nvrtcVersion, nvrtcCreateProgram, nvrtcCompileProgram, nvrtcDestroyProgram,
            nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetCUBINSize, nvrtcGetCUBIN, nvrtcGetErrorString;

    Nvrtc(NativeLib lib) {
        this.lib = lib;
        nvrtcVersion = lib.intFunction("nvrtcVersion", args(ADDR, ADDR));
        nvrtcCreateProgram = lib.intFunction("nvrtcCreateProgram", args(ADDR, ADDR, ADDR, INT, ADDR, ADDR));
        nvrtcCompileProgram = lib.intFunction("nvrtcCompileProgram", args(ADDR, INT, ADDR));
        nvrtcDestroyProgram = lib.intFunction("nvrtcDestroyProgram", args(ADDR));
        nvrtcGetProgramLogSize = lib.intFunction("nvrtcGetProgramLogSize", args(ADDR, ADDR));
        nvrtcGetProgramLog = lib.intFunction("nvrtcGetProgramLog", args(ADDR, ADDR));
        nvrtcGetCUBINSize = lib.intFunction("nvrtcGetCUBINSize", args(ADDR, ADDR));
        nvrtcGetCUBIN = lib.intFunction("nvrtcGetCUBIN", args(ADDR, ADDR));
        nvrtcGetErrorString = lib.addressFunction("nvrtcGetErrorString", args(INT));
    }

    /**
     * NVRTC as found by {@code libs}, with its builtins library loaded first from the same folder (NVRTC opens it
     * by soname, which then resolves to the one already loaded). Null when NVRTC is not found.
     */
    static Nvrtc find(CudaLibraries libs) {
        CudaLibraries.Found lib = libs.find(CudaLibraries.NVRTC).orElse(null);
        if (lib == null) return null;
        CudaLibraries.sibling(lib, "libnvrtc-builtins.so").ifPresent(p -> NativeLib.open("NVRTC builtins", p));
        return new Nvrtc(NativeLib.open(CudaLibraries.NVRTC.what(), lib.path()));
    }

    /** major * 1000 + minor * 10, as the driver writes its version. */
    int version() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment major = a.allocate(INT), minor = a.allocate(INT);
            check(call(nvrtcVersion, major, minor), "nvrtcVersion");
            return major.get(INT, 0) * 1000 + minor.get(INT, 0) * 10;
        }
    }

    private void check(int r, String during) {
        if (r != 0) {
            throw new JlensException("NVRTC (" + lib.path + "): " + during + " failed: "
                    + NativeLib.cString(NativeLib.callAddress(nvrtcGetErrorString, r)));
        }
    }

    /** The cubin of {@code source} for {@code arch} (e.g. "sm_90"); a compile error carries NVRTC's log. */
    byte[] compile(String source, String name, String arch, List<String> extraOptions) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment progOut = a.allocate(ADDR);
            check(call(nvrtcCreateProgram, progOut, a.allocateFrom(source), a.allocateFrom(name), 0, MemorySegment.NULL,
                    MemorySegment.NULL), "nvrtcCreateProgram");
            MemorySegment prog = progOut.get(ADDR, 0);
            try {
                List<String> opts = new java.util.ArrayList<>(List.of("--gpu-architecture=" + arch, "--std=c++17"));
                opts.addAll(extraOptions);
                MemorySegment optArray = a.allocate(ADDR, opts.size());
                for (int i = 0; i < opts.size(); i++) optArray.setAtIndex(ADDR, i, a.allocateFrom(opts.get(i)));
                int r = call(nvrtcCompileProgram, prog, opts.size(), optArray);
                if (r != 0) {
                    throw new JlensException("NVRTC could not compile " + name + " for " + arch + " with " + opts + ":\n" + log(a, prog));
                }
                MemorySegment size = a.allocate(LONG);
                check(call(nvrtcGetCUBINSize, prog, size), "nvrtcGetCUBINSize");
                MemorySegment cubin = a.allocate(size.get(LONG, 0));
                check(call(nvrtcGetCUBIN, prog, cubin), "nvrtcGetCUBIN");
                return cubin.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
            } finally {
                call(nvrtcDestroyProgram, progOut);
            }
        }
    }

    private String log(Arena a, MemorySegment prog) {
        MemorySegment size = a.allocate(LONG);
        if (call(nvrtcGetProgramLogSize, prog, size) != 0) return "(no log)";
        MemorySegment text = a.allocate(Math.max(1, size.get(LONG, 0)));
        if (call(nvrtcGetProgramLog, prog, text) != 0) return "(no log)";
        return text.getString(0);
    }
}
