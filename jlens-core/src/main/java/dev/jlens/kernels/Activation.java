package dev.jlens.kernels;

import dev.jlens.JlensException;

/** The MLP nonlinearities Hugging Face configs name in {@code hidden_act}. */
public enum Activation {
    /** Exact GELU, x·Φ(x) with the error function (HF "gelu"). */
    GELU,
    /** Tanh approximation (HF "gelu_new", "gelu_pytorch_tanh"). */
    GELU_TANH,
    /** HF "gelu_fast": the same tanh form written as 0.5x(1+tanh(0.79788456x(1+0.044715x²))). */
    GELU_FAST,
    RELU,
    /** x·sigmoid(x) (HF "silu", "swish"), used gated in SwiGLU. */
    SILU;

    public static Activation fromConfig(String name, String where) {
        return switch (name) {
            case "gelu" -> GELU;
            case "gelu_new", "gelu_pytorch_tanh" -> GELU_TANH;
            case "gelu_fast" -> GELU_FAST;
            case "relu" -> RELU;
            case "silu", "swish" -> SILU;
            default -> throw new JlensException(where + ": hidden_act \"" + name
                    + "\" is not supported; expected gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, relu or silu");
        };
    }

    public float apply(float x) {
        return switch (this) {
            case GELU -> (float) (0.5 * x * (1.0 + erf(x / Math.sqrt(2.0))));
            case GELU_TANH -> (float) (0.5 * x * (1.0 + Math.tanh(Math.sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x))));
            case GELU_FAST -> (float) (0.5 * x * (1.0 + Math.tanh(0.7978845608 * x * (1.0 + 0.044715 * x * x))));
            case RELU -> Math.max(0f, x);
            case SILU -> (float) (x / (1.0 + Math.exp(-x)));
        };
    }

    /**
     * The error function to about 1e-15 relative: Java has none, and float32 GELU parity with PyTorch needs
     * better than the usual 1e-7 approximations. W. J. Cody's rational Chebyshev approximations (1969),
     * as used by most libm implementations.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        if (ax <= 0.46875) {
            double t = x * x;
            double num = (((0.1857777061846031526730 * t + 3.161123743870565596947) * t + 113.8641541510501556495) * t
                    + 377.4852376853020208137) * t + 3209.377589138469472562;
            double den = (((t + 23.60129095234412093499) * t + 244.0246379344441733056) * t
                    + 1282.616526077372275645) * t + 2844.236833439170622273;
            return x * num / den;
        }
        double erfc;
        if (ax < 4.0) {
            double num = (((((((2.153115354744038463e-8 * ax + 0.5641884969886700891) * ax + 8.883149794388375941) * ax
                    + 66.11919063714162948) * ax + 298.6351381974001311) * ax + 881.9522212417690904) * ax
                    + 1712.047612634070583) * ax + 2051.078377826071465) * ax + 1230.339354797997253;
            double den = (((((((ax + 15.74492611070983473) * ax + 117.6939508913124993) * ax + 537.1811018620098575) * ax
                    + 1621.389574566690189) * ax + 3290.799235733459627) * ax + 4362.619090143247158) * ax
                    + 3439.367674143721637) * ax + 1230.339354803749420;
            erfc = Math.exp(-ax * ax) * num / den;
        } else {
            double z = 1.0 / (ax * ax);
            double num = ((((0.01631538713730709856 * z + 0.3053266349612323440) * z + 0.3603448999498044394) * z
                    + 0.1257817261112292462) * z + 0.01608378514874227663) * z + 0.0006587491615298378;
            double den = ((((z + 2.568520192289822421) * z + 1.872952849923460244) * z + 0.5279051029514284122) * z
                    + 0.06051834131244131912) * z + 0.002335204976268691854;
            erfc = Math.exp(-ax * ax) / ax * (0.5641895835477562869 - z * num / den);
        }
        return x > 0 ? 1.0 - erfc : erfc - 1.0;
    }
}
