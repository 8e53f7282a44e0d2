package dev.jlens.geometry;

/**
 * Metrics on the token-length-matched subsample: nPerClass pairs of one class A and one class B prompt of equal
 * (or, with a caliper, nearly equal) token length. meanLenA and meanLenB show how well the lengths match. The
 * metrics are NaN when fewer than 2 pairs could be formed.
 */
public record LengthControl(int nPerClass, double cosRaw, double l2Rel, double dispRatio, double probeAuroc,
                            double meanLenA, double meanLenB) {
}
