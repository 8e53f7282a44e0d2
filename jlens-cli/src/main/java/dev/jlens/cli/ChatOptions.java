package dev.jlens.cli;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.Pooling;
import dev.jlens.model.HookedModel;
import dev.jlens.tokenizer.ChatPrompt;
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

    /** Checks the combination of options before any model is loaded. */
    public void validate(Pooling pooling) {
        if (system != null && !chat) throw new JlensException("--system needs --chat (a system prompt is part of a chat template)");
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
                ChatPrompt p = m.encodeChat(texts.get(i), system, warnings);
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
                    m.chatTemplate().postInstruction(system).replace("\n", "\\n"));
        }
        return new Encoded(ids, post);
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
        return chat ? "chat\u0001" + (system == null ? "" : system) : "";
    }

    public Map<String, Object> metadata(HookedModel m, Encoded encoded) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (!chat) return out;
        out.put("chat_template", m.chatTemplate().origin());
        out.put("system", system);
        out.put("post_instruction_tokens", encoded.postInstruction());
        return out;
    }
}
