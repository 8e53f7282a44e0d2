package dev.jlens.steering;

import dev.jlens.load.ModelLoader;
import dev.jlens.model.ModelLocation;
import dev.jlens.model.HookedModel;
import org.junit.jupiter.api.Assumptions;

import java.nio.file.Files;
import java.nio.file.Path;

/** The golden fixture models of ../shared/fixtures, found through the jlens.fixtures property surefire sets. */
final class TestModels {

    private TestModels() {
    }

    static Path fixture(String name) {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        if (!Files.isDirectory(root)) root = Path.of("../shared/fixtures");
        Path dir = root.resolve(name).toAbsolutePath().normalize();
        Assumptions.assumeTrue(Files.isDirectory(dir), "fixture " + dir + " missing");
        return dir;
    }

    static HookedModel load(String name) {
        return ModelLoader.loadFolder(new ModelLocation(name, null, fixture(name), false));
    }
}
