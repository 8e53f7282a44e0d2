package dev.jlens.hooks;

/**
 * A named place in the forward pass, e.g. {@code blocks.3.hook_resid_post}. {@code layer} is -1 for points
 * outside the blocks (embedding, final norm), which sort before (embedding) or after (final norm) all blocks
 * via {@link #depth()}.
 */
public record HookPoint(String name, int layer, HookKind kind) {

    public static HookPoint of(HookKind kind, int layer) {
        return new HookPoint(kind.nameFor(layer), kind.perLayer() ? layer : -1, kind);
    }

    public static HookPoint global(HookKind kind) {
        return new HookPoint(kind.suffix(), -1, kind);
    }

    /**
     * The last block that must run for this point to be reached: -1 for the embedding, the block index for
     * block hooks, and {@code Integer.MAX_VALUE} for the final norm (all blocks).
     */
    public int depth() {
        return switch (kind) {
            case EMBED, POS_EMBED -> -1;
            case LN_FINAL_SCALE, LN_FINAL_NORMALIZED -> Integer.MAX_VALUE;
            default -> layer;
        };
    }
}
