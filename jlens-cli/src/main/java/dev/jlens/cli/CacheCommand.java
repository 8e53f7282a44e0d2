package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.MemoryEstimate;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "cache", mixinStandardHelpOptions = true,
        description = {"Save the activations of chosen hooks for a prompt file.",
                "Runs the prompts through the model and writes the chosen hooks' activations, pooled per prompt, as "
                        + "activations.safetensors (+ activations.json describing the run), which numpy and torch open "
                        + "directly. An interrupted run resumes when started again with the same arguments."},
        footer = {"", "Examples:",
                "  jlens cache --prompts prompts.txt --hooks 'blocks.*.hook_resid_post' --pool mean --out out/run1",
                "  jlens cache --model ../shared/fixtures/gpt_neox_tiny --prompts p.jsonl --hooks '*' --pool all --logits --out out/all",
                "  jlens cache --model ../shared/fixtures/gpt2_tiny --prompts p.txt --hooks 'blocks.*.attn.*' --pool all --out out/heads",
                "  jlens cache --model Qwen/Qwen2.5-0.5B-Instruct --chat --pool post-instruction --prompts p.txt --out out/chat",
                "In Python:  from safetensors.numpy import load_file; acts = load_file('out/run1/activations.safetensors')"})
final class CacheCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = {"-p", "--prompts"}, required = true, paramLabel = "FILE",
            description = "Prompts: .txt (one per line), .jsonl (field --field, default \"text\") or .csv (column --field).")
    Path prompts;

    @Option(names = "--field", defaultValue = "text", paramLabel = "NAME",
            description = "JSONL field or CSV column holding the prompt text (default: ${DEFAULT-VALUE}).")
    String field;

    @Option(names = "--hooks", defaultValue = "blocks.*.hook_resid_post", paramLabel = "PATTERN",
            description = {"Comma-separated hook names or globs; * matches anything including dots, so '*' caches "
                    + "every hook (default: ${DEFAULT-VALUE}). `jlens inspect` lists the names.",
                    "Per-head hooks (blocks.L.attn.hook_q/k/v/z [len, heads, d_head], hook_result [len, heads, d_model],",
                    "mlp.hook_pre/post [len, d_mlp]) pool over tokens like the others; attention scores and patterns",
                    "[heads, len, len] are saved with --pool all only."})
    String hooks;

    @Option(names = "--pool", defaultValue = "mean", paramLabel = "P",
            description = {"all (every real token), mean, last, mean-skip-first, or with --chat post-instruction",
                    "(mean over the tokens the template puts after the user's message) (default: ${DEFAULT-VALUE})."})
    String pool;

    @Option(names = "--logits", description = "Also save the logits p{i}.logits [len_i, vocab] (needs --pool all).")
    boolean logits;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N",
            description = "Prompts per forward pass (default: ${DEFAULT-VALUE}); results do not depend on it.")
    int batchSize;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR",
            description = "Output folder. An interrupted run resumes when started again with the same arguments.")
    Path out;

    @Option(names = "--force", description = "Redo a run whose --out folder already holds finished (or other) results.")
    boolean force;

    /**
     * The selected hooks' values per token in units of d_model, for the memory check: a head's result is
     * heads × d_model wide, an MLP hook d_mlp, an attention map heads × the longest prompt.
     */
    static int residualWidths(List<HookPoint> selected, List<String> names, dev.jlens.model.ModelInfo info, List<int[]> ids) {
        int maxLen = 0;
        for (int[] p : ids) maxLen = Math.max(maxLen, p.length);
        long d = info.dModel(), total = 0;
        for (HookPoint p : selected) {
            if (!names.contains(p.name())) continue;
            long width = switch (p.kind()) {
                case ATTN_RESULT -> (long) info.nHeads() * d;
                case ATTN_K, ATTN_V, ATTN_ROT_K -> d * info.nKvHeads() / info.nHeads();
                case MLP_PRE, MLP_PRE_LINEAR, MLP_POST -> info.dMlp();
                case ATTN_SCORES, ATTN_PATTERN -> (long) info.nHeads() * maxLen;
                default -> d;
            };
            total += (width + d - 1) / d;
        }
        return (int) Math.min(Integer.MAX_VALUE, total);
    }

    @Override
    public Integer call() {
        Pooling pooling = Pooling.parse(pool);
        if (logits && pooling != Pooling.ALL) {
            throw new JlensException("--logits needs --pool all (logits are saved per token)");
        }
        if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
        chatOptions.validate(pooling);
        PromptSet set = PromptSets.load(prompts, field, "unlabeled");
        try (HookedModel m = modelOptions.load()) {
            HookPattern pattern = HookPattern.parse(hooks);
            List<String> names = new ArrayList<>();
            for (HookPoint p : pattern.select(m.hookPoints())) {
                // Attention scores and patterns are kept whole per prompt: saved with --pool all only.
                if (!p.kind().isAttentionMap() || pooling == Pooling.ALL) names.add(p.name());
            }
            if (names.isEmpty()) {
                throw new JlensException("--hooks \"" + hooks + "\" selects only attention scores or patterns, which are "
                        + "saved per prompt with --pool all only; add --pool all, or select hooks such as "
                        + "blocks.*.hook_resid_post or blocks.*.attn.hook_z (`jlens inspect` lists them)");
            }
            ChatOptions.Encoded encoded = chatOptions.encode(m, set.texts(), w -> System.err.println("warning: " + w));
            List<int[]> ids = encoded.ids();
            // A batch never holds more than every prompt; clamping also keeps batch arithmetic from overflowing.
            int batch = Math.min(batchSize, ids.size());
            MemoryEstimate.checkBatch("--batch-size", m.info(), ids, batchSize, residualWidths(pattern.select(m.hookPoints()), names,
                    m.info(), ids), logits, MemoryEstimate.Limits.ofThisJvm());
            ActivationsOutput.guardFinished(out, "activations.json", force);
            String fp = ActivationsOutput.fingerprint("cache", m.location().id(), m.location().revision(), set.sha256(),
                    names, pooling, batch, logits, chatOptions.fingerprint());
            Path file;
            try (Progress bar = new Progress("cache", "prompts", ids.size())) {
                file = ResumableCache.run(out, fp, m, ids, pattern,
                        ChatOptions.caches(pooling, java.util.function.UnaryOperator.identity(), encoded), names,
                        batch, logits, bar);
            }
            ActivationsOutput.writeMetadata(out, m, ids.size(), pooling, logits, names, prompts.toString(), set.sha256(),
                    chatOptions.metadata(m, encoded));
            ResumableCache.discard(out);
            System.err.printf("wrote %d hooks x %d prompts to %s%n", names.size(), ids.size(), file);
        }
        return 0;
    }
}
