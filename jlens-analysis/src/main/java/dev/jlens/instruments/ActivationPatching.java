package dev.jlens.instruments;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * Activation patching: run a corrupted prompt, copy one activation from the clean prompt's run into it, and
 * see how much of the clean behaviour comes back. The metric (a logit difference at the last position, or the
 * projection on a direction) is normalised as (patched − corrupted) / (clean − corrupted): 1 means the patched
 * activation carries everything that separates the two prompts, 0 nothing. Patches run many to a batch (one
 * sequence per position or head), and packed sequences never see each other, so each value is what a run of
 * its own would give.
 * <pre>{@code
 * try (HookedModel m = ModelLoader.load("../shared/fixtures/gpt2_tiny", null)) {
 *     // the indirect-object task: same length, one name swapped
 *     int[] clean = m.encode("When John and Mary went to the store, John gave a drink to", null);
 *     int[] corrupt = m.encode("When John and Mary went to the store, Mary gave a drink to", null);
 *     int[] ab = TokenChoice.parse(m.tokenizer(), " Mary, John", m.info().vocabSize(), "--tokens");
 *     ActivationPatching p = new ActivationPatching(m, clean, corrupt, null, ActivationPatching.Metric.logitDifference(ab[0], ab[1]));
 *     double[][] resid = p.perPosition(ActivationPatching.Site.RESID_PRE);   // [layer][position]
 *     double[][] heads = p.perHead();                                        // [layer][head], hook_z
 * }
 * }</pre>
 */
public final class ActivationPatching {

    /** Where a patch is applied. */
    public enum Site {
        RESID_PRE("hook_resid_pre"), ATTN_OUT("hook_attn_out"), MLP_OUT("hook_mlp_out");

        private final String suffix;

        Site(String suffix) {
            this.suffix = suffix;
        }

        public String suffix() {
            return suffix;
        }

        String hook(int layer) {
            return "blocks." + layer + "." + suffix;
        }
    }

    /** A number read from a forward pass of one sequence: its logits [len, vocab] and, if asked, one hook's activation. */
    public interface Metric {
        /** The hook whose activation the metric reads (null: logits only). */
        String hook();

        double of(FloatTensor logits, FloatTensor activation);

        String describe();

        /** logit(a) − logit(b) at the last position. */
        static Metric logitDifference(int a, int b) {
            return logitDifference(a, b, "logit(#" + a + ") − logit(#" + b + ")");
        }

        /** As above, described by {@code label} (e.g. the tokens' text). */
        static Metric logitDifference(int a, int b, String label) {
            return new Metric() {
                public String hook() {
                    return null;
                }

                public double of(FloatTensor logits, FloatTensor activation) {
                    int last = logits.rows() - 1;
                    return (double) logits.get(last, a) - logits.get(last, b);
                }

                public String describe() {
                    return label + " at the last position";
                }
            };
        }

        /** The projection of a hook's activation at the last position on a unit direction. */
        static Metric projection(String hook, float[] unit, int dModel) {
            if (unit.length != dModel) {
                throw new JlensException("--direction at " + hook + " has " + unit.length + " values but this model's residual "
                        + "stream has d_model " + dModel + ": the direction comes from another model");
            }
            return new Metric() {
                public String hook() {
                    return hook;
                }

                public double of(FloatTensor logits, FloatTensor activation) {
                    int last = activation.rows() - 1, d = activation.cols();
                    double s = 0;
                    for (int j = 0; j < d; j++) s += (double) activation.get(last, j) * unit[j];
                    return s;
                }

                public String describe() {
                    return "projection of " + hook + " on the direction at the last position";
                }
            };
        }
    }

    private final HookedModel model;
    private final int[] corrupted;
    private final int[] cleanPosition;
    private final Metric metric;
    private final ActivationCache clean;
    private final double cleanMetric, corruptedMetric;
    private final int batchSize;

    /**
     * @param positionMap for each corrupted position, the clean position whose activations it receives (-1: none);
     *                    null when both prompts have the same length (position i from position i)
     */
    public ActivationPatching(HookedModel model, int[] clean, int[] corrupted, int[] positionMap, Metric metric) {
        this(model, clean, corrupted, positionMap, metric, 16);
    }

    public ActivationPatching(HookedModel model, int[] clean, int[] corrupted, int[] positionMap, Metric metric, int batchSize) {
        this.model = model;
        this.corrupted = corrupted.clone();
        this.metric = metric;
        this.batchSize = Math.max(1, batchSize);
        if (positionMap == null) {
            if (clean.length != corrupted.length) {
                throw new JlensException("the clean prompt has " + clean.length + " tokens and the corrupted one " + corrupted.length
                        + ": patching copies activations position by position, so give prompts of the same token length, "
                        + "or a position map (--position-map CORRUPTED:CLEAN,... e.g. 0:0,1:1,3:2)");
            }
            positionMap = java.util.stream.IntStream.range(0, corrupted.length).toArray();
        }
        if (positionMap.length != corrupted.length) {
            throw new JlensException("position map has " + positionMap.length + " entries for a corrupted prompt of " + corrupted.length + " tokens");
        }
        for (int i = 0; i < positionMap.length; i++) {
            if (positionMap[i] < -1 || positionMap[i] >= clean.length) {
                throw new JlensException("position map: corrupted position " + i + " maps to clean position " + positionMap[i]
                        + ", outside the clean prompt's 0.." + (clean.length - 1));
            }
        }
        this.cleanPosition = positionMap.clone();
        String hooks = "blocks.*.hook_resid_pre,blocks.*.hook_attn_out,blocks.*.hook_mlp_out,blocks.*.attn.hook_z"
                + (metric.hook() == null ? "" : "," + metric.hook());
        this.clean = model.runWithCache(List.of(clean), CacheRequest.of(hooks).pooling(Pooling.ALL).batchSize(1).logits(true));
        this.cleanMetric = metric.of(this.clean.perPrompt("logits").get(0), metric.hook() == null ? null : this.clean.perPrompt(metric.hook()).get(0));
        this.corruptedMetric = run(List.of(new Patch(null, null)))[0];
        if (cleanMetric == corruptedMetric) {
            throw new JlensException("the metric (" + metric.describe() + ") is " + cleanMetric + " on both prompts: there is "
                    + "no difference to restore; choose tokens or prompts that the model tells apart");
        }
    }

    public double cleanMetric() {
        return cleanMetric;
    }

    public double corruptedMetric() {
        return corruptedMetric;
    }

    public int length() {
        return corrupted.length;
    }

    /** (patched − corrupted) / (clean − corrupted). */
    public double normalise(double patched) {
        return (patched - corruptedMetric) / (cleanMetric - corruptedMetric) + 0.0;   // + 0.0: no -0 in the tables
    }

    /** [layer][corrupted position]: the site patched at one position at a time. */
    public double[][] perPosition(Site site) {
        int layers = model.info().nLayers();
        double[][] out = new double[layers][];
        for (int l = 0; l < layers; l++) {
            List<Patch> patches = new ArrayList<>();
            for (int p = 0; p < corrupted.length; p++) patches.add(new Patch(site.hook(l), new int[]{p}));
            out[l] = normalised(run(patches));
        }
        return out;
    }

    /** The site patched at every mapped position at once, at one layer. */
    public double allPositions(Site site, int layer) {
        return normalise(run(List.of(new Patch(site.hook(layer), java.util.stream.IntStream.range(0, corrupted.length).toArray())))[0]);
    }

    /** Patching nothing: 0 by construction, computed through the same path as every patch (a sanity check). */
    public double nothing() {
        return normalise(run(List.of(new Patch(null, null)))[0]);
    }

    /** [layer][head]: one head's hook_z patched at every mapped position. */
    public double[][] perHead() {
        int layers = model.info().nLayers(), heads = model.info().nHeads();
        double[][] out = new double[layers][];
        for (int l = 0; l < layers; l++) {
            List<Patch> patches = new ArrayList<>();
            for (int h = 0; h < heads; h++) patches.add(new Patch("blocks." + l + ".attn.hook_z", null, h));
            out[l] = normalised(run(patches));
        }
        return out;
    }

    private double[] normalised(double[] metrics) {
        double[] o = new double[metrics.length];
        for (int i = 0; i < o.length; i++) o[i] = normalise(metrics[i]);
        return o;
    }

    /** One patched run: the hook to patch (null: none), the corrupted positions (null: all mapped), the head (-1: all). */
    private record Patch(String hook, int[] positions, int head) {
        Patch(String hook, int[] positions) {
            this(hook, positions, -1);
        }
    }

    /** The metric of each patched run, batchSize runs per forward pass. */
    private double[] run(List<Patch> patches) {
        double[] out = new double[patches.size()];
        for (int from = 0; from < patches.size(); from += batchSize) {
            List<Patch> group = patches.subList(from, Math.min(patches.size(), from + batchSize));
            List<int[]> seqs = new ArrayList<>();
            for (int i = 0; i < group.size(); i++) seqs.add(corrupted);
            TokenBatch batch = TokenBatch.of(seqs);
            Hooks hooks = Hooks.none();
            for (String hook : group.stream().map(Patch::hook).filter(java.util.Objects::nonNull).distinct().toList()) {
                hooks = hooks.with(hook::equals, (point, value, b) -> {
                    patch(value, b, group, point.name());
                    return value;
                });
            }
            FloatTensor[] seen = new FloatTensor[1];
            if (metric.hook() != null) {
                hooks = hooks.with(metric.hook()::equals, (point, value, b) -> {
                    seen[0] = value.copy();
                    return value;
                });
            }
            FloatTensor logits = model.forward(batch, hooks);
            int vocab = logits.cols();
            for (int s = 0; s < group.size(); s++) {
                int off = batch.offsets()[s], len = batch.lengths()[s];
                FloatTensor lg = new FloatTensor(java.util.Arrays.copyOfRange(logits.data(), off * vocab, (off + len) * vocab), len, vocab);
                FloatTensor act = null;
                if (seen[0] != null) {
                    int w = seen[0].data().length / batch.totalTokens();
                    act = new FloatTensor(java.util.Arrays.copyOfRange(seen[0].data(), off * w, (off + len) * w), len, w);
                }
                out[from + s] = metric.of(lg, act);
            }
        }
        return out;
    }

    /** Copies the clean activation into each sequence of the batch that patches this hook. */
    private void patch(FloatTensor value, TokenBatch b, List<Patch> group, String hook) {
        FloatTensor source = clean.perPrompt(hook).get(0);
        int w = value.data().length / b.totalTokens();
        for (int s = 0; s < group.size(); s++) {
            Patch p = group.get(s);
            if (!hook.equals(p.hook())) continue;
            int[] positions = p.positions() != null ? p.positions() : java.util.stream.IntStream.range(0, corrupted.length).toArray();
            int from = 0, width = w;
            if (p.head() >= 0) {
                width = w / model.info().nHeads();
                from = p.head() * width;
            }
            for (int pos : positions) {
                int src = cleanPosition[pos];
                if (src < 0) continue;
                System.arraycopy(source.data(), src * w + from, value.data(), (b.offsets()[s] + pos) * w + from, width);
            }
        }
    }
}
