package dev.jlens.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPattern;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.testing.Fixtures;
import dev.jlens.tokenizer.ChatPrompt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Chat prompts through a real trained Llama (stories260k) given Llama 2's chat template. */
class ChatPromptTest {

    /** Llama-2-chat's template as Meta's tokenizer_config.json ships it (default system prompt left out). */
    static final String LLAMA2_CHAT = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
            + "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
            + "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
            + "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
            + "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
            + "{% if loop.index0 == 0 and system_message != false %}"
            + "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
            + "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
            + "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
            + "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    @TempDir
    static Path dir;
    static HookedModel model;

    /** A stories260k folder with a tokenizer_config.json holding the template. */
    static Path writeChatModel(Path target, String template) throws IOException {
        Path src = Fixtures.dir("stories260k");
        for (String f : List.of("config.json", "model.safetensors", "tokenizer.json")) {
            Files.copy(src.resolve(f), target.resolve(f));
        }
        Files.writeString(target.resolve("tokenizer_config.json"), new ObjectMapper().createObjectNode()
                .put("bos_token", "<s>").put("eos_token", "</s>").put("chat_template", template).toString());
        return target;
    }

    @BeforeAll
    static void load() throws IOException {
        model = ModelLoader.loadFolder(new ModelLocation("stories260k-chat", null, writeChatModel(dir, LLAMA2_CHAT), false));
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void encodesTheRenderedChatWithTheTemplatesOwnBos() {
        ChatPrompt p = model.encodeChat("Tell me a story.", "Be brief.", null);
        // Python jinja2 3.1.6 with transformers' settings renders exactly this.
        assertEquals("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nTell me a story. [/INST]", p.text());
        assertEquals(1, p.ids()[0], "starts with BOS");
        assertEquals(1, Arrays.stream(p.ids()).filter(i -> i == 1).count(), "one BOS only: " + Arrays.toString(p.ids()));
        assertArrayEquals(model.tokenizer().encodeVerbatim(p.text()).ids(), p.ids());
        // The plain encoding would put the tokenizer's BOS in front of the template's.
        int[] plain = model.tokenizer().encode(p.text());
        assertEquals(p.ids().length + 1, plain.length);
    }

    @Test
    void postInstructionTokensAreTheClosingInstTag() {
        ChatPrompt p = model.encodeChat("Tell me a story.", null, null);
        assertEquals(" [/INST]", model.chatTemplate().postInstruction(null));
        List<String> tokens = model.tokenizer().tokens(p.text()).subList(1, p.ids().length + 1);
        String tail = String.join("", tokens.subList(tokens.size() - p.postInstruction(), tokens.size()));
        assertEquals("▁[/INST]", tail, tokens.toString());
        // The count does not depend on the message.
        assertEquals(p.postInstruction(), model.encodeChat("Why is the sky blue?", "Be kind.", null).postInstruction());
    }

    @Test
    void postInstructionPoolingIsTheMeanOverThosePositions() {
        List<ChatPrompt> prompts = List.of(model.encodeChat("Tell me a story.", null, null),
                model.encodeChat("Lily had a red ball. What did she do?", "You are a storyteller.", null));
        List<int[]> ids = prompts.stream().map(ChatPrompt::ids).toList();
        int[] post = prompts.stream().mapToInt(ChatPrompt::postInstruction).toArray();
        HookPattern hook = HookPattern.parse("blocks.3.hook_resid_mid");
        ActivationCache all = model.runWithCache(ids, CacheRequest.of(hook).pooling(Pooling.ALL).batchSize(8));
        ActivationCache pooled = model.runWithCache(ids, CacheRequest.of(hook).into(new ActivationCache(Pooling.POST_INSTRUCTION, post)).batchSize(1));
        FloatTensor got = pooled.pooled("blocks.3.hook_resid_mid");
        for (int i = 0; i < ids.size(); i++) {
            FloatTensor t = all.perPrompt("blocks.3.hook_resid_mid").get(i);
            for (int j = 0; j < t.cols(); j++) {
                double s = 0;
                for (int r = t.rows() - post[i]; r < t.rows(); r++) s += t.get(r, j);
                assertEquals(s / post[i], got.get(i, j), 1e-6, "prompt " + i + " dim " + j);
            }
        }
    }

    @Test
    void postInstructionPoolingWithoutChatPromptsIsAClearError() {
        JlensException e = assertThrows(JlensException.class, () -> new ActivationCache(Pooling.POST_INSTRUCTION));
        assertTrue(e.getMessage().contains("--chat"), e.getMessage());
    }

    @Test
    void overlongChatPromptKeepsTheTemplateEnds() {
        String user = "Once upon a time there was a little dog. ".repeat(80);
        List<String> warnings = new ArrayList<>();
        ChatPrompt p = model.encodeChat(user, null, warnings::add);
        int max = model.info().maxPositions();
        int[] full = model.tokenizer().encodeVerbatim(p.text()).ids();
        assertTrue(full.length > max, "the test prompt must exceed the context: " + full.length);
        assertEquals(max, p.ids().length);
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("cut"), warnings.get(0));
        int post = p.postInstruction();
        assertArrayEquals(Arrays.copyOfRange(full, full.length - post, full.length),
                Arrays.copyOfRange(p.ids(), max - post, max), "post-instruction tokens kept");
        assertArrayEquals(Arrays.copyOf(full, max - post), Arrays.copyOf(p.ids(), max - post), "head kept");
    }

    @Test
    void templateThatRaisesIsAClearError() {
        JlensException e = assertThrows(JlensException.class, () -> model.chatTemplate().render(List.of(
                new dev.jlens.tokenizer.ChatTemplate.Message("assistant", "Hi"),
                new dev.jlens.tokenizer.ChatTemplate.Message("user", "Hi")), true));
        assertTrue(e.getMessage().contains("Conversation roles must alternate"), e.getMessage());
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }

    @Test
    void modelWithoutChatTemplateIsAClearError() {
        try (HookedModel base = ModelLoader.loadFolder(new ModelLocation("llama_tiny", null, Fixtures.dir("llama_tiny"), false))) {
            JlensException e = assertThrows(JlensException.class, () -> base.encodeChat("Hi"));
            assertTrue(e.getMessage().contains("no chat template") && e.getMessage().contains("--chat"), e.getMessage());
        }
    }
}
