package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.cli.report.DirectionReport;
import dev.jlens.hooks.HookPattern;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionFinder;
import dev.jlens.steering.DirectionMethod;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.TokenPosition;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "direction", mixinStandardHelpOptions = true,
        description = {"Find the harmless-to-harmful direction in every layer and save it.",
                "Find the direction from harmless (A) to harmful (B) prompts in every layer: the difference of the",
                "class means (default), the first principal axis of paired differences, or a logistic probe's weights;",
                "one direction per hook and token position, unit-normalised, with its raw norm kept.",
                "",
                "Writes directions.safetensors, directions.json and DIRECTIONS.html (cosine between layers' directions",
                "as a heat map) to --out. jlens steer and jlens orthogonalize read that folder. Formulas: docs/STEERING.md."},
        footer = {"", "Examples:",
                "  jlens direction --model EleutherAI/pythia-410m --out out/dir-pythia",
                "  jlens direction --model M --safe happy.txt --harmful sad.txt --positions last:3,mean --method pca --out D"})
final class DirectionCommand implements Callable<Integer> {

    @Mixin
    ChatOptions chatOptions;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--safe", paramLabel = "FILE",
            description = "Class A prompts (.txt, .jsonl, .csv). Default: the built-in harmless set.")
    Path safe;

    @Option(names = "--harmful", paramLabel = "FILE",
            description = "Class B prompts. Default: the built-in harmful set. Directions point from A to B.")
    Path harmful;

    @Option(names = "--field", defaultValue = "text", paramLabel = "NAME",
            description = "JSONL field / CSV column with the prompt text (default: ${DEFAULT-VALUE}).")
    String field;

    @Option(names = "--split", defaultValue = "train", paramLabel = "S",
            description = {"Which split of each set to use: train (default; jlens steer evaluates on val),",
                    "val, test or all."})
    String split;

    @Option(names = "--hooks", paramLabel = "PATTERN",
            description = "Hooks to read (default: blocks.*.hook_resid_pre for causal models, blocks.*.hook_resid_post for encoders).")
    String hooks;

    @Option(names = "--positions", paramLabel = "LIST",
            description = {"Token positions, comma-separated: last, last:K (each of the last K tokens), last-K, mean",
                    "(default: last,mean for causal models, mean for encoders)."})
    String positions;

    @Option(names = "--method", defaultValue = "diff-means", paramLabel = "M",
            description = "diff-means (default), pca (paired differences) or probe (logistic regression weights).")
    String method;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N", description = "Prompts per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", description = "Output folder (default: out/direction-<timestamp>).")
    Path out;

    @Override
    public Integer call() {
        DirectionMethod m = DirectionMethod.parse(method);
        PromptSet a = select(safe == null ? PromptSets.builtin("harmless") : PromptSets.load(safe, field, "harmless"), "--safe");
        PromptSet b = select(harmful == null ? PromptSets.builtin("harmful") : PromptSets.load(harmful, field, "harmful"), "--harmful");
        if (out == null) out = Path.of("out", "direction-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        long t0 = System.nanoTime();
        try (HookedModel model = modelOptions.load()) {
            boolean causal = model.info().causal();
            HookPattern pattern = HookPattern.parse(hooks != null ? hooks : causal ? "blocks.*.hook_resid_pre" : "blocks.*.hook_resid_post");
            List<TokenPosition> pos = TokenPosition.parseList(positions != null ? positions : causal ? "last,mean" : "mean");
            System.err.printf("model %s: %d layers, d_model %d; class A %s (%d prompts), class B %s (%d prompts)%n",
                    model.location().id(), model.info().nLayers(), model.info().dModel(), a.name(), a.size(), b.name(), b.size());
            DirectionSet set;
            int[] warned = {0};
            try (Progress bar = new Progress("forward", "prompts", a.size() + b.size())) {
                set = DirectionFinder.compute(model, a, b, new DirectionFinder.Options(pattern, pos, m, batchSize, 1.0), bar,
                        w -> {
                            if (warned[0]++ < 5) System.err.println("warning: " + w);
                        }, JlensCli.VERSION, texts -> chatOptions.encode(model, texts, w -> {
                            if (warned[0]++ < 5) System.err.println("warning: " + w);
                        }).ids());
            }
            set.save(out);
            DirectionReport.write(out.resolve("DIRECTIONS.html"), set);
            print(System.out, set);
            System.out.printf(Locale.ROOT, "%nwrote %s (%s, %s, DIRECTIONS.html) in %.1f s%n", out, DirectionSet.TENSORS,
                    DirectionSet.METADATA, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private PromptSet select(PromptSet s, String option) {
        PromptSet chosen = split.equalsIgnoreCase("all") ? s : s.filterSplit(split.toLowerCase(Locale.ROOT));
        if (chosen.size() < 2) {
            throw new JlensException(option + " (" + s.name() + "): " + chosen.size() + " prompt(s) in split " + split
                    + "; each class needs at least 2 (use --split all for small files)");
        }
        return chosen;
    }

    private static void print(PrintStream o, DirectionSet set) {
        o.printf(Locale.ROOT, "%n%-36s %10s %10s %10s %10s %8s%n", "direction", "norm", "norm/|x|", "proj A", "proj B", "cos_dm");
        for (Direction d : set.directions()) {
            o.printf(Locale.ROOT, "%-36s %10s %10.4f %10s %10s %8.4f%n", d.name(), Format.num(d.norm()), d.norm() / d.meanNorm(),
                    Format.num(d.meanProjA()), Format.num(d.meanProjB()), d.cosToDiffMeans());
        }
    }
}
