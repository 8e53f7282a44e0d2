package dev.jlens.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jlens.JlensException;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The published config.json of real models of the new families (their weights cannot be downloaded here):
 * each is read by its family into the tensor list whose parameter count the model card states, and the
 * variants jlens does not run (long-context RoPE, a vision tower, mixture-of-experts) are refused naming the
 * config field. (Qwen3-0.6B, Gemma 2 2B and Llama 3.2 1B / 3 8B are checked the same way as synth presets.)
 */
class RealConfigsTest {

    static final String PHI3_MINI_4K = """
            {"architectures":["Phi3ForCausalLM"],"attention_bias":false,"bos_token_id":1,"eos_token_id":32000,
             "hidden_act":"silu","hidden_size":3072,"intermediate_size":8192,"max_position_embeddings":4096,
             "model_type":"phi3","num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":32,
             "original_max_position_embeddings":4096,"pad_token_id":32000,"rms_norm_eps":1e-05,"rope_scaling":null,
             "rope_theta":10000.0,"sliding_window":2047,"tie_word_embeddings":false,"vocab_size":32064}""";
    static final String OLMO2_7B_INSTRUCT = """
            {"architectures":["Olmo2ForCausalLM"],"attention_bias":false,"eos_token_id":100257,"hidden_act":"silu",
             "hidden_size":4096,"intermediate_size":11008,"max_position_embeddings":4096,"model_type":"olmo2",
             "num_attention_heads":32,"num_hidden_layers":32,"num_key_value_heads":32,"pad_token_id":100277,
             "rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":500000,"tie_word_embeddings":false,"vocab_size":100352}""";
    static final String GEMMA3_1B_IT = """
            {"architectures":["Gemma3ForCausalLM"],"attention_bias":false,"attn_logit_softcapping":null,"bos_token_id":2,
             "cache_implementation":"hybrid","eos_token_id":[1,106],"final_logit_softcapping":null,"head_dim":256,
             "hidden_activation":"gelu_pytorch_tanh","hidden_size":1152,"intermediate_size":6912,
             "max_position_embeddings":32768,"model_type":"gemma3_text","num_attention_heads":4,"num_hidden_layers":26,
             "num_key_value_heads":1,"pad_token_id":0,"query_pre_attn_scalar":256,"rms_norm_eps":1e-06,
             "rope_local_base_freq":10000,"rope_scaling":null,"rope_theta":1000000,"sliding_window":512,
             "sliding_window_pattern":6,"vocab_size":262144}""";

    static ModelConfig config(String json) {
        try {
            return new ModelConfig(Path.of("config.json"), new ObjectMapper().readTree(json));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @ParameterizedTest
    @CsvSource({"PHI3_MINI_4K, phi3, 3821079552", "OLMO2_7B_INSTRUCT, olmo2, 7298617344", "GEMMA3_1B_IT, gemma, 999885952"})
    void publishedConfigsLoadWithTheirParameterCounts(String name, String family, long parameters) throws Exception {
        ModelConfig cfg = config((String) RealConfigsTest.class.getDeclaredField(name).get(null));
        ModelFamily f = ModelFamilies.forConfig(cfg);
        assertEquals(family, f.name());
        assertEquals(parameters, f.tensors(cfg, null).stream().mapToLong(TensorSpec::numel).sum(), name);
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            // Phi-3-mini-128k-instruct (and the older "su" spelling)
            "{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":3072,\"num_hidden_layers\":32,\"num_attention_heads\":32,"
                    + "\"intermediate_size\":8192,\"vocab_size\":32064,\"rope_scaling\":{\"type\":\"longrope\",\"long_factor\":[1.0],"
                    + "\"short_factor\":[1.0]}} | rope_scaling | longrope",
            "{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":3072,\"num_hidden_layers\":32,\"num_attention_heads\":32,"
                    + "\"intermediate_size\":8192,\"vocab_size\":32064,\"rope_scaling\":{\"type\":\"su\"}} | rope_scaling | su",
            // gemma-3-4b-it: the multimodal checkpoint
            "{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"model_type\":\"gemma3\",\"text_config\":{\"hidden_size\":2560},"
                    + "\"vision_config\":{\"model_type\":\"siglip_vision_model\"}} | vision_config | vision tower",
            // Qwen3-30B-A3B, Phi-3.5-MoE, Mixtral
            "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"model_type\":\"qwen3_moe\",\"num_experts\":128} | num_experts | mixture-of-experts",
            "{\"architectures\":[\"PhiMoEForCausalLM\"],\"num_local_experts\":16} | num_local_experts | mixture-of-experts",
            "{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
                    + "\"intermediate_size\":8,\"vocab_size\":8,\"num_experts\":8} | num_experts | mixture-of-experts"})
    void unsupportedVariantsAreRefusedNamingTheField(String json, String field, String what) {
        ModelConfig cfg = config(json);
        JlensException e = assertThrows(JlensException.class, () -> ModelFamilies.forConfig(cfg).tensors(cfg, null));
        assertTrue(e.getMessage().contains("\"" + field + "\"") && e.getMessage().contains(what), e.getMessage());
    }
}
