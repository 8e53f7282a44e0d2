package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.geometry.Estimate;
import dev.jlens.prompts.SplitScheme;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * One detector kind and the words-only baselines measured on one way of cutting the built-in sets, so that
 * {@code jlens probe} can set the random split's figure beside the style-held-out one: the gap between them is
 * how much a test split written in the training's own style flatters.
 *
 * @param probe     per hook, the kind's result on this scheme's splits (one kind per {@link Prober.HookResult})
 * @param baselines TF-IDF and length, as {@link TextBaselines#all}
 */
public record SplitComparison(SplitScheme scheme, ProbeData data, DetectorKind kind, List<Prober.HookResult> probe,
                              List<TextBaselines.Result> baselines) {

    public SplitComparison {
        probe = List.copyOf(probe);
        baselines = List.copyOf(baselines);
    }

    /**
     * Fits {@code kind} at every hook and the baselines on {@code data}'s splits.
     *
     * @param hooks  hook names with their layers, in forward order
     * @param pooled the pooled activation rows of a hook, one per example of {@code data}, in its order
     */
    public static SplitComparison measure(SplitScheme scheme, ProbeData data, DetectorKind kind, List<String> hooks, List<Integer> layers,
                                          Function<String, double[][]> pooled, Prober.Options o) {
        if (hooks.size() != layers.size()) throw new IllegalArgumentException(hooks.size() + " hooks, " + layers.size() + " layers");
        Prober.Options one = new Prober.Options(o.fit(), List.of(kind), o.bootstrap(), o.seed(), o.level());
        List<Prober.HookResult> out = new ArrayList<>();
        for (int i = 0; i < hooks.size(); i++) out.add(Prober.probe(hooks.get(i), layers.get(i), pooled.apply(hooks.get(i)), data, one));
        return new SplitComparison(scheme, data, kind, out, TextBaselines.all(data, o));
    }

    public Estimate probeAuroc(String hook) {
        for (Prober.HookResult r : probe) if (r.hook().equals(hook)) return r.get(kind).test().overall().get(Evaluation.AUROC);
        throw new JlensException("hook " + hook + " was not measured on the " + scheme.cliName() + " split");
    }

    /** @param name {@link TextBaselines#TFIDF} or {@link TextBaselines#LENGTH} */
    public TextBaselines.Result baseline(String name) {
        for (TextBaselines.Result b : baselines) if (b.name().equals(name)) return b;
        throw new JlensException("no baseline " + name);
    }

    public int[] splitSize(String split) {
        int[] idx = data.indices(split);
        int pos = 0;
        for (int i : idx) if (data.examples().get(i).positive()) pos++;
        return new int[] {pos, idx.length - pos};
    }
}
