package dev.jlens.prompts;

import dev.jlens.JlensException;
import dev.jlens.tokenizer.ChatTemplate.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Conversations and (prompt, response) pairs in prompt files, and the two built-in conversation sets. */
class ConversationPromptsTest {

    @TempDir
    Path tmp;

    private Path file(String name, String... lines) throws Exception {
        Path f = tmp.resolve(name);
        Files.write(f, List.of(lines));
        return f;
    }

    @Test
    void jsonlLinesMayHoldConversationsAndPairs() throws Exception {
        Path f = file("mixed.jsonl",
                "{\"id\": \"a\", \"text\": \"How do I bake bread?\", \"label\": \"harmless\"}",
                "{\"id\": \"b\", \"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \" Hi \"},"
                        + " {\"role\": \"assistant\", \"content\": \"Hello.\"}, {\"role\": \"user\", \"content\": \"Bye.\"}], \"label\": \"harmless\"}",
                "{\"id\": \"c\", \"prompt\": \"Pick a lock?\", \"response\": \"No.\", \"label\": \"harmless\", \"category\": \"refusal\"}");
        PromptSet s = PromptSets.load(f, "text", null);
        Prompt a = s.prompts().get(0), b = s.prompts().get(1), c = s.prompts().get(2);
        assertTrue(!a.isConversation() && b.isConversation() && c.isConversation());
        assertEquals(List.of(new Message("system", "Be brief."), new Message("user", "Hi"), new Message("assistant", "Hello."),
                new Message("user", "Bye.")), b.messages(), "contents are stripped like prompts");
        assertEquals("system: Be brief.\n\nuser: Hi\n\nassistant: Hello.\n\nuser: Bye.", b.text());
        assertEquals(List.of(new Message("user", "Pick a lock?"), new Message("assistant", "No.")), c.messages());
        assertEquals("Pick a lock?\n\nNo.", c.text(), "a pair's plain rendering");
        assertEquals("refusal", c.category());

        assertEquals(3, PromptSets.load(file("pairs.jsonl", "{\"prompt\": \"a\", \"response\": \"b\", \"label\": \"harmful\"}",
                "{\"text\": \"c\", \"label\": \"harmful\"}", "{\"prompt\": \"d\", \"response\": \"e\", \"label\": \"harmful\"}"),
                "text", null).prompts().size());

        // The plain rendering says where every message's content lies (what a model without a chat template is given).
        Prompt.PlainRendering r = Prompt.plainRendering(b.messages());
        assertEquals(b.text(), r.text());
        for (int i = 0; i < b.messages().size(); i++) {
            assertEquals(b.messages().get(i).content(), r.text().substring(r.contentStart()[i], r.contentEnd()[i]));
        }
        Prompt.PlainRendering pr = Prompt.plainRendering(c.messages());
        assertEquals("No.", pr.text().substring(pr.contentStart()[1], pr.contentEnd()[1]));
        assertEquals("Pick a lock?", pr.text().substring(pr.contentStart()[0], pr.contentEnd()[0]));
    }

    @Test
    void badConversationsAreClearErrors() throws Exception {
        Map<String, String> cases = new HashMap<>();
        cases.put("{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}", "line 1: messages[0]: \"role\" is \"bot\"; expected one of system, user, assistant");
        cases.put("{\"messages\": [{\"role\": \"user\"}]}", "messages[0]: \"content\" is missing");
        cases.put("{\"messages\": [{\"role\": \"user\", \"content\": \"  \"}]}", "\"content\" is empty");
        cases.put("{\"messages\": []}", "\"messages\" is an empty array");
        cases.put("{\"messages\": \"hi\"}", "\"messages\" is a string");
        cases.put("{\"messages\": [\"hi\"]}", "messages[0] is a string");
        cases.put("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"b\"}]}",
                "a system message may only come first");
        cases.put("{\"messages\": [{\"role\": \"assistant\", \"content\": \"a\"}]}", "no user message");
        cases.put("{\"text\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": \"a\"}]}", "both \"text\" and \"messages\"");
        cases.put("{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}], \"response\": \"b\"}", "both \"messages\" and \"response\"");
        cases.put("{\"response\": \"b\"}", "needs its prompt in \"text\" or \"prompt\"");
        cases.put("{\"prompt\": \"a\", \"response\": 3}", "field \"response\" is a number");
        int i = 0;
        for (var c : cases.entrySet()) {
            Path f = file("bad" + i++ + ".jsonl", c.getKey());
            JlensException e = assertThrows(JlensException.class, () -> PromptSets.load(f, "text", "harmful"), c.getKey());
            assertTrue(e.getMessage().contains(f.toString() + ": line 1") && e.getMessage().contains(c.getValue()),
                    c.getKey() + " -> " + e.getMessage());
        }
    }

    @Test
    void builtinMultiTurnSetIsLengthMatchedWithCategoriesAndSplits() {
        PromptSet s = PromptSets.builtin("multi_turn");
        assertEquals(40, s.prompts().size());
        Map<String, List<Prompt>> byLabel = s.prompts().stream().collect(Collectors.groupingBy(Prompt::label));
        assertEquals(20, byLabel.get("harmful").size());
        assertEquals(20, byLabel.get("harmless").size());
        Map<String, Integer> position = new HashMap<>();
        for (Prompt p : s.prompts()) {
            assertTrue(p.isConversation() && p.messages().size() >= 3, p.id());
            assertEquals("user", p.messages().getLast().role(), p.id() + " ends with the user's turn");
            assertTrue(p.category().startsWith("multi-turn-"), p.category());
            int pos = position.merge(p.category(), 1, Integer::sum) - 1;
            assertEquals(PromptSets.splitForPosition(pos), p.split(), p.id());
        }
        position.values().forEach(n -> assertTrue(n >= 5, "every category in every split"));
        assertEquals(mean(byLabel.get("harmful"), true), mean(byLabel.get("harmless"), true), 0.05 * mean(byLabel.get("harmful"), true),
                "conversation lengths matched (words)");
        assertEquals(mean(byLabel.get("harmful"), false), mean(byLabel.get("harmless"), false), 0.1 * mean(byLabel.get("harmful"), false),
                "last user turns matched (words)");
        assertEquals(byLabel.get("harmful").stream().mapToInt(p -> p.messages().size()).sum(),
                byLabel.get("harmless").stream().mapToInt(p -> p.messages().size()).sum(), "same turn counts");
    }

    @Test
    void builtinResponsePairsAreLabelledPairs() {
        PromptSet s = PromptSets.builtin("response_pairs");
        assertEquals(40, s.prompts().size());
        Map<String, List<Prompt>> byLabel = s.prompts().stream().collect(Collectors.groupingBy(Prompt::label));
        assertEquals(20, byLabel.get("harmful").size());
        assertEquals(20, byLabel.get("harmless").size());
        for (Prompt p : s.prompts()) {
            assertTrue(Prompt.isPair(p.messages()), p.id());
            assertEquals(p.label().equals("harmful"), p.category().startsWith("compliance-"), p.id());
        }
        assertEquals(10, s.prompts().stream().filter(p -> p.category().equals("hard-negative-refusal")).count());
        double harmful = byLabel.get("harmful").stream().mapToInt(p -> words(p.messages().get(1).content())).average().orElseThrow();
        double harmless = byLabel.get("harmless").stream().mapToInt(p -> words(p.messages().get(1).content())).average().orElseThrow();
        assertEquals(harmful, harmless, 0.1 * harmful, "responses length-matched (words)");
        assertTrue(PromptSets.conversationNames().containsAll(List.of("multi_turn", "response_pairs")));
    }

    private static double mean(List<Prompt> ps, boolean whole) {
        return ps.stream().mapToInt(p -> whole ? p.messages().stream().mapToInt(m -> words(m.content())).sum()
                : words(p.messages().getLast().content())).average().orElseThrow();
    }

    private static int words(String s) {
        return s.split("\\s+").length;
    }
}
