package dev.jlens.cli;

import dev.jlens.model.ProgressListener;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a long loop on stderr, closed when the work is done: a bar on a terminal, plain lines in a log
 * ({@link ProgressSink}).
 */
final class Progress implements ProgressListener, AutoCloseable {

    private final ProgressSink sink;

    /** @param unit what the loop counts, plural ("prompts", "hook points") */
    Progress(String task, String unit, int total) {
        this.sink = ProgressSink.stderrIsTerminal()
                ? ProgressSink.of(new ProgressBarBuilder().setTaskName(task).setInitialMax(total)
                        .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(250).continuousUpdate()
                        .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err))
                        .build())
                : new ProgressLines(task, unit, 1, total, System.err, System::nanoTime, ProgressLines.INTERVAL);
    }

    @Override
    public void progress(int done, int total) {
        sink.update(done, total);
    }

    @Override
    public void close() {
        sink.close();
    }
}
