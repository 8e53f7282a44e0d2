package dev.jlens.spark;

import dev.jlens.cli.JlensCli;
import dev.jlens.io.safetensors.SafetensorsFile;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** A small local Spark for one test class, and the single-machine reference numbers. */
final class SparkTestSupport {

    private SparkTestSupport() {
    }

    /** Two worker threads; "local[2,3]" lets a failed task be tried three times (local mode ignores spark.task.maxFailures). */
    static SparkSession start() {
        return SparkSession.builder().master("local[2,3]").appName("jlens-spark-test")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.task.maxFailures", "3")
                // The tables here have a few dozen rows: compiling generated code for each query costs more
                // than interpreting it, and adaptive re-planning adds jobs for nothing.
                .config("spark.sql.codegen.wholeStage", "false")
                .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
                .config("spark.sql.adaptive.enabled", "false")
                .getOrCreate();
    }

    static Path fixture(String name) {
        return Path.of(System.getProperty("jlens.fixtures", "../../shared/fixtures")).resolve(name).toAbsolutePath().normalize();
    }

    /** Runs the real {@code jlens cache} and returns hook -> [prompt][d] from its activations.safetensors. */
    static Map<String, float[][]> jlensCache(Path out, String... args) {
        String[] full = new String[args.length + 3];
        full[0] = "cache";
        System.arraycopy(args, 0, full, 1, args.length);
        full[args.length + 1] = "--out";
        full[args.length + 2] = out.toString();
        assertEquals(0, JlensCli.execute(full), "jlens cache failed");
        Map<String, float[][]> byHook = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(out.resolve("activations.safetensors"))) {
            for (String name : f.names()) {
                var e = f.require(name);
                int rows = (int) e.shape()[0], d = (int) e.shape()[1];
                float[] all = e.toFloatArray();
                float[][] m = new float[rows][];
                for (int r = 0; r < rows; r++) m[r] = java.util.Arrays.copyOfRange(all, r * d, (r + 1) * d);
                byHook.put(name, m);
            }
        }
        return byHook;
    }

    static float[] vector(Row r) {
        List<Float> v = r.getList(r.fieldIndex("vector"));
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) out[i] = v.get(i);
        return out;
    }
}
