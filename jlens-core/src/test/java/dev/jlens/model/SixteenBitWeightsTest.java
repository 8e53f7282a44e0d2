package dev.jlens.model;

import dev.jlens.hooks.Hooks;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.safetensors.SafetensorsFile;
import dev.jlens.io.safetensors.SafetensorsWriter;
import dev.jlens.load.ModelLoader;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;
import dev.jlens.testing.Fixtures;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * GPT-2 and the Llama family run F16 and BF16 checkpoints in their stored type: the model reports the
 * 16-bit type, and its logits equal those of an F32 checkpoint holding the very same (widened) values,
 * because kernels widen 16-bit weights exactly and compute in float32 either way.
 */
class SixteenBitWeightsTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @CsvSource({"gpt2_tiny, F16", "gpt2_tiny, BF16", "llama_tiny, F16", "llama_tiny, BF16", "qwen2_tiny, BF16"})
    void sixteenBitCheckpointComputesAsItsWidenedF32Copy(String fixture, DType dtype) throws IOException {
        Path half = tmp.resolve("half"), wide = tmp.resolve("wide");
        SafetensorsWriter h = new SafetensorsWriter(), w = new SafetensorsWriter();
        try (SafetensorsFile in = SafetensorsFile.open(Fixtures.dir(fixture).resolve("model.safetensors"))) {
            for (String name : in.names()) {
                TensorEntry e = in.find(name);
                float[] v = e.toFloatArray();
                short[] bits = new short[v.length];
                float[] widened = new float[v.length];
                for (int i = 0; i < v.length; i++) {
                    bits[i] = dtype == DType.F16 ? Float.floatToFloat16(v[i]) : toBf16(v[i]);
                    widened[i] = dtype == DType.F16 ? Float.float16ToFloat(bits[i]) : Float.intBitsToFloat(bits[i] << 16);
                }
                if (dtype == DType.F16) h.putF16Bits(name, bits, e.shape());
                else h.putBF16Bits(name, bits, e.shape());
                w.putF32(name, widened, e.shape());
            }
        }
        for (Path d : List.of(half, wide)) {
            Files.createDirectories(d);
            for (String f : List.of("config.json", "tokenizer.json")) Files.copy(Fixtures.dir(fixture).resolve(f), d.resolve(f));
        }
        h.write(half.resolve("model.safetensors"));
        w.write(wide.resolve("model.safetensors"));

        try (HookedModel mh = ModelLoader.loadFolder(new ModelLocation("half", null, half, false));
             HookedModel mw = ModelLoader.loadFolder(new ModelLocation("wide", null, wide, false))) {
            assertEquals(dtype, mh.info().weightDType());
            assertEquals(DType.F32, mw.info().weightDType());
            assertEquals(mw.info().weightBytes(), 2 * mh.info().weightBytes());
            TokenBatch batch = TokenBatch.of(List.of(mh.encode("The cat sat on the mat.", null), mh.encode("Hello", null)));
            FloatTensor a = mh.forward(batch, Hooks.none()), b = mw.forward(batch, Hooks.none());
            float[] x = a.data(), y = b.data();
            assertEquals(y.length, x.length);
            for (int i = 0; i < x.length; i++) assertEquals(y[i], x[i], 1e-4, "logit " + i);
        }
    }

    /** Round to nearest even, as torch's .to(torch.bfloat16) does (no NaNs in these weights). */
    private static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16);
    }
}
