package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * A grid of steering settings (mode × layer × α), each measured by a {@link SteeringEvaluator}, plus the
 * unsteered baseline, and the selection rule of Arditi et al.: the largest effect among settings whose cost
 * stays under a threshold, leaving out the last 20% of layers.
 */
public final class SteeringSweep {

    /** Which measurement the {@code effect} column reports. */
    public enum EffectMetric {
        /** Next-token refusal log-odds at the last prompt position (causal models). */
        REFUSAL,
        /** Class score of the readout: cos to the other class's centroid minus cos to its own. */
        CLASS;

        public static EffectMetric parse(String s) {
            return switch (s.strip().toLowerCase(Locale.ROOT)) {
                case "refusal" -> REFUSAL;
                case "class" -> CLASS;
                default -> throw new JlensException("--effect \"" + s + "\": expected refusal or class");
            };
        }
    }

    /** One entry of --alpha. */
    public record Alpha(String text, double number, Kind kind) {
        public enum Kind { ABSOLUTE, NORM_MULTIPLE, CLASS_A_MEAN, CLASS_B_MEAN }

        /** In activation units for direction d. */
        public double value(Direction d) {
            return switch (kind) {
                case ABSOLUTE -> number;
                case NORM_MULTIPLE -> number * d.norm();
                case CLASS_A_MEAN -> d.meanProjA();
                case CLASS_B_MEAN -> d.meanProjB();
            };
        }
    }

    /** A setting; mode null is the unsteered baseline. */
    public record Setting(Intervention.Mode mode, int layer, Alpha alpha) {
        public boolean isBaseline() {
            return mode == null;
        }
    }

    public record Sample(String prompt, String text, boolean refusal) {
    }

    /**
     * One row of steer.csv.
     *
     * @param value      α (add) or c (clamp) in activation units; NaN for ablation and the baseline
     * @param projBefore the unsteered projection at the direction's hook and position (NaN for the baseline)
     * @param effect     the chosen metric's change towards the other class (see {@link #effectOf})
     */
    public record Row(Setting setting, double value, SteeringEvaluator.Metrics metrics, double projBefore, double effect,
                      double refusalRate, List<Sample> samples) {
    }

    /**
     * @param ablateHooks hook points for ablation (null: resid_pre, attn_out, mlp_out of every layer)
     * @param evalIsClassA whether the evaluation prompts are class A, so that moving towards B is the effect
     */
    public record Config(Intervention.Mode mode, DirectionSet set, DirectionChoice choice, List<Integer> layers,
                         List<Alpha> alphas, TokenScope scope, List<String> ablateHooks, EffectMetric metric,
                         boolean evalIsClassA, int samples, int maxNewTokens) {
    }

    private SteeringSweep() {
    }

    public static List<Alpha> parseAlphas(String spec, Intervention.Mode mode) {
        String example = "e.g. 2,4,8 or 0.5x,1x,2x (multiples of the direction's norm)"
                + (mode == Intervention.Mode.CLAMP ? " or a,b (the class means of x·r̂)" : "");
        if (spec == null || spec.isBlank()) throw new JlensException("--alpha: empty; expected a comma-separated list, " + example);
        List<Alpha> out = new ArrayList<>();
        for (String raw : spec.split(",", -1)) {
            String t = raw.strip().toLowerCase(Locale.ROOT);
            if (t.isEmpty()) throw new JlensException("--alpha \"" + spec + "\": an empty item; expected a comma-separated list, " + example);
            if (t.equals("a") || t.equals("b")) {
                if (mode != Intervention.Mode.CLAMP) {
                    throw new JlensException("--alpha \"" + spec + "\": \"" + t + "\" (a class mean) applies to --mode clamp only");
                }
                out.add(new Alpha(t, Double.NaN, t.equals("a") ? Alpha.Kind.CLASS_A_MEAN : Alpha.Kind.CLASS_B_MEAN));
                continue;
            }
            boolean multiple = t.endsWith("x");
            String num = multiple ? t.substring(0, t.length() - 1) : t;
            if (!num.matches("[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?")) {
                throw new JlensException("--alpha \"" + spec + "\": \"" + raw.strip() + "\" is not a number; expected " + example);
            }
            double v = Double.parseDouble(num);
            if (!Double.isFinite(v)) {
                throw new JlensException("--alpha \"" + spec + "\": \"" + raw.strip() + "\" is too large; expected " + example);
            }
            out.add(new Alpha(raw.strip(), v, multiple ? Alpha.Kind.NORM_MULTIPLE : Alpha.Kind.ABSOLUTE));
        }
        return out;
    }

    /** "all", or comma-separated layers and ranges such as 2,4-6; each must be in 0..nLayers−1. */
    public static List<Integer> parseLayers(String spec, int nLayers) {
        if (spec == null || spec.isBlank() || spec.strip().equalsIgnoreCase("all")) {
            List<Integer> all = new ArrayList<>();
            for (int l = 0; l < nLayers; l++) all.add(l);
            return all;
        }
        TreeSet<Integer> out = new TreeSet<>();
        for (String raw : spec.split(",", -1)) {
            String t = raw.strip();
            try {
                if (t.matches("\\d+-\\d+")) {
                    int a = Integer.parseInt(t.substring(0, t.indexOf('-'))), b = Integer.parseInt(t.substring(t.indexOf('-') + 1));
                    if (a > b) throw new JlensException("--layers \"" + spec + "\": range " + t + " runs backwards");
                    for (int l = a; l <= b; l++) out.add(check(l, nLayers, spec));
                } else {
                    out.add(check(Integer.parseInt(t), nLayers, spec));
                }
            } catch (NumberFormatException e) {
                throw new JlensException("--layers \"" + spec + "\": \"" + t + "\" is not a layer number; expected e.g. 2,4-6 or all");
            }
        }
        return new ArrayList<>(out);
    }

    private static int check(int l, int n, String spec) {
        if (l < 0 || l >= n) {
            throw new JlensException("--layers \"" + spec + "\": layer " + l + " is out of range; the model has " + n
                    + " layers (0.." + (n - 1) + ")");
        }
        return l;
    }

    /** The settings of a sweep, baseline first. */
    public static List<Setting> settings(Config cfg) {
        List<Setting> out = new ArrayList<>();
        out.add(new Setting(null, -1, null));
        for (int l : cfg.layers()) {
            if (cfg.mode() == Intervention.Mode.ABLATE) {
                out.add(new Setting(cfg.mode(), l, null));
            } else {
                for (Alpha a : cfg.alphas()) out.add(new Setting(cfg.mode(), l, a));
            }
        }
        return out;
    }

    /** The interventions of a setting (none for the baseline). */
    public static List<Intervention> interventions(HookedModel m, Config cfg, Setting s, Path dirForErrors) {
        if (s.isBaseline()) return List.of();
        Direction d = cfg.choice().at(cfg.set(), s.layer(), dirForErrors);
        Intervention iv = switch (s.mode()) {
            case ADD -> Intervention.add(d.unit(), s.alpha().value(d), List.of(d.hook()), cfg.scope());
            case CLAMP -> Intervention.clamp(d.unit(), s.alpha().value(d), List.of(d.hook()), cfg.scope());
            case ABLATE -> Intervention.ablate(d.unit(), cfg.ablateHooks() != null ? cfg.ablateHooks() : Intervention.everyLayer(m.model()));
        };
        iv.checkFor(m.model());
        return List.of(iv);
    }

    /**
     * Runs every setting; {@code samplePrompts} (may be empty) are continued greedily under each. The samples of
     * several settings are generated in one batch (as many settings as fit the evaluator's batch size, each
     * steering only its own sequences), so a decoding step reads the weights once for all of them; the texts
     * equal those of each setting generating alone (the kernels' results do not depend on a batch's other rows).
     */
    public static List<Row> run(HookedModel m, SteeringEvaluator ev, Config cfg, List<String> samplePrompts,
                                ProgressListener progress, Path dirForErrors) {
        List<Setting> settings = settings(cfg);
        List<int[]> sampleIds = new ArrayList<>();
        for (String p : samplePrompts) sampleIds.add(m.encode(p, null));
        boolean sampling = !sampleIds.isEmpty() && m.info().causal();
        int perCall = sampling ? Math.max(1, ev.batchSize() / sampleIds.size()) : 1;
        SteeringEvaluator.Metrics base = ev.baseline();
        List<Row> rows = new ArrayList<>();
        int done = 0;
        for (int g0 = 0; g0 < settings.size(); g0 += perCall) {
            List<Setting> group = settings.subList(g0, Math.min(settings.size(), g0 + perCall));
            List<List<Intervention>> groupIvs = new ArrayList<>();
            for (Setting s : group) groupIvs.add(interventions(m, cfg, s, dirForErrors));
            List<List<Sample>> samples = new ArrayList<>();
            double[] rate = new double[group.size()];
            java.util.Arrays.fill(rate, Double.NaN);
            for (int i = 0; i < group.size(); i++) samples.add(new ArrayList<>());
            if (sampling) {
                List<int[]> ids = new ArrayList<>();
                for (int i = 0; i < group.size(); i++) ids.addAll(sampleIds);
                int[] lengths = ids.stream().mapToInt(a -> a.length).toArray();
                Hooks hooks = Hooks.none();
                for (int i = 0; i < group.size(); i++) {
                    for (Intervention iv : groupIvs.get(i)) hooks = iv.addTo(hooks, lengths, i * sampleIds.size(), sampleIds.size());
                }
                List<Generation> gens = new Generator(m).generate(ids, GenerationConfig.greedy(cfg.maxNewTokens()), hooks, null);
                for (int i = 0; i < group.size(); i++) {
                    int refusals = 0;
                    for (int j = 0; j < sampleIds.size(); j++) {
                        String text = gens.get(i * sampleIds.size() + j).text();
                        boolean r = Refusal.isRefusal(text);
                        if (r) refusals++;
                        samples.get(i).add(new Sample(samplePrompts.get(j), text, r));
                    }
                    rate[i] = refusals / (double) sampleIds.size();
                }
            }
            for (int i = 0; i < group.size(); i++) {
                Setting s = group.get(i);
                List<Intervention> ivs = groupIvs.get(i);
                Direction d = s.isBaseline() ? null : cfg.choice().at(cfg.set(), s.layer(), dirForErrors);
                SteeringEvaluator.Metrics mt = s.isBaseline() ? base : ev.measure(ivs, d);
                double projBefore = d == null ? Double.NaN : ev.projectionBaseline(d);
                double value = s.isBaseline() || s.mode() == Intervention.Mode.ABLATE ? Double.NaN : ivs.getFirst().value();
                rows.add(new Row(s, value, mt, projBefore, s.isBaseline() ? 0 : effectOf(cfg, base, mt), rate[i],
                        List.copyOf(samples.get(i))));
                progress.progress(++done, settings.size());
            }
        }
        return rows;
    }

    /**
     * The chosen metric's change from the baseline, signed so that a move of the evaluation prompts towards the
     * other class is positive: steered − baseline when they are class A, baseline − steered when class B.
     */
    public static double effectOf(Config cfg, SteeringEvaluator.Metrics base, SteeringEvaluator.Metrics steered) {
        double b = cfg.metric() == EffectMetric.REFUSAL ? base.refusalLogOdds() : base.classScore();
        double s = cfg.metric() == EffectMetric.REFUSAL ? steered.refusalLogOdds() : steered.classScore();
        return (cfg.evalIsClassA() ? 1 : -1) * (s - b);
    }

    /** The selected row and a sentence saying why, or a null row and why nothing qualified. */
    public record Selection(Row row, String why) {
    }

    /**
     * Arditi et al.'s rule: among the steered settings in layers below 0.8·n_layers whose cost (KL for causal
     * models, the embedding change for encoders) is under the threshold, the one with the largest effect.
     */
    public static Selection select(List<Row> rows, int nLayers, double threshold, boolean causal) {
        String costName = causal ? "KL" : "embedding change";
        int limit = DirectionChoice.maxSelectableLayer(nLayers);
        int candidates = 0, tooLate = 0, tooCostly = 0;
        Row best = null;
        double cheapest = Double.POSITIVE_INFINITY;
        for (Row r : rows) {
            if (r.setting().isBaseline() || !Double.isFinite(r.effect())) continue;
            double cost = causal ? r.metrics().kl() : r.metrics().embChange();
            if (r.setting().layer() > limit) {
                tooLate++;
                continue;
            }
            cheapest = Math.min(cheapest, cost);
            if (!(cost < threshold)) {
                tooCostly++;
                continue;
            }
            candidates++;
            if (best == null || r.effect() > best.effect()) best = r;
        }
        if (best == null) {
            String why = "no setting qualifies: " + tooLate + " in the last 20% of layers (≥ " + (limit + 1) + ") and "
                    + tooCostly + " with " + costName + " ≥ " + threshold
                    + (Double.isFinite(cheapest) ? String.format(Locale.ROOT, " (the smallest was %.4g)", cheapest) : "")
                    + "; raise the threshold or try smaller alphas";
            return new Selection(null, why);
        }
        double cost = causal ? best.metrics().kl() : best.metrics().embChange();
        String why = String.format(Locale.ROOT, "%s at layer %d%s: effect %.4f, the largest among %d setting%s with %s < %s "
                        + "in layers 0..%d (excluded: %d in the last 20%% of layers, %d with %s ≥ %s); its %s is %.4f",
                best.setting().mode().cliName(), best.setting().layer(),
                best.setting().alpha() == null ? "" : " with alpha " + best.setting().alpha().text(),
                best.effect(), candidates, candidates == 1 ? "" : "s", costName, fmt(threshold), limit, tooLate, tooCostly,
                costName, fmt(threshold), costName, cost);
        return new Selection(best, why);
    }

    private static String fmt(double v) {
        return String.format(Locale.ROOT, "%.4g", v);
    }
}
