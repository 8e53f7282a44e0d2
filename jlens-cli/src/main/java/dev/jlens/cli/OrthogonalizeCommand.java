package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionChoice;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.WeightOrthogonalizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "orthogonalize", mixinStandardHelpOptions = true,
        description = {"Write a copy of a model with a direction projected out of its weights.",
                "Write a copy of a model whose weights cannot write along a direction: r̂ is projected out of the",
                "embedding and of every matrix (and bias) that writes to the residual stream. The copy's plain",
                "forward pass equals ablating r̂ at every layer's resid_pre, attn_out and mlp_out (Arditi et al. 2024).",
                "The folder holds config.json, model.safetensors, the tokenizer files and orthogonalization.json."},
        footer = {"", "Example:",
                "  jlens orthogonalize --model EleutherAI/pythia-410m --direction out/dir-pythia --layer 10 --out out/pythia-orth"})
final class OrthogonalizeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--direction", required = true, paramLabel = "DIR", description = "The --out folder of jlens direction.")
    Path direction;

    @Option(names = "--layer", paramLabel = "L",
            description = {"Whose direction to remove (default: the layer with the largest class separation",
                    "relative to the activation norm among the first 80%% of layers; jlens steer selects more carefully)."})
    Integer layer;

    @Option(names = "--hook", paramLabel = "KIND", description = "Hook kind of the direction, e.g. resid_pre (default: the file's first).")
    String hook;

    @Option(names = "--position", paramLabel = "POS", description = "Token position of the direction (default: last, if present).")
    String position;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Folder for the new checkpoint.")
    Path out;

    @Override
    public Integer call() {
        DirectionSet set = DirectionSet.load(direction);
        if (ModelLoader.EMBEDDED_DEFAULT.equalsIgnoreCase(modelOptions.modelName())) {
            throw new JlensException("--model " + modelOptions.modelName() + " is the embedded encoder, which has no checkpoint "
                    + "folder to rewrite; orthogonalize works on causal language model folders (GPT-NeoX, GPT-2, Llama)");
        }
        try (HookedModel m = modelOptions.load()) {
            if (!m.info().causal()) {
                throw new JlensException("--model " + m.location().id() + " is an encoder (" + m.info().architecture()
                        + "); orthogonalize works on causal language models (GPT-NeoX, GPT-2, Llama)");
            }
            String warning = set.checkCompatible(m.info(), m.location().id(), direction);
            if (warning != null) System.err.println("warning: " + warning);
            DirectionChoice choice = DirectionChoice.resolve(set, hook, position, direction);
            int l = layer != null ? layer : choice.defaultLayer(set);
            Direction d = choice.at(set, l, direction);
            if (layer == null) {
                System.err.printf(Locale.ROOT, "using %s: largest separation (μ_B − μ_A)·r̂ / mean ‖x‖ = %.4f among layers 0..%d "
                        + "(the last 20%% are excluded); pass --layer to choose another%n", d.name(), d.norm() / d.meanNorm(),
                        DirectionChoice.maxSelectableLayer(m.info().nLayers()));
            }
            Map<String, Object> prov = new LinkedHashMap<>();
            prov.put("source_model", m.location().id());
            prov.put("directions", direction.toAbsolutePath().normalize().toString());
            prov.put("direction", d.name());
            prov.put("method", set.meta().method().cliName());
            prov.put("jlens_version", JlensCli.VERSION);
            long t0 = System.nanoTime();
            WeightOrthogonalizer.Summary s = WeightOrthogonalizer.orthogonalize(m.location().dir(), d.unit(), out, prov);
            System.out.printf(Locale.ROOT, "wrote %s: %d tensors orthogonalised to %s%s, %d copied, in %.1f s%n", out,
                    s.changed().size(), d.name(), s.untied() ? " (the tied embedding is kept as a separate unembedding; config untied)" : "",
                    s.copied(), (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }
}
