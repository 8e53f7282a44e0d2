package dev.jlens.io;

import dev.jlens.JlensException;

/** Element types found in checkpoints. Only the float types are weights; the rest appear in buffers and ids. */
public enum DType {
    F64(8), F32(4), F16(2), BF16(2), I64(8), I32(4), I16(2), I8(1), U8(1), BOOL(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public boolean isFloat() {
        return this == F64 || this == F32 || this == F16 || this == BF16;
    }

    /** Parses a safetensors dtype string ("F32", "BF16", ...). */
    public static DType fromSafetensors(String s, String where) {
        return switch (s) {
            case "F64" -> F64;
            case "F32" -> F32;
            case "F16" -> F16;
            case "BF16" -> BF16;
            case "I64" -> I64;
            case "I32" -> I32;
            case "I16" -> I16;
            case "I8" -> I8;
            case "U8" -> U8;
            case "BOOL" -> BOOL;
            default -> throw new JlensException(where + ": unknown dtype \"" + s
                    + "\"; expected one of F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL");
        };
    }

    public String safetensorsName() {
        return name();
    }
}
