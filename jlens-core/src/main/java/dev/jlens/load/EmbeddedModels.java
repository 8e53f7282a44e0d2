package dev.jlens.load;

import dev.jlens.JlensException;
import dev.jlens.model.HookedModel;

/** The models that ship inside jlens' own dependencies. */
public final class EmbeddedModels {

    private EmbeddedModels() {
    }

    /** all-MiniLM-L6-v2 from the langchain4j Maven artifact, read by our own ONNX loader. */
    public static HookedModel minilm() {
        throw new JlensException("the embedded default model (minilm) is not available yet; pass --model FOLDER");
    }
}
