package dev.jlens.eval;

import java.util.ArrayList;
import java.util.List;

/**
 * A benchmark as read: its items in file order, the layout it was read as, and the SHA-256 of the file's
 * bytes, so a report says exactly which data produced a number.
 */
public record Benchmark(String name, BenchmarkFormat format, String sha256, List<BenchmarkItem> items) {

    public Benchmark {
        items = List.copyOf(items);
    }

    /** Categories in order of first appearance. */
    public List<String> categories() {
        List<String> out = new ArrayList<>();
        for (BenchmarkItem i : items) if (!out.contains(i.category())) out.add(i.category());
        return out;
    }

    public long harmfulCount() {
        return items.stream().filter(BenchmarkItem::harmful).count();
    }

    /** The first n items (all when n is 0 or larger than the set). */
    public Benchmark limit(int n) {
        return n <= 0 || n >= items.size() ? this : new Benchmark(name, format, sha256, items.subList(0, n));
    }
}
