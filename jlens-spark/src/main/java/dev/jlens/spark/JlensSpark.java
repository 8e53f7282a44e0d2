package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.geometry.LayerMetrics;
import dev.jlens.hooks.Pooling;
import org.apache.spark.SparkConf;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code jlens spark}: the jobs of jlens over prompt tables too large for one machine, on Apache Spark. The
 * same jar runs under {@code spark-submit} (class {@code dev.jlens.spark.JlensSpark}) and from the launcher
 * ({@code ./jlens spark ...}, an embedded local Spark by default). docs/SPARK.md has the cluster recipes.
 */
@Command(name = "jlens spark", mixinStandardHelpOptions = true,
        description = {"jlens jobs on Apache Spark: activations, geometry and detector scores over large prompt tables.",
                "Each job reads a prompt table (Parquet, JSONL, CSV with a header, or .txt), loads the model once per "
                        + "executor JVM, and writes Parquet through Spark's output committer. Rows that cannot be used "
                        + "(missing id, empty text, longer than the model's context) go to OUT/bad_rows instead of "
                        + "failing the job, unless --strict.", ""},
        subcommands = {JlensSpark.Cache.class, JlensSpark.Analyze.class, JlensSpark.Score.class,
                CommandLine.HelpCommand.class},
        footer = {"", "Examples:",
                "  jlens spark cache --model EleutherAI/pythia-160m --prompts prompts.parquet --out out/acts",
                "  jlens spark analyze --activations out/acts/activations --out out/geometry",
                "  jlens spark score --detector out/guard --prompts logs.jsonl --out out/scores",
                "  spark-submit --class dev.jlens.spark.JlensSpark jlens-spark.jar cache ...   (docs/SPARK.md)"})
public final class JlensSpark implements Runnable {

    /** What every executor JVM needs: the Vector API module and native access for the kernels' memory. */
    public static final String EXECUTOR_JAVA_OPTIONS = "--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED";

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    public static int execute(String... args) {
        CommandLine cli = new CommandLine(new JlensSpark());
        cli.setUsageHelpAutoWidth(true);
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            JlensException j = jlensCause(e);
            cmd.getErr().println("jlens spark: " + (j != null ? j.getMessage() : e.toString()));
            if (j == null) e.printStackTrace(cmd.getErr());
            return 1;
        });
        return cli.execute(args);
    }

    /** A failed task reaches the driver wrapped in Spark's exceptions; the user wants jlens's own message. */
    private static JlensException jlensCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) if (t instanceof JlensException j) return j;
        return null;
    }

    /** --master and --partitions, and the session made from them. */
    static final class SparkOptions {
        @Option(names = "--master", paramLabel = "URL",
                description = {"Spark master: local[*] (default: an embedded Spark on this machine with a worker per core),",
                        "local[N,F] (N cores, a failed task tried F times), yarn, k8s://https://HOST:PORT, spark://HOST:PORT.",
                        "Under spark-submit the master it was given is used."})
        String master;

        @Option(names = "--partitions", paramLabel = "N",
                description = "Spread the prompts over N partitions (tasks) first; default: as Spark reads them.")
        Integer partitions;

        SparkSession session(String job) {
            SparkConf conf = new SparkConf();
            if (master != null) conf.setMaster(master);
            else if (!conf.contains("spark.master")) conf.setMaster("local[*]");
            if (!conf.contains("spark.app.name")) conf.setAppName("jlens spark " + job);
            String opts = conf.get("spark.executor.extraJavaOptions", "");
            if (!opts.contains("jdk.incubator.vector")) {
                conf.set("spark.executor.extraJavaOptions", (opts + " " + EXECUTOR_JAVA_OPTIONS).strip());
            }
            SparkSession spark = SparkSession.builder().config(conf).getOrCreate();
            spark.sparkContext().setLogLevel("WARN");
            return spark;
        }

        Dataset<Row> spread(Dataset<Row> rows) {
            if (partitions == null) return rows;
            if (partitions < 1) throw new JlensException("--partitions " + partitions + ": expected a positive number");
            return rows.repartition(partitions);
        }
    }

    /** The prompt table and its columns. */
    static final class PromptOptions {
        @Option(names = {"-p", "--prompts"}, required = true, paramLabel = "PATH",
                description = {"Prompts: a Parquet file or folder, .jsonl, .csv (header row) or .txt (one per line, numbered",
                        "from 0 as jlens cache numbers them). Any path Spark reads: a local path on every node, hdfs://, s3a://."})
        String prompts;

        @Option(names = "--field", defaultValue = "text", paramLabel = "NAME", description = "Column of the text (default: ${DEFAULT-VALUE}).")
        String field;

        @Option(names = "--id-field", defaultValue = "id", paramLabel = "NAME", description = "Column of the id (default: ${DEFAULT-VALUE}).")
        String idField;

        @Option(names = "--label-field", defaultValue = "label", paramLabel = "NAME",
                description = "Column of the optional label (default: ${DEFAULT-VALUE}).")
        String labelField;

        Dataset<Row> read(SparkSession spark) {
            return PromptTable.read(spark, prompts, new PromptTable.Columns(idField, field, labelField));
        }
    }

    /** What to do with bad rows and over-long prompts. */
    static final class RowOptions {
        @Option(names = "--strict", description = "Fail the job if any row is bad (they are still listed in OUT/bad_rows).")
        boolean strict;

        @Option(names = "--truncate",
                description = "Cut prompts longer than the model's context as the single-machine commands do, instead of "
                        + "listing them as bad rows.")
        boolean truncate;
    }

    @Command(name = "cache", mixinStandardHelpOptions = true,
            description = {"Pooled activations of the chosen hooks for every prompt of a table.",
                    "Writes OUT/activations (Parquet: id, label, hook, vector array<float>), the same numbers bit for bit "
                            + "as jlens cache, and OUT/bad_rows (id, text, reason)."},
            footer = {"", "Examples:",
                    "  jlens spark cache --model ../shared/fixtures/gpt_neox_tiny --prompts p.jsonl --out out/acts",
                    "  jlens spark cache --model EleutherAI/pythia-160m --prompts hdfs:///data/prompts.parquet "
                            + "--hooks 'blocks.*.hook_resid_post' --pool last --partitions 400 --master yarn --out hdfs:///out/acts"})
    static final class Cache implements Callable<Integer> {
        @Mixin SparkOptions sparkOptions;
        @Mixin PromptOptions promptOptions;
        @Mixin RowOptions rowOptions;

        @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
                description = "A model folder every executor can read, an ORG/NAME in each node's Hugging Face cache, or minilm (default).")
        String model;

        @Option(names = "--revision", paramLabel = "REV", description = "For ORG/NAME models: a branch, tag or commit.")
        String revision;

        @Option(names = "--hooks", defaultValue = "blocks.*.hook_resid_post", paramLabel = "PATTERN",
                description = "Comma-separated hook names or globs (default: ${DEFAULT-VALUE}); jlens inspect lists them.")
        String hooks;

        @Option(names = "--pool", defaultValue = "mean", paramLabel = "P",
                description = "mean, last or mean-skip-first (default: ${DEFAULT-VALUE}).")
        String pool;

        @Option(names = "--batch-size", defaultValue = "16", paramLabel = "N",
                description = "Prompts per forward pass within a task (default: ${DEFAULT-VALUE}); results do not depend on it.")
        int batchSize;

        @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (must not exist).")
        String out;

        @Override
        public Integer call() {
            CacheJob.Settings s = new CacheJob.Settings(ModelRef.of(model, revision), hooks, Pooling.parse(pool), batchSize,
                    rowOptions.truncate, FailureInjection.NONE);
            SparkSession spark = sparkOptions.session("cache");
            try {
                CacheJob.Result r = CacheJob.run(spark, sparkOptions.spread(promptOptions.read(spark)), s, out, rowOptions.strict);
                System.err.printf(java.util.Locale.ROOT, "wrote %d rows (prompt x hook) to %s; %d bad row(s) in %s "
                                + "(check pass %.1f s, activation pass %.1f s)%n", r.activationRows(), r.activations(),
                        r.badRowCount(), r.badRows(), r.checkSeconds(), r.activationSeconds());
            } finally {
                spark.stop();
            }
            return 0;
        }
    }

    @Command(name = "analyze", mixinStandardHelpOptions = true,
            description = {"Geometry of class A against class B at every hook, from a table written by jlens spark cache.",
                    "Every column of jlens analyze's metrics.csv, without collecting the vectors: the point metrics from "
                            + "per-class counts, means and scatter matrices summed with treeAggregate; bootstrap intervals "
                            + "and permutation p-values from per-draw sums over each partition, with jlens analyze's own "
                            + "seeded draws; the cross-validated probe with Spark MLlib on the same folds; the silhouette on "
                            + "jlens analyze's point set (at most 2000 prompts, the only vectors the driver receives); the "
                            + "length control from the tokens column. Writes OUT/metrics (Parquet) and OUT/metrics_csv "
                            + "(one CSV with a header).",
                    "The probe's folds are those of jlens analyze when the ids number each class's prompts in the order "
                            + "of jlens analyze's files (ids are ordered numerically when all are integers)."},
            footer = {"", "Example:",
                    "  jlens spark cache --prompts labelled.jsonl --out out/acts && "
                            + "jlens spark analyze --activations out/acts/activations --class-ref neutral --out out/geometry"})
    static final class Analyze implements Callable<Integer> {
        @Mixin SparkOptions sparkOptions;

        @Option(names = "--activations", required = true, paramLabel = "DIR",
                description = "OUT/activations of jlens spark cache (Parquet: id, label, hook, vector).")
        String activations;

        @Option(names = "--class-a", defaultValue = "harmless", paramLabel = "LABEL",
                description = "Label of class A (default: ${DEFAULT-VALUE}).")
        String classA;

        @Option(names = "--class-b", defaultValue = "harmful", paramLabel = "LABEL",
                description = "Label of class B (default: ${DEFAULT-VALUE}).")
        String classB;

        @Option(names = "--class-ref", paramLabel = "LABEL",
                description = "Label of neutral reference prompts for cos_centered and cos_std (jlens analyze --reference); "
                        + "without it those two are NaN.")
        String classRef;

        @Option(names = "--seed", defaultValue = "42",
                description = "Seed of every random choice: folds, bootstrap, permutations, silhouette sample, length "
                        + "matching; jlens analyze --seed (default: ${DEFAULT-VALUE}).")
        long seed;

        @Option(names = "--bootstrap", defaultValue = "1000", paramLabel = "N",
                description = "Bootstrap draws for the 95% intervals, 0 for none (default: ${DEFAULT-VALUE}).")
        int bootstrap;

        @Option(names = "--permutations", defaultValue = "1000", paramLabel = "N",
                description = "Label permutations for the p-values, 0 for none (default: ${DEFAULT-VALUE}).")
        int permutations;

        @Option(names = "--no-length-control", description = "Skip the token-length-matched control (len_* are NaN).")
        boolean noLengthControl;

        @Option(names = "--cv-folds", defaultValue = "5", paramLabel = "K",
                description = "Cross-validation folds of the logistic probe (default: ${DEFAULT-VALUE}).")
        int cvFolds;

        @Option(names = "--no-probe", description = "Skip the probe (probe_acc and probe_auroc are NaN): one pass over the table.")
        boolean noProbe;

        @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (must not exist).")
        String out;

        @Override
        public Integer call() {
            AnalyzeJob.Settings settings = new AnalyzeJob.Settings(classA, classB, classRef, seed, cvFolds, 1.0, !noProbe,
                    bootstrap, permutations, !noLengthControl);
            SparkSession spark = sparkOptions.session("analyze");
            try {
                AnalyzeJob.Result r = AnalyzeJob.run(spark, sparkOptions.spread(spark.read().parquet(activations)), settings, out);
                for (LayerMetrics m : r.metrics()) {
                    System.out.printf(java.util.Locale.ROOT,
                            "%-32s n=%d+%d cos_raw=%.4f [%.4f, %.4f] l2_rel=%.4f p=%.4f disp_ratio=%.4f fisher=%.4f "
                                    + "silhouette=%.4f probe_auroc=%.4f%n",
                            m.hook(), m.nA(), m.nB(), m.cosRaw(), m.cosRawCi().lo(), m.cosRawCi().hi(), m.l2Rel(),
                            m.pL2Raw(), m.dispRatio(), m.fisher(), m.silhouette(), m.probeAuroc());
                }
                if (!r.notComputed().isEmpty()) System.err.println("not computed: " + String.join("; ", r.notComputed()));
                System.err.println("wrote " + r.metricsPath() + " and " + out + "/metrics_csv");
            } finally {
                spark.stop();
            }
            return 0;
        }
    }

    @Command(name = "score", mixinStandardHelpOptions = true,
            description = {"Score a prompt table with a saved detector (jlens probe --save-detector).",
                    "Writes OUT/scores (Parquet: id, score, flagged, layer), each score the one jlens detect gives, "
                            + "and OUT/bad_rows (id, text, reason)."},
            footer = {"", "Example:",
                    "  jlens spark score --detector out/guard --prompts logs.parquet --id-field request_id --field prompt --out out/scores"})
    static final class Score implements Callable<Integer> {
        @Mixin SparkOptions sparkOptions;
        @Mixin PromptOptions promptOptions;
        @Mixin RowOptions rowOptions;

        @Option(names = {"-d", "--detector"}, required = true, paramLabel = "DIR",
                description = "A detector folder every executor can read.")
        Path detector;

        @Option(names = {"-m", "--model"}, paramLabel = "MODEL",
                description = "Run the detector on this model instead of the one its detector.json names (it must be the same model).")
        String model;

        @Option(names = "--revision", paramLabel = "REV", description = "With --model ORG/NAME: a branch, tag or commit.")
        String revision;

        @Option(names = {"-o", "--out"}, required = true, paramLabel = "DIR", description = "Output folder (must not exist).")
        String out;

        @Override
        public Integer call() {
            ModelRef ref = ScoreJob.modelOf(detector, model == null ? null : ModelRef.of(model, revision));
            ScoreJob.Settings s = new ScoreJob.Settings(ref, detector.toAbsolutePath().toString(), rowOptions.truncate);
            SparkSession spark = sparkOptions.session("score");
            try {
                ScoreJob.Result r = ScoreJob.run(spark, sparkOptions.spread(promptOptions.read(spark)), s, out, rowOptions.strict);
                System.err.printf("wrote %d scores to %s; %d bad row(s) in %s%n", r.scoredRows(), r.scores(),
                        r.badRowCount(), r.badRows());
            } finally {
                spark.stop();
            }
            return 0;
        }
    }
}
