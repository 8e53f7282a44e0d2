package dev.jlens.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face {@code tokenizer.json} run by DJL's bindings to the Rust tokenizers library (bundled native
 * code, works offline). Special tokens come from the tokenizer's own post-processor, as with
 * {@code add_special_tokens=True} in Python; {@code tokenizer_config.json} may turn BOS on or off.
 */
public final class HfTokenizer implements TextTokenizer, AutoCloseable {

    private final HuggingFaceTokenizer tokenizer;
    private final Path file;
    private final int eosId;
    private final int bosId;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, Path file, int bosId, int eosId) {
        this.tokenizer = tokenizer;
        this.file = file;
        this.bosId = bosId;
        this.eosId = eosId;
    }

    /** Loads {@code dir/tokenizer.json}, honouring {@code dir/tokenizer_config.json} when present. */
    public static HfTokenizer fromDirectory(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new JlensException(file + ": tokenizer.json not found; jlens reads the fast-tokenizer file that "
                    + "Hugging Face models ship next to config.json");
        }
        JsonNode cfg = null;
        Path cfgFile = dir.resolve("tokenizer_config.json");
        if (Files.isRegularFile(cfgFile)) {
            try {
                cfg = new ObjectMapper().readTree(Files.readString(cfgFile));
            } catch (IOException e) {
                throw new JlensException(cfgFile + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
            }
        }
        return fromFile(file, cfg);
    }

    public static HfTokenizer fromFile(Path file, JsonNode tokenizerConfig) {
        // Parsed here first because the Rust library aborts the whole process (a panic across JNI, which DJL
        // cannot catch) on some malformed files, e.g. a JSON syntax error inside "decoder" (found by
        // HfTokenizerFuzzTest). A file that is not strict JSON never reaches it.
        JsonNode root = readJson(file);
        checkTemplates(file, root.path("post_processor"));
        Map<String, String> opts = new HashMap<>();
        opts.put("addSpecialTokens", "true");
        opts.put("truncation", "false");
        opts.put("padding", "false");
        HuggingFaceTokenizer tok;
        try {
            tok = HuggingFaceTokenizer.newInstance(file, opts);
        } catch (IOException | RuntimeException e) {
            throw new JlensException(file + ": cannot load tokenizer: " + e.getMessage(), e);
        }
        int bos = -1, eos = -1;
        String bosTok = tokenString(tokenizerConfig, "bos_token");
        String eosTok = tokenString(tokenizerConfig, "eos_token");
        JsonNode vocab = vocab(root);
        if (bosTok != null && vocab != null && vocab.has(bosTok)) bos = vocab.get(bosTok).asInt();
        if (eosTok != null && vocab != null && vocab.has(eosTok)) eos = vocab.get(eosTok).asInt();
        if (eos < 0 && vocab != null) {
            for (String guess : List.of("<|endoftext|>", "</s>", "<|im_end|>", "[SEP]")) {
                if (vocab.has(guess)) {
                    eos = vocab.get(guess).asInt();
                    break;
                }
            }
        }
        if (bos < 0 && vocab != null) {
            for (String guess : List.of("<s>", "<|endoftext|>", "[CLS]")) {
                if (vocab.has(guess)) {
                    bos = vocab.get(guess).asInt();
                    break;
                }
            }
        }
        return new HfTokenizer(tok, file, bos, eos);
    }

    private static String tokenString(JsonNode cfg, String field) {
        if (cfg == null || !cfg.has(field) || cfg.get(field).isNull()) return null;
        JsonNode n = cfg.get(field);
        return n.isTextual() ? n.asText() : n.path("content").asText(null);
    }

    private static JsonNode readJson(Path file) {
        try {
            JsonNode root = new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
                    .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readTree(file.toFile());
            if (root == null || !root.isObject()) throw new JlensException(file + ": expected a JSON object (a tokenizer.json)");
            return root;
        } catch (IOException e) {
            throw new JlensException(file + ": not a valid tokenizer.json: "
                    + String.valueOf(e.getMessage()).lines().findFirst().orElse(""), e);
        }
    }

    /**
     * A TemplateProcessing post-processor whose template names a special token missing from its own
     * special_tokens makes the Rust library panic (and so abort the JVM) on the first encode; found by
     * HfTokenizerFuzzTest. The library reads post-processors as an untagged union, so a template is
     * recognised by its fields ("single"/"pair"), not by its "type"; templates inside a Sequence's
     * "processors" are checked too.
     */
    private static void checkTemplates(Path file, JsonNode processor) {
        if (!processor.isObject()) return;
        for (JsonNode p : processor.path("processors")) checkTemplates(file, p);
        java.util.Set<String> defined = new java.util.HashSet<>();
        JsonNode special = processor.path("special_tokens");
        if (special.isObject()) special.fieldNames().forEachRemaining(defined::add);
        for (JsonNode t : special.isArray() ? special : List.<JsonNode>of()) defined.add(t.path("id").asText(""));
        for (String which : List.of("single", "pair")) {
            for (JsonNode piece : processor.path(which)) {
                JsonNode token = piece.path("SpecialToken");
                if (token.isMissingNode()) continue;
                String id = token.path("id").asText("");
                if (!defined.contains(id)) {
                    throw new JlensException(file + ": post_processor template \"" + which + "\" uses the special token \""
                            + id + "\", which its special_tokens do not define");
                }
            }
        }
    }

    private static JsonNode vocab(JsonNode root) {
        JsonNode vocab = root.path("model").path("vocab");
        if (!vocab.isObject()) return null;
        // added_tokens live outside the model vocab; fold them in so special tokens resolve.
        var merged = new ObjectMapper().createObjectNode();
        merged.setAll((com.fasterxml.jackson.databind.node.ObjectNode) vocab);
        for (JsonNode t : root.path("added_tokens")) merged.put(t.path("content").asText(), t.path("id").asInt());
        return merged;
    }

    /** Native errors become JlensExceptions naming the tokenizer file. */
    private JlensException failed(String what, RuntimeException e) {
        return new JlensException(file + ": the tokenizer cannot " + what + ": " + e.getMessage(), e);
    }

    @Override
    public int[] encode(String text) {
        Encoding enc;
        try {
            enc = tokenizer.encode(text);
        } catch (RuntimeException e) {
            throw failed("encode a prompt", e);
        }
        long[] ids = enc.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] > Integer.MAX_VALUE) throw new JlensException(file + ": token id " + ids[i] + " is out of range");
            out[i] = (int) ids[i];
        }
        return out;
    }

    @Override
    public Verbatim encodeVerbatim(String text) {
        Encoding enc = tokenizer.encode(text, false, false);
        long[] ids = enc.getIds();
        var spans = enc.getCharTokenSpans();
        int[] out = new int[ids.length], starts = new int[ids.length];
        // The Rust library counts offsets in Unicode code points; Java strings index UTF-16 units.
        int[] unitOfCodePoint = text.codePoints().map(Character::charCount).toArray();
        int[] unit = new int[unitOfCodePoint.length + 1];
        for (int i = 0; i < unitOfCodePoint.length; i++) unit[i + 1] = unit[i] + unitOfCodePoint[i];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
            int cp = spans[i] == null ? -1 : spans[i].getStart();
            starts[i] = cp < 0 ? -1 : unit[Math.min(cp, unit.length - 1)];
        }
        return new Verbatim(out, starts);
    }

    @Override
    public List<String> tokens(String text) {
        try {
            return Arrays.asList(tokenizer.encode(text).getTokens());
        } catch (RuntimeException e) {
            throw failed("encode a prompt", e);
        }
    }

    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = ids[i];
        try {
            return tokenizer.decode(l, true);
        } catch (RuntimeException e) {
            throw failed("decode token ids", e);
        }
    }

    @Override
    public int eosId() {
        return eosId;
    }

    @Override
    public int bosId() {
        return bosId;
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
