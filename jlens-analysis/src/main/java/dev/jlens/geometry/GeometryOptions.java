package dev.jlens.geometry;

import dev.jlens.JlensException;

/**
 * Settings of {@link GeometryAnalyzer}.
 *
 * @param bootstrap     bootstrap draws for the 95% intervals (0: no intervals)
 * @param permutations  label permutations for the p-values (0: no p-values)
 * @param seed          seed of every random choice; the layer index is mixed in per layer
 * @param cvFolds       folds of the stratified cross-validation of the linear probe (at least 2; lowered to the
 *                      size of the smaller class when that is smaller)
 * @param l2Penalty     λ of the probe's penalty (λ/2)‖w‖², i.e. scikit-learn's C = 1/λ
 * @param lengthControl also compute the metrics on a token-length-matched subsample (needs token lengths)
 * @param lengthCaliper largest token-length difference allowed within a matched pair (0: equal lengths only)
 */
public record GeometryOptions(int bootstrap, int permutations, long seed, int cvFolds, double l2Penalty,
                              boolean lengthControl, int lengthCaliper) {

    public GeometryOptions {
        if (bootstrap < 0) throw new JlensException("bootstrap draws = " + bootstrap + ": expected 0 or more");
        if (permutations < 0) {
            throw new JlensException("permutations = " + permutations + ": expected 0 or more");
        }
        if (cvFolds < 2) throw new JlensException("cv folds = " + cvFolds + ": expected at least 2");
        if (!(l2Penalty > 0) || Double.isInfinite(l2Penalty)) {
            throw new JlensException("probe L2 penalty = " + l2Penalty + ": expected a finite number > 0");
        }
        if (lengthCaliper < 0) {
            throw new JlensException("length caliper = " + lengthCaliper + ": expected 0 or more tokens");
        }
    }

    /** Exact length matching (caliper 0). */
    public GeometryOptions(int bootstrap, int permutations, long seed, int cvFolds, double l2Penalty,
                           boolean lengthControl) {
        this(bootstrap, permutations, seed, cvFolds, l2Penalty, lengthControl, 0);
    }

    /** 1000 bootstrap draws, 1000 permutations, seed 42, 5 folds, λ = 1, length control on. */
    public static GeometryOptions defaults() {
        return new GeometryOptions(1000, 1000, 42, 5, 1.0, true);
    }
}
