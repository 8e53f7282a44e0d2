package dev.jlens.steering;

/**
 * One unit direction r̂ at one (hook, token position), with what it was fitted from.
 *
 * @param hook      hook point name, e.g. blocks.3.hook_resid_pre
 * @param layer     the hook's block, or -1 outside the blocks
 * @param position  token position label (see {@link TokenPosition})
 * @param unit      r̂, unit length, float32 as stored
 * @param norm      the raw separation along r̂: (μ_B − μ_A)·r̂, which for difference-in-means is ‖μ_B − μ_A‖
 * @param meanProjA mean of x·r̂ over class A
 * @param meanProjB mean of x·r̂ over class B
 * @param meanNorm  mean ‖x‖ over both classes, the scale that {@code norm} compares to
 * @param nA        class A prompts that contributed
 * @param nB        class B prompts that contributed
 * @param cosToDiffMeans cosine between r̂ and the difference-in-means direction (1 for that method)
 */
public record Direction(String hook, int layer, String position, float[] unit, double norm, double meanProjA,
                        double meanProjB, double meanNorm, int nA, int nB, double cosToDiffMeans) {

    /** The tensor name in directions.safetensors. */
    public String name() {
        return nameOf(hook, position);
    }

    public static String nameOf(String hook, String position) {
        return hook + ":" + position;
    }

    public int dModel() {
        return unit.length;
    }

    /** The unit vector widened to double. */
    public double[] unitDouble() {
        double[] r = new double[unit.length];
        for (int i = 0; i < r.length; i++) r[i] = unit[i];
        return r;
    }

    /** The hook kind's suffix, e.g. hook_resid_pre (the name without its blocks.L. prefix). */
    public String hookSuffix() {
        return layer >= 0 && hook.startsWith("blocks." + layer + ".") ? hook.substring(("blocks." + layer + ".").length()) : hook;
    }
}
