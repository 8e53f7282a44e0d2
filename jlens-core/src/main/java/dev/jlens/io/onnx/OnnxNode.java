package dev.jlens.io.onnx;

import java.util.List;
import java.util.Map;

/**
 * One operator of an ONNX graph. Exporters name nodes after the module path they came from
 * ({@code /encoder/layer.0/attention/self/query/MatMul}), which is how a loader tells which layer an
 * anonymously named weight input ({@code onnx::MatMul_787}) belongs to. Empty optional inputs are kept as
 * empty strings, as ONNX writes them, so input positions stay meaningful.
 */
public record OnnxNode(String opType, String name, List<String> inputs, List<String> outputs,
                       Map<String, OnnxAttribute> attributes) {

    public OnnxNode {
        inputs = List.copyOf(inputs);
        outputs = List.copyOf(outputs);
        attributes = Map.copyOf(attributes);
    }

    /** The attribute, or null when absent. */
    public OnnxAttribute attribute(String attributeName) {
        return attributes.get(attributeName);
    }
}
