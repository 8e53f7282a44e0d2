package dev.jlens.model;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Backend;

import java.util.List;

/**
 * One architecture family: which config.json {@code architectures} it handles, how to build it, and which
 * tensors it reads. Code outside the family (loading, memory estimates, weight orthogonalisation, synthetic
 * checkpoints) learns tensor names and roles only from {@link #tensors}. A causal family is registered with
 * {@link CausalLm#family}, one line.
 *
 * @param architectures HF class names in config.json's {@code architectures}, e.g. GPTNeoXForCausalLM
 * @param modelTypes    HF {@code model_type} values, used when {@code architectures} is absent
 */
public record ModelFamily(String name, List<String> architectures, List<String> modelTypes, Loader loader,
                          TensorList tensorList) {

    @FunctionalInterface
    public interface Loader {
        TransformerModel load(ModelConfig config, TensorSource weights, Backend backend);
    }

    @FunctionalInterface
    public interface TensorList {
        List<TensorSpec> of(ModelConfig config, TensorSource weights);
    }

    public ModelFamily {
        architectures = List.copyOf(architectures);
        modelTypes = List.copyOf(modelTypes);
    }

    public TransformerModel load(ModelConfig config, TensorSource weights, Backend backend) {
        return loader.load(config, weights, backend);
    }

    /**
     * Every tensor the family reads for this config, with shape and role. {@code weights} may be null when
     * there is no checkpoint yet (synthetic checkpoints); families whose names depend on the file (GPT-2's
     * optional "transformer." prefix) then use their canonical names.
     */
    public List<TensorSpec> tensors(ModelConfig config, TensorSource weights) {
        return tensorList.of(config, weights);
    }
}
