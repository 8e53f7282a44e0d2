package dev.jlens.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.instruments.ActivationPatching;
import dev.jlens.instruments.TokenChoice;
import dev.jlens.model.HookedModel;
import dev.jlens.steering.Direction;
import dev.jlens.steering.DirectionSet;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** What the instrument commands (lens, attribute, patch, attention) share: the output folder, JSON and CSV text, targets. */
final class InstrumentOutput {

    private InstrumentOutput() {
    }

    static void prepare(Path out) {
        try {
            Files.createDirectories(out);
        } catch (IOException e) {
            throw new JlensException("cannot create --out " + out + ": " + e.getMessage(), e);
        }
    }

    static String pretty(JsonNode json) {
        try {
            return new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n";
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** With --chat: which template rendered the prompts, and the system text, variables and folding given. */
    static void chat(ObjectNode json, HookedModel m, ChatOptions chat) {
        ObjectNode c = json.putObject("chat");
        c.put("template", m.chatTemplate().origin());
        c.put("system", chat.system());
        c.set("variables", new ObjectMapper().valueToTree(chat.templateOptions().variables()));
        c.put("fold_system", chat.templateOptions().foldSystem());
    }

    /** A CSV field, quoted when it holds a comma, quote or line break. */
    static String csv(String s) {
        if (s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r") || s.startsWith(" ")) {
            return "\"" + s.replace("\"", "\"\"") + "\"";
        }
        return s;
    }

    /** Exactly two tokens for a logit difference. */
    static int[] twoTokens(HookedModel m, String spec) {
        int[] ids = TokenChoice.parse(m.tokenizer(), spec, m.info().vocabSize(), "--tokens");
        if (ids.length != 2) {
            throw new JlensException("--tokens \"" + spec + "\": expected two tokens A,B (the metric is logit(A) − logit(B)), got " + ids.length);
        }
        return ids;
    }

    /**
     * A direction from a `jlens direction` folder: at {@code hook} (default: the middle layer of the set's first
     * hook kind) and {@code position} (default: the set's first position), checked against the model's width.
     */
    static Direction direction(HookedModel m, Path dir, String hook, String position) {
        DirectionSet set = DirectionSet.load(dir);
        String pos = position != null ? position : set.meta().positions().getFirst();
        String h = hook;
        if (h == null) {
            String suffix = set.hookSuffixes().getFirst();
            List<Integer> layers = set.layers(suffix, pos);
            h = layers.isEmpty() ? suffix : "blocks." + layers.get(layers.size() / 2) + "." + suffix;
        }
        Direction d = set.require(h, pos, dir);
        if (d.dModel() != m.info().dModel()) {
            throw new JlensException("--direction " + dir + ": the direction at " + d.hook() + " has " + d.dModel() + " values but "
                    + m.location().id() + " has d_model " + m.info().dModel() + "; it comes from another model ("
                    + set.meta().model() + "): fit one on this model with `jlens direction`");
        }
        return d;
    }

    static ActivationPatching.Metric metric(HookedModel m, String tokens, Path directionDir, String hook, String position) {
        if ((tokens == null) == (directionDir == null)) {
            throw new JlensException("give exactly one metric: --tokens \"A,B\" (logit difference) or --direction DIR (projection)");
        }
        if (tokens != null) {
            int[] ab = twoTokens(m, tokens);
            return ActivationPatching.Metric.logitDifference(ab[0], ab[1], "logit(\"" + TokenChoice.show(m.tokenizer(), ab[0])
                    + "\") − logit(\"" + TokenChoice.show(m.tokenizer(), ab[1]) + "\")");
        }
        Direction d = direction(m, directionDir, hook, position);
        return ActivationPatching.Metric.projection(d.hook(), d.unit(), m.info().dModel());
    }
}
