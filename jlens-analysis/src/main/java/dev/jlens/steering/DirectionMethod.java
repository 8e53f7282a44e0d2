package dev.jlens.steering;

import dev.jlens.JlensException;

/** How a direction is fitted from the two classes' activations (formulas in docs/STEERING.md). */
public enum DirectionMethod {
    /** μ_B − μ_A, normalised (Arditi et al. 2024). */
    DIFF_MEANS("diff-means"),
    /** First principal axis of the paired differences b_i − a_i, uncentred, signed towards B (Zou et al. 2023). */
    PCA("pca"),
    /** Weight vector of an L2-regularised logistic probe B vs A on the raw activations. */
    PROBE("probe"),
    /** Not fitted by jlens: read from a llama.cpp control vector (jlens control-vector import). */
    CONTROL_VECTOR("control-vector");

    private final String cliName;

    DirectionMethod(String cliName) {
        this.cliName = cliName;
    }

    /** The methods jlens direction fits (all but {@link #CONTROL_VECTOR}). */
    public static java.util.List<DirectionMethod> fitted() {
        return java.util.List.of(DIFF_MEANS, PCA, PROBE);
    }

    public String cliName() {
        return cliName;
    }

    public static DirectionMethod parse(String s) {
        for (DirectionMethod m : values()) if (m.cliName.equalsIgnoreCase(s) || m.name().equalsIgnoreCase(s)) return m;
        throw new JlensException("--method \"" + s + "\": expected diff-means, pca or probe");
    }
}
