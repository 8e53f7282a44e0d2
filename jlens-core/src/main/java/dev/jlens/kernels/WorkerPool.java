package dev.jlens.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed set of daemon platform threads that run one job at a time, each participant {@code 0..size-1}
 * getting its own index (the caller is participant 0). Kernels split work by that index, so a given index
 * always owns the same rows or panels and keeps its own scratch buffers: nothing is allocated per task and
 * no work-stealing pool decides who computes what. Not a general executor: jobs are serialised by a lock,
 * and a job submitted from inside a job runs inline on the calling participant.
 */
final class WorkerPool {

    /** Body of a parallel job: called once per participant with its index. */
    @FunctionalInterface
    interface Job {
        void run(int participant);
    }

    private final int size;
    private final Thread[] workers;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger pending = new AtomicInteger();
    private volatile Job job;
    private volatile int generation;
    private volatile boolean shutdown;
    private volatile Thread caller;
    private volatile Throwable failure;

    WorkerPool(int size) {
        if (size < 1) throw new IllegalArgumentException("thread count " + size + " must be at least 1");
        this.size = size;
        this.workers = new Thread[size - 1];
        for (int i = 0; i < workers.length; i++) {
            int id = i + 1;
            Thread t = new Thread(() -> workerLoop(id), "jlens-kernels-" + id);
            t.setDaemon(true);
            workers[i] = t;
            t.start();
        }
    }

    int size() {
        return size;
    }

    /** Runs job(i) for every participant i and returns when all are done, rethrowing the first failure. */
    void run(Job job) {
        if (size == 1 || lock.isHeldByCurrentThread() || isWorker()) {
            // Nested use (or a single thread): run every share here, in index order.
            for (int i = 0; i < size; i++) job.run(i);
            return;
        }
        lock.lock();
        try {
            failure = null;
            caller = Thread.currentThread();
            pending.set(size - 1);
            this.job = job;
            generation++;
            for (Thread w : workers) LockSupport.unpark(w);
            try {
                job.run(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            int spins = 0;
            while (pending.get() > 0) {
                if (++spins < 20_000) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            this.job = null;
            Throwable t = failure;
            if (t != null) {
                failure = null;
                if (t instanceof RuntimeException re) throw re;
                if (t instanceof Error e) throw e;
                throw new IllegalStateException(t);
            }
        } finally {
            lock.unlock();
        }
    }

    private boolean isWorker() {
        Thread me = Thread.currentThread();
        for (Thread w : workers) if (w == me) return true;
        return false;
    }

    private void recordFailure(Throwable t) {
        synchronized (this) {
            if (failure == null) failure = t;
        }
    }

    private void workerLoop(int id) {
        int seen = 0;
        while (!shutdown) {
            int spins = 0;
            while (generation == seen && !shutdown) {
                // A short spin catches the next kernel of a forward pass without a park/unpark round trip.
                if (++spins < 20_000) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            if (shutdown) return;
            seen = generation;
            Job j = job;
            try {
                if (j != null) j.run(id);
            } catch (Throwable t) {
                recordFailure(t);
            } finally {
                if (pending.decrementAndGet() == 0) LockSupport.unpark(caller);
            }
        }
    }

    /** Stops the threads; used when the owning kernels become unreachable. */
    void shutdown() {
        shutdown = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
