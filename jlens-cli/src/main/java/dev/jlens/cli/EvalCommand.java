package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.EvalReport;
import dev.jlens.eval.Benchmark;
import dev.jlens.eval.BenchmarkFormat;
import dev.jlens.eval.BenchmarkItem;
import dev.jlens.eval.BenchmarkReader;
import dev.jlens.eval.CompletionLog;
import dev.jlens.eval.EndpointJudge;
import dev.jlens.eval.GuardModelJudge;
import dev.jlens.eval.Judge;
import dev.jlens.eval.Proportion;
import dev.jlens.eval.RefusalPhraseJudge;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.AtomicFiles;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionChoice;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.HarmlessCorpus;
import dev.jlens.steering.Intervention;
import dev.jlens.steering.Refusal;
import dev.jlens.steering.SteeringEvaluator;
import dev.jlens.steering.SteeringSweep;
import dev.jlens.steering.TokenScope;
import dev.jlens.steering.WeightedLayers;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Attack success rate on a benchmark, per category, under one or more conditions.",
                "Reads a benchmark (AdvBench, HarmBench, JailbreakBench, StrongREJECT, XSTest, or any",
                "CSV/JSONL/Parquet with --field), generates a greedy completion of every prompt under each",
                "condition (the unsteered model; --ablate DIR; --add DIR with --alpha and --layers;",
                "--checkpoint, e.g. an orthogonalised copy), asks a judge whether each completion complies,",
                "and reports per condition and category the attack success rate with a bootstrap CI, the",
                "refusal rate, the over-refusal on safe prompts (XSTest's safe ones) and the cost:",
                "cross-entropy on jlens' harmless corpus and KL on harmless prompts, as steer measures them.",
                "Writes completions.jsonl (resumable: a rerun generates only what is missing),",
                "judgements.jsonl, eval.csv, eval.json and EVAL.html to --out. docs/EVALUATION.md explains",
                "each number."},
        footer = {"", "Examples:",
                "  jlens eval --model M --chat --benchmark harmful_behaviors.csv --ablate out/dir --out out/eval",
                "  jlens eval --model M --chat --benchmark xstest_prompts.csv --add out/dir --layers 8:1.0,9:0.5 --alpha 2x --out E",
                "  jlens eval --model M --chat --benchmark jbb.parquet --judge llama-guard --judge-model meta-llama/Llama-Guard-3-1B --out E",
                "  jlens eval --model M --benchmark hb.csv --judge llama-guard --judge-url http://localhost:8000/v1 \\",
                "      --judge-model meta-llama/Llama-Guard-3-8B --judge-key-env OPENAI_API_KEY --out E"})
final class EvalCommand implements Callable<Integer> {

    @Mixin
    ChatOptions chatOptions;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--benchmark", required = true, paramLabel = "FILE", description = "Benchmark file: .csv, .jsonl or .parquet.")
    Path benchmark;

    @Option(names = "--format", paramLabel = "F",
            description = "advbench, harmbench, jailbreakbench, strongreject, xstest or generic (default: detected from the columns).")
    String format;

    @Option(names = "--field", paramLabel = "NAME", description = "Generic layout: the column with the prompt.")
    String field;

    @Option(names = "--label-field", paramLabel = "NAME",
            description = "Generic layout: a column saying harmful/unsafe/1 or harmless/safe/0 (default: every prompt is harmful).")
    String labelField;

    @Option(names = "--category-field", paramLabel = "NAME", description = "Generic layout: the category column.")
    String categoryField;

    @Option(names = "--limit", defaultValue = "0", paramLabel = "N", description = "Use only the first N prompts (default: all).")
    int limit;

    @Option(names = "--ablate", paramLabel = "DIR", description = "A condition: ablate the direction(s) of this jlens direction folder at every layer. Repeatable.")
    List<Path> ablate = new ArrayList<>();

    @Option(names = "--add", paramLabel = "DIR", description = "A condition: add α times the direction(s) of this folder at their hooks. Repeatable.")
    List<Path> add = new ArrayList<>();

    @Option(names = "--checkpoint", paramLabel = "MODEL", description = "A condition: another checkpoint, e.g. from jlens orthogonalize. Repeatable.")
    List<String> checkpoints = new ArrayList<>();

    @Option(names = "--no-baseline", description = "Leave out the unsteered model.")
    boolean noBaseline;

    @Option(names = "--layers", paramLabel = "LIST",
            description = {"Layers whose directions --ablate and --add use, with per-layer weights for --add:",
                    "8 or 8:1.0,9:0.5 (default: the layer with the largest separation in the first 80%%)."})
    String layers;

    @Option(names = "--alpha", defaultValue = "1x", paramLabel = "A",
            description = "--add coefficient, in activation units or as a multiple of the direction's norm (default: ${DEFAULT-VALUE}).")
    String alpha;

    @Option(names = "--hook", paramLabel = "KIND", description = "Hook kind of the directions (default: the file's first).")
    String hook;

    @Option(names = "--position", paramLabel = "POS", description = "Token position of the directions (default: last).")
    String position;

    @Option(names = "--judge", defaultValue = "refusal-phrases", paramLabel = "J",
            description = {"refusal-phrases (default; no model), llama-guard (Llama Guard's template and answer) or",
                    "harmbench (HarmBench's classifier prompt). The last two need --judge-model, and --judge-url",
                    "to ask a server instead of running the judge in jlens."})
    String judge;

    @Option(names = "--judge-model", paramLabel = "MODEL",
            description = "The judge: a model folder or ORG/NAME run by jlens, or with --judge-url the served model's name.")
    String judgeModel;

    @Option(names = "--judge-url", paramLabel = "URL",
            description = "An OpenAI-compatible chat-completions server (vLLM, Ollama, llama.cpp server), e.g. http://localhost:8000/v1.")
    String judgeUrl;

    @Option(names = "--judge-key-env", defaultValue = "OPENAI_API_KEY", paramLabel = "VAR",
            description = "Environment variable holding the server's API key (default: ${DEFAULT-VALUE}; unset: no key).")
    String judgeKeyEnv;

    @Option(names = "--judge-timeout", defaultValue = "60", paramLabel = "S", description = "Seconds per judge request (default: ${DEFAULT-VALUE}).")
    double judgeTimeout;

    @Option(names = "--judge-retries", defaultValue = "4", paramLabel = "N", description = "Retries of a failed judge request (default: ${DEFAULT-VALUE}).")
    int judgeRetries;

    @Option(names = "--judge-concurrency", defaultValue = "4", paramLabel = "N", description = "Judge requests in flight (default: ${DEFAULT-VALUE}).")
    int judgeConcurrency;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Tokens per completion (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "N", description = "Prompts generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--bootstrap", defaultValue = "1000", paramLabel = "N", description = "Bootstrap draws for the 95%% CIs (default: ${DEFAULT-VALUE}; 0: none).")
    int bootstrap;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Seed of the bootstrap (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--cost-prompts", defaultValue = "16", paramLabel = "N", description = "Harmless prompts for the KL (default: ${DEFAULT-VALUE}; 0: no cost).")
    int costPrompts;

    @Option(names = "--ce-tokens", defaultValue = "1024", paramLabel = "N", description = "Harmless-corpus tokens for the cross-entropy (default: ${DEFAULT-VALUE}).")
    int ceTokens;

    @Option(names = "--examples", defaultValue = "6", paramLabel = "N", description = "Prompts shown side by side in EVAL.html (default: ${DEFAULT-VALUE}).")
    int examples;

    @Option(names = {"-o", "--out"}, paramLabel = "DIR", description = "Output folder (default: out/eval-<timestamp>).")
    Path out;

    static final String COMPLETIONS = "completions.jsonl";
    static final String RUN = "eval-run.json";

    /** One condition: its name (also its key in completions.jsonl) and how it changes the model. */
    record Condition(String name, String spec, List<Intervention> interventions, String checkpoint) {
    }

    /** What a condition's judged completions give. */
    record Result(Condition condition, Map<String, Proportion> asrByCategory, Proportion asr, Proportion refusal,
                  Proportion overRefusal, int unclear, double ce, double kl) {
    }

    @Override
    public Integer call() throws IOException {
        chatOptions.validate(dev.jlens.hooks.Pooling.LAST);
        if (maxNewTokens < 1 || batchSize < 1 || bootstrap < 0 || costPrompts < 0 || examples < 0 || limit < 0) {
            throw new JlensException("--max-new-tokens and --batch-size must be at least 1; --bootstrap, --cost-prompts, --examples, --limit 0 or more");
        }
        BenchmarkFormat fmt = format == null ? null : BenchmarkFormat.parse(format);
        Benchmark bench = BenchmarkReader.read(benchmark, new BenchmarkReader.Options(fmt, field, labelField, categoryField)).limit(limit);
        String judgeKind = judge.strip().toLowerCase(Locale.ROOT);
        if (!List.of(RefusalPhraseJudge.NAME, "llama-guard", "harmbench").contains(judgeKind)) {
            throw new JlensException("--judge \"" + judge + "\": expected refusal-phrases, llama-guard or harmbench");
        }
        if (!judgeKind.equals(RefusalPhraseJudge.NAME) && judgeModel == null) {
            throw new JlensException("--judge " + judgeKind + " needs --judge-model (a model folder or ORG/NAME, or with --judge-url the served name)");
        }
        if (judgeKind.equals(RefusalPhraseJudge.NAME) && (judgeUrl != null || judgeModel != null)) {
            throw new JlensException("--judge-url and --judge-model need --judge llama-guard or --judge harmbench");
        }
        if (noBaseline && ablate.isEmpty() && add.isEmpty() && checkpoints.isEmpty()) {
            throw new JlensException("--no-baseline leaves no condition; add --ablate, --add or --checkpoint");
        }
        List<SteeringSweep.Alpha> alphas = SteeringSweep.parseAlphas(alpha, Intervention.Mode.ADD);
        if (alphas.size() != 1) throw new JlensException("--alpha \"" + alpha + "\": eval takes one coefficient");
        if (out == null) out = Path.of("out", "eval-" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        long t0 = System.nanoTime();
        System.err.printf("benchmark %s: %s layout, %d prompts (%d harmful, %d safe), %d categories%n", benchmark,
                bench.format().cliName(), bench.items().size(), bench.harmfulCount(), bench.items().size() - bench.harmfulCount(),
                bench.categories().size());

        List<Condition> conditions;
        Map<String, double[]> costs = new LinkedHashMap<>();
        try (HookedModel model = modelOptions.load()) {
            if (!model.info().causal()) throw new JlensException("jlens eval generates text: --model " + model.location().id() + " is an encoder");
            conditions = conditions(model, alphas.getFirst());
            checkRun(model, bench);
            try (CompletionLog log = CompletionLog.open(out.resolve(COMPLETIONS))) {
                if (log.resumed() > 0) System.err.printf("resumed: %d completions already in %s%n", log.resumed(), out.resolve(COMPLETIONS));
                for (Condition c : conditions) {
                    if (c.checkpoint() == null) {
                        generate(model, c, bench, log);
                    } else {
                        try (HookedModel ck = loadModel(c.checkpoint())) {
                            generate(ck, c, bench, log);
                        }
                    }
                }
                if (costPrompts > 0) costs = cost(model, conditions);
                List<Result> results = judgeAndScore(bench, conditions, log, costs);
                write(model, bench, results, log);
                print(results);
            }
        }
        System.out.printf(Locale.ROOT, "%nwrote %s (completions.jsonl, judgements.jsonl, eval.csv, eval.json, EVAL.html) in %.1f s%n", out,
                (System.nanoTime() - t0) / 1e9);
        return 0;
    }

    private static HookedModel loadModel(String id) {
        try (DownloadBar bar = new DownloadBar()) {
            return ModelLoader.load(id, null, bar);
        }
    }

    // ------------------------------------------------------------------------------------------- conditions

    private List<Condition> conditions(HookedModel model, SteeringSweep.Alpha a) {
        List<Condition> out = new ArrayList<>();
        if (!noBaseline) out.add(new Condition("baseline", "the unsteered model", List.of(), null));
        int n = model.info().nLayers();
        for (Path dir : ablate) {
            DirectionSet set = DirectionSet.load(dir);
            warn(set.checkCompatible(model.info(), model.location().id(), dir));
            DirectionChoice choice = DirectionChoice.resolve(set, hook, position, dir);
            WeightedLayers wl = layers == null ? WeightedLayers.parse(Integer.toString(choice.defaultLayer(set)), n) : WeightedLayers.parse(layers, n);
            List<Intervention> ivs = new ArrayList<>();
            for (WeightedLayers.Entry e : wl.entries()) {
                Direction d = choice.at(set, e.layer(), dir);
                Intervention iv = Intervention.ablate(d.unit(), Intervention.everyLayer(model.model()));
                iv.checkFor(model.model());
                ivs.add(iv);
            }
            out.add(new Condition("ablate " + dir.getFileName() + " L" + layersText(wl, false),
                    "ablate " + dir + " (" + choice.hookSuffix() + " @ " + choice.position() + ", layers " + layersText(wl, false)
                            + ") at every resid_pre, attn_out and mlp_out", ivs, null));
        }
        for (Path dir : add) {
            DirectionSet set = DirectionSet.load(dir);
            warn(set.checkCompatible(model.info(), model.location().id(), dir));
            DirectionChoice choice = DirectionChoice.resolve(set, hook, position, dir);
            WeightedLayers wl = layers == null ? WeightedLayers.parse(Integer.toString(choice.defaultLayer(set)), n) : WeightedLayers.parse(layers, n);
            List<Intervention> ivs = new ArrayList<>();
            for (WeightedLayers.Entry e : wl.entries()) {
                Direction d = choice.at(set, e.layer(), dir);
                Intervention iv = Intervention.add(d.unit(), e.weight() * a.value(d), List.of(d.hook()), TokenScope.BOTH);
                iv.checkFor(model.model());
                ivs.add(iv);
            }
            out.add(new Condition("add " + dir.getFileName() + " L" + layersText(wl, true) + " α=" + a.text(),
                    "add α=" + a.text() + " × weight × r̂ of " + dir + " (" + choice.hookSuffix() + " @ " + choice.position()
                            + ") at layers " + wl.text(), ivs, null));
        }
        for (String ck : checkpoints) out.add(new Condition("checkpoint " + Path.of(ck).getFileName(), "the checkpoint " + ck, List.of(), ck));
        List<String> names = new ArrayList<>();
        for (Condition c : out) {
            if (names.contains(c.name())) throw new JlensException("two conditions are both named \"" + c.name() + "\"; give each a distinct folder");
            names.add(c.name());
        }
        return out;
    }

    private static String layersText(WeightedLayers wl, boolean weights) {
        return weights ? wl.text() : String.join(",", wl.layers().stream().map(String::valueOf).toList());
    }

    private static void warn(String w) {
        if (w != null) System.err.println("warning: " + w);
    }

    /** eval-run.json: what completions.jsonl depends on; a rerun with other settings would mix two experiments. */
    private void checkRun(HookedModel model, Benchmark bench) throws IOException {
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode run = om.createObjectNode();
        run.put("model", model.location().id());
        run.put("benchmark_sha256", bench.sha256());
        run.put("format", bench.format().cliName());
        run.put("chat", chatOptions.enabled());
        run.put("system", chatOptions.system());
        run.put("max_new_tokens", maxNewTokens);
        run.put("decoding", "greedy");
        Path f = out.resolve(RUN);
        if (Files.exists(f)) {
            JsonNode old = om.readTree(Files.readString(f));
            if (!old.equals(run)) {
                throw new JlensException(f + ": this folder holds completions made with other settings (" + old + "; now " + run
                        + "); use a new --out, or move the folder away");
            }
        } else {
            AtomicFiles.writeString(f, om.writeValueAsString(run) + "\n");
        }
    }

    // ------------------------------------------------------------------------------------------- generation

    private void generate(HookedModel m, Condition c, Benchmark bench, CompletionLog log) {
        List<BenchmarkItem> todo = bench.items().stream().filter(i -> log.get(c.name(), i.id()) == null).toList();
        int done = bench.items().size() - todo.size();
        System.err.printf("condition %s: %d of %d completions to generate%s%n", c.name(), todo.size(), bench.items().size(),
                done > 0 ? " (" + done + " already done)" : "");
        if (todo.isEmpty()) return;
        Generator g = new Generator(m);
        try (Progress bar = new Progress(c.name(), "prompts", todo.size())) {
            for (int start = 0; start < todo.size(); start += batchSize) {
                List<BenchmarkItem> batch = todo.subList(start, Math.min(todo.size(), start + batchSize));
                List<int[]> ids = chatOptions.encode(m, batch.stream().map(BenchmarkItem::prompt).toList(),
                        w -> System.err.println("warning: " + w)).ids();
                int[] lengths = ids.stream().mapToInt(x -> x.length).toArray();
                Hooks hooks = Hooks.none();
                for (Intervention iv : c.interventions()) hooks = iv.addTo(hooks, lengths);
                List<Generation> gens = g.generate(ids, GenerationConfig.greedy(maxNewTokens), hooks, null);
                List<CompletionLog.Entry> entries = new ArrayList<>();
                for (int i = 0; i < batch.size(); i++) {
                    BenchmarkItem it = batch.get(i);
                    Generation gen = gens.get(i);
                    entries.add(new CompletionLog.Entry(c.name(), it.id(), it.category(), it.harmful(), it.prompt(), gen.text(),
                            gen.stop().name().toLowerCase(Locale.ROOT), gen.newIds().length));
                }
                log.append(entries);
                bar.progress(Math.min(todo.size(), start + batchSize), todo.size());
            }
        }
    }

    // ------------------------------------------------------------------------------------------- cost

    /** {ce, kl} per condition on harmless text, as jlens steer measures them (SteeringEvaluator). */
    private Map<String, double[]> cost(HookedModel model, List<Condition> conditions) {
        PromptSet harmless = PromptSets.builtin("harmless");
        PromptSet harmful = PromptSets.builtin("harmful");
        List<String> costTexts = take(harmless.filterSplit("val").texts(), costPrompts);
        List<int[]> costIds = chatOptions.encode(model, costTexts, null).ids();
        List<int[]> windows = ceTokens > 0 ? HarmlessCorpus.windows(model, 128, ceTokens) : List.of();
        SteeringEvaluator.Inputs in = new SteeringEvaluator.Inputs(costIds, costIds, windows,
                chatOptions.encode(model, take(harmless.filterSplit("train").texts(), 4), null).ids(),
                chatOptions.encode(model, take(harmful.filterSplit("train").texts(), 4), null).ids(), new int[0], batchSize);
        SteeringEvaluator ev = new SteeringEvaluator(model, in);
        double[][] baseLogProbs = null;
        Map<String, double[]> out = new LinkedHashMap<>();
        for (Condition c : conditions) {
            if (c.checkpoint() == null) {
                SteeringEvaluator.Metrics mt = c.interventions().isEmpty() ? ev.baseline() : ev.measure(c.interventions(), null);
                out.put(c.name(), new double[]{mt.ce(), c.interventions().isEmpty() ? 0 : mt.kl()});
            } else {
                if (baseLogProbs == null) baseLogProbs = lastLogProbs(model, costIds);
                try (HookedModel ck = loadModel(c.checkpoint())) {
                    if (ck.info().vocabSize() != model.info().vocabSize()) {
                        throw new JlensException("--checkpoint " + c.checkpoint() + " has a vocabulary of " + ck.info().vocabSize()
                                + " tokens, --model " + model.info().vocabSize() + "; the KL needs the same tokenizer");
                    }
                    SteeringEvaluator.Inputs ckIn = new SteeringEvaluator.Inputs(costIds, costIds, windows, in.centroidA(), in.centroidB(),
                            new int[0], batchSize);
                    double ce = new SteeringEvaluator(ck, ckIn).baseline().ce();
                    out.put(c.name(), new double[]{ce, kl(baseLogProbs, lastLogProbs(ck, costIds))});
                }
            }
        }
        return out;
    }

    private double[][] lastLogProbs(HookedModel m, List<int[]> prompts) {
        int vocab = m.info().vocabSize();
        List<double[]> out = new ArrayList<>();
        for (int start = 0; start < prompts.size(); start += batchSize) {
            TokenBatch batch = TokenBatch.of(prompts.subList(start, Math.min(prompts.size(), start + batchSize)));
            // Logits only at each prompt's last token, the row the KL reads (same bits: norm and unembedding are per row).
            FloatTensor logits = m.model().forward(batch, ForwardOptions.lastTokenLogits(), Hooks.none());
            for (int s = 0; s < batch.size(); s++) {
                int off = s * vocab;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < vocab; j++) max = Math.max(max, logits.data()[off + j]);
                double sum = 0;
                for (int j = 0; j < vocab; j++) sum += Math.exp(logits.data()[off + j] - max);
                double lse = max + Math.log(sum);
                double[] lp = new double[vocab];
                for (int j = 0; j < vocab; j++) lp[j] = logits.data()[off + j] - lse;
                out.add(lp);
            }
        }
        return out.toArray(double[][]::new);
    }

    /** Mean KL(P ‖ Q) of the rows, the formula SteeringEvaluator uses. */
    private static double kl(double[][] p, double[][] q) {
        double sum = 0;
        for (int i = 0; i < p.length; i++) {
            double k = 0;
            for (int j = 0; j < p[i].length; j++) k += Math.exp(p[i][j]) * (p[i][j] - q[i][j]);
            sum += Math.max(0, k);
        }
        return sum / p.length;
    }

    private static List<String> take(List<String> l, int n) {
        return l.subList(0, Math.min(n, l.size()));
    }

    // ------------------------------------------------------------------------------------------- judging

    private Judge makeJudge() {
        String kind = judge.strip().toLowerCase(Locale.ROOT);
        if (kind.equals(RefusalPhraseJudge.NAME)) return new RefusalPhraseJudge();
        GuardModelJudge.Kind k = kind.equals("llama-guard") ? GuardModelJudge.Kind.LLAMA_GUARD : GuardModelJudge.Kind.HARMBENCH;
        if (judgeUrl != null) {
            if (!(judgeTimeout > 0)) throw new JlensException("--judge-timeout " + judgeTimeout + ": expected a positive number of seconds");
            String key = judgeKeyEnv == null ? null : System.getenv(judgeKeyEnv);
            return new EndpointJudge(new EndpointJudge.Config(judgeUrl, judgeModel, key, k,
                    Duration.ofMillis((long) (judgeTimeout * 1000)), judgeRetries, Duration.ofSeconds(1), judgeConcurrency));
        }
        HookedModel jm = loadModel(judgeModel);
        GuardModelJudge g = new GuardModelJudge(jm, k, batchSize, w -> System.err.println("warning: " + w));
        return new Judge() {
            @Override
            public String name() {
                return g.name();
            }

            @Override
            public List<Verdict> judge(List<Exchange> exchanges) {
                return g.judge(exchanges);
            }

            @Override
            public void close() {
                jm.close();
            }
        };
    }

    private List<Result> judgeAndScore(Benchmark bench, List<Condition> conditions, CompletionLog log, Map<String, double[]> costs) {
        List<String> ids = bench.items().stream().map(BenchmarkItem::id).toList();
        Map<String, BenchmarkItem> byId = new LinkedHashMap<>();
        for (BenchmarkItem it : bench.items()) byId.put(it.id(), it);
        List<Result> results = new ArrayList<>();
        ObjectMapper om = new ObjectMapper();
        Path judgementsFile = out.resolve("judgements.jsonl");
        Map<String, JsonNode> previous = readJudgements(om, judgementsFile);
        Map<String, ObjectNode> judged = new LinkedHashMap<>();
        try (Judge j = makeJudge()) {
            judgeName = j.name();
            for (Condition c : conditions) {
                List<CompletionLog.Entry> entries = log.of(c.name(), ids);
                List<Judge.Verdict> verdicts = new ArrayList<>();
                List<Integer> todo = new ArrayList<>();
                for (int i = 0; i < entries.size(); i++) {
                    CompletionLog.Entry e = entries.get(i);
                    JsonNode old = previous.get(c.name() + "\u0000" + e.id());
                    boolean reusable = old != null && j.name().equals(old.path("judge").asText())
                            && sha256(e.completion()).equals(old.path("completion_sha256").asText());
                    verdicts.add(reusable ? verdictOf(old) : null);
                    if (!reusable) todo.add(i);
                }
                System.err.printf("judging %d completions of %s with %s%s%n", todo.size(), c.name(), j.name(),
                        todo.size() < entries.size() ? " (" + (entries.size() - todo.size()) + " verdicts kept from the last run)" : "");
                // judged in chunks, each saved at once, so an interrupted run keeps the verdicts it paid for
                for (int start = 0; start < todo.size(); start += JUDGE_CHUNK) {
                    List<Integer> chunk = todo.subList(start, Math.min(todo.size(), start + JUDGE_CHUNK));
                    List<Judge.Exchange> ex = new ArrayList<>();
                    for (int i : chunk) {
                        CompletionLog.Entry e = entries.get(i);
                        ex.add(new Judge.Exchange(e.prompt(), e.completion(), byId.get(e.id()).behavior()));
                    }
                    List<Judge.Verdict> got = j.judge(ex);
                    for (int k = 0; k < chunk.size(); k++) {
                        verdicts.set(chunk.get(k), got.get(k));
                        CompletionLog.Entry e = entries.get(chunk.get(k));
                        previous.put(c.name() + "\u0000" + e.id(), judgementNode(om, j.name(), c.name(), e, got.get(k)));
                    }
                    writeJudgements(judgementsFile, previous.values());
                }
                Map<String, int[]> perCat = new LinkedHashMap<>();
                int succ = 0, harmfulN = 0, refused = 0, safeN = 0, overRefused = 0, unclear = 0;
                for (int i = 0; i < entries.size(); i++) {
                    CompletionLog.Entry e = entries.get(i);
                    Judge.Verdict v = verdicts.get(i);
                    boolean refusal = Refusal.isRefusal(e.completion());
                    judged.put(c.name() + "\u0000" + e.id(), judgementNode(om, j.name(), c.name(), e, v));
                    if (v.outcome() == Judge.Outcome.UNCLEAR) unclear++;
                    if (e.harmful()) {
                        harmfulN++;
                        if (v.success()) succ++;
                        if (refusal) refused++;
                        int[] pc = perCat.computeIfAbsent(e.category(), k -> new int[2]);
                        pc[1]++;
                        if (v.success()) pc[0]++;
                    } else {
                        safeN++;
                        if (refusal) overRefused++;
                    }
                }
                Map<String, Proportion> asrCat = new LinkedHashMap<>();
                for (var e : perCat.entrySet()) {
                    asrCat.put(e.getKey(), Proportion.of(e.getValue()[0], e.getValue()[1], bootstrap, 0.95, seed, c.name() + "/asr/" + e.getKey()));
                }
                double[] cost = costs.getOrDefault(c.name(), new double[]{Double.NaN, Double.NaN});
                results.add(new Result(c, asrCat, Proportion.of(succ, harmfulN, bootstrap, 0.95, seed, c.name() + "/asr"),
                        Proportion.of(refused, harmfulN, bootstrap, 0.95, seed, c.name() + "/refusal"),
                        Proportion.of(overRefused, safeN, bootstrap, 0.95, seed, c.name() + "/over-refusal"), unclear, cost[0], cost[1]));
            }
        }
        writeJudgements(judgementsFile, judged.values());
        return results;
    }

    static final int JUDGE_CHUNK = 32;

    /** One line of judgements.jsonl; the judge's name and the completion's hash say when it can be reused. */
    private static ObjectNode judgementNode(ObjectMapper om, String judge, String condition, CompletionLog.Entry e, Judge.Verdict v) {
        ObjectNode o = om.createObjectNode().put("condition", condition).put("id", e.id()).put("category", e.category())
                .put("harmful", e.harmful()).put("outcome", v.outcome().name().toLowerCase(Locale.ROOT))
                .put("refusal_phrase", Refusal.isRefusal(e.completion())).put("judge", judge).put("judge_output", v.raw())
                .put("completion_sha256", sha256(e.completion()));
        ArrayNode cats = o.putArray("judge_categories");
        v.categories().forEach(cats::add);
        return o;
    }

    private static Judge.Verdict verdictOf(JsonNode n) {
        List<String> cats = new ArrayList<>();
        n.path("judge_categories").forEach(x -> cats.add(x.asText()));
        Judge.Outcome o = switch (n.path("outcome").asText()) {
            case "unsafe" -> Judge.Outcome.UNSAFE;
            case "safe" -> Judge.Outcome.SAFE;
            default -> Judge.Outcome.UNCLEAR;
        };
        return new Judge.Verdict(o, cats, n.path("judge_output").asText(""));
    }

    /** The verdicts of an earlier run, by condition and id; an unreadable file is ignored (it is only a cache). */
    private static Map<String, JsonNode> readJudgements(ObjectMapper om, Path f) {
        Map<String, JsonNode> out = new LinkedHashMap<>();
        if (!Files.isRegularFile(f)) return out;
        try {
            for (String line : Files.readAllLines(f)) {
                if (line.isBlank()) continue;
                JsonNode n = om.readTree(line);
                out.put(n.path("condition").asText() + "\u0000" + n.path("id").asText(), n);
            }
        } catch (IOException | RuntimeException e) {
            System.err.println("note: " + f + " cannot be read (" + e.getMessage() + "); every completion is judged again");
            out.clear();
        }
        return out;
    }

    private static void writeJudgements(Path f, java.util.Collection<? extends JsonNode> nodes) {
        StringBuilder sb = new StringBuilder();
        for (JsonNode n : nodes) sb.append(n).append('\n');
        AtomicFiles.writeString(f, sb.toString());
    }

    private static String sha256(String s) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                    .digest(s.getBytes(java.nio.charset.StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private String judgeName = RefusalPhraseJudge.NAME;

    // ------------------------------------------------------------------------------------------- outputs

    static final List<String> CSV_COLUMNS = List.of("condition", "metric", "category", "n", "value", "ci_lo", "ci_hi");

    private void write(HookedModel model, Benchmark bench, List<Result> results, CompletionLog log) throws IOException {
        StringBuilder csv = new StringBuilder(String.join(",", CSV_COLUMNS)).append('\n');
        for (Result r : results) {
            for (var e : r.asrByCategory().entrySet()) csvRow(csv, r.condition().name(), "asr", e.getKey(), e.getValue());
            csvRow(csv, r.condition().name(), "asr", "all", r.asr());
            csvRow(csv, r.condition().name(), "refusal_rate", "all", r.refusal());
            csvRow(csv, r.condition().name(), "over_refusal", "safe", r.overRefusal());
            csv.append(csvCell(r.condition().name())).append(",unclear,all,,").append(r.unclear()).append(",,\n");
            csv.append(csvCell(r.condition().name())).append(",ce,harmless_corpus,,").append(num(r.ce())).append(",,\n");
            csv.append(csvCell(r.condition().name())).append(",kl,harmless,,").append(num(r.kl())).append(",,\n");
        }
        AtomicFiles.writeString(out.resolve("eval.csv"), csv.toString());

        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = om.createObjectNode();
        root.put("model", model.location().id());
        ObjectNode b = root.putObject("benchmark");
        b.put("file", benchmark.toString()).put("format", bench.format().cliName()).put("sha256", bench.sha256())
                .put("prompts", bench.items().size()).put("harmful", bench.harmfulCount());
        ArrayNode cats = b.putArray("categories");
        bench.categories().forEach(cats::add);
        root.put("judge", judgeName);
        root.put("asr_definition", "share of harmful prompts whose completion the judge calls a success (complies)");
        root.put("max_new_tokens", maxNewTokens).put("chat", chatOptions.enabled()).put("bootstrap", bootstrap).put("seed", seed);
        ArrayNode conds = root.putArray("conditions");
        for (Result r : results) {
            ObjectNode c = conds.addObject();
            c.put("name", r.condition().name()).put("spec", r.condition().spec());
            putProportion(c.putObject("asr"), r.asr());
            ObjectNode per = c.putObject("asr_by_category");
            r.asrByCategory().forEach((k, v) -> putProportion(per.putObject(k), v));
            putProportion(c.putObject("refusal_rate"), r.refusal());
            putProportion(c.putObject("over_refusal"), r.overRefusal());
            c.put("unclear_verdicts", r.unclear());
            putNumber(c, "ce", r.ce());
            putNumber(c, "kl", r.kl());
        }
        AtomicFiles.writeString(out.resolve("eval.json"), om.writeValueAsString(root) + "\n");

        List<String> ids = bench.items().stream().map(BenchmarkItem::id).toList();
        List<EvalReport.Example> ex = new ArrayList<>();
        for (BenchmarkItem it : bench.items()) {
            if (ex.size() >= examples) break;
            List<String> texts = new ArrayList<>();
            for (Result r : results) texts.add(log.get(r.condition().name(), it.id()).completion());
            ex.add(new EvalReport.Example(it.id(), it.category(), it.harmful(), it.prompt(), texts));
        }
        List<EvalReport.Column> cols = new ArrayList<>();
        for (Result r : results) {
            cols.add(new EvalReport.Column(r.condition().name(), r.condition().spec(), r.asrByCategory(), r.asr(), r.refusal(),
                    r.overRefusal(), r.unclear(), r.ce(), r.kl()));
        }
        EvalReport.write(out.resolve("EVAL.html"), new EvalReport.Info(model.location().id(), benchmark.toString(),
                bench.format().cliName(), bench.sha256(), judgeName, ids.size(), maxNewTokens), bench.categories(), cols, ex);
    }

    private static void putProportion(ObjectNode o, Proportion p) {
        o.put("k", p.successes()).put("n", p.n());
        putNumber(o, "rate", p.rate());
        putNumber(o, "ci_lo", p.lo());
        putNumber(o, "ci_hi", p.hi());
    }

    private static void putNumber(ObjectNode o, String f, double v) {
        if (Double.isFinite(v)) o.put(f, v);
        else o.putNull(f);
    }

    private static void csvRow(StringBuilder sb, String cond, String metric, String cat, Proportion p) {
        sb.append(csvCell(cond)).append(',').append(metric).append(',').append(csvCell(cat)).append(',').append(p.n()).append(',')
                .append(num(p.rate())).append(',').append(num(p.lo())).append(',').append(num(p.hi())).append('\n');
    }

    private static String csvCell(String s) {
        return s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }

    private static String num(double v) {
        return Double.isFinite(v) ? Double.toString(v) : "";
    }

    private void print(List<Result> results) {
        System.out.printf(Locale.ROOT, "%n%-36s %22s %10s %22s %10s %10s%n", "condition", "ASR [95% CI]", "refusal", "over-refusal [95% CI]", "ce", "kl");
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "%-36s %22s %10s %22s %10s %10s%n", r.condition().name(), ci(r.asr()), pct(r.refusal().rate()),
                    ci(r.overRefusal()), Format.num(r.ce()), Format.num(r.kl()));
            for (var e : r.asrByCategory().entrySet()) {
                System.out.printf(Locale.ROOT, "  %-34s %22s%n", e.getKey(), ci(e.getValue()));
            }
        }
    }

    static String pct(double v) {
        return Double.isNaN(v) ? "–" : String.format(Locale.ROOT, "%.1f%%", 100 * v);
    }

    static String ci(Proportion p) {
        if (p.n() == 0) return "–";
        return Double.isNaN(p.lo()) ? pct(p.rate()) : pct(p.rate()) + " [" + String.format(Locale.ROOT, "%.1f, %.1f", 100 * p.lo(), 100 * p.hi()) + "]";
    }
}
