package dev.jlens.cli;

import dev.jlens.hub.DownloadProgress;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** Progress of each downloaded file in MiB on stderr: a bar on a terminal, plain lines in a log. */
final class DownloadBar implements DownloadProgress, AutoCloseable {

    private static final long MIB = 1L << 20;

    private String file;
    private ProgressSink sink;

    @Override
    public synchronized void update(String name, long done, long total) {
        if (!name.equals(file)) {
            close();
            file = name;
            sink = ProgressSink.stderrIsTerminal()
                    ? ProgressSink.of(new ProgressBarBuilder().setTaskName(name).setInitialMax(Math.max(total, 0))
                            .setStyle(ProgressBarStyle.ASCII).setUnit(" MiB", MIB).setUpdateIntervalMillis(250)
                            .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build())
                    : new ProgressLines(name, "MiB", MIB, total, System.err, System::nanoTime, ProgressLines.INTERVAL);
        }
        sink.update(done, total);
    }

    @Override
    public synchronized void close() {
        if (sink != null) sink.close();
        sink = null;
        file = null;
    }
}
