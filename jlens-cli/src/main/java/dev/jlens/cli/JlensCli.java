package dev.jlens.cli;

import dev.jlens.JlensException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;

/** The {@code jlens} command: one subcommand per job, each teaching its options in --help. */
@Command(name = "jlens",
        mixinStandardHelpOptions = true,
        versionProvider = JlensCli.Version.class,
        description = {
                "Run transformer language models with hooks on every layer, measure the geometry of their activations, "
                        + "and steer them. With no --model, commands use the embedded default (minilm: all-MiniLM-L6-v2, "
                        + "shipped inside jlens).",
                ""},
        subcommands = {
                InspectCommand.class,
                CacheCommand.class,
                AnalyzeCommand.class,
                SynthCommand.class,
                BenchCommand.class,
                GenerateCommand.class,
                DirectionCommand.class,
                OrthogonalizeCommand.class,
                SteerCommand.class,
                EvalCommand.class,
                ControlVectorCommand.class,
                ProbeCommand.class,
                DetectCommand.class,
                ServeCommand.class,
                LensCommand.class,
                AttributeCommand.class,
                PatchCommand.class,
                AttentionCommand.class,
                CommandLine.HelpCommand.class
        },
        footer = {"", "Start with:  jlens analyze        (the harmful-vs-harmless geometry experiment, ~1 minute)",
                "             jlens inspect --model DIR   (what a checkpoint holds and which hooks it has)",
                "             jlens probe --save-detector out/det   (how early can a detector see harmful prompts?)",
                "Docs: README.md and docs/ (ARCHITECTURE, HOOKS, INSTRUMENTS, METRICS, PROMPTS, STEERING, EVALUATION, DETECTION, EXPERIMENTS, PERFORMANCE)"})
public final class JlensCli implements Runnable {

    public static final String VERSION = "0.1.0";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code: 0 done, 1 bad input or failure, 2 bad usage. */
    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new JlensCli());
        cli.setUsageHelpAutoWidth(true);
        cli.setUsageHelpWidth(100);
        cli.setExecutionExceptionHandler(JlensCli::handle);
        return cli.execute(args);
    }

    private static int handle(Exception e, CommandLine cmd, CommandLine.ParseResult parsed) {
        PrintWriter err = cmd.getErr();
        Throwable t = e;
        while (!(t instanceof JlensException) && t.getCause() != null && t != t.getCause()) t = t.getCause();
        if (t instanceof JlensException je) {
            err.println("jlens " + cmd.getCommandName() + ": " + je.getMessage());
        } else if (t instanceof OutOfMemoryError) {
            err.println("jlens " + cmd.getCommandName() + ": out of memory. Give the JVM more heap with "
                    + "JLENS_JAVA_OPTS=-Xmx16g, or use a smaller --batch-size.");
        } else {
            err.println("jlens " + cmd.getCommandName() + ": internal error: " + e
                    + "\nThis is a bug in jlens; set JLENS_DEBUG=1 to see the stack trace, and please report it.");
            if (System.getenv("JLENS_DEBUG") != null) e.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"jlens " + VERSION + " (Java " + Runtime.version() + ")"};
        }
    }
}
