package dev.jlens.generate;

import dev.jlens.JlensException;

import java.util.List;

/**
 * How to pick each new token and when to stop. Temperature 0 is greedy decoding (the most likely token,
 * the lowest id among ties, as torch.argmax); above 0 the logits are divided by it, cut to the top-k tokens
 * (0: no cut), cut to the smallest set whose probability reaches top-p (1: no cut), in that order as Hugging
 * Face's logits warpers do, and sampled with a generator seeded from {@code seed} and the sequence's index.
 *
 * @param maxNewTokens most tokens to add per prompt
 * @param stopStrings  generation of a sequence ends when its new text contains one; the text is cut before it
 * @param stopAtEos    end a sequence at the tokenizer's end-of-sequence token (kept in the ids, not the text)
 * @param kvCache      reuse earlier tokens' keys and values (false re-runs the whole sequence every step;
 *                     same tokens, only slower; kept for checking the cache)
 */
public record GenerationConfig(int maxNewTokens, double temperature, int topK, double topP, long seed,
                               List<String> stopStrings, boolean stopAtEos, boolean kvCache) {

    public GenerationConfig {
        if (maxNewTokens < 1) throw new JlensException("--max-new-tokens " + maxNewTokens + ": expected at least 1");
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new JlensException("--temperature " + temperature + ": expected 0 (greedy) or a positive number");
        }
        if (topK < 0) throw new JlensException("--top-k " + topK + ": expected 0 (off) or a positive number of tokens");
        if (!(topP > 0 && topP <= 1)) throw new JlensException("--top-p " + topP + ": expected a probability in (0, 1]");
        stopStrings = stopStrings == null ? List.of() : List.copyOf(stopStrings);
        for (String s : stopStrings) {
            if (s.isEmpty()) throw new JlensException("--stop \"\": a stop string must not be empty");
        }
    }

    /** Greedy decoding of up to n tokens, stopping at end-of-sequence, with the KV cache. */
    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, 0, 0, 1, 0, List.of(), true, true);
    }

    public boolean greedyDecoding() {
        return temperature == 0;
    }

    public GenerationConfig withSampling(double temperature, int topK, double topP, long seed) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, stopStrings, stopAtEos, kvCache);
    }

    public GenerationConfig withStopStrings(List<String> stops) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, stops, stopAtEos, kvCache);
    }

    public GenerationConfig withStopAtEos(boolean stop) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, stopStrings, stop, kvCache);
    }

    public GenerationConfig withKvCache(boolean cache) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, seed, stopStrings, stopAtEos, cache);
    }
}
