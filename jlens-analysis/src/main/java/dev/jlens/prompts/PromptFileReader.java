package dev.jlens.prompts;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import dev.jlens.JlensException;
import dev.jlens.tokenizer.ChatTemplate;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Parses the three prompt file formats into {@link PromptSet}s; the formats are described on {@link PromptSets}. */
final class PromptFileReader {

    enum Format { TXT, JSONL, CSV }

    private static final List<String> OPTIONAL = List.of("id", "label", "category", "split", "style");

    /** A prompt as the file gave it: optional fields are null when absent; messages empty unless a conversation. */
    private record Row(int line, String text, String id, String label, String category, String split, String style,
                       List<ChatTemplate.Message> messages) {
        Row(int line, String text, String id, String label, String category, String split, String style) {
            this(line, text, id, label, category, split, style, List.of());
        }
    }

    private PromptFileReader() {
    }

    /**
     * @param source   how messages name the input (a path, or the built-in resource)
     * @param setName  the resulting set's name
     * @param stem     used for generated ids and as the default category
     */
    static PromptSet read(String source, String setName, String stem, Format format, byte[] bytes, String field,
                          String defaultLabel) {
        String content = decode(source, bytes);
        if (content.isBlank()) {
            throw new JlensException(source + ": file is empty; expected " + expected(format, field));
        }
        List<Row> rows = switch (format) {
            case TXT -> readTxt(content);
            case JSONL -> readJsonl(source, content, field);
            case CSV -> readCsv(source, content, field);
        };
        if (rows.isEmpty()) {
            throw new JlensException(source + ": no prompts found; expected " + expected(format, field));
        }
        return new PromptSet(setName, complete(source, stem, rows, defaultLabel), PromptSet.sha256(bytes));
    }

    private static String expected(Format format, String field) {
        return switch (format) {
            case TXT -> "one prompt per line (blank lines and lines starting with # are skipped)";
            case JSONL -> "one JSON object per line with a string field \"" + field + "\"";
            case CSV -> "a header row naming a column \"" + field + "\", then one prompt per row";
        };
    }

    private static String decode(String source, byte[] bytes) {
        String s;
        try {
            s = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new JlensException(source + ": not valid UTF-8 text; save the prompt file as UTF-8", e);
        }
        // Spreadsheet programs often prepend a byte-order mark; left in, it would become part of the first
        // CSV column name or the first prompt.
        return s.startsWith("\uFEFF") ? s.substring(1) : s;
    }

    private static List<Row> readTxt(String content) {
        List<Row> rows = new ArrayList<>();
        int lineNo = 0;
        for (String line : (Iterable<String>) content.lines()::iterator) {
            lineNo++;
            String t = line.strip();
            if (t.isEmpty() || t.startsWith("#")) continue;
            rows.add(new Row(lineNo, t, null, null, null, null, null));
        }
        return rows;
    }

    private static List<Row> readJsonl(String source, String content, String field) {
        ObjectMapper json = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        List<Row> rows = new ArrayList<>();
        int lineNo = 0;
        for (String line : (Iterable<String>) content.lines()::iterator) {
            lineNo++;
            if (line.isBlank()) continue;
            String at = source + ": line " + lineNo;
            JsonNode node;
            try {
                node = json.readTree(line);
            } catch (JsonProcessingException e) {
                JsonLocation loc = e.getLocation();
                throw new JlensException(at + ": not valid JSON (" + jacksonReason(e)
                        + (loc != null && loc.getColumnNr() > 0 ? " at column " + loc.getColumnNr() : "")
                        + "); expected one JSON object per line, e.g. {\"" + field + "\": \"...\"}");
            }
            if (!node.isObject()) {
                throw new JlensException(at + ": expected a JSON object with a string field \"" + field
                        + "\", found " + kind(node));
            }
            List<ChatTemplate.Message> messages = conversation(at, node, field);
            JsonNode textNode = node.get(field);
            if (!messages.isEmpty()) {
                rows.add(withMessages(row(at, lineNo, Prompt.plainText(messages), field, optionalFields(at, node, field)), messages));
                continue;
            }
            if (textNode == null || textNode.isNull()) {
                List<String> names = new ArrayList<>();
                node.fieldNames().forEachRemaining(names::add);
                throw new JlensException(at + ": no field \"" + field + "\" (the object has "
                        + (names.isEmpty() ? "no fields" : "fields " + quoted(names))
                        + "); pass the name of the field that holds the prompt");
            }
            if (!textNode.isTextual()) {
                throw new JlensException(at + ": field \"" + field + "\" is " + kind(textNode) + "; expected a string");
            }
            rows.add(row(at, lineNo, textNode.asText(), field, optionalFields(at, node, field)));
        }
        return rows;
    }

    private static Map<String, String> optionalFields(String at, JsonNode node, String field) {
        Map<String, String> optional = new HashMap<>();
        for (String name : OPTIONAL) {
            JsonNode v = node.get(name);
            if (v == null || v.isNull() || name.equals(field)) continue;
            // Numeric ids are common in exported data sets; only structured values are refused.
            if (!v.isValueNode()) {
                throw new JlensException(at + ": field \"" + name + "\" is " + kind(v) + "; expected a string");
            }
            optional.put(name, v.asText());
        }
        return optional;
    }

    private static Row withMessages(Row r, List<ChatTemplate.Message> messages) {
        return new Row(r.line(), r.text(), r.id(), r.label(), r.category(), r.split(), r.style(), List.copyOf(messages));
    }

    private static List<ChatTemplate.Message> conversation(String at, JsonNode node, String field) {
        try {
            return Conversations.fromJson(node, field);
        } catch (JlensException e) {
            throw new JlensException(at + ": " + e.getMessage());
        }
    }

    /** Jackson's reason without its source-location suffix, which names an internal reader, not the file. */
    private static String jacksonReason(JsonProcessingException e) {
        String m = e.getOriginalMessage() == null ? e.getClass().getSimpleName() : e.getOriginalMessage();
        m = m.lines().findFirst().orElse("");
        int cut = m.indexOf(" (start marker at");
        return cut >= 0 ? m.substring(0, cut) : m;
    }

    private static String kind(JsonNode n) {
        String k = n.getNodeType().name().toLowerCase(Locale.ROOT);
        return ("aeiou".indexOf(k.charAt(0)) >= 0 ? "an " : "a ") + k;
    }

    private static List<Row> readCsv(String source, String content, String column) {
        CsvMapper csv = CsvMapper.builder().enable(CsvParser.Feature.SKIP_EMPTY_LINES).build();
        // Rows are read token by token rather than as maps: that gives each row's first line (a quoted field
        // can span lines), the header in order, and strict row-length checks.
        List<String> header = null;
        int textIndex = -1;
        Map<String, Integer> optionalIndex = new LinkedHashMap<>();
        List<Row> rows = new ArrayList<>();
        int lastRowEnd = 0;
        try (JsonParser p = csv.createParser(content)) {
            List<String> values = null;
            int rowLine = -1;
            JsonToken t;
            while ((t = p.nextToken()) != null) {
                if (t == JsonToken.START_ARRAY) {
                    values = new ArrayList<>();
                    rowLine = -1;
                } else if (t == JsonToken.VALUE_STRING) {
                    if (values == null) continue;
                    if (rowLine < 0) rowLine = p.currentTokenLocation().getLineNr();
                    values.add(p.getText());
                } else if (t == JsonToken.END_ARRAY && values != null) {
                    lastRowEnd = rowLine;
                    if (header == null) {
                        header = values;
                        textIndex = columnIndex(source, header, column, true);
                        for (String name : OPTIONAL) {
                            int i = columnIndex(source, header, name, false);
                            if (i >= 0 && i != textIndex) optionalIndex.put(name, i);
                        }
                    } else {
                        String at = source + ": line " + rowLine;
                        if (values.size() != header.size()) {
                            throw new JlensException(at + ": row has " + values.size() + " value"
                                    + (values.size() == 1 ? "" : "s") + " but the header has " + header.size()
                                    + " columns " + quoted(header) + "; a prompt containing commas, quotes or line "
                                    + "breaks must be enclosed in double quotes, with inner quotes doubled");
                        }
                        Map<String, String> optional = new HashMap<>();
                        for (Map.Entry<String, Integer> e : optionalIndex.entrySet()) {
                            optional.put(e.getKey(), values.get(e.getValue()));
                        }
                        rows.add(row(at, rowLine, values.get(textIndex), column, optional));
                    }
                    values = null;
                }
            }
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            String line = loc != null && loc.getLineNr() > 0 ? ": line " + loc.getLineNr() : "";
            throw new JlensException(source + line + ": malformed CSV (" + jacksonReason(e)
                    + (lastRowEnd > 0 ? "; the last complete row started on line " + lastRowEnd : "")
                    + "); expected RFC 4180 CSV, where a quoted field ends with a closing double quote");
        } catch (IOException e) {
            throw new JlensException(source + ": cannot parse CSV: " + e.getMessage(), e);
        }
        return rows;
    }

    private static int columnIndex(String source, List<String> header, String name, boolean required) {
        int found = -1;
        for (int i = 0; i < header.size(); i++) {
            if (!header.get(i).strip().equals(name)) continue;
            if (found >= 0) {
                throw new JlensException(source + ": line 1: the header names column \"" + name
                        + "\" twice; expected each column name once");
            }
            found = i;
        }
        if (found < 0 && required) {
            throw new JlensException(source + ": line 1: the header has no column \"" + name + "\" (it has "
                    + quoted(header) + "); pass the name of the column that holds the prompt"
                    + (header.contains("goal") ? ", e.g. \"goal\" for AdvBench" : ""));
        }
        return found;
    }

    private static Row row(String at, int line, String rawText, String field, Map<String, String> optional) {
        String text = rawText.strip();
        if (text.isEmpty()) {
            throw new JlensException(at + ": prompt \"" + field + "\" is empty; expected non-blank text");
        }
        String split = blankToNull(optional.get("split"));
        if (split != null && !PromptSets.SPLITS.contains(split)) {
            throw new JlensException(at + ": split \"" + split + "\" is not one of " + String.join(", ", PromptSets.SPLITS));
        }
        return new Row(line, text, blankToNull(optional.get("id")), blankToNull(optional.get("label")),
                blankToNull(optional.get("category")), split, blankToNull(optional.get("style")));
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }

    /** Fills what the file left out, in file order, and checks that ids are unique. */
    private static List<Prompt> complete(String source, String stem, List<Row> rows, String defaultLabel) {
        Map<String, Integer> perCategory = new HashMap<>();
        Map<String, Integer> idLine = new HashMap<>();
        List<Prompt> out = new ArrayList<>(rows.size());
        for (Row r : rows) {
            String at = source + ": line " + r.line();
            String label = r.label() != null ? r.label() : defaultLabel;
            if (label == null) {
                throw new JlensException(at + ": prompt has no \"label\" and no default label was given; "
                        + "expected a label field/column or a default label (e.g. harmful or harmless)");
            }
            String category = r.category() != null ? r.category() : stem;
            int position = perCategory.merge(category, 1, Integer::sum) - 1;
            String split = r.split() != null ? r.split() : PromptSets.splitForPosition(position);
            String id = r.id() != null ? r.id() : stem + "-" + r.line();
            Integer previous = idLine.putIfAbsent(id, r.line());
            if (previous != null) {
                throw new JlensException(at + ": id \"" + id + "\" was already used on line " + previous
                        + "; expected unique ids");
            }
            out.add(new Prompt(id, r.text(), label, category, split, r.style() != null ? r.style() : Prompt.DEFAULT_STYLE,
                    r.messages()));
        }
        return out;
    }

    private static String quoted(List<String> names) {
        return names.stream().map(n -> "\"" + n + "\"").reduce((a, b) -> a + ", " + b).orElse("");
    }
}
