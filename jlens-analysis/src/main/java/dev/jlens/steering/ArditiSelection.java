package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The direction selection of Arditi et al. (2024), "Refusal in language models is mediated by a single
 * direction", as their pipeline implements it. Every candidate (one per post-instruction position and layer) gets
 * three scores, each the mean over validation prompts:
 * <ul>
 *   <li>bypass: the next-token refusal log-odds on harmful prompts with the direction ablated at every layer
 *       (resid_pre, attn_out, mlp_out) — lower means refusal is removed better;</li>
 *   <li>induce: the refusal log-odds on harmless prompts with the raw difference-in-means vector (r̂ times its
 *       norm) added at the candidate's own hook, on every token — it must be above 0, i.e. adding the direction
 *       must make the model refuse;</li>
 *   <li>KL: of the next-token distribution on harmless prompts between the model and the model with the direction
 *       ablated everywhere — it must stay below a threshold (0.1).</li>
 * </ul>
 * Candidates in layers at or beyond {@code (int) (0.8 · n_layers)} are left out (their code's
 * {@code prune_layer_percentage = 0.2}), and the choice is the lowest bypass score among those that pass.
 */
public final class ArditiSelection {

    public static final double KL_MAX = 0.1;
    public static final double PRUNE_LAYER_FRACTION = 0.2;

    /** One candidate and its scores (NaN where not measured). */
    public record Candidate(String hook, int layer, String position, double bypass, double induce, double kl) {
    }

    /** A candidate, whether it passes the filters, and the reasons it does not. */
    public record Scored(Candidate candidate, boolean passes, List<String> reasons) {
        public Scored {
            reasons = List.copyOf(reasons);
        }
    }

    /** The candidate chosen (null when none passes), every candidate with its verdict, and a sentence saying why. */
    public record Choice(Candidate chosen, List<Scored> candidates, String why) {
    }

    private ArditiSelection() {
    }

    /** The first layer the rule excludes: {@code (int) (n · (1 − 0.2))}, as in Arditi et al.'s code. */
    public static int firstExcludedLayer(int nLayers) {
        return (int) (nLayers * (1.0 - PRUNE_LAYER_FRACTION));
    }

    public static Choice choose(List<Candidate> candidates, int nLayers, double klMax) {
        int limit = firstExcludedLayer(nLayers);
        List<Scored> scored = new ArrayList<>();
        Candidate best = null;
        int pass = 0;
        for (Candidate c : candidates) {
            List<String> reasons = new ArrayList<>();
            if (!Double.isFinite(c.bypass()) || !Double.isFinite(c.induce()) || !Double.isFinite(c.kl())) reasons.add("score not finite");
            if (!(c.induce() > 0)) reasons.add("induce score " + fmt(c.induce()) + " is not above 0");
            if (!(c.kl() < klMax)) reasons.add("KL " + fmt(c.kl()) + " is not below " + fmt(klMax));
            if (c.layer() >= limit) reasons.add("layer " + c.layer() + " is in the last 20% (≥ " + limit + ")");
            boolean ok = reasons.isEmpty();
            scored.add(new Scored(c, ok, reasons));
            if (!ok) continue;
            pass++;
            if (best == null || c.bypass() < best.bypass()) best = c;
        }
        String why = best == null
                ? "no candidate passes (induce > 0, KL < " + fmt(klMax) + ", layer < " + limit + ") among " + candidates.size()
                : String.format(Locale.ROOT, "%s @ %s (layer %d): the lowest bypass score, %s, among %d of %d candidates with "
                        + "induce > 0, KL < %s and layer < %d; its induce score is %s and its KL %s", best.hook(), best.position(),
                best.layer(), fmt(best.bypass()), pass, candidates.size(), fmt(klMax), limit, fmt(best.induce()), fmt(best.kl()));
        return new Choice(best, scored, why);
    }

    /**
     * Scores every per-layer direction of the set on the model.
     *
     * @param harmful       harmful validation prompts (token ids, as the model sees them)
     * @param harmless      harmless validation prompts
     * @param refusalTokens the refusal-opening token ids of the log-odds
     */
    public static List<Candidate> score(HookedModel m, DirectionSet set, List<int[]> harmful, List<int[]> harmless,
                                        int[] refusalTokens, int batchSize, ProgressListener progress) {
        if (!m.info().causal()) throw new JlensException("--select arditi needs a causal language model (refusal is scored on its next token)");
        if (harmful.isEmpty() || harmless.isEmpty()) throw new JlensException("--select arditi needs harmful and harmless validation prompts");
        // bypass and KL: refusal on harmful prompts, KL on harmless ones, both with the direction ablated
        SteeringEvaluator onHarmful = new SteeringEvaluator(m, new SteeringEvaluator.Inputs(harmful, harmless, List.of(),
                harmless, harmful, refusalTokens, batchSize));
        // induce: refusal on harmless prompts with the direction added (the cost prompts are not used)
        SteeringEvaluator onHarmless = new SteeringEvaluator(m, new SteeringEvaluator.Inputs(harmless, harmless.subList(0, 1), List.of(),
                harmless, harmful, refusalTokens, batchSize));
        List<String> everyLayer = Intervention.everyLayer(m.model());
        List<Direction> ds = set.directions().stream().filter(d -> d.layer() >= 0 && !TokenPosition.fromLabel(d.position()).isMean()).toList();
        if (ds.isEmpty()) throw new JlensException("--select arditi: no per-layer direction at a token position (mean is not a candidate)");
        List<Candidate> out = new ArrayList<>();
        int done = 0;
        for (Direction d : ds) {
            Intervention ablation = Intervention.ablate(d.unit(), everyLayer);
            ablation.checkFor(m.model());
            SteeringEvaluator.Metrics ab = onHarmful.measure(List.of(ablation), null);
            double norm = Double.isFinite(d.norm()) ? d.norm() : 1;
            Intervention addition = Intervention.add(d.unit(), norm, List.of(d.hook()), TokenScope.BOTH);
            SteeringEvaluator.Metrics ad = onHarmless.measure(List.of(addition), null);
            out.add(new Candidate(d.hook(), d.layer(), d.position(), ab.refusalLogOdds(), ad.refusalLogOdds(), ab.kl()));
            progress.progress(++done, ds.size());
        }
        return out;
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }
}
