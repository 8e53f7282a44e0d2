package dev.jlens.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
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
    private final int eosId;
    private final int bosId;

    private HfTokenizer(HuggingFaceTokenizer tokenizer, int bosId, int eosId) {
        this.tokenizer = tokenizer;
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
        JsonNode vocab = readVocab(file);
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
        return new HfTokenizer(tok, bos, eos);
    }

    private static String tokenString(JsonNode cfg, String field) {
        if (cfg == null || !cfg.has(field) || cfg.get(field).isNull()) return null;
        JsonNode n = cfg.get(field);
        return n.isTextual() ? n.asText() : n.path("content").asText(null);
    }

    private static JsonNode readVocab(Path file) {
        try {
            JsonNode root = new ObjectMapper().readTree(file.toFile());
            JsonNode vocab = root.path("model").path("vocab");
            if (!vocab.isObject()) return null;
            // added_tokens live outside the model vocab; fold them in so special tokens resolve.
            var merged = new ObjectMapper().createObjectNode();
            merged.setAll((com.fasterxml.jackson.databind.node.ObjectNode) vocab);
            for (JsonNode t : root.path("added_tokens")) merged.put(t.path("content").asText(), t.path("id").asInt());
            return merged;
        } catch (IOException e) {
            return null;
        }
    }

    @Override
    public int[] encode(String text) {
        Encoding enc = tokenizer.encode(text);
        return Arrays.stream(enc.getIds()).mapToInt(Math::toIntExact).toArray();
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
        return Arrays.asList(tokenizer.encode(text).getTokens());
    }

    @Override
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = ids[i];
        return tokenizer.decode(l, true);
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
