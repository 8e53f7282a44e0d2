package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.tokenizer.ChatPrompt;
import dev.jlens.tokenizer.ChatTemplate;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.IntFunction;
import java.util.function.UnaryOperator;

/** --chat and --system, shared by the commands that feed prompts to a model. */
public final class ChatOptions {

    @Option(names = "--chat",
            description = {"Wrap every prompt as the user message of the model's chat template (chat_template.jinja",
                    "or tokenizer_config.json), with the assistant's turn opened, as apply_chat_template does.",
                    "Needed for chat models: refusal lives there. Enables --pool post-instruction."})
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT",
            description = "With --chat: a system prompt before every user message (default: none, or the template's own).")
    String system;

    @Option(names = "--chat-var", paramLabel = "NAME=VALUE",
            description = {"With --chat: a template variable, as a keyword argument of apply_chat_template (repeatable).",
                    "true/false, numbers and JSON are typed; anything else is a string.",
                    "Example: Qwen3 without its thinking block: --chat --chat-var enable_thinking=false"})
    Map<String, String> chatVars = new LinkedHashMap<>();

    @Option(names = "--fold-system",
            description = {"With --chat --system: put the system text at the start of the user's message (then a blank",
                    "line) instead of a system message, for templates that refuse a system role (Gemma 2: without",
                    "this flag it is an error, as in Hugging Face). Gemma 3's own template folds it the same way."})
    boolean foldSystem;

    /** Prompts as token ids, and with --chat how many of each prompt's last tokens follow the user's message. */
    public record Encoded(List<int[]> ids, int[] postInstruction) {
    }

    public boolean enabled() {
        return chat;
    }

    /** The --system text, or null. */
    public String system() {
        return system;
    }

    /** The template variables and system folding of --chat-var and --fold-system. */
    public ChatTemplate.Options templateOptions() {
        Map<String, Object> vars = new LinkedHashMap<>();
        chatVars.forEach((k, v) -> vars.put(k, typed(k, v)));
        return new ChatTemplate.Options(vars, foldSystem);
    }

    private static Object typed(String name, String v) {
        if (v.equals("true") || v.equals("false")) return Boolean.parseBoolean(v);
        if (v.matches("-?\\d+")) return Long.parseLong(v);
        if (v.matches("-?\\d*\\.\\d+([eE][-+]?\\d+)?")) return Double.parseDouble(v);
        if (v.startsWith("{") || v.startsWith("[") || v.startsWith("\"") || v.equals("null")) {
            try {
                return new ObjectMapper().readValue(v, Object.class);
            } catch (JsonProcessingException e) {
                throw new JlensException("--chat-var " + name + ": value " + v + " looks like JSON but does not parse: "
                        + e.getOriginalMessage());
            }
        }
        return v;
    }

    /** Checks the options of a command that reads whole prompts, without pooling (lens, attribute, patch). */
    public void validate() {
        validate(Pooling.LAST);
    }

    /** One prompt's token ids, through the chat template with --chat (its origin noted on stderr). */
    public int[] encodeOne(HookedModel m, String text) {
        return encode(m, List.of(text), w -> System.err.println("warning: " + w)).ids().getFirst();
    }

    /** Checks the combination of options before any model is loaded. */
    public void validate(Pooling pooling) {
        if (system != null && !chat) throw new JlensException("--system needs --chat (a system prompt is part of a chat template)");
        if (!chatVars.isEmpty() && !chat) throw new JlensException("--chat-var needs --chat (it is a chat template variable)");
        if (foldSystem && system == null) throw new JlensException("--fold-system needs --chat and --system (there is no system text to fold)");
        for (String k : chatVars.keySet()) {
            if (List.of("messages", "add_generation_prompt").contains(k) || !k.matches("[A-Za-z_][A-Za-z0-9_]*")) {
                throw new JlensException("--chat-var " + k + ": expected NAME=VALUE with NAME a template variable other "
                        + "than messages and add_generation_prompt");
            }
        }
        templateOptions();
        if (pooling.needsPostInstruction() && !chat) {
            throw new JlensException("--pool post-instruction needs --chat: only a chat template says which tokens "
                    + "come after the user's message");
        }
    }

    /** Encodes the prompts, through the chat template with --chat; warnings are truncation notices. */
    public Encoded encode(HookedModel m, List<String> texts, Consumer<String> warnings) {
        List<int[]> ids = new ArrayList<>(texts.size());
        int[] post = chat ? new int[texts.size()] : null;
        for (int i = 0; i < texts.size(); i++) {
            if (chat) {
                ChatPrompt p = encodeChat(m, texts.get(i), warnings);
                ids.add(p.ids());
                post[i] = p.postInstruction();
            } else {
                ids.add(m.encode(texts.get(i), warnings));
            }
        }
        if (chat) {
            int[] distinct = Arrays.stream(post).distinct().sorted().toArray();
            System.err.printf("chat template: %s; post-instruction %s: \"%s\"%n", m.chatTemplate().origin(),
                    distinct.length == 1 ? distinct[0] + " tokens" : "tokens " + Arrays.toString(distinct),
                    m.chatTemplate().postInstruction(system, templateOptions()).replace("\n", "\\n"));
            long none = Arrays.stream(post).filter(n -> n == 0).count();
            if (none > 0) System.err.println(fallbackNote(none));
        }
        return new Encoded(ids, post);
    }

    /** The stderr notice of the post-instruction fallback (docs/DETECTION.md). */
    static String fallbackNote(long prompts) {
        return "post-instruction: the chat template writes nothing after the user's message (" + prompts + " prompt"
                + (prompts == 1 ? "" : "s") + "); post-instruction pooling falls back to the last token of the user message";
    }

    private ChatPrompt encodeChat(HookedModel m, String text, Consumer<String> warnings) {
        try {
            return m.encodeChat(text, system, templateOptions(), warnings);
        } catch (JlensException e) {
            if (system == null || foldSystem || !e.getMessage().contains("refused")) throw e;
            throw new JlensException(e.getMessage() + " (the template takes no system message; --fold-system puts the "
                    + "--system text at the start of the user's message instead)", e);
        }
    }

    /** A cache factory for batches starting at a given prompt (post-instruction counts sliced to match). */
    public static IntFunction<ActivationCache> caches(Pooling pooling, UnaryOperator<dev.jlens.tensor.FloatTensor> view,
                                                      Encoded encoded) {
        int[] post = encoded.postInstruction();
        if (post == null) return from -> new ActivationCache(pooling, view);
        return from -> new ActivationCache(pooling, view, Arrays.copyOfRange(post, from, post.length));
    }

    /** What goes into run fingerprints and metadata: nothing without --chat. */
    public String fingerprint() {
        if (!chat) return "";
        String base = "chat\u0001" + (system == null ? "" : system);
        // Unchanged for runs without the newer options, so their fingerprints (and resumable runs) stay valid.
        if (chatVars.isEmpty() && !foldSystem) return base;
        return base + "\u0001" + new java.util.TreeMap<>(chatVars) + "\u0001" + foldSystem;
    }

    public Map<String, Object> metadata(HookedModel m, Encoded encoded) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (!chat) return out;
        out.put("chat_template", m.chatTemplate().origin());
        out.put("system", system);
        if (!chatVars.isEmpty()) out.put("chat_vars", templateOptions().variables());
        if (foldSystem) out.put("fold_system", true);
        out.put("post_instruction_tokens", encoded.postInstruction());
        if (Arrays.stream(encoded.postInstruction()).anyMatch(n -> n == 0)) {
            out.put("post_instruction_fallback", "last token of the user message (the template writes nothing after it)");
        }
        return out;
    }
}
