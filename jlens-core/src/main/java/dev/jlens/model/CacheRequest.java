package dev.jlens.model;

import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;

/**
 * What {@link HookedModel#runWithCache} collects: which hooks, pooled how, run in batches of how many
 * prompts, with or without logits. Start from {@link #of} and change only what differs from the defaults
 * (mean pooling, 16 prompts a batch, no logits, no progress):
 * <pre>{@code
 * ActivationCache cache = model.runWithCache(prompts,
 *         CacheRequest.of("blocks.*.hook_resid_post").pooling(Pooling.LAST).batchSize(8));
 * FloatTensor layer3 = cache.pooled("blocks.3.hook_resid_post");   // [prompts, d_model]
 * }</pre>
 *
 * @param into a cache to fill (e.g. one with a view such as per-token centring, or post-instruction counts),
 *             or null for a new one with {@code pooling}
 */
public record CacheRequest(HookPattern hooks, Pooling pooling, int batchSize, boolean logits,
                           ProgressListener progress, ActivationCache into) {

    public static final int DEFAULT_BATCH_SIZE = 16;

    public CacheRequest {
        if (batchSize < 1) throw new IllegalArgumentException("batch size must be at least 1, got " + batchSize);
        if (into != null) pooling = into.pooling();
    }

    /** The hooks a pattern such as {@code "blocks.*.hook_resid_post,hook_embed"} selects, with the defaults. */
    public static CacheRequest of(String pattern) {
        return of(HookPattern.parse(pattern));
    }

    public static CacheRequest of(HookPattern pattern) {
        return new CacheRequest(pattern, Pooling.MEAN, DEFAULT_BATCH_SIZE, false, ProgressListener.NONE, null);
    }

    public CacheRequest pooling(Pooling p) {
        return new CacheRequest(hooks, p, batchSize, logits, progress, null);
    }

    public CacheRequest batchSize(int n) {
        return new CacheRequest(hooks, pooling, n, logits, progress, into);
    }

    /** Also keep the logits of every prompt, [len, vocab] each, under the name "logits". */
    public CacheRequest logits(boolean keep) {
        return new CacheRequest(hooks, pooling, batchSize, keep, progress, into);
    }

    public CacheRequest progress(ProgressListener p) {
        return new CacheRequest(hooks, pooling, batchSize, logits, p == null ? ProgressListener.NONE : p, into);
    }

    /** Fill this cache instead of a new one (its pooling applies). */
    public CacheRequest into(ActivationCache cache) {
        return new CacheRequest(hooks, cache.pooling(), batchSize, logits, progress, cache);
    }
}
