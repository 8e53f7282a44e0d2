package dev.jlens.cli;

import dev.jlens.detect.Detector;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --detector, and the optional --model / --revision that override the model the detector names. */
public final class DetectorOptions {

    @Option(names = {"-d", "--detector"}, required = true, paramLabel = "DIR",
            description = "A detector folder written by jlens probe --save-detector (detector.json + detector.safetensors).")
    Path detector;

    @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
            description = {"Run the detector on this model (folder, ORG/NAME or minilm) instead of the one its",
                    "detector.json names; it must be the same model (checked on load)."})
    String model;

    @Option(names = "--revision", paramLabel = "REV", description = "With --model ORG/NAME: a branch, tag or commit.")
    String revision;

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    /** A detector and, when --model was given, the model it runs on; closing closes both. */
    record Loaded(Detector detector, HookedModel model) implements AutoCloseable {
        @Override
        public void close() {
            detector.close();
            if (model != null) model.close();
        }
    }

    Loaded open() {
        if (model == null) return new Loaded(Detector.load(detector, deviceOptions.backend()), null);
        HookedModel m;
        try (DownloadBar bar = new DownloadBar()) {
            m = ModelLoader.load(model, revision, bar, deviceOptions.backend());
        }
        try {
            return new Loaded(Detector.load(detector, m), m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }
}
