package dev.jlens.model;

import dev.jlens.io.TensorSource;
import dev.jlens.kernels.Kernels;

import java.util.List;

/** One architecture family: which config.json {@code architectures} it handles and how to build it. */
public interface ModelFamily {

    String name();

    /** HF class names in config.json's {@code architectures}, e.g. GPTNeoXForCausalLM. */
    List<String> architectures();

    /** HF {@code model_type} values, used when {@code architectures} is absent. */
    List<String> modelTypes();

    TransformerModel load(ModelConfig config, TensorSource weights, Kernels kernels);
}
