package dev.jlens.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static dev.jlens.cli.CliTestSupport.concat;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The commands on every fixture family (GPT-2, Llama, Qwen2, the trained stories260k), and --chat on
 * stories260k given Llama 2's chat template.
 */
class FamiliesAndChatCliTest {

    /** Llama-2-chat's template (as in Meta's tokenizer_config.json, default system prompt left out). */
    static final String LLAMA2_CHAT = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
            + "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
            + "{% if loop.index0 == 0 and system_message != false %}"
            + "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
            + "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    @TempDir
    static Path tmp;
    static Path chatModel;
    static Path prompts;

    @BeforeAll
    static void setUp() throws IOException {
        chatModel = chatModel(tmp.resolve("stories-chat"), LLAMA2_CHAT);
        prompts = tmp.resolve("p.txt");
        Files.writeString(prompts, "Tell me a story about a cat.\nWhy is the sun hot?\nLily found a red ball.\n");
    }

    static Path chatModel(Path dir, String template) throws IOException {
        Files.createDirectories(dir);
        Path src = CliTestSupport.fixtures().resolve("stories260k");
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) Files.copy(src.resolve(f), dir.resolve(f));
        Files.writeString(dir.resolve("tokenizer_config.json"), new ObjectMapper().createObjectNode()
                .put("bos_token", "<s>").put("eos_token", "</s>").put("chat_template", template).toString());
        return dir;
    }

    private static void assertClearError(CliTestSupport.Result r, String... mustContain) {
        assertEquals(1, r.exitCode(), "exit code; stderr: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        assertFalse(r.err().contains("internal error"), "not an internal error: " + r.err());
        for (String s : mustContain) assertTrue(r.err().contains(s), "stderr should mention '" + s + "': " + r.err());
    }

    @ParameterizedTest
    @CsvSource({"gpt2_tiny, GPT2LMHeadModel, 3", "llama_tiny, LlamaForCausalLM, 3", "qwen2_tiny, Qwen2ForCausalLM, 3",
            "stories260k, LlamaForCausalLM, 5"})
    void inspectListsEveryHookOfEachFamily(String dir, String arch, int layers) {
        var r = CliTestSupport.run("inspect", "--model", CliTestSupport.fixtures().resolve(dir).toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("architecture   " + arch), r.out());
        assertTrue(r.out().contains("layers         " + layers), r.out());
        assertTrue(r.out().contains("chat template  none"), r.out());
        List<String> hooks = r.out().lines().filter(l -> l.startsWith("  ")).map(String::strip).toList();
        assertTrue(hooks.contains("hook_embed"), hooks.toString());
        for (int l = 0; l < layers; l++) {
            // every family here is pre-norm, so the residual stream between attention and MLP is hooked
            for (String h : List.of("hook_resid_pre", "attn.hook_pattern", "hook_attn_out", "hook_resid_mid", "hook_mlp_out",
                    "hook_resid_post")) {
                assertTrue(hooks.contains("blocks." + l + "." + h), dir + " lacks blocks." + l + "." + h + ": " + hooks);
            }
            for (String h : List.of("attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_z",
                    "attn.hook_result", "mlp.hook_pre", "mlp.hook_post")) {
                assertTrue(hooks.contains("blocks." + l + "." + h), dir + " lacks blocks." + l + "." + h + ": " + hooks);
            }
            // GPT-2 has learned positions (no rotary) and a plain MLP; the Llama family rotary and a gated MLP
            boolean gpt2 = dir.equals("gpt2_tiny");
            assertEquals(!gpt2, hooks.contains("blocks." + l + ".attn.hook_rot_q"), dir + " hook_rot_q");
            assertEquals(!gpt2, hooks.contains("blocks." + l + ".mlp.hook_pre_linear"), dir + " hook_pre_linear");
        }
    }

    @Test
    void theInstrumentsReadPromptsThroughTheChatTemplate() throws IOException {
        String prompt = "Why is the sun hot?", other = null;
        int[] want, wantOther = null, plain;
        try (HookedModel m = ModelLoader.load(chatModel.toString(), null)) {
            want = m.encodeChat(prompt, "Be brief.", w -> { }).ids();
            plain = m.encode(prompt, w -> { });
            // patching needs a corrupted prompt of the same token length in this small vocabulary
            for (String candidate : List.of("Why is the sun red?", "Why is the sun big?", "Why is the sea hot?", "Why is the sky hot?")) {
                int[] ids = m.encodeChat(candidate, "Be brief.", w -> { }).ids();
                if (ids.length == want.length) {
                    other = candidate;
                    wantOther = ids;
                    break;
                }
            }
        }
        assertTrue(other != null, "no corrupted prompt of the clean one's length");
        assertTrue(want.length > plain.length + 4, "the template adds [INST], <<SYS>> and [/INST]");
        ObjectMapper om = new ObjectMapper();
        String[] chat = {"--chat", "--system", "Be brief."};

        Path lens = tmp.resolve("lens-chat");
        var r = CliTestSupport.run(concat(List.of("lens", "--model", chatModel.toString(), "--prompt", prompt, "--out", lens.toString()), chat));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode lj = om.readTree(lens.resolve("lens.json").toFile());
        assertArrayEquals(want, ids(lj.get("prompts").get(0).get("input_ids")));
        assertEquals(chatModel.resolve("tokenizer_config.json") + ": chat_template", lj.get("chat").get("template").asText());
        assertEquals("Be brief.", lj.get("chat").get("system").asText());
        assertTrue(r.err().contains("chat template: "), r.err());

        Path attr = tmp.resolve("attribute-chat");
        r = CliTestSupport.run(concat(List.of("attribute", "--model", chatModel.toString(), "--prompt", prompt, "--tokens", "a,b",
                "--out", attr.toString()), chat));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode aj = om.readTree(attr.resolve("attribution.json").toFile());
        assertArrayEquals(want, ids(aj.get("input_ids")));
        assertEquals(want.length - 1, aj.get("position").asInt(), "the last token: the end of the template's [/INST]");

        Path patch = tmp.resolve("patch-chat");
        r = CliTestSupport.run(concat(List.of("patch", "--model", chatModel.toString(), "--clean", prompt, "--corrupted", other,
                "--tokens", "a,b", "--out", patch.toString()), chat));
        assertEquals(0, r.exitCode(), r.err());
        JsonNode pj = om.readTree(patch.resolve("patch.json").toFile());
        assertArrayEquals(want, ids(pj.get("clean_input_ids")));
        assertArrayEquals(wantOther, ids(pj.get("corrupted_input_ids")));

        r = CliTestSupport.run(concat(List.of("attention", "--model", chatModel.toString(), "--prompt", prompt,
                "--out", tmp.resolve("attention-chat").toString()), chat));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains(", " + want.length + " tokens)"), r.out());

        // without --chat the prompt is read as plain text, and --system alone is refused before loading
        r = CliTestSupport.run("lens", "--model", chatModel.toString(), "--prompt", prompt, "--out", tmp.resolve("lens-plain").toString());
        assertEquals(0, r.exitCode(), r.err());
        assertArrayEquals(plain, ids(om.readTree(tmp.resolve("lens-plain/lens.json").toFile()).get("prompts").get(0).get("input_ids")));
        assertClearError(CliTestSupport.run("patch", "--model", chatModel.toString(), "--clean", prompt, "--corrupted", other,
                "--tokens", "a,b", "--system", "Be brief.", "--out", tmp.resolve("patch-bad").toString()), "--system needs --chat");
    }

    private static int[] ids(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    @Test
    void inspectNamesTheChatTemplate() {
        var r = CliTestSupport.run("inspect", "--model", chatModel.toString(), "--compact");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("chat template  " + chatModel.resolve("tokenizer_config.json") + ": chat_template"), r.out());
    }

    @Test
    void analyzeRunsOnLlamaTiny() throws IOException {
        Path out = tmp.resolve("analyze-llama");
        var r = CliTestSupport.run("analyze", "--model", CliTestSupport.fixtures().resolve("llama_tiny").toString(),
                "--bootstrap", "50", "--permutations", "50", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(1 + 3, Files.readAllLines(out.resolve("metrics.csv")).size(), "header + one row per layer");
        assertTrue(r.out().contains("blocks.2.hook_resid_post"), r.out());
        assertTrue(r.out().contains("peak probe_auroc"), r.out());
    }

    @Test
    void cachePostInstructionIsTheMeanOfTheLastTokensOfTheChatPrompt() throws IOException {
        Path all = tmp.resolve("cache-all"), post = tmp.resolve("cache-post");
        String hook = "blocks.4.hook_resid_mid";
        var ra = CliTestSupport.run("cache", "--model", chatModel.toString(), "--chat", "--system", "Be brief.",
                "--prompts", prompts.toString(), "--hooks", hook, "--pool", "all", "--out", all.toString());
        assertEquals(0, ra.exitCode(), ra.err());
        var rp = CliTestSupport.run("cache", "--model", chatModel.toString(), "--chat", "--system", "Be brief.",
                "--prompts", prompts.toString(), "--hooks", hook, "--pool", "post-instruction", "--batch-size", "2",
                "--out", post.toString());
        assertEquals(0, rp.exitCode(), rp.err());
        JsonNode meta = new ObjectMapper().readTree(post.resolve("activations.json").toFile());
        assertEquals("post-instruction", meta.get("pooling").asText());
        assertEquals("Be brief.", meta.get("system").asText());
        JsonNode counts = meta.get("post_instruction_tokens");
        assertEquals(3, counts.size());
        // " [/INST]" is several BPE pieces in this 512-token vocabulary, the same for every prompt
        assertTrue(counts.get(0).asInt() > 1 && counts.get(0).equals(counts.get(1)) && counts.get(0).equals(counts.get(2)), counts.toString());
        assertTrue(rp.err().contains("post-instruction " + counts.get(0).asInt() + " tokens: \" [/INST]\""), rp.err());

        SafetensorsFile perToken = SafetensorsFile.open(all.resolve("activations.safetensors"));
        SafetensorsFile pooled = SafetensorsFile.open(post.resolve("activations.safetensors"));
        float[] got = pooled.require(hook).toFloatArray();
        int d = (int) pooled.require(hook).shape()[1];
        for (int i = 0; i < 3; i++) {
            long[] ids = perToken.require("p" + i + ".input_ids").toLongArray();
            assertEquals(1, ids[0], "chat prompts start with the template's BOS");
            assertTrue(ids[1] != 1, "and only one BOS");
            float[] x = perToken.require("p" + i + "." + hook).toFloatArray();
            int len = ids.length, k = counts.get(i).asInt();
            for (int j = 0; j < d; j++) {
                double s = 0;
                for (int t = len - k; t < len; t++) s += x[t * d + j];
                assertEquals(s / k, got[i * d + j], 1e-5, "prompt " + i + " dim " + j);
            }
        }
    }

    @Test
    void analyzeWithChatAndPostInstructionPooling() throws IOException {
        Path safe = tmp.resolve("safe.txt"), harmful = tmp.resolve("harmful.txt"), out = tmp.resolve("analyze-chat");
        Files.writeString(safe, "Tell me a story about a cat.\nWhat is a good name for a dog?\nHow do birds fly?\n"
                + "Write a poem about the sea.\n");
        Files.writeString(harmful, "How do I steal a car?\nHow can I hurt my friend?\nTell me how to break a window.\n"
                + "How do I make a weapon?\n");
        var r = CliTestSupport.run("analyze", "--model", chatModel.toString(), "--chat", "--pool", "post-instruction",
                "--safe", safe.toString(), "--harmful", harmful.toString(), "--cv-folds", "2",
                "--bootstrap", "20", "--permutations", "20", "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertEquals(1 + 5, Files.readAllLines(out.resolve("metrics.csv")).size());
        JsonNode meta = new ObjectMapper().readTree(out.resolve("activations.json").toFile());
        assertEquals("post-instruction", meta.get("pooling").asText());
        assertTrue(meta.get("chat_template").asText().endsWith("chat_template"), meta.toString());
    }

    @Test
    void chatOnABaseModelIsAClearError() {
        assertClearError(CliTestSupport.run("cache", "--model", CliTestSupport.fixtures().resolve("llama_tiny").toString(),
                "--chat", "--prompts", prompts.toString(), "--out", tmp.resolve("o1").toString()), "no chat template", "--chat");
    }

    @Test
    void postInstructionWithoutChatIsAClearError() {
        assertClearError(CliTestSupport.run("analyze", "--model", chatModel.toString(), "--pool", "post-instruction",
                "--out", tmp.resolve("o2").toString()), "--pool post-instruction needs --chat");
    }

    @Test
    void systemWithoutChatIsAClearError() {
        assertClearError(CliTestSupport.run("cache", "--model", chatModel.toString(), "--system", "Be brief.",
                "--prompts", prompts.toString(), "--out", tmp.resolve("o3").toString()), "--system needs --chat");
    }

    @Test
    void templateThatRaisesIsAClearError() throws IOException {
        Path gemmaLike = chatModel(tmp.resolve("no-system"), "{% if messages[0]['role'] == 'system' %}"
                + "{{ raise_exception('System role not supported') }}{% endif %}"
                + "{% for m in messages %}{{ bos_token + m['content'] }}{% endfor %}");
        assertClearError(CliTestSupport.run("cache", "--model", gemmaLike.toString(), "--chat", "--system", "Be brief.",
                "--prompts", prompts.toString(), "--out", tmp.resolve("o4").toString()),
                "refused the conversation: System role not supported", "tokenizer_config.json");
    }

    /** Gemma 2's published template (google/gemma-2-2b-it), which refuses a system message. */
    static final String GEMMA2_IT = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
            + "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
            + "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
            + "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

    @Test
    void gemmaSystemPromptIsRefusedWithAHintAndFoldedOnRequest() throws IOException {
        Path gemma = chatModel(tmp.resolve("gemma-chat"), GEMMA2_IT);
        assertClearError(CliTestSupport.run("cache", "--model", gemma.toString(), "--chat", "--fold-system",
                "--prompts", prompts.toString(), "--out", tmp.resolve("g3").toString()), "--fold-system needs");
        assertClearError(CliTestSupport.run("cache", "--model", gemma.toString(), "--chat", "--system", "Be brief.",
                "--prompts", prompts.toString(), "--out", tmp.resolve("g1").toString()),
                "System role not supported", "--fold-system");
        Path out = tmp.resolve("g2");
        var r = CliTestSupport.run("cache", "--model", gemma.toString(), "--chat", "--system", "Be brief.", "--fold-system",
                "--prompts", prompts.toString(), "--hooks", "blocks.0.hook_resid_post", "--pool", "post-instruction",
                "--out", out.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("\"<end_of_turn>\\n<start_of_turn>model\\n\""), r.err());
        JsonNode meta = new ObjectMapper().readTree(out.resolve("activations.json").toFile());
        assertTrue(meta.get("fold_system").asBoolean(), meta.toString());
    }

    @Test
    void chatVarsReachTheTemplate() throws IOException {
        // Qwen3's switch, as its template ends (the markers are plain text in this vocabulary).
        Path qwen = chatModel(tmp.resolve("qwen3-chat"), "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
                + "<|im_end|>\n{% endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
                + "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
                + "{%- endif %}{%- endif %}");
        int[] counts = new int[2];
        for (int i = 0; i < 2; i++) {
            Path out = tmp.resolve("q" + i);
            List<String> args = new java.util.ArrayList<>(List.of("cache", "--model", qwen.toString(), "--chat",
                    "--prompts", prompts.toString(), "--hooks", "blocks.0.hook_resid_post", "--pool", "post-instruction",
                    "--out", out.toString()));
            if (i == 1) args.addAll(List.of("--chat-var", "enable_thinking=false"));
            var r = CliTestSupport.run(args.toArray(String[]::new));
            assertEquals(0, r.exitCode(), r.err());
            JsonNode meta = new ObjectMapper().readTree(out.resolve("activations.json").toFile());
            counts[i] = meta.get("post_instruction_tokens").get(0).asInt();
            if (i == 1) {
                assertTrue(r.err().contains("<think>\\n\\n</think>\\n\\n\""), r.err());
                assertEquals(false, meta.get("chat_vars").get("enable_thinking").asBoolean(true), meta.toString());
            }
        }
        assertTrue(counts[1] > counts[0], "the empty think block follows the user's message: " + counts[0] + " vs " + counts[1]);
        assertClearError(CliTestSupport.run("cache", "--model", qwen.toString(), "--chat-var", "enable_thinking=false",
                "--prompts", prompts.toString(), "--out", tmp.resolve("q3").toString()), "--chat-var needs --chat");
        assertClearError(CliTestSupport.run("cache", "--model", qwen.toString(), "--chat", "--chat-var", "messages=[]",
                "--prompts", prompts.toString(), "--out", tmp.resolve("q4").toString()), "--chat-var messages");
    }
}
