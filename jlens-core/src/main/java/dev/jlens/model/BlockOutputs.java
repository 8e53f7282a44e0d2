package dev.jlens.model;

import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;

/**
 * Where one forward pass writes each block's attention output, MLP output, mid-block and post-block residual.
 * An output a hook is on gets a fresh array, since the hook may keep the tensor it is given; every other one
 * goes to a buffer reused from block to block. Without this a 512-token Pythia-1.4B forward allocates ~300 MB
 * of arrays that die one block later, and the JVM answers that by growing its heap (docs/PERFORMANCE.md).
 * One instance per forward call, so concurrent forwards on the same model share nothing.
 */
public final class BlockOutputs {

    private final int size;
    private float[] attn, mlp, mid;
    private final float[][] resid = new float[2][];

    /** @param size floats in one output: tokens × d_model */
    public BlockOutputs(int size) {
        this.size = size;
    }

    public float[] attnOut(boolean hooked) {
        if (hooked) return new float[size];
        return attn == null ? attn = new float[size] : attn;
    }

    public float[] mlpOut(boolean hooked) {
        if (hooked) return new float[size];
        return mlp == null ? mlp = new float[size] : mlp;
    }

    public float[] residMid(boolean hooked) {
        if (hooked) return new float[size];
        return mid == null ? mid = new float[size] : mid;
    }

    /**
     * The array for the residual stream after a block, computed from {@code current}: fresh when a hook sees
     * it (this block's {@code residPost}, or {@code nextResidPre}, the next block's resid_pre, null after the
     * last block run); otherwise it alternates between two buffers and is never {@code current} itself.
     */
    public float[] nextResid(Hooks hooks, HookPoint residPost, HookPoint nextResidPre, float[] current) {
        if (hooks.wants(residPost) || (nextResidPre != null && hooks.wants(nextResidPre))) return new float[size];
        int i = current == resid[0] ? 1 : 0;
        return resid[i] == null ? resid[i] = new float[size] : resid[i];
    }
}
