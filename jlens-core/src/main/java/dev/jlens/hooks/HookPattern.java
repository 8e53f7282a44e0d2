package dev.jlens.hooks;

import dev.jlens.JlensException;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Comma-separated globs over hook names, as typed on the command line: {@code *} matches any characters
 * including dots, so {@code blocks.*.hook_resid_post} picks every layer and {@code *} alone picks every hook.
 */
public final class HookPattern {

    private final String text;
    private final List<Pattern> globs;

    private HookPattern(String text, List<Pattern> globs) {
        this.text = text;
        this.globs = globs;
    }

    public static HookPattern parse(String text) {
        if (text == null || text.isBlank()) {
            throw new JlensException("--hooks: empty hook pattern; expected comma-separated names or globs such as "
                    + "\"blocks.*.hook_resid_post,hook_embed\"");
        }
        List<Pattern> globs = new ArrayList<>();
        for (String part : text.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) continue;
            StringBuilder re = new StringBuilder();
            for (char c : p.toCharArray()) {
                if (c == '*') re.append(".*");
                else if (c == '?') re.append('.');
                else re.append(Pattern.quote(String.valueOf(c)));
            }
            globs.add(Pattern.compile(re.toString()));
        }
        return new HookPattern(text, List.copyOf(globs));
    }

    public boolean matches(String name) {
        for (Pattern g : globs) if (g.matcher(name).matches()) return true;
        return false;
    }

    /** The points this pattern selects, in forward order; an error naming the valid names if none match. */
    public List<HookPoint> select(Collection<HookPoint> points) {
        List<HookPoint> out = new ArrayList<>();
        for (HookPoint p : points) if (matches(p.name())) out.add(p);
        if (out.isEmpty()) {
            throw new JlensException("--hooks \"" + text + "\" matches no hook point of this model. Valid names are "
                    + describe(points) + "; use * as a wildcard, e.g. \"blocks.*.hook_resid_post\", and commas to combine.");
        }
        return out;
    }

    /** Compact listing of valid names, e.g. "hook_embed, blocks.{0..5}.hook_resid_pre, ...". */
    public static String describe(Collection<HookPoint> points) {
        java.util.LinkedHashMap<String, int[]> byKind = new java.util.LinkedHashMap<>();
        for (HookPoint p : points) {
            String key = p.layer() >= 0 ? "blocks.{L}." + p.kind().suffix() : p.name();
            int[] range = byKind.computeIfAbsent(key, k -> new int[]{Integer.MAX_VALUE, -1});
            if (p.layer() >= 0) {
                range[0] = Math.min(range[0], p.layer());
                range[1] = Math.max(range[1], p.layer());
            }
        }
        List<String> parts = new ArrayList<>();
        byKind.forEach((k, r) -> parts.add(r[1] >= 0 ? k.replace("{L}", "{" + r[0] + ".." + r[1] + "}") : k));
        return String.join(", ", parts);
    }

    @Override
    public String toString() {
        return text;
    }
}
