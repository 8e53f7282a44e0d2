package dev.jlens.geometry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.jlens.JlensException;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/** Reproducibility, input validation, reference cosines, CSV layout and peak selection. */
class AnalyzerContractTest {

    private static final GeometryOptions SMALL = new GeometryOptions(200, 200, 42, 5, 1.0, true);

    private static double[][][] data(long seed, int d) {
        Random rng = new Random(seed);
        return new double[][][] {
            Synthetic.gaussian(rng, 40, Synthetic.vector(d, 1, 1), 1.0),
            Synthetic.gaussian(rng, 50, Synthetic.vector(d, 1, 1.5), 1.2),
            Synthetic.gaussian(rng, 30, Synthetic.vector(d, 0.5), 1.0)};
    }

    private static int[] lengths(long seed, int n) {
        Random rng = new Random(seed);
        int[] l = new int[n];
        for (int i = 0; i < n; i++) l[i] = 3 + rng.nextInt(8);
        return l;
    }

    @Test
    void sameSeedGivesIdenticalResultsOnAnyNumberOfThreads() throws Exception {
        for (int d : new int[] {8, 200}) {   // d-space and Gram resampling paths
            double[][][] x = data(1, d);
            int[] la = lengths(2, 40), lb = lengths(3, 50);
            GeometryAnalyzer g = new GeometryAnalyzer(SMALL);
            LayerMetrics first = g.analyze("h", 3, x[0], x[1], x[2], la, lb);
            LayerMetrics second = new GeometryAnalyzer(SMALL).analyze("h", 3, x[0], x[1], x[2], la, lb);
            assertEquals(first, second);
            ForkJoinPool single = new ForkJoinPool(1);
            try {
                LayerMetrics oneThread = single.submit(() -> g.analyze("h", 3, x[0], x[1], x[2], la, lb)).get();
                assertEquals(first, oneThread);
            } finally {
                single.shutdown();
            }
            LayerMetrics otherSeed = new GeometryAnalyzer(new GeometryOptions(200, 200, 43, 5, 1.0, true))
                    .analyze("h", 3, x[0], x[1], x[2], la, lb);
            assertNotEquals(first.cosRawCi(), otherSeed.cosRawCi());
            assertEquals(first.cosRaw(), otherSeed.cosRaw(), 0.0, "point estimates do not depend on the seed");
        }
    }

    @Test
    void gramAndDSpacePathsAgree() {
        double[][][] x = data(7, 40);
        Resampling gram = new Resampling(x[0], x[1], 1000, 1000, true);
        Resampling dspace = new Resampling(x[0], x[1], 1000, 1000, false);
        assertTrue(gram.gram() != null && dspace.gram() == null);
        var sp = new java.util.SplittableRandom(5);
        var bg = gram.bootstrap(50, sp.split(), null);
        var sp2 = new java.util.SplittableRandom(5);
        var bd = dspace.bootstrap(50, sp2.split(), null);
        for (int t = 0; t < 50; t++) {
            assertEquals(bg.cosRaw()[t], bd.cosRaw()[t], 1e-12);
            assertEquals(bg.l2Rel()[t], bd.l2Rel()[t], 1e-12);
            assertEquals(bg.dispRatio()[t], bd.dispRatio()[t], 1e-12);
        }
        var pg = gram.permutations(50, new java.util.SplittableRandom(9));
        var pd = dspace.permutations(50, new java.util.SplittableRandom(9));
        for (int t = 0; t < 50; t++) {
            assertEquals(pg.l2Raw()[t], pd.l2Raw()[t], 1e-12);
            assertEquals(pg.absLogDispRatio()[t], pd.absLogDispRatio()[t], 1e-10);
        }
    }

    @Test
    void bootstrapDrawsMatchDirectRecomputation() {
        // A draw's statistics from Gram sums equal PointMetrics on the explicitly resampled rows.
        double[][][] x = data(8, 40);
        for (boolean useGram : new boolean[] {true, false}) {
            Resampling rs = new Resampling(x[0], x[1], 1000, 1000, useGram);
            java.util.SplittableRandom parent = new java.util.SplittableRandom(3);
            var draws = rs.bootstrap(5, parent, null);
            java.util.SplittableRandom[] rngs = dev.jlens.stats.Seeds.perDraw(new java.util.SplittableRandom(3), 5);
            for (int t = 0; t < 5; t++) {
                double[][] a = new double[40][], b = new double[50][];
                for (int k = 0; k < 40; k++) a[k] = x[0][rngs[t].nextInt(40)];
                for (int k = 0; k < 50; k++) b[k] = x[1][rngs[t].nextInt(50)];
                PointMetrics pm = PointMetrics.of(a, b);
                assertEquals(pm.cosRaw(), draws.cosRaw()[t], 1e-12);
                assertEquals(pm.l2Rel(), draws.l2Rel()[t], 1e-12);
                assertEquals(pm.dispRatio(), draws.dispRatio()[t], 1e-10);
            }
        }
    }

    @Test
    void permutationDrawsMatchDirectRecomputation() {
        // Each draw relabels a random subset of min(n_A, n_B) pooled prompts as the smaller class.
        double[][][] x = data(9, 40);
        double[][] pooled = new double[90][];
        System.arraycopy(x[0], 0, pooled, 0, 40);
        System.arraycopy(x[1], 0, pooled, 40, 50);
        for (boolean useGram : new boolean[] {true, false}) {
            var draws = new Resampling(x[0], x[1], 1000, 1000, useGram)
                    .permutations(5, new java.util.SplittableRandom(4));
            java.util.SplittableRandom[] rngs = dev.jlens.stats.Seeds.perDraw(new java.util.SplittableRandom(4), 5);
            for (int t = 0; t < 5; t++) {
                int[] idx = new int[90];
                for (int i = 0; i < 90; i++) idx[i] = i;
                for (int k = 0; k < 40; k++) {
                    int j = k + rngs[t].nextInt(90 - k);
                    int tmp = idx[k];
                    idx[k] = idx[j];
                    idx[j] = tmp;
                }
                double[][] a = new double[40][], b = new double[50][];
                for (int k = 0; k < 40; k++) a[k] = pooled[idx[k]];
                for (int k = 0; k < 50; k++) b[k] = pooled[idx[40 + k]];
                PointMetrics pm = PointMetrics.of(a, b);
                assertEquals(pm.l2Raw(), draws.l2Raw()[t], 1e-12);
                assertEquals(Math.abs(Math.log(pm.dispRatio())), draws.absLogDispRatio()[t], 1e-10);
            }
        }
    }

    @Test
    void referenceCentringRemovesASharedOffset() {
        // Both class means sit on a huge common offset (a "rogue" direction): raw cosine ≈ 1 says nothing.
        // Relative to the reference mean they are orthogonal.
        int d = 10;
        Random rng = new Random(12);
        double[] common = Synthetic.vector(d, 0, 0, 100);
        double[] muA = common.clone(), muB = common.clone();
        muA[0] += 1;
        muB[1] += 1;
        double[][] a = Synthetic.gaussian(rng, 4000, muA, 0.1);
        double[][] b = Synthetic.gaussian(rng, 4000, muB, 0.1);
        double[][] ref = Synthetic.gaussian(rng, 4000, common, 0.1);
        LayerMetrics m = new GeometryAnalyzer(new GeometryOptions(0, 0, 1, 2, 1.0, false))
                .analyze("h", 0, a, b, ref, null, null);
        assertTrue(m.cosRaw() > 0.999);
        assertEquals(0, m.cosCentered(), 0.02);
        assertEquals(0, m.cosStd(), 0.02);
        // Scaling one dimension of everything changes the centred cosine but not the standardised one.
        for (double[][] set : new double[][][] {a, b, ref}) for (double[] row : set) row[0] *= 50;
        LayerMetrics scaled = new GeometryAnalyzer(new GeometryOptions(0, 0, 1, 2, 1.0, false))
                .analyze("h", 0, a, b, ref, null, null);
        assertEquals(m.cosStd(), scaled.cosStd(), 1e-9);
    }

    @Test
    void badInputIsRejectedWithAMessageNamingTheProblem() {
        GeometryAnalyzer g = new GeometryAnalyzer(SMALL);
        double[][][] x = data(1, 5);
        assertMessage(() -> g.analyze("h", 1, new double[0][], x[1], null, null, null), "class A", "0 prompts");
        assertMessage(() -> g.analyze("h", 1, x[0], null, null, null, null), "class B", "missing");
        assertMessage(() -> g.analyze("h", 1, x[0], new double[][] {x[1][0]}, null, null, null), "class B",
                "1 prompt");
        double[][] wide = {new double[6], new double[6]};
        assertMessage(() -> g.analyze("h", 1, x[0], wide, null, null, null), "row 0 has 6 dimensions, expected 5");
        double[][] withNaN = x[1].clone();
        withNaN[3] = withNaN[3].clone();
        withNaN[3][2] = Double.NaN;
        assertMessage(() -> g.analyze("h", 1, x[0], withNaN, null, null, null), "class B", "row 3, dimension 2 is NaN");
        double[][] badRef = {new double[4]};
        assertMessage(() -> g.analyze("blocks.1", 1, x[0], x[1], badRef, null, null), "reference", "blocks.1",
                "expected 5");
        assertMessage(() -> g.analyze("h", 1, x[0], x[1], null, lengths(1, 40), null), "token lengths",
                "class A only");
        assertMessage(() -> g.analyze("h", 1, x[0], x[1], null, lengths(1, 39), lengths(1, 50)), "class A",
                "39 values for 40 prompts");
        assertMessage(() -> new GeometryOptions(10, 10, 1, 1, 1.0, true), "cv folds");
        assertMessage(() -> new GeometryOptions(-1, 10, 1, 5, 1.0, true), "bootstrap");
        assertMessage(() -> new GeometryOptions(10, 10, 1, 5, 0.0, true), "penalty");
        assertMessage(() -> new GeometryAnalyzer(null), "options");
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String... parts) {
        JlensException e = assertThrows(JlensException.class, call);
        for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "\"" + e.getMessage() + "\" lacks " + p);
    }

    @Test
    void csvRowMatchesHeaderAndPeaksPickTheMaxima() {
        double[][][] x = data(4, 6);
        GeometryAnalyzer g = new GeometryAnalyzer(SMALL);
        LayerMetrics l0 = g.analyze("blocks.0.hook_resid_post", 0, x[0], x[1], x[2], lengths(5, 40), lengths(6, 50));
        double[][] far = x[1].clone();
        for (int i = 0; i < far.length; i++) {
            far[i] = far[i].clone();
            far[i][3] += 3;
        }
        LayerMetrics l1 = g.analyze("blocks,1", 1, x[0], far, null, null, null);
        List<String> header = LayerMetrics.csvColumns();
        assertEquals(header.size(), l0.csvValues().size());
        assertEquals(header.size(), l1.csvValues().size());
        assertEquals(header.size(), new java.util.HashSet<>(header).size(), "column names are unique");
        assertEquals("\"blocks,1\"", l1.csvValues().get(header.indexOf("hook")));
        assertEquals(Double.toString(l0.l2Rel()), l0.csvValues().get(header.indexOf("l2_rel")));
        assertEquals(Double.toString(l0.probeAurocCi().hi()), l0.csvValues().get(header.indexOf("probe_auroc_hi")));
        assertEquals("NaN", l1.csvValues().get(header.indexOf("cos_centered")));
        assertEquals("NaN", l1.csvValues().get(header.indexOf("len_probe_auroc")));
        assertEquals(Integer.toString(l0.lengthControl().nPerClass()), l0.csvValues().get(header.indexOf("len_n")));

        Map<String, LayerMetrics> peaks = GeometryAnalyzer.peaks(List.of(l0, l1));
        assertEquals(List.of("l2_rel", "fisher", "probe_auroc"), List.copyOf(peaks.keySet()));
        assertEquals(1, peaks.get("l2_rel").layer());
        assertEquals(1, peaks.get("fisher").layer());
        assertEquals(1, peaks.get("probe_auroc").layer());
        assertTrue(GeometryAnalyzer.peaks(List.of()).isEmpty());
    }
}
