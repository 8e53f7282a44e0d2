package dev.jlens.io.onnx;

import dev.jlens.io.TensorEntry;

/**
 * A node attribute, reduced to the kinds a loader reads: a float ({@code epsilon}), an integer
 * ({@code axis}), a string ({@code approximate}), a tensor (a Constant's {@code value}) or lists of floats and
 * integers. Fields that the attribute does not set are 0, null or empty; graph-valued attributes (If/Loop
 * bodies) are not read.
 */
public record OnnxAttribute(String name, float f, long i, String s, TensorEntry t, float[] floats, long[] ints) {
}
