package dev.jlens.stats;

import java.util.Arrays;

/**
 * Binary logistic regression with an L2 penalty: minimises Σᵢ log(1 + exp(−yᵢ(w·xᵢ + b))) + (λ/2)‖w‖², the
 * intercept b unpenalised; the same objective as scikit-learn's LogisticRegression(C = 1/λ). Written by hand
 * because no small, well-kept Java library fits a penalised logistic model on dense double rows; the solver is
 * L-BFGS, whose line search costs O(n) per trial because the margins along the search direction are computed
 * once per iteration.
 */
public final class LogisticRegression {

    private static final int HISTORY = 10;

    private LogisticRegression() {
    }

    /** A fitted model; {@code converged} is false when the iteration cap was hit first. */
    public record Model(double[] weights, double intercept, int iterations, boolean converged) {
        public double score(double[] x) {
            return LinAlg.dot(weights, x) + intercept;
        }
    }

    /**
     * Fits on the given rows of x, stopping when the gradient norm falls to 10⁻⁵ of its starting value (or of 1,
     * if larger). Scores then agree with the exact optimum to about 10⁻⁴ of their spread, plenty for an AUROC.
     *
     * @param x        samples (rows), all of one length
     * @param positive label per row of x
     * @param rows     which rows to train on
     * @param lambda   the L2 penalty λ &gt; 0
     */
    public static Model fit(double[][] x, boolean[] positive, int[] rows, double lambda) {
        return fit(x, positive, rows, lambda, 1e-5, 2000);
    }

    public static Model fit(double[][] x, boolean[] positive, int[] rows, double lambda, double relTol, int maxIter) {
        int n = rows.length, p = x[rows[0]].length;
        double[] y = new double[n];
        for (int i = 0; i < n; i++) y[i] = positive[rows[i]] ? 1 : -1;
        double[] w = new double[p];
        double b = 0;
        double[] margin = new double[n];
        double[] gw = new double[p];
        double[] g = new double[1];   // gradient for the intercept, boxed so gradient() can write it
        double f = gradient(x, rows, y, margin, w, lambda, gw, g);
        double gb = g[0];
        double g0 = Math.sqrt(LinAlg.dot(gw, gw) + gb * gb);
        double[][] sHist = new double[HISTORY][], yHist = new double[HISTORY][];
        double[] rho = new double[HISTORY];
        int stored = 0, head = 0;
        double[] dm = new double[n];
        for (int iter = 0; iter < maxIter; iter++) {
            double gn = Math.sqrt(LinAlg.dot(gw, gw) + gb * gb);
            if (gn <= relTol * Math.max(1, g0)) return new Model(w, b, iter, true);
            // Two-loop recursion on the stacked vector (w, b).
            double[] q = new double[p + 1];
            for (int j = 0; j < p; j++) q[j] = -gw[j];
            q[p] = -gb;
            double[] alpha = new double[HISTORY];
            for (int k = 0; k < stored; k++) {
                int h = Math.floorMod(head - 1 - k, HISTORY);
                alpha[h] = rho[h] * LinAlg.dot(sHist[h], q);
                LinAlg.axpy(-alpha[h], yHist[h], q);
            }
            double scale;
            if (stored > 0) {
                int last = Math.floorMod(head - 1, HISTORY);
                scale = LinAlg.dot(sHist[last], yHist[last]) / LinAlg.dot(yHist[last], yHist[last]);
            } else {
                scale = 1 / gn;
            }
            for (int j = 0; j <= p; j++) q[j] *= scale;
            for (int k = stored - 1; k >= 0; k--) {
                int h = Math.floorMod(head - 1 - k, HISTORY);
                double beta = rho[h] * LinAlg.dot(yHist[h], q);
                LinAlg.axpy(alpha[h] - beta, sHist[h], q);
            }
            double[] dw = Arrays.copyOf(q, p);
            double db = q[p];
            double slope = LinAlg.dot(gw, dw) + gb * db;
            if (!(slope < 0)) {   // not a descent direction: drop the curvature history and use steepest descent
                stored = 0;
                for (int j = 0; j < p; j++) dw[j] = -gw[j] / gn;
                db = -gb / gn;
                slope = -gn;
            }
            for (int i = 0; i < n; i++) dm[i] = LinAlg.dot(dw, x[rows[i]]) + db;
            double ww = LinAlg.dot(w, w), wd = LinAlg.dot(w, dw), dd = LinAlg.dot(dw, dw);
            double step = 1;
            double fNew = Double.NaN;
            for (int tries = 0; tries < 60; tries++) {
                double loss = 0;
                for (int i = 0; i < n; i++) loss += softplus(-y[i] * (margin[i] + step * dm[i]));
                fNew = loss + 0.5 * lambda * (ww + 2 * step * wd + step * step * dd);
                if (fNew <= f + 1e-4 * step * slope) break;
                step *= 0.5;
            }
            // No decrease even for tiny steps: the objective is flat to rounding. For this smooth convex objective
            // that happens only close to the optimum, so report convergence if the gradient is at least small.
            if (!(fNew < f)) return new Model(w, b, iter, gn <= 1e-3 * Math.max(1, g0));
            double[] s = new double[p + 1];
            for (int j = 0; j < p; j++) {
                s[j] = step * dw[j];
                w[j] += s[j];
            }
            s[p] = step * db;
            b += s[p];
            for (int i = 0; i < n; i++) margin[i] += step * dm[i];
            double[] gwOld = gw.clone();
            double gbOld = gb;
            f = gradient(x, rows, y, margin, w, lambda, gw, g);
            gb = g[0];
            double[] yv = new double[p + 1];
            for (int j = 0; j < p; j++) yv[j] = gw[j] - gwOld[j];
            yv[p] = gb - gbOld;
            double sy = LinAlg.dot(s, yv);
            if (sy > 1e-12 * LinAlg.norm(s) * LinAlg.norm(yv)) {
                sHist[head] = s;
                yHist[head] = yv;
                rho[head] = 1 / sy;
                head = (head + 1) % HISTORY;
                stored = Math.min(stored + 1, HISTORY);
            }
        }
        return new Model(w, b, maxIter, false);
    }

    /** Returns the objective at the current margins and writes the gradient into gw and gb[0]. */
    private static double gradient(double[][] x, int[] rows, double[] y, double[] margin, double[] w, double lambda,
                                   double[] gw, double[] gb) {
        int n = rows.length;
        double loss = 0, sumR = 0;
        for (int j = 0; j < gw.length; j++) gw[j] = lambda * w[j];
        for (int i = 0; i < n; i++) {
            double[] xi = x[rows[i]];
            double z = -y[i] * margin[i];
            loss += softplus(z);
            double r = -y[i] * sigmoid(z);
            sumR += r;
            LinAlg.axpy(r, xi, gw);
        }
        gb[0] = sumR;
        return loss + 0.5 * lambda * LinAlg.dot(w, w);
    }

    static double softplus(double z) {
        return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    static double sigmoid(double z) {
        if (z >= 0) return 1 / (1 + Math.exp(-z));
        double e = Math.exp(z);
        return e / (1 + e);
    }
}
