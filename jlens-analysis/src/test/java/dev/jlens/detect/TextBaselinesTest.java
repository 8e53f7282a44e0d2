package dev.jlens.detect;

import dev.jlens.geometry.Estimate;
import dev.jlens.tokenizer.ChatTemplate;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The words-only baselines on synthetic prompts: when the label is one word, TF-IDF finds it (AUROC ≈ 1); when
 * the label is in the order of two words and not in which words occur, TF-IDF and length stay at chance.
 */
class TextBaselinesTest {

    static final String[] FILLER = ("river stone window paper garden quiet yellow table morning basket cloud "
            + "simple orange letter bridge candle forest music pocket silver summer winter doctor engine kitchen "
            + "ladder market planet rabbit tunnel").split(" ");

    static Prober.Options options() {
        return new Prober.Options(DetectorFitter.Options.defaults(), List.of(DetectorKind.LOGISTIC), 400, 7, 0.95);
    }

    /** One example of the given id, class and split. */
    interface ExampleMaker {
        ProbeData.Example make(String id, boolean positive, String group, String split);
    }

    /** {@code sizes} train, val and test examples, half of each positive (every other one). */
    static ProbeData synthetic(int[] sizes, ExampleMaker maker) {
        List<ProbeData.Example> ex = new ArrayList<>();
        String[] splits = {"train", "val", "test"};
        for (int s = 0; s < 3; s++) {
            for (int i = 0; i < sizes[s]; i++) {
                boolean pos = i % 2 == 0;
                ex.add(maker.make(splits[s] + "-" + i, pos, pos ? ProbeData.HARMFUL : ProbeData.HARMLESS, splits[s]));
            }
        }
        return ProbeData.ofExamples(ex, "synthetic");
    }

    /** 300 train, 150 val, 150 test, half of each positive; text from {@code make}. */
    static ProbeData synthetic(java.util.function.BiFunction<Random, Boolean, String> make) {
        Random rnd = new Random(11);
        return synthetic(new int[]{300, 150, 150},
                (id, pos, group, split) -> new ProbeData.Example(id, make.apply(rnd, pos), pos, group, split, "synthetic"));
    }

    static List<String> fillers(Random rnd, int n) {
        List<String> w = new ArrayList<>();
        for (int i = 0; i < n; i++) w.add(FILLER[rnd.nextInt(FILLER.length)]);
        return w;
    }

    @Test
    void aSingleLabelWordIsFoundByTfIdf() {
        ProbeData data = synthetic((rnd, pos) -> {
            List<String> w = fillers(rnd, 8 + rnd.nextInt(6));
            if (pos) w.add(rnd.nextInt(w.size() + 1), "zorblax");
            return String.join(" ", w);
        });
        TextBaselines.Result tfidf = TextBaselines.tfidf(data, options());
        Estimate auc = tfidf.test().overall().get(Evaluation.AUROC);
        assertTrue(auc.value() > 0.995, "TF-IDF AUROC " + auc);
        assertEquals(TextBaselines.TFIDF, tfidf.name());
        // a residual probe cannot do better than perfect: it does not beat the words
        assertFalse(TextBaselines.beats(new Estimate(1.0, 0.99, 1.0), auc));
        // the length baseline sees one word more in the positives, a weak cue at best
        Estimate len = TextBaselines.length(data, options()).test().overall().get(Evaluation.AUROC);
        assertTrue(len.value() < 0.8, "length AUROC " + len);
    }

    @Test
    void theBaselinesReadTheWordsOfTheDetectorsScope() {
        // Conversations whose label word is in the user's message only: the whole text and the last user message
        // give it away, the response (identical filler for both classes) does not.
        Random rnd = new Random(12);
        ProbeData data = synthetic(new int[]{200, 100, 100}, (id, pos, group, split) -> {
            List<String> user = fillers(rnd, 6);
            if (pos) user.add("zorblax");
            List<ChatTemplate.Message> messages = List.of(new ChatTemplate.Message("user", String.join(" ", user)),
                    new ChatTemplate.Message("assistant", String.join(" ", fillers(rnd, 6))));
            return new ProbeData.Example(id, dev.jlens.prompts.Prompt.plainText(messages), pos, group, split, "synthetic", messages);
        });
        ProbeData.Example first = data.examples().getFirst();
        assertEquals(first.messages().get(1).content(), data.texts(PoolScope.RESPONSE).getFirst());
        assertEquals(first.messages().get(0).content(), data.texts(PoolScope.LAST_USER).getFirst());
        assertEquals(data.texts(), data.texts(PoolScope.ALL));
        assertEquals(data.texts(), data.texts(PoolScope.POST_INSTRUCTION));
        for (PoolScope scope : PoolScope.values()) {
            Estimate auc = TextBaselines.all(data, data.texts(scope), options()).getFirst().test().overall().get(Evaluation.AUROC);
            if (scope == PoolScope.RESPONSE) assertTrue(Math.abs(auc.value() - 0.5) < 0.15, scope + ": TF-IDF AUROC " + auc);
            else assertTrue(auc.value() > 0.99, scope + ": TF-IDF AUROC " + auc);
        }
        // a plain prompt is one user message: every scope reads all of it
        assertEquals("just words", PoolScope.LAST_USER.words("just words", List.of()));
    }

    @Test
    void labelsInWordOrderAreInvisibleToTheWords() {
        // Both classes hold the same words: fillers drawn alike, plus "alpha" and "beta" at two random inner
        // positions, never adjacent and never first or last, so which words occur (and even which pairs are
        // neighbours) and the length carry no label.
        // The label is which of the two comes first.
        ProbeData data = synthetic((rnd, pos) -> {
            List<String> w = fillers(rnd, 10 + rnd.nextInt(5));
            int a, b;
            do {
                a = 1 + rnd.nextInt(w.size() - 1);
                b = 1 + rnd.nextInt(w.size() - 1);
            } while (Math.abs(a - b) < 2);
            int first = Math.min(a, b), second = Math.max(a, b);
            w.add(second, pos ? "beta" : "alpha");
            w.add(first, pos ? "alpha" : "beta");
            return String.join(" ", w);
        });
        for (TextBaselines.Result r : TextBaselines.all(data, options())) {
            Estimate auc = r.test().overall().get(Evaluation.AUROC);
            assertTrue(Math.abs(auc.value() - 0.5) < 0.12, r.name() + " AUROC " + auc);
            assertTrue(auc.lo() < 0.5 + 0.02 && auc.hi() > 0.5 - 0.02, r.name() + " interval " + auc + " should hold chance");
        }
        // and a reader that does see the order beats them
        Estimate perfect = new Estimate(1.0, 0.99, 1.0);
        assertTrue(TextBaselines.beats(perfect, TextBaselines.tfidf(data, options()).test().overall().get(Evaluation.AUROC)));
    }

    @Test
    void crossValidatedLikeAnalyze() {
        Random rnd = new Random(3);
        List<String> harmless = new ArrayList<>(), marked = new ArrayList<>(), orderA = new ArrayList<>(), orderB = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            harmless.add(String.join(" ", fillers(rnd, 9)));
            List<String> w = fillers(rnd, 9);
            w.add(rnd.nextInt(w.size() + 1), "zorblax");
            marked.add(String.join(" ", w));
            List<String> o = fillers(rnd, 10);
            o.add(7, i % 2 == 0 ? "beta" : "alpha");
            o.add(3, i % 2 == 0 ? "alpha" : "beta");
            (i % 2 == 0 ? orderB : orderA).add(String.join(" ", o));
        }
        Estimate word = TextBaselines.crossValidated(TextBaselines.TFIDF, harmless, marked, 5, 1.0, 200, 1);
        assertTrue(word.value() > 0.995 && word.lo() <= word.value(), "one label word, 5-fold CV: " + word);
        Estimate order = TextBaselines.crossValidated(TextBaselines.TFIDF, orderA, orderB, 5, 1.0, 200, 1);
        assertTrue(Math.abs(order.value() - 0.5) < 0.15, "label in word order, 5-fold CV: " + order);
    }

    @Test
    void wordsAreLowerCasedRunsOfLettersAndDigits() {
        assertEquals(List.of("how", "do", "i", "pick", "a", "lock", "2", "ça", "va"), TextBaselines.words("How do I pick a LOCK? #2 Ça-va"));
        assertEquals(List.of("a", "b", "c"), TextBaselines.terms("a b c"));
    }
}
