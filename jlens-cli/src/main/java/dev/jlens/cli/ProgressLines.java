package dev.jlens.cli;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Locale;
import java.util.function.LongSupplier;

/**
 * Progress for a log: a plain line at most once per interval and one at the end, such as
 * {@code cache: 120/500 prompts (24%), 3.1 prompts/s, ETA 2m 1s}, where a bar would redraw itself after a
 * carriage return on every tick and a log would collect hundreds of frames. Written by hand: me.tongfei's bar
 * can hand its frames to a logger instead, but they are still bar drawings, timed by its own thread on the wall
 * clock; here the clock is a parameter, so that tests run without sleeping.
 */
final class ProgressLines implements ProgressSink {

    static final Duration INTERVAL = Duration.ofSeconds(5);

    private final String task;
    private final String unit;
    private final long unitSize;
    private final PrintStream out;
    private final LongSupplier nanoTime;
    private final long intervalNanos;
    private final long start;
    private long lastLine;
    private long doneAtLastLine;
    private long done;
    private long total;
    private boolean closed;

    /**
     * @param unit     what is counted, plural ("prompts", "MiB")
     * @param unitSize how many counted things make one unit (1 for prompts, 2^20 for bytes shown in MiB)
     * @param total    the count at the end, or -1 while unknown
     */
    ProgressLines(String task, String unit, long unitSize, long total, PrintStream out, LongSupplier nanoTime,
                  Duration interval) {
        this.task = task;
        this.unit = unit;
        this.unitSize = unitSize;
        this.total = total;
        this.out = out;
        this.nanoTime = nanoTime;
        this.intervalNanos = interval.toNanos();
        this.start = nanoTime.getAsLong();
        this.lastLine = start;
    }

    @Override
    public synchronized void update(long done, long total) {
        if (closed) return;
        this.done = done;
        if (total >= 0) this.total = total;
        long now = nanoTime.getAsLong();
        if (now - lastLine >= intervalNanos) {
            out.println(line(now, false));
            lastLine = now;
            doneAtLastLine = done;
        }
    }

    /** The last line: where the work got to (all of it, unless it failed), how long it took and how fast. */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        out.println(line(nanoTime.getAsLong(), true));
    }

    /**
     * A line on the way gives the speed since the line before, so that the estimate follows the JIT warming up
     * and the batches a resumed run skips at once inflate only its first line; the last line gives the average
     * of the whole run.
     */
    private String line(long now, boolean end) {
        double seconds = (now - start) / 1e9;
        StringBuilder s = new StringBuilder(task).append(": ").append(amount(done));
        if (total > 0) s.append('/').append(amount(total));
        s.append(' ').append(unit);
        if (total > 0) s.append(" (").append(Math.round(100.0 * done / total)).append("%)");
        if (end) s.append(" in ").append(duration(seconds));
        double window = end ? seconds : (now - lastLine) / 1e9;
        long doneInWindow = end ? done : done - doneAtLastLine;
        if (window > 0 && doneInWindow > 0) {
            double perSecond = doneInWindow / window;
            s.append(String.format(Locale.ROOT, ", %.1f %s/s", perSecond / unitSize, unit));
            if (!end && total > done) s.append(", ETA ").append(duration((total - done) / perSecond));
        }
        return s.toString();
    }

    private String amount(long count) {
        return unitSize == 1 ? Long.toString(count) : String.format(Locale.ROOT, "%.1f", (double) count / unitSize);
    }

    static String duration(double seconds) {
        long s = Math.round(seconds);
        if (s < 60) return s + "s";
        if (s < 3600) return s / 60 + "m " + s % 60 + "s";
        return s / 3600 + "h " + s % 3600 / 60 + "m";
    }
}
