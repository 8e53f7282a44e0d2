package dev.jlens.hooks;

/** Where in the forward pass a hook sits; the suffix is the TransformerLens name. */
public enum HookKind {
    EMBED("hook_embed", false),
    POS_EMBED("hook_pos_embed", false),
    RESID_PRE("hook_resid_pre", true),
    ATTN_PATTERN("attn.hook_pattern", true),
    ATTN_OUT("hook_attn_out", true),
    RESID_MID("hook_resid_mid", true),
    MLP_OUT("hook_mlp_out", true),
    RESID_POST("hook_resid_post", true),
    LN_FINAL_SCALE("ln_final.hook_scale", false),
    LN_FINAL_NORMALIZED("ln_final.hook_normalized", false);

    private final String suffix;
    private final boolean perLayer;

    HookKind(String suffix, boolean perLayer) {
        this.suffix = suffix;
        this.perLayer = perLayer;
    }

    public String suffix() {
        return suffix;
    }

    public boolean perLayer() {
        return perLayer;
    }

    public String nameFor(int layer) {
        return perLayer ? "blocks." + layer + "." + suffix : suffix;
    }
}
