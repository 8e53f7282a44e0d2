package dev.jlens.hooks;

import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * The hooks of one forward pass: an immutable list of (which points, hook) pairs. Models ask
 * {@link #wants(HookPoint)} before materialising an optional activation, then call {@link #fire}.
 */
public final class Hooks {

    private record Entry(Predicate<String> filter, Hook hook) {
    }

    private static final Hooks NONE = new Hooks(List.of());

    private final List<Entry> entries;

    private Hooks(List<Entry> entries) {
        this.entries = entries;
    }

    public static Hooks none() {
        return NONE;
    }

    public Hooks with(String pattern, Hook hook) {
        HookPattern p = HookPattern.parse(pattern);
        return with(p::matches, hook);
    }

    public Hooks with(Predicate<String> filter, Hook hook) {
        List<Entry> list = new ArrayList<>(entries);
        list.add(new Entry(filter, hook));
        return new Hooks(List.copyOf(list));
    }

    public boolean isEmpty() {
        return entries.isEmpty();
    }

    public boolean wants(HookPoint point) {
        for (Entry e : entries) if (e.filter.test(point.name())) return true;
        return false;
    }

    /** The deepest block any hook needs: forward passes that need no logits stop after it. */
    public int deepestLayer(List<HookPoint> points) {
        int d = -1;
        for (HookPoint p : points) if (wants(p)) d = Math.max(d, p.depth());
        return d;
    }

    public FloatTensor fire(HookPoint point, FloatTensor value, TokenBatch batch) {
        FloatTensor v = value;
        for (Entry e : entries) {
            if (e.filter.test(point.name())) {
                FloatTensor r = e.hook.apply(point, v, batch);
                if (r != null && r != v) {
                    if (!java.util.Arrays.equals(r.shape(), v.shape())) {
                        throw new dev.jlens.JlensException("hook on " + point.name() + " returned shape "
                                + java.util.Arrays.toString(r.shape()) + " but the activation has shape "
                                + java.util.Arrays.toString(v.shape()));
                    }
                    v = r;
                }
            }
        }
        return v;
    }
}
