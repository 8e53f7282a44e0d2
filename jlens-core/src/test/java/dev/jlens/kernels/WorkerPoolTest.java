package dev.jlens.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class WorkerPoolTest {

    /**
     * Optional (forEach) and mandatory (run) jobs alternate with eight participants, more than most test
     * machines have cores, so workers are often preempted between seeing a job and running it: a worker late
     * for a forEach once read the next run's mode and ran that run twice.
     */
    @Test
    void everyTaskRunsExactlyOnceAndEveryParticipantGetsItsIndex() {
        WorkerPool pool = new WorkerPool(8);
        try {
            for (int round = 0; round < 5000; round++) {
                int tasks = round % 17;
                AtomicIntegerArray seen = new AtomicIntegerArray(Math.max(tasks, 1));
                pool.forEach(tasks, (id, t) -> seen.incrementAndGet(t));
                for (int t = 0; t < tasks; t++) assertEquals(1, seen.get(t), "task " + t + " of " + tasks);
                AtomicIntegerArray ids = new AtomicIntegerArray(8);
                pool.run(ids::incrementAndGet);
                for (int i = 0; i < 8; i++) assertEquals(1, ids.get(i), "participant " + i);
            }
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void aFailureReachesTheCallerAndThePoolKeepsWorking() {
        WorkerPool pool = new WorkerPool(2);
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.forEach(8, (id, t) -> {
                if (t == 5) throw new IllegalStateException("task 5 failed");
            }));
            assertEquals("task 5 failed", e.getMessage());
            AtomicIntegerArray seen = new AtomicIntegerArray(8);
            pool.forEach(8, (id, t) -> seen.incrementAndGet(t));
            for (int t = 0; t < 8; t++) assertEquals(1, seen.get(t));
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void aJobStartedInsideAJobRunsInline() {
        WorkerPool pool = new WorkerPool(2);
        try {
            AtomicIntegerArray inner = new AtomicIntegerArray(4);
            pool.run(id -> {
                if (id == 0) pool.forEach(4, (id2, t) -> inner.incrementAndGet(t));
            });
            for (int t = 0; t < 4; t++) assertEquals(1, inner.get(t));
        } finally {
            pool.shutdown();
        }
    }
}
