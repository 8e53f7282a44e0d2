package dev.jlens.hooks;

/**
 * Where in the forward pass a hook sits; the suffix is the TransformerLens name. Shapes are per packed batch
 * of T tokens (see the runner's Javadoc): most kinds are {@link Layout#TOKENS} ([T, ...], one row group per
 * token), attention scores and patterns are {@link Layout#ATTENTION_MAP} ([heads, q, k] per sequence,
 * concatenated).
 */
public enum HookKind {
    EMBED("hook_embed", false),
    POS_EMBED("hook_pos_embed", false),
    RESID_PRE("hook_resid_pre", true),
    ATTN_Q("attn.hook_q", true),
    ATTN_K("attn.hook_k", true),
    ATTN_V("attn.hook_v", true),
    ATTN_ROT_Q("attn.hook_rot_q", true),
    ATTN_ROT_K("attn.hook_rot_k", true),
    ATTN_SCORES("attn.hook_attn_scores", true, Layout.ATTENTION_MAP),
    ATTN_PATTERN("attn.hook_pattern", true, Layout.ATTENTION_MAP),
    ATTN_Z("attn.hook_z", true),
    ATTN_RESULT("attn.hook_result", true),
    ATTN_OUT("hook_attn_out", true),
    RESID_MID("hook_resid_mid", true),
    MLP_PRE("mlp.hook_pre", true),
    MLP_PRE_LINEAR("mlp.hook_pre_linear", true),
    MLP_POST("mlp.hook_post", true),
    MLP_OUT("hook_mlp_out", true),
    RESID_POST("hook_resid_post", true),
    LN_FINAL_SCALE("ln_final.hook_scale", false),
    LN_FINAL_NORMALIZED("ln_final.hook_normalized", false);

    /** How a hook's values are laid out over the tokens of a packed batch. */
    public enum Layout {
        /** [T, ...]: the leading dimension is the token; pooling over tokens is meaningful. */
        TOKENS,
        /** [heads, q, k] blocks, one per sequence, one after another: kept whole per prompt, never pooled. */
        ATTENTION_MAP
    }

    private final String suffix;
    private final boolean perLayer;
    private final Layout layout;

    HookKind(String suffix, boolean perLayer) {
        this(suffix, perLayer, Layout.TOKENS);
    }

    HookKind(String suffix, boolean perLayer, Layout layout) {
        this.suffix = suffix;
        this.perLayer = perLayer;
        this.layout = layout;
    }

    public String suffix() {
        return suffix;
    }

    public boolean perLayer() {
        return perLayer;
    }

    public Layout layout() {
        return layout;
    }

    /** Attention scores and patterns: kept per prompt as [heads, q, k] with {@code --pool all} only. */
    public boolean isAttentionMap() {
        return layout == Layout.ATTENTION_MAP;
    }

    /**
     * Whether the hook carries one d_model-wide vector per token (embeddings, residual stream, branch outputs,
     * the final norm's normalised input): the activations a direction lives in.
     */
    public boolean residualWidth() {
        return switch (this) {
            case EMBED, POS_EMBED, RESID_PRE, ATTN_OUT, RESID_MID, MLP_OUT, RESID_POST, LN_FINAL_NORMALIZED -> true;
            default -> false;
        };
    }

    public String nameFor(int layer) {
        return perLayer ? "blocks." + layer + "." + suffix : suffix;
    }
}
