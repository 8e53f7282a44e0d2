package dev.jlens.io.onnx;

import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The parts of an ONNX model that a weight loader needs: the graph's initializers as a {@link TensorSource}
 * (by their ONNX names, which for PyTorch exports are the {@code state_dict} keys except for weights the
 * exporter renamed, such as transposed MatMul weights) and the nodes in graph order, with lookups by node
 * name, by produced value and by consumed value. Tensors are views of the bytes the model was read from;
 * closing releases a memory-mapped file (for a heap copy it does nothing), so copy what must outlive it.
 */
public final class OnnxModel implements TensorSource {

    private final String resource;
    private final Map<String, TensorEntry> initializers;
    private final List<OnnxNode> nodes;
    private final List<String> graphInputs;
    private final List<String> graphOutputs;
    private final Map<String, OnnxNode> byName = new HashMap<>();
    private final Map<String, OnnxNode> byOutput = new HashMap<>();
    private final Map<String, List<OnnxNode>> byInput = new HashMap<>();
    private final Arena arena;

    OnnxModel(String resource, Map<String, TensorEntry> initializers, List<OnnxNode> nodes, List<String> graphInputs,
              List<String> graphOutputs, Arena arena) {
        this.resource = resource;
        this.initializers = Collections.unmodifiableMap(new LinkedHashMap<>(initializers));
        this.nodes = List.copyOf(nodes);
        this.graphInputs = List.copyOf(graphInputs);
        this.graphOutputs = List.copyOf(graphOutputs);
        this.arena = arena;
        for (OnnxNode n : this.nodes) {
            if (!n.name().isEmpty()) byName.putIfAbsent(n.name(), n);
            for (String out : n.outputs()) if (!out.isEmpty()) byOutput.put(out, n);
            for (String in : n.inputs()) if (!in.isEmpty()) byInput.computeIfAbsent(in, k -> new ArrayList<>()).add(n);
        }
    }

    /** Where the model was read from, as given to the reader. */
    public String resource() {
        return resource;
    }

    public List<OnnxNode> nodes() {
        return nodes;
    }

    public List<String> graphInputs() {
        return graphInputs;
    }

    public List<String> graphOutputs() {
        return graphOutputs;
    }

    /** The node with this name, or null. */
    public OnnxNode node(String name) {
        return byName.get(name);
    }

    /** The node that computes this value, or null for graph inputs, initializers and unknown names. */
    public OnnxNode producer(String value) {
        return byOutput.get(value);
    }

    /** The nodes that read this value, in graph order. */
    public List<OnnxNode> consumers(String value) {
        return byInput.getOrDefault(value, List.of());
    }

    /** The value as a constant tensor: an initializer or the output of a Constant node; null otherwise. */
    public TensorEntry constant(String value) {
        TensorEntry e = initializers.get(value);
        if (e != null) return e;
        OnnxNode p = producer(value);
        if (p != null && p.opType().equals("Constant")) {
            OnnxAttribute a = p.attribute("value");
            if (a != null) return a.t();
        }
        return null;
    }

    @Override
    public Set<String> names() {
        return initializers.keySet();
    }

    @Override
    public TensorEntry find(String name) {
        return initializers.get(name);
    }

    @Override
    public String describe() {
        return resource;
    }

    @Override
    public void close() {
        if (arena != null) arena.close();
    }
}
