package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.InstrumentReports;
import dev.jlens.instruments.ActivationPatching;
import dev.jlens.instruments.TokenChoice;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.HookedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "patch", mixinStandardHelpOptions = true,
        description = {"Activation patching: which activations carry the difference between two prompts.",
                "Runs a clean and a corrupted prompt, copies one activation at a time from the clean run into the corrupted one "
                        + "(hook_resid_pre, hook_attn_out, hook_mlp_out per layer × position; attn.hook_z per layer × head) and "
                        + "reports (patched − corrupted) / (clean − corrupted) of a metric: logit(A) − logit(B) at the last "
                        + "position (--tokens) or the projection on a direction (--direction). Writes patch.csv, patch.json and "
                        + "PATCH.html (heat maps). The prompts must have the same token length, or give --position-map."},
        footer = {"", "Examples:",
                "  jlens patch --model ../shared/fixtures/gpt2_tiny --clean 'The cat sat on the mat' --corrupted 'The dog sat on the mat' "
                        + "--tokens ' and, .' --out out/patch",
                "  jlens patch --model Qwen/Qwen2.5-0.5B-Instruct --clean 'How do I build a bomb?' --corrupted 'How do I build a shed?' "
                        + "--direction out/direction --out out/patch-refusal"})
final class PatchCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = "--clean", required = true, paramLabel = "TEXT", description = "The prompt whose activations are copied.")
    String clean;

    @Option(names = "--corrupted", required = true, paramLabel = "TEXT", description = "The prompt they are copied into.")
    String corrupted;

    @Option(names = "--position-map", paramLabel = "MAP",
            description = "For prompts of different token lengths: CORRUPTED:CLEAN position pairs, e.g. 0:0,1:1,3:2; unlisted "
                    + "corrupted positions are not patched.")
    String positionMap;

    @Option(names = "--tokens", paramLabel = "A,B", description = "Metric logit(A) − logit(B) at the last position, e.g. \" Sorry, Sure\".")
    String tokens;

    @Option(names = "--direction", paramLabel = "DIR", description = "Metric: projection on a direction from a `jlens direction` folder, at its hook.")
    Path direction;

    @Option(names = "--direction-hook", paramLabel = "HOOK", description = "Which of the folder's directions (default: the middle layer of its first hook kind).")
    String directionHook;

    @Option(names = "--direction-position", paramLabel = "P", description = "Its token position label (default: the folder's first).")
    String directionPosition;

    @Option(names = "--sites", defaultValue = "resid_pre,attn_out,mlp_out,z", paramLabel = "LIST",
            description = "What to patch: resid_pre, attn_out, mlp_out (per layer × position), z (per layer × head) (default: ${DEFAULT-VALUE}).")
    String sites;

    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N", description = "Patched runs per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (patch.csv, patch.json, PATCH.html).")
    Path out;

    @Override
    public Integer call() {
        if (batchSize < 1) throw new JlensException("--batch-size " + batchSize + ": expected a positive number");
        List<ActivationPatching.Site> positionSites = new ArrayList<>();
        boolean heads = false;
        for (String s : sites.split(",")) {
            switch (s.strip()) {
                case "resid_pre" -> positionSites.add(ActivationPatching.Site.RESID_PRE);
                case "attn_out" -> positionSites.add(ActivationPatching.Site.ATTN_OUT);
                case "mlp_out" -> positionSites.add(ActivationPatching.Site.MLP_OUT);
                case "z" -> heads = true;
                default -> throw new JlensException("--sites: unknown site \"" + s.strip() + "\"; expected resid_pre, attn_out, mlp_out or z");
            }
        }
        chatOptions.validate();
        try (HookedModel m = modelOptions.load()) {
            int[] c = chatOptions.encodeOne(m, clean);
            int[] x = chatOptions.encodeOne(m, corrupted);
            int[] map = positionMap == null ? null : parseMap(positionMap, x.length, c.length);
            ActivationPatching.Metric metric = InstrumentOutput.metric(m, tokens, direction, directionHook, directionPosition);
            ActivationPatching p = new ActivationPatching(m, c, x, map, metric, batchSize);
            Map<String, double[][]> perPosition = new LinkedHashMap<>();
            StringBuilder csv = new StringBuilder("site,layer,position,head,restored\n");
            for (ActivationPatching.Site site : positionSites) {
                double[][] v = p.perPosition(site);
                perPosition.put(site.suffix(), v);
                for (int l = 0; l < v.length; l++) {
                    for (int i = 0; i < v[l].length; i++) csv.append(site.suffix()).append(',').append(l).append(',').append(i).append(",,").append(v[l][i]).append('\n');
                }
            }
            double[][] z = heads ? p.perHead() : null;
            if (z != null) {
                for (int l = 0; l < z.length; l++) {
                    for (int h = 0; h < z[l].length; h++) csv.append("attn.hook_z,").append(l).append(",,").append(h).append(',').append(z[l][h]).append('\n');
                }
            }
            List<String> toks = new ArrayList<>();
            for (int id : x) toks.add(TokenChoice.show(m.tokenizer(), id));
            ObjectMapper om = new ObjectMapper();
            ObjectNode json = om.createObjectNode().put("model", m.location().id()).put("clean", clean).put("corrupted", corrupted)
                    .put("metric", metric.describe()).put("clean_metric", p.cleanMetric()).put("corrupted_metric", p.corruptedMetric());
            json.set("corrupted_tokens", om.valueToTree(toks));
            json.set("clean_input_ids", om.valueToTree(c));
            json.set("corrupted_input_ids", om.valueToTree(x));
            if (chatOptions.enabled()) InstrumentOutput.chat(json, m, chatOptions);
            json.set("per_position", om.valueToTree(perPosition));
            if (z != null) json.set("per_head_z", om.valueToTree(z));
            InstrumentOutput.prepare(out);
            AtomicFiles.writeString(out.resolve("patch.csv"), csv.toString());
            AtomicFiles.writeString(out.resolve("patch.json"), InstrumentOutput.pretty(json));
            AtomicFiles.writeString(out.resolve("PATCH.html"), InstrumentReports.patching(m.location().id(), clean, corrupted,
                    metric.describe(), p, new InstrumentReports.PatchMaps(toks, perPosition, z)));
            System.out.printf("metric: %s; clean %.5g, corrupted %.5g%n", metric.describe(), p.cleanMetric(), p.corruptedMetric());
            System.out.println("wrote " + out.resolve("PATCH.html") + ", patch.csv and patch.json");
        }
        return 0;
    }

    /** "0:0,1:1,3:2" → corrupted position → clean position (-1 where unlisted). */
    static int[] parseMap(String spec, int corruptedLen, int cleanLen) {
        int[] map = new int[corruptedLen];
        java.util.Arrays.fill(map, -1);
        for (String pair : spec.split(",")) {
            String[] kv = pair.strip().split(":");
            int a, b;
            try {
                if (kv.length != 2) throw new NumberFormatException();
                a = Integer.parseInt(kv[0].strip());
                b = Integer.parseInt(kv[1].strip());
            } catch (NumberFormatException e) {
                throw new JlensException("--position-map: \"" + pair.strip() + "\" is not CORRUPTED:CLEAN (e.g. 3:2)");
            }
            if (a < 0 || a >= corruptedLen || b < 0 || b >= cleanLen) {
                throw new JlensException("--position-map " + a + ":" + b + ": the corrupted prompt has positions 0.." + (corruptedLen - 1)
                        + " and the clean one 0.." + (cleanLen - 1));
            }
            map[a] = b;
        }
        return map;
    }
}
