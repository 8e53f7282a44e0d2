package dev.jlens.io;

import dev.jlens.JlensException;

import java.util.Set;

/**
 * A named collection of stored tensors: one safetensors file, a sharded set, or a PyTorch checkpoint.
 * Closing it unmaps the files, so tensors read from it must be copied (or the source kept open) first.
 */
public interface TensorSource extends AutoCloseable {

    Set<String> names();

    /** The tensor, or null when absent. */
    TensorEntry find(String name);

    /** A short description of where the tensors come from, for error messages. */
    String describe();

    default boolean contains(String name) {
        return find(name) != null;
    }

    default TensorEntry require(String name) {
        TensorEntry e = find(name);
        if (e == null) {
            throw new JlensException(describe() + ": missing tensor \"" + name + "\" (the checkpoint has "
                    + names().size() + " tensors; is it the right model family?)");
        }
        return e;
    }

    @Override
    void close();
}
