package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.eval.Judge;
import dev.jlens.eval.RefusalPhraseJudge;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSet;
import dev.jlens.steering.ArditiSelection;
import dev.jlens.steering.DirectionSet;
import dev.jlens.steering.Refusal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** jlens direction --select arditi: the training-prompt filter before the fit, the scores and the choice after it. */
final class ArditiRun {

    /** The training prompts kept, how many of how many, and a note when a class was left unfiltered. */
    record Filter(PromptSet harmless, PromptSet harmful, int harmlessKept, int harmlessTotal, int harmfulKept, int harmfulTotal,
                  int tokens, List<String> notes) {
    }

    private ArditiRun() {
    }

    /**
     * Keeps the harmful prompts the model refuses and the harmless ones it answers, judged by the refusal phrases
     * on a greedy completion of {@code tokens} tokens; a class that would keep fewer than 2 prompts is kept whole.
     */
    static Filter filter(HookedModel m, ChatOptions chat, PromptSet harmless, PromptSet harmful, int tokens, int batchSize) {
        if (tokens == 0) {
            return new Filter(harmless, harmful, harmless.size(), harmless.size(), harmful.size(), harmful.size(), 0,
                    List.of("filter off (--filter-tokens 0)"));
        }
        List<String> notes = new ArrayList<>();
        PromptSet keptA = keep(m, chat, harmless, false, tokens, batchSize, notes);
        PromptSet keptB = keep(m, chat, harmful, true, tokens, batchSize, notes);
        System.err.printf("filter: kept %d of %d harmless prompts the model answers and %d of %d harmful ones it refuses%n",
                keptA.size(), harmless.size(), keptB.size(), harmful.size());
        notes.forEach(n -> System.err.println("note: " + n));
        return new Filter(keptA, keptB, keptA.size(), harmless.size(), keptB.size(), harmful.size(), tokens, notes);
    }

    private static PromptSet keep(HookedModel m, ChatOptions chat, PromptSet set, boolean wantRefusal, int tokens, int batchSize,
                                  List<String> notes) {
        List<Prompt> prompts = set.prompts();
        List<Judge.Exchange> ex = new ArrayList<>();
        Generator g = new Generator(m);
        for (int start = 0; start < prompts.size(); start += batchSize) {
            List<Prompt> batch = prompts.subList(start, Math.min(prompts.size(), start + batchSize));
            List<int[]> ids = chat.encode(m, batch.stream().map(Prompt::text).toList(), null).ids();
            List<Generation> gens = g.generate(ids, GenerationConfig.greedy(tokens), Hooks.none(), null);
            for (int i = 0; i < batch.size(); i++) ex.add(new Judge.Exchange(batch.get(i).text(), gens.get(i).text(), batch.get(i).text()));
        }
        List<Judge.Verdict> v = new RefusalPhraseJudge().judge(ex);
        List<Prompt> kept = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            boolean refused = !v.get(i).success();
            if (refused == wantRefusal) kept.add(prompts.get(i));
        }
        if (kept.size() < 2) {
            notes.add(set.name() + ": only " + kept.size() + " of " + set.size() + " prompts " + (wantRefusal ? "refused" : "answered")
                    + "; the filter is skipped for this class (a direction needs 2 prompts per class)");
            return set;
        }
        return PromptSet.of(set.name() + (wantRefusal ? "[refused]" : "[answered]"), kept);
    }

    static ArditiSelection.Choice select(HookedModel m, ChatOptions chat, DirectionSet set, Filter filter, PromptSet harmlessVal,
                                         PromptSet harmfulVal, int prompts, double klMax, int batchSize, Path out) {
        List<int[]> harmful = chat.encode(m, take(harmfulVal.texts(), prompts), null).ids();
        List<int[]> harmless = chat.encode(m, take(harmlessVal.texts(), prompts), null).ids();
        int[] refusal = Refusal.tokenIds(m.tokenizer(), Refusal.DEFAULT_TOKENS);
        List<ArditiSelection.Candidate> cs;
        try (Progress bar = new Progress("arditi", "candidates", set.directions().size())) {
            cs = ArditiSelection.score(m, set, harmful, harmless, refusal, batchSize, bar);
        }
        ArditiSelection.Choice choice = ArditiSelection.choose(cs, m.info().nLayers(), klMax);
        write(out, choice, filter, klMax, m.info().nLayers(), harmful.size(), harmless.size());
        System.out.printf(Locale.ROOT, "%n%-32s %-8s %10s %10s %10s  %s%n", "candidate", "position", "bypass", "induce", "kl", "passes");
        for (ArditiSelection.Scored s : choice.candidates()) {
            var c = s.candidate();
            System.out.printf(Locale.ROOT, "%-32s %-8s %10s %10s %10s  %s%n", c.hook(), c.position(), Format.num(c.bypass()),
                    Format.num(c.induce()), Format.num(c.kl()), s.passes() ? "yes" : "no: " + String.join("; ", s.reasons()));
        }
        System.out.println();
        System.out.println((choice.chosen() == null ? "no selection: " : "selected: ") + choice.why());
        return choice;
    }

    private static void write(Path out, ArditiSelection.Choice choice, Filter f, double klMax, int nLayers, int nHarmful, int nHarmless) {
        StringBuilder csv = new StringBuilder("hook,layer,position,bypass_score,induce_score,kl_score,passes,chosen,reasons\n");
        for (ArditiSelection.Scored s : choice.candidates()) {
            var c = s.candidate();
            csv.append(c.hook()).append(',').append(c.layer()).append(',').append(c.position()).append(',').append(num(c.bypass())).append(',')
                    .append(num(c.induce())).append(',').append(num(c.kl())).append(',').append(s.passes()).append(',')
                    .append(c.equals(choice.chosen())).append(",\"").append(String.join("; ", s.reasons()).replace("\"", "\"\"")).append("\"\n");
        }
        AtomicFiles.writeString(out.resolve("arditi.csv"), csv.toString());
        ObjectMapper om = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = om.createObjectNode();
        ObjectNode rule = root.putObject("rule");
        rule.put("bypass", "mean next-token refusal log-odds on harmful val prompts, direction ablated at every layer");
        rule.put("induce", "mean refusal log-odds on harmless val prompts, raw diff-in-means vector added at its hook; must be > 0");
        rule.put("kl", "mean KL of the next-token distribution on harmless val prompts, direction ablated; must be < kl_max");
        rule.put("kl_max", klMax);
        rule.put("first_excluded_layer", ArditiSelection.firstExcludedLayer(nLayers));
        rule.put("choice", "lowest bypass among candidates that pass");
        rule.put("val_harmful_prompts", nHarmful).put("val_harmless_prompts", nHarmless);
        ObjectNode fo = root.putObject("filter");
        fo.put("judge", RefusalPhraseJudge.NAME).put("tokens", f.tokens());
        fo.put("harmful_kept", f.harmfulKept()).put("harmful_total", f.harmfulTotal());
        fo.put("harmless_kept", f.harmlessKept()).put("harmless_total", f.harmlessTotal());
        ArrayNode notes = fo.putArray("notes");
        f.notes().forEach(notes::add);
        ArrayNode list = root.putArray("candidates");
        for (ArditiSelection.Scored s : choice.candidates()) {
            var c = s.candidate();
            ObjectNode o = list.addObject();
            o.put("hook", c.hook()).put("layer", c.layer()).put("position", c.position());
            putNumber(o, "bypass_score", c.bypass());
            putNumber(o, "induce_score", c.induce());
            putNumber(o, "kl_score", c.kl());
            o.put("passes", s.passes());
            ArrayNode r = o.putArray("reasons");
            s.reasons().forEach(r::add);
        }
        if (choice.chosen() != null) {
            root.putObject("choice").put("hook", choice.chosen().hook()).put("layer", choice.chosen().layer())
                    .put("position", choice.chosen().position()).put("direction", choice.chosen().hook() + ":" + choice.chosen().position());
        } else {
            root.putNull("choice");
        }
        root.put("why", choice.why());
        try {
            AtomicFiles.writeString(out.resolve("arditi.json"), om.writeValueAsString(root) + "\n");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void putNumber(ObjectNode o, String f, double v) {
        if (Double.isFinite(v)) o.put(f, v);
        else o.putNull(f);
    }

    private static String num(double v) {
        return Double.isFinite(v) ? Double.toString(v) : "";
    }

    private static List<String> take(List<String> l, int n) {
        return l.subList(0, Math.min(n, l.size()));
    }
}
