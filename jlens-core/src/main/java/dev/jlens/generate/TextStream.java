package dev.jlens.generate;

import dev.jlens.tokenizer.TextTokenizer;

import java.util.Arrays;
import java.util.List;

/**
 * One sequence's new text as tokens arrive. The text is decoded from the whole sequence and the prompt's own
 * decoding is cut off its front, because tokenizers decode a token differently at the start of a text (Llama's
 * decoder strips one leading space) than after other text. What is handed out is held back while it could
 * still change: a trailing U+FFFD (the first bytes of a character split over byte-fallback tokens) and a
 * tail that could be the beginning of a stop string.
 */
final class TextStream {

    private final TextTokenizer tokenizer;
    private final int[] prompt;
    private final String promptText;
    private final List<String> stops;
    private int[] ids = new int[0];
    private int emitted;
    private String text = "";
    private boolean stopped;

    TextStream(TextTokenizer tokenizer, int[] prompt, List<String> stops) {
        this.tokenizer = tokenizer;
        this.prompt = prompt;
        this.promptText = tokenizer.decode(prompt);
        this.stops = stops;
    }

    /** Adds a token; returns the text that became final, or everything left when {@code last}. */
    String push(int token, boolean last) {
        ids = Arrays.copyOf(ids, ids.length + 1);
        ids[ids.length - 1] = token;
        int[] all = Arrays.copyOf(prompt, prompt.length + ids.length);
        System.arraycopy(ids, 0, all, prompt.length, ids.length);
        String full = tokenizer.decode(all);
        String t = full.startsWith(promptText) ? full.substring(promptText.length()) : tokenizer.decode(ids);
        int cut = firstStop(t);
        if (cut >= 0) {
            stopped = true;
            t = t.substring(0, cut);
        }
        text = t;
        int safe = stopped || last ? t.length() : settledLength(t);
        if (safe <= emitted) return "";
        String out = t.substring(emitted, safe);
        emitted = safe;
        return out;
    }

    /** Everything not yet handed out; call when the sequence ends for a reason other than the last push. */
    String finish() {
        if (emitted >= text.length()) return "";
        String out = text.substring(emitted);
        emitted = text.length();
        return out;
    }

    boolean stopped() {
        return stopped;
    }

    String text() {
        return text;
    }

    private int firstStop(String t) {
        int best = -1;
        for (String s : stops) {
            int i = t.indexOf(s);
            if (i >= 0 && (best < 0 || i < best)) best = i;
        }
        return best;
    }

    /** Length of the prefix that no later token can change. */
    private int settledLength(String t) {
        int end = t.length();
        while (end > emitted && t.charAt(end - 1) == '\uFFFD') end--;
        int hold = 0;
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, end); k > hold; k--) {
                if (t.startsWith(s.substring(0, k), end - k)) {
                    hold = k;
                    break;
                }
            }
        }
        return Math.max(emitted, end - hold);
    }
}
