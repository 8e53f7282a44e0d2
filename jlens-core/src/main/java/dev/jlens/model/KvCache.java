package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * The keys and values (after RoPE) of every token a causal model has already seen, per sequence and layer, so
 * that a forward pass over only the new tokens gives the same numbers as a pass over the whole sequence.
 * They live on the backend that runs the model (heap for the CPU, device memory for a GPU backend).
 * Sequence s of a batch continues the cache's sequence s: the batch's {@code pastLengths} must equal the
 * cached lengths ({@link #batch} builds such a batch). A sequence may bring no new tokens in a step (length
 * 0), which is how batched generation keeps finished sequences in place.
 *
 * <p>A forward pass writes the new keys behind each sequence's cached ones and only advances the lengths
 * when it completes, so a pass that fails half-way leaves the cache as it was. Not thread-safe: one forward
 * pass at a time per cache.
 */
public final class KvCache {

    /**
     * One sequence: per layer a growing [capacity, width] block of keys and one of values. Row r of layer l's
     * block holds token {@code base[l] + r}; rows before {@code live[l]} belong to tokens a sliding window no
     * longer shows to any future query and are never attended again.
     */
    private static final class Slot {
        DeviceTensor[] keys;
        DeviceTensor[] values;
        int[] base, live;
        int length;

        void ensure(int layers) {
            if (keys == null) {
                keys = new DeviceTensor[layers];
                values = new DeviceTensor[layers];
                base = new int[layers];
                live = new int[layers];
            }
        }

        /** Rows of layer l's block in use (dead and live), before the pass's new ones. */
        int rows(int l) {
            return length - base[l];
        }

        /** Room for {@code rows} rows of {@code width}, keeping what is cached; capacity doubles. */
        DeviceTensor room(Backend backend, DeviceTensor buf, int used, int rows, int width) {
            if (buf != null && buf.cols() != width) {
                throw new IllegalStateException("KV cache holds keys of width " + buf.cols() + ", the model gives " + width);
            }
            if (buf != null && buf.rows() >= rows) return buf;
            DeviceTensor grown = backend.allocate(Math.max(rows, Math.max(16, buf == null ? 0 : 2 * buf.rows())), width);
            if (buf != null && used > 0) backend.copyRows(buf, 0, grown, 0, used);
            return grown;
        }

        /**
         * After a pass on a layer with a sliding window: only the last window − 1 tokens can be seen by a later
         * query, so the rows before them die; once the dead rows are at least as many as the live ones, the
         * live ones move to the front (a copy that cannot overlap), so a block never holds more than about
         * twice the window however long the sequence grows, and a move costs no more than the steps that
         * filled the dead rows.
         */
        void slide(Backend backend, int l, int window) {
            int keep = window - 1, rows = rows(l);
            if (keys[l] == null || rows - live[l] <= keep) return;
            live[l] = rows - keep;
            if (live[l] < keep) return;
            if (keep > 0) {
                backend.copyRows(keys[l], live[l], keys[l], 0, keep);
                backend.copyRows(values[l], live[l], values[l], 0, keep);
            }
            base[l] += live[l];
            live[l] = 0;
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
     * Keys (and values) of sequence s that layer l still attends: all its tokens on a global layer, at most
     * window − 1 on a layer with a sliding window.
     */
    public int liveKeys(int s, int layer) {
        Slot slot = slots.get(s);
        return slot.keys == null ? 0 : slot.rows(layer) - slot.live[layer];
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
        if (batch.size() != slots.size()) {
            throw new JlensException("batch of " + batch.size() + " sequences for a KV cache of " + slots.size());
        }
        for (int s = 0; s < slots.size(); s++) {
            if (batch.pastLengths()[s] != slots.get(s).length) {
                throw new JlensException("sequence " + s + " of the batch says " + batch.pastLengths()[s]
                        + " tokens came before it, but the KV cache holds " + slots.get(s).length);
            }
        }
        return new Step(backend, batch, windows.clone());
    }

    /**
     * Keys and values of one layer for the attention kernel, laid out as {@code layout} says. On a sliding
     * layer the keys a cache no longer holds are left out, so the layout's key rows start later than the
     * sequence does: the window mask depends only on how far a key is from its query, which is the same
     * counted from any start. (An attention pattern hooked there covers the keys held, not all tokens.)
     */
    record Keys(DeviceTensor keys, DeviceTensor values, AttentionLayout layout) {
    }

    /** One forward pass's use of the cache. */
    final class Step {
        private final Backend backend;
        private final TokenBatch batch;
        private final int nLayers;
        private final int[] windows;
        private final AttentionLayout layout;

        private Step(Backend backend, TokenBatch batch, int[] windows) {
            this.backend = backend;
            this.batch = batch;
            this.nLayers = windows.length;
            this.windows = windows;
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
        AttentionLayout layout() {
            return layout;
        }

        /**
         * Stores the new rows' keys and values [batch rows, width] of one layer and returns all keys and values
         * of the batch's sequences, packed per {@link #layout()}.
         */
        Keys append(int layer, DeviceTensor newKeys, DeviceTensor newValues) {
            int n = batch.size(), width = newKeys.cols();
            int[] kOff = new int[n], kLen = new int[n];
            for (int s = 0; s < n; s++) {
                Slot slot = slots.get(s);
                slot.ensure(nLayers);
                int len = batch.lengths()[s], off = batch.offsets()[s], used = slot.rows(layer);
                kLen[s] = used - slot.live[layer] + len;
                kOff[s] = slot.live[layer];
                if (len == 0) continue;
                slot.keys[layer] = slot.room(backend, slot.keys[layer], used, used + len, width);
                slot.values[layer] = slot.room(backend, slot.values[layer], used, used + len, width);
                backend.copyRows(newKeys, off, slot.keys[layer], used, len);
                backend.copyRows(newValues, off, slot.values[layer], used, len);
            }
            if (n == 1) {
                // The kernel reads only the live rows, so the slot's own (larger) buffers serve as is.
                Slot only = slots.getFirst();
                AttentionLayout one = new AttentionLayout(layout.qOff(), layout.qLen(), kOff, kLen);
                if (only.keys[layer] == null) return new Keys(backend.allocate(0, width), backend.allocate(0, width), one);
                return new Keys(only.keys[layer], only.values[layer], one);
            }
            int total = 0;
            int[] packedOff = new int[n];
            for (int s = 0; s < n; s++) {
                packedOff[s] = total;
                total += kLen[s];
            }
            DeviceTensor k = backend.allocate(total, width), v = backend.allocate(total, width);
            for (int s = 0; s < n; s++) {
                Slot slot = slots.get(s);
                if (kLen[s] == 0) continue;
                backend.copyRows(slot.keys[layer], kOff[s], k, packedOff[s], kLen[s]);
                backend.copyRows(slot.values[layer], kOff[s], v, packedOff[s], kLen[s]);
            }
            return new Keys(k, v, new AttentionLayout(layout.qOff(), layout.qLen(), packedOff, kLen));
        }

        /** Marks the new tokens as cached; call once, after every layer has been appended. */
        void commit() {
            for (int s = 0; s < batch.size(); s++) {
                Slot slot = slots.get(s);
                slot.length += batch.lengths()[s];
                if (slot.keys == null) continue;
                for (int l = 0; l < nLayers; l++) if (windows[l] > 0) slot.slide(backend, l, windows[l]);
            }
        }
    }
}
