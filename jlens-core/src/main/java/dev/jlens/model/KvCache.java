package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The keys and values (after RoPE) of every token a causal model has already seen, per sequence and layer, so
 * that a forward pass over only the new tokens gives the same numbers as a pass over the whole sequence.
 * Sequence s of a batch continues the cache's sequence s: the batch's {@code pastLengths} must equal the
 * cached lengths ({@link #batch} builds such a batch). A sequence may bring no new tokens in a step (length
 * 0), which is how batched generation keeps finished sequences in place.
 *
 * <p>A forward pass writes the new keys behind each sequence's cached ones and only advances the lengths
 * when it completes, so a pass that fails half-way leaves the cache as it was. Not thread-safe: one forward
 * pass at a time per cache.
 */
public final class KvCache {

    /** One sequence: per layer a growing [capacity, width] block of keys and one of values. */
    private static final class Slot {
        float[][] keys;
        float[][] values;
        int length;
        int width = -1;

        void ensure(int layers, int width) {
            if (keys == null) {
                keys = new float[layers][];
                values = new float[layers][];
            }
            if (this.width < 0) this.width = width;
            if (this.width != width) {
                throw new IllegalStateException("KV cache holds keys of width " + this.width + ", the model gives " + width);
            }
        }

        void write(int layer, float[] src, int srcRow, int at, int rows, boolean isKey) {
            float[][] store = isKey ? keys : values;
            int need = (at + rows) * width;
            float[] buf = store[layer];
            if (buf == null || buf.length < need) {
                int cap = Math.max(need, buf == null ? 16 * width : 2 * buf.length);
                buf = buf == null ? new float[cap] : Arrays.copyOf(buf, cap);
                store[layer] = buf;
            }
            System.arraycopy(src, srcRow * width, buf, at * width, rows * width);
        }
    }

    private final List<Slot> slots;

    private KvCache(List<Slot> slots) {
        this.slots = slots;
    }

    /** An empty cache for n sequences. */
    public static KvCache create(int sequences) {
        if (sequences < 1) throw new IllegalArgumentException("a KV cache needs at least one sequence, got " + sequences);
        List<Slot> s = new ArrayList<>();
        for (int i = 0; i < sequences; i++) s.add(new Slot());
        return new KvCache(List.copyOf(s));
    }

    public int size() {
        return slots.size();
    }

    /** Tokens cached for sequence s. */
    public int length(int s) {
        return slots.get(s).length;
    }

    public int[] lengths() {
        int[] l = new int[slots.size()];
        for (int s = 0; s < l.length; s++) l[s] = slots.get(s).length;
        return l;
    }

    /** A batch of new tokens, sequence s continuing cached sequence s (an empty array: nothing new for s). */
    public TokenBatch batch(List<int[]> newTokens) {
        if (newTokens.size() != slots.size()) {
            throw new IllegalArgumentException(newTokens.size() + " sequences for a KV cache of " + slots.size());
        }
        TokenBatch b = TokenBatch.of(newTokens);
        return new TokenBatch(b.tokens(), b.offsets(), b.lengths(), lengths());
    }

    /**
     * Starts one forward pass over {@code batch}: checks that it continues this cache and that every block
     * will run (a cache filled for only some layers could not serve the next step).
     */
    public Step begin(TokenBatch batch, int blocksToRun, int nLayers) {
        if (blocksToRun != nLayers) {
            throw new JlensException("a forward pass with a KV cache must run all " + nLayers + " blocks; this one stops after "
                    + blocksToRun);
        }
        if (batch.size() != slots.size()) {
            throw new JlensException("batch of " + batch.size() + " sequences for a KV cache of " + slots.size());
        }
        for (int s = 0; s < slots.size(); s++) {
            if (batch.pastLengths()[s] != slots.get(s).length) {
                throw new JlensException("sequence " + s + " of the batch says " + batch.pastLengths()[s]
                        + " tokens came before it, but the KV cache holds " + slots.get(s).length);
            }
        }
        return new Step(batch, nLayers);
    }

    /** Packed keys and values of one layer for the attention kernel, laid out as {@link Step#layout()} says. */
    public record Keys(float[] keys, float[] values) {
    }

    /** One forward pass's use of the cache. */
    public final class Step {
        private final TokenBatch batch;
        private final int nLayers;
        private final AttentionLayout layout;

        private Step(TokenBatch batch, int nLayers) {
            this.batch = batch;
            this.nLayers = nLayers;
            int n = batch.size();
            int[] kOff = new int[n], kLen = new int[n];
            int at = 0;
            for (int s = 0; s < n; s++) {
                kOff[s] = at;
                kLen[s] = batch.pastLengths()[s] + batch.lengths()[s];
                at += kLen[s];
            }
            this.layout = new AttentionLayout(batch.offsets(), batch.lengths(), kOff, kLen);
        }

        /** Queries are the batch's rows; the keys of sequence s are its cached ones followed by its new ones. */
        public AttentionLayout layout() {
            return layout;
        }

        /**
         * Stores the new rows' keys and values [batch rows, width] of one layer and returns all keys and values
         * of the batch's sequences, packed per {@link #layout()}.
         */
        public Keys append(int layer, float[] newKeys, float[] newValues, int width) {
            int n = batch.size();
            for (int s = 0; s < n; s++) {
                Slot slot = slots.get(s);
                slot.ensure(nLayers, width);
                int len = batch.lengths()[s], off = batch.offsets()[s];
                if (len == 0) continue;
                slot.write(layer, newKeys, off, slot.length, len, true);
                slot.write(layer, newValues, off, slot.length, len, false);
            }
            if (n == 1) {
                // The kernel reads only kLen rows from offset 0, so the slot's own (larger) buffers serve as is.
                Slot only = slots.getFirst();
                if (only.keys[layer] == null) return new Keys(new float[0], new float[0]);
                return new Keys(only.keys[layer], only.values[layer]);
            }
            int total = 0;
            for (int l : layout.kLen()) total += l;
            float[] k = new float[total * width], v = new float[total * width];
            for (int s = 0; s < n; s++) {
                Slot slot = slots.get(s);
                int rows = layout.kLen()[s];
                if (rows == 0) continue;
                System.arraycopy(slot.keys[layer], 0, k, layout.kOff()[s] * width, rows * width);
                System.arraycopy(slot.values[layer], 0, v, layout.kOff()[s] * width, rows * width);
            }
            return new Keys(k, v);
        }

        /** Marks the new tokens as cached; call once, after every layer has been appended. */
        public void commit() {
            for (int s = 0; s < batch.size(); s++) slots.get(s).length += batch.lengths()[s];
        }
    }

    /** Values in the attention-pattern hook of a pass: per sequence [heads, new tokens, all tokens]. */
    /** The attention layout of one forward pass: its step's with a cache ({@code step} not null), else self-attention. */
    public static AttentionLayout layout(Step step, TokenBatch batch) {
        return step == null ? AttentionLayout.selfAttention(batch.offsets(), batch.lengths()) : step.layout();
    }

    /** One layer's keys and values for attention: the batch's own without a cache, else all the step holds. */
    public static Keys keys(Step step, int layer, float[] newKeys, float[] newValues, int width) {
        return step == null ? new Keys(newKeys, newValues) : step.append(layer, newKeys, newValues, width);
    }

    public static int patternSize(AttentionLayout layout, int heads) {
        int n = 0;
        for (int s = 0; s < layout.sequences(); s++) n += heads * layout.qLen()[s] * layout.kLen()[s];
        return n;
    }
}
