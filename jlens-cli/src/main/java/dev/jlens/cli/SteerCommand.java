package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.SteerReport;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.steering.DirectionChoice;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.HarmlessCorpus;
import dev.jlens.steering.Intervention;
import dev.jlens.steering.Refusal;
import dev.jlens.steering.SteeringEvaluator;
import dev.jlens.steering.SteeringSweep;
import dev.jlens.steering.TokenScope;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "steer", mixinStandardHelpOptions = true,
        description = {"Intervene along the directions of jlens direction and measure what it does and what it costs.",
                "  add:    x += α·r̂ at the direction's hook in each --layers layer",
                "  ablate: x -= (x·r̂)·r̂ at every layer's resid_pre, attn_out and mlp_out, with each --layers layer's r̂",
                "  clamp:  x·r̂ := c at the direction's hook in each --layers layer (c from --alpha)",
                "Effect: projection on r̂, the class score of the last layer's readout, next-token refusal log-odds and",
                "the refusal rate of sample generations; cost: KL of the next-token distribution on harmless prompts and",
                "cross-entropy on jlens' harmless corpus (encoders: change of the pooled embedding).",
                "Writes steer.csv, samples.jsonl, selection.json and STEER.html to --out, and selects the setting with",
                "the largest effect whose cost is under --kl-threshold outside the last 20%% of layers (Arditi et al.)."},
        footer = {"", "Examples:",
                "  jlens steer --model M --direction D --mode ablate --layers 4-12 --out out/steer-ablate",
                "  jlens steer --model M --direction D --mode add --alpha 0.5x,1x,2x,4x --layers 6,8 --out out/steer-add",
                "  jlens steer --model M --direction D --mode clamp --alpha a,0 --layers 8 --tokens generated --out O"})
final class SteerCommand implements Callable<Integer> {

    @Mixin
    ChatOptions chatOptions;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--direction", required = true, paramLabel = "DIR", description = "The --out folder of jlens direction.")
    Path direction;

    @Option(names = "--mode", defaultValue = "add", paramLabel = "M", description = "add (default), ablate or clamp.")
    String mode;

    @Option(names = "--alpha", paramLabel = "LIST",
            description = {"Comma-separated coefficients (add) or target projections (clamp), in activation units,",
                    "or as multiples of the direction's norm with an x suffix (0.5x,1x); clamp also takes a and b,",
                    "the class means of x·r̂. Default: add 0.5x,1x,2x; clamp a. Ignored by ablate."})
    String alpha;

    @Option(names = "--layers", defaultValue = "all", paramLabel = "LIST",
            description = "Layers whose direction is used, e.g. 2,4-6 (default: all, i.e. every layer the file has).")
    String layers;

    @Option(names = "--hook", paramLabel = "KIND", description = "Hook kind of the direction, e.g. resid_pre (default: the file's first).")
    String hook;

    @Option(names = "--position", paramLabel = "POS", description = "Token position of the direction (default: last, if present).")
    String position;

    @Option(names = "--tokens", defaultValue = "both", paramLabel = "T",
            description = "Tokens add and clamp act on while generating: prompt, generated or both (default).")
    String tokens;

    @Option(names = "--ablate-hooks", paramLabel = "PATTERN",
            description = "Hooks to ablate at instead of every resid_pre, attn_out and mlp_out.")
    String ablateHooks;

    @Option(names = "--safe", paramLabel = "FILE", description = "Class A prompts (default: built-in harmless); use the same as jlens direction.")
    Path safe;

    @Option(names = "--harmful", paramLabel = "FILE", description = "Class B prompts (default: built-in harmful).")
    Path harmful;

    @Option(names = "--field", defaultValue = "text", paramLabel = "NAME", description = "JSONL field / CSV column (default: ${DEFAULT-VALUE}).")
    String field;

    @Option(names = "--eval", paramLabel = "A|B",
            description = "Which class the effect is measured on (default: A for add, B for ablate and clamp).")
    String evalClass;

    @Option(names = "--eval-split", defaultValue = "val", paramLabel = "S",
            description = "Split of the prompt sets to evaluate on (default: ${DEFAULT-VALUE}; the directions use train).")
    String evalSplit;

    @Option(names = "--eval-prompts", defaultValue = "32", paramLabel = "N", description = "Evaluation prompts (default: ${DEFAULT-VALUE}).")
    int evalPrompts;

    @Option(names = "--cost-prompts", defaultValue = "32", paramLabel = "N", description = "Harmless prompts for the KL (default: ${DEFAULT-VALUE}).")
    int costPrompts;

    @Option(names = "--centroid-prompts", defaultValue = "64", paramLabel = "N",
            description = "Training prompts per class for the readout centroids (default: ${DEFAULT-VALUE}).")
    int centroidPrompts;

    @Option(names = "--effect", paramLabel = "METRIC",
            description = "refusal (next-token log-odds; default for causal models) or class (readout class score; encoders).")
    String effect;

    @Option(names = "--refusal-tokens", paramLabel = "LIST",
            description = "Words whose first token counts as a refusal opening (default: I,Sorry,As,Unfortunately,Unable).")
    String refusalTokens;

    @Option(names = "--ce-tokens", defaultValue = "2048", paramLabel = "N",
            description = "Tokens of the harmless corpus for the cross-entropy (default: ${DEFAULT-VALUE}; 0 = the whole corpus).")
    int ceTokens;

    @Option(names = "--ce-window", defaultValue = "128", paramLabel = "N", description = "Tokens per cross-entropy window (default: ${DEFAULT-VALUE}; 0 turns the cross-entropy off).")
    int ceWindow;

    @Option(names = "--kl-threshold", defaultValue = "0.1", paramLabel = "X",
            description = "Selection keeps settings with KL (encoders: embedding change) below X (default: ${DEFAULT-VALUE}).")
    double klThreshold;

    @Option(names = "--samples", defaultValue = "3", paramLabel = "N", description = "Evaluation prompts to generate from per setting (default: ${DEFAULT-VALUE}).")
    int samples;

    @Option(names = "--max-new-tokens", defaultValue = "32", paramLabel = "N", description = "Tokens per sample generation (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N", description = "Prompts per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", description = "Output folder (default: out/steer-<timestamp>).")
    Path out;

    @Override
    public Integer call() throws IOException {
        // Everything that can be checked without the model is checked first, so typos fail at once.
        Intervention.Mode m = Intervention.Mode.parse(mode);
        DirectionSet set = DirectionSet.load(direction);
        DirectionChoice choice = DirectionChoice.resolve(set, hook, position, direction);
        // "all" means every layer the file has a direction for at this hook and position.
        List<Integer> layerList = layers.strip().equalsIgnoreCase("all") ? set.layers(choice.hookSuffix(), choice.position())
                : SteeringSweep.parseLayers(layers, set.meta().nLayers());
        if (m == Intervention.Mode.ABLATE && alpha != null) System.err.println("warning: --alpha is ignored by --mode ablate");
        List<SteeringSweep.Alpha> alphas = m == Intervention.Mode.ABLATE ? List.of()
                : SteeringSweep.parseAlphas(alpha != null ? alpha : m == Intervention.Mode.ADD ? "0.5x,1x,2x" : "a", m);
        TokenScope scope = TokenScope.parse(tokens);
        for (int l : layerList) choice.at(set, l, direction);
        for (int n : new int[]{evalPrompts, costPrompts, centroidPrompts, batchSize}) {
            if (n < 1) throw new JlensException("--eval-prompts, --cost-prompts, --centroid-prompts and --batch-size must be at least 1");
        }
        if (samples < 0 || maxNewTokens < 1) throw new JlensException("--samples must be 0 or more and --max-new-tokens at least 1");
        if (!(klThreshold > 0)) throw new JlensException("--kl-threshold " + klThreshold + ": expected a positive number");
        if (ceTokens < 0) throw new JlensException("--ce-tokens " + ceTokens + ": expected 0 (the whole corpus) or more");
        boolean evalA = evalClass == null ? m == Intervention.Mode.ADD : parseClass(evalClass);
        PromptSet a = safe == null ? PromptSets.builtin("harmless") : PromptSets.load(safe, field, "harmless");
        PromptSet b = harmful == null ? PromptSets.builtin("harmful") : PromptSets.load(harmful, field, "harmful");
        if (out == null) out = Path.of("out", "steer-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));

        long t0 = System.nanoTime();
        try (HookedModel model = modelOptions.load()) {
            String warning = set.checkCompatible(model.info(), model.location().id(), direction);
            if (warning != null) System.err.println("warning: " + warning);
            boolean causal = model.info().causal();
            SteeringSweep.EffectMetric metric = effect != null ? SteeringSweep.EffectMetric.parse(effect)
                    : causal ? SteeringSweep.EffectMetric.REFUSAL : SteeringSweep.EffectMetric.CLASS;
            if (metric == SteeringSweep.EffectMetric.REFUSAL && !causal) {
                throw new JlensException("--effect refusal needs a causal language model; " + model.location().id()
                        + " is an encoder: use --effect class");
            }
            List<String> ablateList = null;
            if (ablateHooks != null) {
                ablateList = new ArrayList<>();
                for (HookPoint p : HookPattern.parse(ablateHooks).select(model.hookPoints())) ablateList.add(p.name());
            }
            List<String> evalTexts = take(split(evalA ? a : b, evalSplit), evalPrompts);
            List<String> costTexts = take(split(a, evalSplit), costPrompts);
            List<int[]> evalIds = encode(model, evalTexts), costIds = encode(model, costTexts);
            List<int[]> centA = encode(model, take(split(a, "train"), centroidPrompts));
            List<int[]> centB = encode(model, take(split(b, "train"), centroidPrompts));
            int[] refusalIds = causal ? Refusal.tokenIds(model.tokenizer(),
                    refusalTokens == null ? Refusal.DEFAULT_TOKENS : Arrays.asList(refusalTokens.split(",", -1))) : new int[0];
            List<int[]> windows = causal && ceWindow > 0 ? HarmlessCorpus.windows(model, ceWindow, ceTokens) : List.of();
            if (!causal && samples > 0) System.err.println("note: " + model.location().id() + " is an encoder; no sample generations");
            System.err.printf("model %s; %s along %s @ %s; %d settings; effect on %d %s prompts, cost on %d harmless prompts%s%n",
                    model.location().id(), m.cliName(), choice.hookSuffix(), choice.position(),
                    layerList.size() * Math.max(1, alphas.size()) + 1, evalIds.size(), evalA ? "class A" : "class B", costIds.size(),
                    windows.isEmpty() ? "" : " and " + windows.stream().mapToInt(w -> w.length).sum() + " corpus tokens");

            SteeringSweep.Config cfg = new SteeringSweep.Config(m, set, choice, layerList, alphas, scope, ablateList, metric,
                    evalA, causal ? samples : 0, maxNewTokens);
            List<SteeringSweep.Row> rows;
            try (Progress bar = new Progress("settings", "settings", layerList.size() * Math.max(1, alphas.size()) + 1)) {
                SteeringEvaluator ev = new SteeringEvaluator(model, new SteeringEvaluator.Inputs(evalIds, costIds, windows, centA, centB,
                        refusalIds, batchSize));
                rows = SteeringSweep.run(model, ev, cfg, causal ? take(evalTexts, samples) : List.of(), bar, direction);
            }
            SteeringSweep.Selection sel = SteeringSweep.select(rows, model.info().nLayers(), klThreshold, causal);
            writeCsv(out.resolve("steer.csv"), rows);
            writeSamples(out.resolve("samples.jsonl"), rows);
            writeSelection(out.resolve("selection.json"), sel, choice, metric);
            SteerReport.write(out.resolve("STEER.html"), new SteerReport.Info(model.location().id(), direction.toString(),
                    choice.hookSuffix() + " @ " + choice.position(), m.cliName(), (evalA ? "class A (" + a.name() : "class B (" + b.name()) + ")",
                    metric.name().toLowerCase(Locale.ROOT), causal, klThreshold, scope.name().toLowerCase(Locale.ROOT)), rows, sel);
            print(System.out, rows, causal);
            System.out.println();
            System.out.println((sel.row() == null ? "no selection: " : "selected: ") + sel.why());
            System.out.printf(Locale.ROOT, "%nwrote %s (steer.csv, samples.jsonl, selection.json, STEER.html) in %.1f s%n", out,
                    (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private static boolean parseClass(String s) {
        return switch (s.strip().toUpperCase(Locale.ROOT)) {
            case "A", "SAFE", "HARMLESS" -> true;
            case "B", "HARMFUL" -> false;
            default -> throw new JlensException("--eval \"" + s + "\": expected A (the --safe class) or B (the --harmful class)");
        };
    }

    /** A split of a set; when a small file has no prompt in it, all prompts (with a note). */
    private static PromptSet split(PromptSet s, String split) {
        if (split.equalsIgnoreCase("all")) return s;
        PromptSet f = s.filterSplit(split.toLowerCase(Locale.ROOT));
        if (f.size() == 0) {
            System.err.println("note: " + s.name() + " has no prompt in split " + split + "; using all " + s.size() + " prompts");
            return s;
        }
        return f;
    }

    private static List<String> take(PromptSet s, int n) {
        return take(s.texts(), n);
    }

    private static List<String> take(List<String> l, int n) {
        return l.subList(0, Math.min(n, l.size()));
    }

    private List<int[]> encode(HookedModel m, List<String> texts) {
        if (chatOptions.enabled()) return chatOptions.encode(m, texts, w -> System.err.println("warning: " + w)).ids();
        List<int[]> out = new ArrayList<>();
        for (String t : texts) out.add(m.encode(t, w -> System.err.println("warning: " + w)));
        return out;
    }

    static final List<String> COLUMNS = List.of("mode", "layer", "alpha", "value", "proj_before", "proj_after", "class_score",
            "refusal_logodds", "refusal_rate", "effect", "ce", "kl", "emb_change");

    private static void writeCsv(Path file, List<SteeringSweep.Row> rows) {
        StringBuilder sb = new StringBuilder(String.join(",", COLUMNS)).append('\n');
        for (SteeringSweep.Row r : rows) {
            var s = r.setting();
            List<String> v = new ArrayList<>();
            v.add(s.isBaseline() ? "none" : s.mode().cliName());
            v.add(s.isBaseline() ? "" : Integer.toString(s.layer()));
            v.add(s.alpha() == null ? "" : s.alpha().text());
            for (double x : new double[]{r.value(), r.projBefore(), r.metrics().projection(), r.metrics().classScore(),
                    r.metrics().refusalLogOdds(), r.refusalRate(), r.effect(), r.metrics().ce(), r.metrics().kl(), r.metrics().embChange()}) {
                v.add(Double.isFinite(x) ? Double.toString(x) : "");
            }
            sb.append(String.join(",", v)).append('\n');
        }
        AtomicFiles.writeString(file, sb.toString());
    }

    private static void writeSamples(Path file, List<SteeringSweep.Row> rows) throws IOException {
        ObjectMapper om = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (SteeringSweep.Row r : rows) {
            for (SteeringSweep.Sample s : r.samples()) {
                ObjectNode o = om.createObjectNode();
                o.put("mode", r.setting().isBaseline() ? "none" : r.setting().mode().cliName());
                if (!r.setting().isBaseline()) o.put("layer", r.setting().layer());
                if (r.setting().alpha() != null) o.put("alpha", r.setting().alpha().text());
                o.put("prompt", s.prompt());
                o.put("text", s.text());
                o.put("refusal", s.refusal());
                sb.append(om.writeValueAsString(o)).append('\n');
            }
        }
        AtomicFiles.writeString(file, sb.toString());
    }

    private static void writeSelection(Path file, SteeringSweep.Selection sel, DirectionChoice choice,
                                       SteeringSweep.EffectMetric metric) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode o = om.createObjectNode();
        o.put("selected", sel.row() != null);
        o.put("why", sel.why());
        o.put("effect_metric", metric.name().toLowerCase(Locale.ROOT));
        o.put("hook", choice.hookSuffix());
        o.put("position", choice.position());
        if (sel.row() != null) {
            o.put("mode", sel.row().setting().mode().cliName());
            o.put("layer", sel.row().setting().layer());
            o.put("direction", choice.hookAt(sel.row().setting().layer()) + ":" + choice.position());
            if (sel.row().setting().alpha() != null) o.put("alpha", sel.row().setting().alpha().text());
            if (Double.isFinite(sel.row().value())) o.put("value", sel.row().value());
            o.put("effect", sel.row().effect());
        }
        AtomicFiles.writeString(file, om.writeValueAsString(o) + "\n");
    }

    private static void print(PrintStream o, List<SteeringSweep.Row> rows, boolean causal) {
        o.printf(Locale.ROOT, "%n%-22s %10s %10s %10s %10s %10s %8s %10s %10s%n", "setting", "value", "proj", "class",
                "refusal", "effect", "rate", causal ? "ce" : "", causal ? "kl" : "emb_change");
        for (SteeringSweep.Row r : rows) {
            var s = r.setting();
            String name = s.isBaseline() ? "baseline" : s.mode().cliName() + " L" + s.layer() + (s.alpha() == null ? "" : " " + s.alpha().text());
            o.printf(Locale.ROOT, "%-22s %10s %10s %10s %10s %10s %8s %10s %10s%n", name, Format.num(r.value()),
                    Format.num(r.metrics().projection()), Format.num(r.metrics().classScore()), Format.num(r.metrics().refusalLogOdds()),
                    Format.num(r.effect()), Format.num(r.refusalRate()), causal ? Format.num(r.metrics().ce()) : "",
                    Format.num(causal ? r.metrics().kl() : r.metrics().embChange()));
        }
    }
}
