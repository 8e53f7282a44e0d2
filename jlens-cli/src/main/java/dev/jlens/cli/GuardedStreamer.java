package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.detect.Detector;
import dev.jlens.detect.GenerationGuard;
import dev.jlens.generate.Generation;
import dev.jlens.generate.GenerationConfig;
import dev.jlens.generate.Generator;
import dev.jlens.generate.TokenListener;
import dev.jlens.hooks.Hooks;

import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The generation behind POST /v1/generate of {@code jlens serve --generate}: greedy decoding on the detector's own
 * model, guarded by the detector (scores from the generation's own forward passes), every event handed on as it
 * happens.
 */
final class GuardedStreamer implements DetectorServer.Streamer {

    private static final ObjectMapper JSON = new ObjectMapper();
    private final Detector detector;
    private final Generator generator;

    GuardedStreamer(Detector detector) {
        if (!detector.model().info().causal()) {
            throw new JlensException("--generate: the detector's model " + detector.model().location().id() + " is an encoder ("
                    + detector.model().info().architecture() + ") and cannot generate; serve a detector fitted on a causal model");
        }
        this.detector = detector;
        this.generator = new Generator(detector.model());
    }

    @Override
    public void generate(String text, int maxNewTokens, GenerationGuard.Mode mode, Consumer<ObjectNode> emit) {
        int[] ids = detector.promptIds(text, null);
        int maxPos = detector.model().info().maxPositions();
        if (maxPos > 0 && ids.length >= maxPos) {
            throw new JlensException("the prompt has " + ids.length + " tokens and fills the model's context of " + maxPos);
        }
        int[] counter = {0};
        GenerationGuard guard = new GenerationGuard(detector, mode, new int[] {ids.length}, (s, pos, generated, tokenScore, running, crossed) -> {
            if (Double.isNaN(running)) return;
            emit.accept(JSON.createObjectNode().put("type", "score").put("index", generated ? pos - ids.length : -1)
                    .put("token_score", tokenScore).put("running_score", running).put("crossed", crossed));
        });
        TokenListener listener = new TokenListener() {
            @Override
            public void onToken(int sequence, int tokenId, String delta) {
                emit.accept(JSON.createObjectNode().put("type", "token").put("index", counter[0]++).put("id", tokenId).put("text", delta));
            }

            @Override
            public void onEnd(int sequence, Generation.StopReason reason, String delta) {
                if (!delta.isEmpty()) emit.accept(JSON.createObjectNode().put("type", "text").put("text", delta));
            }
        };
        GenerationConfig config = GenerationConfig.greedy(maxNewTokens);
        Generation g = generator.generate(List.of(ids), config, guard.hooks(Hooks.none()), listener, guard.stopCheck()).getFirst();
        GenerationGuard.Verdict v = guard.verdict(0);
        ObjectNode end = JSON.createObjectNode().put("type", "end").put("stop", g.stop().name().toLowerCase(Locale.ROOT))
                .put("new_tokens", g.newIds().length).put("text", g.text());
        ObjectNode gv = end.putObject("guard");
        gv.put("mode", mode.name().toLowerCase(Locale.ROOT));
        gv.put("tripped", v.tripped());
        if (v.tripped()) gv.put("token_index", v.generatedIndex());
        gv.put("score", v.score());
        gv.put("threshold", v.threshold());
        emit.accept(end);
    }
}
