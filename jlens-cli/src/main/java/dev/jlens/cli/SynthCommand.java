package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.io.DType;
import dev.jlens.model.ModelConfig;
import dev.jlens.synth.SyntheticCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "synth", mixinStandardHelpOptions = true,
        description = {"Write a random-weight checkpoint with a real model's shapes (for benchmarks).",
                "Write a checkpoint with random weights (config.json, model.safetensors,",
                "tokenizer.json) with a real model's shapes, without downloading it: for",
                "benchmarks and memory tests. Presets (their published Hugging Face configs):",
                "pythia-160m, pythia-410m, pythia-1.4b, pythia-2.8b, qwen3-0.6b, gemma-2-2b,",
                "llama-3.2-1b, llama-3-8b; or the path of a config.json of any family jlens runs."},
        footer = {"", "Examples:",
                "  jlens synth --config pythia-1.4b --dtype f16 --out /tmp/pythia-1.4b-synth",
                "  jlens bench --model /tmp/pythia-1.4b-synth --batch 16 --tokens 32",
                "  jlens synth --config gemma-2-2b --dtype bf16 --out /tmp/gemma-2-2b-synth"})
final class SynthCommand implements Callable<Integer> {

    @Option(names = "--config", required = true, paramLabel = "C",
            description = {"A preset or a config.json path. Presets (published config.json of each model): pythia-160m,",
                    "pythia-410m, pythia-1.4b, pythia-2.8b, qwen3-0.6b, gemma-2-2b, llama-3.2-1b, llama-3-8b."})
    String config;

    @Option(names = "--dtype", defaultValue = "f16", paramLabel = "T",
            description = "Weight type: f16, bf16 or f32 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (created).")
    Path out;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S",
            description = "Random seed; the same seed writes the same bytes (default: ${DEFAULT-VALUE}).")
    long seed;

    @Override
    public Integer call() {
        ModelConfig cfg = SyntheticCheckpoint.config(config);
        DType dt = SyntheticCheckpoint.dtype(dtype);
        if (out.toFile().isFile()) throw new JlensException("--out " + out + ": is a file; expected a folder");
        long t0 = System.nanoTime();
        System.err.printf("writing %s (%s, seed %d) to %s ...%n", config, dt, seed, out);
        SyntheticCheckpoint.Summary s = SyntheticCheckpoint.write(cfg, dt, seed, out);
        double secs = (System.nanoTime() - t0) / 1e9;
        System.out.printf(Locale.ROOT, "wrote %s: %s parameters, %s of %s weights in %.1f s%n",
                s.dir(), Format.count(s.parameters()), Format.bytes(s.bytes()), dt, secs);
        return 0;
    }
}
