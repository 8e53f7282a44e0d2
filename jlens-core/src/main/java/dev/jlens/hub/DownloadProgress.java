package dev.jlens.hub;

/**
 * Told how far each file's download has got; the CLI draws a progress bar from it. Called from the downloading
 * thread: first with the bytes already on disk (a resumed download starts above zero), then as bytes arrive.
 */
@FunctionalInterface
public interface DownloadProgress {
    DownloadProgress NONE = (file, done, total) -> {
    };

    /**
     * @param file  the file's name in the repository, such as {@code model.safetensors}
     * @param done  bytes of it on disk so far
     * @param total its size, or -1 when the hub did not say
     */
    void update(String file, long done, long total);
}
