package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.ProbeReport;
import dev.jlens.detect.Detector;
import dev.jlens.detect.DetectorFitter;
import dev.jlens.detect.DetectorKind;
import dev.jlens.detect.DetectorParams;
import dev.jlens.detect.TokenAggregation;
import dev.jlens.detect.TextBaselines;
import dev.jlens.detect.TokenScorer;
import dev.jlens.detect.Evaluation;
import dev.jlens.detect.ProbeData;
import dev.jlens.detect.Prober;
import dev.jlens.detect.PoolScope;
import dev.jlens.detect.PromptEncoder;
import dev.jlens.detect.ThresholdRule;
import dev.jlens.geometry.Estimate;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.io.AtomicFiles;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.prompts.SplitScheme;
import dev.jlens.detect.SplitComparison;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

@Command(name = "probe", mixinStandardHelpOptions = true,
        description = {"How early in the forward pass can a harmful request, or a jailbreak that hides one, be recognised?",
                "Per hook, fits three detectors on the train split -- an L2-regularised logistic probe, the",
                "difference-in-means projection and a distance to the harmful centroid (Mahalanobis, shrunk",
                "covariance) -- makes every choice (C, shrinkage, calibration, threshold) on the validation split, and",
                "reports on the test split: AUROC, accuracy, TPR at 1%% and 5%% FPR with bootstrap CIs, per category",
                "(direct harmful, jailbreak, hard negative, plain harmless), and calibration.",
                "",
                "Prints the earliest layer whose test AUROC CI lower bound reaches --target, and writes probe.csv,",
                "probe.json, test_scores.csv, PROBE.html and the activations to --out. With --save-detector, saves the",
                "detector at that layer for jlens detect / jlens serve. Methods: docs/DETECTION.md."},
        footer = {"", "Examples:",
                "  jlens probe",
                "  jlens probe --save-detector out/guard --target 0.97",
                "  jlens probe --model EleutherAI/pythia-410m --test my_test.jsonl --bootstrap 2000",
                "  jlens probe --split random        # the old random split as the headline figure",
                "  jlens probe --pool-scope response --save-detector out/response-guard     (built-in response_pairs)",
                "  jlens probe --test builtin:multi_turn --pool-scope last-user   (multi-turn, the final turn's tokens)",
                "  jlens probe --model Qwen/Qwen2.5-0.5B-Instruct --chat --test builtin:multi_turn",
                "With no --train/--val/--test, the data are the built-in sets: harmful + jailbreak (harmful) and",
                "harmless + hard_negative (harmless), cut by --split; the report then sets the random split's figures",
                "beside the style-held-out ones (probe.json cross_split, splits.csv, PROBE.html). With --pool-scope",
                "response and no files, the data are the built-in response_pairs, in their files' splits."})
final class ProbeCommand implements Callable<Integer> {

    @Mixin
    ChatOptions chatOptions;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--train", arity = "1..*", paramLabel = "FILE",
            description = {"Train prompts (.jsonl/.csv with a label harmful|harmless per prompt; category jailbreak-*",
                    "and hard-negative are reported separately; JSONL lines may hold conversations, \"messages\", or",
                    "\"prompt\" + \"response\" pairs), or builtin:NAME (e.g. builtin:multi_turn, builtin:response_pairs).",
                    "Default: the built-in train split."})
    List<Path> train;

    @Option(names = "--val", arity = "1..*", paramLabel = "FILE", description = "Validation prompts. Default: the built-in val split.")
    List<Path> val;

    @Option(names = "--test", arity = "1..*", paramLabel = "FILE", description = "Test prompts. Default: the built-in test split.")
    List<Path> test;

    @Option(names = "--split", defaultValue = "style", paramLabel = "SCHEME",
            description = {"How the built-in sets are cut (default: ${DEFAULT-VALUE}): style holds out whole writing styles",
                    "(rambling, casual, non-english) as test and fits on the others; random uses each prompt's split",
                    "field (60/20/20 within each category, every style in every split). Both are measured and reported",
                    "side by side; this one is the headline, the one --save-detector fits. See docs/PROMPTS.md."})
    String split;

    @Option(names = "--field", defaultValue = "text", paramLabel = "NAME",
            description = "JSONL field / CSV column with the prompt text (default: ${DEFAULT-VALUE}).")
    String field;

    @Option(names = "--hooks", defaultValue = "blocks.*.hook_resid_post", paramLabel = "PATTERN",
            description = "Hooks to probe, comma-separated globs (default: ${DEFAULT-VALUE}).")
    String hooks;

    @Option(names = "--pool", defaultValue = "mean", paramLabel = "P",
            description = {"How the prompt's tokens make one score (default: ${DEFAULT-VALUE}): mean, last or mean-skip-first",
                    "(fitted on the pooled activation), or max / window-mean[:K] (the direction fitted on mean-pooled",
                    "activations, each token scored, the prompt score the max over tokens or over K-token window means,",
                    "K = 8 by default; Platt map and threshold chosen on val for that score). PROBE.html compares mean,",
                    "max, window-mean and last per layer whatever this is."})
    String pool;

    @Option(names = "--pool-scope", defaultValue = "all", paramLabel = "S",
            description = {"Which tokens --pool pools over (default: ${DEFAULT-VALUE}): all; last-user (the last user message's",
                    "content); post-instruction (what the chat template writes after the last user message; --pool",
                    "post-instruction is --pool mean --pool-scope post-instruction); response (the last assistant message:",
                    "a response-level detector fitted on (prompt, response) pairs; with no --train/--val/--test, the",
                    "built-in response_pairs). post-instruction needs --chat; without it a single prompt is the user's",
                    "message and a conversation is its plain text (\"user: ...\" turns), e.g. --pool-scope last-user",
                    "--test builtin:multi_turn scores the final turn of each conversation."})
    String poolScope;

    @Option(names = "--target", defaultValue = "0.95", paramLabel = "AUROC",
            description = "AUROC the CI lower bound must reach for a layer to qualify (default: ${DEFAULT-VALUE}).")
    double target;

    @Option(names = "--bootstrap", defaultValue = "1000", paramLabel = "N",
            description = "Bootstrap draws for the 95%% CIs (default: ${DEFAULT-VALUE}; 0: point estimates only).")
    int bootstrap;

    @Option(names = "--seed", defaultValue = "42", description = "Seed of the bootstrap (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--detectors", defaultValue = "logistic,diff-means,mahalanobis", split = ",", paramLabel = "KIND",
            description = "Detector kinds to fit (default: ${DEFAULT-VALUE}).")
    List<String> detectors;

    @Option(names = "--c-grid", split = ",", paramLabel = "C",
            description = "Inverse L2 penalties tried for the logistic probe, chosen on val (default: 0.001,0.01,0.1,1,10).")
    List<Double> cGrid;

    @Option(names = "--val-fpr", paramLabel = "F",
            description = {"Choose each threshold as the most sensitive one whose validation FPR is at most F",
                    "(default: Youden's J, the cut maximising TPR - FPR on validation)."})
    Double valFpr;

    @Option(names = "--save-detector", paramLabel = "DIR",
            description = "Save the detector at the chosen layer (detector.json + detector.safetensors) into DIR.")
    Path saveDetector;

    @Option(names = "--save-kind", defaultValue = "logistic", paramLabel = "KIND",
            description = "Which detector kind to save and whose earliest layer is the chosen one (default: ${DEFAULT-VALUE}).")
    String saveKind;

    @Option(names = "--save-hook", paramLabel = "HOOK",
            description = {"Save the detector at this hook instead of the earliest qualifying one (e.g. to trade",
                    "AUROC for an earlier exit)."})
    String saveHook;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N", description = "Prompts per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR",
            description = "Output folder (default: out/probe-<timestamp>); an interrupted run resumes with the same arguments.")
    Path out;

    @Option(names = "--force", description = "Redo a run whose --out folder already holds finished results.")
    boolean force;

    @Override
    public Integer call() throws IOException {
        TokenAggregation aggregation = null;
        String poolName = pool.trim().toLowerCase(Locale.ROOT);
        if (poolName.equals("max") || poolName.startsWith("window-mean")) aggregation = TokenAggregation.parse(poolName);
        Pooling pooling;
        try {
            pooling = aggregation != null ? Pooling.MEAN : Pooling.parse(pool);
        } catch (JlensException e) {
            throw new JlensException("--pool \"" + pool + "\": expected mean, last, mean-skip-first, max, window-mean, window-mean:K "
                    + "or post-instruction");
        }
        PoolScope scope = PoolScope.parse(poolScope);
        if (pooling.needsPostInstruction()) {
            // One way to say it: --pool post-instruction is the mean over the post-instruction scope.
            if (scope != PoolScope.ALL && scope != PoolScope.POST_INSTRUCTION) {
                throw new JlensException("--pool post-instruction contradicts --pool-scope " + scope.cliName()
                        + "; use --pool mean --pool-scope " + scope.cliName());
            }
            if (!chatOptions.enabled()) {
                throw new JlensException("--pool post-instruction needs --chat: only a chat template says which tokens come after "
                        + "the user's message");
            }
            pooling = Pooling.MEAN;
            scope = PoolScope.POST_INSTRUCTION;
        }
        if (scope == PoolScope.POST_INSTRUCTION && !chatOptions.enabled()) {
            throw new JlensException("--pool-scope post-instruction needs --chat: only a chat template says which tokens come "
                    + "after the user's message");
        }
        if (scope != PoolScope.ALL && pooling == Pooling.MEAN_SKIP_FIRST) {
            throw new JlensException("--pool mean-skip-first skips the prompt's first token (an attention sink); with --pool-scope "
                    + scope.cliName() + " use mean");
        }
        if (pooling == Pooling.ALL) {
            throw new JlensException("--pool all: a detector needs one score per prompt; use mean, last, mean-skip-first, max or window-mean");
        }
        chatOptions.validate(pooling);
        if (aggregation == null) aggregation = Detector.aggregationOf(pooling);
        if (!(target > 0.5 && target <= 1)) throw new JlensException("--target " + target + ": expected an AUROC in (0.5, 1]");
        if (bootstrap < 0) throw new JlensException("--bootstrap " + bootstrap + ": expected 0 or more");
        if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
        List<DetectorKind> kinds = new ArrayList<>();
        for (String k : detectors) {
            DetectorKind kind = DetectorKind.parse(k.trim());
            if (!kinds.contains(kind)) kinds.add(kind);
        }
        DetectorKind mainKind = DetectorKind.parse(saveKind);
        if (!kinds.contains(mainKind)) {
            throw new JlensException("--save-kind " + saveKind + " is not among --detectors " + String.join(",", detectors));
        }
        double[] grid = cGrid == null ? DetectorFitter.DEFAULT_C : cGrid.stream().mapToDouble(Double::doubleValue).toArray();
        ThresholdRule rule = valFpr == null ? ThresholdRule.youden() : ThresholdRule.maxFpr(valFpr);
        Prober.Options options = new Prober.Options(new DetectorFitter.Options(grid, DetectorFitter.DEFAULT_SHRINKAGE, rule),
                kinds, bootstrap, seed, 0.95);
        if (out == null) {
            out = Path.of("out", "probe-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        }
        SplitScheme scheme = SplitScheme.parse(split);
        boolean noFiles = train == null && val == null && test == null;
        boolean allBuiltin = noFiles && scope != PoolScope.RESPONSE;
        ProbeData data;
        if (noFiles) {
            data = scope == PoolScope.RESPONSE ? ProbeData.builtin(List.of("response_pairs")) : ProbeData.builtin(scheme);
        } else if (scope == PoolScope.RESPONSE && (train == null || val == null || test == null)) {
            throw new JlensException("--pool-scope response needs (prompt, response) pairs in every split: give --train, --val "
                    + "and --test, or none of them for the built-in response_pairs");
        } else {
            data = ProbeData.of(load(train), load(val), load(test), scheme);
        }
        final Pooling finalPooling = pooling;

        PrintStream o = System.out;
        long t0 = System.nanoTime();
        try (HookedModel m = modelOptions.load()) {
            HookPattern pattern = HookPattern.parse(hooks);
            List<HookPoint> points = new ArrayList<>();
            for (HookPoint p : pattern.select(m.hookPoints())) if (!p.kind().isAttentionMap()) points.add(p);
            if (points.isEmpty()) throw new JlensException("--hooks \"" + hooks + "\" selects only attention patterns; a detector needs a residual-stream hook");
            if (saveHook != null && points.stream().noneMatch(p -> p.name().equals(saveHook))) {
                throw new JlensException("--save-hook " + saveHook + " is not among the probed hooks (--hooks \"" + hooks + "\")");
            }
            int[] warned = {0};
            java.util.function.Consumer<String> warn = w -> {
                if (warned[0]++ < 5) System.err.println("warning: " + w);
            };
            // Spans (the scope's tokens of each prompt) only when the scope or the data need them, so that plain runs
            // encode, fingerprint and resume exactly as before.
            boolean spans = scope != PoolScope.ALL || data.hasConversations();
            List<int[]> ids;
            int[] spanFrom = null, spanTo = null;
            int fallbacks = 0;
            if (!spans) {
                ids = chatOptions.encode(m, data.texts(), warn).ids();
            } else {
                PromptEncoder encoder = new PromptEncoder(m, chatOptions.enabled(), chatOptions.system(), chatOptions.templateOptions());
                ids = new ArrayList<>();
                spanFrom = new int[data.examples().size()];
                spanTo = new int[spanFrom.length];
                for (int i = 0; i < spanFrom.length; i++) {
                    ProbeData.Example ex = data.examples().get(i);
                    PromptEncoder.Encoded e;
                    try {
                        e = encoder.encode(ex.prompt(), scope, warn);
                    } catch (JlensException err) {
                        throw new JlensException(ex.source() + ": " + err.getMessage(), err);
                    }
                    ids.add(e.ids());
                    spanFrom[i] = e.from();
                    spanTo[i] = e.to();
                    if (e.fallback()) fallbacks++;
                }
                if (chatOptions.enabled()) System.err.println("chat template: " + m.chatTemplate().origin());
                System.err.printf("pool scope %s: %d prompts (%d conversations)%n", scope.cliName(), ids.size(),
                        data.examples().stream().filter(x -> !x.messages().isEmpty()).count());
                if (fallbacks > 0) System.err.println(ChatOptions.fallbackNote(fallbacks));
            }
            final int[] fromAt = spanFrom, toAt = spanTo;
            final int fallbackCount = fallbacks;
            if (warned[0] > 5) System.err.println("warning: " + (warned[0] - 5) + " more prompts truncated");
            System.err.printf("model %s: %d layers, d_model %d; %s; train %d, val %d, test %d prompts%n", m.location().id(),
                    m.info().nLayers(), m.info().dModel(), data.description(), data.indices("train").length,
                    data.indices("val").length, data.indices("test").length);

            ActivationsOutput.guardFinished(out, "probe.json", force);
            List<String> hookNames = points.stream().map(HookPoint::name).toList();
            String promptsSha = ActivationsOutput.fingerprint(data.texts().toArray());
            String fp = ActivationsOutput.fingerprint("probe", m.location().id(), m.location().revision(), promptsSha,
                    hookNames, pooling, batchSize, chatOptions.fingerprint()) + (spans ? "|scope=" + scope.cliName() : "");
            Path actFile;
            try (Progress bar = new Progress("forward", "prompts", ids.size())) {
                java.util.function.IntFunction<ActivationCache> caches = fromAt == null ? at -> new ActivationCache(finalPooling)
                        : at -> ActivationCache.overSpans(finalPooling, java.util.Arrays.copyOfRange(fromAt, at, fromAt.length),
                                java.util.Arrays.copyOfRange(toAt, at, toAt.length));
                actFile = ResumableCache.run(out, fp, m, ids, pattern, caches, hookNames, batchSize, false, bar);
            }
            SafetensorsFile acts = SafetensorsFile.open(actFile);
            List<Prober.HookResult> results = new ArrayList<>();
            try (Progress bar = new Progress("probe", "hook points", points.size())) {
                for (HookPoint p : points) {
                    results.add(Prober.probe(p.name(), p.layer(), ActivationsOutput.pooledRows(acts, p.name()), data, options));
                    bar.progress(results.size(), points.size());
                }
            }

            // Token scores of every fitted detector (one more forward pass, scalars only): the aggregations compared
            // in PROBE.html, and the prompt scores themselves when --pool is max or a window mean.
            Map<String, List<DetectorParams>> byHook = new LinkedHashMap<>();
            for (Prober.HookResult r : results) {
                List<DetectorParams> ps = new ArrayList<>();
                for (DetectorKind k : kinds) ps.add(r.get(k).fitted().params());
                byHook.put(r.hook(), ps);
            }
            Map<String, List<double[][]>> tokenRaw;
            System.err.println("token scores: one more forward pass");
            tokenRaw = TokenScorer.score(m, ids, byHook, batchSize);
            if (fromAt != null) {
                // Aggregations see only the scope's tokens, as the detector will.
                for (List<double[][]> perKind : tokenRaw.values()) {
                    for (double[][] perPrompt : perKind) {
                        for (int i = 0; i < perPrompt.length; i++) perPrompt[i] = java.util.Arrays.copyOfRange(perPrompt[i], fromAt[i], toAt[i]);
                    }
                }
            }
            Map<String, Map<String, Prober.KindResult>> compared = new LinkedHashMap<>();
            for (Prober.HookResult r : results) {
                Map<String, Prober.KindResult> perAgg = new LinkedHashMap<>();
                double[][] raw = tokenRaw.get(r.hook()).get(kinds.indexOf(mainKind));
                for (TokenAggregation a : TokenAggregation.compared()) {
                    perAgg.put(a.cliName(), Prober.aggregate(r.hook(), r.layer(), r.get(mainKind), raw, a, data, options));
                }
                compared.put(r.hook(), perAgg);
            }
            if (!aggregation.isActivationPooling()) {
                List<Prober.HookResult> aggregated = new ArrayList<>();
                for (Prober.HookResult r : results) {
                    Map<DetectorKind, Prober.KindResult> kr = new LinkedHashMap<>();
                    for (int k = 0; k < kinds.size(); k++) {
                        kr.put(kinds.get(k), Prober.aggregate(r.hook(), r.layer(), r.get(kinds.get(k)),
                                tokenRaw.get(r.hook()).get(k), aggregation, data, options));
                    }
                    aggregated.add(new Prober.HookResult(r.hook(), r.layer(), kr));
                }
                results = aggregated;
            }

            // The baselines read the words of the detector's scope (the response, the last user message), not the whole conversation.
            List<TextBaselines.Result> baselines = TextBaselines.all(data, data.texts(scope), options);

            // The same data cut both ways, the main kind on pooled activations: how much the random split flatters.
            List<SplitComparison> crossSplit = new ArrayList<>();
            if (allBuiltin) {
                List<Integer> layers = points.stream().map(HookPoint::layer).toList();
                for (SplitScheme sc : List.of(SplitScheme.RANDOM, SplitScheme.STYLE)) {
                    ProbeData d = sc == scheme ? data : ProbeData.builtin(sc);
                    if (!d.texts().equals(data.texts())) throw new IllegalStateException("split schemes disagree on the prompts");
                    crossSplit.add(SplitComparison.measure(sc, d, mainKind, hookNames, layers,
                            h -> ActivationsOutput.pooledRows(acts, h), options));
                }
            }

            Map<DetectorKind, Optional<Prober.HookResult>> earliest = new LinkedHashMap<>();
            for (DetectorKind k : kinds) earliest.put(k, Prober.earliest(results, k, target));
            Prober.HookResult chosen = choose(results, mainKind, earliest.get(mainKind));
            printTable(o, results, kinds);
            o.println();
            for (DetectorKind k : kinds) {
                Optional<Prober.HookResult> e = earliest.get(k);
                o.printf(Locale.ROOT, "earliest layer (%s) with test AUROC 95%% CI lower bound >= %.3f: %s%n", k.cliName(), target,
                        e.map(r -> "layer " + r.layer() + " (" + r.hook() + "), AUROC " + ci(r.get(k).test().overall().get(Evaluation.AUROC)))
                                .orElse("none"));
            }

            ActivationsOutput.writeMetadata(out, m, ids.size(), pooling, false, hookNames, data.description(), promptsSha);
            writeCsv(out, results, kinds);
            writeScores(out, results, data);
            ObjectNode summary = summary(m, data, results, kinds, earliest, chosen, mainKind, pooling, rule);
            summary.with("run").put("aggregation", aggregation.cliName());
            summary.with("run").put("scope", scope.cliName());
            if (fallbackCount > 0) summary.with("run").put("post_instruction_fallback", fallbackCount);
            ObjectNode aggJson = summary.putObject("token_aggregations");
            aggJson.put("kind", mainKind.cliName());
            for (var e : compared.entrySet()) {
                ObjectNode h = aggJson.putObject(e.getKey());
                for (var a : e.getValue().entrySet()) {
                    ObjectNode an = h.putObject(a.getKey());
                    a.getValue().test().overall().forEach((name, est) -> an.set(name, estJson(est)));
                }
            }
            ObjectNode baseJson = summary.putObject("baselines");
            baseJson.put("reads", switch (scope) {
                case LAST_USER -> "the last user message";
                case RESPONSE -> "the last assistant message";
                default -> "the whole text";
            });
            for (TextBaselines.Result b : baselines) {
                ObjectNode bn = baseJson.putObject(b.name());
                bn.put("c", b.c());
                bn.put("val_auroc", b.valAuroc());
                bn.put("features", b.features());
                ObjectNode t = bn.putObject("test");
                b.test().overall().forEach((name, est) -> t.set(name, estJson(est)));
                ObjectNode cats = bn.putObject("categories");
                for (Evaluation.GroupMetrics g : b.test().groups().values()) {
                    cats.putObject(g.group()).put("n", g.n()).set("auroc", estJson(g.auroc()));
                }
            }
            Estimate chosenAuc = chosen.get(mainKind).test().overall().get(Evaluation.AUROC);
            Estimate wordsAuc = baselines.getFirst().test().overall().get(Evaluation.AUROC);
            boolean beats = TextBaselines.beats(chosenAuc, wordsAuc);
            baseJson.put("probe_beats_tf_idf", beats);
            o.printf(Locale.ROOT, "baselines (words only, same splits): tf-idf AUROC %s, length AUROC %s; the %s probe at %s (%s) %s%n",
                    ci(wordsAuc), ci(baselines.get(1).test().overall().get(Evaluation.AUROC)), mainKind.cliName(), chosen.hook(),
                    ci(chosenAuc), beats ? "beats the words (its CI lies above)" : "does not beat the words (the CIs overlap)");
            if (crossSplit.isEmpty()) {
                summary.putNull("cross_split");
            } else {
                summary.set("cross_split", crossSplitJson(crossSplit, scheme, pooling));
                writeSplitsCsv(out, crossSplit);
                SplitComparison r = crossSplit.get(0), st = crossSplit.get(1);
                o.printf(Locale.ROOT, "random split vs style-held-out split (%s at %s, pooled %s): AUROC %s vs %s; tf-idf %s vs %s%n",
                        mainKind.cliName(), chosen.hook(), pooling.cliName(), ci(r.probeAuroc(chosen.hook())), ci(st.probeAuroc(chosen.hook())),
                        ci(r.baseline(TextBaselines.TFIDF).test().overall().get(Evaluation.AUROC)),
                        ci(st.baseline(TextBaselines.TFIDF).test().overall().get(Evaluation.AUROC)));
            }
            ProbeReport.write(out.resolve("PROBE.html"), summary, results, data, kinds, mainKind, chosen.hook(), target, compared,
                    baselines, crossSplit);
            ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            AtomicFiles.writeString(out.resolve("probe.json"), om.writeValueAsString(summary) + "\n");
            ResumableCache.discard(out);
            if (saveDetector != null) {
                Prober.KindResult kr = chosen.get(mainKind);
                ObjectNode desc = om.createObjectNode();
                desc.put("created", Instant.now().toString());
                desc.put("jlens_version", JlensCli.VERSION);
                desc.set("metrics", kindJson(om, chosen, kr));
                ObjectNode training = desc.putObject("training");
                training.put("data", data.description());
                training.put("n_train", data.indices("train").length);
                training.put("n_val", data.indices("val").length);
                training.put("n_test", data.indices("test").length);
                training.put("threshold_rule", rule.describe());
                training.put("target", target);
                training.put("chosen_by", saveHook != null ? "--save-hook" : earliest.get(mainKind).isPresent()
                        ? "earliest layer whose test AUROC CI lower bound reaches the target"
                        : "no layer reached the target; the hook with the highest test AUROC CI lower bound");
                training.put("probe_output", out.toAbsolutePath().toString());
                if (chatOptions.enabled()) {
                    var chat = desc.putObject("chat");
                    if (chatOptions.system() != null) chat.put("system", chatOptions.system());
                    if (!chatOptions.templateOptions().variables().isEmpty()) {
                        chat.set("chat_vars", om.valueToTree(chatOptions.templateOptions().variables()));
                    }
                    if (chatOptions.templateOptions().foldSystem()) chat.put("fold_system", true);
                }
                if (fallbackCount > 0) {
                    training.put("post_instruction_fallback", "the chat template writes nothing after the user's message in "
                            + fallbackCount + " prompt(s); those were pooled over the last token of the user message");
                }
                Detector.of(m, chosen.hook(), pooling, scope, aggregation, kr.fitted().params(), desc).save(saveDetector);
                o.printf(Locale.ROOT, "saved detector %s: %s at %s (layer %d), threshold %.4f, test AUROC %s%n", saveDetector,
                        mainKind.cliName(), chosen.hook(), chosen.layer(), kr.fitted().params().thresholdProbability(),
                        ci(kr.test().overall().get(Evaluation.AUROC)));
            }
            o.printf("%nwrote %s (probe.csv, probe.json, test_scores.csv, %sPROBE.html) in %.1f s%n", out,
                    crossSplit.isEmpty() ? "" : "splits.csv, ", (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private static ObjectNode crossSplitJson(List<SplitComparison> comparisons, SplitScheme main, Pooling pooling) {
        ObjectNode n = new ObjectMapper().createObjectNode();
        n.put("main", main.cliName());
        ArrayNode held = n.putArray("held_out_styles");
        PromptSets.HELD_OUT_STYLES.forEach(held::add);
        n.put("kind", comparisons.getFirst().kind().cliName());
        n.put("pooling", pooling.cliName());
        for (SplitComparison c : comparisons) {
            ObjectNode s = n.putObject(c.scheme().cliName());
            s.put("data", c.data().description());
            for (String sp : List.of("train", "val", "test")) {
                int[] size = c.splitSize(sp);
                s.putObject(sp).put("harmful", size[0]).put("harmless", size[1]);
            }
            ObjectNode probe = s.putObject("probe");
            for (Prober.HookResult r : c.probe()) {
                ObjectNode h = probe.putObject(r.hook());
                h.put("layer", r.layer());
                Evaluation ev = r.get(c.kind()).test();
                h.set("auroc", estJson(ev.overall().get(Evaluation.AUROC)));
                h.set(Evaluation.TPR_AT_1, estJson(ev.overall().get(Evaluation.TPR_AT_1)));
            }
            for (TextBaselines.Result b : c.baselines()) {
                ObjectNode bn = s.putObject(b.name());
                bn.set("auroc", estJson(b.test().overall().get(Evaluation.AUROC)));
                bn.set(Evaluation.TPR_AT_1, estJson(b.test().overall().get(Evaluation.TPR_AT_1)));
            }
        }
        return n;
    }

    /** splits.csv: the cross-split figures in probe.csv's long format, one row per split, scorer, hook and metric. */
    private static void writeSplitsCsv(Path dir, List<SplitComparison> comparisons) {
        StringBuilder sb = new StringBuilder("split,scorer,hook,layer,metric,value,ci_lo,ci_hi\n");
        for (SplitComparison c : comparisons) {
            for (Prober.HookResult r : c.probe()) {
                Evaluation ev = r.get(c.kind()).test();
                for (String metric : List.of(Evaluation.AUROC, Evaluation.TPR_AT_1)) {
                    sb.append(c.scheme().cliName()).append(',').append(c.kind().cliName()).append(',').append(r.hook()).append(',')
                            .append(r.layer()).append(',').append(metric).append(',').append(csv(ev.overall().get(metric))).append('\n');
                }
            }
            for (TextBaselines.Result b : c.baselines()) {
                for (String metric : List.of(Evaluation.AUROC, Evaluation.TPR_AT_1)) {
                    sb.append(c.scheme().cliName()).append(',').append(b.name()).append(",,,").append(metric).append(',')
                            .append(csv(b.test().overall().get(metric))).append('\n');
                }
            }
        }
        AtomicFiles.writeString(dir.resolve("splits.csv"), sb.toString());
    }

    private List<PromptSet> load(List<Path> files) {
        if (files == null) return null;
        List<PromptSet> sets = new ArrayList<>();
        for (Path f : files) {
            String name = f.toString();
            if (name.startsWith("builtin:")) sets.add(PromptSets.builtin(name.substring("builtin:".length())));
            else sets.add(PromptSets.load(f, field, null));
        }
        return sets;
    }

    private Prober.HookResult choose(List<Prober.HookResult> results, DetectorKind kind, Optional<Prober.HookResult> earliest) {
        if (saveHook != null) {
            return results.stream().filter(r -> r.hook().equals(saveHook)).findFirst().orElseThrow();
        }
        if (earliest.isPresent()) return earliest.get();
        Prober.HookResult best = results.getFirst();
        for (Prober.HookResult r : results) {
            if (lowerBound(r.get(kind)) > lowerBound(best.get(kind))) best = r;
        }
        System.err.printf(Locale.ROOT, "warning: no hook reaches a test AUROC CI lower bound of %.3f with %s; the report and "
                + "--save-detector use %s, the hook with the highest lower bound%n", target, kind.cliName(), best.hook());
        return best;
    }

    private static double lowerBound(Prober.KindResult k) {
        Estimate e = k.test().overall().get(Evaluation.AUROC);
        return Double.isNaN(e.lo()) ? e.value() : e.lo();
    }

    static String ci(Estimate e) {
        if (e == null) return "-";
        if (Double.isNaN(e.lo())) return String.format(Locale.ROOT, "%.3f", e.value());
        return String.format(Locale.ROOT, "%.3f [%.3f, %.3f]", e.value(), e.lo(), e.hi());
    }

    private static void printTable(PrintStream o, List<Prober.HookResult> results, List<DetectorKind> kinds) {
        o.println();
        List<String> groups = ProbeData.groupOrder(new ArrayList<>(results.getFirst().get(kinds.getFirst()).test().groups().keySet()));
        StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-28s %-12s %-22s %-22s %6s", "hook", "detector",
                "auroc [95% CI]", "tpr@1%fpr [95% CI]", "acc"));
        for (String g : groups) head.append(String.format(Locale.ROOT, " %13s", "flag:" + g));
        o.println(head);
        for (Prober.HookResult r : results) {
            for (DetectorKind k : kinds) {
                Evaluation ev = r.get(k).test();
                StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "%-28s %-12s %-22s %-22s %6.3f", r.hook(),
                        k.cliName(), ci(ev.overall().get(Evaluation.AUROC)), ci(ev.overall().get(Evaluation.TPR_AT_1)),
                        ev.overall().get(Evaluation.ACCURACY).value()));
                for (String g : groups) {
                    Evaluation.GroupMetrics gm = ev.groups().get(g);
                    line.append(String.format(Locale.ROOT, " %13.3f", gm == null ? Double.NaN : gm.flagRate().value()));
                }
                o.println(line);
            }
        }
        o.println("(flag:<group> = share of that test category flagged at the validation threshold: TPR for harmful");
        o.println(" categories, FPR for harmless ones)");
    }

    private static void writeCsv(Path dir, List<Prober.HookResult> results, List<DetectorKind> kinds) {
        StringBuilder sb = new StringBuilder("hook,layer,detector,subset,metric,value,ci_lo,ci_hi\n");
        for (Prober.HookResult r : results) {
            for (DetectorKind k : kinds) {
                Prober.KindResult kr = r.get(k);
                String prefix = r.hook() + "," + r.layer() + "," + k.cliName() + ",";
                for (var e : kr.test().overall().entrySet()) sb.append(prefix).append("all,").append(e.getKey()).append(',').append(csv(e.getValue())).append('\n');
                for (Evaluation.GroupMetrics g : kr.test().groups().values()) {
                    sb.append(prefix).append(g.group()).append(",auroc,").append(csv(g.auroc())).append('\n');
                    sb.append(prefix).append(g.group()).append(",flag_rate,").append(csv(g.flagRate())).append('\n');
                }
                sb.append(prefix).append("val,auroc,").append(num(kr.fitted().valAuroc())).append(",,\n");
                sb.append(prefix).append("val,threshold,").append(num(kr.fitted().params().thresholdProbability())).append(",,\n");
                for (var h : kr.fitted().hyper().entrySet()) {
                    sb.append(prefix).append("val,").append(h.getKey()).append(',').append(num(h.getValue())).append(",,\n");
                }
            }
        }
        AtomicFiles.writeString(dir.resolve("probe.csv"), sb.toString());
    }

    private static String csv(Estimate e) {
        return num(e.value()) + "," + num(e.lo()) + "," + num(e.hi());
    }

    static String num(double v) {
        return Double.isNaN(v) ? "" : Double.toString(v);
    }

    private static void writeScores(Path dir, List<Prober.HookResult> results, ProbeData data) {
        int[] test = data.indices("test");
        StringBuilder sb = new StringBuilder("id,group,label,hook,layer,detector,logit,score,flagged\n");
        for (Prober.HookResult r : results) {
            for (Prober.KindResult kr : r.kinds().values()) {
                for (int k = 0; k < test.length; k++) {
                    ProbeData.Example e = data.examples().get(test[k]);
                    double logit = kr.testLogit()[k];
                    sb.append(csvText(e.id())).append(',').append(e.group()).append(',').append(e.positive() ? "harmful" : "harmless")
                            .append(',').append(r.hook()).append(',').append(r.layer()).append(',').append(kr.kind().cliName())
                            .append(',').append(logit).append(',').append(1 / (1 + Math.exp(-logit))).append(',')
                            .append(kr.fitted().params().flagged(logit)).append('\n');
                }
            }
        }
        AtomicFiles.writeString(dir.resolve("test_scores.csv"), sb.toString());
    }

    private static String csvText(String s) {
        return s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }

    private ObjectNode summary(HookedModel m, ProbeData data, List<Prober.HookResult> results, List<DetectorKind> kinds,
                               Map<DetectorKind, Optional<Prober.HookResult>> earliest, Prober.HookResult chosen,
                               DetectorKind mainKind, Pooling pooling, ThresholdRule rule) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        root.put("jlens_version", JlensCli.VERSION);
        ObjectNode run = root.putObject("run");
        run.put("model", m.location().id());
        run.put("revision", m.location().revision());
        run.put("architecture", m.info().architecture());
        run.put("n_layers", m.info().nLayers());
        run.put("d_model", m.info().dModel());
        run.put("hooks", hooks);
        run.put("pooling", pooling.cliName());
        run.put("data", data.description());
        for (String s : List.of("train", "val", "test")) {
            int[] idx = data.indices(s);
            int pos = 0;
            for (int i : idx) if (data.examples().get(i).positive()) pos++;
            run.putObject(s).put("harmful", pos).put("harmless", idx.length - pos);
        }
        run.put("bootstrap", bootstrap);
        run.put("seed", seed);
        run.put("target", target);
        run.put("threshold_rule", rule.describe());
        ArrayNode cg = run.putArray("c_grid");
        for (double c : cGrid == null ? DetectorFitter.DEFAULT_C : cGrid.stream().mapToDouble(Double::doubleValue).toArray()) cg.add(c);
        ObjectNode ea = root.putObject("earliest");
        for (var e : earliest.entrySet()) {
            if (e.getValue().isPresent()) ea.putObject(e.getKey().cliName()).put("hook", e.getValue().get().hook()).put("layer", e.getValue().get().layer());
            else ea.putNull(e.getKey().cliName());
        }
        root.putObject("chosen").put("hook", chosen.hook()).put("layer", chosen.layer()).put("kind", mainKind.cliName());
        ArrayNode hooksArr = root.putArray("hooks");
        for (Prober.HookResult r : results) {
            ObjectNode h = hooksArr.addObject();
            h.put("hook", r.hook());
            h.put("layer", r.layer());
            ObjectNode det = h.putObject("detectors");
            for (DetectorKind k : kinds) det.set(k.cliName(), kindJson(om, r, r.get(k)));
        }
        root.put("complete", true);
        return root;
    }

    static ObjectNode kindJson(ObjectMapper om, Prober.HookResult r, Prober.KindResult kr) {
        ObjectNode k = om.createObjectNode();
        k.put("hook", r.hook());
        k.put("layer", r.layer());
        k.put("kind", kr.kind().cliName());
        ObjectNode hyper = k.putObject("hyperparameters");
        kr.fitted().hyper().forEach(hyper::put);
        k.put("val_auroc", kr.fitted().valAuroc());
        k.put("threshold", kr.fitted().params().thresholdProbability());
        ObjectNode test = k.putObject("test");
        test.put("n_harmful", kr.test().nPositive());
        test.put("n_harmless", kr.test().nNegative());
        kr.test().overall().forEach((name, e) -> test.set(name, est(om, e)));
        ObjectNode groups = k.putObject("categories");
        for (Evaluation.GroupMetrics g : kr.test().groups().values()) {
            ObjectNode gn = groups.putObject(g.group());
            gn.put("class", g.positive() ? "harmful" : "harmless");
            gn.put("n", g.n());
            gn.set("auroc", est(om, g.auroc()));
            gn.set("flag_rate", est(om, g.flagRate()));
        }
        ArrayNode rel = k.putArray("reliability");
        for (Evaluation.ReliabilityBin b : kr.test().reliability()) {
            ObjectNode bn = rel.addObject();
            bn.put("lo", b.lo());
            bn.put("hi", b.hi());
            bn.put("n", b.n());
            putNumber(bn, "mean_predicted", b.meanPredicted());
            putNumber(bn, "observed", b.observed());
        }
        return k;
    }

    private static ObjectNode estJson(Estimate e) {
        return est(new ObjectMapper(), e);
    }

    private static ObjectNode est(ObjectMapper om, Estimate e) {
        ObjectNode n = om.createObjectNode();
        putNumber(n, "value", e.value());
        putNumber(n, "ci_lo", e.lo());
        putNumber(n, "ci_hi", e.hi());
        return n;
    }

    /** JSON has no NaN: a value that could not be computed is null. */
    private static void putNumber(ObjectNode n, String field, double v) {
        if (Double.isFinite(v)) n.put(field, v);
        else n.putNull(field);
    }
}
