package dev.jlens.tokenizer;

import java.util.List;

/** Text to token ids and back, with the model's special-token conventions already applied. */
public interface TextTokenizer {

    /** Ids for one prompt, including any BOS/CLS/SEP the model's tokenizer adds. */
    int[] encode(String text);

    /** The token strings of {@link #encode}, for display. */
    List<String> tokens(String text);

    String decode(int[] ids);

    /** End-of-sequence id, or -1 when the tokenizer has none. */
    int eosId();

    /** Beginning-of-sequence id, or -1 when none. */
    int bosId();
}
