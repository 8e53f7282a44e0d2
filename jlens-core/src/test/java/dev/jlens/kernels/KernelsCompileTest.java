package dev.jlens.kernels;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU kernels stay small enough for C1. A kernel whose tier-3 compilation for on-stack replacement
 * fails ("out of virtual registers in linear scan") can be left at tier 2 for good in a JVM that compiled it
 * there first, where the Vector API runs about 150 times slower: that happened to the batched-decode kernel
 * (2026-12-08, docs/PERFORMANCE.md). Whether a JVM takes that path depends on timing, so this test makes the
 * tier-3 OSR compilations certain instead: a child JVM without C2, compiling in the foreground, with a low
 * back-edge threshold, runs every product path and the CPU backend's norm, activation, rotary and attention
 * kernels once ({@link KernelsOsrProbe}).
 */
class KernelsCompileTest {

    private static final Pattern TIER3_OSR =
            Pattern.compile("%.*\\s3\\s+dev\\.jlens\\.kernels\\.(\\w+)::([\\w$]+) @ \\d+ \\(\\d+ bytes\\)(.*)");

    @Test
    void everyKernelLoopCompilesAtTierThreeForOnStackReplacement(@TempDir Path tmp) throws Exception {
        Path log = tmp.resolve("compilation.log");
        List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-XX:TieredStopAtLevel=3", "-XX:-BackgroundCompilation", "-XX:Tier3BackEdgeThreshold=1000",
                "-XX:+PrintCompilation",
                "-cp", System.getProperty("java.class.path") + File.pathSeparator + System.getProperty("surefire.test.class.path", ""),
                KernelsOsrProbe.class.getName(), "8192");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(240, TimeUnit.SECONDS), "the probe JVM did not finish in 240 s");
        List<String> lines = Files.readAllLines(log);
        assertEquals(0, p.exitValue(), () -> "probe JVM failed:\n" + String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size())));
        assertTrue(lines.contains("probe done"), "the probe did not finish");

        java.util.Set<String> compiled = new java.util.TreeSet<>();
        java.util.Set<String> failed = new java.util.TreeSet<>();
        for (String line : lines) {
            Matcher m = TIER3_OSR.matcher(line);
            if (!m.find()) continue;
            String method = m.group(1) + "::" + m.group(2);
            if (m.group(3).contains("COMPILE SKIPPED")) failed.add(method + m.group(3));
            else compiled.add(method);
        }
        assertTrue(failed.isEmpty(), "tier-3 OSR compilations that failed: " + failed);
        // the probe must have reached the loops it is meant to check
        for (String kernel : List.of("StreamingKernels::eightRowsEvenOddSteps", "StreamingKernels::eightRowsOnePanel",
                "StreamingKernels::oneRowFourStreamsEvenOddTwoSteps", "StreamingKernels::oneRowFourStreamsEvenOddOneStep",
                "Gemm::kernel12", "CpuBackend::attendOne", "CpuBackend::layerNormRow", "CpuBackend::rotary")) {
            assertTrue(compiled.contains(kernel), kernel + " was not compiled for OSR at tier 3; compiled: " + compiled);
        }
    }
}
