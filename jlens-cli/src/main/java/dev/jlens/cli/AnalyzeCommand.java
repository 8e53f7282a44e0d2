package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.geometry.GeometryAnalyzer;
import dev.jlens.geometry.GeometryOptions;
import dev.jlens.geometry.LayerMetrics;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.AtomicFiles;
import dev.jlens.load.MemoryEstimate;
import dev.jlens.model.HookedModel;
import dev.jlens.detect.DetectorFitter;
import dev.jlens.detect.DetectorKind;
import dev.jlens.detect.Evaluation;
import dev.jlens.detect.Prober;
import dev.jlens.detect.StyleSplitCheck;
import dev.jlens.detect.TextBaselines;
import dev.jlens.geometry.Estimate;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.cli.report.AnalyzeReport;
import dev.jlens.cli.report.RunInfo;
import dev.jlens.tensor.FloatTensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "analyze", mixinStandardHelpOptions = true,
        description = {"Where do harmless and harmful prompts separate, layer by layer?",
                "The layer-wise geometry experiment: compares harmless (A) and harmful (B) prompts in a model's residual "
                        + "stream -- angle, distance, dispersion, linear separability -- with bootstrap CIs and permutation "
                        + "p-values. With no options: the embedded MiniLM model, jlens' built-in harmless and harmful prompt "
                        + "sets, hooks blocks.*.hook_resid_post, mean pooling, 1000 bootstrap draws and 1000 permutations.",
                "",
                "Writes metrics.csv, metrics.json, the cached activations, prompts.jsonl and REPORT.html to --out. "
                        + "Every metric is defined in docs/METRICS.md."},
        footer = {"", "Examples:",
                "  jlens analyze",
                "  jlens analyze --model ../shared/fixtures/gpt_neox_tiny --bootstrap 200",
                "  jlens analyze --model EleutherAI/pythia-1.4b --harmful advbench.csv --field goal --pool last",
                "  jlens analyze --model Qwen/Qwen2.5-0.5B-Instruct --chat --pool post-instruction   (see docs/EXPERIMENTS.md)",
                "  jlens analyze --model EleutherAI/pythia-1.4b --seed-compat   (the Day-1 TransformerLens protocol)"})
final class AnalyzeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = "--safe", paramLabel = "FILE",
            description = "Class A (harmless) prompts: .txt, .jsonl or .csv. Default: the built-in harmless set.")
    Path safe;

    @Option(names = "--harmful", paramLabel = "FILE",
            description = "Class B (harmful) prompts: .txt, .jsonl or .csv. Default: the built-in harmful set.")
    Path harmful;

    @Option(names = "--reference", paramLabel = "FILE",
            description = "Neutral reference prompts for centring (cos_centered, cos_std). Default: built-in neutral set.")
    Path reference;

    @Option(names = "--field", defaultValue = "text", paramLabel = "NAME",
            description = "JSONL field / CSV column with the prompt text (default: ${DEFAULT-VALUE}; AdvBench: goal).")
    String field;

    @Option(names = "--hooks", defaultValue = "blocks.*.hook_resid_post", paramLabel = "PATTERN",
            description = "Hooks to analyse, comma-separated globs (default: ${DEFAULT-VALUE}).")
    String hooks;

    @Option(names = "--pool", defaultValue = "mean", paramLabel = "P",
            description = {"mean, last, mean-skip-first, or with --chat post-instruction (mean over the tokens the",
                    "chat template puts after the user's message) (default: ${DEFAULT-VALUE})."})
    String pool;

    @Option(names = "--bootstrap", defaultValue = "1000", paramLabel = "N",
            description = "Bootstrap draws for the 95%% CIs (default: ${DEFAULT-VALUE}; 0 turns CIs off).")
    int bootstrap;

    @Option(names = "--permutations", defaultValue = "1000", paramLabel = "N",
            description = "Label permutations for p-values (default: ${DEFAULT-VALUE}; 0 turns them off).")
    int permutations;

    @Option(names = "--seed", defaultValue = "42", description = "Seed for every random draw (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--cv-folds", defaultValue = "5", paramLabel = "K",
            description = "Cross-validation folds of the logistic probe (default: ${DEFAULT-VALUE}).")
    int cvFolds;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N", description = "Prompts per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--seed-compat",
            description = "Reproduce the Day-1 protocol (TransformerLens HookedTransformer defaults on Pythia-1.4B): "
                    + "resid_post minus its per-token mean over d_model, mean over all tokens, raw cosine and L2.")
    boolean seedCompat;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR",
            description = "Output folder (default: out/analyze-<timestamp>). An interrupted run resumes when started "
                    + "again with the same arguments and --out.")
    Path out;

    @Option(names = "--force", description = "Redo a run whose --out folder already holds finished results.")
    boolean force;

    @Override
    public Integer call() throws IOException {
        Pooling pooling = Pooling.parse(seedCompat ? "mean" : pool);
        if (pooling == Pooling.ALL) throw new JlensException("--pool all: analyze compares one vector per prompt; use mean, last or mean-skip-first");
        if (bootstrap < 0 || permutations < 0) throw new JlensException("--bootstrap and --permutations must be 0 or more");
        if (cvFolds < 2) throw new JlensException("--cv-folds " + cvFolds + ": expected at least 2");
        if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
        chatOptions.validate(pooling);
        if (out == null) {
            out = Path.of("out", "analyze-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        }
        PromptSet setA = safe == null ? PromptSets.builtin("harmless") : PromptSets.load(safe, field, "harmless");
        PromptSet setB = harmful == null ? PromptSets.builtin("harmful") : PromptSets.load(harmful, field, "harmful");
        PromptSet setR = reference == null ? PromptSets.builtin("neutral") : PromptSets.load(reference, field, "neutral");
        checkClass("--safe", setA);
        checkClass("--harmful", setB);
        if (setA.sha256().equals(setB.sha256())) {
            throw new JlensException("--safe and --harmful are the same prompts; analyze needs two different classes");
        }
        PrintStream o = System.out;
        long t0 = System.nanoTime();
        try (HookedModel m = modelOptions.load()) {
            HookPattern pattern = HookPattern.parse(seedCompat ? "blocks.*.hook_resid_post" : hooks);
            List<HookPoint> points = new ArrayList<>();
            for (HookPoint p : pattern.select(m.hookPoints())) {
                if (!p.kind().isAttentionMap()) points.add(p);
            }
            List<String> texts = new ArrayList<>();
            texts.addAll(setA.texts());
            texts.addAll(setB.texts());
            texts.addAll(setR.texts());
            int nA = setA.size(), nB = setB.size(), nR = setR.size();
            int[] warned = {0};
            ChatOptions.Encoded encoded = chatOptions.encode(m, texts, w -> {
                if (warned[0]++ < 5) System.err.println("warning: " + w);
            });
            List<int[]> ids = encoded.ids();
            if (warned[0] > 5) System.err.println("warning: " + (warned[0] - 5) + " more prompts truncated");
            int[] lengths = ids.stream().mapToInt(a -> a.length).toArray();
            System.err.printf("model %s: %d layers, d_model %d; %d harmless, %d harmful, %d reference prompts%n",
                    m.location().id(), m.info().nLayers(), m.info().dModel(), nA, nB, nR);

            List<String> hookNames = points.stream().map(HookPoint::name).toList();
            // A batch never holds more than every prompt; clamping also keeps batch arithmetic from overflowing.
            int batch = Math.min(batchSize, ids.size());
            MemoryEstimate.checkBatch("--batch-size", m.info(), ids, batchSize, hookNames.size(), false, MemoryEstimate.Limits.ofThisJvm());
            ActivationsOutput.guardFinished(out, "metrics.json", force);
            String fp = ActivationsOutput.fingerprint("analyze", m.location().id(), m.location().revision(),
                    combinedSha(setA, setB, setR), hookNames, pooling, batch, seedCompat, chatOptions.fingerprint());
            Path actFile;
            try (Progress bar = new Progress("forward", "prompts", ids.size())) {
                actFile = ResumableCache.run(out, fp, m, ids, pattern, ChatOptions.caches(pooling, seedCompat
                        ? AnalyzeCommand::subtractTokenMean : java.util.function.UnaryOperator.identity(), encoded),
                        hookNames, batch, false, bar);
            }
            var acts = dev.jlens.io.safetensors.SafetensorsFile.open(actFile);
            GeometryAnalyzer analyzer = new GeometryAnalyzer(new GeometryOptions(bootstrap, permutations, seed, cvFolds, 1.0, true));
            List<LayerMetrics> rows = new ArrayList<>();
            Map<String, double[][]> pooledByHook = new LinkedHashMap<>();
            int[] lenA = java.util.Arrays.copyOfRange(lengths, 0, nA);
            int[] lenB = java.util.Arrays.copyOfRange(lengths, nA, nA + nB);
            try (Progress bar = new Progress("metrics", "hook points", points.size())) {
                int done = 0;
                for (HookPoint p : points) {
                    double[][] all = ActivationsOutput.pooledRows(acts, p.name());
                    pooledByHook.put(p.name(), all);
                    double[][] a = java.util.Arrays.copyOfRange(all, 0, nA);
                    double[][] b = java.util.Arrays.copyOfRange(all, nA, nA + nB);
                    double[][] r = nR == 0 ? null : java.util.Arrays.copyOfRange(all, nA + nB, nA + nB + nR);
                    rows.add(analyzer.analyze(p.name(), p.layer(), a, b, r, lenA, lenB));
                    bar.progress(++done, points.size());
                }
            }
            Map<String, LayerMetrics> peaks = GeometryAnalyzer.peaks(rows);
            printTable(o, rows, peaks);
            // What the words alone achieve, measured like the probe (same folds count, same penalty, CIs).
            Map<String, Estimate> baselines = new LinkedHashMap<>();
            for (String name : List.of(TextBaselines.TFIDF, TextBaselines.LENGTH)) {
                baselines.put(name, TextBaselines.crossValidated(name, setA.texts(), setB.texts(), cvFolds, 1.0, bootstrap, seed));
            }
            LayerMetrics best = peaks.get("probe_auroc");
            if (best != null) {
                Estimate probeCi = best.probeAurocCi() == null ? Estimate.point(best.probeAuroc()) : best.probeAurocCi();
                o.printf(java.util.Locale.ROOT, "%nbaselines (words only, %d-fold CV): tf-idf AUROC %s, length AUROC %s; the probe at %s "
                                + "(%s) %s%n", cvFolds, ProbeCommand.ci(baselines.get(TextBaselines.TFIDF)),
                        ProbeCommand.ci(baselines.get(TextBaselines.LENGTH)), best.hook(), ProbeCommand.ci(probeCi),
                        TextBaselines.beats(probeCi, baselines.get(TextBaselines.TFIDF)) ? "beats the words"
                                : "does not beat the words (the CIs overlap)");
            }

            // The same prompts cut by writing style: fitted on some styles, tested on held-out ones.
            List<Integer> layerOf = points.stream().map(HookPoint::layer).toList();
            StyleSplitCheck.Outcome style = StyleSplitCheck.measure(setA, setB, hookNames, layerOf,
                    h -> java.util.Arrays.copyOfRange(pooledByHook.get(h), 0, nA + nB),
                    new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), bootstrap, seed, 0.95));
            String styleReading = styleSplitLine(style, best);
            o.println(styleReading);

            ActivationsOutput.writeMetadata(out, m, ids.size(), pooling, false, hookNames,
                    "prompts.jsonl (harmless, harmful, reference)", combinedSha(setA, setB, setR),
                    chatOptions.metadata(m, encoded));
            writePrompts(out, setA, setB, setR, lengths);
            writeCsv(out, rows);
            RunInfo info = new RunInfo(m.location().id(), m.location().revision(), m.info().architecture(),
                    m.info().nLayers(), m.info().dModel(), pooling.cliName(), pattern.toString(), bootstrap, permutations,
                    seed, cvFolds, seedCompat, setA.name(), setB.name(), setR.name(), nA, nB, nR,
                    mean(lenA), sd(lenA), mean(lenB), sd(lenB), (System.nanoTime() - t0) / 1e9);
            LayerMetrics peak = peaks.getOrDefault("probe_auroc", rows.get(rows.size() - 1));
            double[][] peakActs = pooledByHook.get(peaks.containsKey("l2_rel") ? peaks.get("l2_rel").hook() : peak.hook());
            String peakHook = peaks.containsKey("l2_rel") ? peaks.get("l2_rel").hook() : peak.hook();
            AnalyzeReport.write(out.resolve("REPORT.html"), info, rows, peaks, peakHook,
                    java.util.Arrays.copyOfRange(peakActs, 0, nA + nB), nA, nB, baselines, styleReading);
            writeJson(out, info, rows, peaks, baselines, style);
            ResumableCache.discard(out);
            o.printf("%nwrote %s (metrics.csv, metrics.json, REPORT.html, activations.safetensors) in %.1f s%n",
                    out, (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }


    private static void checkClass(String option, PromptSet set) {
        if (set.size() < 2) {
            throw new JlensException(option + " (" + set.name() + "): " + set.size()
                    + " prompt(s); each class needs at least 2 (better 50+) for the statistics to mean anything");
        }
    }

    /** TransformerLens' default centring of writing weights makes every residual vector mean-zero over d_model. */
    static FloatTensor subtractTokenMean(FloatTensor v) {
        int d = v.cols(), rows = v.rows();
        float[] src = v.data(), dst = new float[src.length];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int j = 0; j < d; j++) s += src[r * d + j];
            float mu = (float) (s / d);
            for (int j = 0; j < d; j++) dst[r * d + j] = src[r * d + j] - mu;
        }
        return new FloatTensor(dst, v.shape());
    }

    private static String combinedSha(PromptSet... sets) {
        StringBuilder sb = new StringBuilder();
        for (PromptSet s : sets) sb.append(s.sha256());
        try {
            var md = java.security.MessageDigest.getInstance("SHA-256");
            return java.util.HexFormat.of().formatHex(md.digest(sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void printTable(PrintStream o, List<LayerMetrics> rows, Map<String, LayerMetrics> peaks) {
        o.println();
        o.printf(Locale.ROOT, "%-28s %7s %7s %7s %9s %7s %9s %9s %9s %9s %7s %-22s%n", "hook", "cos_raw", "cos_ctr",
                "cos_std", "l2_raw", "l2_rel", "norm_A", "norm_B", "disp_A", "disp_B", "d_ratio", "probe_auroc [95% CI]");
        for (LayerMetrics r : rows) {
            o.printf(Locale.ROOT, "%-28s %7.4f %7.4f %7.4f %9s %7.4f %9s %9s %9s %9s %7.3f %s%n", r.hook(), r.cosRaw(),
                    r.cosCentered(), r.cosStd(), Format.num(r.l2Raw()), r.l2Rel(), Format.num(r.normA()), Format.num(r.normB()),
                    Format.num(r.dispA()), Format.num(r.dispB()), r.dispRatio(), ci(r.probeAuroc(), r.probeAurocCi()));
        }
        o.println();
        peaks.forEach((metric, r) -> o.printf(Locale.ROOT, "peak %-12s %s (%.4f)%n", metric, r.hook(), value(metric, r)));
    }

    static double value(String metric, LayerMetrics r) {
        return switch (metric) {
            case "l2_rel" -> r.l2Rel();
            case "fisher" -> r.fisher();
            case "probe_auroc" -> r.probeAuroc();
            default -> Double.NaN;
        };
    }

    private static String ci(double v, dev.jlens.geometry.Estimate e) {
        if (e == null || Double.isNaN(e.lo())) return String.format(Locale.ROOT, "%.4f", v);
        return String.format(Locale.ROOT, "%.4f [%.3f, %.3f]", v, e.lo(), e.hi());
    }

    private static void writeCsv(Path dir, List<LayerMetrics> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.join(",", LayerMetrics.csvColumns())).append('\n');
        for (LayerMetrics r : rows) sb.append(String.join(",", r.csvValues())).append('\n');
        AtomicFiles.writeString(dir.resolve("metrics.csv"), sb.toString());
    }

    private static void writePrompts(Path dir, PromptSet a, PromptSet b, PromptSet r, int[] lengths) throws IOException {
        ObjectMapper om = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        int i = 0;
        for (PromptSet s : List.of(a, b, r)) {
            String cls = s == a ? "A" : s == b ? "B" : "reference";
            for (var p : s.prompts()) {
                ObjectNode n = om.createObjectNode();
                n.put("index", i);
                n.put("class", cls);
                n.put("id", p.id());
                n.put("label", p.label());
                n.put("category", p.category());
                n.put("tokens", lengths[i]);
                n.put("text", p.text());
                sb.append(om.writeValueAsString(n)).append('\n');
                i++;
            }
        }
        AtomicFiles.writeString(dir.resolve("prompts.jsonl"), sb.toString());
    }

    /** The style-held-out line of the terminal summary and the report, beside analyze's cross-validated probe. */
    static String styleSplitLine(StyleSplitCheck.Outcome style, LayerMetrics cvBest) {
        StyleSplitCheck c = style.check();
        if (c == null) return "style split: not measured: " + style.skipped();
        String hook = c.bestHook();
        Estimate tfidf = c.baseline(TextBaselines.TFIDF).test().overall().get(Evaluation.AUROC);
        return String.format(java.util.Locale.ROOT, "style split (train on the other styles, test = %s: %d harmless, %d harmful): the probe at %s "
                        + "%s%s; tf-idf %s", String.join(", ", c.heldOutStyles()), c.counts()[2][0], c.counts()[2][1], hook,
                ProbeCommand.ci(c.probe().get(hook)),
                cvBest != null && c.probe().containsKey(cvBest.hook()) && !cvBest.hook().equals(hook)
                        ? " (at the cross-validated best " + cvBest.hook() + ": " + ProbeCommand.ci(c.probe().get(cvBest.hook())) + ")" : "",
                ProbeCommand.ci(tfidf));
    }

    private static void writeJson(Path dir, RunInfo info, List<LayerMetrics> rows, Map<String, LayerMetrics> peaks,
                                  Map<String, Estimate> baselines, StyleSplitCheck.Outcome style) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = om.createObjectNode();
        root.put("jlens_version", JlensCli.VERSION);
        root.set("run", om.valueToTree(info));
        ArrayNode layers = root.putArray("layers");
        for (LayerMetrics r : rows) layers.add(om.valueToTree(r));
        ObjectNode pk = root.putObject("peaks");
        peaks.forEach((k, r) -> pk.putObject(k).put("hook", r.hook()).put("layer", r.layer()).put("value", value(k, r)));
        ObjectNode bl = root.putObject("baselines");
        baselines.forEach((k, e) -> bl.putObject(k).put("auroc", e.value()).put("ci_lo", e.lo()).put("ci_hi", e.hi()));
        ObjectNode st = root.putObject("style_split");
        if (style.check() == null) {
            st.put("skipped", style.skipped());
        } else {
            StyleSplitCheck c = style.check();
            st.set("held_out_styles", om.valueToTree(c.heldOutStyles()));
            String[] names = {"train", "val", "test"};
            for (int i = 0; i < 3; i++) st.putObject(names[i]).put("harmless", c.counts()[i][0]).put("harmful", c.counts()[i][1]);
            ObjectNode pr = st.putObject("probe_auroc");
            c.probe().forEach((h, e) -> pr.putObject(h).put("auroc", e.value()).put("ci_lo", e.lo()).put("ci_hi", e.hi()));
            ObjectNode sb = st.putObject("baselines");
            for (TextBaselines.Result b : c.baselines()) {
                Estimate e = b.test().overall().get(Evaluation.AUROC);
                sb.putObject(b.name()).put("auroc", e.value()).put("ci_lo", e.lo()).put("ci_hi", e.hi());
            }
            st.put("best_hook", c.bestHook());
        }
        root.put("complete", true);
        nanToNull(root);
        AtomicFiles.writeString(dir.resolve("metrics.json"), om.writeValueAsString(root) + "\n");
    }

    /** JSON has no NaN: metrics that could not be computed are written as null, which Python reads as None. */
    private static void nanToNull(com.fasterxml.jackson.databind.JsonNode node) {
        if (node instanceof ObjectNode o) {
            for (var it = o.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (e.getValue().isDouble() && !Double.isFinite(e.getValue().asDouble())) e.setValue(o.nullNode());
                else nanToNull(e.getValue());
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                if (a.get(i).isDouble() && !Double.isFinite(a.get(i).asDouble())) a.set(i, a.nullNode());
                else nanToNull(a.get(i));
            }
        }
    }

    private static double mean(int[] x) {
        double s = 0;
        for (int v : x) s += v;
        return x.length == 0 ? Double.NaN : s / x.length;
    }

    private static double sd(int[] x) {
        double m = mean(x), s = 0;
        for (int v : x) s += (v - m) * (v - m);
        return x.length < 2 ? Double.NaN : Math.sqrt(s / (x.length - 1));
    }
}
