package dev.jlens.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Progress off a terminal: a few plain lines on a fake clock, never a carriage return. */
class ProgressLinesTest {

    private static final long SECOND = 1_000_000_000L;

    private final AtomicLong clock = new AtomicLong(1234 * SECOND);
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final PrintStream out = new PrintStream(bytes, true, StandardCharsets.UTF_8);

    private List<String> lines() {
        String text = bytes.toString(StandardCharsets.UTF_8);
        assertFalse(text.contains("\r"), "a log gets no carriage returns: " + text);
        return text.lines().toList();
    }

    private void at(long seconds) {
        clock.set(1234 * SECOND + seconds * SECOND);
    }

    @Test
    void aLineAtMostEveryIntervalAndOneAtTheEnd() {
        ProgressLines p = new ProgressLines("cache", "prompts", 1, 100, out, clock::get, Duration.ofSeconds(5));
        at(1);
        p.update(4, 100);
        at(4);
        p.update(16, 100);
        assertEquals(List.of(), lines(), "nothing before the first interval has passed");
        at(5);
        p.update(20, 100);
        at(6);
        p.update(24, 100);
        at(9);
        p.update(36, 100);
        at(10);
        p.update(40, 100);
        at(25);
        p.update(100, 100);
        p.close();
        p.close();
        assertEquals(List.of(
                "cache: 20/100 prompts (20%), 4.0 prompts/s, ETA 20s",
                "cache: 40/100 prompts (40%), 4.0 prompts/s, ETA 15s",
                "cache: 100/100 prompts (100%), 4.0 prompts/s",
                "cache: 100/100 prompts (100%) in 25s, 4.0 prompts/s"), lines());
    }

    @Test
    void aThousandQuickUpdatesMakeAFewLines() {
        ProgressLines p = new ProgressLines("forward", "prompts", 1, 1000, out, clock::get, ProgressLines.INTERVAL);
        for (int i = 1; i <= 1000; i++) {
            clock.addAndGet(SECOND / 50);   // 20 s in all
            p.update(i, 1000);
        }
        p.close();
        List<String> lines = lines();
        assertEquals(5, lines.size(), "one line per 5 s of 20 s, and the last: " + lines);
        assertEquals("forward: 1000/1000 prompts (100%) in 20s, 50.0 prompts/s", lines.getLast());
    }

    @Test
    void aShortTaskPrintsOnlyItsLastLine() {
        ProgressLines p = new ProgressLines("probe", "hook points", 1, 3, out, clock::get, ProgressLines.INTERVAL);
        for (int i = 1; i <= 3; i++) p.update(i, 3);
        at(2);
        p.close();
        assertEquals(List.of("probe: 3/3 hook points (100%) in 2s, 1.5 hook points/s"), lines());
    }

    @Test
    void aFailedTaskEndsWithWhereItGotTo() {
        ProgressLines p = new ProgressLines("cache", "prompts", 1, 500, out, clock::get, ProgressLines.INTERVAL);
        at(3);
        p.update(120, 500);
        at(4);
        p.close();
        assertEquals(List.of("cache: 120/500 prompts (24%) in 4s, 30.0 prompts/s"), lines());
    }

    @Test
    void aDownloadOfUnknownSizeCountsMebibytes() {
        long mib = 1L << 20;
        ProgressLines p = new ProgressLines("model.safetensors", "MiB", mib, -1, out, clock::get, ProgressLines.INTERVAL);
        at(10);
        p.update(25 * mib, -1);
        at(200);
        p.update(400 * mib, 1000 * mib);   // the size became known
        p.close();
        assertEquals(List.of(
                "model.safetensors: 25.0 MiB, 2.5 MiB/s",
                "model.safetensors: 400.0/1000.0 MiB (40%), 2.0 MiB/s, ETA 5m 4s",
                "model.safetensors: 400.0/1000.0 MiB (40%) in 3m 20s, 2.0 MiB/s"), lines());
    }

    @Test
    void aResumedRunsSpeedIsRightFromItsSecondLine() {
        ProgressLines p = new ProgressLines("cache", "prompts", 1, 1000, out, clock::get, ProgressLines.INTERVAL);
        p.update(600, 1000);   // 600 prompts found on disk, at once
        at(5);
        p.update(620, 1000);
        at(10);
        p.update(640, 1000);
        assertEquals(List.of(
                "cache: 620/1000 prompts (62%), 124.0 prompts/s, ETA 3s",
                "cache: 640/1000 prompts (64%), 4.0 prompts/s, ETA 1m 30s"), lines());
    }

    @Test
    void durationsReadAsAPersonWouldSayThem() {
        assertEquals("0s", ProgressLines.duration(0.2));
        assertEquals("59s", ProgressLines.duration(59));
        assertEquals("2m 5s", ProgressLines.duration(125));
        assertEquals("1h 1m", ProgressLines.duration(3671));
    }

    @Test
    void onlyATerminalDeviceCountsAsATerminal() {
        assertTrue(ProgressSink.isTerminalDevice("/dev/pts/3"));
        assertTrue(ProgressSink.isTerminalDevice("/dev/tty1"));
        assertFalse(ProgressSink.isTerminalDevice("/tmp/run.log"));
        assertFalse(ProgressSink.isTerminalDevice("pipe:[123456]"));
        assertFalse(ProgressSink.isTerminalDevice("/dev/null"));
    }
}
