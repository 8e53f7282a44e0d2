package dev.jlens.detect;

import dev.jlens.JlensException;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The three readings of one layer that {@code jlens probe} compares. Each turns a pooled activation into a raw
 * score where higher means "more like the harmful class"; docs/DETECTION.md gives the formulas.
 */
public enum DetectorKind {
    /** L2-regularised logistic regression on standardised features; C chosen on the validation split. */
    LOGISTIC("logistic"),
    /** Projection on the difference of the class means (harmful minus harmless), centred on their midpoint. */
    DIFF_MEANS("diff-means"),
    /** Minus the squared Mahalanobis distance to the harmful centroid, covariance shrunk towards a multiple of I. */
    MAHALANOBIS("mahalanobis");

    private final String cliName;

    DetectorKind(String cliName) {
        this.cliName = cliName;
    }

    public String cliName() {
        return cliName;
    }

    public static DetectorKind parse(String s) {
        for (DetectorKind k : values()) if (k.cliName.equalsIgnoreCase(s) || k.name().equalsIgnoreCase(s)) return k;
        throw new JlensException("detector kind \"" + s + "\": expected one of "
                + Arrays.stream(values()).map(DetectorKind::cliName).collect(Collectors.joining(", ")));
    }
}
