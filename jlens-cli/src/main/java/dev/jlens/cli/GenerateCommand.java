package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.GenerationGuard;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.generate.TokenListener;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionChoice;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.Intervention;
import dev.jlens.steering.SteeringSweep;
import dev.jlens.steering.TokenScope;
import dev.jlens.steering.WeightedLayers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text from a causal language model (streams to stdout).",
                "Continue one or more prompts with a causal language model. The generated text goes to stdout",
                "as it is produced (several prompts are generated together and printed in order when done);",
                "everything else goes to stderr. Temperature 0 (the default) is greedy decoding."},
        footer = {"", "Examples:",
                "  jlens generate --model ../shared/fixtures/stories260k \"Once upon a time\"",
                "  jlens generate --model EleutherAI/pythia-160m --temperature 0.8 --top-p 0.95 --seed 1 \"The moon\"",
                "  jlens generate --model M --stop \".\" --max-new-tokens 100 \"First prompt\" \"Second prompt\"",
                "  jlens generate --model M --chat \"How do I bake bread?\"",
                "  jlens generate --model M --chat --direction out/dir --layers 8:1.0,9:0.5 --alpha 4 \"Tell me about cats\"",
                "  jlens generate --model M --chat --direction out/dir --mode ablate --layers 10 \"How do I pick a lock?\"",
                "Guarded by a detector fitted on the same model (jlens probe --model M --save-detector out/guard):",
                "  jlens generate --model M --guard out/guard --guard-mode stop \"How do I pick a lock?\""})
final class GenerateCommand implements Callable<Integer> {

    @Mixin
    ChatOptions chatOptions;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N",
            description = "Most tokens to generate per prompt (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", paramLabel = "T",
            description = "0 = greedy (default); above 0 the logits are divided by T and sampled.")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", paramLabel = "K",
            description = "Sample only from the K most likely tokens (default: 0 = all).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P",
            description = "Sample only from the smallest set of tokens whose probability reaches P (default: 1 = all).")
    double topP;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S",
            description = "Seed of the sampling draws (default: ${DEFAULT-VALUE}); the same seed gives the same text.")
    long seed;

    @Option(names = "--stop", paramLabel = "TEXT",
            description = "End a continuation when TEXT appears (cut before it). Repeatable.")
    List<String> stops = new ArrayList<>();

    @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
    boolean ignoreEos;

    @Option(names = "--no-kv-cache", description = "Re-run the whole sequence for every token (slow; for checking the cache).")
    boolean noKvCache;

    @Option(names = "--guard", paramLabel = "DIR",
            description = {"A saved detector (jlens probe --save-detector) for this model: every token's residual at its",
                    "layer is scored inside the generation's own forward pass, and the running score (the detector's",
                    "score of the text so far) is checked against its threshold after each token."})
    Path guard;

    @Option(names = "--guard-mode", defaultValue = "stop", paramLabel = "MODE",
            description = "stop: end the continuation at the first token whose running score crosses the threshold; "
                    + "flag: only report it (default: ${DEFAULT-VALUE}).")
    String guardMode;

    @Option(names = "--direction", paramLabel = "DIR",
            description = "Steer while generating with the directions of this jlens direction (or control-vector import) folder.")
    Path direction;

    @Option(names = "--mode", defaultValue = "add", paramLabel = "M",
            description = "With --direction: add (α · weight · r̂ at each layer's hook, every token) or ablate (each layer's r̂ removed at every layer).")
    String mode;

    @Option(names = "--layers", paramLabel = "LIST",
            description = "With --direction: layers and weights, e.g. 8 or 8:1.0,9:0.5 (default: the layer with the largest separation).")
    String layers;

    @Option(names = "--alpha", defaultValue = "1x", paramLabel = "A",
            description = "With --direction and add: α in activation units, or a multiple of each direction's norm with x (default: ${DEFAULT-VALUE}).")
    String alpha;

    @Option(names = "--hook", paramLabel = "KIND", description = "With --direction: hook kind (default: the file's first).")
    String hook;

    @Option(names = "--position", paramLabel = "POS", description = "With --direction: token position (default: last).")
    String position;

    @Parameters(arity = "1..*", paramLabel = "PROMPT", description = "The text(s) to continue.")
    List<String> prompts;

    @Override
    public Integer call() {
        GenerationConfig config = new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, stops, !ignoreEos, !noKvCache);
        PrintStream out = System.out;
        GenerationGuard.Mode guardModeValue = GenerationGuard.Mode.parse(guardMode);
        try (HookedModel m = modelOptions.load(); Detector detector = guard == null ? null : Detector.load(guard, m)) {
            Generator generator = new Generator(m);
            List<int[]> ids = encode(m);
            long t0 = System.nanoTime();
            boolean stream = ids.size() == 1;
            Hooks hooks = steering(m, ids);
            GenerationGuard g0 = null;
            if (detector != null) {
                int[] lengths = ids.stream().mapToInt(a -> a.length).toArray();
                g0 = new GenerationGuard(detector, guardModeValue, lengths, null);
                System.err.printf(Locale.ROOT, "guard: %s detector at %s (layer %d), %s of the " + (detector.scope() == dev.jlens.detect.PoolScope.RESPONSE
                                ? "generated tokens' scores (a response detector)" : "token scores") + ", threshold %.4f, mode %s%n",
                        detector.params().kind().cliName(), detector.hook(), detector.layer(), detector.aggregation().cliName(),
                        detector.params().thresholdProbability(), guardModeValue.name().toLowerCase(Locale.ROOT));
            }
            GenerationGuard guarded = g0;
            TokenListener listener = new TokenListener() {
                @Override
                public void onToken(int s, int token, String text) {
                    if (stream && !text.isEmpty()) {
                        out.print(text);
                        out.flush();
                    }
                }

                @Override
                public void onEnd(int s, Generation.StopReason reason, String text) {
                    onToken(s, -1, text);
                }
            };
            List<Generation> done = guarded == null ? generator.generate(ids, config, hooks, listener)
                    : generator.generate(ids, config, guarded.hooks(hooks), listener, guarded.stopCheck());
            double secs = (System.nanoTime() - t0) / 1e9;
            int tokens = 0;
            for (int s = 0; s < done.size(); s++) {
                Generation g = done.get(s);
                tokens += g.newIds().length;
                if (!stream) {
                    System.err.printf("--- prompt %d: %s%n", s + 1, prompts.get(s));
                    out.print(g.text());
                }
                out.println();
                out.flush();
                if (guarded != null) System.err.println(guardReport(s, g, guarded, m, ids.get(s).length));
            }
            System.err.printf(Locale.ROOT, "%d new tokens in %.2f s (%.1f tokens/s); stopped: %s%n", tokens, secs,
                    tokens / Math.max(secs, 1e-9), stopReasons(done));
        }
        return 0;
    }

    /** One line saying whether, where and why the guard tripped. */
    static String guardReport(int s, Generation g, GenerationGuard guard, HookedModel m, int promptLength) {
        GenerationGuard.Verdict v = guard.verdict(s);
        String who = "guard (prompt " + (s + 1) + "): ";
        if (!v.tripped()) {
            return String.format(Locale.ROOT, "%snot tripped: running score %.4f < threshold %.4f after %d scored tokens", who,
                    v.score(), v.threshold(), v.scored());
        }
        String action = guard.mode() == GenerationGuard.Mode.STOP ? "stopped" : "flagged (generation went on)";
        if (v.generatedIndex() < 0) {
            return String.format(Locale.ROOT, "%s%s before the first new token: the prompt itself scores %.4f >= threshold %.4f", who,
                    action, v.score(), v.threshold());
        }
        String token = m.tokenizer().decode(new int[] {g.newIds()[v.generatedIndex()]});
        return String.format(Locale.ROOT, "%s%s at new token %d (%s): running score %.4f >= threshold %.4f", who, action,
                v.generatedIndex() + 1, new com.fasterxml.jackson.databind.node.TextNode(token).toString(), v.score(), v.threshold());
    }

    /** The --direction interventions as hooks, or none. */
    private Hooks steering(HookedModel m, List<int[]> ids) {
        if (direction == null) {
            if (layers != null) throw new JlensException("--layers needs --direction");
            return Hooks.none();
        }
        Intervention.Mode md = Intervention.Mode.parse(mode);
        if (md == Intervention.Mode.CLAMP) throw new JlensException("--mode clamp: generate steers with add or ablate");
        DirectionSet set = DirectionSet.load(direction);
        String w = set.checkCompatible(m.info(), m.location().id(), direction);
        if (w != null) System.err.println("warning: " + w);
        DirectionChoice choice = DirectionChoice.resolve(set, hook, position, direction);
        WeightedLayers wl = WeightedLayers.parse(layers != null ? layers : Integer.toString(choice.defaultLayer(set)), m.info().nLayers());
        List<SteeringSweep.Alpha> a = SteeringSweep.parseAlphas(alpha, Intervention.Mode.ADD);
        if (a.size() != 1) throw new JlensException("--alpha \"" + alpha + "\": generate takes one coefficient");
        int[] lengths = ids.stream().mapToInt(x -> x.length).toArray();
        Hooks hooks = Hooks.none();
        List<String> parts = new ArrayList<>();
        for (WeightedLayers.Entry e : wl.entries()) {
            Direction d = choice.at(set, e.layer(), direction);
            Intervention iv = md == Intervention.Mode.ADD
                    ? Intervention.add(d.unit(), e.weight() * a.getFirst().value(d), List.of(d.hook()), TokenScope.BOTH)
                    : Intervention.ablate(d.unit(), Intervention.everyLayer(m.model()));
            iv.checkFor(m.model());
            hooks = iv.addTo(hooks, lengths);
            parts.add(md == Intervention.Mode.ADD ? String.format(Locale.ROOT, "%s %+.4g", d.hook(), iv.value()) : "r̂ of " + d.hook());
        }
        System.err.println("steering: " + md.cliName() + " " + String.join(", ", parts));
        return hooks;
    }

    /** Token ids of every prompt; with --chat each is the user message of the model's chat template. */
    private List<int[]> encode(HookedModel m) {
        chatOptions.validate(dev.jlens.hooks.Pooling.LAST);
        return chatOptions.encode(m, prompts, w -> System.err.println("warning: " + w)).ids();
    }

    private static String stopReasons(List<Generation> done) {
        List<String> r = new ArrayList<>();
        for (Generation g : done) r.add(g.stop().name().toLowerCase(Locale.ROOT).replace('_', ' '));
        return String.join(", ", r);
    }
}
