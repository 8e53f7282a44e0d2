package dev.jlens.instruments;

import dev.jlens.JlensException;
import dev.jlens.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * Tokens named on a command line: comma-separated strings taken exactly as written (a leading space is part of
 * the token, as in {@code " I, Sorry, Sure"}), each of which must encode to one token, or {@code #id} for a
 * token id.
 */
public final class TokenChoice {

    private TokenChoice() {
    }

    /** The token ids of {@code spec} (e.g. {@code " Sorry, Sure"} or {@code "#318,#40"}). */
    public static int[] parse(TextTokenizer tok, String spec, int vocab, String option) {
        if (spec == null || spec.isBlank()) throw new JlensException(option + ": no tokens given; expected e.g. \" Sorry, Sure\"");
        List<Integer> ids = new ArrayList<>();
        for (String part : spec.split(",", -1)) {
            if (part.isEmpty()) throw new JlensException(option + " \"" + spec + "\": empty entry between commas");
            ids.add(one(tok, part, vocab, option));
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int one(TextTokenizer tok, String text, int vocab, String option) {
        String t = text.strip();
        if (t.startsWith("#") && t.length() > 1 && t.substring(1).chars().allMatch(Character::isDigit)) {
            int id;
            try {
                id = Integer.parseInt(t.substring(1));
            } catch (NumberFormatException e) {
                id = -1;
            }
            if (id < 0 || id >= vocab) throw new JlensException(option + ": token id " + t + " is outside the vocabulary 0.." + (vocab - 1));
            return id;
        }
        int[] enc = tok.encode(text);
        List<Integer> content = new ArrayList<>();
        for (int i = 0; i < enc.length; i++) {
            boolean special = (i == 0 && enc[i] == tok.bosId()) || (i == enc.length - 1 && enc[i] == tok.eosId() && enc.length > 1);
            if (!special) content.add(enc[i]);
        }
        if (content.size() != 1) {
            List<String> pieces = new ArrayList<>();
            for (int id : content) pieces.add("\"" + tok.decode(new int[]{id}) + "\" (#" + id + ")");
            throw new JlensException(option + ": \"" + text + "\" is not one token of this model's vocabulary: it encodes to "
                    + (content.isEmpty() ? "no token" : content.size() + " tokens " + pieces) + "; give a single token "
                    + "(mind the leading space: \" Sorry\" and \"Sorry\" differ) or an id such as #" + (content.isEmpty() ? 0 : content.get(0)));
        }
        return content.get(0);
    }

    /** A token as text for tables and charts. */
    public static String show(TextTokenizer tok, int id) {
        if (tok == null) return "#" + id;
        String s = tok.decode(new int[]{id});
        return s.replace("\n", "\\n").replace("\t", "\\t");
    }
}
