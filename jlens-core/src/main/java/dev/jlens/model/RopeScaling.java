package dev.jlens.model;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jlens.JlensException;
import dev.jlens.kernels.RotaryEmbedding;

/**
 * RoPE inverse frequencies with config.json's {@code rope_scaling}, as HF's modeling_rope_utils computes them
 * (in float32, whose rounding parity is measured against). Shared by every rotary family, so a family file
 * only says which base and which fields apply.
 */
public final class RopeScaling {
    private RopeScaling() {
    }

    /** Half-split rotary over {@code rotaryDims} with base rope_theta (default 10000) and rope_scaling applied. */
    public static RotaryEmbedding halfSplit(ModelConfig cfg, int rotaryDims) {
        return new RotaryEmbedding(rotaryDims, invFreq(cfg, rotaryDims), RotaryEmbedding.Layout.HALF_SPLIT);
    }

    /** The frequencies for rope_theta (default 10000) and rope_scaling of config.json. */
    public static float[] invFreq(ModelConfig cfg, int rotaryDims) {
        return invFreq(cfg, rotaryDims, cfg.getDouble("rope_theta", 10000), cfg.json().get("rope_scaling"));
    }

    /**
     * "linear" divides every frequency by factor (the same as dividing positions by it); "llama3" (Llama 3.1)
     * leaves short wavelengths alone, divides long ones by factor and blends in between; "dynamic" NTK changes
     * nothing until a sequence outgrows max_position_embeddings, which jlens does not run. Anything else is a
     * clear error naming the field, never wrong numbers.
     */
    public static float[] invFreq(ModelConfig cfg, int rotaryDims, double base, JsonNode rs) {
        float[] inv = RotaryEmbedding.defaultInvFreq(rotaryDims, base);
        if (rs == null || rs.isNull()) return inv;
        if (!rs.isObject()) throw cfg.invalid("rope_scaling", "an object with rope_type and factor, or null");
        JsonNode typeNode = rs.has("rope_type") ? rs.get("rope_type") : rs.get("type");
        String type = typeNode == null ? "default" : typeNode.asText();
        switch (type) {
            case "default", "dynamic" -> {
                return inv;
            }
            case "linear" -> {
                float factor = (float) field(cfg, rs, "factor");
                for (int i = 0; i < inv.length; i++) inv[i] = inv[i] / factor;
                return inv;
            }
            case "llama3" -> {
                float factor = (float) field(cfg, rs, "factor");
                double low = field(cfg, rs, "low_freq_factor");
                double high = field(cfg, rs, "high_freq_factor");
                double oldContext = field(cfg, rs, "original_max_position_embeddings");
                if (high <= low) {
                    throw new JlensException(cfg.file() + ": rope_scaling.high_freq_factor " + high
                            + " must be greater than low_freq_factor " + low);
                }
                float lowFreqWavelen = (float) (oldContext / low), highFreqWavelen = (float) (oldContext / high);
                for (int i = 0; i < inv.length; i++) {
                    float wavelen = (float) (2 * Math.PI) / inv[i];
                    if (wavelen < highFreqWavelen) continue;
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / factor;
                    } else {
                        float smooth = ((float) oldContext / wavelen - (float) low) / (float) (high - low);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }
                }
                return inv;
            }
            default -> throw new JlensException(cfg.file() + ": rope_scaling type \"" + type
                    + "\" is not supported; jlens knows linear, llama3 and dynamic (within the context)");
        }
    }

    private static double field(ModelConfig cfg, JsonNode rs, String field) {
        JsonNode n = rs.get(field);
        if (n == null || !n.isNumber() || n.asDouble() <= 0) {
            throw new JlensException(cfg.file() + ": rope_scaling." + field + " is " + n + "; expected a positive number");
        }
        return n.asDouble();
    }
}
