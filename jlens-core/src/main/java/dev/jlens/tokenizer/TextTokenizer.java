package dev.jlens.tokenizer;

import java.util.List;

/** Text to token ids and back, with the model's special-token conventions already applied. */
public interface TextTokenizer {

    /** Ids for one prompt, including any BOS/CLS/SEP the model's tokenizer adds. */
    int[] encode(String text);

    /**
     * Ids of a text taken as it is: no BOS/EOS added by the tokenizer's post-processor (Hugging Face's
     * {@code add_special_tokens=False}), while special tokens written in the text ({@code <|im_start|>},
     * {@code <s>}) are still recognised as single tokens. This is how a rendered chat template is encoded:
     * the template writes its own BOS. {@code starts[i]} is the character offset in text where token i begins.
     */
    default Verbatim encodeVerbatim(String text) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot encode text without special tokens");
    }

    /** Ids with the offset in the text where each token starts. */
    record Verbatim(int[] ids, int[] starts) {
    }

    /** The token strings of {@link #encode}, for display. */
    List<String> tokens(String text);

    String decode(int[] ids);

    /** End-of-sequence id, or -1 when the tokenizer has none. */
    int eosId();

    /** Beginning-of-sequence id, or -1 when none. */
    int bosId();
}
