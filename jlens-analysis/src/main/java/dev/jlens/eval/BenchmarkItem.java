package dev.jlens.eval;

/**
 * One benchmark prompt.
 *
 * @param id       the file's own id (HarmBench BehaviorID, JailbreakBench Index, XSTest id) or the row number
 * @param prompt   the text given to the model (HarmBench contextual behaviours: the context, a separator, then
 *                 the behaviour, as HarmBench builds it)
 * @param category the benchmark's category (empty categories read as "uncategorised")
 * @param harmful  whether the prompt asks for something harmful: every AdvBench, HarmBench, JailbreakBench and
 *                 StrongREJECT prompt; XSTest's label; a generic file's --label-field
 * @param behavior what a judge checks the completion against (the behaviour without its context)
 */
public record BenchmarkItem(String id, String prompt, String category, boolean harmful, String behavior) {
}
