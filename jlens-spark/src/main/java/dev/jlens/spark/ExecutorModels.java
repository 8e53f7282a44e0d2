package dev.jlens.spark;

import dev.jlens.detect.Detector;
import dev.jlens.load.ModelLoader;
import dev.jlens.model.HookedModel;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The models (and detectors) of this JVM, loaded on first use and kept for the JVM's life. Spark runs many
 * tasks in one executor JVM, one after another and side by side; loading a model per task would cost seconds
 * (and gigabytes) each time, so every task of the JVM shares one copy. This is deliberately JVM-global state:
 * an executor has no other object that outlives a task. Concurrent tasks may share a model, because a
 * forward pass keeps its working state per call.
 */
public final class ExecutorModels {

    private static final Map<ModelRef, HookedModel> MODELS = new ConcurrentHashMap<>();
    private static final Map<ModelRef, AtomicInteger> LOADS = new ConcurrentHashMap<>();
    private static final Map<DetectorKey, Detector> DETECTORS = new ConcurrentHashMap<>();

    private record DetectorKey(ModelRef model, String path) {
    }

    private ExecutorModels() {
    }

    /** The model, loaded by the first task that asks (the others of the JVM wait for that load and share it). */
    public static HookedModel model(ModelRef ref) {
        return MODELS.computeIfAbsent(ref, r -> {
            LOADS.computeIfAbsent(r, k -> new AtomicInteger()).incrementAndGet();
            return ModelLoader.load(r.model(), r.revision());
        });
    }

    /** A saved detector running on the JVM's copy of {@code ref}. */
    public static Detector detector(ModelRef ref, String path) {
        return DETECTORS.computeIfAbsent(new DetectorKey(ref, path), k -> Detector.load(Path.of(path), model(ref)));
    }

    /** How many times this JVM has loaded {@code ref} (1 once any task used it: the count the tests check). */
    public static int loads(ModelRef ref) {
        AtomicInteger n = LOADS.get(ref);
        return n == null ? 0 : n.get();
    }
}
