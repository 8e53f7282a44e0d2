package dev.jlens.steering;

import dev.jlens.hooks.HookPattern;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ProgressListener;
import dev.jlens.prompts.PromptSet;
import dev.jlens.prompts.PromptSets;
import org.junit.jupiter.api.Test;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end on a trained model (stories260k): a happy-to-sad direction from two sets of children's-story
 * sentences, added with growing α to held-out happy sentences, moves their readout steadily towards the sad
 * centroid while the KL on harmless prompts and the cross-entropy on the harmless corpus grow.
 */
class StoriesSteeringTest {

    static Path resource(String name) {
        try {
            return Path.of(StoriesSteeringTest.class.getResource("/dev/jlens/steering/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void growingAdditionMovesTheEffectMonotonicallyAndRaisesTheCost() {
        PromptSet happy = PromptSets.load(resource("happy.txt"), null, "happy");
        PromptSet sad = PromptSets.load(resource("sad.txt"), null, "sad");
        try (HookedModel m = TestModels.load("stories260k")) {
            DirectionFinder.Options opts = new DirectionFinder.Options(HookPattern.parse("blocks.*.hook_resid_pre"),
                    TokenPosition.parseList("last,mean"), DirectionMethod.DIFF_MEANS, 16, 1.0);
            DirectionSet set = DirectionFinder.compute(m, happy.filterSplit("train"), sad.filterSplit("train"), opts,
                    ProgressListener.NONE, null, "test");
            List<int[]> evalHappy = encode(m, happy.filterSplit("val").texts(), happy.filterSplit("test").texts());
            List<int[]> costPrompts = encode(m, PromptSets.builtin("harmless").filterSplit("val").texts().subList(0, 12), List.of());
            SteeringEvaluator ev = new SteeringEvaluator(m, new SteeringEvaluator.Inputs(evalHappy, costPrompts,
                    HarmlessCorpus.windows(m, 64, 768), encode(m, happy.filterSplit("train").texts(), List.of()),
                    encode(m, sad.filterSplit("train").texts(), List.of()), new int[0], 16));
            DirectionChoice choice = DirectionChoice.resolve(set, "resid_pre", "mean", null);
            SteeringSweep.Config cfg = new SteeringSweep.Config(Intervention.Mode.ADD, set, choice, List.of(2),
                    SteeringSweep.parseAlphas("1x,2x,4x,8x", Intervention.Mode.ADD), TokenScope.BOTH, null,
                    SteeringSweep.EffectMetric.CLASS, true, 0, 8);
            List<SteeringSweep.Row> rows = SteeringSweep.run(m, ev, cfg, List.of(), ProgressListener.NONE, null);
            assertEquals(5, rows.size());
            List<String> table = new ArrayList<>();
            for (SteeringSweep.Row r : rows) {
                table.add(String.format("alpha %s effect %.4f kl %.4f ce %.4f proj %.4f", r.setting().alpha() == null ? "-"
                        : r.setting().alpha().text(), r.effect(), r.metrics().kl(), r.metrics().ce(), r.metrics().projection()));
            }
            String all = String.join("\n", table);
            for (int i = 1; i < rows.size(); i++) {
                SteeringSweep.Row prev = rows.get(i - 1), cur = rows.get(i);
                assertTrue(cur.effect() > prev.effect(), "effect must grow with alpha:\n" + all);
                assertTrue(cur.metrics().kl() > prev.metrics().kl(), "KL must grow with alpha:\n" + all);
                assertTrue(cur.metrics().ce() > prev.metrics().ce(), "cross-entropy must grow with alpha:\n" + all);
                // The projection at the steered hook moves by exactly the added α.
                if (i >= 2) {
                    double step = cur.value() - prev.value();
                    assertEquals(step, cur.metrics().projection() - prev.metrics().projection(), 1e-4 * Math.max(1, cur.value()), all);
                }
            }
            assertEquals(0.0, rows.getFirst().metrics().kl(), 1e-12);
            assertTrue(rows.get(1).projBefore() < rows.get(1).metrics().projection());

            SteeringSweep.Selection sel = SteeringSweep.select(rows, m.info().nLayers(), rows.get(3).metrics().kl() * 1.0001, true);
            assertEquals(rows.get(3), sel.row(), sel.why());
            assertTrue(sel.why().contains("layer 2") && sel.why().contains("4x"), sel.why());
        }
    }

    private static List<int[]> encode(HookedModel m, List<String> a, List<String> b) {
        List<int[]> out = new ArrayList<>();
        for (String t : a) out.add(m.encode(t, null));
        for (String t : b) out.add(m.encode(t, null));
        return out;
    }
}
