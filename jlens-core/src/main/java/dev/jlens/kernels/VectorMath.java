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
 *
 * <p>Written for the JIT as much as for the reader: every constant is a ready vector (a broadcast per use
 * adds nodes until C2 stops inlining, and a vector that crosses a call it does not inline is boxed on the
 * heap, ten times slower), and each activation has its own loop with the arithmetic in its body.
 */
final class VectorMath {

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private static final float LOG2E = 1.44269504088896341f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer (its low mantissa bits). */
    private static final float ROUND_MAGIC = 12582912f;
    private static final int ROUND_MAGIC_BITS = 0x4B400000;
    /** 127.5 ln 2: keeps 2^n within the float exponent range (n ≤ 127). */
    private static final float EXP_HI = 88.3762626647949f;
    /** -126 ln 2: below it the result is flushed to zero instead of being computed as a subnormal. */
    private static final float EXP_LO = -87.3365447505531f;

    private static final FloatVector ONE = v(1f), TWO = v(2f), HALF = v(0.5f);
    // ln 2 split so that n·LN2_HI is exact for the n that occur (Cody–Waite)
    private static final FloatVector MINUS_LN2_HI = v(-0.693359375f), MINUS_LN2_LO = v(2.12194440e-4f);
    // Cephes expf: e^r ≈ 1 + r + r²·P(r) on |r| ≤ ln2/2
    private static final FloatVector P0 = v(1.9875691500e-4f), P1 = v(1.3981999507e-3f), P2 = v(8.3334519073e-3f),
            P3 = v(4.1665795894e-2f), P4 = v(1.6666665459e-1f), P5 = v(5.0000001201e-1f);
    // erf(x)/x = sum_k (-1)^k 2/sqrt(pi) x^{2k} / (k! (2k+1)), k = 0..10
    private static final FloatVector T0 = v(taylor(0)), T1 = v(taylor(1)), T2 = v(taylor(2)), T3 = v(taylor(3)),
            T4 = v(taylor(4)), T5 = v(taylor(5)), T6 = v(taylor(6)), T7 = v(taylor(7)), T8 = v(taylor(8)),
            T9 = v(taylor(9)), T10 = v(taylor(10));
    // Numerical Recipes erfcc: erfc(a) = t·exp(-a² + Q(t)), t = 1/(1 + a/2)
    private static final FloatVector Q0 = v(-1.26551223f), Q1 = v(1.00002368f), Q2 = v(0.37409196f),
            Q3 = v(0.09678418f), Q4 = v(-0.18628806f), Q5 = v(0.27886807f), Q6 = v(-1.13520398f),
            Q7 = v(1.48851587f), Q8 = v(-0.82215223f), Q9 = v(0.17087277f);
    private static final FloatVector GELU_CUBIC = v(0.044715f);

    private static final float SQRT1_2 = 0.70710678118654752f;
    /** Values per block of {@link #gelu}'s two loops (a multiple of every vector length; its scratch stays in L1). */
    private static final int GELU_BLOCK = 256;
    private static final float SQRT_2_OVER_PI = 0.7978845608028654f;

    private VectorMath() {
    }

    private static FloatVector v(float x) {
        return FloatVector.broadcast(S, x);
    }

    private static float taylor(int k) {
        double fact = 1;
        for (int i = 2; i <= k; i++) fact *= i;
        double c = 2.0 / Math.sqrt(Math.PI) / (fact * (2 * k + 1));
        return (float) (k % 2 == 0 ? c : -c);
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
        FloatVector r = n.fma(MINUS_LN2_HI, xc);
        r = n.fma(MINUS_LN2_LO, r);
        FloatVector p = P0.fma(r, P1).fma(r, P2).fma(r, P3).fma(r, P4).fma(r, P5);
        FloatVector y = p.fma(r.mul(r), r).add(ONE);
        IntVector ni = t.reinterpretAsInts().sub(ROUND_MAGIC_BITS);
        FloatVector scale = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return y.mul(scale).blend(0f, under);
    }

    /**
     * Applies act to x[from, to) in place. A partial last vector goes through the same loop on a
     * zero-padded copy, so its bits match the body's.
     */
    static void activate(Activation act, float[] x, int from, int to) {
        int bound = from + (to - from) / S.length() * S.length();
        loop(act, x, from, bound);
        if (bound < to) {
            float[] tail = new float[S.length()];
            System.arraycopy(x, bound, tail, 0, to - bound);
            loop(act, tail, 0, tail.length);
            System.arraycopy(tail, 0, x, bound, to - bound);
        }
    }

    private static void loop(Activation act, float[] x, int from, int to) {
        switch (act) {
            case GELU -> gelu(x, from, to);
            case GELU_TANH -> geluTanh(x, from, to, false);
            case GELU_FAST -> geluTanh(x, from, to, true);
            case RELU -> relu(x, from, to);
            case SILU -> silu(x, from, to);
        }
    }

    /**
     * x·Φ(x) = x/2 · (1 + erf(x/√2)), erf to about 2e-7 absolute: for |y| &lt; 1 the Taylor series to
     * y^21 (truncation below 2e-9); for 1 ≤ |y| &lt; 4, 1 − erfc with the Chebyshev fit of Numerical
     * Recipes' erfcc (fractional error below 1.2e-7, and erfc ≤ 0.16 there); beyond 4, ±1, as float
     * rounds erf(4) to 1. Both branches are computed and blended, so there is no per-lane branching.
     *
     * <p>Two loops over blocks of {@link #GELU_BLOCK} values, the first up to erfc's exponent and the second
     * from there, with t and the exponent passed through scratch arrays (exact, so the bits are those of one
     * loop). One loop holding all of it ran 2.3 times slower on our 2-core EPYC (27 µs against 11.5 µs for 8192
     * values, the width of Pythia-1.4B's MLP), though exp alone and the rest alone each ran at full speed:
     * C2 compiles the whole body worse than its halves.
     */
    private static void gelu(float[] x, int from, int to) {
        float[] ts = new float[GELU_BLOCK], args = new float[GELU_BLOCK];
        for (int b0 = from; b0 < to; b0 += GELU_BLOCK) {
            int b1 = Math.min(to, b0 + GELU_BLOCK);
            for (int i = b0; i < b1; i += S.length()) {
                FloatVector a = FloatVector.fromArray(S, x, i).mul(SQRT1_2).abs().min(4f);
                FloatVector t = ONE.div(a.fma(HALF, ONE));
                FloatVector q = Q9.fma(t, Q8).fma(t, Q7).fma(t, Q6).fma(t, Q5).fma(t, Q4).fma(t, Q3).fma(t, Q2)
                        .fma(t, Q1).fma(t, Q0);
                t.intoArray(ts, i - b0);
                q.sub(a.mul(a)).intoArray(args, i - b0);
            }
            for (int i = b0; i < b1; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector y = v.mul(SQRT1_2);
                FloatVector a = y.abs().min(4f);
                FloatVector z = a.mul(a);
                FloatVector small = T10.fma(z, T9).fma(z, T8).fma(z, T7).fma(z, T6).fma(z, T5).fma(z, T4).fma(z, T3)
                        .fma(z, T2).fma(z, T1).fma(z, T0).mul(a);
                FloatVector large = ONE.sub(FloatVector.fromArray(S, ts, i - b0).mul(exp(FloatVector.fromArray(S, args, i - b0))));
                FloatVector erfAbs = small.blend(large, a.compare(VectorOperators.GE, 1f));
                // erf is odd: copy the sign of y
                FloatVector erf = erfAbs.reinterpretAsInts().or(y.reinterpretAsInts().and(0x80000000)).reinterpretAsFloats();
                v.mul(HALF).mul(erf.add(ONE)).intoArray(x, i);
            }
        }
    }

    /**
     * The tanh forms: "fast" is HF's 0.5x(1+tanh(0.79788456x(1+0.044715x²))), the other
     * 0.5x(1+tanh(√(2/π)(x+0.044715x³))). tanh(u) = sign(u)(1 − 2/(e^{2|u|} + 1)), absolute error about
     * 1e-7, which GELU multiplies by x/2.
     */
    private static void geluTanh(float[] x, int from, int to, boolean fast) {
        for (int i = from; i < to; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            FloatVector u = fast
                    ? v.mul(0.7978845608f).mul(v.mul(v).fma(GELU_CUBIC, ONE))
                    : v.mul(v).mul(v).fma(GELU_CUBIC, v).mul(SQRT_2_OVER_PI);
            FloatVector au = u.abs().min(9f);
            FloatVector th = ONE.sub(TWO.div(exp(au.add(au)).add(ONE)));
            th = th.reinterpretAsInts().or(u.reinterpretAsInts().and(0x80000000)).reinterpretAsFloats();
            v.mul(HALF).mul(th.add(ONE)).intoArray(x, i);
        }
    }

    private static void relu(float[] x, int from, int to) {
        for (int i = from; i < to; i += S.length()) FloatVector.fromArray(S, x, i).max(0f).intoArray(x, i);
    }

    private static void silu(float[] x, int from, int to) {
        for (int i = from; i < to; i += S.length()) {
            FloatVector v = FloatVector.fromArray(S, x, i);
            v.div(exp(v.neg()).add(ONE)).intoArray(x, i);
        }
    }
}
