package dev.jlens.load;

import com.sun.management.HotSpotDiagnosticMXBean;
import com.sun.management.OperatingSystemMXBean;
import dev.jlens.JlensException;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.TensorSpec;
import dev.jlens.model.ModelInfo;

import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;

/**
 * What a model will hold in memory besides its memory-mapped checkpoint, estimated from the tensor headers
 * before any weight is read, so that a model too large for this JVM is refused at once with advice instead of
 * failing with an OutOfMemoryError minutes into loading.
 *
 * <p>Mapped weights cost no heap; what is copied is:
 * <ul>
 *   <li>{@code heapBytes}, on the Java heap: every 1-D float tensor, widened to a float[] (norm weights and
 *       biases), and the weights stored [in, out] (GPT-2's Conv1D), which are transposed into a new array in
 *       their own element type.</li>
 *   <li>{@code packedBytes}, off the heap: the kernels' packed copy of every linear weight (a 2-D float tensor
 *       that is not an embedding table), in its stored element type with its rows padded to a whole panel.
 *       Native memory allocated by the JVM counts against {@code -XX:MaxDirectMemorySize}, which defaults
 *       to the maximum heap size.</li>
 * </ul>
 * An explicit (untied) unembedding is counted as packed; a tied one, packed only when logits are
 * asked for, is not. Rows and panels are counted as the widest kernel (32-row panels) pads them, so the
 * estimate errs on the high side by at most 31 rows per matrix.
 */
public record MemoryEstimate(long heapBytes, long packedBytes) {

    /** The widest packed panel (two 512-bit vectors of floats). */
    static final int MAX_PANEL_ROWS = 32;

    /** Heap that is not ours to fill with weights: tokenizer, activations of a batch, the JVM's own. */
    static final double HEAP_SHARE = 0.75;

    /** What this JVM and machine allow: max heap, max direct (native) memory, physical memory. */
    public record Limits(long maxHeap, long maxDirect, long physical) {

        /** The limits of the running JVM (container-aware, as the JDK reports them). */
        public static Limits ofThisJvm() {
            long heap = Runtime.getRuntime().maxMemory();
            long direct = heap;
            try {
                String v = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class)
                        .getVMOption("MaxDirectMemorySize").getValue();
                long set = Long.parseLong(v);
                if (set > 0) direct = set;
            } catch (RuntimeException e) {
                // not HotSpot: the default (the max heap) is the best guess
            }
            long physical = Long.MAX_VALUE;
            if (ManagementFactory.getOperatingSystemMXBean() instanceof OperatingSystemMXBean os) {
                physical = os.getTotalMemorySize();
            }
            return new Limits(heap, direct, physical);
        }
    }

    /**
     * The estimate for loading {@code weights} as {@code family}, from the family's list of the tensors it
     * reads (their roles say which are vectors, embeddings, linear weights, or stored transposed), sized by
     * the checkpoint's headers.
     */
    public static MemoryEstimate of(ModelFamily family, ModelConfig config, TensorSource weights) {
        long heap = 0, packed = 0;
        for (TensorSpec t : family.tensors(config, weights)) {
            TensorEntry e = weights.find(t.name());
            if (e == null || !e.dtype().isFloat()) continue;
            if (e.rank() == 1) {
                heap = saturatedAdd(heap, saturatedMul(e.shape()[0], Float.BYTES));
            } else if (e.rank() == 2 && !t.role().isEmbedding()) {
                long rows = e.shape()[0], cols = e.shape()[1];
                long bytes = saturatedMul(saturatedMul(rows, cols), e.dtype().bytes());
                if (t.transposed()) {
                    heap = saturatedAdd(heap, bytes);
                    // transposed: the stored columns become the packed rows
                    long tmp = rows;
                    rows = cols;
                    cols = tmp;
                }
                long paddedRows = saturatedMul((rows + MAX_PANEL_ROWS - 1) / MAX_PANEL_ROWS, MAX_PANEL_ROWS);
                packed = saturatedAdd(packed, saturatedMul(saturatedMul(paddedRows, cols), e.dtype().bytes()));
            }
        }
        return new MemoryEstimate(heap, packed);
    }

    /**
     * Refuses with advice when the estimate cannot fit: the heap copies in {@value #HEAP_SHARE} of the max
     * heap, the packed weights in the direct-memory limit, both together in the machine's memory.
     */
    public void check(String model, Limits limits) {
        boolean heapFits = heapBytes <= (long) (limits.maxHeap() * HEAP_SHARE);
        boolean directFits = packedBytes <= limits.maxDirect();
        long total = saturatedAdd(heapBytes, packedBytes);
        if (total > limits.physical()) {
            throw new JlensException(model + ": this model needs about " + gb(total) + " of memory once loaded ("
                    + describe() + "), more than this machine has (" + gb(limits.physical()) + "); it cannot be run "
                    + "here. A smaller model, or a 16-bit checkpoint of this one, needs less");
        }
        if (heapFits && directFits) return;
        long needed = Math.max((long) Math.ceil(heapBytes / HEAP_SHARE), packedBytes);
        long suggestGb = Math.min(Math.max(1, ceilDiv(needed + (needed >> 3), 1L << 30)), Math.max(1, limits.physical() >> 30));
        StringBuilder sb = new StringBuilder(model).append(": loading this model needs about ").append(describe())
                .append(", but this JVM allows ").append(gb(limits.maxHeap())).append(" of heap");
        if (limits.maxDirect() != limits.maxHeap()) sb.append(" and ").append(gb(limits.maxDirect())).append(" of direct memory");
        sb.append(". Start jlens with more memory, e.g. JLENS_JAVA_OPTS=-Xmx").append(suggestGb).append('g');
        if (!directFits && limits.maxDirect() != limits.maxHeap()) {
            sb.append(" -XX:MaxDirectMemorySize=").append(suggestGb).append('g');
        }
        sb.append(" (the packed weights live outside the heap but count against -XX:MaxDirectMemorySize, which is "
                + "the -Xmx value unless set)");
        throw new JlensException(sb.toString());
    }

    /** Share of the max heap one batch's activations may take; the rest holds the weights' heap copies and results. */
    static final double BATCH_SHARE = 0.5;

    /**
     * Float values a forward pass holds per token besides the hooked ones: the residual stream, norm outputs,
     * q/k/v/context/attention and MLP outputs (about a dozen rows of d_model, as the families allocate
     * them), the MLP's hidden layer and, with logits, a row over the vocabulary.
     */
    static long valuesPerToken(ModelInfo info, int hooks, boolean logits) {
        long d = info.dModel();
        return 12 * d + info.dMlp() + (long) hooks * d + (logits ? info.vocabSize() : 0);
    }

    /** Tokens in the largest batch when {@code prompts} are run {@code batchSize} at a time, in order. */
    static long largestBatchTokens(List<int[]> prompts, int batchSize) {
        long max = 0;
        for (int from = 0; from < prompts.size(); from += batchSize) {
            long t = 0;
            for (int i = from; i < Math.min(prompts.size(), from + batchSize); i++) t += prompts.get(i).length;
            max = Math.max(max, t);
            if (from > prompts.size() - batchSize) break; // the next start would overflow
        }
        return max;
    }

    /**
     * Refuses a batch size whose activations cannot fit in {@value #BATCH_SHARE} of the max heap:
     * tokens of the largest batch × (hooked tensors + working rows) × d_model × 4 bytes. The message names
     * the largest batch size that fits, when there is one.
     */
    public static void checkBatch(String option, ModelInfo info, List<int[]> prompts, int batchSize, int hooks,
                                  boolean logits, Limits limits) {
        long perToken = saturatedMul(valuesPerToken(info, hooks, logits), Float.BYTES);
        long budget = (long) (limits.maxHeap() * BATCH_SHARE);
        long tokens = largestBatchTokens(prompts, batchSize);
        long bytes = saturatedMul(tokens, perToken);
        if (bytes <= budget) return;
        int fits = 0;
        for (int lo = 1, hi = batchSize - 1; lo <= hi; ) {
            int mid = (lo + hi) >>> 1;
            if (saturatedMul(largestBatchTokens(prompts, mid), perToken) <= budget) {
                fits = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        throw new JlensException(option + " " + batchSize + ": the largest batch holds " + tokens + " tokens, whose "
                + "activations need about " + gb(bytes) + " (" + tokens + " tokens × " + valuesPerToken(info, hooks, logits)
                + " values × 4 bytes: " + hooks + " hooked tensors and the forward pass's working rows of d_model "
                + info.dModel() + (logits ? ", and logits over " + info.vocabSize() + " tokens" : "") + "), more than "
                + "half of this JVM's " + gb(limits.maxHeap()) + " heap. "
                + (fits > 0 ? "Use " + option + " " + fits + " or less, or" : "Shorten the prompts, or")
                + " start jlens with more memory (JLENS_JAVA_OPTS=-Xmx"
                + Math.max(1, ceilDiv(saturatedMul(bytes, 3), 1L << 30)) + "g)");
    }

    private String describe() {
        return gb(heapBytes) + " of Java heap for norms, biases and transposed weights and " + gb(packedBytes)
                + " for the packed weight matrices";
    }

    static String gb(long bytes) {
        if (bytes == Long.MAX_VALUE) return "more than 8 EB";
        if (bytes < (1L << 30)) return String.format(Locale.ROOT, "%.0f MB", bytes / (double) (1L << 20));
        return String.format(Locale.ROOT, "%.1f GB", bytes / (double) (1L << 30));
    }

    private static long ceilDiv(long a, long b) {
        return a <= 0 ? 0 : (a - 1) / b + 1;
    }

    static long saturatedAdd(long a, long b) {
        long r = a + b;
        return ((a ^ r) & (b ^ r)) < 0 ? Long.MAX_VALUE : r;
    }

    static long saturatedMul(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        long lo = a * b;
        return (hi == 0 && lo >= 0) ? lo : Long.MAX_VALUE;
    }
}
