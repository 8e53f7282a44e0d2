package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.detect.Detector;
import dev.jlens.detect.PoolScope;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.Prompt;
import dev.jlens.prompts.PromptSets;
import dev.jlens.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Response-level detectors (probe --pool-scope response on (prompt, response) pairs), conversations in detect and
 * serve, post-instruction pooling with its fallback, and the built-in multi-turn set as a test split.
 */
class ConversationDetectorCliTest {

    @TempDir
    Path tmp;

    static final ObjectMapper JSON = new ObjectMapper();
    static final String[] FILLER = ProbeBaselinesCliTest.FILLER;

    /**
     * Pairs whose prompts come from one distribution whatever the label, and whose responses carry the label: a
     * harmful response holds the word "zorblax" somewhere.
     */
    private Path pairs(String name, int n, Random rnd) throws Exception {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            boolean harmful = i % 2 == 0;
            List<String> response = new ArrayList<>();
            for (int k = 0, len = 5 + rnd.nextInt(4); k < len; k++) response.add(FILLER[rnd.nextInt(FILLER.length)]);
            if (harmful) response.add(rnd.nextInt(response.size() + 1), "zorblax");
            StringBuilder prompt = new StringBuilder();
            for (int k = 0, len = 5 + rnd.nextInt(4); k < len; k++) prompt.append(FILLER[rnd.nextInt(FILLER.length)]).append(' ');
            lines.add(JSON.createObjectNode().put("id", name + "-" + i).put("prompt", prompt.toString().strip())
                    .put("response", String.join(" ", response)).put("label", harmful ? "harmful" : "harmless")
                    .put("category", harmful ? "compliance" : "refusal").toString());
        }
        Path f = tmp.resolve(name + ".jsonl");
        Files.write(f, lines);
        return f;
    }

    /** Small plain prompt files (train, val, test) whose harmful prompts hold "zorblax": quick probes in tests. */
    static String[] smallSplits(Path dir) throws Exception {
        Random rnd = new Random(3);
        String[] args = new String[6];
        String[] names = {"train", "val", "test"};
        int[] sizes = {40, 20, 20};
        for (int s = 0; s < 3; s++) {
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < sizes[s]; i++) {
                boolean harmful = i % 2 == 0;
                List<String> w = new ArrayList<>();
                for (int k = 0, len = 5 + rnd.nextInt(4); k < len; k++) w.add(FILLER[rnd.nextInt(FILLER.length)]);
                if (harmful) w.add(rnd.nextInt(w.size() + 1), "zorblax");
                lines.add(JSON.createObjectNode().put("id", names[s] + "-" + i).put("text", String.join(" ", w))
                        .put("label", harmful ? "harmful" : "harmless").toString());
            }
            Path f = dir.resolve("small-" + names[s] + ".jsonl");
            Files.write(f, lines);
            args[2 * s] = "--" + names[s];
            args[2 * s + 1] = f.toString();
        }
        return args;
    }

    /** The command line {@code args} followed by the split options {@code splits}. */
    static String[] concat(String[] splits, String... args) {
        String[] out = java.util.Arrays.copyOf(args, args.length + splits.length);
        System.arraycopy(splits, 0, out, args.length, splits.length);
        return out;
    }

    @Test
    void aResponseDetectorSeparatesASignalInTheResponseAndScoresPairsInDetectAndServe() throws Exception {
        Random rnd = new Random(7);
        Path train = pairs("train", 120, rnd), val = pairs("val", 60, rnd), test = pairs("test", 60, rnd);
        Path model = CliTestSupport.fixtures().resolve("gpt_neox_tiny");
        Path det = tmp.resolve("det"), out = tmp.resolve("probe");
        CliTestSupport.Result r = CliTestSupport.run("probe", "--model", model.toString(), "--pool-scope", "response",
                "--hooks", "blocks.1.hook_resid_post", "--detectors", "logistic", "--bootstrap", "0",
                "--train", train.toString(), "--val", val.toString(), "--test", test.toString(), "--out", out.toString(),
                "--save-detector", det.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("pool scope response: 240 prompts (240 conversations)"), r.err());
        JsonNode probe = JSON.readTree(out.resolve("probe.json").toFile());
        assertEquals("response", probe.path("run").path("scope").asText());
        double auc = probe.path("hooks").get(0).path("detectors").path("logistic").path("test").path("auroc").path("value").asDouble();
        assertTrue(auc > 0.9, "response detector test AUROC " + auc);
        // the words-only baselines read the same part of each pair as the detector
        assertEquals("the last assistant message", probe.path("baselines").path("reads").asText());
        JsonNode dj = JSON.readTree(det.resolve("detector.json").toFile());
        assertEquals("response", dj.path("scope").asText());

        // The saved detector pools the response's tokens only, and scores pairs.
        List<Message> harmful = List.of(new Message("user", "river stone window paper"), new Message("assistant", "garden zorblax quiet yellow table"));
        List<Message> harmless = List.of(new Message("user", "river stone window paper"), new Message("assistant", "garden quiet yellow table morning"));
        try (HookedModel m = ModelLoader.load(model.toString(), null); Detector d = Detector.load(det, m)) {
            assertEquals(PoolScope.RESPONSE, d.scope());
            Detector.TokenScores ts = d.tokenScores(harmful);
            int[] all = m.encode("river stone window paper\n\ngarden zorblax quiet yellow table", null);
            assertEquals(all.length, ts.ids().length);
            assertEquals(all.length, ts.to());
            assertEquals("garden zorblax quiet yellow table", m.tokenizer().decode(java.util.Arrays.copyOfRange(ts.ids(), ts.from(), ts.to())),
                    "exactly the response's tokens");
            assertEquals("river stone window paper\n\n", m.tokenizer().decode(java.util.Arrays.copyOf(ts.ids(), ts.from())));
            assertTrue(d.score(harmful).score() > d.score(harmless).score());

            // jlens detect: pairs and conversations on stdin; bad lines are errors and the stream goes on.
            String in = JSON.createObjectNode().put("id", 1).put("prompt", "river stone window paper")
                    .put("response", "garden zorblax quiet yellow table") + "\n"
                    + "{\"id\": 2, \"messages\": [{\"role\": \"user\", \"content\": \"river stone window paper\"}, "
                    + "{\"role\": \"assistant\", \"content\": \"garden quiet yellow table morning\"}]}\n"
                    + "{\"id\": 3, \"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]}\n"
                    + "{\"id\": 4, \"text\": \"no response here\"}\n";
            CliTestSupport.Result dr = ProbeCommandTest.withStdin(in, "detect", "--detector", det.toString(), "--model", model.toString());
            assertEquals(1, dr.exitCode(), dr.err());
            List<JsonNode> lines = dr.out().lines().map(l -> {
                try {
                    return JSON.readTree(l);
                } catch (Exception e) {
                    throw new AssertionError(l, e);
                }
            }).toList();
            assertEquals(4, lines.size(), dr.out());
            assertEquals(d.score(harmful).score(), lines.get(0).get("score").asDouble(), 1e-9);
            assertEquals(d.score(harmless).score(), lines.get(1).get("score").asDouble(), 1e-9);
            assertTrue(lines.get(2).get("error").asText().contains("\"role\" is \"bot\""), lines.get(2).toString());
            assertTrue(lines.get(3).get("error").asText().contains("a single prompt has no response"), lines.get(3).toString());

            // jlens serve: a JSON body with messages, or prompt and response.
            HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            ObjectNode health = JSON.createObjectNode().put("status", "ok");
            try (DetectorServer server = new DetectorServer(DetectorServer.Scorer.of(d), health,
                    new DetectorServer.Config("127.0.0.1", 0, 1, 4, 4096, 5)).start()) {
                HttpResponse<String> ok = client.send(HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port() + "/v1/score"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\": \"river stone window paper\", \"response\": "
                                + "\"garden zorblax quiet yellow table\"}")).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, ok.statusCode(), ok.body());
                assertEquals(d.score(harmful).score(), JSON.readTree(ok.body()).get("score").asDouble(), 1e-9);
                HttpResponse<String> bad = client.send(HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:" + server.port() + "/v1/score"))
                        .POST(HttpRequest.BodyPublishers.ofString("{\"messages\": [{\"role\": \"user\"}]}")).build(),
                        HttpResponse.BodyHandlers.ofString());
                assertEquals(400, bad.statusCode());
                assertTrue(bad.body().contains("\\\"content\\\" is missing"), bad.body());
            }
        }
    }

    /** A chat model: stories260k with a template that knows system, user and assistant turns. */
    private Path chatModel(String name, String template) throws Exception {
        Path model = tmp.resolve(name);
        Files.createDirectories(model);
        Path src = CliTestSupport.fixtures().resolve("stories260k");
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) Files.copy(src.resolve(f), model.resolve(f));
        Files.writeString(model.resolve("tokenizer_config.json"), JSON.createObjectNode()
                .put("bos_token", "<s>").put("eos_token", "</s>").put("chat_template", template).toString());
        return model;
    }

    static final String TURNS = "{% for m in messages %}{{ '<s>[' + m['role'] + '] ' + m['content'] + ' </s>' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{ '<s>[assistant]' }}{% endif %}";

    @Test
    void postInstructionPoolingWorksAndFallsBackWhenTheTemplateWritesNothingAfterTheUser() throws Exception {
        Path model = chatModel("turns", TURNS);
        Path det = tmp.resolve("post");
        String[] small = smallSplits(tmp);
        CliTestSupport.Result r = CliTestSupport.run(concat(small, "probe", "--model", model.toString(), "--chat", "--pool", "post-instruction",
                "--bootstrap", "0", "--hooks", "blocks.2.hook_resid_post", "--detectors", "logistic",
                "--out", tmp.resolve("p1").toString(), "--save-detector", det.toString()));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode dj = JSON.readTree(det.resolve("detector.json").toFile());
        assertEquals("post-instruction", dj.path("scope").asText());
        assertEquals("mean", dj.path("pooling").asText());
        assertTrue(dj.path("training").path("post_instruction_fallback").isMissingNode());

        Path bare = chatModel("bare", "{% for m in messages %}{{ m['content'] }}{% endfor %}");
        Path det2 = tmp.resolve("fallback");
        r = CliTestSupport.run(concat(small, "probe", "--model", bare.toString(), "--chat", "--pool", "post-instruction",
                "--bootstrap", "0", "--hooks", "blocks.2.hook_resid_post", "--detectors", "logistic",
                "--out", tmp.resolve("p2").toString(), "--save-detector", det2.toString()));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("falls back to the last token of the user message"), r.err());
        dj = JSON.readTree(det2.resolve("detector.json").toFile());
        assertTrue(dj.path("training").path("post_instruction_fallback").asText().contains("last token of the user message"), dj.toString());
        try (HookedModel m = ModelLoader.load(bare.toString(), null); Detector d = Detector.load(det2, m)) {
            Detector.TokenScores ts = d.tokenScores("How do I bake bread?");
            assertEquals(ts.ids().length - 1, ts.from(), "the last token");
            assertEquals(d.params().logit(ts.raw()[ts.ids().length - 1]), ts.prompt().logit(), 1e-12);
        }

        r = CliTestSupport.run("probe", "--model", model.toString(), "--pool", "post-instruction", "--out", tmp.resolve("p3").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("needs --chat"), r.err());
        r = CliTestSupport.run("probe", "--model", model.toString(), "--chat", "--pool", "post-instruction", "--pool-scope", "response",
                "--out", tmp.resolve("p4").toString());
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("contradicts --pool-scope response"), r.err());
    }

    @Test
    void theBuiltinMultiTurnSetIsATestSplitForChatDetectors() throws Exception {
        Path model = chatModel("turns", TURNS);
        Path out = tmp.resolve("mt");
        String[] small = java.util.Arrays.copyOf(smallSplits(tmp), 4);
        CliTestSupport.Result r = CliTestSupport.run(concat(small, "probe", "--model", model.toString(), "--chat", "--pool-scope", "last-user",
                "--bootstrap", "0", "--hooks", "blocks.2.hook_resid_post", "--detectors", "logistic",
                "--test", "builtin:multi_turn", "--out", out.toString()));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode run = JSON.readTree(out.resolve("probe.json").toFile()).path("run");
        assertEquals(20, run.path("test").path("harmful").asInt());
        assertEquals(20, run.path("test").path("harmless").asInt());
        assertEquals("last-user", run.path("scope").asText());
        assertEquals("the last user message", JSON.readTree(out.resolve("probe.json").toFile()).path("baselines").path("reads").asText());

        // Without --chat the same model sees each conversation's plain rendering ("role: content" turns).
        r = CliTestSupport.run(concat(small, "probe", "--model", model.toString(), "--bootstrap", "0", "--hooks", "blocks.2.hook_resid_post",
                "--detectors", "logistic", "--test", "builtin:multi_turn", "--out", tmp.resolve("mt2").toString()));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("pool scope all: 100 prompts (40 conversations)") && !r.err().contains("chat template:"), r.err());
        run = JSON.readTree(tmp.resolve("mt2").resolve("probe.json").toFile()).path("run");
        assertEquals(20, run.path("test").path("harmful").asInt());
        assertEquals("all", run.path("scope").asText());
    }

    /**
     * A model without a chat template (the stories260k fixture) scores the built-in multi-turn conversations end to end:
     * a last-user detector fitted on single prompts, tested on builtin:multi_turn, saved, and scoring a conversation
     * from Java and from jlens detect exactly as the probe scored it, over exactly the last user message's tokens of
     * the plain rendering.
     */
    @Test
    void aMultiTurnConversationScoresThroughAPlainModelEndToEnd() throws Exception {
        Path model = CliTestSupport.fixtures().resolve("stories260k");
        Path out = tmp.resolve("plain-mt"), det = tmp.resolve("plain-mt-det");
        String[] small = java.util.Arrays.copyOf(smallSplits(tmp), 4);
        CliTestSupport.Result r = CliTestSupport.run(concat(small, "probe", "--model", model.toString(), "--pool-scope", "last-user",
                "--bootstrap", "0", "--hooks", "blocks.2.hook_resid_post", "--detectors", "logistic",
                "--test", "builtin:multi_turn", "--out", out.toString(), "--save-detector", det.toString()));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("pool scope last-user: 100 prompts (40 conversations)"), r.err());
        JsonNode run = JSON.readTree(out.resolve("probe.json").toFile()).path("run");
        assertEquals("last-user", run.path("scope").asText());
        assertEquals(20, run.path("test").path("harmless").asInt());
        assertEquals("last-user", JSON.readTree(det.resolve("detector.json").toFile()).path("scope").asText());

        Prompt conv = PromptSets.builtin("multi_turn").prompts().getFirst();
        double probeLogit = Double.NaN;
        for (String line : Files.readAllLines(out.resolve("test_scores.csv"))) {
            if (line.startsWith(conv.id() + ",")) probeLogit = Double.parseDouble(line.split(",")[6]);
        }
        assertTrue(!Double.isNaN(probeLogit), "the conversation is in test_scores.csv");
        try (HookedModel m = ModelLoader.load(model.toString(), null); Detector d = Detector.load(det, m)) {
            Detector.TokenScores ts = d.tokenScores(conv.messages());
            assertArrayEquals(m.encode(conv.text(), null), ts.ids(), "the plain rendering's tokens");
            String lastUser = conv.messages().getLast().content();
            assertEquals(lastUser, m.tokenizer().decode(java.util.Arrays.copyOfRange(ts.ids(), ts.from(), ts.to())).strip(),
                    "pooled over exactly the last user message");
            assertTrue(conv.text().endsWith("\n\nuser: " + lastUser), conv.text());
            double logit = d.score(conv.messages()).logit();
            assertEquals(probeLogit, logit, 1e-4, "the saved detector scores the conversation as the probe did");
            assertEquals(logit, ts.prompt().logit(), 1e-9);

            String in = JSON.createObjectNode().put("id", conv.id()).set("messages", JSON.valueToTree(conv.messages())).toString() + "\n";
            CliTestSupport.Result dr = ProbeCommandTest.withStdin(in, "detect", "--detector", det.toString(), "--model", model.toString());
            assertEquals(0, dr.exitCode(), dr.err());
            assertEquals(d.score(conv.messages()).score(), JSON.readTree(dr.out().lines().findFirst().orElseThrow()).get("score").asDouble(), 1e-9);
        }
    }
}
