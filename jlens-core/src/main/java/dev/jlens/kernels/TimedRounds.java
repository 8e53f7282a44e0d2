package dev.jlens.kernels;

import java.util.concurrent.CyclicBarrier;

/**
 * The timing harness of {@link FmaPeak} and {@link MemoryBandwidth}: {@code threads} fresh threads start together
 * at a barrier, each repeats its work until a common duration has passed, and the round reports the work units
 * all of them finished per second of wall time. Both bounds are measured the same way so that, on a machine
 * shared with other jobs, they see the same share of the cores.
 */
final class TimedRounds {

    /** One thread's share of a round: repeats its work until {@code deadlineNanos} (at least once), returns the units done. */
    @FunctionalInterface
    interface Worker {
        long runUntil(int thread, long deadlineNanos);
    }

    private TimedRounds() {
    }

    /** Units per second of all threads together over one round of about {@code millis}. */
    static double unitsPerSecond(int threads, long millis, String name, Worker worker) {
        CyclicBarrier start = new CyclicBarrier(threads + 1);
        long[] units = new long[threads];
        Thread[] ts = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            int id = i;
            ts[i] = new Thread(() -> {
                try {
                    start.await();
                } catch (Exception e) {
                    return;
                }
                units[id] = worker.runUntil(id, System.nanoTime() + millis * 1_000_000L);
            }, "jlens-" + name + "-" + i);
            ts[i].setDaemon(true);
            ts[i].start();
        }
        try {
            start.await();
            long t0 = System.nanoTime();
            for (Thread t : ts) t.join();
            double secs = (System.nanoTime() - t0) / 1e9;
            long total = 0;
            for (long u : units) total += u;
            return total / secs;
        } catch (Exception e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(name + " measurement interrupted", e);
        }
    }
}
