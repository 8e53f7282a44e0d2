package dev.jlens.steering;

import dev.jlens.JlensException;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;

/**
 * Which token of a prompt a direction is read from: the last token, the k-th token before it, or the mean
 * over all of the prompt's tokens. Arditi et al. compute one candidate direction per post-instruction
 * position; {@code last:K} asks for the last K positions, each on its own.
 *
 * @param label     {@code last}, {@code last-1}, {@code last-2}, ... or {@code mean}
 * @param fromEnd   0 for the last token, 1 for the one before, ...; -1 for the mean
 */
public record TokenPosition(String label, int fromEnd) {

    public static final TokenPosition LAST = new TokenPosition("last", 0);
    public static final TokenPosition MEAN = new TokenPosition("mean", -1);

    public boolean isMean() {
        return fromEnd < 0;
    }

    /** The row of a prompt of {@code len} tokens, or -1 when the prompt is too short to have it. */
    public int row(int len) {
        return isMean() ? -1 : len - 1 - fromEnd >= 0 ? len - 1 - fromEnd : -1;
    }

    public static TokenPosition fromLabel(String label) {
        if (label.equals("last")) return LAST;
        if (label.equals("mean")) return MEAN;
        if (label.startsWith("last-")) {
            try {
                int k = Integer.parseInt(label.substring(5));
                if (k > 0) return new TokenPosition(label, k);
            } catch (NumberFormatException ignored) {
                // falls through to the error
            }
        }
        throw new JlensException("position \"" + label + "\": expected last, last-K (K ≥ 1) or mean");
    }

    /**
     * Parses a comma-separated list such as {@code last,mean} or {@code last:3} (= last, last-1, last-2).
     */
    public static List<TokenPosition> parseList(String spec) {
        if (spec == null || spec.isBlank()) {
            throw new JlensException("--positions: empty; expected e.g. last, last:3 or mean, comma-separated");
        }
        LinkedHashSet<TokenPosition> out = new LinkedHashSet<>();
        for (String raw : spec.split(",")) {
            String p = raw.strip().toLowerCase(Locale.ROOT);
            if (p.isEmpty()) continue;
            if (p.startsWith("last:")) {
                int k;
                try {
                    k = Integer.parseInt(p.substring(5));
                } catch (NumberFormatException e) {
                    throw new JlensException("--positions \"" + spec + "\": \"" + raw.strip() + "\" is not last:K with a whole number K");
                }
                if (k < 1 || k > 64) {
                    throw new JlensException("--positions \"" + spec + "\": last:" + k + " asks for " + k + " positions; expected 1 to 64");
                }
                for (int i = 0; i < k; i++) out.add(i == 0 ? LAST : new TokenPosition("last-" + i, i));
            } else {
                try {
                    out.add(fromLabel(p));
                } catch (JlensException e) {
                    throw new JlensException("--positions \"" + spec + "\": \"" + raw.strip() + "\" is not last, last:K, last-K or mean");
                }
            }
        }
        if (out.isEmpty()) throw new JlensException("--positions \"" + spec + "\": no positions; expected e.g. last,mean");
        return new ArrayList<>(out);
    }
}
