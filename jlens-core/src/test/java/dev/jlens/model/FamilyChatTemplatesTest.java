package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.testing.ChatFixtures;
import dev.jlens.tokenizer.ChatPrompt;
import dev.jlens.tokenizer.ChatTemplate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chat templates the new families ship, through the Jinja engine and the tokenizer, on the tiny fixtures of
 * those families. The templates (test resources chat-templates/NAME/tokenizer_config.json) are the
 * chat_template strings of the published tokenizer_config.json of Qwen/Qwen3-0.6B, google/gemma-2-2b-it,
 * microsoft/Phi-3-mini-4k-instruct and allenai/OLMo-2-1124-7B-Instruct, written out from their published text;
 * the expected renderings are what Hugging Face's apply_chat_template gives for them. The fixtures' 512-token
 * vocabulary gets each template's markers as added special tokens, so post-instruction pooling can be checked
 * token for token: the last tokens of a chat prompt must be exactly the template's text after the user's
 * message.
 */
class FamilyChatTemplatesTest {

    @TempDir
    Path tmp;

    private HookedModel chatModel(String fixture, String template, String... specials) throws IOException {
        return ChatFixtures.withPublished(tmp, fixture, template, specials);
    }

    /**
     * The prompt renders as expected, and its post-instruction tokens are exactly those of the text after the
     * user's message: the first of them starts where the message ends. Where that text starts with a special
     * token they are also its own encoding.
     */
    private static void assertChat(HookedModel m, ChatPrompt p, String wantText, String wantPost) {
        assertEquals(wantText, p.text());
        var v = m.tokenizer().encodeVerbatim(wantText);
        assertArrayEquals(v.ids(), p.ids());
        int n = p.ids().length, post = p.postInstruction();
        assertTrue(post > 0 && post < n, "post-instruction tokens: " + post);
        assertEquals(wantText.length() - wantPost.length(), v.starts()[n - post], "first post-instruction token of " + wantText);
        if (wantPost.startsWith("<")) {
            assertArrayEquals(m.tokenizer().encodeVerbatim(wantPost).ids(), Arrays.copyOfRange(p.ids(), n - post, n));
        }
    }

    @Test
    void qwen3ThinkingSwitchIsATemplateVariable() throws IOException {
        try (HookedModel m = chatModel("qwen3_tiny", "Qwen3-0.6B", "<|im_start|>", "<|im_end|>", "<think>", "</think>")) {
            String user = "<|im_start|>user\nTell me a story.<|im_end|>\n";
            ChatPrompt thinking = m.encodeChat("Tell me a story.", null, ChatTemplate.Options.NONE, null);
            assertChat(m, thinking, user + "<|im_start|>assistant\n", "<|im_end|>\n<|im_start|>assistant\n");
            ChatTemplate.Options off = new ChatTemplate.Options(Map.of("enable_thinking", false), false);
            ChatPrompt direct = m.encodeChat("Tell me a story.", null, off, null);
            assertChat(m, direct, user + "<|im_start|>assistant\n<think>\n\n</think>\n\n",
                    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
            assertTrue(direct.postInstruction() > thinking.postInstruction() + 3, "<think>, </think> and new lines added");
            ChatPrompt sys = m.encodeChat("Tell me a story.", "Be brief.", off, null);
            assertChat(m, sys, "<|im_start|>system\nBe brief.<|im_end|>\n" + user + "<|im_start|>assistant\n<think>\n\n</think>\n\n",
                    "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
        }
    }

    @Test
    void gemmaRefusesASystemRoleUnlessAskedToFoldIt() throws IOException {
        for (String fixture : List.of("gemma2_tiny", "gemma3_tiny")) {
            try (HookedModel m = chatModel(fixture, "gemma-2-2b-it", "<bos>", "<start_of_turn>", "<end_of_turn>")) {
                String post = "<end_of_turn>\n<start_of_turn>model\n";
                assertChat(m, m.encodeChat("Tell me a story.", null, ChatTemplate.Options.NONE, null),
                        "<bos><start_of_turn>user\nTell me a story.<end_of_turn>\n<start_of_turn>model\n", post);
                JlensException e = assertThrows(JlensException.class, () -> m.encodeChat("Tell me a story.", "Be brief.", null));
                assertTrue(e.getMessage().contains("System role not supported") && e.getMessage().contains("tokenizer_config.json"),
                        e.getMessage());
                ChatPrompt folded = m.encodeChat("Tell me a story.", "Be brief.", new ChatTemplate.Options(Map.of(), true), null);
                assertChat(m, folded, "<bos><start_of_turn>user\nBe brief.\n\nTell me a story.<end_of_turn>\n<start_of_turn>model\n", post);
            }
        }
    }

    @Test
    void phi3AndOlmo2TemplatesEndTheTurnTheirOwnWay() throws IOException {
        try (HookedModel m = chatModel("phi3_tiny", "Phi-3-mini-4k-instruct", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")) {
            assertChat(m, m.encodeChat("Tell me a story.", "Be brief.", null),
                    "<|system|>\nBe brief.<|end|>\n<|user|>\nTell me a story.<|end|>\n<|assistant|>\n", "<|end|>\n<|assistant|>\n");
        }
        try (HookedModel m = chatModel("olmo2_tiny", "OLMo-2-1124-7B-Instruct", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>")) {
            assertChat(m, m.encodeChat("Tell me a story.", null, null),
                    "<|endoftext|><|user|>\nTell me a story.\n<|assistant|>\n", "\n<|assistant|>\n");
        }
    }
}
