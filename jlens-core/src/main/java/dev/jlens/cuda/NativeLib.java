package dev.jlens.cuda;

import dev.jlens.JlensException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * One shared library opened through the FFM API, for the lifetime of the process (CUDA libraries are never
 * unloaded: a driver context outlives any one backend). Every binding is looked up by name when first asked,
 * so a missing symbol (a library too old for a function) is an error naming the library and the function.
 */
final class NativeLib {

    static final Linker LINKER = Linker.nativeLinker();
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;
    static final java.lang.foreign.AddressLayout ADDR = ValueLayout.ADDRESS;

    final String what;
    final Path path;
    private final SymbolLookup lookup;

    private NativeLib(String what, Path path, SymbolLookup lookup) {
        this.what = what;
        this.path = path;
        this.lookup = lookup;
    }

    static NativeLib open(String what, Path path) {
        try {
            return new NativeLib(what, path, SymbolLookup.libraryLookup(path, Arena.global()));
        } catch (IllegalArgumentException e) {
            throw new JlensException(what + ": " + path + " exists but could not be loaded (" + e.getMessage()
                    + "); a library of the wrong architecture, or one whose own dependencies are missing", e);
        }
    }

    /** A downcall to {@code name} returning int (CUresult, nvrtcResult, cublasStatus_t), or null if absent. */
    MethodHandle intFunctionOrNull(String name, MemoryLayoutList args) {
        return lookup.find(name).map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(INT, args.layouts))).orElse(null);
    }

    MethodHandle intFunction(String name, MemoryLayoutList args) {
        MethodHandle h = intFunctionOrNull(name, args);
        if (h == null) {
            throw new JlensException(what + ": " + path + " has no function " + name + "; the library is too old for jlens");
        }
        return h;
    }

    MethodHandle addressFunction(String name, MemoryLayoutList args) {
        return lookup.find(name).map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(ADDR, args.layouts)))
                .orElseThrow(() -> new JlensException(what + ": " + path + " has no function " + name));
    }

    /** Argument layouts, spelled in the order of the C prototype. */
    record MemoryLayoutList(java.lang.foreign.MemoryLayout... layouts) {
    }

    static MemoryLayoutList args(java.lang.foreign.MemoryLayout... layouts) {
        return new MemoryLayoutList(layouts);
    }

    /** Calls a handle with boxed arguments; a Throwable from the native side is not expected, so it is wrapped. */
    static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static MemorySegment callAddress(MethodHandle h, Object... args) {
        try {
            return (MemorySegment) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** A NUL-terminated C string returned by a library, or "?" for NULL. */
    static String cString(MemorySegment p) {
        if (p == null || p.equals(MemorySegment.NULL)) return "?";
        return p.reinterpret(4096).getString(0);
    }
}
