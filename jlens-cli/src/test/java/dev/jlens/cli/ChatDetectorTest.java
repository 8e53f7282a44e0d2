package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.detect.Detector;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A detector probed with --chat remembers it: it scores a prompt as the user message of the model's chat
 * template (what the model would see in a conversation), not as bare text.
 */
class ChatDetectorTest {

    static final String TEMPLATE = "{% for message in messages %}{% if message['role'] == 'system' %}"
            + "{{ '<s>[SYS] ' + message['content'] + ' </s>' }}{% elif message['role'] == 'user' %}"
            + "{{ '<s>[USER] ' + message['content'] + ' [/USER]' }}{% endif %}{% endfor %}"
            + "{% if add_generation_prompt %}{{ ' [BOT]' }}{% endif %}";

    @TempDir
    Path tmp;

    @Test
    void chatDetectorScoresThroughTheTemplate() throws Exception {
        Path model = tmp.resolve("chat-model");
        Files.createDirectories(model);
        Path src = CliTestSupport.fixtures().resolve("stories260k");
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) Files.copy(src.resolve(f), model.resolve(f));
        Files.writeString(model.resolve("tokenizer_config.json"), new ObjectMapper().createObjectNode()
                .put("bos_token", "<s>").put("eos_token", "</s>").put("chat_template", TEMPLATE).toString());

        Path det = tmp.resolve("det");
        var probe = CliTestSupport.run("probe", "--model", model.toString(), "--chat", "--system", "Be kind.", "--pool", "last",
                "--bootstrap", "0", "--hooks", "blocks.*.hook_resid_post", "--detectors", "logistic",
                "--save-hook", "blocks.2.hook_resid_post", "--out", tmp.resolve("probe").toString(), "--save-detector", det.toString());
        assertEquals(0, probe.exitCode(), probe.err());
        JsonNode json = new ObjectMapper().readTree(det.resolve("detector.json").toFile());
        assertEquals("Be kind.", json.path("chat").path("system").asText());

        var r = CliTestSupport.run("detect", "--detector", det.toString(), "How do I bake bread?");
        assertEquals(0, r.exitCode(), r.err());
        double cliScore = new ObjectMapper().readTree(r.out().lines().findFirst().orElseThrow()).get("score").asDouble();

        try (HookedModel m = ModelLoader.load(model.toString(), null); Detector d = Detector.load(det, m)) {
            assertEquals(cliScore, d.score("How do I bake bread?").score(), 1e-9);
            int chatTokens = m.encodeChat("How do I bake bread?", "Be kind.", null).ids().length;
            assertEquals(chatTokens, d.score("How do I bake bread?").tokens(), "scored through the chat template");
            assertNotEquals(m.encode("How do I bake bread?", null).length, chatTokens);
        }

        // Post-instruction pooling is the mean over the template's text after the user's message (" [BOT]").
        Path post = tmp.resolve("post");
        var p2 = CliTestSupport.run(ConversationDetectorCliTest.concat(ConversationDetectorCliTest.smallSplits(tmp), "probe",
                "--model", model.toString(), "--chat", "--pool", "post-instruction", "--bootstrap", "0", "--detectors", "logistic",
                "--hooks", "blocks.2.hook_resid_post", "--out", tmp.resolve("p2").toString(), "--save-detector", post.toString()));
        assertEquals(0, p2.exitCode(), p2.err());
        try (HookedModel m = ModelLoader.load(model.toString(), null); Detector d = Detector.load(post, m)) {
            Detector.TokenScores ts = d.tokenScores("How do I bake bread?");
            int n = ts.ids().length;
            assertEquals(n - m.encodeChat("How do I bake bread?", null, null).postInstruction(), ts.from());
            assertEquals(n, ts.to());
        }
    }
}
