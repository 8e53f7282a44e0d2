package dev.jlens.steering;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The small pieces of steering: the corpus, refusal measures, alpha and layer lists, selection. */
class SteeringPartsTest {

    @Test
    void harmlessCorpusHasOver20kTokensOfProse() {
        try (HookedModel m = TestModels.load("gpt_neox_tiny")) {
            List<String> paragraphs = HarmlessCorpus.paragraphs();
            assertTrue(paragraphs.size() > 100, "paragraphs: " + paragraphs.size());
            int tokens = m.tokenizer().encode(HarmlessCorpus.text()).length;
            assertTrue(tokens >= 20_000, "GPT-NeoX tokens in the corpus: " + tokens);
            List<int[]> windows = HarmlessCorpus.windows(m, 64, 1000);
            int total = windows.stream().mapToInt(w -> w.length).sum();
            assertEquals(1000, total);
            for (int[] w : windows) assertTrue(w.length >= 2 && w.length <= 64);
            assertTrue(HarmlessCorpus.windows(m, 64, 0).stream().mapToInt(w -> w.length).sum() > 20_000);
            for (String p : paragraphs) assertFalse(Refusal.isRefusal(p), "the harmless corpus should not read as a refusal: " + p);
        }
    }

    @Test
    void refusalPhrasesAndTokens() {
        assertTrue(Refusal.isRefusal("I'm sorry, but I can't help with that."));
        assertTrue(Refusal.isRefusal("As an AI language model, I must decline."));
        assertTrue(Refusal.isRefusal("i cannot do that"));
        assertTrue(Refusal.isRefusal("I\u2019m unable to assist with this request."));
        assertFalse(Refusal.isRefusal("Sure! Here is a recipe for banana bread."));
        assertNull(Refusal.matchedPhrase("The cat sat on the mat."));
        assertEquals("I cannot", Refusal.matchedPhrase("Well, I cannot."));
        try (HookedModel m = TestModels.load("gpt_neox_tiny")) {
            int[] ids = Refusal.tokenIds(m.tokenizer(), List.of("I", "Sorry"));
            assertArrayEquals(new int[]{m.tokenizer().encode("I")[0], m.tokenizer().encode(" I")[0],
                    m.tokenizer().encode("Sorry")[0], m.tokenizer().encode(" Sorry")[0]}, ids);
        }
        try (HookedModel m = TestModels.load("stories260k")) {
            // BOS is dropped; "I" and " I" are the same SentencePiece token, kept once.
            int[] ids = Refusal.tokenIds(m.tokenizer(), List.of("I"));
            assertEquals(1, ids.length);
            assertTrue(ids[0] != m.tokenizer().bosId());
        }
        float[] logits = {0f, (float) Math.log(3), 0f, 0f};   // p = 1/6, 3/6, 1/6, 1/6
        assertEquals(Math.log((4.0 / 6) / (2.0 / 6)), Refusal.logOdds(logits, 0, 4, new int[]{1, 2}), 1e-6);
    }

    @Test
    void alphaAndLayerLists() {
        List<SteeringSweep.Alpha> a = SteeringSweep.parseAlphas(" 2, -1.5 ,0.5x, 1e1", Intervention.Mode.ADD);
        assertEquals(4, a.size());
        assertEquals(SteeringSweep.Alpha.Kind.NORM_MULTIPLE, a.get(2).kind());
        Direction d = new Direction("blocks.1.hook_resid_pre", 1, "last", new float[]{1, 0}, 4.0, -1, 3, 10, 5, 5, 1);
        assertEquals(2.0, a.get(2).value(d));
        assertEquals(-1.5, a.get(1).value(d));
        assertEquals(10.0, a.get(3).value(d));
        List<SteeringSweep.Alpha> c = SteeringSweep.parseAlphas("a,b,0", Intervention.Mode.CLAMP);
        assertEquals(-1.0, c.get(0).value(d));
        assertEquals(3.0, c.get(1).value(d));
        for (String bad : List.of("", "1,,2", "abc", "1,2f", "x", "1xx", "nan", "1e999", "a")) {
            JlensException e = assertThrows(JlensException.class, () -> SteeringSweep.parseAlphas(bad, Intervention.Mode.ADD), bad);
            assertTrue(e.getMessage().startsWith("--alpha"), e.getMessage());
        }
        assertEquals(List.of(0, 1, 2, 3, 4), SteeringSweep.parseLayers("all", 5));
        assertEquals(List.of(1, 2, 3, 4), SteeringSweep.parseLayers("4,1-3,2", 5));
        for (String bad : List.of("5", "-1", "1-7", "3-1", "two", "1,,2")) {
            JlensException e = assertThrows(JlensException.class, () -> SteeringSweep.parseLayers(bad, 5), bad);
            assertTrue(e.getMessage().startsWith("--layers"), e.getMessage());
        }
        assertTrue(assertThrows(JlensException.class, () -> SteeringSweep.parseLayers("9", 5)).getMessage()
                .contains("the model has 5 layers (0..4)"));
    }

    @Test
    void selectionTakesTheLargestEffectUnderTheThresholdOutsideTheLastFifth() {
        // 10 layers: layers 8 and 9 are excluded.
        List<SteeringSweep.Row> rows = List.of(row(-1, 0, 0), row(2, 0.5, 0.05), row(4, 0.9, 0.08), row(5, 1.5, 0.3),
                row(8, 3.0, 0.01), row(9, 2.0, 0.02));
        SteeringSweep.Selection s = SteeringSweep.select(rows, 10, 0.1, true);
        assertEquals(4, s.row().setting().layer());
        assertTrue(s.why().contains("2 settings with KL < 0.1000") && s.why().contains("2 in the last 20%")
                && s.why().contains("1 with KL"), s.why());
        SteeringSweep.Selection none = SteeringSweep.select(rows, 10, 0.01, true);
        assertNull(none.row());
        assertTrue(none.why().contains("no setting qualifies") && none.why().contains("smallest was 0.05"), none.why());
        assertEquals(7, DirectionChoice.maxSelectableLayer(10));
        assertEquals(3, DirectionChoice.maxSelectableLayer(5));
    }

    private static SteeringSweep.Row row(int layer, double effect, double kl) {
        SteeringSweep.Setting s = layer < 0 ? new SteeringSweep.Setting(null, -1, null)
                : new SteeringSweep.Setting(Intervention.Mode.ADD, layer, new SteeringSweep.Alpha("1", 1, SteeringSweep.Alpha.Kind.ABSOLUTE));
        return new SteeringSweep.Row(s, 1, new SteeringEvaluator.Metrics(0, 0, 0, 0, kl, Double.NaN), 0, effect, Double.NaN, List.of());
    }
}
