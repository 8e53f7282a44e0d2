package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.pytorch.TorchFiles.Tensor;
import dev.jlens.testing.Fixtures;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Random corruption of valid checkpoints: opening one (and reading every tensor when it still opens) may
 * only ever fail with a JlensException, never with an index, arithmetic, memory or stack error.
 *
 * <p>Termination needs no timer: the zip reader walks a directory bounded by the file size and the unpickler
 * consumes at least one byte per opcode, moving each value off its stack at most once, so every input is
 * processed in time linear in its length. The tries and input sizes below bound the test.
 */
class TorchCheckpointFuzzTest {

    /** A small checkpoint as torch 1.13 writes it, with several dtypes, a shared storage and a view. */
    private static final byte[] PICKLE = TorchFiles.stateDictPickle(List.of(
            Tensor.contiguous("a.weight", "FloatStorage", "0", 2, 3),
            Tensor.contiguous("a.bias", "HalfStorage", "1", 3),
            new Tensor("a.view", "FloatStorage", "0", 6, 3, new long[]{3}, new long[]{1}),
            Tensor.contiguous("ids", "LongStorage", "2", 2),
            Tensor.contiguous("mask", "BoolStorage", "3", 1, 2, 2)));
    private static final Map<String, byte[]> STORAGES = Map.of(
            "0", TorchFiles.f32(1, 2, 3, 4, 5, 6),
            "1", new byte[]{0, 0x3c, 0, 0x40, 0, 0x42},
            "2", TorchFiles.i64(5, 6),
            "3", new byte[]{1, 0, 1, 1});
    private static final byte[] SMALL = TorchFiles.checkpoint("archive", PICKLE, STORAGES);

    /** Position (as a fraction of the length, so it shrinks towards the start) and new value. */
    record Mutation(double where, byte value) {
    }

    @Provide
    Arbitrary<List<Mutation>> mutations() {
        return Combinators.combine(Arbitraries.doubles().between(0, 1), Arbitraries.bytes())
                .as(Mutation::new).list().ofMinSize(1).ofMaxSize(6);
    }

    private static byte[] mutate(byte[] base, int from, int to, List<Mutation> ms) {
        byte[] b = base.clone();
        for (Mutation m : ms) b[from + (int) Math.min(to - from - 1, m.where() * (to - from))] = m.value();
        return b;
    }

    /** Opens the bytes as a checkpoint; returns true if it opened and every tensor could be read. */
    private static boolean openAndReadAll(byte[] bytes) {
        Path p;
        try {
            p = Files.createTempFile("jlens-fuzz", ".bin");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        try {
            Files.write(p, bytes);
            try (TorchCheckpoint c = TorchCheckpoint.open(p)) {
                for (String name : c.names()) {
                    TensorEntry e = c.require(name);
                    float[] v = e.toFloatArray();
                    assertEquals(e.numel(), v.length, name);
                }
                return true;
            } catch (JlensException expected) {
                return false;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } finally {
            try {
                Files.deleteIfExists(p);
            } catch (IOException ignored) {
                // a leftover temp file does not affect the property
            }
        }
    }

    @Property(tries = 400)
    void mutatedSmallCheckpoint(@ForAll("mutations") List<Mutation> ms) {
        openAndReadAll(mutate(SMALL, 0, SMALL.length, ms));
    }

    /** Mutating only the pickle and re-zipping it keeps the archive valid, so every try reaches the unpickler. */
    @Property(tries = 600)
    void mutatedPickleInAValidArchive(@ForAll("mutations") List<Mutation> ms) {
        openAndReadAll(TorchFiles.checkpoint("archive", mutate(PICKLE, 0, PICKLE.length, ms), STORAGES));
    }

    @Property(tries = 200)
    void pickleWithBytesCutOutOrRepeated(@ForAll @IntRange(min = 0, max = 10_000) int a,
                                         @ForAll @IntRange(min = 0, max = 10_000) int b) {
        int from = Math.min(a, b) % PICKLE.length;
        int to = Math.max(a, b) % PICKLE.length;
        byte[] cut = new byte[PICKLE.length - (to - from)];
        System.arraycopy(PICKLE, 0, cut, 0, from);
        System.arraycopy(PICKLE, to, cut, from, PICKLE.length - to);
        openAndReadAll(TorchFiles.checkpoint("archive", cut, STORAGES));
        byte[] twice = new byte[PICKLE.length + (to - from)];
        System.arraycopy(PICKLE, 0, twice, 0, to);
        System.arraycopy(PICKLE, from, twice, to, PICKLE.length - from);
        openAndReadAll(TorchFiles.checkpoint("archive", twice, STORAGES));
    }

    @Property(tries = 200)
    void truncatedSmallCheckpoint(@ForAll @IntRange(min = 0, max = 100_000) int keep) {
        openAndReadAll(Arrays.copyOf(SMALL, keep % SMALL.length));
    }

    /**
     * The real torch-written shard (the smaller of the fixture's two), mutated where its structure is: the
     * pickle and headers at the front and the central directory at the back, not the raw tensor bytes.
     */
    @Property(tries = 150)
    void mutatedFixtureShard(@ForAll("mutations") List<Mutation> front, @ForAll("mutations") List<Mutation> back) {
        byte[] shard = FixtureShard.BYTES;
        byte[] b = mutate(shard, 0, 3_000, front);
        b = mutate(b, shard.length - 1_500, shard.length, back);
        openAndReadAll(b);
    }

    @Property(tries = 1)
    void unmutatedInputsOpen() {
        assertEquals(true, openAndReadAll(SMALL));
        assertEquals(true, openAndReadAll(FixtureShard.BYTES));
    }

    private static final class FixtureShard {
        static final byte[] BYTES;

        static {
            try {
                BYTES = Files.readAllBytes(Fixtures.dir("gpt_neox_tiny_bin_sharded").resolve("pytorch_model-00002-of-00002.bin"));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
