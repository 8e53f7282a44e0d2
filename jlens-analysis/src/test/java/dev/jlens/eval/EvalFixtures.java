package dev.jlens.eval;

import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/** Fixture models from ../shared/fixtures (the jlens.fixtures property). */
final class EvalFixtures {

    private EvalFixtures() {
    }

    static Path fixture(String name) {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        if (!Files.isDirectory(root)) root = Path.of("../shared/fixtures");
        Path dir = root.resolve(name).toAbsolutePath().normalize();
        Assumptions.assumeTrue(Files.isDirectory(dir), "fixture " + dir + " missing");
        return dir;
    }

    static HookedModel load(Path dir) {
        return ModelLoader.loadFolder(new ModelLocation(dir.getFileName().toString(), null, dir, false));
    }
}
