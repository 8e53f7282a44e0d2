package dev.jlens.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import dev.jlens.testing.Fixtures;
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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Chat templates on the stories260k tokenizer with two ChatML special tokens added. The expected strings
 * are what Python's jinja2 3.1.6 renders with transformers' settings (ImmutableSandboxedEnvironment,
 * trim_blocks, lstrip_blocks, raise_exception) for the same template and messages.
 */
class ChatTemplateTest {

    /** A multi-line ChatML template: namespace(), whitespace control, a filtered for loop, raise_exception. */
    static final String CHATML = """
            {%- set ns = namespace(system=none) %}
            {%- for message in messages %}
                {%- if message['role'] == 'system' %}
                    {%- set ns.system = message['content'] %}
                {%- endif %}
            {%- endfor %}
            {{- bos_token }}
            {%- if ns.system is not none %}
            {{- '<|im_start|>system\\n' ~ ns.system | trim ~ '<|im_end|>\\n' }}
            {%- endif %}
            {%- for message in messages if message['role'] != 'system' %}
                {%- if message['role'] not in ['user', 'assistant'] %}
                    {{- raise_exception('Unknown role: ' ~ message['role']) }}
                {%- endif %}
            <|im_start|>{{ message['role'] }}
            {{ message['content'] | trim }}<|im_end|>
            {% endfor %}
            {%- if add_generation_prompt %}
            <|im_start|>assistant
            {% endif %}
            """;

    static final int IM_START = 512, IM_END = 513, BOS = 1;

    @TempDir
    static Path dir;
    static HfTokenizer tokenizer;

    @BeforeAll
    static void setUp() throws IOException {
        writeChatTokenizer(dir);
        Files.writeString(dir.resolve("chat_template.jinja"), CHATML);
        tokenizer = HfTokenizer.fromDirectory(dir);
    }

    @AfterAll
    static void tearDown() {
        tokenizer.close();
    }

    /** stories260k's tokenizer.json plus &lt;|im_start|&gt; (512) and &lt;|im_end|&gt; (513) as special added tokens. */
    static void writeChatTokenizer(Path target) throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode tok = (ObjectNode) om.readTree(Fixtures.dir("stories260k").resolve("tokenizer.json").toFile());
        ArrayNode added = (ArrayNode) tok.get("added_tokens");
        for (String[] t : new String[][]{{"512", "<|im_start|>"}, {"513", "<|im_end|>"}}) {
            added.addObject().put("id", Integer.parseInt(t[0])).put("content", t[1]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        Files.writeString(target.resolve("tokenizer.json"), om.writeValueAsString(tok));
        Files.writeString(target.resolve("tokenizer_config.json"),
                "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"<|im_end|>\", \"special\": true}}");
    }

    @Test
    void systemUserAndGenerationPromptRenderExactly() {
        ChatTemplate t = ChatTemplate.load(dir);
        assertTrue(t.origin().endsWith("chat_template.jinja"), t.origin());
        String text = t.render(List.of(new ChatTemplate.Message("system", " You are terse. "),
                new ChatTemplate.Message("user", "Hello there!")), true);
        assertEquals("<s><|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHello there!<|im_end|>\n"
                + "<|im_start|>assistant\n", text);
        assertEquals("<s><|im_start|>user\nHello there!<|im_end|>\n",
                t.render(List.of(new ChatTemplate.Message("user", "Hello there!")), false));
    }

    @Test
    void renderedChatEncodesWithSpecialTokensAndOneBos() {
        ChatTemplate t = ChatTemplate.load(dir);
        ChatTemplate.Rendered r = t.apply("Hello there!", " You are terse. ");
        int[] ids = tokenizer.encodeVerbatim(r.text()).ids();
        // The ids a Hugging Face tokenizer gives: the text is split at added tokens, each piece between them
        // goes through normaliser and BPE on its own, and no BOS is added (add_special_tokens=False).
        List<Integer> want = new ArrayList<>();
        want.add(BOS);
        want.add(IM_START);
        pieces(want, "system\nYou are terse.");
        want.add(IM_END);
        pieces(want, "\n");
        want.add(IM_START);
        pieces(want, "user\nHello there!");
        want.add(IM_END);
        pieces(want, "\n");
        want.add(IM_START);
        pieces(want, "assistant\n");
        assertArrayEquals(want.stream().mapToInt(Integer::intValue).toArray(), ids, Arrays.toString(ids));
        assertEquals(1, Arrays.stream(ids).filter(i -> i == BOS).count(), "one BOS: " + Arrays.toString(ids));
        // The same, written out: what the Rust tokenizers library (as in the fixtures) gives for this text.
        assertArrayEquals(new int[]{1, 512, 262, 422, 356, 411, 423, 13, 452, 277, 261, 276, 259, 285, 372, 426, 513,
                410, 13, 512, 318, 419, 285, 13, 440, 411, 306, 414, 383, 443, 513, 410, 13, 512, 261, 419, 419, 293, 413,
                303, 413, 13}, ids);
        // The tokenizer's own encode() adds a second BOS in front; verbatim encoding must not.
        assertEquals(BOS, tokenizer.encode(r.text())[0]);
        assertEquals(BOS, tokenizer.encode(r.text())[1], "encode() would double the template's BOS");
    }

    private static void pieces(List<Integer> into, String text) {
        for (int id : tokenizer.encodeVerbatim(text).ids()) into.add(id);
    }

    @Test
    void postInstructionIsWhatFollowsTheUserMessage() {
        ChatTemplate t = ChatTemplate.load(dir);
        assertEquals("<|im_end|>\n<|im_start|>assistant\n", t.postInstruction(null));
        ChatTemplate.Rendered r = t.apply("  Hello there!  ", null);
        assertEquals("<|im_end|>\n<|im_start|>assistant\n", r.postInstruction());
        assertEquals("<s><|im_start|>user\nHello there!", r.text().substring(0, r.userEnd()));
    }

    @Test
    void tokenOffsetsAreJavaStringIndicesEvenPastEmoji() {
        String text = "é😀 héllo<|im_end|>";
        TextTokenizer.Verbatim v = tokenizer.encodeVerbatim(text);
        assertEquals(IM_END, v.ids()[v.ids().length - 1]);
        assertEquals(text.indexOf("<|im_end|>"), v.starts()[v.starts().length - 1]);
    }

    @Test
    void namedTemplateListUsesDefaultOrTheNamedOne(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("tokenizer_config.json"), """
                {"bos_token": "<s>", "chat_template": [
                  {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}{% endfor %}"},
                  {"name": "tool_use", "template": "TOOLS {{ messages[0]['content'] }}"}]}""");
        var msgs = List.of(new ChatTemplate.Message("user", "hi"));
        assertEquals("<s>[user] hi", ChatTemplate.find(tmp).orElseThrow().render(msgs, true));
        assertEquals("TOOLS hi", ChatTemplate.find(tmp, "tool_use").orElseThrow().render(msgs, true));
        JlensException e = assertThrows(JlensException.class, () -> ChatTemplate.find(tmp, "rag"));
        assertTrue(e.getMessage().contains("\"rag\"") && e.getMessage().contains("tool_use"), e.getMessage());
    }

    @Test
    void stringTemplateInTokenizerConfig(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("tokenizer_config.json"), new ObjectMapper().createObjectNode()
                .put("bos_token", "<s>").put("eos_token", "</s>")
                .put("chat_template", "{% for m in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
                        + "{{ m['role'] | upper }}: {{ m['content'] | tojson }}{% if loop.last %}{{ eos_token }}{% endif %}{% endfor %}")
                .toString());
        ChatTemplate t = ChatTemplate.find(tmp).orElseThrow();
        assertEquals("<s>USER: \"say \\\"hi\\\"\"</s>", t.render(List.of(new ChatTemplate.Message("user", "say \"hi\"")), true));
    }

    @Test
    void modelWithoutTemplateIsAClearError(@TempDir Path tmp) throws IOException {
        Files.writeString(tmp.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        assertTrue(ChatTemplate.find(tmp).isEmpty());
        JlensException e = assertThrows(JlensException.class, () -> ChatTemplate.load(tmp));
        assertTrue(e.getMessage().contains("--chat") && e.getMessage().contains("no chat template"), e.getMessage());
    }

    @Test
    void raiseExceptionBecomesAClearError() {
        ChatTemplate t = ChatTemplate.load(dir);
        JlensException e = assertThrows(JlensException.class,
                () -> t.render(List.of(new ChatTemplate.Message("tool", "x")), true));
        assertTrue(e.getMessage().contains("Unknown role: tool"), e.getMessage());
        assertTrue(e.getMessage().contains("chat_template.jinja"), e.getMessage());
        // the template still works afterwards
        assertTrue(t.render(List.of(new ChatTemplate.Message("user", "ok")), true).endsWith("assistant\n"));
    }

    @Test
    void syntaxErrorNamesTheTemplate() {
        ChatTemplate t = new ChatTemplate("{% for m in messages %}{{ m.content }}", "my_template.jinja", Map.of());
        JlensException e = assertThrows(JlensException.class, () -> t.render(List.of(new ChatTemplate.Message("user", "x")), true));
        assertTrue(e.getMessage().startsWith("my_template.jinja: the chat template does not parse"), e.getMessage());
    }

    @Test
    void runawayTemplateIsStopped() {
        ChatTemplate t = new ChatTemplate(
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop.jinja", Map.of());
        JlensException e = assertThrows(JlensException.class, () -> t.render(List.of(), true));
        assertTrue(e.getMessage().contains("loop.jinja") && e.getMessage().contains("loop forever"), e.getMessage());
    }
}
