package dev.jlens.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * completions.jsonl, the resumable record of an evaluation: one JSON object per generated completion, appended
 * and flushed to the disk batch by batch, so a run that is killed keeps every finished batch and a rerun
 * generates only what is missing. A last line cut off by the kill is dropped when the file is opened.
 */
public final class CompletionLog implements AutoCloseable {

    public record Entry(String condition, String id, String category, boolean harmful, String prompt, String completion,
                        String stop, int newTokens) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path file;
    private final Map<String, Entry> done = new LinkedHashMap<>();
    private final FileChannel channel;
    private final int resumed;

    private CompletionLog(Path file) throws IOException {
        this.file = file;
        long goodEnd = 0;
        if (Files.exists(file)) {
            byte[] bytes = Files.readAllBytes(file);
            int lineStart = 0, lineNo = 0;
            for (int i = 0; i < bytes.length; i++) {
                if (bytes[i] != '\n') continue;
                lineNo++;
                String line = new String(bytes, lineStart, i - lineStart, StandardCharsets.UTF_8);
                if (!line.isBlank()) {
                    Entry e = parse(line, lineNo);
                    done.put(key(e.condition(), e.id()), e);
                }
                lineStart = i + 1;
                goodEnd = i + 1;
            }
            // bytes after the last newline are a line the kill cut short: dropped, and generated again
        }
        this.resumed = done.size();
        this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        channel.truncate(goodEnd);
        channel.position(goodEnd);
    }

    public static CompletionLog open(Path file) {
        try {
            Files.createDirectories(file.toAbsolutePath().getParent());
            return new CompletionLog(file);
        } catch (IOException e) {
            throw new JlensException("cannot open " + file + ": " + e.getMessage(), e);
        }
    }

    private Entry parse(String line, int lineNo) {
        try {
            JsonNode n = JSON.readTree(line);
            return new Entry(n.get("condition").asText(), n.get("id").asText(), n.path("category").asText(""),
                    n.path("harmful").asBoolean(), n.path("prompt").asText(""), n.get("completion").asText(),
                    n.path("stop").asText(""), n.path("new_tokens").asInt());
        } catch (IOException | RuntimeException e) {
            throw new JlensException(file + ": line " + lineNo + " is not a completion record (" + e.getMessage()
                    + "); the file was edited or belongs to something else: move it away to start over");
        }
    }

    private static String key(String condition, String id) {
        return condition + "\u0000" + id;
    }

    /** How many completions were already there when the file was opened. */
    public int resumed() {
        return resumed;
    }

    public Entry get(String condition, String id) {
        return done.get(key(condition, id));
    }

    public Map<String, Entry> all() {
        return Collections.unmodifiableMap(done);
    }

    /** Appends a batch and forces it to the disk before returning. */
    public void append(List<Entry> entries) {
        StringBuilder sb = new StringBuilder();
        for (Entry e : entries) {
            ObjectNode o = JSON.createObjectNode();
            o.put("condition", e.condition()).put("id", e.id()).put("category", e.category()).put("harmful", e.harmful())
                    .put("prompt", e.prompt()).put("completion", e.completion()).put("stop", e.stop()).put("new_tokens", e.newTokens());
            sb.append(o).append('\n');
        }
        try {
            ByteBuffer b = ByteBuffer.wrap(sb.toString().getBytes(StandardCharsets.UTF_8));
            while (b.hasRemaining()) channel.write(b);
            channel.force(false);
        } catch (IOException e) {
            throw new JlensException("cannot write " + file + ": " + e.getMessage() + " (is there space left on the disk?)", e);
        }
        for (Entry e : entries) done.put(key(e.condition(), e.id()), e);
    }

    /** The entries of one condition in the given id order (missing ids are left out). */
    public List<Entry> of(String condition, List<String> ids) {
        List<Entry> out = new ArrayList<>();
        for (String id : ids) {
            Entry e = get(condition, id);
            if (e != null) out.add(e);
        }
        return out;
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // everything written was forced already
        }
    }
}
