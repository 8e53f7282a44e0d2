package dev.jlens.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.cli.report.InstrumentReports;
import dev.jlens.instruments.LogitLens;
import dev.jlens.instruments.TokenChoice;
import dev.jlens.io.AtomicFiles;
import dev.jlens.model.HookedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "lens", mixinStandardHelpOptions = true,
        description = {"Logit lens: what each layer would predict if the model stopped there.",
                "Reads the residual stream before every block and after the last one through the final norm and the "
                        + "unembedding (TransformerLens accumulated_resid(apply_ln=True)), and writes the top tokens per layer, "
                        + "the log-probability and rank of chosen tokens across layers (--tokens), lens.csv, lens.json and "
                        + "LENS.html (layer × position heat map, per-token curves). The last layer is the model's own output."},
        footer = {"", "Examples:",
                "  jlens lens --model ../shared/fixtures/gpt2_tiny --prompt 'The cat sat on the' --tokens ' mat, floor' --out out/lens",
                "  jlens lens --model Qwen/Qwen2.5-0.5B-Instruct --chat --prompt 'How do I pick a lock?' --tokens 'I, Sorry, Sure' "
                        + "--all-positions --scale final --out out/lens-refusal"})
final class LensCommand implements Callable<Integer> {

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    ChatOptions chatOptions;

    @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "A prompt (repeat for several).")
    List<String> prompts;

    @Option(names = "--tokens", paramLabel = "LIST",
            description = "Tokens to follow across layers, comma-separated and taken as written (\" I, Sorry, Sure\": the "
                    + "leading space is part of each token), or ids as #123. Each must be one token.")
    String tokens;

    @Option(names = "--top-k", defaultValue = "5", paramLabel = "K", description = "Top tokens listed per layer (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--all-positions", description = "List top tokens at every position, not only the last (the HTML heat map always shows every position).")
    boolean allPositions;

    @Option(names = "--scale", defaultValue = "own", paramLabel = "S",
            description = {"own: each layer normalised with its own statistics (default);",
                    "final: every layer divided by the final residual's ln_final.hook_scale (TransformerLens apply_ln_to_stack)."})
    String scale;

    @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (lens.csv, lens.json, LENS.html).")
    Path out;

    @Override
    public Integer call() {
        LogitLens.Scale s = LogitLens.Scale.parse(scale);
        if (topK < 1) throw new JlensException("--top-k " + topK + ": expected at least 1");
        chatOptions.validate();
        try (HookedModel m = modelOptions.load()) {
            int[] chosen = tokens == null ? new int[0] : TokenChoice.parse(m.tokenizer(), tokens, m.info().vocabSize(), "--tokens");
            List<String> chosenText = new ArrayList<>();
            for (int id : chosen) chosenText.add(TokenChoice.show(m.tokenizer(), id));
            ObjectMapper om = new ObjectMapper();
            ObjectNode json = om.createObjectNode().put("model", m.location().id()).put("scale", s.cliName());
            if (chatOptions.enabled()) InstrumentOutput.chat(json, m, chatOptions);
            ArrayNode promptsJson = json.putArray("prompts");
            StringBuilder csv = new StringBuilder("prompt,layer,hook,position,token_string,kind,token_id,rank,log_prob\n");
            List<InstrumentReports.LensPrompt> pages = new ArrayList<>();
            for (int p = 0; p < prompts.size(); p++) {
                int[] ids = chatOptions.encodeOne(m, prompts.get(p));
                LogitLens.Result r = LogitLens.run(m, ids, new LogitLens.Options(s, topK, chosen, true));
                List<String> toks = new ArrayList<>();
                for (int id : ids) toks.add(TokenChoice.show(m.tokenizer(), id));
                pages.add(new InstrumentReports.LensPrompt(prompts.get(p), toks, r, id -> TokenChoice.show(m.tokenizer(), id)));
                ObjectNode pj = promptsJson.addObject().put("text", prompts.get(p));
                ArrayNode idsJson = pj.putArray("input_ids");
                for (int id : ids) idsJson.add(id);
                ArrayNode layers = pj.putArray("layers");
                for (int l = 0; l < r.layers().size(); l++) {
                    ObjectNode lj = layers.addObject().put("layer", l).put("hook", r.layers().get(l));
                    ArrayNode positions = lj.putArray("positions");
                    for (int i = 0; i < r.positions().length; i++) {
                        int pos = r.positions()[i];
                        boolean listed = allPositions || pos == ids.length - 1;
                        if (!listed) continue;
                        ObjectNode posJ = positions.addObject().put("position", pos).put("token", toks.get(pos));
                        ArrayNode top = posJ.putArray("top");
                        for (int k = 0; k < r.topIds()[l][i].length; k++) {
                            int id = r.topIds()[l][i][k];
                            top.addObject().put("id", id).put("token", TokenChoice.show(m.tokenizer(), id)).put("log_prob", r.topLogProbs()[l][i][k]);
                            csv.append(row(p, l, r.layers().get(l), pos, toks.get(pos), "top", id, k, r.topLogProbs()[l][i][k]));
                        }
                        ArrayNode ch = posJ.putArray("tokens");
                        for (int t = 0; t < chosen.length; t++) {
                            ch.addObject().put("id", chosen[t]).put("token", chosenText.get(t)).put("rank", r.tokenRanks()[l][i][t])
                                    .put("log_prob", r.tokenLogProbs()[l][i][t]);
                            csv.append(row(p, l, r.layers().get(l), pos, toks.get(pos), "chosen", chosen[t], r.tokenRanks()[l][i][t],
                                    r.tokenLogProbs()[l][i][t]));
                        }
                    }
                }
            }
            InstrumentOutput.prepare(out);
            AtomicFiles.writeString(out.resolve("lens.csv"), csv.toString());
            AtomicFiles.writeString(out.resolve("lens.json"), InstrumentOutput.pretty(json));
            AtomicFiles.writeString(out.resolve("LENS.html"), InstrumentReports.lens(m.location().id(), s.cliName(), pages, chosenText));
            System.out.println("wrote " + out.resolve("LENS.html") + ", lens.csv and lens.json");
            printSummary(pages, chosenText);
        }
        return 0;
    }

    private static String row(int p, int l, String hook, int pos, String tok, String kind, int id, int rank, float lp) {
        return p + "," + l + "," + hook + "," + pos + "," + InstrumentOutput.csv(tok) + "," + kind + "," + id + "," + rank + "," + lp + "\n";
    }

    /** The top token at the last position per layer, one line each, for the terminal. */
    private static void printSummary(List<InstrumentReports.LensPrompt> pages, List<String> chosen) {
        for (InstrumentReports.LensPrompt p : pages) {
            LogitLens.Result r = p.result();
            int last = r.positions().length - 1;
            System.out.println("prompt: " + p.text());
            for (int l = 0; l < r.layers().size(); l++) {
                StringBuilder s = new StringBuilder(String.format("  %-28s top %-14s", r.layers().get(l),
                        "\"" + p.show().apply(r.topIds()[l][last][0]) + "\""));
                for (int t = 0; t < chosen.size(); t++) {
                    s.append(String.format("  \"%s\" rank %d logp %.3f", chosen.get(t), r.tokenRanks()[l][last][t], r.tokenLogProbs()[l][last][t]));
                }
                System.out.println(s);
            }
        }
    }
}
