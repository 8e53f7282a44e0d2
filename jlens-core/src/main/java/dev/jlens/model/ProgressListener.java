package dev.jlens.model;

/** Told after each batch how many prompts are done; the CLI draws a progress bar from it. */
@FunctionalInterface
public interface ProgressListener {
    ProgressListener NONE = (done, total) -> {
    };

    void progress(int done, int total);
}
