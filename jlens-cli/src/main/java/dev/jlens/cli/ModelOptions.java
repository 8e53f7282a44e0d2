package dev.jlens.cli;

import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** --model, --revision and --device/--compute, shared by every command that runs a model. */
public final class ModelOptions {

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = "A model folder (config.json, tokenizer.json, safetensors or pytorch_model.bin); an ORG/NAME "
                    + "from the Hugging Face cache, downloaded there first if missing (e.g. EleutherAI/pythia-160m; "
                    + "HF_HUB_OFFLINE=1 forbids downloads, HF_TOKEN for gated models); or 'minilm', the embedded default "
                    + "used when this option is omitted.")
    String model;

    @Option(names = "--revision", paramLabel = "REV",
            description = "For ORG/NAME models: a branch or tag in the cache's refs/ (Pythia's step143000) or a commit hash.")
    String revision;

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    public String modelName() {
        return model == null ? ModelLoader.EMBEDDED_DEFAULT : model;
    }

    /** Loads the model, downloading it into the Hugging Face cache first (with a progress bar) if needed. */
    public HookedModel load() {
        try (DownloadBar bar = new DownloadBar()) {
            return ModelLoader.load(model, revision, bar, deviceOptions.backend());
        }
    }
}
