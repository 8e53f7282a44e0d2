package dev.jlens.model;

import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.kernels.WeightMatrix;

import java.util.Arrays;

/**
 * Reads a family's tensors by name and checks each shape against what config.json implies, so a checkpoint
 * that does not fit its config fails at load with the tensor, both shapes and the file named.
 */
public final class Weights {

    private final TensorSource source;
    private final ModelConfig config;
    private long parameterCount;

    public Weights(TensorSource source, ModelConfig config) {
        this.source = source;
        this.config = config;
    }

    public TensorSource source() {
        return source;
    }

    public long parameterCount() {
        return parameterCount;
    }

    public TensorEntry entry(String name, long... expectedShape) {
        TensorEntry e = source.find(name);
        if (e == null) {
            throw new JlensException(source.describe() + ": missing tensor \"" + name + "\" required by "
                    + config.file().getFileName() + " (" + String.join(", ", config.architectures()) + ")");
        }
        if (!Arrays.equals(e.shape(), expectedShape)) {
            throw new JlensException(e.source() + ": tensor \"" + name + "\" has shape " + e.shapeString()
                    + " but " + config.file() + " implies " + Arrays.toString(expectedShape));
        }
        if (!e.dtype().isFloat()) {
            throw new JlensException(e.source() + ": tensor \"" + name + "\" is " + e.dtype() + "; expected a float type");
        }
        parameterCount += e.numel();
        return e;
    }

    public float[] vector(String name, int n) {
        return entry(name, n).toFloatArray();
    }

    public WeightMatrix matrix(String name, int rows, int cols) {
        return WeightMatrix.of(entry(name, rows, cols));
    }

    /** A matrix stored [in, out] (GPT-2 Conv1D), returned in [out, in] layout. */
    public WeightMatrix transposedMatrix(String name, int in, int out) {
        return WeightMatrix.transposed(entry(name, in, out));
    }

    /** Counts a tied tensor that is used twice only once. */
    public void uncount(long n) {
        parameterCount -= n;
    }
}
