package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import dev.jlens.steering.ControlVector;
import dev.jlens.steering.DirectionChoice;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.Intervention;
import dev.jlens.steering.SteeringSweep;
import dev.jlens.steering.WeightedLayers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "control-vector", mixinStandardHelpOptions = true,
        description = {"Exchange directions with llama.cpp and Ollama as control vectors (GGUF, as repeng writes).",
                "llama.cpp adds strength × direction.N to the output of block N (jlens:",
                "blocks.N.hook_resid_post, which is blocks.N+1.hook_resid_pre) on every token; N starts at 1."},
        subcommands = {ControlVectorCommand.Export.class, ControlVectorCommand.Import.class},
        footer = {"", "Examples:",
                "  jlens control-vector export --direction out/dir --layers 8:1.0,9:0.5 --alpha 4 --out refusal.gguf",
                "  llama-cli -m model.gguf --control-vector-scaled refusal.gguf -1.0 -p \"...\"",
                "  jlens control-vector import happy.gguf --model M --out out/dir-happy"})
final class ControlVectorCommand implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(name = "export", mixinStandardHelpOptions = true,
            description = {"Write directions of a jlens direction folder as a llama.cpp control vector.",
                    "For each --layers entry LAYER:WEIGHT, the unit direction times WEIGHT × α. Directions at",
                    "hook_resid_pre of block L go to direction.(L−1), at hook_resid_post of block L to direction.L."},
            footer = {"", "Example:", "  jlens control-vector export --direction out/dir --layers 8:1.0,9:0.5 --alpha 2x --out cv.gguf"})
    static final class Export implements Callable<Integer> {

        @Option(names = "--direction", required = true, paramLabel = "DIR", description = "The --out folder of jlens direction.")
        Path direction;

        @Option(names = "--layers", required = true, paramLabel = "LIST", description = "Layers and weights, e.g. 8 or 8:1.0,9:0.5.")
        String layers;

        @Option(names = "--alpha", defaultValue = "1x", paramLabel = "A",
                description = "Scale in activation units, or a multiple of each direction's norm with x (default: ${DEFAULT-VALUE}).")
        String alpha;

        @Option(names = "--hook", paramLabel = "KIND", description = "Hook kind (default: the file's first).")
        String hook;

        @Option(names = "--position", paramLabel = "POS", description = "Token position (default: last).")
        String position;

        @Option(names = "--model-hint", paramLabel = "ARCH", description = "controlvector.model_hint (default: the model family, e.g. llama).")
        String modelHint;

        @Option(names = {"-o", "--out"}, required = true, paramLabel = "FILE", description = "The .gguf file to write.")
        Path out;

        @Override
        public Integer call() {
            DirectionSet set = DirectionSet.load(direction);
            DirectionChoice choice = DirectionChoice.resolve(set, hook, position, direction);
            WeightedLayers wl = WeightedLayers.parse(layers, set.meta().nLayers());
            List<SteeringSweep.Alpha> a = SteeringSweep.parseAlphas(alpha, Intervention.Mode.ADD);
            if (a.size() != 1) throw new JlensException("--alpha \"" + alpha + "\": export takes one coefficient");
            String hint = modelHint != null ? modelHint : set.meta().family().toLowerCase(Locale.ROOT);
            ControlVector cv = ControlVector.fromDirections(set, choice, wl, a.getFirst(), hint, direction);
            cv.write(out);
            System.out.printf(Locale.ROOT, "wrote %s: %d layer%s (%s), n_embd %d, model_hint \"%s\"%n", out, cv.directions().size(),
                    cv.directions().size() == 1 ? "" : "s", cv.directions().keySet().stream().map(l -> "direction." + l).toList(),
                    cv.nEmbd(), hint);
            return 0;
        }
    }

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = {"Read a llama.cpp / repeng control vector into a jlens direction folder.",
                    "One direction per layer at blocks.N.hook_resid_post, norm = the vector's length, so",
                    "--alpha 1x adds what llama.cpp adds at strength 1. --model gives the shape it must fit."},
            footer = {"", "Example:", "  jlens control-vector import happy.gguf --model M --out out/dir-happy"})
    static final class Import implements Callable<Integer> {

        @Mixin
        ModelOptions modelOptions;

        @Parameters(index = "0", paramLabel = "FILE", description = "The control vector (.gguf).")
        Path file;

        @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "The directions folder to write.")
        Path out;

        @Override
        public Integer call() throws IOException {
            if (!Files.isRegularFile(file)) throw new JlensException(file + ": no such file; expected a control vector .gguf");
            ControlVector cv = ControlVector.read(file);
            String sha;
            try {
                sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
            try (HookedModel m = modelOptions.load()) {
                DirectionSet set = cv.toDirectionSet(m.location().id(), m.info(), file.toString(), sha, JlensCli.VERSION);
                set.save(out);
                System.out.printf(Locale.ROOT, "wrote %s: %d directions at %s (model_hint \"%s\")%n", out, set.directions().size(),
                        set.meta().hooks(), cv.modelHint());
            }
            return 0;
        }
    }
}
