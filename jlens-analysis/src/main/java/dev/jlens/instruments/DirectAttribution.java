package dev.jlens.instruments;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.model.Readout;
import dev.jlens.tensor.FloatTensor;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Direct attribution: the residual stream at one position split into what wrote it (the embeddings, each
 * head's result, each attention block's bias, each MLP) and every part projected on a target after the final
 * norm's scaling (TransformerLens' {@code decompose_resid} / {@code stack_head_results} with
 * {@code apply_ln_to_stack}). The parts add up to the whole projection, so the largest ones are the
 * components that write the target: "which heads write the refusal direction", "which MLP pushes ' Sorry'
 * over ' Sure'".
 *
 * <p>Each part c contributes {@code Σ_j center(c)_j / σ · t_j}, σ being the final norm's divisor of the whole
 * residual (ln_final.hook_scale) and center the LayerNorm's mean removal (none for RMSNorm). For a logit
 * difference of tokens a and b, t = w ⊙ (U_a − U_b) with the final norm's weight w, and the final norm's bias
 * adds the constant b · (U_a − U_b): the parts then sum to logit(a) − logit(b) before any final soft-cap. For a
 * direction u (from {@code jlens direction}), t = u.
 * <pre>{@code
 * try (HookedModel m = ModelLoader.load("../shared/fixtures/gpt2_tiny", null)) {
 *     int[] ids = m.encode("The cat sat on the", null);
 *     int[] ab = TokenChoice.parse(m.tokenizer(), " mat, floor", m.info().vocabSize(), "--tokens");
 *     DirectAttribution.Result r = DirectAttribution.run(m, ids, ids.length - 1,
 *             DirectAttribution.Target.logitDifference(m, ab[0], ab[1], "' mat' − ' floor'"));
 *     r.ranked().stream().limit(5).forEach(c -> System.out.println(c.name() + " " + c.value()));
 * }
 * }</pre>
 */
public final class DirectAttribution {

    private DirectAttribution() {
    }

    /** What the parts are projected on: a vector t [d_model] and a constant (the final norm bias's share). */
    public record Target(String label, double[] vector, double constant) {

        /** logit(a) − logit(b) read out of the residual. */
        public static Target logitDifference(HookedModel m, int a, int b, String label) {
            Readout r = m.model().readout();
            int vocab = r.vocab();
            for (int id : new int[]{a, b}) {
                if (id < 0 || id >= vocab) throw new JlensException("--tokens: id " + id + " is outside the vocabulary 0.." + (vocab - 1));
            }
            float[] ua = r.unembedRow(a), ub = r.unembedRow(b);
            double[] t = new double[ua.length];
            double c = 0;
            for (int j = 0; j < t.length; j++) {
                double diff = (double) ua[j] - ub[j];
                t[j] = r.weight(j) * diff;
                if (r.normBias() != null) c += r.normBias()[j] * diff;
            }
            return new Target(label, t, c);
        }

        /** The projection on a direction of the residual stream (e.g. a refusal direction). */
        public static Target direction(float[] unit, int dModel, String label) {
            if (unit.length != dModel) {
                throw new JlensException("--direction " + label + " has " + unit.length + " values but this model's residual "
                        + "stream has d_model " + dModel + ": the direction comes from another model; fit it on this one "
                        + "with `jlens direction`");
            }
            double[] t = new double[dModel];
            for (int j = 0; j < dModel; j++) t[j] = unit[j];
            return new Target(label, t, 0);
        }
    }

    /**
     * One part of the residual. {@code layer} is -1 for the embeddings and the final norm's bias; {@code head}
     * is -1 except for heads.
     */
    public record Component(String name, String kind, int layer, int head, double value) {
    }

    /**
     * @param components every part, in forward order
     * @param total      the whole residual's projection (what the parts sum to, up to float rounding)
     * @param heads      [layer][head] the heads' values; empty rows where the model has no head results
     */
    public record Result(String target, int position, List<Component> components, double total, double[][] heads,
                         double[] attention, double[] mlp) {

        public double sum() {
            double s = 0;
            for (Component c : components) s += c.value();
            return s;
        }

        /** The parts by |value|, largest first; attention blocks are listed through their heads. */
        public List<Component> ranked() {
            List<Component> l = new ArrayList<>(components);
            l.sort(Comparator.comparingDouble((Component c) -> -Math.abs(c.value())));
            return l;
        }
    }

    public static Result run(HookedModel m, int[] ids, int position, Target target) {
        if (position < 0 || position >= ids.length) {
            throw new JlensException("--position " + position + ": the prompt has " + ids.length + " tokens (0.." + (ids.length - 1)
                    + "; -1 is the last)");
        }
        Readout readout = m.model().readout();
        int layers = m.info().nLayers(), d = readout.dModel();
        String last = "blocks." + (layers - 1) + ".hook_resid_post";
        ActivationCache cache = m.runWithCache(List.of(ids), CacheRequest.of("hook_embed,hook_pos_embed,blocks.*.attn.hook_result,"
                + "blocks.*.hook_attn_out,blocks.*.hook_mlp_out," + last).pooling(Pooling.ALL).batchSize(1));
        float[] resid = row(cache.perPrompt(last).get(0), position, d);
        double sigma = readout.scale(new FloatTensor(resid, 1, d))[0];
        Projector p = new Projector(target.vector(), sigma, readout.layerNorm());
        List<Component> parts = new ArrayList<>();
        parts.add(new Component("hook_embed", "embed", -1, -1, p.of(row(cache.perPrompt("hook_embed").get(0), position, d))));
        if (cache.has("hook_pos_embed")) {
            parts.add(new Component("hook_pos_embed", "pos_embed", -1, -1, p.of(row(cache.perPrompt("hook_pos_embed").get(0), position, d))));
        }
        int nHeads = m.info().nHeads();
        double[][] heads = new double[layers][];
        double[] attention = new double[layers], mlp = new double[layers];
        for (int l = 0; l < layers; l++) {
            float[] attnOut = row(cache.perPrompt("blocks." + l + ".hook_attn_out").get(0), position, d);
            String resultName = "blocks." + l + ".attn.hook_result";
            float[] rest = attnOut.clone();
            heads[l] = new double[0];
            if (cache.has(resultName)) {
                float[] results = row(cache.perPrompt(resultName).get(0), position, nHeads * d);
                heads[l] = new double[nHeads];
                for (int h = 0; h < nHeads; h++) {
                    float[] one = java.util.Arrays.copyOfRange(results, h * d, (h + 1) * d);
                    for (int j = 0; j < d; j++) rest[j] -= one[j];
                    heads[l][h] = p.of(one);
                    parts.add(new Component("blocks." + l + ".attn.head" + h, "head", l, h, heads[l][h]));
                }
                // bias of the output projection, plus whatever a post-attention norm adds (Gemma, OLMo-2)
                parts.add(new Component("blocks." + l + ".attn.rest", "attn_rest", l, -1, p.of(rest)));
            } else {
                parts.add(new Component("blocks." + l + ".hook_attn_out", "attn", l, -1, p.of(attnOut)));
            }
            attention[l] = p.of(attnOut);
            mlp[l] = p.of(row(cache.perPrompt("blocks." + l + ".hook_mlp_out").get(0), position, d));
            parts.add(new Component("blocks." + l + ".hook_mlp_out", "mlp", l, -1, mlp[l]));
        }
        if (target.constant() != 0) parts.add(new Component("ln_final.b", "final_bias", -1, -1, target.constant()));
        double total = p.of(resid) + target.constant();
        return new Result(target.label(), position, List.copyOf(parts), total, heads, attention, mlp);
    }

    private static float[] row(FloatTensor t, int position, int width) {
        return java.util.Arrays.copyOfRange(t.data(), position * width, (position + 1) * width);
    }

    /** Σ_j center(x)_j / σ · t_j in double. */
    private record Projector(double[] t, double sigma, boolean center) {
        double of(float[] x) {
            double mean = 0;
            if (center) {
                for (float v : x) mean += v;
                mean /= x.length;
            }
            double s = 0;
            for (int j = 0; j < x.length; j++) s += (x[j] - mean) * t[j];
            return s / sigma;
        }
    }
}
