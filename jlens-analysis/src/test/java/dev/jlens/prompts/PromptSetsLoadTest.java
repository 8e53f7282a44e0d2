package dev.jlens.prompts;

import dev.jlens.JlensException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PromptSetsLoadTest {

    @TempDir
    Path dir;

    private Path write(String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        return p;
    }

    private static JlensException fails(Path file, String field, String label) {
        return assertThrows(JlensException.class, () -> PromptSets.load(file, field, label));
    }

    private static void assertMentions(JlensException e, String... parts) {
        for (String part : parts) {
            assertTrue(e.getMessage().contains(part), "message lacks \"" + part + "\": " + e.getMessage());
        }
    }

    // ---- .txt ----

    @Test
    void txtSkipsBlankAndCommentLinesAndFillsDefaults() throws IOException {
        Path f = write("mine.txt", "\uFEFF# my prompts\r\nfirst prompt  \r\n\r\n   # indented comment\r\n  second prompt\n"
                + "third\nfourth\nfifth\nsixth\n");
        PromptSet set = PromptSets.load(f, null, "harmful");
        assertEquals("mine", set.name());
        assertEquals(List.of("first prompt", "second prompt", "third", "fourth", "fifth", "sixth"), set.texts());
        assertEquals(List.of("mine-2", "mine-5", "mine-6", "mine-7", "mine-8", "mine-9"),
                set.prompts().stream().map(Prompt::id).toList());
        assertTrue(set.prompts().stream().allMatch(p -> p.label().equals("harmful") && p.category().equals("mine")));
        assertEquals(List.of("train", "train", "train", "val", "test", "train"),
                set.prompts().stream().map(Prompt::split).toList());
        assertEquals(PromptSet.sha256(Files.readAllBytes(f)), set.sha256());
    }

    @Test
    void txtWithOnlyCommentsHasNoPrompts() throws IOException {
        JlensException e = fails(write("c.txt", "# nothing\n\n# here\n"), null, "harmful");
        assertMentions(e, "c.txt", "no prompts", "one prompt per line");
    }

    // ---- .jsonl ----

    @Test
    void jsonlUsesOptionalFieldsWhenPresent() throws IOException {
        Path f = write("p.jsonl", """
                {"id": "a", "text": "  alpha ", "label": "harmless", "category": "cooking", "split": "test"}

                {"text": "beta"}
                {"text": "gamma", "label": "neutral", "extra": 3}
                {"id": 7, "text": "delta"}
                """);
        PromptSet set = PromptSets.load(f, "text", "harmful");
        assertEquals(List.of(
                new Prompt("a", "alpha", "harmless", "cooking", "test"),
                new Prompt("p-3", "beta", "harmful", "p", "train"),
                new Prompt("p-4", "gamma", "neutral", "p", "train"),
                new Prompt("7", "delta", "harmful", "p", "train")), set.prompts());
    }

    @Test
    void styleIsReadFromJsonlAndCsvAndDefaultsToPlain() throws IOException {
        Path j = write("s.jsonl", """
                {"text": "alpha", "style": "casual"}
                {"text": "beta"}
                {"text": "gamma", "style": " "}
                """);
        assertEquals(List.of("casual", "plain", "plain"), PromptSets.load(j, null, "harmful").prompts().stream().map(Prompt::style).toList());
        Path c = write("s.csv", "text,style\nalpha,terse\nbeta,\n");
        assertEquals(List.of("terse", "plain"), PromptSets.load(c, null, "harmful").prompts().stream().map(Prompt::style).toList());
        Path t = write("s.txt", "alpha\n");
        assertEquals(Prompt.DEFAULT_STYLE, PromptSets.load(t, null, "harmful").prompts().getFirst().style());
    }

    @Test
    void jsonlStructuredOptionalFieldIsRejected() throws IOException {
        Path f = write("o.jsonl", "{\"text\": \"a\", \"category\": [\"x\"]}\n");
        assertMentions(fails(f, null, "harmful"), "o.jsonl", "line 1", "\"category\" is an array", "expected a string");
    }

    @Test
    void jsonlFieldIsConfigurable() throws IOException {
        Path f = write("q.jsonl", "{\"prompt\": \"one\", \"text\": \"ignored\"}\n{\"prompt\": \"two\"}\n");
        assertEquals(List.of("one", "two"), PromptSets.load(f, "prompt", "harmful").texts());
    }

    @Test
    void jsonlLineThatIsNotJsonIsNamed() throws IOException {
        Path f = write("bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"broken\"\n");
        assertMentions(fails(f, null, "harmful"), "bad.jsonl", "line 2", "not valid JSON", "one JSON object per line");
    }

    @Test
    void jsonlWithTwoObjectsOnALineIsRejected() throws IOException {
        Path f = write("two.jsonl", "{\"text\": \"a\"} {\"text\": \"b\"}\n");
        assertMentions(fails(f, null, "harmful"), "two.jsonl", "line 1", "not valid JSON");
    }

    @Test
    void jsonlLineThatIsNotAnObjectIsNamed() throws IOException {
        Path f = write("arr.jsonl", "{\"text\": \"ok\"}\n[\"text\"]\n");
        assertMentions(fails(f, null, "harmful"), "arr.jsonl", "line 2", "expected a JSON object", "found an array");
    }

    @Test
    void jsonlLineWithoutTheFieldListsTheFieldsItHas() throws IOException {
        Path f = write("nf.jsonl", "{\"text\": \"ok\"}\n\n{\"goal\": \"x\", \"target\": \"y\"}\n");
        assertMentions(fails(f, "text", "harmful"), "nf.jsonl", "line 3", "no field \"text\"", "\"goal\", \"target\"");
    }

    @Test
    void jsonlFieldThatIsNotAStringIsRejected() throws IOException {
        Path f = write("num.jsonl", "{\"text\": 42}\n");
        assertMentions(fails(f, null, "harmful"), "num.jsonl", "line 1", "\"text\" is a number", "expected a string");
    }

    @Test
    void jsonlEmptyTextIsRejected() throws IOException {
        Path f = write("e.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"   \"}\n");
        assertMentions(fails(f, null, "harmful"), "e.jsonl", "line 2", "empty");
    }

    @Test
    void jsonlUnknownSplitIsRejected() throws IOException {
        Path f = write("s.jsonl", "{\"text\": \"a\", \"split\": \"dev\"}\n");
        assertMentions(fails(f, null, "harmful"), "s.jsonl", "line 1", "\"dev\"", "train, val, test");
    }

    @Test
    void duplicateIdsAreRejected() throws IOException {
        Path f = write("d.jsonl", "{\"id\": \"x\", \"text\": \"a\"}\n{\"id\": \"x\", \"text\": \"b\"}\n");
        assertMentions(fails(f, null, "harmful"), "d.jsonl", "line 2", "\"x\"", "line 1", "unique");
    }

    @Test
    void missingLabelWithoutDefaultIsRejected() throws IOException {
        Path f = write("l.jsonl", "{\"text\": \"a\", \"label\": \"harmful\"}\n{\"text\": \"b\"}\n");
        assertEquals(1, PromptSets.load(write("one.jsonl", "{\"text\": \"a\", \"label\": \"harmful\"}\n"), null, null).size());
        assertMentions(fails(f, null, null), "l.jsonl", "line 2", "no \"label\"");
    }

    // ---- .csv ----

    @Test
    void csvHandlesRfc4180Quoting() throws IOException {
        Path f = write("q.csv", "id,text,label\r\n"
                + "1,\"Hello, world\",harmless\r\n"
                + "\r\n"
                + "2,\"a prompt that\nspans two lines\",harmful\r\n"
                + "3,\"she said \"\"hi\"\"\",harmless\r\n"
                + "4,plain,\r\n");
        PromptSet set = PromptSets.load(f, null, "neutral");
        assertEquals(List.of("Hello, world", "a prompt that\nspans two lines", "she said \"hi\"", "plain"), set.texts());
        assertEquals(List.of("1", "2", "3", "4"), set.prompts().stream().map(Prompt::id).toList());
        assertEquals(List.of("harmless", "harmful", "harmless", "neutral"),
                set.prompts().stream().map(Prompt::label).toList());
    }

    @Test
    void csvAdvBenchGoalColumn() throws IOException {
        Path f = write("harmful_behaviors.csv", """
                goal,target
                "Do a bad thing, quickly","Sure, here is how to do a bad thing"
                Do another bad thing,"Sure, here is"
                "A goal
                on two lines",Sure
                """);
        PromptSet set = PromptSets.load(f, "goal", "harmful");
        assertEquals("harmful_behaviors", set.name());
        assertEquals(List.of("Do a bad thing, quickly", "Do another bad thing", "A goal\non two lines"), set.texts());
        // Generated ids carry the line each record starts on.
        assertEquals(List.of("harmful_behaviors-2", "harmful_behaviors-3", "harmful_behaviors-4"),
                set.prompts().stream().map(Prompt::id).toList());
        assertTrue(set.prompts().stream().allMatch(p -> p.label().equals("harmful")));
    }

    @Test
    void csvWithoutTheColumnListsTheColumns() throws IOException {
        Path f = write("adv.csv", "goal,target\nx,y\n");
        assertMentions(fails(f, null, "harmful"), "adv.csv", "no column \"text\"", "\"goal\", \"target\"");
    }

    @Test
    void csvRowWithAnUnquotedCommaIsRejected() throws IOException {
        Path f = write("r.csv", "text,label\nfine,harmful\nhello, world,harmful\n");
        assertMentions(fails(f, null, "harmful"), "r.csv", "line 3", "3 values", "2 columns", "double quotes");
    }

    @Test
    void csvUnclosedQuoteIsRejected() throws IOException {
        Path f = write("u.csv", "text\nok\n\"never closed\n");
        assertMentions(fails(f, null, "harmful"), "u.csv", "malformed CSV", "closing double quote", "line 2");
    }

    @Test
    void csvEmptyTextIsRejected() throws IOException {
        Path f = write("ec.csv", "goal,target\nx,y\n\"\",z\n");
        assertMentions(fails(f, "goal", "harmful"), "ec.csv", "line 3", "\"goal\" is empty");
    }

    @Test
    void csvWithOnlyAHeaderHasNoPrompts() throws IOException {
        assertMentions(fails(write("h.csv", "text,label\n"), null, "harmful"), "h.csv", "no prompts");
    }

    // ---- file-level errors ----

    @Test
    void missingFile() {
        assertMentions(fails(dir.resolve("nope.txt"), null, "harmful"), "nope.txt", "not found");
    }

    @Test
    void directoryIsNotAPromptFile() throws IOException {
        Path d = Files.createDirectory(dir.resolve("folder.txt"));
        assertMentions(fails(d, null, "harmful"), "folder.txt", "not a regular file");
    }

    @Test
    void unknownExtension() throws IOException {
        assertMentions(fails(write("p.json", "[]"), null, "harmful"), "p.json", "\".json\"", ".txt", ".jsonl", ".csv");
        assertMentions(fails(write("noext", "x"), null, "harmful"), "noext", "(none)");
    }

    @Test
    void emptyFiles() throws IOException {
        for (String name : List.of("e.txt", "e.jsonl", "e.csv")) {
            assertMentions(fails(write(name, ""), null, "harmful"), name, "empty");
            assertMentions(fails(write("ws-" + name, "\n  \n"), null, "harmful"), "ws-" + name, "empty");
        }
    }

    @Test
    void invalidUtf8() throws IOException {
        Path f = dir.resolve("latin1.txt");
        Files.write(f, new byte[]{'c', 'a', 'f', (byte) 0xE9, '\n'});
        assertMentions(fails(f, null, "harmful"), "latin1.txt", "UTF-8");
    }

    @Test
    void unknownBuiltinAndSplitNames() {
        JlensException e = assertThrows(JlensException.class, () -> PromptSets.builtin("harmfull"));
        assertMentions(e, "\"harmfull\"", "neutral, harmful, harmless, jailbreak, hard_negative");
        JlensException s = assertThrows(JlensException.class, () -> PromptSets.builtin("harmful").filterSplit("dev"));
        assertMentions(s, "\"dev\"", "train, val, test");
    }

    /** A prompt file beyond 256 MB is refused from its size alone (the file here is sparse: no disk, no reading). */
    @Test
    void hugeFileIsRefusedBeforeReading() throws IOException {
        Path file = dir.resolve("huge.txt");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(PromptSets.MAX_FILE_BYTES + 1);
        }
        assertMentions(fails(file, null, "x"), file.toString(), "too large for a prompt file");
    }
}
