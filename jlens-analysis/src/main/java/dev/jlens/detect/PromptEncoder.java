package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import dev.jlens.prompts.Conversations;
import dev.jlens.prompts.Prompt;
import dev.jlens.tokenizer.ChatPrompt;
import dev.jlens.tokenizer.ChatTemplate;
import dev.jlens.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;

/**
 * Turns a prompt or a conversation into the token ids a model sees, and says which of them a {@link PoolScope}
 * selects: tokens {@code [from, to)}.
 *
 * <ul>
 *   <li>A single prompt without a chat template: the tokenizer's own encoding (special tokens included); only
 *       scope {@code all}.</li>
 *   <li>A single prompt with a chat template: the user message of the template (after an optional system
 *       prompt), as {@link HookedModel#encodeChat} renders it.</li>
 *   <li>A conversation with a chat template: every message through the template ({@link ChatTemplate#renderChat}),
 *       the generation prompt added when it ends with the user; a token belongs to a message when it starts inside
 *       that message's content.</li>
 *   <li>A (user, assistant) pair without a chat template: the text {@code prompt + "\n\n" + response} with the
 *       tokenizer's special tokens around it; the response's tokens are those that start at or after the response's
 *       first character, the user's those that start before the blank line.</li>
 * </ul>
 *
 * <p><b>Post-instruction fallback.</b> A template that writes nothing between the user's message and what
 * follows (none seen in published templates, but a bare "{{ content }}" template does it) leaves the post-instruction
 * scope empty; it then falls back to the last token of the user message, the position a last-token detector reads
 * with such a template, and {@link Encoded#fallback()} says so.
 *
 * <p>A conversation longer than the model's context is an error (there is no good place to cut one); a single
 * prompt is truncated as {@link HookedModel#encode} and {@link HookedModel#encodeChat} do.
 */
public final class PromptEncoder {

    /**
     * @param ids       the token ids
     * @param from      first token of the scope
     * @param to        one past its last token
     * @param fallback  the post-instruction scope was empty and fell back to the last user token
     * @param truncated the text was cut to the model's context
     */
    public record Encoded(int[] ids, int from, int to, boolean fallback, boolean truncated) {
        public Encoded {
            if (from < 0 || to > ids.length || from >= to) {
                throw new IllegalArgumentException("token span [" + from + ", " + to + ") of " + ids.length + " tokens");
            }
        }

        /** The scope's part of per-token values (one per id). */
        public double[] slice(double[] perToken) {
            if (perToken.length != ids.length) throw new IllegalArgumentException(perToken.length + " values for " + ids.length + " tokens");
            return from == 0 && to == ids.length ? perToken : Arrays.copyOfRange(perToken, from, to);
        }

        public boolean whole() {
            return from == 0 && to == ids.length;
        }
    }

    private final HookedModel model;
    private final boolean chat;
    private final String system;
    private final ChatTemplate.Options options;

    /**
     * @param chat    render through the model's chat template
     * @param system  with chat: a system prompt for prompts and conversations that have none (null: none)
     * @param options with chat: template variables and system folding
     */
    public PromptEncoder(HookedModel model, boolean chat, String system, ChatTemplate.Options options) {
        this.model = model;
        this.chat = chat;
        this.system = system;
        this.options = options == null ? ChatTemplate.Options.NONE : options;
    }

    /** A plain encoder (no chat template). */
    public static PromptEncoder plain(HookedModel model) {
        return new PromptEncoder(model, false, null, null);
    }

    public boolean chat() {
        return chat;
    }

    /** Encodes a prompt of a prompt set: its conversation when it has one, else its text. */
    public Encoded encode(Prompt p, PoolScope scope, Consumer<String> warnings) {
        try {
            return encode(p.text(), p.messages(), scope, warnings);
        } catch (JlensException e) {
            throw new JlensException("prompt " + p.id() + ": " + e.getMessage(), e);
        }
    }

    /**
     * @param text     a single prompt (ignored when {@code messages} is not empty)
     * @param messages a conversation, or empty
     */
    public Encoded encode(String text, List<ChatTemplate.Message> messages, PoolScope scope, Consumer<String> warnings) {
        if (messages.isEmpty()) {
            if (text == null || text.isBlank()) throw new JlensException("empty text: there is nothing to score");
            if (scope == PoolScope.RESPONSE) {
                throw new JlensException("--pool-scope response needs a conversation that ends with the assistant's answer "
                        + "(\"messages\", or \"prompt\" and \"response\"); a single prompt has no response");
            }
            if (!chat) {
                if (scope != PoolScope.ALL) {
                    throw new JlensException("--pool-scope " + scope.cliName() + " needs a chat template (--chat) or a conversation: "
                            + "a plain prompt has no turns");
                }
                boolean[] cut = {false};
                int[] ids = model.encode(text, w -> {
                    cut[0] = true;
                    if (warnings != null) warnings.accept(w);
                });
                return new Encoded(ids, 0, ids.length, false, cut[0]);
            }
            if (scope == PoolScope.ALL || scope == PoolScope.POST_INSTRUCTION) {
                boolean[] cut = {false};
                ChatPrompt p = encodeChat(text, w -> {
                    cut[0] = true;
                    if (warnings != null) warnings.accept(w);
                });
                int n = p.ids().length;
                if (scope == PoolScope.ALL) return new Encoded(p.ids(), 0, n, false, cut[0]);
                int post = p.postInstruction();
                return post > 0 ? new Encoded(p.ids(), n - post, n, false, cut[0]) : new Encoded(p.ids(), n - 1, n, true, cut[0]);
            }
            return encodeConversation(List.of(new ChatTemplate.Message("user", text.strip())), scope);
        }
        if (chat) return encodeConversation(messages, scope);
        if (!Prompt.isPair(messages)) throw new JlensException(Conversations.needsTemplate(messages.size()));
        return encodePlainPair(messages.get(0).content(), messages.get(1).content(), scope);
    }

    private ChatPrompt encodeChat(String text, Consumer<String> warnings) {
        try {
            return model.encodeChat(text, system, options, warnings);
        } catch (JlensException e) {
            throw withFoldHint(e);
        }
    }

    private JlensException withFoldHint(JlensException e) {
        if (system == null || options.foldSystem() || !e.getMessage().contains("refused")) return e;
        return new JlensException(e.getMessage() + " (the template takes no system message; --fold-system puts the "
                + "system text at the start of the user's message instead)", e);
    }

    private Encoded encodeConversation(List<ChatTemplate.Message> given, PoolScope scope) {
        List<ChatTemplate.Message> messages = withSystem(given);
        ChatTemplate.RenderedChat r;
        try {
            r = model.chatTemplate().renderChat(messages, options.variables());
        } catch (JlensException e) {
            throw withFoldHint(e);
        }
        TextTokenizer.Verbatim v = model.tokenizer().encodeVerbatim(r.text());
        int[] ids = v.ids();
        if (ids.length == 0) throw new JlensException("the conversation encodes to no tokens");
        checkContext(ids.length);
        int n = ids.length;
        int userFrom = firstAtOrAfter(v.starts(), r.userStart()), userTo = firstAtOrAfter(v.starts(), r.userEnd());
        return switch (scope) {
            case ALL -> new Encoded(ids, 0, n, false, false);
            case LAST_USER -> span(ids, userFrom, userTo, "the last user message");
            case RESPONSE -> {
                if (!r.endsWithAssistant() || !given.getLast().role().equals("assistant")) {
                    throw new JlensException("--pool-scope response needs a conversation that ends with the assistant's "
                            + "message; this one ends with the " + given.getLast().role() + "'s");
                }
                yield span(ids, firstAtOrAfter(v.starts(), r.assistantStart()), firstAtOrAfter(v.starts(), r.assistantEnd()),
                        "the assistant's message");
            }
            case POST_INSTRUCTION -> {
                int to = r.endsWithAssistant() ? firstAtOrAfter(v.starts(), r.assistantStart()) : n;
                if (to > userTo) yield new Encoded(ids, userTo, to, false, false);
                if (userTo < 1) throw new JlensException("the last user message has no tokens");
                yield new Encoded(ids, userTo - 1, userTo, true, false);
            }
        };
    }

    private List<ChatTemplate.Message> withSystem(List<ChatTemplate.Message> messages) {
        boolean hasSystem = messages.getFirst().role().equals("system");
        String sys = hasSystem ? messages.getFirst().content() : system;
        List<ChatTemplate.Message> rest = hasSystem ? messages.subList(1, messages.size()) : messages;
        List<ChatTemplate.Message> out = new ArrayList<>();
        if (sys == null) return messages;
        if (options.foldSystem()) {
            // As ChatTemplate folds a single prompt's system text: at the start of the first user message.
            boolean folded = false;
            for (ChatTemplate.Message m : rest) {
                if (!folded && m.role().equals("user")) {
                    out.add(new ChatTemplate.Message("user", sys + "\n\n" + m.content()));
                    folded = true;
                } else {
                    out.add(m);
                }
            }
            return out;
        }
        out.add(new ChatTemplate.Message("system", sys));
        out.addAll(rest);
        return out;
    }

    private Encoded encodePlainPair(String prompt, String response, PoolScope scope) {
        if (scope == PoolScope.POST_INSTRUCTION) {
            throw new JlensException("--pool-scope post-instruction needs a chat template (--chat): a plain prompt/response "
                    + "pair has no tokens between the two");
        }
        TextTokenizer tok = model.tokenizer();
        String text = prompt + "\n\n" + response;
        TextTokenizer.Verbatim v = tok.encodeVerbatim(text);
        // The tokenizer's own special tokens around the text (BERT: [CLS] ... [SEP]), as encode(text) adds them:
        // those of "" split into the ones before and after, by comparing with the encoding of "a".
        int[] empty = tok.encode(""), one = tok.encode("a");
        int prefix = 0;
        while (prefix < empty.length && prefix < one.length && empty[prefix] == one[prefix]) prefix++;
        int suffix = empty.length - prefix;
        int n = prefix + v.ids().length + suffix;
        checkContext(n);
        int[] ids = new int[n];
        System.arraycopy(empty, 0, ids, 0, prefix);
        System.arraycopy(v.ids(), 0, ids, prefix, v.ids().length);
        System.arraycopy(empty, prefix, ids, prefix + v.ids().length, suffix);
        int responseFrom = prefix + firstAtOrAfter(v.starts(), prompt.length() + 2);
        int userTo = prefix + firstAtOrAfter(v.starts(), prompt.length());
        return switch (scope) {
            case ALL -> new Encoded(ids, 0, n, false, false);
            case LAST_USER -> span(ids, prefix, userTo, "the prompt");
            case RESPONSE -> span(ids, responseFrom, prefix + v.ids().length, "the response");
            case POST_INSTRUCTION -> throw new IllegalStateException("refused above");
        };
    }

    private void checkContext(int tokens) {
        int max = model.info().maxPositions();
        if (max > 0 && tokens > max) {
            throw new JlensException("the conversation is " + tokens + " tokens, longer than the model's context of " + max
                    + "; shorten it (a conversation is not truncated)");
        }
    }

    private static Encoded span(int[] ids, int from, int to, String what) {
        if (to <= from) throw new JlensException(what + " has no tokens of its own in the rendered text");
        return new Encoded(ids, from, to, false, false);
    }

    /** Index of the first token that starts at or after {@code offset} (the token count if none). */
    private static int firstAtOrAfter(int[] starts, int offset) {
        int i = 0;
        while (i < starts.length && starts[i] < offset) i++;
        return i;
    }
}
