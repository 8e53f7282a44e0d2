package dev.jlens.hub;

import dev.jlens.JlensException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The environment is read as huggingface_hub's constants.py reads it. */
class HubSettingsTest {

    @TempDir
    Path home;

    @Test
    void cacheFolderFollowsHuggingFaceHubPrecedence() {
        assertEquals(home.resolve(".cache/huggingface/hub"), HubSettings.hubCache(Map.of(), home));
        assertEquals(Path.of("/x/huggingface/hub"), HubSettings.hubCache(Map.of("XDG_CACHE_HOME", "/x"), home));
        assertEquals(Path.of("/h/hub"), HubSettings.hubCache(Map.of("XDG_CACHE_HOME", "/x", "HF_HOME", "/h"), home));
        assertEquals(Path.of("/legacy"), HubSettings.hubCache(Map.of("HF_HOME", "/h",
                "HUGGINGFACE_HUB_CACHE", "/legacy"), home));
        assertEquals(Path.of("/c"), HubSettings.hubCache(Map.of("HF_HUB_CACHE", "/c",
                "HUGGINGFACE_HUB_CACHE", "/legacy"), home));
        assertEquals(home.resolve("hfc"), HubSettings.hubCache(Map.of("HF_HUB_CACHE", "~/hfc"), home));
    }

    @Test
    void endpointTokenAndOfflineFlag() throws IOException {
        HubSettings d = HubSettings.fromEnv(Map.of(), home);
        assertEquals(URI.create("https://huggingface.co"), d.endpoint());
        assertNull(d.token());
        assertFalse(d.offline());

        assertEquals(URI.create("http://127.0.0.1:9/mirror"),
                HubSettings.fromEnv(Map.of("HF_ENDPOINT", "http://127.0.0.1:9/mirror/"), home).endpoint());
        for (String on : new String[]{"1", "true", "YES", "on"}) {
            assertTrue(HubSettings.fromEnv(Map.of("HF_HUB_OFFLINE", on), home).offline(), on);
        }
        assertFalse(HubSettings.fromEnv(Map.of("HF_HUB_OFFLINE", "0"), home).offline());
        assertTrue(HubSettings.fromEnv(Map.of("TRANSFORMERS_OFFLINE", "1"), home).offline());

        // huggingface-cli login writes <HF_HOME>/token; HF_TOKEN wins over it.
        Files.createDirectories(home.resolve(".cache/huggingface"));
        Files.writeString(home.resolve(".cache/huggingface/token"), "hf_from_file\n");
        assertEquals("hf_from_file", HubSettings.fromEnv(Map.of(), home).token());
        assertEquals("hf_env", HubSettings.fromEnv(Map.of("HF_TOKEN", "hf_env"), home).token());
        assertFalse(HubSettings.fromEnv(Map.of("HF_TOKEN", "hf_env"), home).toString().contains("hf_env"));

        JlensException bad = assertThrows(JlensException.class,
                () -> HubSettings.fromEnv(Map.of("HF_ENDPOINT", "ftp://example"), home));
        assertTrue(bad.getMessage().contains("HF_ENDPOINT"), bad.getMessage());
    }
}
