package dev.jlens.detect;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
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
 *   <li>A single prompt without a chat template: the tokenizer's own encoding (special tokens included). It is the
 *       user's message, so scope {@code last-user} is every token but the tokenizer's special tokens (BERT's [CLS]
 *       and [SEP]).</li>
 *   <li>A single prompt with a chat template: the user message of the template (after an optional system
 *       prompt), as {@link HookedModel#encodeChat} renders it.</li>
 *   <li>A conversation with a chat template: every message through the template ({@link ChatTemplate#renderChat}),
 *       the generation prompt added when it ends with the user; a token belongs to a message when it starts inside
 *       that message's content.</li>
 *   <li>A (user, assistant) pair without a chat template: the text {@code prompt + "\n\n" + response} with the
 *       tokenizer's special tokens around it; the response's tokens are those that start at or after the response's
 *       first character, the user's those that start before the blank line.</li>
 *   <li>Any other conversation without a chat template: its plain rendering ({@link Prompt#plainText}, "role: content"
 *       turns joined by blank lines) with the tokenizer's special tokens around it. A message's tokens are those that
 *       cover at least one character of its content: the tokens that start inside it, and the one that carries its
 *       first character when that token starts before it (a byte-level BPE writes " And" as one token, the space
 *       after "user:" included). Scope {@code post-instruction} is refused: see {@link #POST_INSTRUCTION_PLAIN}.</li>
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
     * Why a plain rendering has no post-instruction scope. The scope means the tokens a chat template writes after
     * the user's message (end of turn, assistant header), which an instruction-tuned model was trained to read as
     * "the instruction is over". A plain rendering has no such tokens: after a final user turn there is nothing, and
     * "\n\nassistant: " is our own text, not the model's format. The chat-template fallback (the last user token)
     * exists so that a chat detector fitted with post-instruction pooling still scores under a bare template; no
     * plain detector can have been fitted with it (the probe refuses it without --chat), so a fallback here would
     * only give the scope a second meaning. The same position is asked for plainly with
     * {@code --pool last --pool-scope last-user}.
     */
    public static final String POST_INSTRUCTION_PLAIN = "--pool-scope post-instruction needs a chat template (--chat): "
            + "without one there are no tokens that end the user's turn (for the last token of the user's message use "
            + "--pool last --pool-scope last-user)";

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
                if (scope == PoolScope.POST_INSTRUCTION) throw new JlensException(POST_INSTRUCTION_PLAIN);
                boolean[] cut = {false};
                int[] ids = model.encode(text, w -> {
                    cut[0] = true;
                    if (warnings != null) warnings.accept(w);
                });
                if (scope == PoolScope.ALL) return new Encoded(ids, 0, ids.length, false, cut[0]);
                // LAST_USER: the prompt is the user's message; only the tokenizer's own special tokens are not (a cut
                // prompt keeps its trailing ones, as HookedModel.encode keeps them).
                Specials sp = specials();
                return withTruncation(span(ids, sp.prefix(), ids.length - sp.suffix(), "the prompt"), cut[0]);
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
        if (Prompt.isPair(messages)) return encodePlainPair(messages.get(0).content(), messages.get(1).content(), scope);
        return encodePlainConversation(messages, scope);
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
        String text = prompt + "\n\n" + response;
        TextTokenizer.Verbatim v = model.tokenizer().encodeVerbatim(text);
        int prefix = specials().prefix();
        int[] ids = withSpecials(v.ids());
        int n = ids.length;
        int responseFrom = prefix + firstAtOrAfter(v.starts(), prompt.length() + 2);
        int userTo = prefix + firstAtOrAfter(v.starts(), prompt.length());
        return switch (scope) {
            case ALL -> new Encoded(ids, 0, n, false, false);
            case LAST_USER -> span(ids, prefix, userTo, "the prompt");
            case RESPONSE -> span(ids, responseFrom, prefix + v.ids().length, "the response");
            case POST_INSTRUCTION -> throw new IllegalStateException("refused above");
        };
    }

    /** A conversation other than a pair, without a chat template: its plain rendering ("role: content" turns). */
    private Encoded encodePlainConversation(List<ChatTemplate.Message> messages, PoolScope scope) {
        if (scope == PoolScope.POST_INSTRUCTION) throw new JlensException(POST_INSTRUCTION_PLAIN);
        Prompt.PlainRendering r = Prompt.plainRendering(messages);
        TextTokenizer.Verbatim v = model.tokenizer().encodeVerbatim(r.text());
        int prefix = specials().prefix();
        int[] ids = withSpecials(v.ids());
        return switch (scope) {
            case ALL -> new Encoded(ids, 0, ids.length, false, false);
            case LAST_USER -> {
                int i = lastIndexOf(messages, "user");
                yield span(ids, prefix + firstCovering(v.starts(), r.contentStart()[i]),
                        prefix + firstAtOrAfter(v.starts(), r.contentEnd()[i]), "the last user message");
            }
            case RESPONSE -> {
                if (!messages.getLast().role().equals("assistant")) {
                    throw new JlensException("--pool-scope response needs a conversation that ends with the assistant's "
                            + "message; this one ends with the " + messages.getLast().role() + "'s");
                }
                int i = messages.size() - 1;
                yield span(ids, prefix + firstCovering(v.starts(), r.contentStart()[i]),
                        prefix + firstAtOrAfter(v.starts(), r.contentEnd()[i]), "the assistant's message");
            }
            case POST_INSTRUCTION -> throw new IllegalStateException("refused above");
        };
    }

    private static int lastIndexOf(List<ChatTemplate.Message> messages, String role) {
        for (int i = messages.size() - 1; i >= 0; i--) if (messages.get(i).role().equals(role)) return i;
        throw new JlensException("the conversation has no " + role + " message");
    }

    /**
     * The tokenizer's own special tokens around a text (BERT: [CLS] ... [SEP]), as {@code encode(text)} adds them:
     * those of "" split into the ones before and after, by comparing with the encoding of "a".
     */
    private record Specials(int[] empty, int prefix) {
        int suffix() {
            return empty.length - prefix;
        }
    }

    private Specials specials() {
        TextTokenizer tok = model.tokenizer();
        int[] empty = tok.encode(""), one = tok.encode("a");
        int prefix = 0;
        while (prefix < empty.length && prefix < one.length && empty[prefix] == one[prefix]) prefix++;
        return new Specials(empty, prefix);
    }

    /** A rendered text's verbatim ids with the tokenizer's special tokens around them, as encode(text) gives them. */
    private int[] withSpecials(int[] verbatim) {
        Specials sp = specials();
        int n = sp.prefix() + verbatim.length + sp.suffix();
        checkContext(n);
        int[] ids = new int[n];
        System.arraycopy(sp.empty(), 0, ids, 0, sp.prefix());
        System.arraycopy(verbatim, 0, ids, sp.prefix(), verbatim.length);
        System.arraycopy(sp.empty(), sp.prefix(), ids, sp.prefix() + verbatim.length, sp.suffix());
        return ids;
    }

    private static Encoded withTruncation(Encoded e, boolean truncated) {
        return new Encoded(e.ids(), e.from(), e.to(), e.fallback(), truncated);
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

    /**
     * Index of the first token that covers a character at or after {@code offset}: the token starting there, or,
     * when none does, the one before, which then carries that character (tokens cover every character of the text
     * that is not whitespace, and the content of a message starts with one).
     */
    private static int firstCovering(int[] starts, int offset) {
        int i = firstAtOrAfter(starts, offset);
        return i > 0 && (i == starts.length || starts[i] > offset) ? i - 1 : i;
    }

    /** Index of the first token that starts at or after {@code offset} (the token count if none). */
    private static int firstAtOrAfter(int[] starts, int offset) {
        int i = 0;
        while (i < starts.length && starts[i] < offset) i++;
        return i;
    }
}
