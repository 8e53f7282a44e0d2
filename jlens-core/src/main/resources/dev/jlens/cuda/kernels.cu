// jlens' CUDA kernels: every Backend operation except the products (cuBLAS does those). Compiled by NVRTC
// at run time with --fmad=false, so that a*b+c rounds twice as in Java; where the reference backend
// (dev.jlens.kernels.ReferenceBackend) uses Math.fma these use fmaf, and where it computes in double
// (norm sums, exp/tanh/erf of activations, softmax sums) so do these. No headers are included, so NVRTC needs
// none: 16-bit floats are handled as bits.

typedef unsigned short u16;

#define F32 0
#define F16 1
#define BF16 2

__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(((unsigned int) h) << 16); }

__device__ __forceinline__ float f16_to_f32(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Round to nearest even, NaN kept NaN (as PyTorch's float -> bfloat16).
__device__ __forceinline__ u16 f32_to_bf16(float f) {
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16) ((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16) (u >> 16);
}

__device__ __forceinline__ float load_elem(const void* p, long i, int dtype) {
    if (dtype == F32) return ((const float*) p)[i];
    u16 h = ((const u16*) p)[i];
    return dtype == F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

#define NEG_INF __int_as_float(0xff800000)

#define GRID_STRIDE(i, n) for (long i = blockIdx.x * (long) blockDim.x + threadIdx.x; i < (n); i += (long) blockDim.x * gridDim.x)

// ---- conversions and copies

extern "C" __global__ void widen(const void* src, int dtype, float* dst, long n) {
    GRID_STRIDE(i, n) dst[i] = load_elem(src, i, dtype);
}

extern "C" __global__ void to_bf16(const void* src, int dtype, u16* dst, long n) {
    GRID_STRIDE(i, n) dst[i] = dtype == BF16 ? ((const u16*) src)[i] : f32_to_bf16(load_elem(src, i, dtype));
}

// out[r, c] = bias[c]: the product then accumulates onto it (beta = 1), starting from the bias as the CPU does.
extern "C" __global__ void fill_bias(float* out, const float* bias, int rows, int cols) {
    long n = (long) rows * cols;
    GRID_STRIDE(i, n) out[i] = bias[i % cols];
}

extern "C" __global__ void copy_columns(const float* src, int srcCols, int srcCol, float* dst, int dstCols, int dstCol,
                                        int rows, int width) {
    long n = (long) rows * width;
    GRID_STRIDE(i, n) {
        long r = i / width, c = i % width;
        dst[r * dstCols + dstCol + c] = src[r * srcCols + srcCol + c];
    }
}

// One block per token: out[t, :] = table[ids[t], :] * scale (no multiplication when scale is 1, as the CPU).
extern "C" __global__ void gather_rows(const void* table, int dtype, int cols, const int* ids, float scale, float* out) {
    int t = blockIdx.x;
    long base = (long) ids[t] * cols;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float v = load_elem(table, base + c, dtype);
        if (scale != 1.0f) v *= scale;
        out[(long) t * cols + c] = v;
    }
}

// ---- block reductions (blockDim.x a multiple of 32, at most 1024)

__device__ double block_sum(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? shared[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) shared[32] = v;
    }
    __syncthreads();
    return shared[32];
}

// ---- norms: one block per row

extern "C" __global__ void layer_norm(const float* x, float* out, const float* gamma, const float* beta, int d, float eps) {
    __shared__ double red[33];
    const float* xr = x + (long) blockIdx.x * d;
    float* outr = out + (long) blockIdx.x * d;
    double s = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) s += xr[j];
    float mean = (float) (block_sum(s, red) / d);
    double v = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float c = xr[j] - mean;
        v += (double) c * c;
    }
    double var = block_sum(v, red);
    float inv = (float) (1.0 / sqrt(var / d + (double) eps));
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float y = (xr[j] - mean) * inv;
        if (gamma) y *= gamma[j];
        if (beta) y += beta[j];
        outr[j] = y;
    }
}

extern "C" __global__ void rms_norm(const float* x, float* out, const float* gamma, int d, float eps, int onePlus) {
    __shared__ double red[33];
    const float* xr = x + (long) blockIdx.x * d;
    float* outr = out + (long) blockIdx.x * d;
    double ss = 0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double) xr[j] * xr[j];
    float inv = (float) (1.0 / sqrt(block_sum(ss, red) / d + (double) eps));
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
        float y = xr[j] * inv;
        if (gamma) y = (onePlus ? 1.0f + gamma[j] : gamma[j]) * y;
        outr[j] = y;
    }
}

// TransformerLens' ln_final.hook_scale and hook_normalized, in double.
extern "C" __global__ void norm_stats(const float* x, float* scale, float* normalized, int d, float eps, int layerNorm) {
    __shared__ double red[33];
    const float* xr = x + (long) blockIdx.x * d;
    float* nr = normalized + (long) blockIdx.x * d;
    double mean = 0, s;
    if (layerNorm) {
        double sum = 0;
        for (int j = threadIdx.x; j < d; j += blockDim.x) sum += xr[j];
        mean = block_sum(sum, red) / d;
        double v = 0;
        for (int j = threadIdx.x; j < d; j += blockDim.x) {
            double c = xr[j] - mean;
            v += c * c;
        }
        s = sqrt(block_sum(v, red) / d + (double) eps);
    } else {
        double ss = 0;
        for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double) xr[j] * xr[j];
        s = sqrt(block_sum(ss, red) / d + (double) eps);
    }
    if (threadIdx.x == 0) scale[blockIdx.x] = (float) s;
    for (int j = threadIdx.x; j < d; j += blockDim.x) nr[j] = (float) ((xr[j] - mean) / s);
}

// ---- rotary: one block per row; pair i of a head is (i, i + half) or (2i, 2i + 1)

extern "C" __global__ void rotary(float* x, int nHeads, int headDim, const int* positions, const float* invFreq, int half,
                                  int interleaved) {
    int r = blockIdx.x;
    float pos = (float) positions[r];
    for (int idx = threadIdx.x; idx < nHeads * half; idx += blockDim.x) {
        int h = idx / half, i = idx % half;
        float angle = pos * invFreq[i];
        float c = (float) cos((double) angle), s = (float) sin((double) angle);
        long base = (long) r * nHeads * headDim + (long) h * headDim;
        long a = base + (interleaved ? 2 * i : i), b = base + (interleaved ? 2 * i + 1 : i + half);
        float x1 = x[a], x2 = x[b];
        x[a] = x1 * c - x2 * s;
        x[b] = x2 * c + x1 * s;
    }
}

// ---- attention. meta holds per query row: row, key offset, key count, position among the keys, the offset
// of its pattern row for head 0, and the pattern's stride between heads.

#define META 6

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum_f(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float capped(float s, float softcap) {
    return softcap > 0.0f ? (float) tanh((double) (s / softcap)) * softcap : s;
}

__device__ __forceinline__ void visible(int pos, int kLen, int causal, int window, int* lo, int* hi) {
    *lo = causal && window > 0 ? imax(0, pos - window + 1) : 0;
    *hi = causal ? imin(kLen, pos + 1) : kLen;
}

// The reference's order of operations exactly, one warp per (row, head), the probabilities kept in the
// pattern tensor (zeroed beforehand, so masked keys read 0): used when the pattern is hooked.
extern "C" __global__ void attention_pattern(const float* q, const float* k, const float* v, float* out, float* pattern,
                                             const int* meta, int nHeads, int nKvHeads, int headDim, float scale,
                                             int causal, int window, float softcap) {
    const int* m = meta + (long) blockIdx.x * META;
    int row = m[0], kOff = m[1], kLen = m[2], pos = m[3];
    int h = blockIdx.y, kvh = h / (nHeads / nKvHeads), lane = threadIdx.x;
    long qStride = (long) nHeads * headDim, kStride = (long) nKvHeads * headDim;
    const float* qr = q + row * qStride + (long) h * headDim;
    float* p = pattern + (long) m[4] + (long) h * m[5];
    int lo, hi;
    visible(pos, kLen, causal, window, &lo, &hi);
    float mx = NEG_INF;
    for (int j = lo + lane; j < hi; j += 32) {
        const float* kr = k + (kOff + j) * kStride + (long) kvh * headDim;
        float dot = 0.0f;
        for (int c = 0; c < headDim; c++) dot = fmaf(qr[c], kr[c], dot);
        float s = capped(dot * scale, softcap);
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    double sum = 0;
    for (int j = lo + lane; j < hi; j += 32) {
        float e = (float) exp((double) (p[j] - mx));
        p[j] = e;
        sum += e;
    }
    sum = warp_sum_d(sum);
    for (int j = lo + lane; j < hi; j += 32) p[j] = (float) ((double) p[j] / sum);
    __syncwarp();
    __threadfence_block();
    for (int c = lane; c < headDim; c += 32) {
        float acc = 0.0f;
        for (int j = lo; j < hi; j++) acc = fmaf(p[j], v[(kOff + j) * kStride + (long) kvh * headDim + c], acc);
        out[row * qStride + (long) h * headDim + c] = acc;
    }
}

#define MAX_HEAD_DIM 256

// Online softmax over 32 keys at a time, one warp per (row, head): nothing of size [T, T] is materialised.
// Each lane scores one key of the tile; the running maximum rescales the partial sums and outputs.
extern "C" __global__ void attention_online(const float* q, const float* k, const float* v, float* out, const int* meta,
                                            int nHeads, int nKvHeads, int headDim, float scale, int causal, int window,
                                            float softcap) {
    __shared__ float qs[MAX_HEAD_DIM];
    const int* m = meta + (long) blockIdx.x * META;
    int row = m[0], kOff = m[1], kLen = m[2], pos = m[3];
    int h = blockIdx.y, kvh = h / (nHeads / nKvHeads), lane = threadIdx.x;
    long qStride = (long) nHeads * headDim, kStride = (long) nKvHeads * headDim;
    for (int c = lane; c < headDim; c += 32) qs[c] = q[row * qStride + (long) h * headDim + c];
    __syncwarp();
    int lo, hi;
    visible(pos, kLen, causal, window, &lo, &hi);
    float runMax = NEG_INF, runSum = 0.0f;
    float acc[MAX_HEAD_DIM / 32];
    for (int t = 0; t < MAX_HEAD_DIM / 32; t++) acc[t] = 0.0f;
    for (int j0 = lo; j0 < hi; j0 += 32) {
        int j = j0 + lane;
        float s = NEG_INF;
        if (j < hi) {
            const float* kr = k + (kOff + j) * kStride + (long) kvh * headDim;
            float dot = 0.0f;
            for (int c = 0; c < headDim; c++) dot = fmaf(qs[c], kr[c], dot);
            s = capped(dot * scale, softcap);
        }
        float newMax = fmaxf(runMax, warp_max(s));
        float pj = j < hi ? expf(s - newMax) : 0.0f;
        float correction = runMax == NEG_INF ? 0.0f : expf(runMax - newMax);
        runSum = runSum * correction + warp_sum_f(pj);
        for (int t = 0; t < MAX_HEAD_DIM / 32; t++) acc[t] *= correction;
        int tile = imin(32, hi - j0);
        for (int jj = 0; jj < tile; jj++) {
            float w = __shfl_sync(0xffffffffu, pj, jj);
            const float* vr = v + (kOff + j0 + jj) * kStride + (long) kvh * headDim;
            for (int t = 0; t < MAX_HEAD_DIM / 32; t++) {
                int c = lane + 32 * t;
                if (c < headDim) acc[t] = fmaf(w, vr[c], acc[t]);
            }
        }
        runMax = newMax;
    }
    for (int t = 0; t < MAX_HEAD_DIM / 32; t++) {
        int c = lane + 32 * t;
        if (c < headDim) out[row * qStride + (long) h * headDim + c] = runSum > 0.0f ? acc[t] / runSum : 0.0f;
    }
}

// ---- elementwise

#define GELU 0
#define GELU_TANH 1
#define GELU_FAST 2
#define RELU 3
#define SILU 4

__device__ __forceinline__ float activation(float x, int kind) {
    switch (kind) {
        case GELU: return (float) (0.5 * x * (1.0 + erf(x / sqrt(2.0))));
        case GELU_TANH: return (float) (0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x))));
        case GELU_FAST: return (float) (0.5 * x * (1.0 + tanh(0.7978845608 * x * (1.0 + 0.044715 * x * x))));
        case RELU: return x > 0.0f ? x : 0.0f;
        default: return (float) (x / (1.0 + exp(-(double) x)));
    }
}

extern "C" __global__ void activate(float* x, long n, int kind) {
    GRID_STRIDE(i, n) x[i] = activation(x[i], kind);
}

extern "C" __global__ void gated_activate(float* gate, const float* up, long n, int kind) {
    GRID_STRIDE(i, n) gate[i] = activation(gate[i], kind) * up[i];
}

extern "C" __global__ void add(float* out, const float* a, long n) {
    GRID_STRIDE(i, n) out[i] += a[i];
}

extern "C" __global__ void softcap(float* x, long n, float cap) {
    GRID_STRIDE(i, n) x[i] = (float) tanh((double) (x[i] / cap)) * cap;
}
