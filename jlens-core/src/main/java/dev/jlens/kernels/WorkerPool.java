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

    /** Spin this long for the next job before parking: a forward pass issues kernels back to back. */
    private static final long SPIN_NANOS = 50_000;

    private final int size;
    private final Thread[] workers;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicInteger nextTask = new AtomicInteger();
    private volatile Job job;
    /** Whether the current job may run without the workers that have not started it yet ({@link #forEach}). */
    private volatile boolean optional;
    /**
     * For an optional job: how many workers have entered it, or {@link #CLOSED} once the caller has finished its
     * own share and stopped admitting more (also between jobs).
     */
    private final AtomicInteger entered = new AtomicInteger(CLOSED);
    private final AtomicInteger finished = new AtomicInteger();
    private static final int CLOSED = Integer.MIN_VALUE;
    private volatile int generation;
    private volatile boolean shutdown;
    private volatile Thread caller;
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
            caller = Thread.currentThread();
            pending.set(size - 1);
            this.job = job;
            optional = false;
            generation++;
            for (Thread w : workers) LockSupport.unpark(w);
            try {
                job.run(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (pending.get() > 0) {
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            this.job = null;
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
            caller = Thread.currentThread();
            nextTask.set(0);
            finished.set(0);
            this.job = id -> {
                for (int t = nextTask.getAndIncrement(); t < tasks; t = nextTask.getAndIncrement()) task.run(id, t);
            };
            optional = true;
            entered.set(0);
            generation++;
            for (Thread w : workers) LockSupport.unpark(w);
            try {
                job.run(0);
            } catch (Throwable t) {
                recordFailure(t);
            }
            int started = entered.getAndSet(CLOSED);
            long spinUntil = System.nanoTime() + SPIN_NANOS;
            while (finished.get() < started) {
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            this.job = null;
            rethrowFailure();
        } finally {
            inJob = false;
            lock.unlock();
        }
    }

    /** For a worker: joins the current optional job unless the caller has closed it. */
    private boolean enter() {
        while (true) {
            int n = entered.get();
            if (n == CLOSED) return false;
            if (entered.compareAndSet(n, n + 1)) return true;
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
            while (generation == seen && !shutdown) {
                // A short spin catches the next kernel of a forward pass without a park/unpark round trip.
                if (System.nanoTime() < spinUntil) Thread.onSpinWait();
                else LockSupport.park(this);
            }
            if (shutdown) return;
            seen = generation;
            if (optional) {
                // A mandatory job cannot start before every worker has done the one before it, so a worker
                // that reads "optional" late can only meet optional jobs here; it enters whichever is open.
                if (!enter()) continue;
                Job j = job;
                try {
                    if (j != null) j.run(id);
                } catch (Throwable t) {
                    recordFailure(t);
                } finally {
                    finished.incrementAndGet();
                    LockSupport.unpark(caller);
                }
                continue;
            }
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
