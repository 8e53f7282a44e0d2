package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.List;

/**
 * The keys and values (after RoPE) of every token a causal model has already seen, per sequence and layer, so
 * that a forward pass over only the new tokens gives the same numbers as a pass over the whole sequence.
 * They live on the backend that runs the model (heap for the CPU, device memory for a GPU backend).
 * Sequence s of a batch continues the cache's sequence s: the batch's {@code pastLengths} must equal the
 * cached lengths ({@link #batch} builds such a batch). A sequence may bring no new tokens in a step (length
 * 0), which is how batched generation keeps finished sequences in place.
 *
 * <p>Storage: per layer one keys tensor and one values tensor for all sequences, sequence s owning the region
 * of rows [s·capacity, (s+1)·capacity). The attention kernel reads each sequence's keys where they are (its
 * {@link AttentionLayout} key offset points into the region), so a decoding step copies only its new rows
 * into the cache, never the cache itself; when a sequence outgrows the capacity every layer is re-laid out
 * once at double the capacity, which keeps the copying amortised to a constant per cached token.
 *
 * <p>Sliding windows: on a layer with a window, only the last window − 1 tokens can be seen by a later query.
 * Row r of sequence s's region on layer l holds token {@code base[l][s] + r}; rows before {@code live[l][s]}
 * are dead. Once the dead rows are at least as many as the live ones, the live ones move to the front of the
 * region (a copy that cannot overlap), so a sliding layer holds about twice its window however long the
 * sequence grows. Attention reads only the live rows: the window mask depends on how far a key is from its
 * query, the same counted from any start (an attention pattern hooked there covers the keys held).
 *
 * <p>A forward pass writes the new keys behind each sequence's cached ones and only advances the lengths
 * when it completes, so a pass that fails half-way leaves the cache as it was. Not thread-safe: one forward
 * pass at a time per cache.
 */
public final class KvCache {

    private final int sequences;
    /** Rows per sequence to hold from the first pass on (0: grow as needed). */
    private final int reserve;
    private final int[] lengths;
    /** Rows each sequence owns in the per-layer tensors (every layer is brought to it on its next append). */
    private int capacity;
    private DeviceTensor[] keys;
    private DeviceTensor[] values;
    /** [layer][sequence]: the token held in a region's row 0, and the region's first live row. */
    private int[][] base;
    private int[][] live;

    private KvCache(int sequences, int reserve) {
        this.sequences = sequences;
        this.reserve = reserve;
        this.lengths = new int[sequences];
    }

    /** An empty cache for n sequences that grows as they do. */
    public static KvCache create(int sequences) {
        return create(sequences, 0);
    }

    /**
     * An empty cache for n sequences that holds room for {@code reserveTokens} tokens of each from its first
     * pass on (a prompt plus the new tokens a generation may make). Growing re-lays out every layer and leaves
     * the old tensors as garbage, which on the heap means a copy at the next collection too: decoding 32
     * sequences of a 1B model, the growth that fell inside a timed run made it pause for up to a second. A
     * model whose every layer slides holds at most twice its widest window, whatever the reserve.
     */
    public static KvCache create(int sequences, int reserveTokens) {
        if (sequences < 1) throw new IllegalArgumentException("a KV cache needs at least one sequence, got " + sequences);
        if (reserveTokens < 0) throw new IllegalArgumentException("a KV cache reserve must be 0 or more tokens, got " + reserveTokens);
        return new KvCache(sequences, reserveTokens);
    }

    /**
     * {@code spare}, {@link #clear cleared}, when it holds as many sequences and has room for
     * {@code reserveTokens} of each; otherwise a new cache ({@link #create(int, int)}).
     */
    public static KvCache reuseOrCreate(KvCache spare, int sequences, int reserveTokens) {
        if (spare != null && spare.sequences == sequences && spare.capacity >= reserveTokens) {
            spare.clear();
            return spare;
        }
        return create(sequences, reserveTokens);
    }

    /** Rows each sequence has room for in every layer's tensors (0 before the first pass). */
    public int capacity() {
        return capacity;
    }

    public int size() {
        return sequences;
    }

    /** Tokens cached for sequence s. */
    public int length(int s) {
        return lengths[s];
    }

    public int[] lengths() {
        return lengths.clone();
    }

    /**
     * Forgets sequence s, so that its slot can start a new sequence (batched generation lets a new prompt
     * join where a finished one left). Its rows are overwritten by the next pass that brings it tokens.
     */
    public void reset(int s) {
        lengths[s] = 0;
        if (base == null) return;
        for (int l = 0; l < base.length; l++) {
            base[l][s] = 0;
            live[l][s] = 0;
        }
    }

    /**
     * Forgets every sequence and keeps the tensors, so the next generation of as many sequences, within this
     * cache's {@link #capacity}, allocates nothing. On the heap each new cache is garbage after its generation
     * (32 sequences of 31 tokens: 0.4 GB for Pythia-1.4B), and the young collections that copied the live one
     * cost that model 6-30 ms a decoding step (docs/PERFORMANCE.md). Like {@link #reset}, old rows are
     * overwritten before any query reads them.
     */
    public void clear() {
        for (int s = 0; s < sequences; s++) reset(s);
    }

    /** A batch of new tokens, sequence s continuing cached sequence s (an empty array: nothing new for s). */
    public TokenBatch batch(List<int[]> newTokens) {
        if (newTokens.size() != sequences) {
            throw new IllegalArgumentException(newTokens.size() + " sequences for a KV cache of " + sequences);
        }
        TokenBatch b = TokenBatch.of(newTokens);
        return new TokenBatch(b.tokens(), b.offsets(), b.lengths(), lengths());
    }

    /**
     * Keys (and values) of sequence s that layer l still attends: all its tokens on a global layer, at most
     * window − 1 on a layer with a sliding window.
     */
    public int liveKeys(int s, int layer) {
        return base == null ? 0 : used(layer, s) - live[layer][s];
    }

    /** Rows of sequence s's region on layer l in use (dead and live), before the pass's new ones. */
    private int used(int l, int s) {
        return lengths[s] - base[l][s];
    }

    /**
     * Starts one forward pass over {@code batch}: checks that it continues this cache and that every block
     * will run (a cache filled for only some layers could not serve the next step). {@code windows}: each
     * layer's sliding window in tokens, 0 for global attention.
     */
    Step begin(Backend backend, TokenBatch batch, int blocksToRun, int[] windows) {
        int nLayers = windows.length;
        if (blocksToRun != nLayers) {
            throw new JlensException("a forward pass with a KV cache must run all " + nLayers + " blocks; this one stops after "
                    + blocksToRun);
        }
        if (batch.size() != sequences) {
            throw new JlensException("batch of " + batch.size() + " sequences for a KV cache of " + sequences);
        }
        for (int s = 0; s < sequences; s++) {
            if (batch.pastLengths()[s] != lengths[s]) {
                throw new JlensException("sequence " + s + " of the batch says " + batch.pastLengths()[s]
                        + " tokens came before it, but the KV cache holds " + lengths[s]);
            }
        }
        if (keys == null) {
            keys = new DeviceTensor[nLayers];
            values = new DeviceTensor[nLayers];
            base = new int[nLayers][sequences];
            live = new int[nLayers][sequences];
        } else if (keys.length != nLayers) {
            throw new JlensException("KV cache holds " + keys.length + " layers, the model has " + nLayers);
        }
        int need = 0;
        for (int l = 0; l < nLayers; l++) {
            for (int s = 0; s < sequences; s++) need = Math.max(need, used(l, s) + batch.lengths()[s]);
        }
        if (need > capacity) capacity = Math.max(need, Math.max(Math.max(16, reserved(windows)), 2 * capacity));
        return new Step(backend, batch, windows.clone());
    }

    /** The reserve, or twice the widest window when every layer slides (a sliding layer never holds more). */
    private int reserved(int[] windows) {
        int widest = 0;
        for (int w : windows) {
            if (w == 0) return reserve;
            widest = Math.max(widest, w);
        }
        return Math.min(reserve, 2 * widest);
    }

    /** Keys and values of one layer for the attention kernel, laid out as {@code layout} says. */
    record Keys(DeviceTensor keys, DeviceTensor values, AttentionLayout layout) {
    }

    /** Layer l's tensor with room for {@code capacity} rows per sequence, its cached rows kept. */
    private DeviceTensor room(Backend backend, DeviceTensor buf, int l, int width) {
        if (buf != null && buf.cols() != width) {
            throw new IllegalStateException("KV cache holds keys of width " + buf.cols() + ", the model gives " + width);
        }
        if (buf != null && buf.rows() == sequences * capacity) return buf;
        DeviceTensor grown = backend.allocate(Math.multiplyExact(sequences, capacity), width);
        if (buf != null) {
            int old = buf.rows() / sequences;
            for (int s = 0; s < sequences; s++) {
                if (used(l, s) > 0) backend.copyRows(buf, s * old, grown, s * capacity, used(l, s));
            }
        }
        return grown;
    }

    /** One forward pass's use of the cache. */
    final class Step {
        private final Backend backend;
        private final TokenBatch batch;
        private final int[] windows;
        private final AttentionLayout layout;

        private Step(Backend backend, TokenBatch batch, int[] windows) {
            this.backend = backend;
            this.batch = batch;
            this.windows = windows;
            int[] kOff = new int[sequences], kLen = new int[sequences];
            for (int s = 0; s < sequences; s++) {
                kOff[s] = s * capacity;
                kLen[s] = batch.pastLengths()[s] + batch.lengths()[s];
            }
            this.layout = new AttentionLayout(batch.offsets(), batch.lengths(), kOff, kLen);
        }

        /** Queries are the batch's rows; the keys of sequence s are its cached ones followed by its new ones. */
        AttentionLayout layout() {
            return layout;
        }

        /**
         * Stores the new rows' keys and values [batch rows, width] of one layer behind each sequence's cached
         * ones and returns the layer's key and value tensors with the layout of the rows it still attends.
         */
        Keys append(int layer, DeviceTensor newKeys, DeviceTensor newValues) {
            keys[layer] = room(backend, keys[layer], layer, newKeys.cols());
            values[layer] = room(backend, values[layer], layer, newValues.cols());
            int[] kOff = new int[sequences], kLen = new int[sequences];
            for (int s = 0; s < sequences; s++) {
                int len = batch.lengths()[s], used = used(layer, s), region = s * capacity;
                kOff[s] = region + live[layer][s];
                kLen[s] = used - live[layer][s] + len;
                if (len == 0) continue;
                backend.copyRows(newKeys, batch.offsets()[s], keys[layer], region + used, len);
                backend.copyRows(newValues, batch.offsets()[s], values[layer], region + used, len);
            }
            return new Keys(keys[layer], values[layer], new AttentionLayout(layout.qOff(), layout.qLen(), kOff, kLen));
        }

        /** Marks the new tokens as cached and lets the sliding layers drop what no query will see again. */
        void commit() {
            for (int s = 0; s < sequences; s++) lengths[s] += batch.lengths()[s];
            for (int l = 0; l < windows.length; l++) {
                if (windows[l] == 0) continue;
                for (int s = 0; s < sequences; s++) slide(l, s, windows[l] - 1);
            }
        }

        private void slide(int l, int s, int keep) {
            int used = used(l, s);
            if (used - live[l][s] <= keep) return;
            live[l][s] = used - keep;
            if (live[l][s] < keep) return;
            int region = s * capacity;
            if (keep > 0) {
                backend.copyRows(keys[l], region + live[l][s], keys[l], region, keep);
                backend.copyRows(values[l], region + live[l][s], values[l], region, keep);
            }
            base[l][s] += live[l][s];
            live[l][s] = 0;
        }
    }
}
