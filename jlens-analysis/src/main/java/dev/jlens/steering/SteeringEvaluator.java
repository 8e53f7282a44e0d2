package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.stats.LinAlg;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * Measures one steering setting against the unsteered model (formulas in docs/STEERING.md).
 *
 * <p>Effect, on the evaluation prompts: the mean projection x·r̂ at the direction's hook and position; the
 * class score, mean over prompts of cos(h, μ_B) − cos(h, μ_A), where h is the readout (last layer
 * resid_post at the last token for causal models, its mean over tokens for encoders, i.e. the pooled
 * embedding) and μ_A, μ_B are the unsteered class centroids of the readout; and for causal models the
 * next-token refusal log-odds at the last prompt position.
 *
 * <p>Cost: for causal models the mean KL(P_unsteered ‖ P_steered) of the next-token distribution at the
 * last position of the cost (harmless) prompts, and the cross-entropy in nats per token on windows of the
 * built-in harmless corpus; for encoders the mean 1 − cos between the unsteered and steered pooled
 * embeddings of the cost prompts.
 *
 * <p>The forward passes here treat every token as a prompt token, so an intervention scoped to generated
 * tokens only shows up in generated samples.
 */
public final class SteeringEvaluator {

    /**
     * @param evalPrompts   prompts the effect is measured on
     * @param costPrompts   harmless prompts for the KL / embedding change
     * @param ceWindows     token windows of the harmless corpus (causal models; may be empty)
     * @param centroidA     class A prompts for the readout centroid
     * @param centroidB     class B prompts for the readout centroid
     * @param refusalTokens token ids whose probability mass is the refusal score (may be empty)
     */
    public record Inputs(List<int[]> evalPrompts, List<int[]> costPrompts, List<int[]> ceWindows, List<int[]> centroidA,
                         List<int[]> centroidB, int[] refusalTokens, int batchSize) {
        public Inputs {
            if (evalPrompts.isEmpty()) throw new JlensException("no evaluation prompts");
            if (costPrompts.isEmpty()) throw new JlensException("no harmless prompts to measure the cost on");
            if (centroidA.isEmpty() || centroidB.isEmpty()) throw new JlensException("no prompts for the class centroids");
            if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
        }
    }

    /**
     * What one setting gives; NaN where a measure does not apply (refusal, KL and CE for encoders; the
     * embedding change for causal models; the projection without a direction).
     */
    public record Metrics(double projection, double classScore, double refusalLogOdds, double ce, double kl,
                          double embChange) {
    }

    private final HookedModel m;
    private final Inputs in;
    private final boolean causal;
    private final int vocab;
    private final String readoutHook;
    private final double[] muA, muB;
    private final double[][] baseLogProbs;
    private final double[][] baseEmbeddings;
    private final Metrics baseline;
    private final java.util.Map<String, Double> unsteeredProjection = new java.util.HashMap<>();

    public SteeringEvaluator(HookedModel m, Inputs in) {
        this.m = m;
        this.in = in;
        this.causal = m.info().causal();
        this.vocab = m.info().vocabSize();
        this.readoutHook = "blocks." + (m.info().nLayers() - 1) + ".hook_resid_post";
        this.muA = mean(readouts(in.centroidA(), List.of()));
        this.muB = mean(readouts(in.centroidB(), List.of()));
        if (causal) {
            this.baseLogProbs = lastLogProbs(in.costPrompts(), List.of());
            this.baseEmbeddings = null;
        } else {
            this.baseLogProbs = null;
            this.baseEmbeddings = readouts(in.costPrompts(), List.of());
        }
        this.baseline = measure(List.of(), null);
    }

    public Metrics baseline() {
        return baseline;
    }

    public boolean causal() {
        return causal;
    }

    /** Prompts per forward pass. */
    public int batchSize() {
        return in.batchSize();
    }

    /** The unsteered mean projection on d at its hook and position over the evaluation prompts. */
    public double projectionBaseline(Direction d) {
        return unsteeredProjection.computeIfAbsent(d.name(), k -> measureEval(List.of(), d)[2]);
    }

    /** Metrics with the interventions applied (none: the unsteered model); d gives the projection, or null. */
    public Metrics measure(List<Intervention> interventions, Direction d) {
        double[] eval = measureEval(interventions, d);
        double kl = Double.NaN, emb = Double.NaN, ce = Double.NaN;
        if (causal) {
            double[][] lp = lastLogProbs(in.costPrompts(), interventions);
            double sum = 0;
            for (int i = 0; i < lp.length; i++) {
                double k = 0;
                double[] p = baseLogProbs[i], q = lp[i];
                for (int j = 0; j < vocab; j++) k += Math.exp(p[j]) * (p[j] - q[j]);
                sum += Math.max(0, k);
            }
            kl = sum / lp.length;
            if (!in.ceWindows().isEmpty()) ce = crossEntropy(interventions);
        } else {
            double[][] e = readouts(in.costPrompts(), interventions);
            double sum = 0;
            for (int i = 0; i < e.length; i++) sum += 1 - LinAlg.cosine(e[i], baseEmbeddings[i]);
            emb = sum / e.length;
        }
        return new Metrics(eval[2], eval[0], eval[1], ce, kl, emb);
    }

    /** [class score, refusal log-odds, projection] on the evaluation prompts. */
    private double[] measureEval(List<Intervention> interventions, Direction d) {
        List<int[]> prompts = in.evalPrompts();
        double score = 0, refusal = 0, proj = 0;
        int projCount = 0;
        boolean wantRefusal = causal && in.refusalTokens().length > 0;
        TokenPosition pos = d == null ? null : TokenPosition.fromLabel(d.position());
        double[] r = d == null ? null : d.unitDouble();
        for (int start = 0; start < prompts.size(); start += in.batchSize()) {
            TokenBatch batch = TokenBatch.of(prompts.subList(start, Math.min(prompts.size(), start + in.batchSize())));
            List<double[]> h = new ArrayList<>();
            double[] projSum = {0};
            int[] projN = {0};
            Hooks hooks = chain(interventions).with(readoutHook::equals, (p, v, b) -> {
                h.addAll(pool(v, b));
                return v;
            });
            if (d != null) {
                hooks = hooks.with(d.hook()::equals, (p, v, b) -> {
                    int dm = v.cols();
                    for (int s = 0; s < b.size(); s++) {
                        double[] x = new double[dm];
                        int off = b.offsets()[s], len = b.lengths()[s];
                        if (pos.isMean()) {
                            for (int t = 0; t < len; t++) for (int j = 0; j < dm; j++) x[j] += v.data()[(off + t) * dm + j] / (double) len;
                        } else {
                            int row = pos.row(len);
                            if (row < 0) continue;
                            for (int j = 0; j < dm; j++) x[j] = v.data()[(off + row) * dm + j];
                        }
                        double pr = 0;
                        for (int j = 0; j < dm; j++) pr += x[j] * r[j];
                        projSum[0] += pr;
                        projN[0]++;
                    }
                    return v;
                });
            }
            // Logits only at each prompt's last token, the one row the refusal score reads (same bits: the final
            // norm and the unembedding are per row).
            FloatTensor out = m.model().forward(batch, wantRefusal ? ForwardOptions.lastTokenLogits() : new ForwardOptions(false, -1), hooks);
            for (double[] x : h) score += LinAlg.cosine(x, muB) - LinAlg.cosine(x, muA);
            if (wantRefusal) {
                for (int s = 0; s < batch.size(); s++) refusal += Refusal.logOdds(out.data(), s * vocab, vocab, in.refusalTokens());
            }
            proj += projSum[0];
            projCount += projN[0];
        }
        int n = prompts.size();
        return new double[]{score / n, wantRefusal ? refusal / n : Double.NaN, projCount == 0 ? Double.NaN : proj / projCount};
    }

    private Hooks chain(List<Intervention> interventions) {
        Hooks h = Hooks.none();
        for (Intervention iv : interventions) h = iv.addTo(h, null);
        return h;
    }

    /** The readout of each prompt: last token (causal) or mean over tokens (encoder) of the last resid_post. */
    private List<double[]> pool(FloatTensor v, TokenBatch b) {
        int d = v.cols();
        List<double[]> out = new ArrayList<>();
        for (int s = 0; s < b.size(); s++) {
            int off = b.offsets()[s], len = b.lengths()[s];
            double[] x = new double[d];
            if (causal) {
                for (int j = 0; j < d; j++) x[j] = v.data()[(off + len - 1) * d + j];
            } else {
                for (int t = 0; t < len; t++) for (int j = 0; j < d; j++) x[j] += v.data()[(off + t) * d + j];
                for (int j = 0; j < d; j++) x[j] /= len;
            }
            out.add(x);
        }
        return out;
    }

    private double[][] readouts(List<int[]> prompts, List<Intervention> interventions) {
        List<double[]> all = new ArrayList<>();
        for (int start = 0; start < prompts.size(); start += in.batchSize()) {
            TokenBatch batch = TokenBatch.of(prompts.subList(start, Math.min(prompts.size(), start + in.batchSize())));
            Hooks hooks = chain(interventions).with(readoutHook::equals, (p, v, b) -> {
                all.addAll(pool(v, b));
                return v;
            });
            m.model().forward(batch, new ForwardOptions(false, -1), hooks);
        }
        return all.toArray(double[][]::new);
    }

    private double[][] lastLogProbs(List<int[]> prompts, List<Intervention> interventions) {
        List<double[]> out = new ArrayList<>();
        Hooks hooks = chain(interventions);
        for (int start = 0; start < prompts.size(); start += in.batchSize()) {
            TokenBatch batch = TokenBatch.of(prompts.subList(start, Math.min(prompts.size(), start + in.batchSize())));
            FloatTensor logits = m.model().forward(batch, ForwardOptions.lastTokenLogits(), hooks);
            for (int s = 0; s < batch.size(); s++) out.add(logSoftmax(logits.data(), s * vocab, vocab));
        }
        return out.toArray(double[][]::new);
    }

    /** Tokens per cross-entropy pass: every token's logits are kept (vocab floats each), so passes stay small. */
    private static final int CE_TOKENS_PER_PASS = 512;

    /**
     * Mean negative log-likelihood (nats) of every token after the first in each window; the windows go through
     * the model a few at a time (up to {@link #CE_TOKENS_PER_PASS} tokens and the batch size), which gives each
     * window's logits the same bits as a pass of its own.
     */
    private double crossEntropy(List<Intervention> interventions) {
        Hooks hooks = chain(interventions);
        List<int[]> windows = in.ceWindows();
        double nll = 0;
        long n = 0;
        for (int start = 0, end; start < windows.size(); start = end) {
            end = start + 1;
            int tokens = windows.get(start).length;
            while (end < windows.size() && end - start < in.batchSize() && tokens + windows.get(end).length <= CE_TOKENS_PER_PASS) {
                tokens += windows.get(end++).length;
            }
            TokenBatch batch = TokenBatch.of(windows.subList(start, end));
            FloatTensor logits = m.model().forward(batch, ForwardOptions.full(), hooks);
            for (int s = 0; s < batch.size(); s++) {
                int[] w = windows.get(start + s);
                for (int t = 0; t + 1 < w.length; t++) {
                    int off = (batch.offsets()[s] + t) * vocab;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < vocab; j++) max = Math.max(max, logits.data()[off + j]);
                    double sum = 0;
                    for (int j = 0; j < vocab; j++) sum += Math.exp(logits.data()[off + j] - max);
                    nll += max + Math.log(sum) - logits.data()[off + w[t + 1]];
                    n++;
                }
            }
        }
        return nll / n;
    }

    static double[] logSoftmax(float[] z, int off, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, z[off + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(z[off + i] - max);
        double lse = max + Math.log(sum);
        double[] out = new double[n];
        for (int i = 0; i < n; i++) out[i] = z[off + i] - lse;
        return out;
    }

    private static double[] mean(double[][] rows) {
        double[] mu = new double[rows[0].length];
        for (double[] r : rows) for (int j = 0; j < mu.length; j++) mu[j] += r[j] / rows.length;
        return mu;
    }
}
