package dev.jlens.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;
import org.graalvm.polyglot.Context;
import org.graalvm.polyglot.Engine;
import org.graalvm.polyglot.PolyglotException;
import org.graalvm.polyglot.ResourceLimits;
import org.graalvm.polyglot.Source;
import org.graalvm.polyglot.Value;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A model's chat template: the Jinja program in {@code chat_template.jinja} or in {@code tokenizer_config.json}
 * that turns a list of messages into the text an instruction-tuned model was trained on, as Hugging Face's
 * {@code tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)} does.
 *
 * <p>Templates run in Hugging Face's own Jinja engine ({@code @huggingface/jinja}, the one transformers.js
 * uses, vendored unmodified under {@code dev/jlens/tokenizer/jinja/}) inside GraalJS: no Jinja engine for
 * Java is available from Maven Central to this build, and a hand-written subset would drift from the
 * templates real models ship (namespace(), tojson, loop variables, slicing, macros, strftime_now...). The
 * JavaScript context gets no host access (no files, no Java classes, no threads) and a statement budget, so
 * a template from a downloaded model can only compute a string. The engine starts on the first render
 * (about a second), not when a model loads.
 *
 * <p>Rendering is synchronized: one GraalJS context may be used by one thread at a time.
 */
public final class ChatTemplate implements AutoCloseable {

    /** One chat message, as in Hugging Face's {@code [{"role": ..., "content": ...}]}. */
    public record Message(String role, String content) {
    }

    /**
     * A rendered conversation whose last message is the user's instruction: {@code text.substring(userEnd)}
     * is what the template puts after the instruction (end-of-turn marker, assistant header), the
     * "post-instruction" text of Arditi et al.
     */
    public record Rendered(String text, int userEnd) {
        public String postInstruction() {
            return text.substring(userEnd);
        }
    }

    /**
     * A rendered conversation and where the content of two of its messages lies in the text (character offsets,
     * end exclusive): the last user message, and the last assistant message when one follows it (else -1). The
     * generation prompt is added when the conversation ends with a user message.
     */
    public record RenderedChat(String text, int userStart, int userEnd, int assistantStart, int assistantEnd) {
        public boolean endsWithAssistant() {
            return assistantStart >= 0;
        }
    }

    /**
     * How a conversation is put to the template beyond its messages.
     *
     * @param variables   extra template variables, as keyword arguments of apply_chat_template pass them
     *                    (Qwen3: {@code enable_thinking=false}); strings, booleans, numbers, or JSON values
     * @param foldSystem  put the system text at the start of the user's message (separated by a blank line)
     *                    instead of sending a system message: for templates that refuse a system role (Gemma 2
     *                    raises "System role not supported"), the way Gemma 3's own template folds it
     */
    public record Options(Map<String, Object> variables, boolean foldSystem) {
        public static final Options NONE = new Options(Map.of(), false);

        public Options {
            variables = Map.copyOf(variables);
        }

        public boolean isDefault() {
            return variables.isEmpty() && !foldSystem;
        }
    }

    private static final String ENGINE = "dev/jlens/tokenizer/jinja/huggingface-jinja.cjs";
    /** A user message that no template trims, cases or escapes, used to find where the instruction ends. */
    static final String SENTINEL = "jlensUserMessageSentinel";
    /**
     * JavaScript statements one render (parse included) may run: a system + user ChatML render takes about
     * 20 thousand, so this leaves room for templates 150 times larger, and stops a template that loops
     * without end within seconds.
     */
    private static final long STATEMENT_LIMIT = 3_000_000L;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final String origin;
    private final Map<String, String> specialTokens;
    private Context context;
    private Value template;
    private Value parse;
    private String postInstruction;

    /**
     * @param source        the Jinja text
     * @param origin        where it came from, for error messages (a file, "tokenizer_config.json: chat_template")
     * @param specialTokens template variables such as bos_token and eos_token (Hugging Face passes every
     *                      special token of the tokenizer by name)
     */
    public ChatTemplate(String source, String origin, Map<String, String> specialTokens) {
        if (source == null || source.isBlank()) throw new JlensException(origin + ": the chat template is empty");
        this.source = source;
        this.origin = origin;
        this.specialTokens = Map.copyOf(specialTokens);
    }

    /**
     * The chat template of a model folder, looked for where Hugging Face keeps it: {@code chat_template.jinja}
     * (transformers 4.43 and later save it there), {@code chat_template.json} (processors), then the field
     * {@code chat_template} of {@code tokenizer_config.json}, either a string or a list of named templates
     * (the one named "default" is used, as transformers does). Empty when the model has none (base models).
     */
    public static Optional<ChatTemplate> find(Path dir) {
        return find(dir, null);
    }

    /** As {@link #find(Path)}, choosing a named template from the list form ({@code null}: "default"). */
    public static Optional<ChatTemplate> find(Path dir, String name) {
        Path cfgFile = dir.resolve("tokenizer_config.json");
        JsonNode cfg = Files.isRegularFile(cfgFile) ? readJson(cfgFile) : JSON.createObjectNode();
        Map<String, String> specials = specialTokens(cfg);
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) {
            try {
                return Optional.of(new ChatTemplate(Files.readString(jinja), jinja.toString(), specials));
            } catch (IOException e) {
                throw new JlensException(jinja + ": cannot read: " + e.getMessage(), e);
            }
        }
        Path processor = dir.resolve("chat_template.json");
        if (Files.isRegularFile(processor)) {
            JsonNode t = readJson(processor).path("chat_template");
            if (!t.isTextual()) throw new JlensException(processor + ": expected a string field \"chat_template\"");
            return Optional.of(new ChatTemplate(t.asText(), processor + ": chat_template", specials));
        }
        JsonNode t = cfg.path("chat_template");
        if (t.isMissingNode() || t.isNull()) return Optional.empty();
        String origin = cfgFile + ": chat_template";
        if (t.isTextual()) return Optional.of(new ChatTemplate(t.asText(), origin, specials));
        if (t.isArray()) {
            Map<String, String> named = new LinkedHashMap<>();
            for (JsonNode e : t) {
                if (!e.path("name").isTextual() || !e.path("template").isTextual()) {
                    throw new JlensException(origin + ": each entry of the list must be {\"name\": ..., \"template\": ...}");
                }
                named.put(e.get("name").asText(), e.get("template").asText());
            }
            String want = name == null ? "default" : name;
            String chosen = named.get(want);
            if (chosen == null) {
                throw new JlensException(origin + ": no template named \"" + want + "\"; the model has " + named.keySet());
            }
            return Optional.of(new ChatTemplate(chosen, origin + "[" + want + "]", specials));
        }
        throw new JlensException(origin + ": expected a string or a list of {name, template}, found " + t.getNodeType());
    }

    /** The folder's chat template, or a clear error for a model that has none (what --chat needs). */
    public static ChatTemplate load(Path dir) {
        return find(dir).orElseThrow(() -> new JlensException("--chat: " + dir + " has no chat template (no "
                + "chat_template.jinja, and tokenizer_config.json has no \"chat_template\"). Base models have none; "
                + "use an instruction-tuned model (e.g. Qwen/Qwen2.5-0.5B-Instruct) or drop --chat."));
    }

    private static JsonNode readJson(Path f) {
        try {
            return JSON.readTree(f.toFile());
        } catch (IOException e) {
            throw new JlensException(f + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
    }

    /**
     * Hugging Face passes the tokenizer's special tokens to the template by name; in tokenizer_config.json a
     * token is a string or an AddedToken object with a "content" field.
     */
    static Map<String, String> specialTokens(JsonNode cfg) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String f : List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")) {
            JsonNode n = cfg.path(f);
            String v = n.isTextual() ? n.asText() : n.path("content").isTextual() ? n.path("content").asText() : null;
            if (v != null) out.put(f, v);
        }
        return out;
    }

    public String source() {
        return source;
    }

    public String origin() {
        return origin;
    }

    /** Renders the messages; {@code addGenerationPrompt} appends the header that starts the assistant's turn. */
    public synchronized String render(List<Message> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /** As {@link #render(List, boolean)} with extra template variables (which may not replace messages). */
    public synchronized String render(List<Message> messages, boolean addGenerationPrompt, Map<String, Object> variables) {
        ObjectNode vars = JSON.createObjectNode();
        variables.forEach((k, v) -> vars.set(k, JSON.valueToTree(v)));
        ArrayNode msgs = vars.putArray("messages");
        for (Message m : messages) msgs.addObject().put("role", m.role()).put("content", m.content());
        vars.put("add_generation_prompt", addGenerationPrompt);
        // transformers passes tools=None and documents=None; templates test them with "is not none".
        vars.putNull("tools");
        vars.putNull("documents");
        specialTokens.forEach((k, v) -> {
            if (!variables.containsKey(k)) vars.put(k, v);
        });
        start();
        try {
            context.resetLimits();
            Value out = template.invokeMember("render", parse.execute(vars.toString()));
            return out.asString();
        } catch (PolyglotException e) {
            throw failure(e, "failed");
        }
    }

    /** The conversation [system?, user] with the generation prompt, and where the user's text ends in it. */
    public Rendered apply(String user, String system) {
        return apply(user, system, Options.NONE);
    }

    /** As {@link #apply(String, String)} with template variables and system folding. */
    public Rendered apply(String user, String system, Options options) {
        String text = render(conversation(user, system, options), true, options.variables());
        String post = postInstruction(system, options);
        if (text.endsWith(post)) return new Rendered(text, text.length() - post.length());
        // A template whose ending depends on the message itself: fall back to where the message appears.
        String needle = user.strip();
        int at = needle.isEmpty() ? -1 : text.lastIndexOf(needle);
        if (at < 0) {
            throw new JlensException(origin + ": cannot find the user message in the rendered chat, so the "
                    + "post-instruction tokens are unknown (rendered: \"" + abbreviate(text) + "\")");
        }
        return new Rendered(text, at + needle.length());
    }

    /**
     * Renders a whole conversation (roles system, user, assistant) and finds the content of its last user message
     * and of an assistant message after it. The generation prompt is added when the last message is the user's.
     * Each content is found by rendering the conversation again with that content replaced by a sentinel: the
     * text before and after the sentinel must frame the real rendering; a template that rewrites content (strips
     * it, drops a thinking block) falls back to the content's last occurrence.
     */
    public RenderedChat renderChat(List<Message> messages, Map<String, Object> variables) {
        if (messages.isEmpty()) throw new JlensException(origin + ": a conversation needs at least one message");
        int lastUser = -1;
        for (int i = 0; i < messages.size(); i++) if (messages.get(i).role().equals("user")) lastUser = i;
        if (lastUser < 0) throw new JlensException("a conversation needs a user message; this one has roles " + roles(messages));
        int lastAssistant = -1;
        for (int i = lastUser + 1; i < messages.size(); i++) if (messages.get(i).role().equals("assistant")) lastAssistant = i;
        boolean generation = messages.getLast().role().equals("user");
        String text = render(messages, generation, variables);
        int[] assistant = lastAssistant < 0 ? new int[] {-1, -1} : locate(messages, lastAssistant, text, generation, variables, text.length());
        int[] user = locate(messages, lastUser, text, generation, variables, assistant[0] < 0 ? text.length() : assistant[0]);
        return new RenderedChat(text, user[0], user[1], assistant[0], assistant[1]);
    }

    private int[] locate(List<Message> messages, int index, String text, boolean generation, Map<String, Object> variables,
                         int before) {
        List<Message> marked = new ArrayList<>(messages);
        Message m = messages.get(index);
        marked.set(index, new Message(m.role(), SENTINEL));
        String s = render(marked, generation, variables);
        int at = s.indexOf(SENTINEL);
        if (at >= 0) {
            String head = s.substring(0, at), tail = s.substring(at + SENTINEL.length());
            if (text.startsWith(head) && text.endsWith(tail) && head.length() + tail.length() <= text.length()) {
                return new int[] {head.length(), text.length() - tail.length()};
            }
        }
        String needle = m.content().strip();
        int found = needle.isEmpty() ? -1 : text.lastIndexOf(needle, before - needle.length());
        if (found < 0) {
            throw new JlensException(origin + ": cannot find the " + m.role() + " message " + (index + 1) + " in the rendered "
                    + "chat, so its tokens are unknown (rendered: \"" + abbreviate(text) + "\")");
        }
        return new int[] {found, found + needle.length()};
    }

    private static String roles(List<Message> messages) {
        return messages.stream().map(Message::role).toList().toString();
    }

    /**
     * What the template writes after the user's message when asked for a generation prompt (Qwen2.5:
     * {@code <|im_end|>\n<|im_start|>assistant\n}), found by rendering a sentinel message.
     */
    public synchronized String postInstruction(String system) {
        return postInstruction(system, Options.NONE);
    }

    /** As {@link #postInstruction(String)} with template variables and system folding. */
    public synchronized String postInstruction(String system, Options options) {
        boolean plain = system == null && options.isDefault();
        if (plain && postInstruction != null) return postInstruction;
        String text = render(conversation(SENTINEL, system, options), true, options.variables());
        int at = text.lastIndexOf(SENTINEL);
        if (at < 0) {
            throw new JlensException(origin + ": the rendered chat does not contain the user message; "
                    + "is this a chat template? (rendered: \"" + abbreviate(text) + "\")");
        }
        String post = text.substring(at + SENTINEL.length());
        if (plain) postInstruction = post;
        return post;
    }

    private static List<Message> conversation(String user, String system, Options options) {
        List<Message> msgs = new ArrayList<>();
        if (system != null && options.foldSystem()) return List.of(new Message("user", system + "\n\n" + user));
        if (system != null) msgs.add(new Message("system", system));
        msgs.add(new Message("user", user));
        return msgs;
    }

    /**
     * One polyglot engine for every template, so the Jinja engine's JavaScript is parsed once per process
     * (the engine caches code by Source); contexts stay separate. Created on first use.
     */
    private static final class Engines {
        static final Engine SHARED = Engine.newBuilder("js")
                .out(OutputStream.nullOutputStream())
                .err(OutputStream.nullOutputStream())
                // Plain OpenJDK has no Graal compiler; the interpreter is fast enough for templates.
                .option("engine.WarnInterpreterOnly", "false")
                .build();
        private static final Source JINJA = load();

        static Source jinja() {
            return JINJA;
        }

        private static Source load() {
            try (InputStream in = ChatTemplate.class.getClassLoader().getResourceAsStream(ENGINE)) {
                if (in == null) throw new IllegalStateException("resource " + ENGINE + " is missing from the jlens-core jar");
                String code = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                // The CommonJS bundle expects module/exports; the wrapper returns what it exports.
                return Source.newBuilder("js", "(function(){var module={exports:{}};var exports=module.exports;\n"
                        + code + "\nreturn module.exports;})()", "huggingface-jinja.cjs").buildLiteral();
            } catch (IOException e) {
                throw new IllegalStateException("cannot read " + ENGINE, e);
            }
        }
    }

    private void start() {
        if (context != null) return;
        Context ctx = Context.newBuilder("js")
                .engine(Engines.SHARED)
                .allowAllAccess(false)
                .out(OutputStream.nullOutputStream())
                .err(OutputStream.nullOutputStream())
                .resourceLimits(ResourceLimits.newBuilder().statementLimit(STATEMENT_LIMIT, null).build())
                .build();
        try {
            Value exports = ctx.eval(Engines.jinja());
            parse = ctx.eval("js", "JSON.parse");
            try {
                template = exports.getMember("Template").newInstance(source);
            } catch (PolyglotException e) {
                throw failure(e, "does not parse");
            }
            context = ctx;
        } finally {
            if (context == null) ctx.close();
        }
    }

    private JlensException failure(PolyglotException e, String what) {
        if (e.isResourceExhausted()) {
            return new JlensException(origin + ": the chat template ran for more than " + STATEMENT_LIMIT
                    + " steps; it seems to loop forever");
        }
        if (!e.isGuestException()) throw e;
        String msg = e.getMessage() == null ? "" : e.getMessage();
        // raise_exception('...') in a template throws a plain Error carrying the template's own message.
        if (msg.startsWith("Error: ")) {
            return new JlensException(origin + ": the chat template refused the conversation: " + msg.substring(7), e);
        }
        return new JlensException(origin + ": the chat template " + what + ": " + msg, e);
    }

    private static String abbreviate(String s) {
        String one = s.replace("\n", "\\n");
        return one.length() <= 200 ? one : one.substring(0, 197) + "...";
    }

    @Override
    public synchronized void close() {
        if (context != null) {
            context.close();
            context = null;
            template = null;
            parse = null;
        }
    }
}
