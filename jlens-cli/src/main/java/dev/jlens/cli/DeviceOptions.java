package dev.jlens.cli;

import dev.jlens.cuda.ComputeMode;
import dev.jlens.cuda.Device;
import dev.jlens.kernels.Backend;
import picocli.CommandLine.Option;

/**
 * --device and --compute, shared (through {@link ModelOptions} and {@link DetectorOptions}) by every command
 * that runs a model.
 */
public final class DeviceOptions {

    @Option(names = "--device", paramLabel = "DEVICE", converter = DeviceConverter.class, defaultValue = "cpu",
            description = {"Where the model runs: cpu (default), cuda (an NVIDIA GPU through the CUDA driver, NVRTC and "
                    + "cuBLAS found at run time; an error naming what was searched if none is usable) or auto (the GPU "
                    + "when one is usable, else the CPU; says which on stderr). Example: --device auto"})
    Device device = Device.CPU;

    @Option(names = "--compute", paramLabel = "MODE", converter = ComputeConverter.class, defaultValue = "fp32",
            description = {"GPU arithmetic for the products with weights: fp32 (default; no TF32, comparable with the CPU "
                    + "and Hugging Face float32) or bf16 (tensor cores, fp32 accumulation, as PyTorch in bfloat16)."})
    ComputeMode compute = ComputeMode.FP32;

    /** The backend the options name; notes (which device auto chose) go to stderr. */
    public Backend backend() {
        return device.backend(compute, System.err::println);
    }

    static final class DeviceConverter implements picocli.CommandLine.ITypeConverter<Device> {
        @Override
        public Device convert(String value) {
            try {
                return Device.parse(value);
            } catch (dev.jlens.JlensException e) {
                throw new picocli.CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }

    static final class ComputeConverter implements picocli.CommandLine.ITypeConverter<ComputeMode> {
        @Override
        public ComputeMode convert(String value) {
            try {
                return ComputeMode.parse(value);
            } catch (dev.jlens.JlensException e) {
                throw new picocli.CommandLine.TypeConversionException(e.getMessage());
            }
        }
    }
}
