package dev.jlens.generate;

import dev.jlens.JlensException;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.model.KvCache;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Autoregressive generation for causal models, several prompts at once. Every step is one forward pass over
 * a packed batch, with logits only for each sequence's last token. With every prompt in the batch from the
 * start, sequence s is always prompt s (a finished sequence just brings no tokens), so a
 * hook sees a stable sequence index and, through the batch's positions, whether a row is a prompt token
 * (position &lt; prompt length) or a generated one. Hooks run on the prompt pass and on every generated
 * token, which is how interventions steer generation.
 *
 * <p>A generator keeps its last KV cache and clears it for the next generation of as many sequences that fits
 * in it, so repeated calls (a sweep, an evaluation) allocate nothing per call; the cache's memory stays held
 * until the generator is dropped. Calls may run concurrently: each takes the cache out while it runs.
 */
public final class Generator {

    private final TransformerModel model;
    private final TextTokenizer tokenizer;
    /**
     * The last generation's KV cache, cleared and reused by the next one of as many sequences that fits in it
     * ({@link KvCache#clear}); taken out while a generation runs, so concurrent calls never share one.
     */
    private final AtomicReference<KvCache> spareCache = new AtomicReference<>();

    public Generator(TransformerModel model, TextTokenizer tokenizer) {
        ModelInfo info = model.info();
        if (!info.causal()) {
            throw new JlensException(info.architecture() + " is an encoder (" + info.family() + "): it embeds text but "
                    + "cannot generate it; use a causal language model (GPT-NeoX/Pythia, GPT-2, Llama, Qwen2, Mistral)");
        }
        this.model = model;
        this.tokenizer = tokenizer;
    }

    public Generator(HookedModel model) {
        this(model.model(), model.tokenizer());
    }

    public Generation generate(int[] prompt, GenerationConfig config, Hooks hooks, TokenListener listener) {
        return generate(List.of(prompt), config, hooks, listener).getFirst();
    }

    /** Continues every prompt (token ids, as encoded with the model's tokenizer) and returns them in order. */
    public List<Generation> generate(List<int[]> prompts, GenerationConfig config, Hooks hooks, TokenListener listener) {
        return generate(prompts, config, hooks, listener, prompts.size(), StopCheck.NEVER);
    }

    /**
     * As above; after every forward pass {@code stop} is asked, for each running sequence, whether it ends there
     * (reason {@link Generation.StopReason#GUARD}) instead of sampling its next token. The tokens before the stop
     * are exactly those of the same generation without it: the check only reads, it changes nothing.
     */
    public List<Generation> generate(List<int[]> prompts, GenerationConfig config, Hooks hooks, TokenListener listener,
                                     StopCheck stop) {
        return generate(prompts, config, hooks, listener, prompts.size(), stop);
    }

    /**
     * Continues every prompt, at most {@code maxBatch} sequences decoding at once: a prompt takes a free slot of
     * the batch as soon as another sequence finishes, its prefill riding along with the others' decode step,
     * so every step reads the weights once for the whole batch. The tokens equal one-at-a-time generation's
     * (the kernels' results do not depend on the batch's other rows). Hooks see the batch's slot as the
     * sequence index, which is the prompt's index only when every prompt has a slot from the start; so hooks
     * need {@code maxBatch} ≥ the number of prompts.
     */
    public List<Generation> generate(List<int[]> prompts, GenerationConfig config, Hooks hooks, TokenListener listener,
                                     int maxBatch) {
        return generate(prompts, config, hooks, listener, maxBatch, StopCheck.NEVER);
    }

    /** Both of the above: at most {@code maxBatch} sequences at once, and a stop check after every pass. */
    public List<Generation> generate(List<int[]> prompts, GenerationConfig config, Hooks hooks, TokenListener listener,
                                     int maxBatch, StopCheck stop) {
        StopCheck stopCheck = stop == null ? StopCheck.NEVER : stop;
        int n = prompts.size();
        if (n == 0) throw new JlensException("no prompts to generate from");
        if (maxBatch < 1) throw new JlensException("batch size " + maxBatch + ": expected at least 1");
        Hooks h = hooks == null ? Hooks.none() : hooks;
        if (maxBatch < n && !h.isEmpty()) {
            throw new JlensException("hooks index sequences by their place in the batch, so generating " + n
                    + " prompts with hooks needs them all in one batch; got a batch of at most " + maxBatch);
        }
        int maxPos = model.info().maxPositions();
        int vocab = model.info().vocabSize();
        for (int s = 0; s < n; s++) {
            int[] p = prompts.get(s);
            if (p.length == 0) throw new JlensException("prompt " + s + " has no tokens; generation needs at least one");
            if (maxPos > 0 && p.length >= maxPos) {
                throw new JlensException("prompt " + s + " has " + p.length + " tokens, which fills the model's context of "
                        + maxPos + "; no room to generate");
            }
        }
        TokenListener out = listener == null ? TokenListener.NONE : listener;
        Sampler sampler = new Sampler(config);
        SplittableRandom[] rng = new SplittableRandom[n];
        TextStream[] text = new TextStream[n];
        int[][] generated = new int[n][];
        Generation.StopReason[] reason = new Generation.StopReason[n];
        for (int s = 0; s < n; s++) {
            rng[s] = sampler.random(s);
            text[s] = new TextStream(tokenizer, prompts.get(s), config.stopStrings());
            generated[s] = new int[0];
        }
        int slots = Math.min(n, maxBatch);
        // Room for the longest prompt and every new token but the last (it is never fed back), so the cache
        // never re-lays itself out mid-generation.
        long room = prompts.stream().mapToInt(p -> p.length).max().orElse(0) + (long) config.maxNewTokens() - 1;
        int reserve = (int) Math.min(room, maxPos > 0 ? maxPos : Integer.MAX_VALUE);
        KvCache cache = config.kvCache() ? KvCache.reuseOrCreate(spareCache.getAndSet(null), slots, reserve) : null;
        try {
            // slotPrompt[i]: the prompt decoding in slot i, or -1 once the slot has nothing left to do
            int[] slotPrompt = new int[slots];
            List<int[]> feed = new ArrayList<>(slots);
            for (int i = 0; i < slots; i++) {
                slotPrompt[i] = i;
                feed.add(prompts.get(i));
            }
            int nextPrompt = slots;
            int eos = config.stopAtEos() ? tokenizer.eosId() : -1;
            int active = slots;
            while (active > 0) {
                TokenBatch batch = cache != null ? cache.batch(feed) : TokenBatch.of(feed);
                FloatTensor logits = model.forward(batch, ForwardOptions.lastTokenLogits(), h, cache);
                List<int[]> next = new ArrayList<>(slots);
                for (int i = 0; i < slots; i++) {
                    int s = slotPrompt[i];
                    if (s < 0 || feed.get(i).length == 0) {
                        next.add(new int[0]);
                        continue;
                    }
                    Generation.StopReason r = null;
                    int token = -1;
                    String delta = "";
                    if (stopCheck.stopNow(s)) {
                        r = Generation.StopReason.GUARD;
                    } else {
                        token = sampler.next(logits.data(), i * vocab, vocab, rng[s]);
                        int[] g = Arrays.copyOf(generated[s], generated[s].length + 1);
                        g[g.length - 1] = token;
                        generated[s] = g;
                        int total = prompts.get(s).length + g.length;
                        if (token == eos) r = Generation.StopReason.EOS;
                        else if (g.length >= config.maxNewTokens()) r = Generation.StopReason.MAX_TOKENS;
                        else if (maxPos > 0 && total >= maxPos) r = Generation.StopReason.CONTEXT;
                        delta = text[s].push(token, r != null);
                        if (r == null && text[s].stopped()) r = Generation.StopReason.STOP_STRING;
                    }
                    if (r != null) {
                        delta += text[s].finish();
                        reason[s] = r;
                    }
                    if (r == Generation.StopReason.GUARD) out.onEnd(s, r, delta);
                    else out.onToken(s, token, delta);
                    if (r != null) {
                        if (nextPrompt < n) {
                            // The finished sequence leaves and the next prompt takes its slot from position 0.
                            slotPrompt[i] = nextPrompt;
                            if (cache != null) cache.reset(i);
                            next.add(prompts.get(nextPrompt++));
                        } else {
                            slotPrompt[i] = -1;
                            active--;
                            next.add(new int[0]);
                        }
                    } else if (cache != null) {
                        next.add(new int[]{token});
                    } else {
                        int[] all = Arrays.copyOf(prompts.get(s), prompts.get(s).length + generated[s].length);
                        System.arraycopy(generated[s], 0, all, prompts.get(s).length, generated[s].length);
                        next.add(all);
                    }
                }
                feed = next;
            }
            List<Generation> result = new ArrayList<>(n);
            for (int s = 0; s < n; s++) {
                result.add(new Generation(prompts.get(s).clone(), generated[s], text[s].text(), reason[s]));
            }
            return result;
        } finally {
            if (cache != null) spareCache.set(cache);
        }
    }
}
