package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookedModel;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Per-token raw scores of fitted detectors over a prompt set: one forward pass over the prompts (in batches, up
 * to the deepest hook asked for) during which each hook's activation rows are scored by that hook's detectors
 * and dropped. Only the scalars are kept (prompts × tokens × detectors), never the activations, so this costs
 * one forward pass and almost no memory whatever the model's width.
 */
public final class TokenScorer {

    private TokenScorer() {
    }

    /**
     * @param detectors per hook name, the detectors to score there
     * @return per hook name, per detector (same order), per prompt, the raw score of each token
     */
    public static Map<String, List<double[][]>> score(HookedModel model, List<int[]> ids, Map<String, List<DetectorParams>> detectors,
                                                      int batchSize) {
        if (batchSize < 1) throw new JlensException("batch size " + batchSize + ": expected a positive number");
        Map<String, HookPoint> points = new LinkedHashMap<>();
        for (HookPoint p : model.hookPoints()) if (detectors.containsKey(p.name())) points.put(p.name(), p);
        for (String h : detectors.keySet()) if (!points.containsKey(h)) throw new JlensException("no hook point " + h + " in " + model.location().id());
        int deepest = 0;
        for (HookPoint p : points.values()) deepest = Math.max(deepest, p.depth());
        ForwardOptions upTo = deepest == Integer.MAX_VALUE ? new ForwardOptions(false, -1) : ForwardOptions.upTo(Math.max(0, deepest));
        Map<String, List<double[][]>> out = new LinkedHashMap<>();
        for (var e : detectors.entrySet()) {
            List<double[][]> perDetector = new ArrayList<>();
            for (int k = 0; k < e.getValue().size(); k++) perDetector.add(new double[ids.size()][]);
            out.put(e.getKey(), perDetector);
        }
        for (int start = 0; start < ids.size(); start += batchSize) {
            int from = start;
            List<int[]> chunk = ids.subList(start, Math.min(ids.size(), start + batchSize));
            Hooks hooks = Hooks.none().with(detectors::containsKey, (p, value, batch) -> {
                List<DetectorParams> ds = detectors.get(p.name());
                List<double[][]> sink = out.get(p.name());
                int d = value.cols();
                for (int s = 0; s < batch.size(); s++) {
                    int off = batch.offsets()[s], len = batch.lengths()[s];
                    for (int k = 0; k < ds.size(); k++) {
                        double[] raw = new double[len];
                        for (int t = 0; t < len; t++) raw[t] = ds.get(k).raw(value.data(), (off + t) * d);
                        sink.get(k)[from + s] = raw;
                    }
                }
                return value;
            });
            model.model().forward(TokenBatch.of(chunk), upTo, hooks);
        }
        return out;
    }
}
