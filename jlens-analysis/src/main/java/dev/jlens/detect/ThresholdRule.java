package dev.jlens.detect;

import dev.jlens.JlensException;

import java.util.Locale;

/**
 * How the flagging threshold is chosen on the validation split: Youden's J (the cut that maximises
 * TPR − FPR), or the most sensitive cut whose validation false-positive rate stays at or below a bound, which
 * is what a guard with a false-alarm budget wants.
 *
 * @param maxFpr the bound, or NaN for Youden's J
 */
public record ThresholdRule(double maxFpr) {

    public ThresholdRule {
        if (!Double.isNaN(maxFpr) && !(maxFpr >= 0 && maxFpr < 1)) {
            throw new JlensException("threshold false-positive bound " + maxFpr + ": expected a number in [0, 1)");
        }
    }

    public static ThresholdRule youden() {
        return new ThresholdRule(Double.NaN);
    }

    public static ThresholdRule maxFpr(double fpr) {
        return new ThresholdRule(fpr);
    }

    public boolean isYouden() {
        return Double.isNaN(maxFpr);
    }

    public String describe() {
        return isYouden() ? "youden" : String.format(Locale.ROOT, "val_fpr<=%.4g", maxFpr);
    }
}
