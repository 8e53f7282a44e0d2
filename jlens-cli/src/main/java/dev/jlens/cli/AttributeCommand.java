package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.InstrumentReports;
import dev.jlens.instruments.DirectAttribution;
import dev.jlens.instruments.TokenChoice;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.HookedModel;
import dev.jlens.steering.Direction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "attribute", mixinStandardHelpOptions = true,
        description = {"Direct attribution: which components write a direction or a logit difference.",
                "Splits the residual stream at a position into the embeddings, each attention head's result, each attention "
                        + "block's bias and each MLP output, and projects every part on the target after the final norm's "
                        + "scaling: a direction from `jlens direction` (--direction) or logit(A) − logit(B) (--tokens \"A,B\"). "
                        + "The parts sum to the whole projection. Writes attribution.csv (ranked), attribution.json and "
                        + "ATTRIBUTION.html (ranked table, per-layer chart, layer × head heat map)."},
        footer = {"", "Examples:",
                "  jlens attribute --model ../shared/fixtures/gpt2_tiny --prompt 'The cat sat on the' --tokens ' mat, floor' --out out/attr",
                "  jlens attribute --model Qwen/Qwen2.5-0.5B-Instruct --prompt 'How do I pick a lock?' --direction out/direction "
                        + "--direction-hook blocks.12.hook_resid_pre --out out/attr-refusal"})
final class AttributeCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "The prompt.")
    String prompt;

    @Option(names = "--position", defaultValue = "-1", paramLabel = "N",
            description = "Token position to decompose: 0-based, or negative from the end (default: ${DEFAULT-VALUE}, the last).")
    int position;

    @Option(names = "--tokens", paramLabel = "A,B", description = "Target logit(A) − logit(B), e.g. \" Sorry, Sure\" (each one token; leading spaces count).")
    String tokens;

    @Option(names = "--direction", paramLabel = "DIR", description = "Target: a direction from a `jlens direction` output folder.")
    Path direction;

    @Option(names = "--direction-hook", paramLabel = "HOOK",
            description = "Which of the folder's directions (default: the middle layer of its first hook kind).")
    String directionHook;

    @Option(names = "--direction-position", paramLabel = "P", description = "Its token position label (default: the folder's first).")
    String directionPosition;

    @Option(names = "--top", defaultValue = "20", paramLabel = "N", description = "Rows of the ranked table in the HTML page (default: ${DEFAULT-VALUE}).")
    int top;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (attribution.csv, attribution.json, ATTRIBUTION.html).")
    Path out;

    @Override
    public Integer call() {
        if ((tokens == null) == (direction == null)) {
            throw new JlensException("give exactly one target: --tokens \"A,B\" (logit difference) or --direction DIR");
        }
        chatOptions.validate();
        try (HookedModel m = modelOptions.load()) {
            int[] ids = chatOptions.encodeOne(m, prompt);
            int pos = position < 0 ? ids.length + position : position;
            if (pos < 0 || pos >= ids.length) {
                throw new JlensException("--position " + position + ": the prompt has " + ids.length + " tokens (0.." + (ids.length - 1)
                        + ", or -1.." + (-ids.length) + " from the end)");
            }
            DirectAttribution.Target target;
            if (tokens != null) {
                int[] ab = InstrumentOutput.twoTokens(m, tokens);
                target = DirectAttribution.Target.logitDifference(m, ab[0], ab[1], "logit(\"" + TokenChoice.show(m.tokenizer(), ab[0])
                        + "\") − logit(\"" + TokenChoice.show(m.tokenizer(), ab[1]) + "\")");
            } else {
                Direction d = InstrumentOutput.direction(m, direction, directionHook, directionPosition);
                target = DirectAttribution.Target.direction(d.unit(), m.info().dModel(), "direction " + d.name() + " of " + direction);
            }
            DirectAttribution.Result r = DirectAttribution.run(m, ids, pos, target);
            ObjectMapper om = new ObjectMapper();
            ObjectNode json = om.createObjectNode().put("model", m.location().id()).put("prompt", prompt).put("position", pos)
                    .put("token", TokenChoice.show(m.tokenizer(), ids[pos])).put("target", r.target()).put("total", r.total())
                    .put("sum_of_parts", r.sum());
            json.set("input_ids", om.valueToTree(ids));
            if (chatOptions.enabled()) InstrumentOutput.chat(json, m, chatOptions);
            ArrayNode parts = json.putArray("components");
            StringBuilder csv = new StringBuilder("rank,component,kind,layer,head,value\n");
            List<DirectAttribution.Component> ranked = r.ranked();
            for (int i = 0; i < ranked.size(); i++) {
                DirectAttribution.Component c = ranked.get(i);
                parts.addObject().put("rank", i + 1).put("name", c.name()).put("kind", c.kind()).put("layer", c.layer())
                        .put("head", c.head()).put("value", c.value());
                csv.append(i + 1).append(',').append(c.name()).append(',').append(c.kind()).append(',').append(c.layer()).append(',')
                        .append(c.head()).append(',').append(c.value()).append('\n');
            }
            InstrumentOutput.prepare(out);
            AtomicFiles.writeString(out.resolve("attribution.csv"), csv.toString());
            AtomicFiles.writeString(out.resolve("attribution.json"), InstrumentOutput.pretty(json));
            AtomicFiles.writeString(out.resolve("ATTRIBUTION.html"), InstrumentReports.attribution(m.location().id(), prompt,
                    TokenChoice.show(m.tokenizer(), ids[pos]), r, top));
            System.out.printf("%s at position %d: total %.5g (parts sum to %.5g)%n", r.target(), pos, r.total(), r.sum());
            for (int i = 0; i < Math.min(10, ranked.size()); i++) {
                System.out.printf("  %2d  %-30s %+.5g%n", i + 1, ranked.get(i).name(), ranked.get(i).value());
            }
            System.out.println("wrote " + out.resolve("ATTRIBUTION.html") + ", attribution.csv and attribution.json");
        }
        return 0;
    }
}
