package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * jlens' own harmless text for measuring what steering costs in language modelling: plain expository and
 * narrative prose on everyday subjects (cooking, gardening, weather, trades, travel, science for a general
 * reader), written for jlens and free of any copyrighted source. Paragraphs are separated by blank lines;
 * the whole file is about 21,000 tokens for the GPT-NeoX tokenizer (a test keeps it above 20,000).
 */
public final class HarmlessCorpus {

    static final String RESOURCE = "/dev/jlens/steering/harmless_corpus.txt";

    private HarmlessCorpus() {
    }

    public static String text() {
        try (InputStream in = HarmlessCorpus.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new JlensException("resource " + RESOURCE + " is missing from the jlens-analysis jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new JlensException("cannot read " + RESOURCE + ": " + e.getMessage(), e);
        }
    }

    public static List<String> paragraphs() {
        List<String> out = new ArrayList<>();
        for (String p : text().split("\\n\\s*\\n")) {
            String s = p.strip().replaceAll("\\s+", " ");
            if (!s.isEmpty()) out.add(s);
        }
        return out;
    }

    /**
     * Token windows for a cross-entropy measurement: each paragraph is encoded on its own (so it starts the way
     * the tokenizer starts a text, BOS included) and cut into windows of at most {@code window} tokens (and the
     * model's context), until {@code maxTokens} tokens are collected (0: the whole corpus). Windows of fewer
     * than 2 tokens predict nothing and are dropped.
     */
    public static List<int[]> windows(HookedModel m, int window, int maxTokens) {
        if (window < 2) throw new JlensException("--ce-window " + window + ": expected at least 2 tokens");
        int ctx = m.info().maxPositions();
        int w = ctx > 0 ? Math.min(window, ctx) : window;
        List<int[]> out = new ArrayList<>();
        int total = 0;
        for (String p : paragraphs()) {
            int[] ids = m.tokenizer().encode(p);
            for (int start = 0; start < ids.length; start += w) {
                int end = Math.min(ids.length, start + w);
                if (maxTokens > 0) end = Math.min(end, start + (maxTokens - total));
                if (end - start >= 2) {
                    out.add(Arrays.copyOfRange(ids, start, end));
                    total += end - start;
                }
                if (maxTokens > 0 && total >= maxTokens) return out;
            }
        }
        return out;
    }
}
