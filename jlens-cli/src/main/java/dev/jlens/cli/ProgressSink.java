package dev.jlens.cli;

import me.tongfei.progressbar.ProgressBar;

import java.io.Console;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where a long loop's progress goes: a redrawn bar when stderr is a terminal, plain lines every few seconds
 * ({@link ProgressLines}) when it is a file or a pipe, where each redraw would be one more line of the log.
 */
interface ProgressSink extends AutoCloseable {

    /** {@code total} is -1 while unknown (a download whose size the hub did not say). */
    void update(long done, long total);

    @Override
    void close();

    static ProgressSink of(ProgressBar bar) {
        return new ProgressSink() {
            @Override
            public void update(long done, long total) {
                if (total > 0) bar.maxHint(total);
                bar.stepTo(done);
            }

            @Override
            public void close() {
                bar.close();
            }
        };
    }

    /**
     * Whether stderr is a terminal. The Console speaks for stdin and stdout only, so a run with {@code 2> log}
     * would still count as one; on Linux, /proc names the device that stderr is open on.
     */
    static boolean stderrIsTerminal() {
        Console console = System.console();
        if (console == null || !console.isTerminal()) return false;
        try {
            return isTerminalDevice(Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString());
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return true;   // no /proc (macOS, Windows): the console's word is all there is
        }
    }

    static boolean isTerminalDevice(String device) {
        return device.startsWith("/dev/pts/") || device.startsWith("/dev/tty") || device.equals("/dev/console");
    }
}
