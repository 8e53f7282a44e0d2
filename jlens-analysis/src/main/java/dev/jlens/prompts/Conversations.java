package dev.jlens.prompts;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.JlensException;
import dev.jlens.tokenizer.ChatTemplate;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The JSON forms of a conversation, shared by prompt files, {@code jlens detect}'s stdin and {@code jlens serve}:
 * {@code "messages": [{"role": "system|user|assistant", "content": "..."}, ...]}, or a (prompt, response) pair
 * {@code {"prompt": "...", "response": "..."}} (the prompt may also be in the text field), which is the
 * conversation [user: prompt, assistant: response].
 */
public final class Conversations {

    /** Roles a conversation may use, as in Hugging Face chat messages. */
    public static final List<String> ROLES = List.of("system", "user", "assistant");

    private Conversations() {
    }

    /**
     * The conversation an object holds, or an empty list when it holds a single prompt (no {@code messages}, no
     * {@code response}). Errors say what is wrong without a location; callers prefix theirs.
     *
     * @param textField the field of a single prompt's text ("text"), which may also hold a pair's prompt
     */
    public static List<ChatTemplate.Message> fromJson(JsonNode node, String textField) {
        JsonNode msgs = node.get("messages"), response = node.get("response");
        boolean hasMessages = msgs != null && !msgs.isNull(), hasResponse = response != null && !response.isNull();
        if (!hasMessages && !hasResponse) return List.of();
        List<ChatTemplate.Message> out = new ArrayList<>();
        if (hasMessages) {
            if (hasResponse) {
                throw new JlensException("the object has both \"messages\" and \"response\"; expected either a "
                        + "conversation (messages) or a prompt/response pair");
            }
            JsonNode text = node.get(textField);
            if (text != null && !text.isNull()) {
                throw new JlensException("the object has both \"" + textField + "\" and \"messages\"; expected either "
                        + "a prompt (\"" + textField + "\") or a conversation (\"messages\")");
            }
            if (!msgs.isArray() || msgs.isEmpty()) {
                throw new JlensException("field \"messages\" is " + (msgs.isArray() ? "an empty array" : kind(msgs))
                        + "; expected a non-empty array of {\"role\": \"system|user|assistant\", \"content\": \"...\"}");
            }
            for (int i = 0; i < msgs.size(); i++) {
                JsonNode m = msgs.get(i);
                String where = "messages[" + i + "]";
                if (!m.isObject()) throw new JlensException(where + " is " + kind(m) + "; expected {\"role\": ..., \"content\": ...}");
                JsonNode role = m.get("role"), content = m.get("content");
                if (role == null || !role.isTextual() || !ROLES.contains(role.asText())) {
                    throw new JlensException(where + ": \"role\" is " + (role == null ? "missing" : role.isTextual()
                            ? "\"" + role.asText() + "\"" : kind(role)) + "; expected one of " + String.join(", ", ROLES));
                }
                if (content == null || !content.isTextual() || content.asText().isBlank()) {
                    throw new JlensException(where + ": \"content\" is " + (content == null ? "missing" : content.isTextual()
                            ? "empty" : kind(content)) + "; expected non-blank text");
                }
                if (role.asText().equals("system") && i > 0) {
                    throw new JlensException(where + ": a system message may only come first");
                }
                out.add(new ChatTemplate.Message(role.asText(), content.asText().strip()));
            }
            if (out.stream().noneMatch(m -> m.role().equals("user"))) {
                throw new JlensException("the conversation has no user message; expected at least one");
            }
        } else {
            JsonNode prompt = node.get(textField);
            String promptField = textField;
            if (prompt == null || prompt.isNull()) {
                prompt = node.get("prompt");
                promptField = "prompt";
            }
            if (prompt == null || prompt.isNull()) {
                throw new JlensException("a pair with a \"response\" needs its prompt in \"" + textField + "\" or \"prompt\"");
            }
            for (var e : List.of(Map.entry(promptField, prompt), Map.entry("response", response))) {
                if (!e.getValue().isTextual() || e.getValue().asText().isBlank()) {
                    throw new JlensException("field \"" + e.getKey() + "\" is " + (e.getValue().isTextual() ? "empty"
                            : kind(e.getValue())) + "; expected non-blank text");
                }
            }
            out.add(new ChatTemplate.Message("user", prompt.asText().strip()));
            out.add(new ChatTemplate.Message("assistant", response.asText().strip()));
        }
        return List.copyOf(out);
    }

    private static String kind(JsonNode n) {
        String k = n.getNodeType().name().toLowerCase(Locale.ROOT);
        return ("aeiou".indexOf(k.charAt(0)) >= 0 ? "an " : "a ") + k;
    }
}
