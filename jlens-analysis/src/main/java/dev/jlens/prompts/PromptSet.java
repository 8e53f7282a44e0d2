package dev.jlens.prompts;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jlens.JlensException;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * An ordered, immutable list of prompts with a name and the SHA-256 of the bytes it was read from, so a
 * report can say exactly which data produced a number. Filtering keeps the source hash (the data still comes
 * from that file) and records the filter in the name.
 */
public final class PromptSet {

    private final String name;
    private final List<Prompt> prompts;
    private final String sha256;

    PromptSet(String name, List<Prompt> prompts, String sha256) {
        this.name = Objects.requireNonNull(name, "name");
        this.prompts = List.copyOf(prompts);
        this.sha256 = Objects.requireNonNull(sha256, "sha256");
    }

    /**
     * A set built in code (e.g. prompts given on the command line). Its hash is taken over a canonical JSONL
     * rendering of the prompts, the same shape as the built-in files, so equal content gives an equal hash.
     */
    public static PromptSet of(String name, List<Prompt> prompts) {
        ObjectMapper json = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        for (Prompt p : prompts) {
            ObjectNode o = json.createObjectNode();
            o.put("id", p.id()).put("text", p.text()).put("label", p.label())
                    .put("category", p.category()).put("split", p.split());
            // only a non-default style is written, so sets without styles keep the hash they always had
            if (!p.style().equals(Prompt.DEFAULT_STYLE)) o.put("style", p.style());
            if (p.isConversation()) {
                var msgs = o.putArray("messages");
                for (var m : p.messages()) msgs.addObject().put("role", m.role()).put("content", m.content());
            }
            sb.append(o).append('\n');
        }
        return new PromptSet(name, prompts, sha256(sb.toString().getBytes(StandardCharsets.UTF_8)));
    }

    public String name() {
        return name;
    }

    public List<Prompt> prompts() {
        return prompts;
    }

    /** Lower-case hex SHA-256 of the source bytes. */
    public String sha256() {
        return sha256;
    }

    /** The prompts of one split; {@code split} must be {@code train}, {@code val} or {@code test}. */
    public PromptSet filterSplit(String split) {
        if (!PromptSets.SPLITS.contains(split)) {
            throw new JlensException("split \"" + split + "\": expected one of " + String.join(", ", PromptSets.SPLITS));
        }
        return filter("split=" + split, p -> p.split().equals(split));
    }

    public PromptSet filterLabel(String label) {
        Objects.requireNonNull(label, "label");
        return filter("label=" + label, p -> p.label().equals(label));
    }

    public List<String> texts() {
        return prompts.stream().map(Prompt::text).toList();
    }

    public int size() {
        return prompts.size();
    }

    private PromptSet filter(String what, Predicate<Prompt> keep) {
        return new PromptSet(name + "[" + what + "]", prompts.stream().filter(keep).toList(), sha256);
    }

    static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK ships SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return name + " (" + prompts.size() + " prompts, sha256 " + sha256.substring(0, 12) + ")";
    }
}
