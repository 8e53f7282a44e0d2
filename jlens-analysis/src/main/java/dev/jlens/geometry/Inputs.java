package dev.jlens.geometry;

import dev.jlens.JlensException;

/** Input checks; every message says which set, which row or dimension, and what was expected. */
final class Inputs {

    private Inputs() {
    }

    /**
     * Checks a [prompts][d] matrix and returns d.
     *
     * @param expectD  the width every row must have, or -1 to take it from row 0
     * @param minRows  fewest prompts accepted
     */
    static int matrix(double[][] x, String what, String where, int expectD, String widthSource, int minRows) {
        if (x == null) throw new JlensException(what + " (" + where + "): missing");
        if (x.length < minRows) {
            throw new JlensException(what + " (" + where + "): " + x.length + " prompt" + (x.length == 1 ? "" : "s")
                    + ", need at least " + minRows);
        }
        int d = expectD;
        for (int i = 0; i < x.length; i++) {
            double[] row = x[i];
            if (row == null) throw new JlensException(what + " (" + where + "): row " + i + " is missing");
            if (d < 0) {
                d = row.length;
                if (d == 0) throw new JlensException(what + " (" + where + "): rows have no dimensions");
                widthSource = "row 0 of the same set";
            } else if (row.length != d) {
                throw new JlensException(what + " (" + where + "): row " + i + " has " + row.length
                        + " dimensions, expected " + d + " (the width of " + widthSource + ")");
            }
            for (int j = 0; j < row.length; j++) {
                if (!Double.isFinite(row[j])) {
                    throw new JlensException(what + " (" + where + "): row " + i + ", dimension " + j + " is "
                            + row[j] + "; activations must be finite numbers");
                }
            }
        }
        return d;
    }

    /** Checks the token lengths; returns false when neither class has any. */
    static boolean lengths(int[] lengthsA, int[] lengthsB, int nA, int nB, String where) {
        if (lengthsA == null && lengthsB == null) return false;
        if (lengthsA == null || lengthsB == null) {
            throw new JlensException("token lengths (" + where + "): given for class " + (lengthsA == null ? "B" : "A")
                    + " only; give them for both classes or for neither");
        }
        check(lengthsA, nA, "A", where);
        check(lengthsB, nB, "B", where);
        return true;
    }

    private static void check(int[] lengths, int n, String cls, String where) {
        if (lengths.length != n) {
            throw new JlensException("token lengths of class " + cls + " (" + where + "): " + lengths.length
                    + " values for " + n + " prompts");
        }
        for (int i = 0; i < n; i++) {
            if (lengths[i] < 0) {
                throw new JlensException("token length of class " + cls + " prompt " + i + " (" + where + ") is "
                        + lengths[i] + "; expected 0 or more");
            }
        }
    }
}
