package dev.jlens.model;

import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

/**
 * Where one forward call meets its hooks, shared by every runner: a backend tensor is shown to the hooks on a
 * point as a host tensor only when a hook is registered there, and what they return (or write in place) is
 * taken back into the backend tensor.
 */
public record HookSite(Backend backend, Hooks hooks, TokenBatch batch) {

    public boolean wants(HookPoint point) {
        return point != null && hooks.wants(point);
    }

    /** Shows t to the hooks on {@code point} as [rows, cols] (or {@code shape}) and takes back what they return. */
    public void fire(HookPoint point, DeviceTensor t, int... shape) {
        if (!wants(point)) return;
        FloatTensor host = backend.toHost(t, shape.length == 0 ? new int[]{t.rows(), t.cols()} : shape);
        backend.fromHost(hooks.fire(point, host, batch), t);
    }
}
