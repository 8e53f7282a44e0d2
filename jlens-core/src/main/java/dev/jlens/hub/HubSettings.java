package dev.jlens.hub;

import dev.jlens.JlensException;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The Hugging Face Hub settings, read from the same environment variables as Python's huggingface_hub
 * ({@code constants.py}) so both programs agree on where the cache is, which server to ask and with which token.
 *
 * @param endpoint the hub's base URL ({@code HF_ENDPOINT}, default {@code https://huggingface.co}), no trailing slash
 * @param cache    the hub cache folder holding {@code models--ORG--NAME}
 * @param token    the access token sent as {@code Authorization: Bearer}, or null
 * @param offline  {@code HF_HUB_OFFLINE} (or the older {@code TRANSFORMERS_OFFLINE}) is set: never touch the network
 */
public record HubSettings(URI endpoint, Path cache, String token, boolean offline) {

    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";

    /** huggingface_hub's {@code _is_true}: these spellings, in any case, turn a flag on. */
    private static final Set<String> TRUE = Set.of("1", "ON", "YES", "TRUE");

    public HubSettings {
        if (endpoint == null || cache == null) throw new IllegalArgumentException("endpoint and cache are required");
    }

    /** Reads the settings from an environment map; {@code home} stands for {@code ~}. */
    public static HubSettings fromEnv(Map<String, String> env, Path home) {
        return new HubSettings(endpoint(env), hubCache(env, home), token(env, home), isTrue(env.get("HF_HUB_OFFLINE"))
                || isTrue(env.get("TRANSFORMERS_OFFLINE")));
    }

    /** {@code HF_HUB_CACHE}, else the legacy {@code HUGGINGFACE_HUB_CACHE}, else {@code <HF_HOME>/hub}. */
    public static Path hubCache(Map<String, String> env, Path home) {
        String c = nonBlank(env.get("HF_HUB_CACHE"));
        if (c == null) c = nonBlank(env.get("HUGGINGFACE_HUB_CACHE"));
        if (c != null) return expand(c, home);
        return hfHome(env, home).resolve("hub");
    }

    /** {@code HF_HOME}, else {@code $XDG_CACHE_HOME/huggingface}, else {@code ~/.cache/huggingface}. */
    static Path hfHome(Map<String, String> env, Path home) {
        String h = nonBlank(env.get("HF_HOME"));
        if (h != null) return expand(h, home);
        String xdg = nonBlank(env.get("XDG_CACHE_HOME"));
        Path base = xdg != null ? expand(xdg, home) : home.resolve(".cache");
        return base.resolve("huggingface");
    }

    static URI endpoint(Map<String, String> env) {
        String e = nonBlank(env.get("HF_ENDPOINT"));
        if (e == null) e = DEFAULT_ENDPOINT;
        while (e.endsWith("/")) e = e.substring(0, e.length() - 1);
        try {
            URI u = new URI(e);
            String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
            if (!(scheme.equals("http") || scheme.equals("https")) || u.getHost() == null
                    || u.getRawQuery() != null || u.getRawFragment() != null) {
                throw new URISyntaxException(e, "expected http(s)://host[:port][/path]");
            }
            return u;
        } catch (URISyntaxException ex) {
            throw new JlensException("HF_ENDPOINT=" + e + " is not a usable hub address: expected an http(s) URL "
                    + "such as " + DEFAULT_ENDPOINT + " or a mirror's base URL");
        }
    }

    /**
     * {@code HF_TOKEN}, else the legacy {@code HUGGING_FACE_HUB_TOKEN}, else the file {@code huggingface-cli login}
     * writes ({@code HF_TOKEN_PATH}, default {@code <HF_HOME>/token}).
     */
    static String token(Map<String, String> env, Path home) {
        String t = nonBlank(env.get("HF_TOKEN"));
        if (t == null) t = nonBlank(env.get("HUGGING_FACE_HUB_TOKEN"));
        if (t != null) return t.strip();
        String p = nonBlank(env.get("HF_TOKEN_PATH"));
        Path file = p != null ? expand(p, home) : hfHome(env, home).resolve("token");
        if (!Files.isRegularFile(file)) return null;
        try {
            return nonBlank(Files.readString(file).strip());
        } catch (IOException e) {
            // An unreadable token file is the same as none: public models still download.
            return null;
        }
    }

    private static boolean isTrue(String v) {
        return v != null && TRUE.contains(v.strip().toUpperCase(Locale.ROOT));
    }

    private static String nonBlank(String s) {
        return s == null || s.isBlank() ? null : s;
    }

    private static Path expand(String p, Path home) {
        if (p.equals("~")) return home;
        if (p.startsWith("~/")) return home.resolve(p.substring(2));
        return Path.of(p);
    }

    @Override
    public String toString() {
        // Never print the token itself.
        return "HubSettings[endpoint=" + endpoint + ", cache=" + cache + ", token=" + (token == null ? "none" : "set")
                + ", offline=" + offline + "]";
    }
}
