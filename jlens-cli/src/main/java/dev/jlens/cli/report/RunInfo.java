package dev.jlens.cli.report;

/** Everything about a run that the report and metrics.json record. */
public record RunInfo(String model, String revision, String architecture, int nLayers, int dModel, String pooling,
                      String hooks, int bootstrap, int permutations, long seed, int cvFolds, boolean seedCompat,
                      String setA, String setB, String setRef, int nA, int nB, int nRef,
                      double meanLenA, double sdLenA, double meanLenB, double sdLenB, double seconds) {
}
