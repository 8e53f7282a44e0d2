package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.hooks.Pooling;
import dev.jlens.load.EmbeddedModels;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelLocation;
import dev.jlens.prompts.Prompt;
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

                JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, pair, PoolScope.POST_INSTRUCTION, null));
                assertTrue(e.getMessage().contains("--chat"), e.getMessage());
                String longText = "word ".repeat(600);
                e = assertThrows(JlensException.class, () -> enc.encode(null,
                        List.of(new Message("user", longText), new Message("assistant", "ok")), PoolScope.RESPONSE, null));
                assertTrue(e.getMessage().contains("longer than the model's context"), e.getMessage());
            }
        }
    }

    /** The embedded MiniLM (WordPiece, [CLS] ... [SEP]) and two fixtures (byte-level BPE, SentencePiece): plain models. */
    private static List<HookedModel> plainModels() {
        return List.of(EmbeddedModels.minilm(),
                ModelLoader.loadFolder(new ModelLocation("gpt_neox_tiny", null, Fixtures.dir("gpt_neox_tiny"), false)),
                ModelLoader.loadFolder(new ModelLocation("llama_tiny", null, Fixtures.dir("llama_tiny"), false)));
    }

    /**
     * The span is exactly the tokens that cover a character of {@code text[cs, ce)}: its first token holds character
     * cs (starting there, or at the space before it that a BPE writes into the word), its last token starts before
     * ce, and the next token starts at or after ce.
     */
    private static void assertSpanCovers(HookedModel m, String text, PromptEncoder.Encoded e, int cs, int ce, String what) {
        TextTokenizer.Verbatim v = m.tokenizer().encodeVerbatim(text);
        int p = -1;
        for (int i = 0; i + v.ids().length <= e.ids().length && p < 0; i++) {
            if (Arrays.equals(Arrays.copyOfRange(e.ids(), i, i + v.ids().length), v.ids())) p = i;
        }
        assertTrue(p >= 0, what + ": the rendered text's own tokens inside the ids");
        int[] st = v.starts();
        int f = e.from() - p, t = e.to() - p, n = st.length;
        assertTrue(f >= 0 && t <= n, what + ": the span lies inside the text's tokens, not on special tokens");
        assertTrue(st[f] <= cs && (f + 1 == n || st[f + 1] > cs), what + ": the first token holds the content's first character");
        assertTrue(st[t - 1] < ce && (t == n || st[t] >= ce), what + ": the last token starts inside the content, the next after it");
        String covered = text.substring(st[f], t < n ? st[t] : text.length());
        String content = text.substring(cs, ce);
        // A tokenizer that writes no whitespace tokens (WordPiece) lets the covered text run on to the next token's start.
        String head = covered.startsWith(" " + content) ? " " + content : content;
        assertTrue(covered.startsWith(head) && covered.substring(head.length()).isBlank(), what + ": covered \"" + covered + "\"");
    }

    /**
     * Without a chat template a conversation longer than a pair is its plain rendering, "role: content" turns joined by
     * blank lines, with the tokenizer's own special tokens around it; last-user and response are the tokens of that
     * message's content, post-instruction is refused, and a single prompt's last-user scope is all its tokens but the
     * tokenizer's special tokens.
     */
    @Test
    void plainConversationsAreTheirRoleContentRendering() {
        List<Message> answered = new java.util.ArrayList<>(CONVERSATION);
        answered.add(new Message("assistant", "They eat the honey they stored."));
        for (HookedModel m : plainModels()) {
            try (m) {
                String name = m.location().id();
                PromptEncoder enc = PromptEncoder.plain(m);
                Prompt.PlainRendering r = Prompt.plainRendering(CONVERSATION);
                String text = r.text();
                assertEquals("system: Be brief.\n\nuser: What do bees eat?\n\nassistant: Mostly nectar and pollen.\n\n"
                        + "user: And in winter?", text);
                PromptEncoder.Encoded all = enc.encode(null, CONVERSATION, PoolScope.ALL, null);
                assertArrayEquals(m.encode(text, null), all.ids(), name + ": the plain text's own encoding, specials included");
                assertTrue(all.whole());

                PromptEncoder.Encoded user = enc.encode(null, CONVERSATION, PoolScope.LAST_USER, null);
                assertArrayEquals(all.ids(), user.ids());
                assertSpanCovers(m, text, user, r.contentStart()[3], r.contentEnd()[3], name + " last-user");
                assertEquals(all.ids().length - (m.tokenizer().encode("").length - leadingSpecials(m)), user.to(),
                        name + ": the last user message runs to the trailing special tokens");

                Prompt.PlainRendering ra = Prompt.plainRendering(answered);
                PromptEncoder.Encoded resp = enc.encode(null, answered, PoolScope.RESPONSE, null);
                assertArrayEquals(m.encode(ra.text(), null), resp.ids());
                assertSpanCovers(m, ra.text(), resp, ra.contentStart()[4], ra.contentEnd()[4], name + " response");
                PromptEncoder.Encoded lastUser = enc.encode(null, answered, PoolScope.LAST_USER, null);
                assertSpanCovers(m, ra.text(), lastUser, ra.contentStart()[3], ra.contentEnd()[3], name + " last-user before an answer");
                assertTrue(lastUser.to() < resp.from(), name + ": \"assistant:\" lies between them");

                JlensException e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.RESPONSE, null));
                assertTrue(e.getMessage().contains("ends with the user's"), e.getMessage());
                e = assertThrows(JlensException.class, () -> enc.encode(null, CONVERSATION, PoolScope.POST_INSTRUCTION, null));
                assertTrue(e.getMessage().contains("needs a chat template (--chat)") && e.getMessage().contains("--pool-scope last-user"),
                        e.getMessage());
                e = assertThrows(JlensException.class, () -> enc.encode("Hello", List.of(), PoolScope.POST_INSTRUCTION, null));
                assertTrue(e.getMessage().contains("needs a chat template (--chat)"), e.getMessage());

                // A single prompt is the user's message: last-user is every token but the tokenizer's special tokens.
                String prompt = "And in winter?";
                PromptEncoder.Encoded single = enc.encode(prompt, List.of(), PoolScope.LAST_USER, null);
                int[] ids = m.encode(prompt, null);
                assertArrayEquals(ids, single.ids());
                assertEquals(leadingSpecials(m), single.from());
                assertEquals(ids.length - (m.tokenizer().encode("").length - leadingSpecials(m)), single.to());
                assertArrayEquals(m.tokenizer().encodeVerbatim(prompt).ids(), Arrays.copyOfRange(ids, single.from(), single.to()),
                        name + ": exactly the text's own tokens");

                String longText = "word ".repeat(600);
                List<Message> tooLong = List.of(new Message("user", "hi"), new Message("assistant", "ok"), new Message("user", longText));
                e = assertThrows(JlensException.class, () -> enc.encode(null, tooLong, PoolScope.ALL, null));
                assertTrue(e.getMessage().contains("longer than the model's context"), e.getMessage());
            }
        }
    }

    /** How many special tokens the tokenizer puts before a text (BERT's [CLS]: 1). */
    private static int leadingSpecials(HookedModel m) {
        int[] empty = m.tokenizer().encode(""), one = m.tokenizer().encode("a");
        int p = 0;
        while (p < empty.length && p < one.length && empty[p] == one[p]) p++;
        return p;
    }
}
