package dev.jlens.spark;

import org.apache.spark.TaskContext;

import java.io.Serializable;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Makes the first attempt of one partition's task fail after it has written part of its output, so the tests
 * can show that Spark's retry and output committer still give a complete, exact table. Off ({@link #NONE})
 * in every real run; the tests set it through the job's settings.
 */
public record FailureInjection(int partition) implements Serializable {

    public static final FailureInjection NONE = new FailureInjection(-1);

    private static final AtomicInteger INJECTED = new AtomicInteger();

    /** Throws if this is the first attempt of the chosen partition's task. */
    void maybeFail() {
        TaskContext tc = TaskContext.get();
        if (partition >= 0 && tc != null && tc.partitionId() == partition && tc.attemptNumber() == 0) {
            INJECTED.incrementAndGet();
            throw new IllegalStateException("injected failure in partition " + partition + ", attempt 0");
        }
    }

    /** Failures injected in this JVM so far (for the tests). */
    public static int injected() {
        return INJECTED.get();
    }
}
