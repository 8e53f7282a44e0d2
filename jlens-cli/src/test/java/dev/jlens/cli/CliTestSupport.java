package dev.jlens.cli;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Runs the CLI in-process and captures what it prints. */
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
}
