package dev.jlens.synth;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.DType;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.TensorSpec;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Writes a checkpoint with random weights for any config of a family jlens runs: real model shapes (the
 * published config.json of Pythia 160M-2.8B, Qwen/Qwen3-0.6B, google/gemma-2-2b, meta-llama/Llama-3.2-1B and
 * meta-llama/Meta-Llama-3-8B ship as presets) without downloading gigabytes, for benchmarks and memory tests. The family
 * lists its tensors and their shapes, so every causal family can be synthesised. The folder is what
 * {@code save_pretrained} writes (config.json, model.safetensors with HF tensor names, and the GPT-NeoX
 * tokenizer.json, a stand-in: benchmarks feed token ids), so jlens and transformers both load it. Weights stream to disk tensor by tensor, a
 * megabyte at a time, so a 2.8B-parameter file never sits in the heap.
 *
 * <p>Values are a pure function of (seed, tensor index, element index), uniform with the standard
 * deviation of Pythia's initialisation (0.02); LayerNorm weights are 1 ± 0.1, so activations keep a
 * realistic scale through every layer in every dtype.
 */
public final class SyntheticCheckpoint {

    /** Preset names accepted by {@link #config}. */
    public static final List<String> PRESETS = List.of("pythia-160m", "pythia-410m", "pythia-1.4b", "pythia-2.8b",
            "qwen3-0.6b", "gemma-2-2b", "llama-3.2-1b", "llama-3-8b");

    private static final double STD = 0.02;
    private static final int CHUNK = 1 << 18;

    private SyntheticCheckpoint() {
    }

    /** What was written. */
    public record Summary(Path dir, long parameters, long bytes) {
    }

    /** A preset name (see {@link #PRESETS}) or the path of a config.json. */
    public static ModelConfig config(String nameOrPath) {
        if (PRESETS.contains(nameOrPath)) {
            String resource = "configs/" + nameOrPath + ".json";
            try (InputStream in = SyntheticCheckpoint.class.getResourceAsStream(resource)) {
                if (in == null) throw new IllegalStateException("missing resource " + resource);
                return new ModelConfig(Path.of(nameOrPath + ".json"), new ObjectMapper().readTree(in));
            } catch (IOException e) {
                throw new IllegalStateException("cannot read resource " + resource, e);
            }
        }
        Path p = Path.of(nameOrPath);
        if (!Files.isRegularFile(p)) {
            throw new JlensException("--config " + nameOrPath + ": neither a preset (" + String.join(", ", PRESETS)
                    + ") nor an existing config.json file");
        }
        return ModelConfig.read(p);
    }

    /** Parses f16, bf16 or f32 (also the torch names float16, bfloat16, float32). */
    public static DType dtype(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "f16", "fp16", "float16", "half" -> DType.F16;
            case "bf16", "bfloat16" -> DType.BF16;
            case "f32", "fp32", "float32", "float" -> DType.F32;
            default -> throw new JlensException("--dtype " + s + ": expected f16, bf16 or f32");
        };
    }

    private static String torchName(DType dt) {
        return switch (dt) {
            case F16 -> "float16";
            case BF16 -> "bfloat16";
            default -> "float32";
        };
    }

    /** Writes config.json, model.safetensors and tokenizer.json into dir (created if needed). */
    public static Summary write(ModelConfig config, DType dtype, long seed, Path dir) {
        if (dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F32) {
            throw new JlensException("--dtype " + dtype + ": expected f16, bf16 or f32");
        }
        // The family says which tensors its checkpoints hold, with the shapes this config implies.
        List<TensorSpec> tensors = ModelFamilies.forConfig(config).tensors(config, null);

        SafetensorsWriter st = new SafetensorsWriter().putMetadata("format", "pt")
                .putMetadata("jlens_synthetic", "random weights, seed " + seed);
        long params = 0;
        int index = 0;
        for (TensorSpec t : tensors) {
            long numel = t.numel();
            params += numel;
            long tensorSeed = mix(seed * 0x9E3779B97F4A7C15L + index++);
            Kind kind = t.bias() ? Kind.BIAS : t.role().isNorm() ? Kind.NORM_WEIGHT : Kind.MATRIX;
            st.putStreamed(t.name(), dtype, t.shape(), out -> fill(out, dtype, numel, tensorSeed, kind));
        }

        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new JlensException("--out " + dir + ": cannot create the folder: " + e.getMessage(), e);
        }
        ObjectNode cfg = config.json().deepCopy();
        cfg.put("torch_dtype", torchName(dtype));
        try {
            AtomicFiles.writeString(dir.resolve("config.json"),
                    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(cfg) + "\n");
        } catch (IOException e) {
            throw new JlensException("cannot serialise config for " + dir + ": " + e.getMessage(), e);
        }
        AtomicFiles.write(dir.resolve("tokenizer.json"), out -> {
            try (InputStream in = SyntheticCheckpoint.class.getResourceAsStream("gpt-neox-20b-tokenizer.json")) {
                if (in == null) throw new IOException("the GPT-NeoX tokenizer resource is missing from jlens-core");
                in.transferTo(out);
            }
        });
        Path weights = dir.resolve("model.safetensors");
        st.write(weights);
        long bytes;
        try {
            bytes = Files.size(weights);
        } catch (IOException e) {
            bytes = -1;
        }
        return new Summary(dir, params, bytes);
    }

    private enum Kind { MATRIX, BIAS, NORM_WEIGHT }

    private static void fill(OutputStream out, DType dtype, long n, long tensorSeed, Kind kind) throws IOException {
        int width = dtype.bytes();
        ByteBuffer buf = ByteBuffer.allocate(CHUNK * width).order(ByteOrder.LITTLE_ENDIAN);
        // uniform on [-a, a] has standard deviation a / sqrt(3)
        float a = (float) (STD * Math.sqrt(3));
        for (long i = 0; i < n; i++) {
            // top 24 bits of the hash as a uniform in [-1, 1)
            float u = (mix(tensorSeed + i) >>> 40) * 0x1p-23f - 1f;
            float v = switch (kind) {
                case MATRIX, BIAS -> u * a;
                case NORM_WEIGHT -> 1f + 0.1f * u;
            };
            switch (dtype) {
                case F32 -> buf.putFloat(v);
                case F16 -> buf.putShort(Float.floatToFloat16(v));
                default -> buf.putShort(bf16(v));
            }
            if (!buf.hasRemaining()) {
                out.write(buf.array(), 0, buf.position());
                buf.clear();
            }
        }
        out.write(buf.array(), 0, buf.position());
    }

    /** Round to nearest even, as torch's float → bfloat16 (values here are finite). */
    private static short bf16(float v) {
        int bits = Float.floatToRawIntBits(v);
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** SplitMix64's finaliser: a fast, well-mixed hash of a counter. */
    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
