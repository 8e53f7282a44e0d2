package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.hooks.ActivationCache;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.hooks.Pooling;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.tokenizer.ChatPrompt;
import dev.jlens.tokenizer.ChatTemplate;
import dev.jlens.tokenizer.TextTokenizer;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A loaded model with its tokenizer: the one obvious way to run prompts with hooks and cache activations by
 * name, as TransformerLens' HookedTransformer does.
 */
public final class HookedModel implements AutoCloseable {

    private final ModelLocation location;
    private final TransformerModel model;
    private final TextTokenizer tokenizer;

    private final int specialSuffix;
    /** Read from the model folder on first use: most runs never need it, and its engine takes a second to start. */
    private ChatTemplate chatTemplate;

    public HookedModel(ModelLocation location, TransformerModel model, TextTokenizer tokenizer) {
        this.location = location;
        this.model = model;
        this.tokenizer = tokenizer;
        // jlens bench runs synthetic checkpoints that ship no tokenizer
        this.specialSuffix = tokenizer == null ? 0 : specialSuffixLength(tokenizer);
    }

    /**
     * How many special tokens the tokenizer appends after the text (BERT's [SEP]: 1; GPT-NeoX, Llama: 0),
     * found by comparing the encodings of "" and "a": they share the prefix specials, and what is left of
     * "" after that prefix is the suffix.
     */
    private static int specialSuffixLength(TextTokenizer tokenizer) {
        int[] empty = tokenizer.encode("");
        int[] one = tokenizer.encode("a");
        int prefix = 0;
        while (prefix < empty.length && prefix < one.length && empty[prefix] == one[prefix]) prefix++;
        return empty.length - prefix;
    }

    public ModelLocation location() {
        return location;
    }

    public TransformerModel model() {
        return model;
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public ModelInfo info() {
        return model.info();
    }

    public List<HookPoint> hookPoints() {
        return model.hookPoints();
    }

    /**
     * Token ids of a prompt. Prompts longer than the model's context are truncated with a warning as Hugging
     * Face's {@code truncation=True} does: the tail of the text is cut, and special tokens the tokenizer
     * appends (BERT's [SEP]) are kept. An empty encoding is an error.
     */
    public int[] encode(String prompt, Consumer<String> warnings) {
        int[] ids = tokenizer.encode(prompt);
        if (ids.length == 0) {
            throw new JlensException("prompt \"" + prompt + "\" encodes to no tokens; remove empty prompts");
        }
        int max = model.info().maxPositions();
        if (max > 0 && ids.length > max) {
            if (warnings != null) {
                warnings.accept("prompt of " + ids.length + " tokens is longer than the model's context of " + max
                        + "; truncated to " + max + " tokens (the end of the text is cut): \"" + abbreviate(prompt) + "\"");
            }
            int[] cut = java.util.Arrays.copyOf(ids, max);
            System.arraycopy(ids, ids.length - specialSuffix, cut, max - specialSuffix, specialSuffix);
            ids = cut;
        }
        return ids;
    }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }

    /**
     * The model's chat template ({@code chat_template.jinja} or {@code tokenizer_config.json}), loaded on first
     * use; a clear error when the model has none.
     */
    public synchronized ChatTemplate chatTemplate() {
        if (chatTemplate == null) {
            if (location.dir() == null) {
                throw new JlensException("--chat: the model " + location.id() + " has no chat template (it is not "
                        + "a chat model); use an instruction-tuned model folder or drop --chat");
            }
            chatTemplate = ChatTemplate.load(location.dir());
        }
        return chatTemplate;
    }

    /**
     * A user message (and an optional system prompt, null for none) as the model sees it in a chat: the chat
     * template rendered with the generation prompt, encoded without the tokenizer's own BOS (the template
     * writes it; Hugging Face's {@code apply_chat_template(..., tokenize=True)} does the same), special tokens
     * in the text recognised. A prompt longer than the context loses the end of the user's message, so that
     * the template's head and the post-instruction tokens survive.
     */
    public ChatPrompt encodeChat(String user, String system, Consumer<String> warnings) {
        return encodeChat(user, system, ChatTemplate.Options.NONE, warnings);
    }

    /** As {@link #encodeChat(String, String, Consumer)} with template variables and system folding. */
    public ChatPrompt encodeChat(String user, String system, ChatTemplate.Options options, Consumer<String> warnings) {
        ChatTemplate.Rendered r = chatTemplate().apply(user, system, options);
        TextTokenizer.Verbatim v = tokenizer.encodeVerbatim(r.text());
        int[] ids = v.ids();
        if (ids.length == 0) throw new JlensException("chat prompt \"" + abbreviate(user) + "\" encodes to no tokens");
        int post = 0;
        while (post < ids.length && v.starts()[ids.length - 1 - post] >= r.userEnd()) post++;
        int max = model.info().maxPositions();
        if (max > 0 && ids.length > max) {
            if (post >= max) {
                throw new JlensException("the chat template's " + post + " post-instruction tokens alone exceed the "
                        + "model's context of " + max);
            }
            if (warnings != null) {
                warnings.accept("chat prompt of " + ids.length + " tokens is longer than the model's context of " + max
                        + "; the end of the user message is cut to fit: \"" + abbreviate(user) + "\"");
            }
            int[] cut = java.util.Arrays.copyOf(ids, max);
            System.arraycopy(ids, ids.length - post, cut, max - post, post);
            ids = cut;
        }
        return new ChatPrompt(r.text(), ids, post);
    }

    /** As {@link #encodeChat(String, String, Consumer)}, without a system prompt and without warnings. */
    public ChatPrompt encodeChat(String user) {
        return encodeChat(user, null, null);
    }

    /** Logits (or an encoder's final hidden states) for a batch of prompts, packed [tokens, vocab]. */
    public FloatTensor forward(TokenBatch batch, Hooks hooks) {
        return model.forward(batch, ForwardOptions.full(), hooks);
    }

    /**
     * Runs every prompt and caches the hooks the request selects, as TransformerLens' {@code run_with_cache}.
     * Prompts are packed {@code batchSize} at a time without padding; only the blocks up to the deepest
     * selected hook are run, and logits are computed only when asked for (then stored per prompt under
     * "logits", [len, vocab]).
     * <pre>{@code
     * try (HookedModel m = ModelLoader.load("../shared/fixtures/gpt2_tiny", null)) {
     *     List<int[]> ids = List.of(m.encode("The cat sat", null), m.encode("Hello", null));
     *     ActivationCache c = m.runWithCache(ids, CacheRequest.of("blocks.*.hook_resid_post"));
     *     FloatTensor last = c.pooled("blocks.2.hook_resid_post");    // [2 prompts, d_model], mean over tokens
     * }
     * }</pre>
     */
    public ActivationCache runWithCache(List<int[]> prompts, CacheRequest request) {
        ActivationCache cache = request.into() != null ? request.into() : new ActivationCache(request.pooling());
        List<HookPoint> selected = request.hooks().select(model.hookPoints());
        Set<String> names = new HashSet<>();
        for (HookPoint p : selected) {
            // Attention scores and patterns are kept whole per prompt; pooling them over tokens means nothing.
            if (!p.kind().isAttentionMap() || cache.pooling() == Pooling.ALL) names.add(p.name());
        }
        if (names.isEmpty()) {
            throw new JlensException("--hooks \"" + request.hooks() + "\" selects only attention scores or patterns, which are "
                    + "cached with --pool all only; select residual-stream hooks such as blocks.*.hook_resid_post");
        }
        Hooks hooks = Hooks.none().with(names::contains, cache.hook());
        ForwardOptions opts = request.logits() ? ForwardOptions.full() : ForwardOptions.hooksOnly();
        List<FloatTensor> logitRows = new ArrayList<>();
        int batchSize = request.batchSize();
        for (int start = 0; start < prompts.size(); start += batchSize) {
            TokenBatch batch = TokenBatch.of(prompts.subList(start, Math.min(prompts.size(), start + batchSize)));
            FloatTensor out = model.forward(batch, opts, hooks);
            if (request.logits()) {
                for (int s = 0; s < batch.size(); s++) {
                    logitRows.add(out.rowSlice(batch.offsets()[s], batch.offsets()[s] + batch.lengths()[s]));
                }
            }
            request.progress().progress(Math.min(prompts.size(), start + batchSize), prompts.size());
        }
        if (request.logits()) cache.putPerPrompt("logits", logitRows);
        return cache;
    }

    @Override
    public void close() {
        synchronized (this) {
            if (chatTemplate != null) chatTemplate.close();
        }
        if (tokenizer instanceof AutoCloseable c) {
            try {
                c.close();
            } catch (Exception ignored) {
                // nothing useful to do with a failure to free native tokenizer memory
            }
        }
    }
}
