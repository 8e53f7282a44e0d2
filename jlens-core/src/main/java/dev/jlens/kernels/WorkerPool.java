package dev.jlens.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed set of daemon platform threads that run one job at a time, each participant {@code 0..size-1}
 * getting its own index (the caller is participant 0) and so its own scratch buffers: nothing is allocated
 * per task. Work is either split by index ({@link #run}) or handed out as numbered tasks that participants
 * claim in turn ({@link #forEach}); the kernels make every task's result independent of who computes it,
 * so claiming only balances load (a preempted core on a shared machine no longer stalls the others).
 * Not a general executor: jobs are serialised by a lock, and a job submitted from inside a job runs inline.
 */
final class WorkerPool {

    /** Body of a parallel job: called once per participant with its index. */
    @FunctionalInterface
    interface Job {
        void run(int participant);
    }

    /** Body of a task-parallel job: task t run by participant p. */
    @FunctionalInterface
    interface Task {
        void run(int participant, int task);
    }

    /**
     * Spin this long for the next job (or, as the caller, for the workers to finish) before parking: a forward
     * pass issues kernels back to back, and a parked thread on a virtual machine takes 10-50 µs to run again
     * after its unpark, milliseconds when its vCPU was descheduled. 50 µs was too short for a decoding step:
     * a worker done with its last chunk of a down projection waits for the caller's last chunk (a 2 MB chunk
     * of a k = 8192 matrix takes 60-130 µs) and the caller's norm or attention after it, so it parked, and 9-13
     * of a Llama-3.2-1B step's 83 jobs started 10-50 µs late. At 2 ms none did, and alternating the two settings
     * step by step in one run (99 pairs, memory at 50-70 GB/s) gave 80.1% against 78.7% of the bandwidth bound
     * (2026-12-07, docs/PERFORMANCE.md). The cost: an idle pool's workers spin for 2 ms after its last job.
     */
    private static final long SPIN_NANOS = 2_000_000;
    private static final int CLOSED = Integer.MIN_VALUE;

    /**
     * One job as the workers see it, published through the single volatile {@link #current}. Everything a
     * worker needs to take part travels in this one object: a worker that reads a job's fields one by one
     * from the pool can see one job's generation and the next job's mode, and run the next job twice (a
     * worker late for an optional job then read the following mandatory one as its own, ran it, and ran it
     * again on seeing the newer generation).
     */
    private static final class Dispatch {
        final int generation;
        final Job job;
        /** Whether the job may run without the workers that have not started it yet ({@link #forEach}). */
        final boolean optional;
        final Thread caller;
        /** Mandatory jobs: workers still to finish. */
        final AtomicInteger pending;
        /** Optional jobs: workers that entered, or {@link #CLOSED} once the caller stopped admitting more. */
        final AtomicInteger entered = new AtomicInteger(0);
        final AtomicInteger finished = new AtomicInteger();

        Dispatch(int generation, Job job, boolean optional, Thread caller, int workers) {
            this.generation = generation;
            this.job = job;
            this.optional = optional;
            this.caller = caller;
            this.pending = new AtomicInteger(workers);
        }

        /** For a worker: joins this optional job unless the caller has closed it. */
        boolean enter() {
            while (true) {
                int n = entered.get();
                if (n == CLOSED) return false;
                if (entered.compareAndSet(n, n + 1)) return true;
            }
        }
    }

    private final int size;
    private final Thread[] workers;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger nextTask = new AtomicInteger();
    private volatile Dispatch current = new Dispatch(0, null, true, null, 0);
    private int generation;
    private volatile boolean shutdown;
    private volatile Throwable failure;
    /** True while a job runs (written and read only under the lock), so a nested job runs inline. */
    private boolean inJob;

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
        if (size == 1 || isWorker() || (lock.isHeldByCurrentThread() && inJob)) {
            // Nested use (or a single thread): run every share here, in index order.
            for (int i = 0; i < size; i++) job.run(i);
            return;
        }
        lock.lock();
        inJob = true;
        try {
            failure = null;
            Dispatch d = publish(job, false);
            try {
                job.run(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            awaitZero(d.pending);
            rethrowFailure();
        } finally {
            inJob = false;
            lock.unlock();
        }
    }

    /**
     * Runs tasks 0..tasks-1, each exactly once, claimed in order by whichever participant is free. Workers
     * are optional here: once the caller runs out of tasks it closes the job and waits only for the workers
     * that have started it. On a machine with more runnable threads than cores a woken worker may wait
     * milliseconds for a core, and a generation step issues a hundred small jobs; waiting for a worker that
     * would find no task left would cost more than the job.
     */
    void forEach(int tasks, Task task) {
        if (tasks <= 0) return;
        if (size == 1 || tasks == 1 || isWorker() || (lock.isHeldByCurrentThread() && inJob)) {
            for (int t = 0; t < tasks; t++) task.run(0, t);
            return;
        }
        lock.lock();
        inJob = true;
        try {
            failure = null;
            nextTask.set(0);
            Job job = id -> {
                for (int t = nextTask.getAndIncrement(); t < tasks; t = nextTask.getAndIncrement()) task.run(id, t);
            };
            Dispatch d = publish(job, true);
            try {
                job.run(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            int started = d.entered.getAndSet(CLOSED);
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (d.finished.get() < started) {
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            rethrowFailure();
        } finally {
            inJob = false;
            lock.unlock();
        }
    }

    private Dispatch publish(Job job, boolean optional) {
        Dispatch d = new Dispatch(++generation, job, optional, Thread.currentThread(), size - 1);
        current = d;
        for (Thread w : workers) LockSupport.unpark(w);
        return d;
    }

    private void awaitZero(AtomicInteger counter) {
        long spinUntil = System.nanoTime() + SPIN_NANOS;
        while (counter.get() > 0) {
            if (System.nanoTime() < spinUntil) Thread.onSpinWait();
            else LockSupport.park(this);
        }
    }

    private void rethrowFailure() {
        Throwable t = failure;
        if (t != null) {
            failure = null;
            if (t instanceof RuntimeException re) throw re;
            if (t instanceof Error e) throw e;
            throw new IllegalStateException(t);
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
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            Dispatch d;
            while ((d = current).generation == seen && !shutdown) {
                // A short spin catches the next kernel of a forward pass without a park/unpark round trip.
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            if (shutdown) return;
            seen = d.generation;
            // A mandatory job is never replaced before every worker has finished it, so a worker never skips
            // one; it may skip optional jobs, and one it reaches after the caller closed it is not entered.
            if (d.optional && !d.enter()) continue;
            try {
                d.job.run(id);
            } catch (Throwable t) {
                recordFailure(t);
            } finally {
                if (d.optional) {
                    d.finished.incrementAndGet();
                    LockSupport.unpark(d.caller);
                } else if (d.pending.decrementAndGet() == 0) {
                    LockSupport.unpark(d.caller);
                }
            }
        }
    }

    /** Stops the threads; used when the owning kernels become unreachable. */
    void shutdown() {
        shutdown = true;
        for (Thread w : workers) LockSupport.unpark(w);
    }
}
