package dev.jlens.cli;

import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelInfo;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.util.concurrent.Callable;

@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = {"Show what a model is and which hooks it has.",
                "Prints the architecture, sizes, weight dtype, parameter count, the memory it needs, and every hook point "
                        + "name (the names --hooks patterns select from)."},
        footer = {"", "Example:  jlens inspect --model ../shared/fixtures/gpt_neox_tiny"})
final class InspectCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--compact", description = "List hook names as patterns (blocks.{0..N}.hook_x) instead of one per line.")
    boolean compact;

    @Override
    public Integer call() {
        PrintStream out = System.out;
        try (HookedModel m = modelOptions.load()) {
            ModelInfo i = m.info();
            out.printf("model          %s%n", m.location().id());
            if (m.location().revision() != null) out.printf("revision       %s%n", m.location().revision());
            if (m.location().dir() != null) out.printf("folder         %s%n", m.location().dir());
            out.printf("architecture   %s (family %s, %s)%n", i.architecture(), i.family(), i.causal() ? "causal LM" : "encoder");
            out.printf("layers         %d%n", i.nLayers());
            out.printf("d_model        %d%n", i.dModel());
            out.printf("heads          %d (kv heads %d, head size %d)%n", i.nHeads(), i.nKvHeads(), i.dModel() / i.nHeads());
            out.printf("d_mlp          %d%n", i.dMlp());
            out.printf("vocab          %d%n", i.vocabSize());
            out.printf("context        %d tokens%n", i.maxPositions());
            out.printf("weights dtype  %s%n", i.weightDType());
            out.printf("parameters     %,d (%s)%n", i.parameterCount(), Format.count(i.parameterCount()));
            out.printf("memory         %s of weights (memory-mapped, kept in %s) + activations%n",
                    Format.bytes(i.weightBytes()), i.weightDType());
            if (m.location().dir() != null) {
                // Only where the template is read from: rendering it would start the Jinja engine (a second).
                String chat;
                try {
                    chat = dev.jlens.tokenizer.ChatTemplate.find(m.location().dir())
                            .map(t -> t.origin() + " (--chat uses it)").orElse("none (a base model; --chat is not available)");
                } catch (dev.jlens.JlensException e) {
                    chat = "unusable: " + e.getMessage();
                }
                out.printf("chat template  %s%n", chat);
            }
            out.printf("hook points    %d%n", m.hookPoints().size());
            if (compact) {
                out.println("  " + HookPattern.describe(m.hookPoints()));
            } else {
                for (HookPoint p : m.hookPoints()) out.println("  " + p.name());
            }
        }
        return 0;
    }
}
