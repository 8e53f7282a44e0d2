package dev.jlens.io.pytorch;

import dev.jlens.JlensException;
import dev.jlens.io.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pickle reader that understands exactly what {@code torch.save(model.state_dict())} writes and nothing
 * more.
 *
 * <p>Pickle is a small stack machine whose {@code GLOBAL}/{@code REDUCE} opcodes import and call arbitrary
 * Python functions, which is why loading an untrusted {@code .bin} in Python can run code. There is no Java
 * library for reading pickles safely (Pyrolite resolves classes and calls constructors), so this one is
 * written by hand: it never executes, loads or instantiates anything. A global is only a name, checked
 * against a short allowlist the moment it is read; a {@code REDUCE} on an allowed name builds an inert
 * record ({@link TensorValue}, {@link PyDict}, ...). Any other global, and any opcode outside the subset
 * torch uses (protocols 2 to 5), is refused with a {@link JlensException} that names it.
 *
 * <p>Resource use is bounded by the input: every opcode consumes at least one byte, each value is moved off
 * the stack at most once, strings are only allocated after checking that their bytes are really there, and
 * values never recurse through {@code equals}/{@code hashCode}/{@code toString} (a pickle can build a list
 * that contains itself).
 */
final class TorchUnpickler {

    /** Python {@code None}. */
    enum PyNone { NONE }

    /** A tuple. Identity semantics on purpose: tuples nest as deep as the pickle is long. */
    static final class PyTuple {
        final List<Object> items;

        PyTuple(List<Object> items) {
            this.items = Collections.unmodifiableList(items);
        }
    }

    static final class PyList {
        final List<Object> items = new ArrayList<>();
    }

    /** A dict or OrderedDict; {@code state} is what BUILD set on it (the state dict's {@code _metadata}). */
    static final class PyDict {
        final Map<Object, Object> items = new LinkedHashMap<>();
        Object state;
    }

    /** An allowlisted global, named but never resolved. */
    record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    /** A persistent storage reference: {@code ('storage', torch.HalfStorage, '0', 'cpu', numel)}. */
    record StorageRef(DType dtype, String storageClass, String key, String location, long numel) {
    }

    /** {@code torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)}, not yet checked. */
    record TensorValue(StorageRef storage, long offset, long[] shape, long[] stride) {
    }

    private static final Map<String, DType> STORAGES = Map.ofEntries(
            Map.entry("FloatStorage", DType.F32),
            Map.entry("HalfStorage", DType.F16),
            Map.entry("BFloat16Storage", DType.BF16),
            Map.entry("DoubleStorage", DType.F64),
            Map.entry("ByteStorage", DType.U8),
            Map.entry("BoolStorage", DType.BOOL),
            Map.entry("LongStorage", DType.I64),
            Map.entry("IntStorage", DType.I32),
            Map.entry("CharStorage", DType.I8),
            Map.entry("ShortStorage", DType.I16));

    private static final String ORDERED_DICT = "collections.OrderedDict";
    private static final String REBUILD_V2 = "torch._utils._rebuild_tensor_v2";
    private static final String REBUILD = "torch._utils._rebuild_tensor";
    private static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    private static final String SIZE = "torch.Size";
    private static final List<String> CALLABLES = List.of(ORDERED_DICT, REBUILD_V2, REBUILD, REBUILD_PARAMETER, SIZE);

    /** Far beyond any state dict (a 70B model's pickle holds a few thousand values on the stack at most). */
    static final int MAX_STACK = 1 << 20;
    static final int MAX_MEMO = 1 << 22;
    private static final int MAX_GLOBAL_LINE = 256;

    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_BE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    private final String where;
    private final MemorySegment in;
    private final long len;
    private long pos;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private TorchUnpickler(String where, MemorySegment in) {
        this.where = where;
        this.in = in;
        this.len = in.byteSize();
    }

    /**
     * Reads one pickle. {@code where} names the file and entry for error messages.
     */
    static Object load(String where, MemorySegment pickle) {
        return new TorchUnpickler(where, pickle).run();
    }

    static boolean isAllowed(String qualified) {
        return CALLABLES.contains(qualified) || isStorage(qualified);
    }

    private static boolean isStorage(String qualified) {
        return qualified.startsWith("torch.") && STORAGES.containsKey(qualified.substring(6));
    }

    private Object run() {
        while (true) {
            if (pos >= len) throw fail("the pickle ends without a STOP opcode (truncated?)");
            long at = pos;
            int op = u8();
            switch (op) {
                case 0x80 -> { // PROTO
                    int v = u8();
                    if (v < 2 || v > 5) throw fail("pickle protocol " + v + " is not supported (torch.save writes 2..5)");
                }
                case 0x95 -> { // FRAME: framing is only a read-ahead hint
                    long n = i64();
                    if (n < 0 || n > len - pos) throw fail("FRAME of " + n + " bytes at byte " + at + " runs past the end");
                }
                case '.' -> { // STOP
                    return pop("STOP");
                }
                case '}' -> push(new PyDict());
                case ']' -> push(new PyList());
                case ')' -> push(new PyTuple(List.of()));
                case '(' -> {
                    if (marks.size() >= MAX_STACK) throw fail("too many nested MARKs");
                    marks.add(stack.size());
                }
                case 'X' -> push(string(u32()));
                case 0x8c -> push(string(u8())); // SHORT_BINUNICODE
                case 0x8d -> push(string(i64())); // BINUNICODE8
                case 'J' -> push((long) in.get(I32, need(4)));
                case 'K' -> push((long) u8());
                case 'M' -> push((long) (in.get(I16, need(2)) & 0xffff));
                case 0x8a -> push(long1(at));
                case 'G' -> push(in.get(F64_BE, need(8)));
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'N' -> push(PyNone.NONE);
                case 't' -> push(new PyTuple(popToMark("TUPLE")));
                case 0x85 -> push(tupleOf(1));
                case 0x86 -> push(tupleOf(2));
                case 0x87 -> push(tupleOf(3));
                case 'c' -> {
                    String module = line();
                    String name = line();
                    push(global(module, name));
                }
                case 0x93 -> { // STACK_GLOBAL
                    Object name = pop("STACK_GLOBAL");
                    Object module = pop("STACK_GLOBAL");
                    if (!(module instanceof String m) || !(name instanceof String n)) {
                        throw fail("STACK_GLOBAL at byte " + at + " needs two strings, got " + kind(module) + " and " + kind(name));
                    }
                    push(global(m, n));
                }
                case 'R' -> { // REDUCE
                    Object args = pop("REDUCE");
                    Object callable = pop("REDUCE");
                    push(reduce(callable, args, at));
                }
                case 'b' -> { // BUILD
                    Object state = pop("BUILD");
                    Object target = peek("BUILD");
                    if (!(target instanceof PyDict d)) {
                        throw fail("BUILD at byte " + at + " sets state on a " + kind(target)
                                + "; a state dict only sets it on its OrderedDict (_metadata)");
                    }
                    d.state = state;
                }
                case 's' -> { // SETITEM
                    Object value = pop("SETITEM");
                    Object key = pop("SETITEM");
                    put(dictOnTop("SETITEM", at), key, value, at);
                }
                case 'u' -> { // SETITEMS
                    List<Object> kv = popToMark("SETITEMS");
                    if (kv.size() % 2 != 0) throw fail("SETITEMS at byte " + at + " has an odd number of items");
                    PyDict d = dictOnTop("SETITEMS", at);
                    for (int i = 0; i < kv.size(); i += 2) put(d, kv.get(i), kv.get(i + 1), at);
                }
                case 'a' -> { // APPEND
                    Object v = pop("APPEND");
                    listOnTop("APPEND", at).items.add(v);
                }
                case 'e' -> { // APPENDS
                    List<Object> vs = popToMark("APPENDS");
                    listOnTop("APPENDS", at).items.addAll(vs);
                }
                case 'q' -> memoPut(u8(), at);
                case 'r' -> memoPut(u32(), at);
                case 0x94 -> memoPut(memo.size(), at); // MEMOIZE
                case 'h' -> push(memoGet(u8(), at));
                case 'j' -> push(memoGet(u32(), at));
                case 'Q' -> push(persistentLoad(pop("BINPERSID"), at));
                default -> {
                    String name = OPCODE_NAMES.get(op);
                    if (name == null) {
                        throw fail(String.format("unknown pickle opcode 0x%02x at byte %d; the file is corrupt or not "
                                + "a PyTorch checkpoint", op, at));
                    }
                    throw fail(String.format("pickle opcode 0x%02x (%s) at byte %d is not supported: torch.save "
                            + "state dicts do not use it", op, name, at));
                }
            }
        }
    }

    private Global global(String module, String name) {
        String q = module + "." + name;
        if (!isAllowed(q)) {
            throw new JlensException(where + ": the pickle refers to the Python global \"" + q + "\", which jlens "
                    + "refuses to load; a PyTorch state dict only needs " + String.join(", ", CALLABLES)
                    + " and torch.*Storage. The checkpoint may be malicious (pickles can run code when loaded "
                    + "in Python) or is not a plain state dict; prefer safetensors");
        }
        return new Global(module, name);
    }

    private Object reduce(Object callable, Object args, long at) {
        if (!(callable instanceof Global g)) {
            throw fail("REDUCE at byte " + at + " calls a " + kind(callable) + ", not an allowed global");
        }
        if (!(args instanceof PyTuple t)) {
            throw fail("REDUCE of " + g.qualified() + " at byte " + at + " has " + kind(args) + " arguments, not a tuple");
        }
        List<Object> a = t.items;
        String q = g.qualified();
        switch (q) {
            case ORDERED_DICT -> {
                if (!a.isEmpty()) throw fail(q + " is called with " + a.size() + " arguments; torch.save passes none");
                return new PyDict();
            }
            case REBUILD_V2, REBUILD -> {
                int min = q.equals(REBUILD) ? 4 : 6;
                int max = q.equals(REBUILD) ? 4 : 7;
                if (a.size() < min || a.size() > max) {
                    throw fail(q + " at byte " + at + " gets " + a.size() + " arguments; expected "
                            + (min == max ? String.valueOf(min) : min + " or " + max));
                }
                if (!(a.get(0) instanceof StorageRef s)) {
                    throw fail(q + " at byte " + at + ": argument 1 is a " + kind(a.get(0)) + ", not a storage");
                }
                long offset = integer(a.get(1), q + " storage_offset");
                long[] size = ints(a.get(2), q + " size");
                long[] stride = ints(a.get(3), q + " stride");
                if (stride.length != size.length) {
                    throw fail(q + " at byte " + at + ": size has " + size.length + " dimensions but stride has " + stride.length);
                }
                return new TensorValue(s, offset, size, stride);
            }
            case REBUILD_PARAMETER -> {
                if (a.size() != 3 || !(a.get(0) instanceof TensorValue tv)) {
                    throw fail(q + " at byte " + at + " expects (tensor, requires_grad, backward_hooks)");
                }
                return tv;
            }
            case SIZE -> {
                if (a.size() != 1) throw fail(q + " at byte " + at + " expects one tuple argument");
                ints(a.get(0), q);
                return a.get(0);
            }
            default -> throw fail(q + " is a storage type, not something a state dict calls (REDUCE at byte " + at + ")");
        }
    }

    private Object persistentLoad(Object pid, long at) {
        String expected = "('storage', torch.<Type>Storage, key, location, numel)";
        if (!(pid instanceof PyTuple t) || t.items.size() != 5) {
            throw fail("persistent id at byte " + at + " is a " + kind(pid) + "; expected " + expected);
        }
        List<Object> p = t.items;
        if (!"storage".equals(p.get(0))) {
            throw fail("persistent id at byte " + at + " is not a storage record; expected " + expected);
        }
        if (!(p.get(1) instanceof Global g) || !isStorage(g.qualified())) {
            throw fail("persistent id at byte " + at + " names a " + kind(p.get(1)) + " as storage type; expected " + expected);
        }
        if (!(p.get(2) instanceof String key) || !(p.get(3) instanceof String location)) {
            throw fail("persistent id at byte " + at + " has a non-string key or location; expected " + expected);
        }
        long numel = integer(p.get(4), "storage numel");
        if (numel < 0) throw fail("storage \"" + key + "\" claims " + numel + " elements");
        return new StorageRef(STORAGES.get(g.name()), g.qualified(), key, location, numel);
    }

    private void put(PyDict d, Object key, Object value, long at) {
        // Only hashable scalars: they hash without recursing into values the pickle controls.
        if (!(key instanceof String || key instanceof Long || key instanceof Boolean || key instanceof Double
                || key == PyNone.NONE)) {
            throw fail("dict key at byte " + at + " is a " + kind(key) + "; state dict keys are strings");
        }
        d.items.put(key, value);
    }

    private PyDict dictOnTop(String op, long at) {
        Object top = peek(op);
        if (!(top instanceof PyDict d)) throw fail(op + " at byte " + at + " applies to a " + kind(top) + ", not a dict");
        return d;
    }

    private PyList listOnTop(String op, long at) {
        Object top = peek(op);
        if (!(top instanceof PyList l)) throw fail(op + " at byte " + at + " applies to a " + kind(top) + ", not a list");
        return l;
    }

    private void memoPut(long index, long at) {
        Object top = peek("PUT");
        if (memo.size() >= MAX_MEMO && !memo.containsKey(index)) {
            throw fail("more than " + MAX_MEMO + " memo entries at byte " + at);
        }
        memo.put(index, top);
    }

    private Object memoGet(long index, long at) {
        Object v = memo.get(index);
        if (v == null) throw fail("GET at byte " + at + " reads memo entry " + index + ", which was never stored");
        return v;
    }

    private PyTuple tupleOf(int n) {
        if (stack.size() - floor() < n) throw fail("TUPLE" + n + " needs " + n + " values on the stack");
        List<Object> top = stack.subList(stack.size() - n, stack.size());
        PyTuple t = new PyTuple(new ArrayList<>(top));
        top.clear();
        return t;
    }

    private List<Object> popToMark(String op) {
        if (marks.isEmpty()) throw fail(op + " at byte " + (pos - 1) + " has no MARK before it");
        int m = marks.removeLast();
        List<Object> top = stack.subList(m, stack.size());
        List<Object> out = new ArrayList<>(top);
        top.clear();
        return out;
    }

    /** Values below the innermost MARK belong to an enclosing construct and cannot be popped. */
    private int floor() {
        return marks.isEmpty() ? 0 : marks.getLast();
    }

    private void push(Object v) {
        if (stack.size() >= MAX_STACK) throw fail("the pickle stack grows beyond " + MAX_STACK + " values");
        stack.add(v);
    }

    private Object pop(String op) {
        if (stack.size() <= floor()) throw fail(op + " at byte " + (pos - 1) + " pops from an empty stack");
        return stack.removeLast();
    }

    private Object peek(String op) {
        if (stack.size() <= floor()) throw fail(op + " at byte " + (pos - 1) + " needs a value on the stack");
        return stack.getLast();
    }

    private long need(int n) {
        if (n > len - pos) throw fail("the pickle ends in the middle of an opcode at byte " + pos + " (truncated?)");
        long at = pos;
        pos += n;
        return at;
    }

    private int u8() {
        return in.get(ValueLayout.JAVA_BYTE, need(1)) & 0xff;
    }

    private long u32() {
        return in.get(I32, need(4)) & 0xffffffffL;
    }

    private long i64() {
        return in.get(I64, need(8));
    }

    private Long long1(long at) {
        int n = u8();
        if (n > 8) throw fail("LONG1 integer of " + n + " bytes at byte " + at + " does not fit 64 bits");
        long start = need(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | (in.get(ValueLayout.JAVA_BYTE, start + i) & 0xff);
        if (n > 0 && n < 8 && (in.get(ValueLayout.JAVA_BYTE, start + n - 1) & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }

    private String string(long n) {
        // The length is checked against the bytes really present before anything is allocated.
        if (n < 0 || n > len - pos || n > Integer.MAX_VALUE - 8) {
            throw fail("a string of " + n + " bytes at byte " + pos + " runs past the end of the pickle");
        }
        long at = need((int) n);
        return utf8(in.asSlice(at, n), at);
    }

    /** GLOBAL's newline-terminated module or name. */
    private String line() {
        long start = pos;
        long limit = Math.min(len, pos + MAX_GLOBAL_LINE);
        for (long p = start; p < limit; p++) {
            if (in.get(ValueLayout.JAVA_BYTE, p) == '\n') {
                pos = p + 1;
                return utf8(in.asSlice(start, p - start), start);
            }
        }
        throw fail("GLOBAL at byte " + (start - 1) + " has no newline-terminated name within " + MAX_GLOBAL_LINE + " bytes");
    }

    private String utf8(MemorySegment bytes, long at) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes.asByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw fail("the string at byte " + at + " is not valid UTF-8");
        }
    }

    private long integer(Object v, String what) {
        if (v instanceof Long l) return l;
        throw fail(what + " is a " + kind(v) + ", expected an int");
    }

    private long[] ints(Object v, String what) {
        if (!(v instanceof PyTuple t)) throw fail(what + " is a " + kind(v) + ", expected a tuple of ints");
        long[] out = new long[t.items.size()];
        for (int i = 0; i < out.length; i++) out[i] = integer(t.items.get(i), what + "[" + i + "]");
        return out;
    }

    /** A type name for messages; never the value itself, which may be huge or cyclic. */
    static String kind(Object v) {
        return switch (v) {
            case null -> "missing value";
            case String s -> "str";
            case Long l -> "int";
            case Double d -> "float";
            case Boolean b -> "bool";
            case PyNone n -> "None";
            case PyTuple t -> "tuple";
            case PyList l -> "list";
            case PyDict d -> "dict";
            case Global g -> "global " + g.qualified();
            case StorageRef s -> "storage";
            case TensorValue t -> "tensor";
            default -> v.getClass().getSimpleName();
        };
    }

    private JlensException fail(String what) {
        return new JlensException(where + ": " + what);
    }

    /** Names of the pickle opcodes this reader refuses, so the error says which one it met. */
    private static final Map<Integer, String> OPCODE_NAMES = Map.ofEntries(
            Map.entry((int) 'i', "INST"), Map.entry((int) 'o', "OBJ"), Map.entry(0x81, "NEWOBJ"),
            Map.entry(0x92, "NEWOBJ_EX"), Map.entry((int) 'P', "PERSID"), Map.entry((int) 'S', "STRING"),
            Map.entry((int) 'T', "BINSTRING"), Map.entry((int) 'U', "SHORT_BINSTRING"),
            Map.entry((int) 'V', "UNICODE"), Map.entry((int) 'I', "INT"), Map.entry((int) 'L', "LONG"),
            Map.entry((int) 'F', "FLOAT"), Map.entry(0x8b, "LONG4"), Map.entry((int) 'B', "BINBYTES"),
            Map.entry((int) 'C', "SHORT_BINBYTES"), Map.entry(0x8e, "BINBYTES8"), Map.entry(0x8f, "EMPTY_SET"),
            Map.entry(0x90, "ADDITEMS"), Map.entry(0x91, "FROZENSET"), Map.entry(0x96, "BYTEARRAY8"),
            Map.entry(0x97, "NEXT_BUFFER"), Map.entry(0x98, "READONLY_BUFFER"), Map.entry((int) 'p', "PUT"),
            Map.entry((int) 'g', "GET"), Map.entry((int) '0', "POP"), Map.entry((int) '1', "POP_MARK"),
            Map.entry((int) '2', "DUP"), Map.entry((int) 'l', "LIST"), Map.entry((int) 'd', "DICT"),
            Map.entry(0x82, "EXT1"), Map.entry(0x83, "EXT2"), Map.entry(0x84, "EXT4"));
}
