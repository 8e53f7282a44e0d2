package dev.jlens.prompts;

import dev.jlens.JlensException;

import java.util.Locale;

/**
 * How the built-in sets are cut into train, val and test (docs/PROMPTS.md, "Split rule").
 * {@link #RANDOM}: the split field each prompt carries (60/20/20 by position within its category, so every
 * style and category is in every split). {@link #STYLE}: whole styles held out as test
 * ({@link PromptSets#HELD_OUT_STYLES}), so the test measures a shift of writing style the detector never saw.
 */
public enum SplitScheme {
    RANDOM, STYLE;

    /** The split {@code jlens probe} uses unless told otherwise. */
    public static final SplitScheme DEFAULT = STYLE;

    public String cliName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The set with this scheme's splits. */
    public PromptSet apply(PromptSet set) {
        return this == RANDOM ? set : PromptSets.splitByStyle(set, PromptSets.HELD_OUT_STYLES);
    }

    public SplitScheme other() {
        return this == RANDOM ? STYLE : RANDOM;
    }

    public static SplitScheme parse(String s) {
        for (SplitScheme v : values()) if (v.cliName().equals(s == null ? "" : s.trim().toLowerCase(Locale.ROOT))) return v;
        throw new JlensException("split \"" + s + "\": expected random (each prompt's split field, 60/20/20 within each "
                + "category) or style (the styles " + String.join(", ", PromptSets.HELD_OUT_STYLES) + " held out as test)");
    }
}
