package dev.jlens.spark;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Sorts a prompt row into a good one (its token ids) or a bad one (a reason): a missing id, empty text, text
 * that encodes to no tokens, or more tokens than the model's context. The single-machine commands cut an
 * over-long prompt and warn; over a million prompts a warning is lost, so here it is a bad row unless the job
 * was asked to cut ({@code --truncate}, which cuts exactly as {@code jlens cache} does).
 */
final class PromptCheck {

    /** The side table of rows a job skipped: the row's id (may be null), the start of its text, and why. */
    static final StructType BAD_ROWS = new StructType()
            .add("id", DataTypes.StringType, true)
            .add("text", DataTypes.StringType, true)
            .add("reason", DataTypes.StringType, false);

    private static final int SHOWN_CHARS = 200;

    /** Either {@code ids} or {@code reason} is null. {@code text} is the stripped prompt. */
    record Checked(String id, String text, String label, int[] ids, String reason) {
        boolean good() {
            return reason == null;
        }

        Row badRow() {
            String shown = text == null ? null : text.length() <= SHOWN_CHARS ? text : text.substring(0, SHOWN_CHARS);
            return RowFactory.create(id, shown, reason);
        }
    }

    private PromptCheck() {
    }

    /** A row of {@link PromptTable#SCHEMA}, encoded as {@code jlens cache} encodes it. */
    static Checked check(HookedModel m, Row row, boolean truncate) {
        String id = row.getString(0), raw = row.getString(1), label = row.getString(2);
        String text = raw == null ? null : raw.strip();
        if (id == null || id.isBlank()) return new Checked(id, text, label, null, "missing id");
        if (text == null || text.isEmpty()) return new Checked(id, text, label, null, "empty text");
        int[] longer = {0};
        int[] ids;
        try {
            ids = m.encode(text, w -> longer[0] = 1);
        } catch (JlensException e) {
            return new Checked(id, text, label, null, e.getMessage());
        }
        if (longer[0] != 0 && !truncate) {
            return new Checked(id, text, label, null, "longer than the model's context of " + m.info().maxPositions()
                    + " tokens (--truncate cuts it as jlens cache does)");
        }
        return new Checked(id, text, label, ids, null);
    }
}
