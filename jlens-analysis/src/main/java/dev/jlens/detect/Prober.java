package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.geometry.Estimate;
import dev.jlens.stats.Seeds;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The per-hook experiment of {@code jlens probe}: fit every detector kind on train (choices on val), then
 * score the test split and estimate its metrics with bootstrap intervals.
 */
public final class Prober {

    /**
     * @param bootstrap draws for the intervals (0: point estimates only)
     * @param level     interval level, e.g. 0.95
     */
    public record Options(DetectorFitter.Options fit, List<DetectorKind> kinds, int bootstrap, long seed, double level) {
        public Options {
            if (bootstrap < 0) throw new JlensException("--bootstrap " + bootstrap + ": expected 0 or more");
            if (!(level > 0 && level < 1)) throw new JlensException("interval level " + level + ": expected a number in (0, 1)");
            if (kinds.isEmpty()) throw new JlensException("no detector kind to fit");
            kinds = List.copyOf(kinds);
        }

        public static Options defaults() {
            return new Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.values()), 1000, 42, 0.95);
        }
    }

    /** One kind at one hook: the fitted detector and its test-split numbers. */
    /** @param testLogit the calibrated log-odds of each test example, in test-split order */
    public record KindResult(DetectorKind kind, DetectorFitter.Fitted fitted, Evaluation test, double[] testLogit) {
    }

    public record HookResult(String hook, int layer, Map<DetectorKind, KindResult> kinds) {
        public KindResult get(DetectorKind kind) {
            KindResult r = kinds.get(kind);
            if (r == null) throw new JlensException("detector kind " + kind.cliName() + " was not fitted");
            return r;
        }
    }

    private Prober() {
    }

    /** @param x pooled activations at this hook, one row per example of {@code data}, in its order */
    public static HookResult probe(String hook, int layer, double[][] x, ProbeData data, Options o) {
        if (x.length != data.examples().size()) {
            throw new JlensException(hook + ": " + x.length + " activation rows for " + data.examples().size() + " prompts");
        }
        boolean[] positive = data.positive();
        int[] train = data.indices("train"), val = data.indices("val"), test = data.indices("test");
        if (train.length == 0 || val.length == 0 || test.length == 0) {
            throw new JlensException("the probe needs prompts in every split; train " + train.length + ", val "
                    + val.length + ", test " + test.length);
        }
        DetectorFitter fitter = new DetectorFitter(x, positive, train, val, o.fit());
        boolean[] testPos = new boolean[test.length];
        String[] testGroup = new String[test.length];
        for (int k = 0; k < test.length; k++) {
            testPos[k] = positive[test[k]];
            testGroup[k] = data.examples().get(test[k]).group();
        }
        int pos = 0;
        for (boolean b : testPos) if (b) pos++;
        if (pos == 0 || pos == test.length) {
            throw new JlensException("the test split holds " + (pos == 0 ? "no harmful" : "no harmless")
                    + " prompt; every split needs both classes");
        }
        Map<DetectorKind, KindResult> out = new LinkedHashMap<>();
        for (DetectorKind kind : o.kinds()) {
            DetectorFitter.Fitted f = fitter.fit(kind);
            double[] logit = new double[test.length];
            for (int k = 0; k < test.length; k++) logit[k] = f.params().logit(f.params().raw(x[test[k]]));
            Evaluation ev = Evaluation.of(logit, testPos, testGroup, f.params().thresholdLogit(), o.bootstrap(),
                    Seeds.stream(o.seed(), layer, "detect-bootstrap:" + hook + ":" + kind.cliName()), o.level());
            out.put(kind, new KindResult(kind, f, ev, logit));
        }
        return new HookResult(hook, layer, out);
    }

    /**
     * A kind's detector at one hook with its prompt score taken as an aggregation of token scores: the direction as
     * fitted, the Platt map and threshold refitted on the aggregated validation scores, then evaluated on test.
     *
     * @param tokenRaw per example of {@code data} (in its order), the raw score of each of its tokens
     */
    public static KindResult aggregate(String hook, int layer, KindResult fitted, double[][] tokenRaw, TokenAggregation aggregation,
                                       ProbeData data, Options o) {
        if (tokenRaw.length != data.examples().size()) {
            throw new JlensException(hook + ": token scores of " + tokenRaw.length + " prompts for " + data.examples().size());
        }
        boolean[] positive = data.positive();
        int[] val = data.indices("val"), test = data.indices("test");
        double[] valRaw = new double[val.length];
        boolean[] valPos = new boolean[val.length];
        for (int k = 0; k < val.length; k++) {
            valRaw[k] = aggregation.aggregate(tokenRaw[val[k]]);
            valPos[k] = positive[val[k]];
        }
        DetectorFitter.Fitted f = DetectorFitter.recalibrate(fitted.fitted(), valRaw, valPos, o.fit().threshold());
        double[] logit = new double[test.length];
        boolean[] testPos = new boolean[test.length];
        String[] testGroup = new String[test.length];
        for (int k = 0; k < test.length; k++) {
            logit[k] = f.params().logit(aggregation.aggregate(tokenRaw[test[k]]));
            testPos[k] = positive[test[k]];
            testGroup[k] = data.examples().get(test[k]).group();
        }
        Evaluation ev = Evaluation.of(logit, testPos, testGroup, f.params().thresholdLogit(), o.bootstrap(),
                Seeds.stream(o.seed(), layer, "detect-bootstrap:" + hook + ":" + fitted.kind().cliName() + ":" + aggregation.cliName()),
                o.level());
        return new KindResult(fitted.kind(), f, ev, logit);
    }

    /**
     * The first hook (in the given, forward order) whose test AUROC interval lower bound reaches the target;
     * without intervals the point estimate is used.
     */
    public static Optional<HookResult> earliest(List<HookResult> results, DetectorKind kind, double target) {
        for (HookResult r : results) {
            if (reaches(r.get(kind).test().overall().get(Evaluation.AUROC), target)) return Optional.of(r);
        }
        return Optional.empty();
    }

    public static boolean reaches(Estimate auroc, double target) {
        double lo = Double.isNaN(auroc.lo()) ? auroc.value() : auroc.lo();
        return lo >= target;
    }
}
