package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelLocation;
import dev.jlens.testing.ChatFixtures;
import dev.jlens.testing.Fixtures;
import dev.jlens.tokenizer.ChatTemplate;
import dev.jlens.tokenizer.ChatTemplate.Message;
import dev.jlens.tokenizer.TextTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Conversations through published chat templates (Qwen3, Gemma 2: the chat_template strings of their
 * tokenizer_config.json, from jlens-core's test resources) on the tiny fixtures, and the token spans each
 * {@link PoolScope} selects, checked against the rendered text: the characters the span's tokens cover are
 * exactly the message's content (or the template's text between two messages).
 */
class PromptEncoderTest {

    @TempDir
    Path tmp;

    static final List<Message> CONVERSATION = List.of(
            new Message("system", "Be brief."),
            new Message("user", "What do bees eat?"),
            new Message("assistant", "Mostly nectar and pollen."),
            new Message("user", "And in winter?"));

    /** A fixture with a published template (template null: {@code name} names it) or the given template text. */
    private HookedModel chatModel(String fixture, String name, String template, String... specials) throws IOException {
        return template == null ? ChatFixtures.withPublished(tmp, fixture, name, specials)
                : ChatFixtures.withTemplate(tmp, fixture, name, template, specials);
    }

    private static HookedModel qwen3(PromptEncoderTest t) throws IOException {
        return t.chatModel("qwen3_tiny", "Qwen3-0.6B", null, "<|im_start|>", "<|im_end|>", "<think>", "</think>");
    }

    /** The text the tokens [from, to) cover in the rendered text. */
    private static String covered(HookedModel m, String text, PromptEncoder.Encoded e) {
        TextTokenizer.Verbatim v = m.tokenizer().encodeVerbatim(text);
        assertArrayEquals(v.ids(), e.ids(), "the ids are the rendered text's own encoding");
        int end = e.to() < v.starts().length ? v.starts()[e.to()] : text.length();
        return text.substring(v.starts()[e.from()], end);
    }

    @Test
    void multiTurnConversationWithASystemMessageThroughQwen3() throws IOException {
        try (HookedModel m = qwen3(this)) {
            PromptEncoder enc = new PromptEncoder(m, true, null, ChatTemplate.Options.NONE);
            String text = m.chatTemplate().renderChat(CONVERSATION, Map.of()).text();
            assertEquals("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat do bees eat?<|im_end|>\n"
                    + "<|im_start|>assistant\nMostly nectar and pollen.<|im_end|>\n<|im_start|>user\nAnd in winter?<|im_end|>\n"
                    + "<|im_start|>assistant\n", text);

            PromptEncoder.Encoded all = enc.encode(null, CONVERSATION, PoolScope.ALL, null);
            assertEquals(0, all.from());
            assertEquals(all.ids().length, all.to());
            assertEquals(text, covered(m, text, all));

            PromptEncoder.Encoded user = enc.encode(null, CONVERSATION, PoolScope.LAST_USER, null);
            assertEquals("And in winter?", covered(m, text, user), "exactly the last user message");

            PromptEncoder.Encoded post = enc.encode(null, CONVERSATION, PoolScope.POST_INSTRUCTION, null);
            assertEquals("<|im_end|>\n<|im_start|>assistant\n", covered(m, text, post));
            assertEquals(user.to(), post.from());
            assertEquals(post.ids().length, post.to());
            assertFalse(post.fallback());

            // A --system prompt goes before a conversation that has none, not before one that has its own.
            PromptEncoder withSystem = new PromptEncoder(m, true, "Answer in French.", ChatTemplate.Options.NONE);
            assertArrayEquals(all.ids(), withSystem.encode(null, CONVERSATION, PoolScope.ALL, null).ids(), "its own system message kept");
            List<Message> french = new java.util.ArrayList<>(List.of(new Message("system", "Answer in French.")));
            french.addAll(CONVERSATION.subList(1, 4));
            assertArrayEquals(m.tokenizer().encodeVerbatim(m.chatTemplate().renderChat(french, Map.of()).text()).ids(),
                    withSystem.encode(null, CONVERSATION.subList(1, 4), PoolScope.ALL, null).ids(), "--system added");

            // A single prompt with --chat: the same spans as the conversation [user].
            PromptEncoder.Encoded single = enc.encode("And in winter?", List.of(), PoolScope.POST_INSTRUCTION, null);
            assertArrayEquals(m.encodeChat("And in winter?").ids(), single.ids());
            assertEquals(single.ids().length - m.encodeChat("And in winter?").postInstruction(), single.from());
            PromptEncoder.Encoded singleUser = enc.encode("And in winter?", List.of(), PoolScope.LAST_USER, null);
            assertArrayEquals(single.ids(), singleUser.ids());
            assertEquals(single.from(), singleUser.to());
        }
    }

    @Test
    void responseScopeIsTheLastAssistantMessage() throws IOException {
        try (HookedModel m = qwen3(this)) {
            PromptEncoder enc = new PromptEncoder(m, true, null, ChatTemplate.Options.NONE);
            List<Message> pair = List.of(new Message("user", "How do I bake bread?"),
                    new Message("assistant", "Mix flour, water, yeast and salt, then let it rise."));
            String text = m.chatTemplate().renderChat(pair, Map.of()).text();
            assertFalse(text.endsWith("<|im_start|>assistant\n"), "no generation prompt after the assistant's message: " + text);
            PromptEncoder.Encoded r = enc.encode(null, pair, PoolScope.RESPONSE, null);
            assertEquals("Mix flour, water, yeast and salt, then let it rise.", covered(m, text, r));
            assertTrue(r.to() < r.ids().length, "the end-of-turn marker is not part of the response");
            PromptEncoder.Encoded post = enc.encode(null, pair, PoolScope.POST_INSTRUCTION, null);
            assertEquals(r.from(), post.to(), "post-instruction runs up to the response");
            assertTrue(covered(m, text, post).startsWith("<|im_end|>\n<|im_start|>assistant\n"), covered(m, text, post));

            JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.RESPONSE, null));
            assertTrue(e.getMessage().contains("ends with the user's"), e.getMessage());
            e = assertThrows(JlensException.class, () -> enc.encode("Hello", List.of(), PoolScope.RESPONSE, null));
            assertTrue(e.getMessage().contains("a single prompt has no response"), e.getMessage());
        }
    }

    @Test
    void gemmaRefusesASystemMessageInAConversationByName() throws IOException {
        try (HookedModel m = chatModel("gemma2_tiny", "gemma-2-2b-it", null, "<bos>", "<start_of_turn>", "<end_of_turn>")) {
            PromptEncoder enc = new PromptEncoder(m, true, null, ChatTemplate.Options.NONE);
            JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.ALL, null));
            assertTrue(e.getMessage().contains("System role not supported") && e.getMessage().contains("tokenizer_config.json"),
                    e.getMessage());
            PromptEncoder sys = new PromptEncoder(m, true, "Be brief.", ChatTemplate.Options.NONE);
            e = assertThrows(JlensException.class, () -> sys.encode(null, CONVERSATION.subList(1, 4), PoolScope.ALL, null));
            assertTrue(e.getMessage().contains("--fold-system"), "a hint for --system: " + e.getMessage());

            // Folded, the system text opens the first user message; multiple turns render as Gemma writes them.
            PromptEncoder folded = new PromptEncoder(m, true, null, new ChatTemplate.Options(Map.of(), true));
            PromptEncoder.Encoded user = folded.encode(null, CONVERSATION, PoolScope.LAST_USER, null);
            String text = "<bos><start_of_turn>user\nBe brief.\n\nWhat do bees eat?<end_of_turn>\n<start_of_turn>model\n"
                    + "Mostly nectar and pollen.<end_of_turn>\n<start_of_turn>user\nAnd in winter?<end_of_turn>\n<start_of_turn>model\n";
            assertEquals("And in winter?", covered(m, text, user));
            assertEquals("<end_of_turn>\n<start_of_turn>model\n",
                    covered(m, text, folded.encode(null, CONVERSATION, PoolScope.POST_INSTRUCTION, null)));

            // A template's own raise_exception on roles that do not alternate is reported with the template's words.
            List<Message> twoUsers = List.of(new Message("user", "Hi."), new Message("user", "Hello?"));
            e = assertThrows(JlensException.class, () -> enc.encode(null, twoUsers, PoolScope.ALL, null));
            assertTrue(e.getMessage().contains("refused") && e.getMessage().contains("alternate"), e.getMessage());
        }
    }

    /** A template raising like Gemma's on a system message, given as a string. */
    @Test
    void aTemplateStringThatRaisesOnSystemIsAClearError() throws IOException {
        String raising = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                + "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}"
                + "{% if add_generation_prompt %}<s>assistant:{% endif %}";
        try (HookedModel m = chatModel("stories260k", "raising", raising)) {
            PromptEncoder enc = new PromptEncoder(m, true, null, ChatTemplate.Options.NONE);
            JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.LAST_USER, null));
            assertTrue(e.getMessage().contains("System role not supported"), e.getMessage());
            assertTrue(e.getMessage().contains("chat_template"), "names the template: " + e.getMessage());
        }
    }

    /**
     * A template that writes nothing after the user's message: post-instruction falls back to the last token of the
     * user message, for single prompts, conversations, and the core pooling of jlens cache.
     */
    @Test
    void postInstructionFallsBackToTheLastUserToken() throws IOException {
        String bare = "{% for m in messages %}{{ m['content'] }}{% if not loop.last %}\n{% endif %}{% endfor %}";
        try (HookedModel m = chatModel("stories260k", "bare", bare)) {
            PromptEncoder enc = new PromptEncoder(m, true, null, ChatTemplate.Options.NONE);
            PromptEncoder.Encoded single = enc.encode("Once upon a time", List.of(), PoolScope.POST_INSTRUCTION, null);
            assertTrue(single.fallback());
            assertEquals(single.ids().length - 1, single.from());
            assertEquals(single.ids().length, single.to());
            assertEquals(0, m.encodeChat("Once upon a time").postInstruction());

            List<Message> conv = List.of(new Message("user", "Hello there."), new Message("assistant", "Hi."),
                    new Message("user", "Tell me a story."));
            PromptEncoder.Encoded post = enc.encode(null, conv, PoolScope.POST_INSTRUCTION, null);
            PromptEncoder.Encoded user = enc.encode(null, conv, PoolScope.LAST_USER, null);
            assertTrue(post.fallback());
            assertEquals(user.to() - 1, post.from(), "the last token of the user message");
            assertEquals(user.to(), post.to());

            float[] data = new float[3 * 2];
            for (int i = 0; i < data.length; i++) data[i] = i;
            float[] out = new float[2];
            Pooling.POST_INSTRUCTION.pool(data, 2, 0, 3, 0, out);
            assertArrayEquals(new float[] {4, 5}, out, "count 0 pools the last token");
        }
    }

    /** Without a chat template a (user, assistant) pair is "prompt\n\nresponse" with the tokenizer's own specials. */
    @Test
    void plainPairsKnowTheirResponseTokens() {
        for (String fixture : List.of("gpt_neox_tiny", "llama_tiny")) {
            try (HookedModel m = ModelLoader.loadFolder(new ModelLocation(fixture, null, Fixtures.dir(fixture), false))) {
                PromptEncoder enc = PromptEncoder.plain(m);
                List<Message> pair = List.of(new Message("user", "How do I pick a lock?"),
                        new Message("assistant", "I can't help with that."));
                PromptEncoder.Encoded r = enc.encode(null, pair, PoolScope.RESPONSE, null);
                assertArrayEquals(m.encode("How do I pick a lock?\n\nI can't help with that.", null), r.ids(),
                        fixture + ": the ids are the plain text's own encoding, specials included");
                assertEquals(r.ids().length, r.to());
                assertEquals("I can't help with that.", m.tokenizer().decode(Arrays.copyOfRange(r.ids(), r.from(), r.to())).strip());
                PromptEncoder.Encoded u = enc.encode(null, pair, PoolScope.LAST_USER, null);
                String user = m.tokenizer().decode(Arrays.copyOfRange(u.ids(), u.from(), u.to()));
                assertEquals("How do I pick a lock?", user.strip(), fixture);

                JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.ALL, null));
                assertTrue(e.getMessage().contains("needs the model's chat template"), e.getMessage());
                e = assertThrows(JlensException.class, () -> enc.encode(null, pair, PoolScope.POST_INSTRUCTION, null));
                assertTrue(e.getMessage().contains("--chat"), e.getMessage());
                e = assertThrows(JlensException.class, () -> enc.encode("Hello", List.of(), PoolScope.LAST_USER, null));
                assertTrue(e.getMessage().contains("--chat"), e.getMessage());
                String longText = "word ".repeat(600);
                e = assertThrows(JlensException.class, () -> enc.encode(null,
                        List.of(new Message("user", longText), new Message("assistant", "ok")), PoolScope.RESPONSE, null));
                assertTrue(e.getMessage().contains("longer than the model's context"), e.getMessage());
            }
        }
    }
}
