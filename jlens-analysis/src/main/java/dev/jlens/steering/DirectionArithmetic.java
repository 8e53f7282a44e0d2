package dev.jlens.steering;

import dev.jlens.JlensException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Weighted sums of saved directions: for every (hook, position) that all inputs have, v = Σ wᵢ · normᵢ · r̂ᵢ, the
 * raw vectors (for difference-in-means, μ_B − μ_A) combined; the result is stored as r̂ = v/‖v‖ with norm ‖v‖, so
 * {@code --alpha 1x} adds v. E.g. {@code happy:1,sad:-1}, or a direction minus its projection on another.
 */
public final class DirectionArithmetic {

    /** One input folder and its weight. */
    public record Term(Path dir, DirectionSet set, double weight) {
    }

    private DirectionArithmetic() {
    }

    public static DirectionSet combine(List<Term> terms, String jlensVersion) {
        if (terms.isEmpty()) throw new JlensException("--combine: no directions; expected DIR:WEIGHT,DIR:WEIGHT");
        DirectionSet first = terms.getFirst().set();
        for (Term t : terms) {
            DirectionSet.Meta m = t.set().meta();
            if (m.dModel() != first.meta().dModel() || m.nLayers() != first.meta().nLayers()) {
                throw new JlensException("--combine: " + t.dir() + " has d_model " + m.dModel() + " and " + m.nLayers() + " layers, "
                        + terms.getFirst().dir() + " d_model " + first.meta().dModel() + " and " + first.meta().nLayers()
                        + "; only directions of the same model can be combined");
            }
            if (!Double.isFinite(t.weight())) throw new JlensException("--combine: weight of " + t.dir() + " is not finite");
        }
        List<Direction> out = new ArrayList<>();
        List<String> hooks = new ArrayList<>(), positions = new ArrayList<>();
        for (Direction d0 : first.directions()) {
            double[] v = new double[d0.dModel()];
            boolean everywhere = true;
            for (Term t : terms) {
                Direction d = t.set().find(d0.hook(), d0.position());
                if (d == null) {
                    everywhere = false;
                    break;
                }
                double scale = t.weight() * (Double.isFinite(d.norm()) ? d.norm() : 1);
                for (int j = 0; j < v.length; j++) v[j] += scale * d.unit()[j];
            }
            if (!everywhere) continue;
            double n2 = 0;
            for (double x : v) n2 += x * x;
            double norm = Math.sqrt(n2);
            if (!(norm > 0)) continue;
            float[] unit = new float[v.length];
            for (int j = 0; j < v.length; j++) unit[j] = (float) (v[j] / norm);
            out.add(new Direction(d0.hook(), d0.layer(), d0.position(), unit, norm, Double.NaN, Double.NaN, d0.meanNorm(), 0, 0, Double.NaN));
            if (!hooks.contains(d0.hook())) hooks.add(d0.hook());
            if (!positions.contains(d0.position())) positions.add(d0.position());
        }
        if (out.isEmpty()) throw new JlensException("--combine: the folders share no (hook, position) with a non-zero sum");
        StringBuilder what = new StringBuilder();
        for (Term t : terms) what.append(what.isEmpty() ? "" : " + ").append(t.weight()).append("·").append(t.dir());
        DirectionSet.Meta m = first.meta();
        return new DirectionSet(new DirectionSet.Meta(m.model(), m.revision(), m.architecture(), m.family(), m.dModel(), m.nLayers(),
                m.method(), hooks, positions, new DirectionSet.SetInfo(what.toString(), m.classA().size(), m.classA().sha256()),
                new DirectionSet.SetInfo(what.toString(), m.classB().size(), m.classB().sha256()), jlensVersion,
                java.time.OffsetDateTime.now().withNano(0).toString()), out);
    }
}
