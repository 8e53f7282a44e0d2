package dev.jlens.model;

import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.tensor.FloatTensor;

/**
 * How a causal model reads its residual stream out as logits: the final norm (LayerNorm or RMSNorm, its
 * weight and bias) and the unembedding, with Gemma 2's final soft-cap. The instruments use it to read
 * earlier layers the same way (TransformerLens' {@code accumulated_resid(apply_ln=True)} and
 * {@code decompose_resid}): {@link #logits} runs the very operations of the forward pass, so the last
 * layer's residual gives the model's own logits bit for bit.
 * <pre>{@code
 * Readout r = model.model().readout();
 * FloatTensor logits = r.logits(residPost);            // [n, vocab]: final norm with each row's own statistics
 * float[] scale = r.scale(residPost);                   // ln_final.hook_scale of each row
 * FloatTensor other = r.logits(r.normalizeWith(earlierResid, scale)); // an earlier layer with the final scale
 * }</pre>
 *
 * @param layerNorm    LayerNorm (centres, then divides by the standard deviation) or RMSNorm
 * @param onePlus      Gemma's RMSNorm multiplies by (1 + weight)
 * @param normBias     null for RMSNorm
 * @param finalSoftcap 0 when the logits are not soft-capped
 */
public record Readout(Backend backend, boolean layerNorm, float eps, boolean onePlus, float[] normWeight, float[] normBias,
                      WeightMatrix unembed, float finalSoftcap) {

    public int dModel() {
        return unembed.cols();
    }

    public int vocab() {
        return unembed.rows();
    }

    /** Logits of residual rows [n, d] through the final norm with each row's own statistics, as the model computes them. */
    public FloatTensor logits(FloatTensor resid) {
        int n = resid.rows(), d = dModel();
        DeviceTensor x = backend.upload(resid.data().clone(), n, d), normed = backend.allocate(n, d);
        if (layerNorm) backend.layerNorm(x, normed, normWeight, normBias, eps);
        else backend.rmsNorm(x, normed, normWeight, eps, onePlus);
        return unembedNormalized(normed, n);
    }

    /** Logits of rows already through the final norm ({@link #normalizeWith}). */
    public FloatTensor logitsOfNormalized(FloatTensor normalized) {
        int n = normalized.rows();
        return unembedNormalized(backend.upload(normalized.data().clone(), n, dModel()), n);
    }

    private FloatTensor unembedNormalized(DeviceTensor normed, int n) {
        DeviceTensor logits = backend.allocate(n, vocab());
        backend.matmul(normed, unembed, null, logits);
        if (finalSoftcap > 0f) backend.softcap(logits, finalSoftcap);
        FloatTensor host = backend.toHost(logits, n, vocab());
        return new FloatTensor(host.data().clone(), n, vocab());
    }

    /** The final norm's divisor for each row: sqrt(var + eps) (LayerNorm) or sqrt(mean(x²) + eps) (RMSNorm). */
    public float[] scale(FloatTensor resid) {
        int n = resid.rows(), d = dModel();
        DeviceTensor scale = backend.allocate(n, 1), normalized = backend.allocate(n, d);
        backend.normStats(layerNorm, backend.upload(resid.data().clone(), n, d), eps, scale, normalized);
        return backend.toHost(scale, n).data().clone();
    }

    /**
     * The final norm applied to rows with given divisors instead of their own (TransformerLens'
     * {@code apply_ln_to_stack} with the cached {@code ln_final.hook_scale}): centred (LayerNorm), divided by
     * {@code scale[row]}, times the weight, plus the bias.
     */
    public FloatTensor normalizeWith(FloatTensor resid, float[] scale) {
        int n = resid.rows(), d = dModel();
        float[] out = new float[n * d];
        for (int r = 0; r < n; r++) {
            double mean = 0;
            if (layerNorm) {
                for (int j = 0; j < d; j++) mean += resid.data()[r * d + j];
                mean /= d;
            }
            for (int j = 0; j < d; j++) {
                double v = (resid.data()[r * d + j] - mean) / scale[r] * weight(j);
                out[r * d + j] = (float) (normBias == null ? v : v + normBias[j]);
            }
        }
        return new FloatTensor(out, n, d);
    }

    /** The multiplier of the final norm for dimension j (Gemma: 1 + weight). */
    public double weight(int j) {
        return onePlus ? 1.0 + normWeight[j] : normWeight[j];
    }

    /** Token {@code id}'s unembedding row [d]. */
    public float[] unembedRow(int id) {
        float[] row = new float[dModel()];
        unembed.row(id, row);
        return row;
    }
}
