package dev.jlens.load;

import dev.jlens.JlensException;
import dev.jlens.hub.DownloadProgress;
import dev.jlens.io.Checkpoints;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;
import dev.jlens.model.HookedModel;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamilies;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.TransformerModel;
import dev.jlens.tokenizer.HfTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/** Loads a model by its {@code --model} name: a folder, an ORG/NAME in the HF cache, or the embedded default. */
public final class ModelLoader {

    /** The name of the embedded default model, also used when no model is given. */
    public static final String EMBEDDED_DEFAULT = "minilm";

    private ModelLoader() {
    }

    public static HookedModel load(String model, String revision) {
        return load(model, revision, DownloadProgress.NONE);
    }

    /** As {@link #load(String, String)}; {@code progress} hears about each file downloaded from the hub. */
    public static HookedModel load(String model, String revision, DownloadProgress progress) {
        return load(model, revision, progress, Backend.defaults());
    }

    /**
     * As {@link #load(String, String, DownloadProgress)} on the given backend (see {@code dev.jlens.cuda.Device}
     * for --device's choice). The embedded default model always runs on the CPU: it is an ONNX model.
     */
    public static HookedModel load(String model, String revision, DownloadProgress progress, Backend backend) {
        if (model == null || model.isBlank() || model.equalsIgnoreCase(EMBEDDED_DEFAULT)) {
            return EmbeddedModels.minilm();
        }
        ModelResolver resolver = new ModelResolver(System.getenv(), Path.of(System.getProperty("user.home")), progress);
        return loadFolder(resolver.resolve(model, revision), backend);
    }

    public static HookedModel loadFolder(ModelLocation location) {
        return loadFolder(location, Backend.defaults());
    }

    /** A model folder run on the given backend (the reference backend for differential tests, a GPU later). */
    public static HookedModel loadFolder(ModelLocation location, Backend backend) {
        Path dir = location.dir();
        if (!Files.isDirectory(dir)) throw new JlensException("--model " + location.id() + ": folder " + dir + " does not exist");
        ModelConfig config = ModelConfig.read(dir.resolve("config.json"));
        ModelFamily family = ModelFamilies.forConfig(config);
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new JlensException(dir.resolve("tokenizer.json") + ": tokenizer.json not found; jlens needs the "
                    + "fast-tokenizer file that Hugging Face models ship next to config.json");
        }
        TensorSource weights = Checkpoints.open(dir);
        MemoryEstimate.of(family, config, weights).check("--model " + location.id(), MemoryEstimate.Limits.ofThisJvm());
        TransformerModel m = family.load(config, weights, backend);
        return new HookedModel(location, m, HfTokenizer.fromDirectory(dir));
    }
}
