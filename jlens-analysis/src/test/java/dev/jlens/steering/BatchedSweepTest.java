package dev.jlens.steering;

import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A sweep generates the samples of several settings in one batch, each setting steering only its own
 * sequences, and measures its cost with last-token logits and batched cross-entropy windows. Everything it
 * reports must equal what one prompt at a time with full logits gives (the way the sweep worked before),
 * bit for bit: the sample texts, the KL, the cross-entropy and the refusal log-odds.
 */
class BatchedSweepTest {

    @Test
    void batchedSweepEqualsOnePromptAtATime() {
        PromptSet happy = PromptSets.load(StoriesSteeringTest.resource("happy.txt"), null, "happy");
        PromptSet sad = PromptSets.load(StoriesSteeringTest.resource("sad.txt"), null, "sad");
        try (HookedModel m = TestModels.load("stories260k")) {
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("blocks.*.hook_resid_pre"),
                    TokenPosition.parseList("last"), DirectionMethod.DIFF_MEANS, 16, 1.0);
            DirectionSet set = DirectionFinder.compute(m, happy.filterSplit("train"), sad.filterSplit("train"), opts,
                    ProgressListener.NONE, null, "test");
            List<int[]> eval = encode(m, happy.filterSplit("val").texts().subList(0, 4));
            List<int[]> cost = encode(m, PromptSets.builtin("harmless").filterSplit("val").texts().subList(0, 4));
            List<int[]> windows = HarmlessCorpus.windows(m, 40, 240);
            int[] refusalTokens = {3, 17, 101, 250};
            List<String> samplePrompts = happy.filterSplit("val").texts().subList(0, 2);
            // Batch size 5 with 2 samples: settings generate two at a time (4 sequences per step), and the
            // last group holds one setting; the cross-entropy windows go through in passes of several.
            SteeringEvaluator ev = new SteeringEvaluator(m, new SteeringEvaluator.Inputs(eval, cost, windows,
                    encode(m, happy.filterSplit("train").texts()), encode(m, sad.filterSplit("train").texts()), refusalTokens, 5));
            DirectionChoice choice = DirectionChoice.resolve(set, "resid_pre", "last", null);
            SteeringSweep.Config cfg = new SteeringSweep.Config(Intervention.Mode.ADD, set, choice, List.of(1, 3),
                    SteeringSweep.parseAlphas("2x,8x", Intervention.Mode.ADD), TokenScope.BOTH, null,
                    SteeringSweep.EffectMetric.REFUSAL, true, samplePrompts.size(), 10);
            List<SteeringSweep.Row> rows = SteeringSweep.run(m, ev, cfg, samplePrompts, ProgressListener.NONE, null);
            assertEquals(5, rows.size());

            Generator gen = new Generator(m);
            Set<String> distinct = new HashSet<>();
            for (SteeringSweep.Row row : rows) {
                List<Intervention> ivs = SteeringSweep.interventions(m, cfg, row.setting(), null);
                for (int j = 0; j < samplePrompts.size(); j++) {
                    int[] ids = m.encode(samplePrompts.get(j), null);
                    Hooks hooks = Hooks.none();
                    for (Intervention iv : ivs) hooks = iv.addTo(hooks, new int[]{ids.length});
                    Generation alone = gen.generate(List.of(ids), GenerationConfig.greedy(10), hooks, null).getFirst();
                    assertEquals(alone.text(), row.samples().get(j).text(), "setting " + row.setting() + ", sample " + j);
                    distinct.add(alone.text());
                }
                Hooks steer = Hooks.none();
                for (Intervention iv : ivs) steer = iv.addTo(steer, null);
                SteeringEvaluator.Metrics mt = row.metrics();
                assertEquals(kl(m, cost, Hooks.none(), steer), mt.kl(), 0.0, "KL of " + row.setting());
                assertEquals(crossEntropy(m, windows, steer), mt.ce(), 0.0, "cross-entropy of " + row.setting());
                assertEquals(refusal(m, eval, steer, refusalTokens), mt.refusalLogOdds(), 0.0, "refusal of " + row.setting());
            }
            // The settings steer differently, so a sample given another setting's edit would have been caught.
            assertTrue(distinct.size() > samplePrompts.size(), "the settings should not all generate the same: " + distinct);
        }
    }

    private static double[] lastLogProbsAlone(HookedModel m, int[] prompt, Hooks hooks) {
        int vocab = m.info().vocabSize();
        FloatTensor logits = m.model().forward(TokenBatch.single(prompt), ForwardOptions.full(), hooks);
        return SteeringEvaluator.logSoftmax(logits.data(), (prompt.length - 1) * vocab, vocab);
    }

    private static double kl(HookedModel m, List<int[]> prompts, Hooks base, Hooks steered) {
        double sum = 0;
        for (int[] p : prompts) {
            double[] a = lastLogProbsAlone(m, p, base), b = lastLogProbsAlone(m, p, steered);
            double k = 0;
            for (int j = 0; j < a.length; j++) k += Math.exp(a[j]) * (a[j] - b[j]);
            sum += Math.max(0, k);
        }
        return sum / prompts.size();
    }

    private static double crossEntropy(HookedModel m, List<int[]> windows, Hooks hooks) {
        int vocab = m.info().vocabSize();
        double nll = 0;
        long n = 0;
        for (int[] w : windows) {
            float[] z = m.model().forward(TokenBatch.single(w), ForwardOptions.full(), hooks).data();
            for (int t = 0; t + 1 < w.length; t++) {
                int off = t * vocab;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < vocab; j++) max = Math.max(max, z[off + j]);
                double sum = 0;
                for (int j = 0; j < vocab; j++) sum += Math.exp(z[off + j] - max);
                nll += max + Math.log(sum) - z[off + w[t + 1]];
                n++;
            }
        }
        return nll / n;
    }

    private static double refusal(HookedModel m, List<int[]> prompts, Hooks hooks, int[] tokens) {
        int vocab = m.info().vocabSize();
        double sum = 0;
        for (int[] p : prompts) {
            float[] z = m.model().forward(TokenBatch.single(p), ForwardOptions.full(), hooks).data();
            sum += Refusal.logOdds(z, (p.length - 1) * vocab, vocab, tokens);
        }
        return sum / prompts.size();
    }

    private static List<int[]> encode(HookedModel m, List<String> texts) {
        List<int[]> out = new ArrayList<>();
        for (String t : texts) out.add(m.encode(t, null));
        return out;
    }
}
