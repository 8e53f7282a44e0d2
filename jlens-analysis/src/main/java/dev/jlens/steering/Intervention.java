package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.TransformerModel;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * One edit of the activations along a unit direction r̂, at a set of hook points, as a {@link Hooks} entry.
 * For each row x in scope:
 * <ul>
 *   <li>{@link Mode#ADD}: x ← x + α·r̂ (activation addition);</li>
 *   <li>{@link Mode#ABLATE}: x ← x − (x·r̂)·r̂ (directional ablation);</li>
 *   <li>{@link Mode#CLAMP}: x ← x + (c − x·r̂)·r̂, so that x·r̂ = c (projection clamping).</li>
 * </ul>
 * r̂ is renormalised in double and every row is updated in double, then rounded to float once. The edit is
 * made in place and the same tensor returned, so hooks added later in the same {@link Hooks} see the edited
 * activation, and the forward pass continues with it.
 */
public final class Intervention {

    public enum Mode {
        ADD, ABLATE, CLAMP;

        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Mode parse(String s) {
            for (Mode m : values()) if (m.cliName().equalsIgnoreCase(s.strip())) return m;
            throw new JlensException("--mode \"" + s + "\": expected add, ablate or clamp");
        }
    }

    private final Mode mode;
    private final double[] r;
    private final double value;
    private final Set<String> hooks;
    private final TokenScope scope;

    private Intervention(Mode mode, float[] direction, double value, Collection<String> hooks, TokenScope scope) {
        if (hooks.isEmpty()) throw new JlensException("an intervention needs at least one hook point");
        if (!Double.isFinite(value)) throw new JlensException("intervention value " + value + ": expected a finite number");
        double n = 0;
        for (float v : direction) n += (double) v * v;
        n = Math.sqrt(n);
        if (!(n > 0) || !Double.isFinite(n)) throw new JlensException("the direction is a zero (or non-finite) vector");
        this.r = new double[direction.length];
        for (int i = 0; i < r.length; i++) r[i] = direction[i] / n;
        this.mode = mode;
        this.value = value;
        this.hooks = Set.copyOf(hooks);
        this.scope = scope;
    }

    /** x ← x + α·r̂ at the given hooks, on the tokens in scope. */
    public static Intervention add(float[] direction, double alpha, Collection<String> hooks, TokenScope scope) {
        return new Intervention(Mode.ADD, direction, alpha, hooks, scope);
    }

    /** x ← x − (x·r̂)·r̂ at the given hooks, on every token. */
    public static Intervention ablate(float[] direction, Collection<String> hooks) {
        return new Intervention(Mode.ABLATE, direction, 0, hooks, TokenScope.BOTH);
    }

    /** x·r̂ ← c at the given hooks, on the tokens in scope. */
    public static Intervention clamp(float[] direction, double c, Collection<String> hooks, TokenScope scope) {
        return new Intervention(Mode.CLAMP, direction, c, hooks, scope);
    }

    public Mode mode() {
        return mode;
    }

    public double value() {
        return value;
    }

    public Set<String> hookNames() {
        return hooks;
    }

    /**
     * Arditi et al.'s ablation sites: resid_pre, attn_out and mlp_out of every block, which together keep r̂
     * out of everything any block writes or reads.
     */
    public static List<String> everyLayer(TransformerModel model) {
        List<String> out = new ArrayList<>();
        for (HookPoint p : model.hookPoints()) {
            if (p.kind() == HookKind.RESID_PRE || p.kind() == HookKind.ATTN_OUT || p.kind() == HookKind.MLP_OUT) out.add(p.name());
        }
        return out;
    }

    /** Checks that every hook exists in the model and is as wide as r̂. */
    public void checkFor(TransformerModel model) {
        if (r.length != model.info().dModel()) {
            throw new JlensException("the direction has " + r.length + " dimensions but the model's d_model is "
                    + model.info().dModel());
        }
        List<String> names = model.hookPoints().stream().map(HookPoint::name).toList();
        for (String h : hooks) {
            if (!names.contains(h)) {
                throw new JlensException("hook point " + h + " does not exist in " + model.info().architecture()
                        + "; valid names are " + dev.jlens.hooks.HookPattern.describe(model.hookPoints()));
            }
        }
    }

    /** This intervention alone; see {@link #addTo}. */
    public Hooks hooks(int[] promptLengths) {
        return addTo(Hooks.none(), promptLengths);
    }

    /**
     * {@code base} with this intervention added after its entries.
     *
     * @param promptLengths per sequence of the batches to come, the prompt's length (rows at later positions
     *                      are generated tokens); null when every row is a prompt token
     */
    public Hooks addTo(Hooks base, int[] promptLengths) {
        int[] lengths = promptLengths == null ? null : promptLengths.clone();
        return base.with(hooks::contains, (point, v, batch) -> apply(v, batch, lengths, 0, Integer.MAX_VALUE));
    }

    /**
     * As {@link #addTo(Hooks, int[])}, but editing only sequences {@code first} … {@code first + count − 1} of
     * each batch: several settings of a sweep can then generate in one batch, each on its own sequences, so
     * the weights are read once per step for all of them. Rows are edited one at a time, so a sequence gets
     * the same bits as in a batch of its own.
     */
    public Hooks addTo(Hooks base, int[] promptLengths, int first, int count) {
        if (first < 0 || count < 0) throw new JlensException("sequences " + first + " + " + count + ": expected non-negative numbers");
        int[] lengths = promptLengths == null ? null : promptLengths.clone();
        return base.with(hooks::contains, (point, v, batch) -> apply(v, batch, lengths, first, count));
    }

    private FloatTensor apply(FloatTensor v, TokenBatch batch, int[] promptLengths, int first, int count) {
        int d = v.cols();
        if (d != r.length) {
            throw new JlensException("the direction has " + r.length + " dimensions but the activation has " + d);
        }
        float[] x = v.data();
        int end = (int) Math.min(batch.size(), (long) first + count);
        for (int s = first; s < end; s++) {
            int off = batch.offsets()[s];
            for (int i = 0; i < batch.lengths()[s]; i++) {
                int pos = batch.pastLengths()[s] + i;
                boolean generated = promptLengths != null && s < promptLengths.length && pos >= promptLengths[s];
                if (!scope.includes(generated)) continue;
                int base = (off + i) * d;
                double coef;
                if (mode == Mode.ADD) {
                    coef = value;
                } else {
                    double p = 0;
                    for (int j = 0; j < d; j++) p += x[base + j] * r[j];
                    coef = mode == Mode.ABLATE ? -p : value - p;
                }
                for (int j = 0; j < d; j++) x[base + j] = (float) (x[base + j] + coef * r[j]);
            }
        }
        return v;
    }
}
