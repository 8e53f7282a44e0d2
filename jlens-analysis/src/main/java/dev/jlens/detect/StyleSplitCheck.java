package dev.jlens.detect;

import dev.jlens.geometry.Estimate;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.prompts.SplitScheme;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * {@code jlens analyze}'s check against a change of writing style: a logistic probe per hook, fitted on the two
 * classes' prompts in the styles it was written in (train, with a quarter per category for validation) and
 * tested on the held-out styles ({@link PromptSets#HELD_OUT_STYLES}: rambling, casual, non-English), with the
 * TF-IDF and length baselines on the same split. Analyze's own probe column is cross-validated over prompts of
 * every style, which a test in the training's style flatters (docs/DETECTION.md: 0.978 random against 0.952
 * style-held-out on MiniLM with {@code jlens probe}).
 *
 * @param probe     per hook, in the order given: the held-out-style test AUROC with its interval
 * @param baselines TF-IDF and length on the same split, TF-IDF first
 * @param counts    [harmless, harmful] prompts in train, val and test, in that order
 */
public record StyleSplitCheck(List<String> heldOutStyles, Map<String, Estimate> probe, List<TextBaselines.Result> baselines,
                              int[][] counts) {

    /**
     * The check, or the reason it cannot be made (a class without prompts of a held-out style, or without
     * prompts of another style to train and validate on: user files without a {@code style} field).
     *
     * @param pooled a hook's pooled rows, negatives then positives, in the sets' order
     */
    public static Outcome measure(PromptSet negative, PromptSet positive, List<String> hooks, List<Integer> layers,
                                  Function<String, double[][]> pooled, Prober.Options o) {
        List<ProbeData.Example> ex = new ArrayList<>();
        int[][] counts = new int[3][2];
        List<String> splits = List.of("train", "val", "test");
        for (int c = 0; c < 2; c++) {
            PromptSet set = SplitScheme.STYLE.apply(c == 0 ? negative : positive);
            for (Prompt p : set.prompts()) {
                ex.add(new ProbeData.Example(p.id(), p.text(), c == 1, c == 1 ? ProbeData.HARMFUL : ProbeData.HARMLESS, p.split(),
                        set.name()));
                counts[splits.indexOf(p.split())][c]++;
            }
        }
        for (int s = 0; s < 3; s++) {
            for (int c = 0; c < 2; c++) {
                if (counts[s][c] < 2) {
                    return new Outcome(null, "the " + (c == 0 ? "harmless" : "harmful") + " prompts have " + counts[s][c] + " in the "
                            + splits.get(s) + " split of the style split (test = the styles " + String.join(", ", PromptSets.HELD_OUT_STYLES)
                            + "; a prompt file needs a style field for it); each split needs at least 2 per class");
                }
            }
        }
        ProbeData data = ProbeData.ofExamples(ex, ProbeData.describe(SplitScheme.STYLE));
        Prober.Options logistic = new Prober.Options(o.fit(), List.of(DetectorKind.LOGISTIC), o.bootstrap(), o.seed(), o.level());
        Map<String, Estimate> probe = new LinkedHashMap<>();
        for (int i = 0; i < hooks.size(); i++) {
            Prober.HookResult r = Prober.probe(hooks.get(i), layers.get(i), pooled.apply(hooks.get(i)), data, logistic);
            probe.put(hooks.get(i), r.get(DetectorKind.LOGISTIC).test().overall().get(Evaluation.AUROC));
        }
        return new Outcome(new StyleSplitCheck(PromptSets.HELD_OUT_STYLES, probe, TextBaselines.all(data, logistic), counts), null);
    }

    /** The check, or (check null) why it was not made. */
    public record Outcome(StyleSplitCheck check, String skipped) {
    }

    /** The hook with the highest test AUROC (the first on ties). */
    public String bestHook() {
        String best = null;
        for (var e : probe.entrySet()) if (best == null || e.getValue().value() > probe.get(best).value()) best = e.getKey();
        return best;
    }

    public TextBaselines.Result baseline(String name) {
        for (TextBaselines.Result b : baselines) if (b.name().equals(name)) return b;
        throw new IllegalArgumentException("no baseline " + name);
    }
}
