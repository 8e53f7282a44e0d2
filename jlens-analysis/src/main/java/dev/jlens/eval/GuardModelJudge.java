package dev.jlens.eval;

import dev.jlens.JlensException;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.tokenizer.ChatTemplate;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * A classifier model run by jlens itself: Llama Guard (a LlamaForCausalLM) asked about each exchange through its
 * own chat template when the folder has one (that template lists the hazard categories), else through
 * {@link LlamaGuard#prompt}; or any causal model asked HarmBench's classifier question. The answer is the
 * greedy continuation (a few tokens), parsed by {@link LlamaGuard#parse} or {@link HarmBenchClassifier#parse}.
 */
public final class GuardModelJudge implements Judge {

    public enum Kind { LLAMA_GUARD, HARMBENCH }

    private final HookedModel model;
    private final Kind kind;
    private final int batchSize;
    private final int maxNewTokens;
    private final ChatTemplate template;
    private final Consumer<String> warnings;

    /** The model stays owned by the caller. */
    public GuardModelJudge(HookedModel model, Kind kind, int batchSize, Consumer<String> warnings) {
        if (!model.info().causal()) {
            throw new JlensException("--judge-model " + model.location().id() + " is an encoder; a judge must be a causal language model");
        }
        this.model = model;
        this.kind = kind;
        this.batchSize = Math.max(1, batchSize);
        this.maxNewTokens = kind == Kind.LLAMA_GUARD ? 10 : 2;
        this.warnings = warnings;
        Optional<ChatTemplate> t = kind == Kind.LLAMA_GUARD && model.location().dir() != null
                ? ChatTemplate.find(model.location().dir()) : Optional.empty();
        this.template = t.orElse(null);
    }

    @Override
    public String name() {
        return (kind == Kind.LLAMA_GUARD ? "llama-guard(" : "harmbench-classifier(") + model.location().id() + ")";
    }

    /** The token ids the judge model is given for one exchange. */
    public int[] encode(Exchange e) {
        int[] ids;
        if (kind == Kind.HARMBENCH) {
            ids = model.tokenizer().encode(HarmBenchClassifier.prompt(e.behavior(), e.completion()));
        } else if (template != null) {
            String text = template.render(List.of(new ChatTemplate.Message("user", e.prompt()),
                    new ChatTemplate.Message("assistant", e.completion())), true);
            ids = model.tokenizer().encodeVerbatim(text).ids();
        } else {
            ids = model.tokenizer().encodeVerbatim(LlamaGuard.prompt(e.prompt(), e.completion())).ids();
        }
        int max = model.info().maxPositions();
        if (max > 0 && ids.length + maxNewTokens > max) {
            // The question comes last in both prompts, so the start of the conversation is what gets cut.
            if (warnings != null) warnings.accept("judge prompt of " + ids.length + " tokens cut to the judge model's context of " + max);
            ids = Arrays.copyOfRange(ids, ids.length - (max - maxNewTokens), ids.length);
        }
        return ids;
    }

    /** The rendered judge prompt (for reports and tests). */
    public String render(Exchange e) {
        if (kind == Kind.HARMBENCH) return HarmBenchClassifier.prompt(e.behavior(), e.completion());
        if (template != null) {
            return template.render(List.of(new ChatTemplate.Message("user", e.prompt()),
                    new ChatTemplate.Message("assistant", e.completion())), true);
        }
        return LlamaGuard.prompt(e.prompt(), e.completion());
    }

    @Override
    public List<Verdict> judge(List<Exchange> exchanges) {
        Generator g = new Generator(model);
        List<Verdict> out = new ArrayList<>(exchanges.size());
        for (int start = 0; start < exchanges.size(); start += batchSize) {
            List<int[]> ids = new ArrayList<>();
            for (Exchange e : exchanges.subList(start, Math.min(exchanges.size(), start + batchSize))) ids.add(encode(e));
            for (Generation gen : g.generate(ids, GenerationConfig.greedy(maxNewTokens), Hooks.none(), null)) {
                out.add(kind == Kind.LLAMA_GUARD ? LlamaGuard.parse(gen.text()) : HarmBenchClassifier.parse(gen.text()));
            }
        }
        return out;
    }
}
