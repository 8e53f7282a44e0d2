package dev.jlens.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GenerationBenchTest {

    @Test
    void eachBatchIsTimedAgainstBandwidthRoundsRunBetweenItsSteps() {
        CliTestSupport.Result r = CliTestSupport.run("bench", "--model", CliTestSupport.fixtures().resolve("llama_tiny").toString(),
                "--generate", "--tokens", "4", "--new-tokens", "4", "--batches", "1,2");
        assertEquals(0, r.exitCode(), r.err());
        for (String batch : new String[]{"batch 1 ", "batch 2 "}) assertTrue(r.out().contains(batch), r.out());
        // 3 decode steps per batch, each followed by its own bandwidth round; the ratio is a median over steps
        Matcher m = Pattern.compile("bandwidth ([0-9.]+) GB/s \\(median of a 100 ms round after each step, ([0-9.]+)-([0-9.]+)\\)"
                + " -> bound [0-9.]+ tokens/s, reached [0-9]+% \\(median of each step against its round\\)").matcher(r.out());
        int found = 0;
        while (m.find()) {
            double median = Double.parseDouble(m.group(1)), lo = Double.parseDouble(m.group(2)), hi = Double.parseDouble(m.group(3));
            assertTrue(lo > 0 && lo <= median && median <= hi, m.group());
            found++;
        }
        assertEquals(2, found, r.out());
        assertTrue(r.out().contains("FMA peak"), r.out());
        assertTrue(r.out().matches("(?s).*outside kernels [0-9.]+ ms \\(garbage collection [0-9.]+ ms; [0-9.]+ MB allocated\\).*"), r.out());
    }

    @Test
    void everyDecodeStepCanBeWrittenAsCsv(@TempDir Path dir) throws Exception {
        Path csv = dir.resolve("steps.csv");
        CliTestSupport.Result r = CliTestSupport.run("bench", "--model", CliTestSupport.fixtures().resolve("llama_tiny").toString(),
                "--generate", "--tokens", "4", "--new-tokens", "4", "--batches", "1,2", "--steps-csv", csv.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().matches("(?s).*steps: [0-9]+% to [0-9]+% of the bound, [0-3] of 3 at 80% or more.*"), r.out());
        List<String> lines = Files.readAllLines(csv);
        assertEquals("batch,step,ms,bandwidth_gb_per_s,reached", lines.get(0));
        assertEquals(1 + 2 * 3, lines.size(), lines.toString());
        for (int i = 1; i < lines.size(); i++) {
            String[] f = lines.get(i).split(",");
            assertEquals(i <= 3 ? "1" : "2", f[0], lines.get(i));
            assertEquals(String.valueOf((i - 1) % 3), f[1], lines.get(i));
            double ms = Double.parseDouble(f[2]), gbs = Double.parseDouble(f[3]), reached = Double.parseDouble(f[4]);
            assertTrue(ms > 0 && gbs > 0 && reached > 0, lines.get(i));
        }
    }

    @Test
    void stepsBelowTheTargetAreCounted() {
        assertEquals(0, GenerationBench.countBelow(new double[]{0.8, 0.9}, 0.8));
        assertEquals(2, GenerationBench.countBelow(new double[]{0.5, 0.79, 0.8, 1.2}, 0.8));
        assertEquals(3, GenerationBench.countBelow(new double[]{0.1, 0.2, 0.3}, 0.8));
    }

    @Test
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, GenerationBench.median(new double[]{3, 1, 2}));
        assertEquals(2.5, GenerationBench.median(new double[]{4, 1, 2, 3}));
    }
}
