package dev.jlens.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelLocation;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Fixture models made chat models for tests: a copy of a fixture directory whose tokenizer knows a template's
 * markers as special added tokens (ids from 512, past every fixture's vocabulary of real tokens) and whose
 * tokenizer_config.json carries the template. The fixtures themselves have no chat template.
 */
public final class ChatFixtures {

    private ChatFixtures() {
    }

    /** With a published template: the tokenizer_config.json under test resource {@code /chat-templates/NAME/}. */
    public static HookedModel withPublished(Path tmp, String fixture, String published, String... specials) throws IOException {
        Path dir = copy(tmp, fixture, published, specials);
        try (InputStream in = ChatFixtures.class.getResourceAsStream("/chat-templates/" + published + "/tokenizer_config.json")) {
            if (in == null) throw new IllegalArgumentException("no test resource /chat-templates/" + published);
            Files.write(dir.resolve("tokenizer_config.json"), in.readAllBytes());
        }
        return ModelLoader.loadFolder(new ModelLocation(fixture, null, dir, false));
    }

    /** With a template given as text ({@code name} only names the copy), bos {@code <s>} and eos {@code </s>}. */
    public static HookedModel withTemplate(Path tmp, String fixture, String name, String template, String... specials)
            throws IOException {
        Path dir = copy(tmp, fixture, name, specials);
        Files.writeString(dir.resolve("tokenizer_config.json"), new ObjectMapper().createObjectNode().put("bos_token", "<s>")
                .put("eos_token", "</s>").put("chat_template", template).toString());
        return ModelLoader.loadFolder(new ModelLocation(fixture, null, dir, false));
    }

    private static Path copy(Path tmp, String fixture, String name, String... specials) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(fixture + "-" + name));
        Path src = Fixtures.dir(fixture);
        for (String f : List.of("config.json", "model.safetensors")) Files.copy(src.resolve(f), dir.resolve(f));
        ObjectMapper om = new ObjectMapper();
        ObjectNode tok = (ObjectNode) om.readTree(src.resolve("tokenizer.json").toFile());
        ArrayNode added = (ArrayNode) tok.get("added_tokens");
        int id = 512;
        for (String s : specials) {
            added.addObject().put("id", id++).put("content", s).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        Files.writeString(dir.resolve("tokenizer.json"), om.writeValueAsString(tok));
        return dir;
    }
}
