package dev.jlens.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float transcendental functions on whole vectors, built only from add, multiply, fma, divide, compare and
 * blend. The Vector API's own EXP/TANH are not used on purpose: they are intrinsified to a vendor math
 * library in compiled code but fall back to {@code Math} lane by lane in the interpreter, so the same
 * input could give different bits before and after JIT compilation; these give the same bits always.
 */
final class VectorMath {

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer (its low mantissa bits). */
    private static final float ROUND_MAGIC = 12582912f;
    private static final int ROUND_MAGIC_BITS = 0x4B400000;
    /** 127.5 ln 2: keeps 2^n within the float exponent range (n ≤ 127). */
    private static final float EXP_HI = 88.3762626647949f;
    /** -126 ln 2: below it the result is flushed to zero instead of being computed as a subnormal. */
    private static final float EXP_LO = -87.3365447505531f;

    private VectorMath() {
    }

    private static FloatVector bc(float v) {
        return FloatVector.broadcast(S, v);
    }

    /**
     * e^x to about 1 ulp for x in [-87.3, 88.3]; 0 below, e^88.38 above. Cody–Waite reduction
     * x = n ln 2 + r with |r| ≤ ln2/2, then the Cephes degree-6 polynomial for e^r.
     */
    static FloatVector exp(FloatVector x) {
        VectorMask<Float> under = x.compare(VectorOperators.LT, EXP_LO);
        FloatVector xc = x.min(EXP_HI).max(EXP_LO);
        FloatVector t = xc.fma(LOG2E, ROUND_MAGIC);
        FloatVector n = t.sub(ROUND_MAGIC);
        FloatVector r = n.fma(bc(-LN2_HI), xc);
        r = n.fma(bc(-LN2_LO), r);
        FloatVector p = FloatVector.broadcast(S, 1.9875691500e-4f);
        p = p.fma(r, bc(1.3981999507e-3f));
        p = p.fma(r, bc(8.3334519073e-3f));
        p = p.fma(r, bc(4.1665795894e-2f));
        p = p.fma(r, bc(1.6666665459e-1f));
        p = p.fma(r, bc(5.0000001201e-1f));
        FloatVector y = p.fma(r.mul(r), r).add(1f);
        IntVector ni = t.reinterpretAsInts().sub(ROUND_MAGIC_BITS);
        FloatVector scale = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return y.mul(scale).blend(0f, under);
    }

    /** Coefficients of erf(x)/x = sum_k (-1)^k 2/sqrt(pi) x^{2k} / (k! (2k+1)), highest first. */
    private static final float[] ERF_TAYLOR = taylor();

    private static float[] taylor() {
        int terms = 11;
        float[] c = new float[terms];
        double fact = 1;
        for (int k = 0; k < terms; k++) {
            if (k > 0) fact *= k;
            double v = 2.0 / Math.sqrt(Math.PI) / (fact * (2 * k + 1));
            c[terms - 1 - k] = (float) (k % 2 == 0 ? v : -v);
        }
        return c;
    }

    /**
     * erf(x) to about 2e-7 absolute. |x| &lt; 1: the Taylor series to x^21 (truncation below 2e-9);
     * 1 ≤ |x| &lt; 4: 1 − erfc with the Chebyshev fit of Numerical Recipes' erfcc (fractional error
     * below 1.2e-7, and erfc ≤ 0.16 there); beyond 4, ±1, as float rounds erf(4) to 1.
     */
    static FloatVector erf(FloatVector x) {
        FloatVector a = x.abs().min(4f);
        FloatVector z = a.mul(a);
        FloatVector p = FloatVector.broadcast(S, ERF_TAYLOR[0]);
        for (int i = 1; i < ERF_TAYLOR.length; i++) p = p.fma(z, bc(ERF_TAYLOR[i]));
        FloatVector small = p.mul(a);

        FloatVector t = FloatVector.broadcast(S, 1f).div(a.fma(0.5f, 1f));
        FloatVector q = FloatVector.broadcast(S, 0.17087277f);
        q = q.fma(t, bc(-0.82215223f));
        q = q.fma(t, bc(1.48851587f));
        q = q.fma(t, bc(-1.13520398f));
        q = q.fma(t, bc(0.27886807f));
        q = q.fma(t, bc(-0.18628806f));
        q = q.fma(t, bc(0.09678418f));
        q = q.fma(t, bc(0.37409196f));
        q = q.fma(t, bc(1.00002368f));
        q = q.fma(t, bc(-1.26551223f));
        FloatVector erfc = t.mul(exp(q.sub(z)));
        FloatVector large = FloatVector.broadcast(S, 1f).sub(erfc);

        FloatVector r = small.blend(large, a.compare(VectorOperators.GE, 1f));
        // copy the sign of x (erf is odd)
        IntVector sign = x.reinterpretAsInts().and(0x80000000);
        return r.reinterpretAsInts().or(sign).reinterpretAsFloats();
    }

    /** tanh through e^{2|y|}: absolute error about 1e-7, which the GELU forms multiply by x/2. */
    static FloatVector tanh(FloatVector y) {
        FloatVector a = y.abs().min(9f);
        FloatVector e = exp(a.add(a));
        FloatVector r = FloatVector.broadcast(S, 1f).sub(FloatVector.broadcast(S, 2f).div(e.add(1f)));
        IntVector sign = y.reinterpretAsInts().and(0x80000000);
        return r.reinterpretAsInts().or(sign).reinterpretAsFloats();
    }

    private static final float SQRT1_2 = 0.70710678118654752f;
    private static final float SQRT_2_OVER_PI = 0.7978845608028654f;

    static FloatVector apply(Activation act, FloatVector x) {
        return switch (act) {
            case GELU -> x.mul(0.5f).mul(erf(x.mul(SQRT1_2)).add(1f));
            case GELU_TANH -> {
                FloatVector inner = x.mul(x).mul(x).fma(bc(0.044715f), x).mul(SQRT_2_OVER_PI);
                yield x.mul(0.5f).mul(tanh(inner).add(1f));
            }
            case GELU_FAST -> {
                FloatVector inner = x.mul(0.7978845608f).mul(x.mul(x).fma(0.044715f, 1f));
                yield x.mul(0.5f).mul(tanh(inner).add(1f));
            }
            case RELU -> x.max(0f);
            case SILU -> x.div(exp(x.neg()).add(1f));
        };
    }
}
