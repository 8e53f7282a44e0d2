package dev.jlens.io.pytorch;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Writes a pickle opcode by opcode, so tests can build exactly the payload they mean (hostile or not). */
final class PickleBytes {

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    PickleBytes op(int... bytes) {
        for (int b : bytes) out.write(b);
        return this;
    }

    private PickleBytes raw(byte[] b) {
        out.writeBytes(b);
        return this;
    }

    /** The low n bytes of v, little-endian. */
    static byte[] le(long v, int n) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) b[i] = (byte) (v >>> (8 * i));
        return b;
    }

    PickleBytes proto(int v) {
        return op(0x80, v);
    }

    PickleBytes frame(long n) {
        return op(0x95).raw(le(n, 8));
    }

    /** GLOBAL: module and name as newline-terminated text, the way protocols 0-3 refer to a callable. */
    PickleBytes global(String module, String name) {
        return op('c').raw((module + "\n" + name + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** Protocol 4's STACK_GLOBAL: module and name pushed as strings first. */
    PickleBytes stackGlobal(String module, String name) {
        return shortStr(module).shortStr(name).op(0x93);
    }

    PickleBytes str(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op('X').raw(le(b.length, 4)).raw(b);
    }

    PickleBytes shortStr(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op(0x8c, b.length).raw(b);
    }

    PickleBytes str8(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return op(0x8d).raw(le(b.length, 8)).raw(b);
    }

    /** The smallest of BININT1/BININT2/BININT/LONG1 that holds v, as Python's pickler chooses. */
    PickleBytes integer(long v) {
        if (v >= 0 && v < 256) return op('K', (int) v);
        if (v >= 0 && v < 65536) return op('M').raw(le(v, 2));
        if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) return op('J').raw(le(v, 4));
        return op(0x8a, 8).raw(le(v, 8));
    }

    PickleBytes binFloat(double d) {
        return op('G').raw(ByteBuffer.allocate(8).order(ByteOrder.BIG_ENDIAN).putDouble(d).array());
    }

    PickleBytes put(int i) {
        return i < 256 ? op('q', i) : op('r').raw(le(i, 4));
    }

    PickleBytes get(int i) {
        return i < 256 ? op('h', i) : op('j').raw(le(i, 4));
    }

    PickleBytes memoize() {
        return op(0x94);
    }

    PickleBytes mark() {
        return op('(');
    }

    PickleBytes tuple() {
        return op('t');
    }

    PickleBytes emptyTuple() {
        return op(')');
    }

    PickleBytes emptyDict() {
        return op('}');
    }

    PickleBytes emptyList() {
        return op(']');
    }

    PickleBytes reduce() {
        return op('R');
    }

    PickleBytes build() {
        return op('b');
    }

    PickleBytes setitem() {
        return op('s');
    }

    PickleBytes setitems() {
        return op('u');
    }

    PickleBytes append() {
        return op('a');
    }

    PickleBytes appends() {
        return op('e');
    }

    PickleBytes persid() {
        return op('Q');
    }

    PickleBytes newTrue() {
        return op(0x88);
    }

    PickleBytes newFalse() {
        return op(0x89);
    }

    PickleBytes none() {
        return op('N');
    }

    PickleBytes stop() {
        return op('.');
    }

    /** A tuple of small ints the way torch pickles sizes and strides (TUPLE1/2/3, else MARK..TUPLE). */
    PickleBytes intTuple(long... v) {
        if (v.length == 0) return emptyTuple();
        if (v.length > 3) mark();
        for (long x : v) integer(x);
        return switch (v.length) {
            case 1 -> op(0x85);
            case 2 -> op(0x86);
            case 3 -> op(0x87);
            default -> tuple();
        };
    }

    byte[] bytes() {
        return out.toByteArray();
    }
}
