package dev.jlens.spark;

import java.io.Serializable;

/**
 * A model as the user named it ({@code --model}: a folder every executor can read, an ORG/NAME in each node's
 * Hugging Face cache, or {@code minilm}) and its revision. This, not the loaded model, is what travels to the
 * executors; each executor JVM loads it once ({@link ExecutorModels}).
 */
public record ModelRef(String model, String revision) implements Serializable {

    /** The embedded default when {@code model} is null or blank, as the single-machine commands do. */
    public static ModelRef of(String model, String revision) {
        return new ModelRef(model == null || model.isBlank() ? dev.jlens.load.ModelLoader.EMBEDDED_DEFAULT : model,
                revision == null || revision.isBlank() ? null : revision);
    }

    @Override
    public String toString() {
        return revision == null ? model : model + "@" + revision;
    }
}
