package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.generate.StopCheck;
import dev.jlens.hooks.Hooks;

import java.util.Arrays;

/**
 * A saved detector watching a generation: every token's residual at the detector's hook is scored inside the
 * generation's own forward pass (a hook, no second pass: the prompt's tokens on the first pass, then each new
 * token on the pass that feeds it to the KV cache), and the running score, the detector's aggregation of all
 * token scores so far (prompt and generated), is compared with the detector's threshold after every pass. So the
 * running score at any point is what {@link Detector#score} would give the text so far.
 *
 * <p>{@link Mode#STOP} ends the sequence at the first crossing (before another token is sampled; the crossing
 * token itself is part of the output, and every token before it is the one the unguarded generation makes);
 * {@link Mode#FLAG} only records it. A token is scored when it is fed back, so the last token of a sequence that
 * ends by length, end-of-sequence or a stop string is not scored: that would take a forward pass the generation
 * does not make.
 *
 * <p>Use: {@code generator.generate(prompts, config, guard.hooks(hooks), listener, guard.stopCheck())}, then
 * {@link #verdict(int)}. One guard per generation call; not thread-safe (the generation calls it from one thread).
 */
public final class GenerationGuard {

    public enum Mode {
        /** End the sequence at the first token whose running score crosses the threshold. */
        STOP,
        /** Only record the first crossing. */
        FLAG;

        public static Mode parse(String s) {
            for (Mode m : values()) if (m.name().equalsIgnoreCase(s.trim())) return m;
            throw new JlensException("--guard-mode \"" + s + "\": expected flag or stop");
        }
    }

    /** Hears every scored token: its running score and whether the threshold is crossed there. */
    @FunctionalInterface
    public interface Listener {
        Listener NONE = (sequence, position, generated, tokenScore, runningScore, crossed) -> {
        };

        /**
         * @param position     the token's index in the sequence (prompt tokens first)
         * @param generated    true for a generated token, false for a prompt token
         * @param tokenScore   the token's own calibrated score
         * @param runningScore the detector's score of the sequence up to and including this token
         * @param crossed      running score at or above the threshold (true from the first crossing on)
         */
        void onScore(int sequence, int position, boolean generated, double tokenScore, double runningScore, boolean crossed);
    }

    /**
     * What the guard saw on one sequence.
     *
     * @param tripped        whether the running score crossed the threshold
     * @param position       index in the sequence of the first crossing token (-1 if none)
     * @param generatedIndex index among the generated tokens of that token (-1 if none, or if the prompt itself crossed)
     * @param score          the running score there (or the last running score when it never crossed)
     * @param scored         tokens scored
     */
    public record Verdict(boolean tripped, int position, int generatedIndex, double score, double threshold, int scored) {
    }

    private final Detector detector;
    private final Mode mode;
    private final Listener listener;
    private final int[] promptLength;
    private final double[][] raw;
    private final int[] count;
    private final double[] running;
    private final int[] crossedAt;

    /** @param promptLengths the token count of each prompt, in the order given to the generator */
    public GenerationGuard(Detector detector, Mode mode, int[] promptLengths, Listener listener) {
        if (detector.params().kind() == DetectorKind.MAHALANOBIS && detector.aggregation() != TokenAggregation.LAST
                && detector.aggregation().isActivationPooling()) {
            throw new JlensException("a Mahalanobis detector with " + detector.pooling().cliName() + " pooling cannot guard a "
                    + "generation: its score is the distance of the mean activation, not a running function of token scores; "
                    + "use a logistic or diff-means detector");
        }
        if (detector.scope() != PoolScope.ALL && detector.scope() != PoolScope.RESPONSE) {
            throw new JlensException("a detector pooled over --pool-scope " + detector.scope().cliName() + " cannot guard a "
                    + "generation: its tokens are part of the prompt, so it has nothing to add while the model answers; "
                    + "score the prompt with jlens detect, or guard with a detector of scope all or response");
        }
        this.detector = detector;
        this.mode = mode;
        this.listener = listener == null ? Listener.NONE : listener;
        this.promptLength = promptLengths.clone();
        int n = promptLengths.length;
        raw = new double[n][];
        for (int s = 0; s < n; s++) raw[s] = new double[Math.max(16, 2 * promptLengths[s])];
        count = new int[n];
        running = new double[n];
        Arrays.fill(running, Double.NaN);
        crossedAt = new int[n];
        Arrays.fill(crossedAt, -1);
    }

    /**
     * The first position the running score aggregates: 0, or for a response detector the first generated token
     * (the answer is what the model writes after the prompt).
     */
    private int from(int sequence) {
        return detector.scope() == PoolScope.RESPONSE ? promptLength[sequence] : 0;
    }

    /** The given hooks with the guard's scoring hook added on the detector's hook point. */
    public Hooks hooks(Hooks base) {
        Hooks h = base == null ? Hooks.none() : base;
        String hook = detector.hook();
        DetectorParams p = detector.params();
        TokenAggregation agg = detector.aggregation();
        return h.with(hook::equals, (point, value, batch) -> {
            int d = value.cols();
            for (int s = 0; s < batch.size() && s < raw.length; s++) {
                int len = batch.lengths()[s];
                if (len == 0) continue;
                int off = batch.offsets()[s], past = batch.pastLengths()[s];
                int before = count[s];
                // Rows are stored by position: with the KV cache each pass brings only the new token, without it
                // (--no-kv-cache) every pass brings the whole sequence again and earlier positions are rewritten.
                for (int t = 0; t < len; t++) {
                    int pos = past + t;
                    if (pos >= raw[s].length) raw[s] = Arrays.copyOf(raw[s], Math.max(2 * raw[s].length, pos + 1));
                    raw[s][pos] = p.raw(value.data(), (off + t) * d);
                }
                count[s] = Math.max(count[s], past + len);
                // Running score after this pass: the detector's own aggregation of every token so far (a response
                // detector: of every generated token so far; none yet on the prompt's pass).
                int from = from(s);
                double logit = count[s] > from ? p.logit(agg.aggregate(Arrays.copyOfRange(raw[s], from, count[s]))) : Double.NaN;
                running[s] = logit;
                boolean crossed = !Double.isNaN(logit) && p.flagged(logit);
                if (crossed && crossedAt[s] < 0) crossedAt[s] = count[s] - 1;
                for (int pos = before; pos < count[s]; pos++) {
                    boolean last = pos == count[s] - 1;
                    listener.onScore(s, pos, pos >= promptLength[s], DetectorParams.probabilityOfLogit(p.logit(raw[s][pos])),
                            last && !Double.isNaN(logit) ? DetectorParams.probabilityOfLogit(logit) : Double.NaN,
                            last && crossedAt[s] >= 0);
                }
            }
            return value;
        });
    }

    /** Stops a sequence once its running score has crossed, in {@link Mode#STOP}; never in {@link Mode#FLAG}. */
    public StopCheck stopCheck() {
        return s -> mode == Mode.STOP && s < crossedAt.length && crossedAt[s] >= 0;
    }

    public Verdict verdict(int sequence) {
        int pos = crossedAt[sequence];
        int gen = pos >= promptLength[sequence] ? pos - promptLength[sequence] : -1;
        double thr = detector.params().thresholdProbability();
        double score = Double.isNaN(running[sequence]) ? Double.NaN : DetectorParams.probabilityOfLogit(running[sequence]);
        if (pos >= 0) {
            // the running score at the crossing token, not at the end
            score = DetectorParams.probabilityOfLogit(detector.params().logit(
                    detector.aggregation().aggregate(Arrays.copyOfRange(raw[sequence], from(sequence), pos + 1))));
        }
        return new Verdict(pos >= 0, pos, gen, score, thr, count[sequence]);
    }

    /** The raw scores of every token scored so far in one sequence. */
    public double[] tokenRaw(int sequence) {
        return Arrays.copyOf(raw[sequence], count[sequence]);
    }

    public Detector detector() {
        return detector;
    }

    public Mode mode() {
        return mode;
    }
}
