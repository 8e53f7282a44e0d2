package dev.jlens.cli;

import dev.jlens.cli.report.AttentionView;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.instruments.TokenChoice;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "attention", mixinStandardHelpOptions = true,
        description = {"Attention view: every head's pattern for a prompt, as an offline HTML page.",
                "Writes ATTENTION.html: pick a layer and a head, see its pattern as a query × key heat map over the prompt's "
                        + "tokens, hover a cell for its exact weight (in the spirit of CircuitsVis, with no network access)."},
        footer = {"", "Examples:",
                "  jlens attention --model ../shared/fixtures/gpt2_tiny --prompt 'The cat sat on the mat' --out out/attention",
                "  jlens attention --model EleutherAI/pythia-160m --prompt 'When Mary and John went to the store, John gave a drink to' --out out/ioi"})
final class AttentionCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (ATTENTION.html).")
    Path out;

    @Override
    public Integer call() {
        chatOptions.validate();
        try (HookedModel m = modelOptions.load()) {
            int[] ids = chatOptions.encodeOne(m, prompt);
            ActivationCache cache = m.runWithCache(List.of(ids), CacheRequest.of("blocks.*.attn.hook_pattern").pooling(Pooling.ALL).batchSize(1));
            List<FloatTensor> patterns = new ArrayList<>();
            for (int l = 0; l < m.info().nLayers(); l++) patterns.add(cache.perPrompt("blocks." + l + ".attn.hook_pattern").get(0));
            List<String> tokens = new ArrayList<>();
            for (int id : ids) tokens.add(TokenChoice.show(m.tokenizer(), id));
            InstrumentOutput.prepare(out);
            Path file = out.resolve("ATTENTION.html");
            AtomicFiles.writeString(file, AttentionView.html(m.location().id(), prompt, tokens, patterns));
            System.out.println("wrote " + file + " (" + patterns.size() + " layers × " + m.info().nHeads() + " heads, " + ids.length + " tokens)");
        }
        return 0;
    }
}
