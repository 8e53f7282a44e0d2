package dev.jlens.instruments;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.CacheRequest;
import dev.jlens.model.HookedModel;
import dev.jlens.model.Readout;
import dev.jlens.tensor.FloatTensor;

import java.util.ArrayList;
import java.util.List;

/**
 * The logit lens: the residual stream before every block and after the last one, read out through the final
 * norm and the unembedding as if the model stopped there (TransformerLens' {@code accumulated_resid(apply_ln=True)}
 * followed by the unembedding). It answers "at which layer does the next-token prediction turn to X?".
 * The last entry is the model's own logits.
 * <pre>{@code
 * try (HookedModel m = ModelLoader.load("../shared/fixtures/gpt2_tiny", null)) {
 *     int[] ids = m.encode("The cat sat on the", null);
 *     int[] tokens = TokenChoice.parse(m.tokenizer(), " mat, floor", m.info().vocabSize(), "--tokens");
 *     LogitLens.Result r = LogitLens.run(m, ids, new LogitLens.Options(LogitLens.Scale.OWN, 5, tokens, false));
 *     for (int l = 0; l < r.layers().size(); l++)
 *         System.out.println(r.layers().get(l) + ": log P(" + tokens[0] + ") = " + r.tokenLogProbs()[l][0][0]);
 * }
 * }</pre>
 */
public final class LogitLens {

    private LogitLens() {
    }

    /** Which divisor the final norm uses on an earlier layer's residual. */
    public enum Scale {
        /** Each layer's residual is normalised with its own statistics (the usual logit lens). */
        OWN("own"),
        /**
         * Every layer is divided by the final residual's ln_final.hook_scale (TransformerLens' apply_ln_to_stack
         * with a cache), so the readout is linear in the residual and adds up across components.
         */
        FINAL("final");

        private final String cliName;

        Scale(String cliName) {
            this.cliName = cliName;
        }

        public String cliName() {
            return cliName;
        }

        public static Scale parse(String s) {
            for (Scale v : values()) if (v.cliName.equalsIgnoreCase(s)) return v;
            throw new JlensException("--scale \"" + s + "\": expected own (each layer's own norm statistics) or final "
                    + "(the final residual's ln_final.hook_scale)");
        }
    }

    /**
     * @param topK          tokens listed per layer and position
     * @param tokens        chosen token ids whose log-probability and rank are followed (may be empty)
     * @param allPositions  every position, or only the last
     */
    public record Options(Scale scale, int topK, int[] tokens, boolean allPositions) {
        public Options {
            if (topK < 1) throw new JlensException("--top-k " + topK + ": expected at least 1");
            tokens = tokens == null ? new int[0] : tokens.clone();
        }
    }

    /**
     * Per readout layer (index l of {@link #layers}) and reported position (index i of {@link #positions}):
     * the top-k token ids and their log-probabilities, and each chosen token's log-probability and rank
     * (0 = the most likely token).
     */
    public record Result(List<String> layers, int[] positions, int[] tokens, int[][][] topIds, float[][][] topLogProbs,
                         float[][][] tokenLogProbs, int[][][] tokenRanks) {
    }

    /** The hooks read: blocks.0..L-1.hook_resid_pre and the last block's hook_resid_post. */
    public static List<String> layerHooks(int nLayers) {
        List<String> l = new ArrayList<>();
        for (int i = 0; i < nLayers; i++) l.add("blocks." + i + ".hook_resid_pre");
        l.add("blocks." + (nLayers - 1) + ".hook_resid_post");
        return l;
    }

    /** The lens logits [len, vocab] of each readout layer, in the order of {@link #layerHooks}. */
    public static List<FloatTensor> logits(HookedModel m, int[] ids, Scale scale) {
        Readout readout = m.model().readout();
        List<String> hooks = layerHooks(m.info().nLayers());
        ActivationCache cache = m.runWithCache(List.of(ids), CacheRequest.of(String.join(",", hooks)).pooling(Pooling.ALL).batchSize(1));
        float[] finalScale = scale == Scale.FINAL ? readout.scale(cache.perPrompt(hooks.getLast()).get(0)) : null;
        List<FloatTensor> out = new ArrayList<>();
        for (String h : hooks) out.add(readoutOf(readout, cache.perPrompt(h).get(0), finalScale));
        return out;
    }

    private static FloatTensor readoutOf(Readout readout, FloatTensor resid, float[] finalScale) {
        return finalScale == null ? readout.logits(resid) : readout.logitsOfNormalized(readout.normalizeWith(resid, finalScale));
    }

    public static Result run(HookedModel m, int[] ids, Options o) {
        Readout readout = m.model().readout();
        int vocab = readout.vocab();
        for (int t : o.tokens()) {
            if (t < 0 || t >= vocab) throw new JlensException("--tokens: id " + t + " is outside the vocabulary 0.." + (vocab - 1));
        }
        int k = Math.min(o.topK(), vocab);
        List<String> hooks = layerHooks(m.info().nLayers());
        int[] positions = o.allPositions() ? java.util.stream.IntStream.range(0, ids.length).toArray() : new int[]{ids.length - 1};
        int nl = hooks.size(), np = positions.length, nt = o.tokens().length;
        int[][][] topIds = new int[nl][np][];
        float[][][] topLp = new float[nl][np][], tokLp = new float[nl][np][nt];
        int[][][] tokRank = new int[nl][np][nt];
        List<FloatTensor> all = logits(m, ids, o.scale());
        for (int l = 0; l < nl; l++) {
            float[] lg = all.get(l).data();
            for (int i = 0; i < np; i++) {
                int off = positions[i] * vocab;
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) max = Math.max(max, lg[off + v]);
                double sum = 0;
                for (int v = 0; v < vocab; v++) sum += Math.exp(lg[off + v] - max);
                double logZ = max + Math.log(sum);
                int[] top = topK(lg, off, vocab, k);
                topIds[l][i] = top;
                topLp[l][i] = new float[k];
                for (int j = 0; j < k; j++) topLp[l][i][j] = (float) (lg[off + top[j]] - logZ);
                for (int j = 0; j < nt; j++) {
                    float x = lg[off + o.tokens()[j]];
                    tokLp[l][i][j] = (float) (x - logZ);
                    int rank = 0;
                    for (int v = 0; v < vocab; v++) if (lg[off + v] > x) rank++;
                    tokRank[l][i][j] = rank;
                }
            }
            all.set(l, null);
        }
        return new Result(List.copyOf(hooks), positions, o.tokens(), topIds, topLp, tokLp, tokRank);
    }

    /** The k largest entries of logits[off .. off+vocab), largest first (ties: lower id first). */
    static int[] topK(float[] logits, int off, int vocab, int k) {
        int[] best = new int[k];
        int n = 0;
        for (int v = 0; v < vocab; v++) {
            float x = logits[off + v];
            if (n == k && x <= logits[off + best[k - 1]]) continue;
            int at = n < k ? n++ : k - 1;
            while (at > 0 && logits[off + best[at - 1]] < x) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = v;
        }
        return best;
    }
}
