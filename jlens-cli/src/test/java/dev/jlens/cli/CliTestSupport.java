package dev.jlens.cli;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Runs the CLI in-process and captures what it prints, or in a child JVM for tests that kill it. */
final class CliTestSupport {

    record Result(int exitCode, String out, String err) {
    }

    private CliTestSupport() {
    }

    static Path fixtures() {
        String p = System.getProperty("jlens.fixtures");
        Path root = p != null ? Path.of(p) : Path.of("../../shared/fixtures");
        if (!Files.isDirectory(root)) root = Path.of("../shared/fixtures");
        return root.toAbsolutePath().normalize();
    }

    static synchronized Result run(String... args) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            int code = JlensCli.execute(args);
            return new Result(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
        }
    }

    /** {@code args} followed by {@code more}. */
    static String[] concat(List<String> args, String... more) {
        List<String> l = new ArrayList<>(args);
        l.addAll(List.of(more));
        return l.toArray(String[]::new);
    }

    /**
     * Starts {@code jlens ARGS --out OUT} in a child JVM on the test class path, its stdout discarded and its
     * stderr written to {@code OUT.stderr} beside it: an unread pipe would fill up with progress lines and stall
     * the process.
     */
    static Process startInChildJvm(List<String> args, Path out) throws java.io.IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--add-modules");
        cmd.add("jdk.incubator.vector");
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path") + File.pathSeparator + System.getProperty("surefire.test.class.path", ""));
        cmd.add(JlensCli.class.getName());
        cmd.addAll(List.of(concat(args, "--out", out.toString())));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.redirectError(out.resolveSibling(out.getFileName() + ".stderr").toFile());
        return pb.start();
    }

    /**
     * Fits a logistic detector at {@code blocks.1.hook_resid_post} of the gpt_neox_tiny fixture on the built-in sets
     * (no bootstrap) with {@code jlens probe}, writing the probe's outputs to {@code tmp/probe}; returns the saved
     * detector's directory, {@code tmp/guard}.
     */
    static Path saveTinyDetector(Path tmp) {
        Path dir = tmp.resolve("guard");
        Result r = run("probe", "--model", fixtures().resolve("gpt_neox_tiny").toString(), "--hooks", "blocks.1.hook_resid_post",
                "--detectors", "logistic", "--bootstrap", "0", "--out", tmp.resolve("probe").toString(), "--save-detector", dir.toString());
        if (r.exitCode() != 0) throw new AssertionError("jlens probe failed (exit " + r.exitCode() + "):\n" + r.err());
        return dir;
    }
}
