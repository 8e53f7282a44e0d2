package dev.jlens.cli;

import org.junit.jupiter.api.Test;

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
    void medianOfOddAndEvenCounts() {
        assertEquals(2.0, GenerationBench.median(new double[]{3, 1, 2}));
        assertEquals(2.5, GenerationBench.median(new double[]{4, 1, 2, 3}));
    }
}
