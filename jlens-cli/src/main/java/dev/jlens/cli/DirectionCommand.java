package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.cli.report.DirectionReport;
import dev.jlens.hooks.HookPattern;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionArithmetic;
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
                "  jlens direction --model M --safe happy.txt --harmful sad.txt --positions last:3,mean --method pca --out D",
                "  jlens direction --model Qwen/Qwen2.5-0.5B-Instruct --chat --select arditi --out out/dir-arditi",
                "  jlens direction --combine out/dir-happy:1,out/dir-sad:-1 --out out/dir-mood"})
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

    @Option(names = "--combine", paramLabel = "DIR:W,...",
            description = {"Vector arithmetic instead of a fit: the weighted sum of the raw directions (norm × r̂) of saved",
                    "folders, per (hook, position) all of them have, e.g. out/happy:1,out/sad:-1. No model is run."})
    String combine;

    @Option(names = "--select", paramLabel = "RULE",
            description = {"arditi: Arditi et al.'s selection. Training prompts are first kept to the harmful ones the model",
                    "refuses and the harmless ones it answers (refusal-phrase judge on greedy completions); every",
                    "(position, layer) candidate gets a bypass, induce and KL score on the val split; the choice is the",
                    "lowest bypass with induce > 0, KL < --kl-max and layer < 80%% of depth. Writes arditi.csv and",
                    "arditi.json. With --chat the default positions are every post-instruction token."})
    String select;

    @Option(names = "--filter-tokens", defaultValue = "32", paramLabel = "N",
            description = "--select arditi: tokens generated per training prompt for the refusal filter (default: ${DEFAULT-VALUE}; 0: no filter).")
    int filterTokens;

    @Option(names = "--select-prompts", defaultValue = "32", paramLabel = "N",
            description = "--select arditi: val prompts per class for the scores (default: ${DEFAULT-VALUE}).")
    int selectPrompts;

    @Option(names = "--kl-max", defaultValue = "0.1", paramLabel = "X", description = "--select arditi: the KL bound (default: ${DEFAULT-VALUE}).")
    double klMax;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", description = "Output folder (default: out/direction-<timestamp>).")
    Path out;

    @Override
    public Integer call() {
        if (combine != null) return combine();
        DirectionMethod m = DirectionMethod.parse(method);
        if (m == DirectionMethod.CONTROL_VECTOR) {
            throw new JlensException("--method control-vector: such directions are imported with jlens control-vector import; "
                    + "expected diff-means, pca or probe");
        }
        boolean arditi = select != null;
        if (arditi && !select.strip().equalsIgnoreCase("arditi")) throw new JlensException("--select \"" + select + "\": expected arditi");
        if (arditi && (filterTokens < 0 || selectPrompts < 1 || !(klMax > 0))) {
            throw new JlensException("--filter-tokens must be 0 or more, --select-prompts at least 1, --kl-max positive");
        }
        PromptSet aAll = safe == null ? PromptSets.builtin("harmless") : PromptSets.load(safe, field, "harmless");
        PromptSet bAll = harmful == null ? PromptSets.builtin("harmful") : PromptSets.load(harmful, field, "harmful");
        PromptSet a = select(aAll, "--safe");
        PromptSet b = select(bAll, "--harmful");
        if (out == null) out = Path.of("out", "direction-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        long t0 = System.nanoTime();
        try (HookedModel model = modelOptions.load()) {
            boolean causal = model.info().causal();
            HookPattern pattern = HookPattern.parse(hooks != null ? hooks : causal ? "blocks.*.hook_resid_pre" : "blocks.*.hook_resid_post");
            if (arditi && !causal) throw new JlensException("--select arditi needs a causal language model; " + model.location().id() + " is an encoder");
            String defaultPositions = causal ? "last,mean" : "mean";
            if (arditi) {
                // Arditi et al.'s candidates: every token the chat template puts after the user's message
                defaultPositions = chatOptions.enabled()
                        ? "last:" + chatOptions.encode(model, List.of(a.texts().getFirst()), null).postInstruction()[0] : "last";
            }
            List<TokenPosition> pos = TokenPosition.parseList(positions != null ? positions : defaultPositions);
            ArditiRun.Filter filter = null;
            if (arditi) {
                filter = ArditiRun.filter(model, chatOptions, a, b, filterTokens, batchSize);
                a = filter.harmless();
                b = filter.harmful();
            }
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
            if (arditi) {
                ArditiRun.select(model, chatOptions, set, filter, valSplit(aAll), valSplit(bAll), selectPrompts, klMax, batchSize, out);
            }
            System.out.printf(Locale.ROOT, "%nwrote %s (%s, %s, DIRECTIONS.html) in %.1f s%n", out, DirectionSet.TENSORS,
                    DirectionSet.METADATA, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private int combine() {
        List<DirectionArithmetic.Term> terms = new java.util.ArrayList<>();
        for (String raw : combine.split(",", -1)) {
            String t = raw.strip();
            int colon = t.lastIndexOf(':');
            double w = 1;
            String path = t;
            if (colon > 0 && t.substring(colon + 1).strip().matches("[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?")) {
                w = Double.parseDouble(t.substring(colon + 1).strip());
                path = t.substring(0, colon);
            }
            if (path.isBlank()) throw new JlensException("--combine \"" + combine + "\": an empty item; expected DIR:WEIGHT,DIR:WEIGHT");
            Path dir = Path.of(path.strip());
            terms.add(new DirectionArithmetic.Term(dir, DirectionSet.load(dir), w));
        }
        if (out == null) out = Path.of("out", "direction-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        DirectionSet set = DirectionArithmetic.combine(terms, JlensCli.VERSION);
        set.save(out);
        DirectionReport.write(out.resolve("DIRECTIONS.html"), set);
        print(System.out, set);
        System.out.printf(Locale.ROOT, "%nwrote %s (%s, %s, DIRECTIONS.html): %s%n", out, DirectionSet.TENSORS, DirectionSet.METADATA,
                set.meta().classA().name());
        return 0;
    }

    /** The val split for the selection scores; a small file without one gives all its prompts (with a note). */
    private static PromptSet valSplit(PromptSet s) {
        PromptSet v = s.filterSplit("val");
        if (v.size() > 0) return v;
        System.err.println("note: " + s.name() + " has no prompt in split val; the selection scores use all " + s.size() + " prompts");
        return s;
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
