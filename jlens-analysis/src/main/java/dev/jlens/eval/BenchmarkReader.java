package dev.jlens.eval;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.csv.CsvMapper;
import com.fasterxml.jackson.dataformat.csv.CsvParser;
import dev.hardwood.InputFile;
import dev.hardwood.reader.ParquetFileReader;
import dev.hardwood.reader.RowReader;
import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Reads benchmark files: CSV, JSONL or Parquet by extension, then the columns by layout (detected from the
 * header, or named with --format). Every problem names the file, the line or row, and what was expected.
 */
public final class BenchmarkReader {

    /**
     * @param format        null to detect the layout from the header
     * @param field         generic layout: the prompt column
     * @param labelField    generic layout: a column whose value says harmful (harmful, unsafe, 1, true) or not;
     *                      null: every prompt is harmful
     * @param categoryField generic layout: the category column, or null
     */
    public record Options(BenchmarkFormat format, String field, String labelField, String categoryField) {
        public static Options detect() {
            return new Options(null, null, null, null);
        }
    }

    /** The file as a table: the header, and each row's values by column (null for a missing value). */
    record Table(List<String> header, List<Map<String, String>> rows, List<Integer> lines, String rowWord) {
    }

    /** HarmBench joins a contextual behaviour's context and request this way (its generation code). */
    static final String CONTEXT_SEPARATOR = "\n\n---\n\n";

    private BenchmarkReader() {
    }

    public static Benchmark read(Path file, Options opts) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new JlensException("--benchmark " + file + ": cannot read: " + e.getMessage(), e);
        }
        String source = file.toString();
        if (bytes.length == 0) throw new JlensException(source + ": file is empty; expected a benchmark (CSV with a header row, JSONL or Parquet)");
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        Table t;
        if (name.endsWith(".parquet")) t = readParquet(source, bytes);
        else if (name.endsWith(".jsonl") || name.endsWith(".json")) t = readJsonl(source, decode(source, bytes));
        else t = readCsv(source, decode(source, bytes));
        if (t.rows().isEmpty()) {
            throw new JlensException(source + ": no " + t.rowWord() + "s after the header; expected one prompt per " + t.rowWord());
        }
        return build(source, stem(file), sha256(bytes), t, opts);
    }

    static Benchmark build(String source, String name, String sha, Table t, Options opts) {
        BenchmarkFormat format = opts.format();
        if (format == null) {
            format = BenchmarkFormat.detect(t.header());
            if (format == null) {
                if (opts.field() == null) {
                    throw new JlensException(source + ": the columns " + quoted(t.header()) + " match no published layout ("
                            + layouts() + "); pass --format generic --field NAME (and --label-field, --category-field)");
                }
                format = BenchmarkFormat.GENERIC;
            }
        } else if (format != BenchmarkFormat.GENERIC) {
            for (String c : format.columns()) {
                if (!t.header().contains(c)) {
                    BenchmarkFormat other = BenchmarkFormat.detect(t.header());
                    throw new JlensException(source + ": --format " + format.cliName() + " expects the columns "
                            + quoted(format.columns()) + " but there is no \"" + c + "\" (the file has " + quoted(t.header()) + ")"
                            + (other != null ? "; the columns match --format " + other.cliName() : ""));
                }
            }
        }
        List<BenchmarkItem> items = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        for (int r = 0; r < t.rows().size(); r++) {
            Map<String, String> row = t.rows().get(r);
            String at = source + ": " + t.rowWord() + " " + t.lines().get(r);
            BenchmarkItem item = switch (format) {
                case HARMBENCH -> {
                    String behavior = required(row, "Behavior", at);
                    String context = blankToNull(row.get("ContextString"));
                    yield new BenchmarkItem(idOr(row, "BehaviorID", r), context == null ? behavior : context + CONTEXT_SEPARATOR + behavior,
                            category(row, "SemanticCategory"), true, behavior);
                }
                case JAILBREAKBENCH -> {
                    String goal = required(row, "Goal", at);
                    yield new BenchmarkItem(idOr(row, "Index", r), goal, category(row, "Category"), true, goal);
                }
                case STRONGREJECT -> {
                    String p = required(row, "forbidden_prompt", at);
                    yield new BenchmarkItem(idOr(row, null, r), p, category(row, "category"), true, p);
                }
                case XSTEST -> {
                    String p = required(row, "prompt", at);
                    String label = required(row, "label", at).toLowerCase(Locale.ROOT);
                    if (!label.equals("safe") && !label.equals("unsafe")) {
                        throw new JlensException(at + ": label \"" + label + "\"; XSTest labels are safe or unsafe");
                    }
                    yield new BenchmarkItem(idOr(row, "id", r), p, category(row, "type"), label.equals("unsafe"), p);
                }
                case ADVBENCH -> {
                    String goal = required(row, "goal", at);
                    yield new BenchmarkItem(idOr(row, null, r), goal, "advbench", true, goal);
                }
                case GENERIC -> generic(source, t, row, at, r, opts);
            };
            Integer prev = seen.putIfAbsent(item.id(), r);
            if (prev != null) {
                throw new JlensException(at + ": id \"" + item.id() + "\" was already used by " + t.rowWord() + " "
                        + t.lines().get(prev) + "; expected unique ids");
            }
            items.add(item);
        }
        return new Benchmark(name, format, sha, items);
    }

    private static BenchmarkItem generic(String source, Table t, Map<String, String> row, String at, int r, Options opts) {
        if (opts.field() == null) {
            throw new JlensException(source + ": --format generic needs --field NAME, the column with the prompt (the file has "
                    + quoted(t.header()) + ")");
        }
        for (String c : new String[]{opts.field(), opts.labelField(), opts.categoryField()}) {
            if (c != null && !t.header().contains(c)) {
                throw new JlensException(source + ": no column \"" + c + "\" (the file has " + quoted(t.header()) + ")");
            }
        }
        String p = required(row, opts.field(), at);
        boolean harmful = true;
        if (opts.labelField() != null) {
            String v = required(row, opts.labelField(), at).toLowerCase(Locale.ROOT);
            harmful = switch (v) {
                case "harmful", "unsafe", "1", "true", "yes" -> true;
                case "harmless", "safe", "benign", "0", "false", "no" -> false;
                default -> throw new JlensException(at + ": " + opts.labelField() + " \"" + v
                        + "\"; expected harmful/unsafe/1/true or harmless/safe/benign/0/false");
            };
        }
        String cat = opts.categoryField() == null ? "all" : category(row, opts.categoryField());
        return new BenchmarkItem(idOr(row, "id", r), p, cat, harmful, p);
    }

    private static String required(Map<String, String> row, String column, String at) {
        String v = row.get(column);
        if (v == null || v.isBlank()) throw new JlensException(at + ": \"" + column + "\" is empty; expected text");
        return v.strip();
    }

    private static String category(Map<String, String> row, String column) {
        String v = blankToNull(row.get(column));
        return v == null ? "uncategorised" : v;
    }

    private static String idOr(Map<String, String> row, String column, int r) {
        String v = column == null ? null : blankToNull(row.get(column));
        return v != null ? v : Integer.toString(r + 1);
    }

    private static String blankToNull(String s) {
        return s == null || s.isBlank() ? null : s.strip();
    }

    // ------------------------------------------------------------------------------------------- containers

    private static Table readCsv(String source, String content) {
        CsvMapper csv = CsvMapper.builder().enable(CsvParser.Feature.WRAP_AS_ARRAY).enable(CsvParser.Feature.SKIP_EMPTY_LINES).build();
        List<String> header = null;
        List<Map<String, String>> rows = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        try (MappingIterator<List<String>> it = csv.readerForListOf(String.class).readValues(content)) {
            while (it.hasNextValue()) {
                int line = it.getCurrentLocation() == null ? -1 : it.getCurrentLocation().getLineNr();
                List<String> values = it.nextValue();
                if (header == null) {
                    header = new ArrayList<>();
                    for (String h : values) {
                        String name = h.strip();
                        if (header.contains(name)) {
                            throw new JlensException(source + ": line 1: the header names column \"" + name + "\" twice");
                        }
                        header.add(name);
                    }
                    continue;
                }
                if (values.size() != header.size()) {
                    throw new JlensException(source + ": line " + line + ": row has " + values.size() + " values but the header has "
                            + header.size() + " columns " + quoted(header) + "; a value with commas, quotes or line breaks must be in "
                            + "double quotes");
                }
                Map<String, String> row = new LinkedHashMap<>();
                for (int i = 0; i < header.size(); i++) row.put(header.get(i), values.get(i));
                rows.add(row);
                lines.add(line);
            }
        } catch (IOException | RuntimeException e) {
            if (e instanceof JlensException je) throw je;
            throw new JlensException(source + ": malformed CSV (" + firstLine(e.getMessage()) + "); expected RFC 4180 CSV with a header row", e);
        }
        if (header == null) throw new JlensException(source + ": file is empty; expected a header row, then one prompt per row");
        return new Table(header, rows, lines, "line");
    }

    private static Table readJsonl(String source, String content) {
        ObjectMapper json = new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
        List<String> header = new ArrayList<>();
        List<Map<String, String>> rows = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        int lineNo = 0;
        for (String line : (Iterable<String>) content.lines()::iterator) {
            lineNo++;
            if (line.isBlank()) continue;
            JsonNode node;
            try {
                node = json.readTree(line);
            } catch (IOException e) {
                throw new JlensException(source + ": line " + lineNo + ": not valid JSON (" + firstLine(e.getMessage())
                        + "); expected one JSON object per line");
            }
            if (!node.isObject()) throw new JlensException(source + ": line " + lineNo + ": expected a JSON object, found " + node.getNodeType());
            Map<String, String> row = new LinkedHashMap<>();
            for (var it = node.fields(); it.hasNext(); ) {
                var e = it.next();
                if (!header.contains(e.getKey())) header.add(e.getKey());
                JsonNode v = e.getValue();
                row.put(e.getKey(), v.isNull() ? null : v.isValueNode() ? v.asText() : v.toString());
            }
            rows.add(row);
            lines.add(lineNo);
        }
        if (rows.isEmpty()) throw new JlensException(source + ": no JSON objects; expected one JSON object per line");
        return new Table(header, rows, lines, "line");
    }

    private static Table readParquet(String source, byte[] bytes) {
        if (bytes.length < 8 || !new String(bytes, 0, 4, StandardCharsets.US_ASCII).equals("PAR1")) {
            throw new JlensException(source + ": not a Parquet file (no PAR1 magic); expected a .parquet file as Hugging Face datasets ship");
        }
        List<String> header = new ArrayList<>();
        List<Map<String, String>> rows = new ArrayList<>();
        List<Integer> lines = new ArrayList<>();
        try (ParquetFileReader reader = ParquetFileReader.open(InputFile.of(ByteBuffer.wrap(bytes)));
             RowReader rr = reader.rowReader()) {
            int n = 0;
            while (rr.hasNext()) {
                rr.next();
                if (header.isEmpty()) for (int i = 0; i < rr.getFieldCount(); i++) header.add(rr.getFieldName(i));
                Map<String, String> row = new LinkedHashMap<>();
                for (int i = 0; i < header.size(); i++) {
                    Object v = rr.isNull(i) ? null : rr.getValue(i);
                    row.put(header.get(i), v == null ? null : v.toString());
                }
                rows.add(row);
                lines.add(++n);
            }
            if (header.isEmpty()) reader.getFileSchema().getColumns().forEach(c -> header.add(c.name()));
        } catch (IOException | RuntimeException e) {
            throw new JlensException(source + ": cannot read Parquet (" + firstLine(String.valueOf(e.getMessage()))
                    + "); jlens reads uncompressed and snappy-compressed Parquet with flat columns", e);
        }
        return new Table(header, rows, lines, "row");
    }

    private static String decode(String source, byte[] bytes) {
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
            return s.startsWith("\uFEFF") ? s.substring(1) : s;
        } catch (CharacterCodingException e) {
            throw new JlensException(source + ": not valid UTF-8 text; a CSV or JSONL benchmark must be UTF-8", e);
        }
    }

    private static String stem(Path file) {
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String firstLine(String s) {
        return s == null ? "" : s.lines().findFirst().orElse("");
    }

    private static String layouts() {
        StringBuilder sb = new StringBuilder();
        for (BenchmarkFormat f : BenchmarkFormat.published()) {
            if (!sb.isEmpty()) sb.append("; ");
            sb.append(f.cliName()).append(": ").append(String.join(", ", f.columns()));
        }
        return sb.toString();
    }

    static String quoted(List<String> names) {
        return names.stream().map(n -> "\"" + n + "\"").reduce((a, b) -> a + ", " + b).orElse("(none)");
    }
}
