package dev.jlens.hub;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;

class HubFilesTest {

    @Test
    void chatTemplatesAreFetchedWithTheTokenizer() {
        HubFiles.Plan p = HubFiles.plan("Qwen/Qwen2.5-0.5B-Instruct", "main", Set.of("config.json", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja", "vocab.json", "merges.txt", "README.md", "model.safetensors"));
        assertEquals(List.of("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                "model.safetensors"), p.files());
    }
}
