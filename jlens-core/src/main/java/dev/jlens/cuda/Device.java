package dev.jlens.cuda;

import dev.jlens.JlensException;
import dev.jlens.kernels.Backend;

import java.util.Locale;
import java.util.function.Consumer;

/**
 * Where a model runs, as {@code --device} names it: {@link #CPU} (the Vector API backend, the default),
 * {@link #CUDA} (an NVIDIA GPU; an error if none is usable) or {@link #AUTO} (the GPU when a usable one and its
 * libraries are found, else the CPU). From Java:
 * <pre>
 *   Backend b = Device.AUTO.backend(ComputeMode.FP32, System.err::println);
 *   HookedModel m = ModelLoader.loadFolder(location, b);
 * </pre>
 */
public enum Device {
    CPU, CUDA, AUTO;

    /** "cpu", "cuda" (or "gpu") or "auto", any case. */
    public static Device parse(String s) {
        return switch (s == null ? "" : s.trim().toLowerCase(Locale.ROOT)) {
            case "cpu" -> CPU;
            case "cuda", "gpu" -> CUDA;
            case "auto" -> AUTO;
            default -> throw new JlensException("--device \"" + s + "\" is not a device; expected cpu, cuda or auto");
        };
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * The backend for this choice. {@code notes} hears which device AUTO chose and why (the CLI prints it on
     * stderr); CUDA without a usable GPU throws the JlensException that says what was searched and found.
     */
    public Backend backend(ComputeMode compute, Consumer<String> notes) {
        return switch (this) {
            case CPU -> {
                if (compute == ComputeMode.BF16) {
                    throw new JlensException("--compute bf16 needs --device cuda (or auto on a machine with a GPU); the CPU computes in fp32");
                }
                yield Backend.defaults();
            }
            case CUDA -> {
                CudaBackend b = CudaBackend.open(compute);
                notes.accept("jlens: --device cuda: " + b.info().device() + " (" + b.info().arch() + "), compute " + compute.label());
                yield b;
            }
            case AUTO -> {
                try {
                    CudaBackend b = CudaBackend.open(compute);
                    notes.accept("jlens: --device auto: using CUDA on " + b.info().device() + " (" + b.info().arch()
                            + "), compute " + compute.label());
                    yield b;
                } catch (JlensException | UnsatisfiedLinkError e) {
                    notes.accept("jlens: --device auto: using the CPU (" + Backend.defaults().threads() + " threads"
                            + (compute == ComputeMode.BF16 ? ", in fp32" : "") + "); no usable GPU: " + e.getMessage());
                    yield Backend.defaults();
                }
            }
        };
    }
}
