package dev.jlens.cuda;

import dev.jlens.JlensException;

/**
 * How a GPU computes the products with weights. {@link #FP32}: cuBLAS in float32 without TF32, numerically
 * comparable with the CPU backend and Hugging Face's float32 (the default). {@link #BF16}: weights held in bf16
 * and activations rounded to bf16 at each product, accumulated in float32 on the tensor cores, as PyTorch does
 * in bfloat16; norms, softmax and activations stay float32.
 */
public enum ComputeMode {
    FP32, BF16;

    /** "fp32" or "bf16" (any case), as --compute takes it. */
    public static ComputeMode parse(String s) {
        return switch (s == null ? "" : s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "fp32", "float32" -> FP32;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new JlensException("--compute \"" + s + "\" is not a compute mode; expected fp32 or bf16");
        };
    }

    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
