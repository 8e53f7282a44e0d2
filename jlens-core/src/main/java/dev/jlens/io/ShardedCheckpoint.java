package dev.jlens.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Several shards joined by an index file's weight_map ({@code model.safetensors.index.json} or
 * {@code pytorch_model.bin.index.json}, which share one layout); each shard is opened once by {@code openShard}.
 */
public final class ShardedCheckpoint implements TensorSource {

    private final Path index;
    private final Map<String, TensorEntry> tensors;

    private ShardedCheckpoint(Path index, Map<String, TensorEntry> tensors) {
        this.index = index;
        this.tensors = tensors;
    }

    public static ShardedCheckpoint open(Path indexFile, Function<Path, ? extends TensorSource> openShard) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(Files.readString(indexFile));
        } catch (IOException e) {
            throw new JlensException(indexFile + ": cannot read shard index: " + e.getMessage(), e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new JlensException(indexFile + ": missing object field \"weight_map\" (tensor name -> shard file)");
        }
        Map<String, TensorSource> shards = new LinkedHashMap<>();
        Map<String, TensorEntry> tensors = new LinkedHashMap<>();
        Path dir = indexFile.toAbsolutePath().getParent();
        for (var it = map.fields(); it.hasNext(); ) {
            var f = it.next();
            if (!f.getValue().isTextual()) {
                throw new JlensException(indexFile + ": weight_map entry \"" + f.getKey() + "\" must name a shard file");
            }
            String shardName = f.getValue().asText();
            Path shardPath;
            try {
                shardPath = dir.resolve(shardName).normalize();
            } catch (InvalidPathException e) {
                throw new JlensException(indexFile + ": shard \"" + shardName + "\" is not a valid file name");
            }
            if (!shardPath.startsWith(dir) || shardPath.equals(dir)) {
                throw new JlensException(indexFile + ": shard \"" + shardName + "\" points outside the model folder");
            }
            TensorSource shard = shards.computeIfAbsent(shardName, n -> openShard.apply(shardPath));
            TensorEntry e = shard.find(f.getKey());
            if (e == null) {
                throw new JlensException(indexFile + ": weight_map says \"" + f.getKey() + "\" is in " + shardName
                        + ", but that shard has no such tensor");
            }
            tensors.put(f.getKey(), e);
        }
        return new ShardedCheckpoint(indexFile, Collections.unmodifiableMap(tensors));
    }

    @Override
    public Set<String> names() {
        return tensors.keySet();
    }

    @Override
    public TensorEntry find(String name) {
        return tensors.get(name);
    }

    @Override
    public String describe() {
        return index.getParent() + " (sharded, " + index.getFileName() + ")";
    }

    @Override
    public void close() {
    }
}
