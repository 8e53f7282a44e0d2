package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.geometry.Estimate;
import dev.jlens.stats.Auroc;
import dev.jlens.stats.LogisticRegression;
import dev.jlens.stats.Seeds;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the words alone achieve, on the probe's own splits: a TF-IDF bag-of-words logistic regression on the
 * prompt text, and one on its length only. Same discipline as the residual probe: vocabulary, IDF and weights
 * from train; C, the Platt map and the threshold on validation; metrics with bootstrap CIs on test, overall and
 * per category. A probe whose AUROC interval does not lie above the TF-IDF one has not shown that it reads
 * anything the words do not already say.
 *
 * <p>Written here rather than taken from a library: the JVM has no maintained small TF-IDF + logistic
 * regression package, and the pieces (a tokeniser, counts, the probe's own {@link LogisticRegression}) are a
 * few dozen lines. Features follow scikit-learn's {@code TfidfVectorizer} defaults where it matters: lower-cased
 * word tokens of letters and digits (unigrams) seen in at least two train prompts, smooth IDF
 * ln((1+n)/(1+df))+1, raw counts, rows L2-normalised.
 */
public final class TextBaselines {

    public static final String TFIDF = "tf-idf";
    public static final String LENGTH = "length";

    private static final Pattern WORD = Pattern.compile("[\\p{L}\\p{N}]+");

    /**
     * One baseline's result.
     *
     * @param c        the C chosen on validation
     * @param features how many features it had (vocabulary size, or 1)
     */
    public record Result(String name, double c, double valAuroc, int features, Evaluation test, double[] testLogit) {
    }

    private TextBaselines() {
    }

    /** The two baselines, TF-IDF first, on each example's whole text. */
    public static List<Result> all(ProbeData data, Prober.Options o) {
        return all(data, data.texts(), o);
    }

    /**
     * The two baselines on the given text of each example (one per example of data, in its order): the words
     * of the detector's pooling scope ({@link ProbeData#texts(PoolScope)}), so that both read the same part of a
     * conversation.
     */
    public static List<Result> all(ProbeData data, List<String> texts, Prober.Options o) {
        if (texts.size() != data.examples().size()) {
            throw new IllegalArgumentException(texts.size() + " texts for " + data.examples().size() + " examples");
        }
        return List.of(fit(TFIDF, tfidfFeatures(texts, data.indices("train")), data, o),
                fit(LENGTH, lengthFeatures(texts, data.indices("train")), data, o));
    }

    public static Result tfidf(ProbeData data, Prober.Options o) {
        return fit(TFIDF, tfidfFeatures(data.texts(), data.indices("train")), data, o);
    }

    public static Result length(ProbeData data, Prober.Options o) {
        return fit(LENGTH, lengthFeatures(data.texts(), data.indices("train")), data, o);
    }

    private static Result fit(String name, double[][] x, ProbeData data, Prober.Options o) {
        boolean[] positive = data.positive();
        int[] train = data.indices("train"), val = data.indices("val"), test = data.indices("test");
        boolean[] valPos = new boolean[val.length];
        for (int k = 0; k < val.length; k++) valPos[k] = positive[val[k]];
        LogisticRegression.Model best = null;
        double bestC = Double.NaN, bestAuc = -1, bestLoss = Double.POSITIVE_INFINITY;
        double[] bestVal = null;
        for (double c : o.fit().cGrid()) {
            LogisticRegression.Model mdl = LogisticRegression.fit(x, positive, train, 1 / c);
            double[] raw = new double[val.length];
            double loss = 0;
            for (int k = 0; k < val.length; k++) {
                raw[k] = mdl.score(x[val[k]]);
                loss += valPos[k] ? softplus(-raw[k]) : softplus(raw[k]);
            }
            double auc = auroc(raw, valPos);
            // as the probe's fitter: the best validation AUROC, ties broken by validation log-loss
            if (auc > bestAuc + 1e-12 || Math.abs(auc - bestAuc) <= 1e-12 && loss < bestLoss - 1e-12) {
                best = mdl;
                bestC = c;
                bestAuc = auc;
                bestLoss = loss;
                bestVal = raw;
            }
        }
        double[] ab = Calibration.platt(bestVal, valPos);
        double[] valLogit = new double[val.length];
        for (int k = 0; k < val.length; k++) valLogit[k] = ab[0] * bestVal[k] + ab[1];
        double threshold = Calibration.threshold(valLogit, valPos, o.fit().threshold());
        double[] logit = new double[test.length];
        boolean[] testPos = new boolean[test.length];
        String[] group = new String[test.length];
        for (int k = 0; k < test.length; k++) {
            logit[k] = ab[0] * best.score(x[test[k]]) + ab[1];
            testPos[k] = positive[test[k]];
            group[k] = data.examples().get(test[k]).group();
        }
        Evaluation ev = Evaluation.of(logit, testPos, group, threshold, o.bootstrap(), Seeds.stream(o.seed(), -1, "baseline:" + name),
                o.level());
        return new Result(name, bestC, bestAuc, x[0].length, ev, logit);
    }

    private static double softplus(double z) {
        return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    private static double auroc(double[] score, boolean[] positive) {
        List<Double> neg = new ArrayList<>(), pos = new ArrayList<>();
        for (int k = 0; k < score.length; k++) (positive[k] ? pos : neg).add(score[k]);
        return Auroc.of(neg.stream().mapToDouble(Double::doubleValue).toArray(), pos.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /**
     * A baseline measured the way {@code jlens analyze} measures its probe: out-of-fold scores of a k-fold
     * stratified cross-validation with a fixed L2 penalty, the vocabulary, IDF (or the length's standardisation)
     * refitted on each training fold; AUROC with a bootstrap interval (prompts resampled within each class).
     *
     * @param name {@link #TFIDF} or {@link #LENGTH}
     */
    public static Estimate crossValidated(String name, List<String> harmless, List<String> harmful, int folds, double lambda,
                                          int bootstrap, long seed) {
        int nA = harmless.size(), n = nA + harmful.size();
        if (nA < 2 || harmful.size() < 2) throw new JlensException("a cross-validated baseline needs at least 2 prompts per class");
        List<String> texts = new ArrayList<>(harmless);
        texts.addAll(harmful);
        boolean[] positive = new boolean[n];
        for (int i = nA; i < n; i++) positive[i] = true;
        int k = Math.min(folds, Math.min(nA, harmful.size()));
        int[] fold = dev.jlens.stats.StratifiedKFold.assign(positive, k, Seeds.stream(seed, -1, "analyze-baseline-folds"));
        double[] scores = new double[n];
        for (int f = 0; f < k; f++) {
            int ff = f;
            int[] train = java.util.stream.IntStream.range(0, n).filter(i -> fold[i] != ff).toArray();
            double[][] x = switch (name) {
                case TFIDF -> tfidfFeatures(texts, train);
                case LENGTH -> lengthFeatures(texts, train);
                default -> throw new JlensException("unknown baseline " + name);
            };
            LogisticRegression.Model m = LogisticRegression.fit(x, positive, train, lambda);
            for (int i = 0; i < n; i++) if (fold[i] == f) scores[i] = m.score(x[i]);
        }
        double[] sA = java.util.Arrays.copyOfRange(scores, 0, nA), sB = java.util.Arrays.copyOfRange(scores, nA, n);
        double auc = Auroc.of(sA, sB);
        if (bootstrap == 0) return Estimate.point(auc);
        java.util.SplittableRandom rng = Seeds.stream(seed, -1, "analyze-baseline-bootstrap:" + name);
        double[] draws = new double[bootstrap];
        double[] ra = new double[sA.length], rb = new double[sB.length];
        for (int b = 0; b < bootstrap; b++) {
            for (int i = 0; i < ra.length; i++) ra[i] = sA[rng.nextInt(sA.length)];
            for (int i = 0; i < rb.length; i++) rb[i] = sB[rng.nextInt(sB.length)];
            draws[b] = Auroc.of(ra, rb);
        }
        java.util.Arrays.sort(draws);
        return new Estimate(auc, draws[(int) Math.floor(0.025 * (bootstrap - 1))], draws[(int) Math.ceil(0.975 * (bootstrap - 1))]);
    }

    /** TF-IDF rows of every text, vocabulary and IDF from the texts in {@code fitRows}. */
    static double[][] tfidfFeatures(List<String> texts, int[] fitRows) {
        List<List<String>> terms = new ArrayList<>(texts.size());
        for (String t : texts) terms.add(terms(t));
        Map<String, Integer> df = new HashMap<>();
        for (int i : fitRows) for (String t : new java.util.HashSet<>(terms.get(i))) df.merge(t, 1, Integer::sum);
        Map<String, Integer> vocab = new LinkedHashMap<>();
        df.entrySet().stream().filter(e -> e.getValue() >= 2).map(Map.Entry::getKey).sorted()
                .forEach(t -> vocab.put(t, vocab.size()));
        if (vocab.isEmpty()) throw new JlensException("TF-IDF baseline: no word occurs in two train prompts");
        double[] idf = new double[vocab.size()];
        for (var e : vocab.entrySet()) idf[e.getValue()] = Math.log((1.0 + fitRows.length) / (1.0 + df.get(e.getKey()))) + 1;
        double[][] x = new double[texts.size()][vocab.size()];
        for (int i = 0; i < texts.size(); i++) {
            for (String t : terms.get(i)) {
                Integer j = vocab.get(t);
                if (j != null) x[i][j] += idf[j];
            }
            double norm = 0;
            for (double v : x[i]) norm += v * v;
            norm = Math.sqrt(norm);
            if (norm > 0) for (int j = 0; j < x[i].length; j++) x[i][j] /= norm;
        }
        return x;
    }

    /** Word counts standardised on the texts in {@code fitRows}. */
    static double[][] lengthFeatures(List<String> texts, int[] fitRows) {
        double[] len = new double[texts.size()];
        for (int i = 0; i < texts.size(); i++) len[i] = words(texts.get(i)).size();
        double m = 0, s = 0;
        for (int i : fitRows) m += len[i];
        m /= fitRows.length;
        for (int i : fitRows) s += (len[i] - m) * (len[i] - m);
        s = Math.sqrt(s / fitRows.length);
        double[][] x = new double[texts.size()][1];
        for (int i = 0; i < texts.size(); i++) x[i][0] = s > 0 ? (len[i] - m) / s : 0;
        return x;
    }

    /** Lower-cased word tokens (runs of letters and digits). */
    public static List<String> words(String text) {
        List<String> out = new ArrayList<>();
        Matcher m = WORD.matcher(text.toLowerCase(Locale.ROOT));
        while (m.find()) out.add(m.group());
        return out;
    }

    /**
     * The terms of a text: its words (unigrams, scikit-learn's default). Bigrams were tried and left out: with a
     * few hundred train prompts their many rare features let the regression fit noise (a one-word label reached
     * only AUROC 0.98-0.99 with bigrams, 1.0 without).
     */
    static List<String> terms(String text) {
        return words(text);
    }

    /**
     * Whether a probe beats a baseline: its AUROC interval lies wholly above the baseline's. Overlapping intervals
     * (or no intervals and a point estimate not above) mean the probe has not shown more than the words.
     */
    public static boolean beats(Estimate probe, Estimate baseline) {
        double lo = Double.isNaN(probe.lo()) ? probe.value() : probe.lo();
        double hi = Double.isNaN(baseline.hi()) ? baseline.value() : baseline.hi();
        return lo > hi;
    }
}
