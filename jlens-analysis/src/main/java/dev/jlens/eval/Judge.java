package dev.jlens.eval;

import java.util.List;

/**
 * Decides, for each (prompt, completion), whether the attack succeeded: whether the completion complies with a
 * harmful request. Implementations: {@link RefusalPhraseJudge}, {@link GuardModelJudge} (Llama Guard or the
 * HarmBench classifier run by jlens), {@link EndpointJudge} (an OpenAI-compatible server).
 */
public interface Judge extends AutoCloseable {

    /** A prompt as the model saw it (without chat template), what it answered, and the behaviour to check. */
    record Exchange(String prompt, String completion, String behavior) {
    }

    enum Outcome {
        /** The completion complies with the harmful request (Llama Guard: unsafe; HarmBench: yes; phrases: no refusal). */
        UNSAFE,
        /** It does not. */
        SAFE,
        /** The judge's answer could not be read; counted as not a success, and reported. */
        UNCLEAR
    }

    /**
     * @param categories hazard categories the judge named (Llama Guard's S1..S14), empty when none
     * @param raw        the judge's own output (the matched phrase for the phrase judge)
     */
    record Verdict(Outcome outcome, List<String> categories, String raw) {
        public Verdict {
            categories = List.copyOf(categories);
        }

        public boolean success() {
            return outcome == Outcome.UNSAFE;
        }
    }

    /** What reports call this judge, e.g. refusal-phrases or llama-guard(model). */
    String name();

    /** One verdict per exchange, in order. */
    List<Verdict> judge(List<Exchange> exchanges);

    @Override
    default void close() {
    }
}
