package dev.jlens.model.bert;

import dev.jlens.JlensException;
import dev.jlens.hooks.HookKind;
import dev.jlens.hooks.HookPoint;
import dev.jlens.hooks.Hooks;
import dev.jlens.io.DType;
import dev.jlens.io.TensorEntry;
import dev.jlens.io.TensorSource;
import dev.jlens.io.onnx.OnnxAttribute;
import dev.jlens.io.onnx.OnnxModel;
import dev.jlens.io.onnx.OnnxNode;
import dev.jlens.kernels.Activation;
import dev.jlens.kernels.AttentionLayout;
import dev.jlens.kernels.AttentionSpec;
import dev.jlens.kernels.Backend;
import dev.jlens.kernels.DeviceTensor;
import dev.jlens.kernels.WeightMatrix;
import dev.jlens.model.ForwardOptions;
import dev.jlens.model.HookSite;
import dev.jlens.model.ModelConfig;
import dev.jlens.model.ModelFamily;
import dev.jlens.model.ModelInfo;
import dev.jlens.model.TensorRole;
import dev.jlens.model.TensorSpec;
import dev.jlens.model.TransformerModel;
import dev.jlens.model.Weights;
import dev.jlens.tensor.FloatTensor;
import dev.jlens.tensor.TokenBatch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A BERT encoder ({@code BertModel}, e.g. sentence-transformers' all-MiniLM-L6-v2), read top to bottom like
 * HF's modeling_bert.py: word + position + token-type (always type 0) embeddings and their LayerNorm, then
 * post-LayerNorm blocks with bidirectional self-attention over the real tokens of each packed sequence (the
 * packing is the attention mask: there is no padding). There is no LM head: {@link #forward} returns the final
 * hidden states {@code [tokens, d_model]}, the input of a sentence-embedding pooling.
 *
 * <p>Hook points, with TransformerLens' names placed in a post-LN block (x is the block input):
 * <pre>
 * hook_embed                   LayerNorm_emb(word + position + token_type[0])   (= blocks.0.hook_resid_pre)
 * blocks.L.hook_resid_pre      x                                                 (= blocks.L-1.hook_resid_post)
 * blocks.L.attn.hook_pattern   softmax(q·kᵀ/√d_head) per head, [heads, len, len] per sequence, packed
 * blocks.L.hook_attn_out       attention.output.dense(context) incl. bias, before the residual add
 * blocks.L.hook_resid_mid      LayerNorm_1(x + attn_out): after the residual add AND its LayerNorm,
 *                              i.e. the MLP's input and the residual its output is added to
 * blocks.L.hook_mlp_out        output.dense(gelu(intermediate.dense(resid_mid))) incl. bias, before the add
 * blocks.L.hook_resid_post     LayerNorm_2(resid_mid + mlp_out), the block output
 * </pre>
 * Because both norms sit after the adds, resid_mid ≠ resid_pre + attn_out and resid_post ≠ resid_mid + mlp_out
 * (unlike pre-LN GPTs), and there is no final norm, hence no {@code ln_final.*} hooks. A hook's returned
 * value replaces the activation downstream (resid_mid feeds both the MLP and the second residual add).
 *
 * <p>Weights come from an ONNX export ({@link #fromOnnx}, where the MatMul weights have anonymous names and are
 * found through the graph's node names) or from an HF checkpoint ({@link #FAMILY}).
 */
public final class BertModel implements TransformerModel {

    /** HF checkpoints of {@code BertModel} (with or without the {@code bert.} prefix of the task models). */
    public static final ModelFamily FAMILY =
            new ModelFamily("bert", List.of("BertModel"), List.of("bert"), BertModel::load, BertModel::tensors);

    /** The tensors an HF BERT checkpoint holds, with their roles (BERT's norms sit after the residual adds). */
    static List<TensorSpec> tensors(ModelConfig cfg, TensorSource source) {
        String pre = source != null && source.contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        long d = cfg.requireInt("hidden_size"), dMlp = cfg.getInt("intermediate_size", 4 * (int) d);
        List<TensorSpec> out = new ArrayList<>();
        String e = pre + "embeddings.";
        out.add(new TensorSpec(e + "word_embeddings.weight", new long[]{cfg.requireInt("vocab_size"), d}, TensorRole.EMBED, -1, false, false));
        out.add(new TensorSpec(e + "position_embeddings.weight", new long[]{cfg.getInt("max_position_embeddings", 512), d},
                TensorRole.POS_EMBED, -1, false, false));
        out.add(new TensorSpec(e + "token_type_embeddings.weight", new long[]{cfg.getInt("type_vocab_size", 2), d},
                TensorRole.EMBED, -1, false, false));
        for (String p : List.of("weight", "bias")) {
            out.add(new TensorSpec(e + "LayerNorm." + p, new long[]{d}, TensorRole.ATTN_NORM, -1, p.equals("bias"), false));
        }
        int nLayers = cfg.requireInt("num_hidden_layers");
        Weights.checkLayers(cfg, source, "num_hidden_layers", nLayers);
        for (int l = 0; l < nLayers; l++) {
            String b = pre + "encoder.layer." + l + ".";
            Object[][] parts = {{"attention.self.query", TensorRole.Q, d, d}, {"attention.self.key", TensorRole.K, d, d},
                    {"attention.self.value", TensorRole.V, d, d}, {"attention.output.dense", TensorRole.O, d, d},
                    {"attention.output.LayerNorm", TensorRole.POST_ATTN_NORM, d, 0L},
                    {"intermediate.dense", TensorRole.UP, dMlp, d}, {"output.dense", TensorRole.DOWN, d, dMlp},
                    {"output.LayerNorm", TensorRole.POST_MLP_NORM, d, 0L}};
            for (Object[] part : parts) {
                long rows = (long) part[2], cols = (long) part[3];
                TensorRole role = (TensorRole) part[1];
                out.add(new TensorSpec(b + part[0] + ".weight", cols == 0 ? new long[]{rows} : new long[]{rows, cols}, role, l, false, false));
                out.add(new TensorSpec(b + part[0] + ".bias", new long[]{rows}, role, l, true, false));
            }
        }
        return out;
    }

    /** A linear layer in the {@code nn.Linear} layout [out, in], with its bias. */
    private record Linear(WeightMatrix w, float[] b) {
    }

    private record Block(Linear query, Linear key, Linear value, Linear attnOut, float[] ln1W, float[] ln1B,
                         Linear up, Linear down, float[] ln2W, float[] ln2B) {
    }

    private record Dims(int vocab, int d, int nHeads, int nLayers, int dMlp, int maxPos, int typeVocab, float eps,
                        Activation act) {
    }

    /** How a container names and lays out BERT's parameters; names are HF's module paths. */
    private interface Params {
        float[] vector(String name, int n);

        /** An embedding table [rows, cols]. */
        WeightMatrix table(String name, int rows, int cols);

        /** The weight of linear layer {@code module}, returned as [out, in]. */
        WeightMatrix linear(String module, int in, int out);

        long parameterCount();
    }

    private final ModelInfo info;
    private final Backend backend;
    private final int d, nHeads, headDim, dMlp, vocab;
    private final float eps;
    private final Activation act;
    private final WeightMatrix wordEmb, posEmb;
    private final float[] typeEmb0, embLnW, embLnB;
    private final Block[] blocks;
    private final List<HookPoint> hookPoints;
    private final HookPoint[][] blockHooks;
    private final HookPoint hookEmbed = HookPoint.global(HookKind.EMBED);

    private BertModel(ModelInfo info, Backend backend, Dims dims, WeightMatrix wordEmb, WeightMatrix posEmb, float[] typeEmb0,
                      float[] embLnW, float[] embLnB, Block[] blocks) {
        this.info = info;
        this.backend = backend;
        this.d = dims.d;
        this.nHeads = dims.nHeads;
        this.headDim = dims.d / dims.nHeads;
        this.dMlp = dims.dMlp;
        this.vocab = dims.vocab;
        this.eps = dims.eps;
        this.act = dims.act;
        this.wordEmb = wordEmb;
        this.posEmb = posEmb;
        this.typeEmb0 = typeEmb0;
        this.embLnW = embLnW;
        this.embLnB = embLnB;
        this.blocks = blocks;
        List<HookPoint> hp = new ArrayList<>();
        hp.add(hookEmbed);
        blockHooks = new HookPoint[blocks.length][];
        for (int l = 0; l < blocks.length; l++) {
            blockHooks[l] = new HookPoint[]{
                    HookPoint.of(HookKind.RESID_PRE, l), HookPoint.of(HookKind.ATTN_PATTERN, l),
                    HookPoint.of(HookKind.ATTN_OUT, l), HookPoint.of(HookKind.RESID_MID, l),
                    HookPoint.of(HookKind.MLP_OUT, l), HookPoint.of(HookKind.RESID_POST, l)};
            hp.addAll(Arrays.asList(blockHooks[l]));
        }
        this.hookPoints = List.copyOf(hp);
    }

    // ---------------------------------------------------------------------------------------------- loading

    /** From an HF checkpoint folder's config.json and weights. */
    public static BertModel load(ModelConfig cfg, TensorSource source, Backend backend) {
        int d = cfg.requireInt("hidden_size");
        int nHeads = cfg.requireInt("num_attention_heads");
        if (d % nHeads != 0) {
            throw new JlensException(cfg.file() + ": hidden_size " + d + " is not divisible by num_attention_heads " + nHeads);
        }
        String posType = cfg.getString("position_embedding_type", "absolute");
        if (!posType.equals("absolute")) {
            throw cfg.invalid("position_embedding_type", "\"absolute\" (relative position embeddings are not supported)");
        }
        if (cfg.getBool("is_decoder", false)) throw cfg.invalid("is_decoder", "false (jlens runs BERT as an encoder)");
        Dims dims = new Dims(cfg.requireInt("vocab_size"), d, nHeads, cfg.requireInt("num_hidden_layers"),
                cfg.getInt("intermediate_size", 4 * d), cfg.getInt("max_position_embeddings", 512),
                cfg.getInt("type_vocab_size", 2), (float) cfg.getDouble("layer_norm_eps", 1e-12),
                Activation.fromConfig(cfg.getString("hidden_act", "gelu"), cfg.file().toString()));
        // Task heads (BertForMaskedLM, ...) keep the encoder under "bert."; a bare BertModel has no prefix.
        String prefix = source.contains("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        Weights w = new Weights(source, cfg);
        w.requireLayers("num_hidden_layers", dims.nLayers);
        Params params = new Params() {
            @Override
            public float[] vector(String name, int n) {
                return w.vector(prefix + name, n);
            }

            @Override
            public WeightMatrix table(String name, int rows, int cols) {
                return w.matrix(prefix + name, rows, cols);
            }

            @Override
            public WeightMatrix linear(String module, int in, int out) {
                return w.matrix(prefix + module + ".weight", out, in);
            }

            @Override
            public long parameterCount() {
                return w.parameterCount();
            }
        };
        return build(dims, params, backend);
    }

    /**
     * From a PyTorch ONNX export of {@code BertModel} (inputs input_ids, attention_mask, token_type_ids). Biases,
     * norms and embeddings keep their {@code state_dict} names; each linear weight is the initializer input of
     * the MatMul node named after its module ({@code /encoder/layer.0/attention/self/query/MatMul}) and is stored
     * [in, out]. The head count and LayerNorm epsilon, which no tensor carries, are read from the graph. All
     * weights are copied, so the model outlives {@code onnx}.
     */
    public static BertModel fromOnnx(OnnxModel onnx, Backend backend) {
        String res = onnx.resource();
        Map<String, OnnxNode> matMuls = new HashMap<>();
        for (OnnxNode n : onnx.nodes()) {
            if (n.opType().equals("MatMul") && n.name().endsWith("/MatMul") && n.inputs().size() == 2
                    && onnx.find(n.inputs().get(1)) != null) {
                String path = n.name().substring(n.name().startsWith("/") ? 1 : 0, n.name().length() - "/MatMul".length());
                matMuls.put(path.replace('/', '.'), n);
            }
        }
        long[] word = shape(onnx, "embeddings.word_embeddings.weight", 2);
        int vocab = Math.toIntExact(word[0]), d = Math.toIntExact(word[1]);
        int nLayers = 0;
        while (onnx.contains("encoder.layer." + nLayers + ".attention.self.query.bias")) nLayers++;
        if (nLayers == 0) {
            throw new JlensException(res + ": no encoder layers (no initializer encoder.layer.0.attention.self.query.bias); "
                    + "is it a BERT export?");
        }
        OnnxNode query = matMuls.get("encoder.layer.0.attention.self.query");
        if (query == null) throw missingMatMul(res, "encoder.layer.0.attention.self.query");
        Dims dims = new Dims(vocab, d, onnxHeads(onnx, query, d), nLayers,
                Math.toIntExact(shape(onnx, "encoder.layer.0.intermediate.dense.bias", 1)[0]),
                Math.toIntExact(shape(onnx, "embeddings.position_embeddings.weight", 2)[0]),
                Math.toIntExact(shape(onnx, "embeddings.token_type_embeddings.weight", 2)[0]),
                onnxLayerNormEps(onnx, "/embeddings/LayerNorm"), onnxActivation(onnx, "/encoder/layer.0/intermediate/"));
        Params params = new Params() {
            long count;

            private TensorEntry entry(String name, long... expected) {
                TensorEntry e = onnx.require(name);
                if (!Arrays.equals(e.shape(), expected) || e.dtype() != DType.F32) {
                    throw new JlensException(res + ": tensor \"" + name + "\" is " + e.dtype() + " " + e.shapeString()
                            + "; expected F32 " + Arrays.toString(expected));
                }
                count += e.numel();
                return e;
            }

            @Override
            public float[] vector(String name, int n) {
                return entry(name, n).toFloatArray();
            }

            @Override
            public WeightMatrix table(String name, int rows, int cols) {
                return WeightMatrix.ofFloats(name, entry(name, rows, cols).toFloatArray(), rows, cols);
            }

            @Override
            public WeightMatrix linear(String module, int in, int out) {
                OnnxNode mm = matMuls.get(module);
                if (mm == null) throw missingMatMul(res, module);
                float[] w = entry(mm.inputs().get(1), in, out).toFloatArray();
                // ONNX computes x @ W with W [in, out]; the kernels want nn.Linear's [out, in].
                float[] t = new float[w.length];
                for (int i = 0; i < in; i++) {
                    for (int o = 0; o < out; o++) t[o * in + i] = w[i * out + o];
                }
                return WeightMatrix.ofFloats(module + ".weight", t, out, in);
            }

            @Override
            public long parameterCount() {
                return count;
            }
        };
        return build(dims, params, backend);
    }

    private static BertModel build(Dims dims, Params p, Backend backend) {
        int d = dims.d, dMlp = dims.dMlp;
        WeightMatrix word = p.table("embeddings.word_embeddings.weight", dims.vocab, d);
        WeightMatrix pos = p.table("embeddings.position_embeddings.weight", dims.maxPos, d);
        float[] type0 = new float[d];
        p.table("embeddings.token_type_embeddings.weight", dims.typeVocab, d).row(0, type0);
        float[] lnW = p.vector("embeddings.LayerNorm.weight", d);
        float[] lnB = p.vector("embeddings.LayerNorm.bias", d);
        Block[] blocks = new Block[dims.nLayers];
        for (int l = 0; l < dims.nLayers; l++) {
            String b = "encoder.layer." + l + ".";
            blocks[l] = new Block(
                    linear(p, b + "attention.self.query", d, d), linear(p, b + "attention.self.key", d, d),
                    linear(p, b + "attention.self.value", d, d), linear(p, b + "attention.output.dense", d, d),
                    p.vector(b + "attention.output.LayerNorm.weight", d), p.vector(b + "attention.output.LayerNorm.bias", d),
                    linear(p, b + "intermediate.dense", d, dMlp), linear(p, b + "output.dense", dMlp, d),
                    p.vector(b + "output.LayerNorm.weight", d), p.vector(b + "output.LayerNorm.bias", d));
        }
        ModelInfo info = new ModelInfo("bert", "BertModel", dims.nLayers, d, dims.nHeads, dims.nHeads, dMlp, dims.vocab,
                dims.maxPos, p.parameterCount(), word.dtype(), false);
        return new BertModel(info, backend, dims, word, pos, type0, lnW, lnB, blocks);
    }

    private static Linear linear(Params p, String module, int in, int out) {
        return new Linear(p.linear(module, in, out), p.vector(module + ".bias", out));
    }

    private static long[] shape(OnnxModel onnx, String name, int rank) {
        TensorEntry e = onnx.require(name);
        if (e.rank() != rank) {
            throw new JlensException(onnx.resource() + ": tensor \"" + name + "\" has shape " + e.shapeString()
                    + "; expected rank " + rank);
        }
        return e.shape();
    }

    private static JlensException missingMatMul(String res, String module) {
        return new JlensException(res + ": no MatMul weight for " + module + " (expected a node named after the module, "
                + "like /encoder/layer.0/attention/self/query/MatMul, whose second input is an initializer); jlens "
                + "reads plain, unoptimised PyTorch exports of BertModel");
    }

    /**
     * The head count from the Reshape that splits the query into heads: its target shape ends in
     * [heads, head_dim], either as a constant or as a Concat whose last two inputs are constants.
     */
    private static int onnxHeads(OnnxModel m, OnnxNode queryMatMul, int d) {
        String value = queryMatMul.outputs().getFirst();
        for (int hop = 0; hop < 3; hop++) {
            OnnxNode next = null;
            for (OnnxNode c : m.consumers(value)) {
                if (c.opType().equals("Reshape") && c.inputs().size() == 2) {
                    long[] tail = shapeTail(m, c.inputs().get(1));
                    if (tail != null) {
                        long heads = tail[0], headDim = tail[1] == -1 && heads > 0 ? d / heads : tail[1];
                        if (heads > 0 && heads * headDim == d) return (int) heads;
                    }
                }
                if (c.opType().equals("Add")) next = c; // the bias add between the MatMul and the Reshape
            }
            if (next == null) break;
            value = next.outputs().getFirst();
        }
        throw new JlensException(m.resource() + ": cannot find the attention head count (expected a Reshape of "
                + queryMatMul.name() + "'s output to [batch, seq, heads, head_dim] with constant heads and head_dim)");
    }

    private static long[] shapeTail(OnnxModel m, String shapeValue) {
        TensorEntry c = m.constant(shapeValue);
        if (c != null) {
            long[] s = c.toLongArray();
            return s.length >= 2 ? new long[]{s[s.length - 2], s[s.length - 1]} : null;
        }
        OnnxNode concat = m.producer(shapeValue);
        if (concat == null || !concat.opType().equals("Concat") || concat.inputs().size() < 2) return null;
        List<String> in = concat.inputs();
        TensorEntry a = m.constant(in.get(in.size() - 2)), b = m.constant(in.get(in.size() - 1));
        if (a == null || b == null || a.numel() != 1 || b.numel() != 1) return null;
        return new long[]{a.toLongArray()[0], b.toLongArray()[0]};
    }

    /** A fused LayerNormalization's epsilon, or the constant of the Add before the decomposed norm's Sqrt. */
    private static float onnxLayerNormEps(OnnxModel m, String scope) {
        OnnxNode fused = m.node(scope + "/LayerNormalization");
        if (fused != null) {
            OnnxAttribute e = fused.attribute("epsilon");
            return e == null ? 1e-5f : e.f(); // the ONNX default
        }
        OnnxNode sqrt = m.node(scope + "/Sqrt");
        OnnxNode add = sqrt == null || sqrt.inputs().isEmpty() ? null : m.producer(sqrt.inputs().getFirst());
        if (add != null && add.opType().equals("Add")) {
            for (String in : add.inputs()) {
                TensorEntry c = m.constant(in);
                if (c != null && c.numel() == 1 && c.dtype().isFloat()) return c.getFloat(0);
            }
        }
        throw new JlensException(m.resource() + ": cannot find the LayerNorm epsilon of " + scope + " (expected a "
                + "LayerNormalization node or a Sqrt reading Add(variance, epsilon))");
    }

    private static Activation onnxActivation(OnnxModel m, String scope) {
        for (OnnxNode n : m.nodes()) {
            if (!n.name().startsWith(scope)) continue;
            if (n.opType().equals("Erf")) return Activation.GELU;
            if (n.opType().equals("Gelu")) {
                OnnxAttribute a = n.attribute("approximate");
                return a != null && "tanh".equals(a.s()) ? Activation.GELU_TANH : Activation.GELU;
            }
        }
        throw new JlensException(m.resource() + ": no Erf or Gelu node under " + scope + "; jlens reads BERT exports "
                + "with the exact GELU activation");
    }

    // ---------------------------------------------------------------------------------------------- forward

    @Override
    public ModelInfo info() {
        return info;
    }

    @Override
    public List<HookPoint> hookPoints() {
        return hookPoints;
    }

    @Override
    public FloatTensor forward(TokenBatch batch, ForwardOptions options, Hooks hooks) {
        int T = batch.totalTokens();
        for (int past : batch.pastLengths()) {
            if (past != 0) throw new JlensException("BERT is a bidirectional encoder: it cannot continue a cached prefix");
        }
        int[] positions = batch.checkedPositions(vocab, info.maxPositions());
        HookSite site = new HookSite(backend, hooks, batch);

        // Embeddings: (word + token_type) + position, then LayerNorm, in HF's order of additions.
        float[] sum = new float[T * d];
        float[] word = new float[d], pos = new float[d];
        for (int t = 0; t < T; t++) {
            wordEmb.row(batch.tokens()[t], word);
            posEmb.row(positions[t], pos);
            for (int j = 0; j < d; j++) sum[t * d + j] = (word[j] + typeEmb0[j]) + pos[j];
        }
        DeviceTensor x = backend.allocate(T, d);
        backend.layerNorm(backend.upload(sum, T, d), x, embLnW, embLnB, eps);
        site.fire(hookEmbed, x);

        int nBlocks = options.blocksToRun(blocks.length, hooks, hookPoints);
        AttentionLayout layout = AttentionLayout.selfAttention(batch.offsets(), batch.lengths());
        AttentionSpec attention = AttentionSpec.bidirectional(nHeads, headDim);
        DeviceTensor q = backend.allocate(T, d), kk = backend.allocate(T, d), v = backend.allocate(T, d);
        DeviceTensor ctx = backend.allocate(T, d), sumBuf = backend.allocate(T, d);
        DeviceTensor hidden = backend.allocate(T, dMlp);
        for (int l = 0; l < nBlocks; l++) {
            Block b = blocks[l];
            HookPoint[] hp = blockHooks[l];
            site.fire(hp[0], x);

            backend.matmuls(x, new WeightMatrix[]{b.query.w, b.key.w, b.value.w}, new float[][]{b.query.b, b.key.b, b.value.b},
                    new DeviceTensor[]{q, kk, v});
            DeviceTensor pattern = site.wants(hp[1]) ? backend.allocate(1, patternSize(batch)) : null;
            backend.attention(q, kk, v, ctx, layout, attention, pattern);
            if (pattern != null) site.fire(hp[1], pattern, (int) pattern.size());
            DeviceTensor attnOut = backend.allocate(T, d);
            backend.matmul(ctx, b.attnOut.w, b.attnOut.b, attnOut);
            site.fire(hp[2], attnOut);

            // BertSelfOutput: LayerNorm(dense(context) + input).
            DeviceTensor mid = addAndNorm(attnOut, x, sumBuf, b.ln1W, b.ln1B);
            site.fire(hp[3], mid);

            backend.matmul(mid, b.up.w, b.up.b, hidden);
            backend.activate(hidden, act);
            DeviceTensor mlpOut = backend.allocate(T, d);
            backend.matmul(hidden, b.down.w, b.down.b, mlpOut);
            site.fire(hp[4], mlpOut);

            // BertOutput: LayerNorm(dense(intermediate) + attention_output).
            DeviceTensor post = addAndNorm(mlpOut, mid, sumBuf, b.ln2W, b.ln2B);
            site.fire(hp[5], post);
            x = post;
        }
        if (nBlocks < blocks.length || !options.logits()) return null;
        return backend.toHost(x, T, d);
    }

    /** A post-norm block's residual step: LayerNorm(branch + residual), in HF's order of addition, into a new tensor. */
    private DeviceTensor addAndNorm(DeviceTensor branch, DeviceTensor residual, DeviceTensor scratch, float[] w, float[] b) {
        backend.copyRows(branch, 0, scratch, 0, branch.rows());
        backend.add(scratch, residual);
        DeviceTensor out = backend.allocate(branch.rows(), d);
        backend.layerNorm(scratch, out, w, b, eps);
        return out;
    }

    private int patternSize(TokenBatch batch) {
        int n = 0;
        for (int len : batch.lengths()) n += nHeads * len * len;
        return n;
    }
}
