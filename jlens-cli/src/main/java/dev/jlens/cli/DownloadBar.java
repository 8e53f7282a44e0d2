package dev.jlens.cli;

import dev.jlens.hub.DownloadProgress;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** One progress bar per downloaded file, in MiB, on stderr. */
final class DownloadBar implements DownloadProgress, AutoCloseable {

    private String file;
    private ProgressBar bar;

    @Override
    public synchronized void update(String name, long done, long total) {
        if (!name.equals(file)) {
            close();
            file = name;
            bar = new ProgressBarBuilder().setTaskName(name).setInitialMax(Math.max(total, 0))
                    .setStyle(ProgressBarStyle.ASCII).setUnit(" MiB", 1L << 20).setUpdateIntervalMillis(250)
                    .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).build();
        }
        if (total > 0) bar.maxHint(total);
        bar.stepTo(done);
    }

    @Override
    public synchronized void close() {
        if (bar != null) bar.close();
        bar = null;
        file = null;
    }
}
