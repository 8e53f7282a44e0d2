package dev.jlens.tokenizer;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.jlens.testing.FuzzInput;

import dev.jlens.JlensException;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Coverage-guided fuzzing (Jazzer) of tokenizer.json handling. The tokenizer itself is Hugging Face's Rust
 * library behind DJL's JNI bindings, which Jazzer does not instrument; what is under test is jlens' wrapper:
 * whatever the file holds, loading it and encoding/decoding with it either works or throws a
 * JlensException. The first input byte splits the rest into tokenizer.json and the text to encode.
 * A normal test run replays the inputs under
 * src/test/resources/dev/jlens/tokenizer/HfTokenizerFuzzTestInputs; {@code JAZZER_FUZZ=1} fuzzes.
 */
class HfTokenizerFuzzTest {

    @FuzzTest(maxDuration = "3m")
    void loadEncodeDecode(byte[] input) throws Exception {
        if (input.length == 0) return;
        int textLen = Math.min(input[0] & 0xff, input.length - 1);
        String text = new String(input, 1, textLen, StandardCharsets.UTF_8);
        byte[] json = Arrays.copyOfRange(input, 1 + textLen, input.length);
        FuzzInput.parsesOrFailsCleanly(() -> {
            try (HfTokenizer t = HfTokenizer.fromFile(FuzzInput.write("tokenizer.json", json), null)) {
                int[] ids = t.encode(text);
                t.tokens(text);
                t.decode(ids);
            }
        });
    }

    /**
     * Found by this fuzz test: a JSON syntax error inside "decoder" made the Rust library panic across JNI,
     * which aborts the JVM (libFuzzer: deadly signal). jlens now checks the JSON first.
     */
    @Test
    void syntaxErrorInsideTheDecoderIsAJlensExceptionNotAProcessAbort() {
        Path file = FuzzInput.write("tokenizer.json", ("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
                + "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,"
                + "\"decoder\":{\"type\":\"WordPiece\"[UNK]\":0,\"un\":1}}}").getBytes(StandardCharsets.UTF_8));
        JlensException e = assertThrows(JlensException.class, () -> HfTokenizer.fromFile(file, null));
        assertTrue(e.getMessage().startsWith(file + ": not a valid tokenizer.json"), e.getMessage());
    }

    /**
     * Found by this fuzz test: a TemplateProcessing template naming a special token that its special_tokens
     * lack loads, then makes the Rust library panic on the first encode (the JVM aborts). Refused at load.
     */
    @Test
    void templateWithAnUndefinedSpecialTokenIsRefusedAtLoad() {
        Path file = FuzzInput.write("tokenizer.json", ("{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
                + "\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Whitespace\"},"
                + "\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"TemplateProcessing\","
                + "\"single\":[{\"SpecialToken\":{\"id\":\"[CLS]\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                + "\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                + "\"special_tokens\":{\"[UNK]\":{\"id\":\"[UNK]\",\"ids\":[0],\"tokens\":[\"[UNK]\"]}}}]},"
                + "\"decoder\":null,\"model\":{\"type\":\"WordLevel\",\"vocab\":{\"[UNK]\":0,\"hello\":1},\"unk_token\":\"[UNK]\"}}")
                .getBytes(StandardCharsets.UTF_8));
        JlensException e = assertThrows(JlensException.class, () -> HfTokenizer.fromFile(file, null));
        assertTrue(e.getMessage().contains("uses the special token \"[CLS]\""), e.getMessage());
    }
}
