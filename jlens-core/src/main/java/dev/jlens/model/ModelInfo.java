package dev.jlens.model;

import dev.jlens.io.DType;

/** What `jlens inspect` prints and what analysis code needs to know about a model, whatever its family. */
public record ModelInfo(String family, String architecture, int nLayers, int dModel, int nHeads, int nKvHeads,
                        int dMlp, int vocabSize, int maxPositions, long parameterCount, DType weightDType,
                        boolean causal) {

    /** Bytes the weights take in memory as loaded (16-bit weights stay 16-bit). */
    public long weightBytes() {
        return parameterCount * weightDType.bytes();
    }
}
