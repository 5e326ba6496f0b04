/* backend: the boundary between the model path and the device that computes.
 *
 * A backend owns memory (buffers: weights, activations, KV blocks) and runs
 * ops on views of that memory (be_tensor). Ops are batched over tokens: a
 * prompt's prefill is one call per op for all of its tokens, and a decode step
 * is one call per op for every sequence in the batch. Ops are recorded in
 * order; results are only guaranteed visible to buffer_read() after sync().
 * The CPU backend runs each op as it comes; a GPU backend records a command
 * buffer and submits it at sync().
 *
 * Tensors are 2-D row-major views: `rows` rows of `cols` elements, row i
 * starting `stride` elements after row i-1 (stride >= cols). Activations are
 * f32; weights may be f32/f16/bf16 (and MXFP4 where an op says so); indices are i32. Shapes below use
 * [rows, cols]. Every op's inputs and outputs must not alias unless the op
 * says "in place is allowed".
 *
 * Ordering: buffer_write() and buffer_read() behave as if every op recorded
 * before them had already run, and ops recorded after a write see the written
 * bytes. A backend that records may keep small writes in its command stream or
 * wait for the recorded work first; callers should still write a step's inputs
 * before recording it, and read its outputs (which submits the step with the
 * read-back in it and waits once) before sync(), which then reports errors.
 * buffer_free() may be called with ops pending: the backend waits for them.
 *
 * Errors: ops return nothing. An op that cannot run (a shape beyond a device
 * limit, scratch that cannot be allocated, a lost device) records its error;
 * the next sync() returns it (and clears it), and buffer_read() refuses to
 * return results of a failed step.
 *
 * Ownership: buffers belong to the backend that made them and are released
 * with buffer_free(). Entries marked (optional) may be NULL; the be_* wrappers
 * below supply the fallback. Backends are opened by name with be_open(). */
#ifndef VLLMC_BACKEND_H
#define VLLMC_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* BE_MXFP4 (gpt-oss's expert weights, issue 15; matmul weights only): blocks of 32 elements along a row,
 * each 17 bytes: one e8m0 scale byte (2^(e - 127)) then 16 bytes of FP4 e2m1 codes, element 2j in the low
 * nibble of byte j and element 2j+1 in the high one (the checkpoint's order). A row's cols and stride are
 * multiples of 32; be_dtype_size() is not defined for it (use be_dtype_bytes). */
typedef enum { BE_F32 = 0, BE_F16 = 1, BE_BF16 = 2, BE_I32 = 3, BE_MXFP4 = 4 } be_dtype;

enum { BE_MXFP4_BLOCK = 32, BE_MXFP4_BLOCK_BYTES = 17 };

static inline size_t be_dtype_size(be_dtype t) { return t == BE_F16 || t == BE_BF16 ? 2 : 4; }
/* Bytes of n consecutive elements (n a multiple of 32 for BE_MXFP4). */
static inline size_t be_dtype_bytes(be_dtype t, int64_t n) {
    return t == BE_MXFP4 ? (size_t)(n / BE_MXFP4_BLOCK) * BE_MXFP4_BLOCK_BYTES : (size_t)n * be_dtype_size(t);
}
const char *be_dtype_name(be_dtype t);

typedef struct be_buffer be_buffer; /* opaque, backend-defined */

#define BE_TOPK_MAX 64 /* the most elements per row backend.topk selects */

typedef struct {
    be_buffer *buf;
    size_t offset;    /* bytes from the buffer start to element [0,0] */
    be_dtype dtype;
    int64_t rows, cols;
    int64_t stride;   /* elements between row starts */
} be_tensor;

/* Paged attention metadata for one batch (all arrays are i32 tensors).
 * Sequence s owns query rows q_start[s] .. q_start[s+1]-1 of q/out; those are
 * its newest q_len tokens, at positions seq_len[s]-q_len .. seq_len[s]-1, whose
 * K/V have already been written with kv_write. Token t of sequence s lives in
 * cache slot block_table[s, t / block_size] * block_size + t % block_size. */
typedef struct {
    int n_seqs;
    be_tensor q_start;      /* i32 [1, n_seqs + 1], q_start[0] = 0 */
    be_tensor seq_len;      /* i32 [1, n_seqs]: tokens in context incl. new ones */
    be_tensor block_table;  /* i32 [n_seqs, max_blocks] */
    int block_size;         /* tokens per block */
    int max_seq_len;        /* max over seq_len (sizes scratch) */
} be_attn_meta;

/* Attention shape. n_heads query heads share n_kv_heads K/V heads (GQA). */
typedef struct {
    int n_heads, n_kv_heads, head_dim;
    float scale;            /* softmax scale, usually 1/sqrt(head_dim) */
    int sliding_window;     /* 0: none; else attend to the last `sliding_window` positions */
    float softcap;          /* 0: none; else each score s = scale * q.k becomes tanh(s / softcap) * softcap
                               before the softmax (Gemma 2's attn_logit_softcapping) */
    const be_tensor *sinks; /* NULL: none; else f32 [1, n_heads]: gpt-oss's per-head sink logit joins each
                               row's softmax (max and denominator) and its probability is dropped */
} be_attn_shape;

/* LoRA (step 8): batch rows [row0, row0 + n) use the adapter in slot `slot` (be_backend.lora). */
typedef struct {
    int64_t row0, n;
    int slot;
} be_lora_seg;

/* Mixture of experts (issue 15): rows [row0, row0 + n) of a grouped matmul's x and out go through
 * expert `expert`'s weights. */
typedef struct {
    int expert;
    int64_t row0, n;
} be_moe_group;

/* moe_topk's flags (issue 12). */
enum { BE_MOE_TOPK_FIRST = 1, BE_MOE_NORM = 2 };
/* Limits of the device-routing ops: experts per layer, (token, expert) pairs per call. */
enum { BE_MOE_MAX_EXPERTS = 1024, BE_MOE_MAX_PAIRS = 256, BE_MOE_MAX_K = 64, BE_MOE_MAX_NW = 4 };

/* What the device is and what memory it computes from. */
typedef struct {
    char desc[256];          /* one line for the start-up log: device, threads or features */
    uint64_t mem_total;      /* bytes the device computes from: physical RAM (CPU, unified GPU) or VRAM */
    uint64_t mem_free;       /* bytes free now as far as the device can tell (VRAM budget, MemAvailable) */
    int unified;             /* 1: the device shares host memory (CPU, Apple, integrated GPUs) */
    uint64_t max_view_bytes; /* the largest tensor view one op can address (maxStorageBufferRange) */
} be_info;

/* One step of a layer's linear algebra with its neighbours folded in (be_backend.matmul_fused). */
enum { BE_ACT_NONE, BE_ACT_SILU, BE_ACT_GELU_TANH };
typedef struct be_mm {
    const be_tensor *x;      /* f32 [n, K] */
    const be_tensor *norm_w; /* non-NULL: the matmuls read rmsnorm(x) = x / rms(x) * (norm_w + w_offset), f32 [1, K] */
    float eps, w_offset;
    int nw;                  /* 1..3 weights [M_i, K] sharing x */
    const be_tensor *w[3], *bias[3], *out[3]; /* bias[i] may be NULL; out[i] f32 [n, M_i] */
    int act;                 /* BE_ACT_SILU / BE_ACT_GELU_TANH: nw == 2, no bias, out[0] = act(x w[0]^T) *
                              * (x w[1]^T) as silu_mul / gelu_tanh_mul compute it; out[1] is scratch */
    int accumulate;          /* out[0] += x w[0]^T (+ bias[0]) (nw == 1, act none): a residual add */
    const be_tensor *h;      /* scratch f32 [n, K] for rmsnorm(x) (norm_w set) */
    const be_tensor *tmp;    /* scratch f32 [n, M_0] for the product to add (accumulate) */
} be_mm;

typedef struct be_backend {
    const char *name;   /* "cpu", "vulkan" */
    void *ctx;

    /* --- memory --- */
    int (*buffer_alloc)(void *ctx, size_t bytes, be_buffer **out);
    /* (optional) Use existing host memory in place: the model passes a whole mmapped checkpoint file
     * (page-aligned) and places its tensors as views at their file offsets. The memory must outlive the
     * buffer, and the buffer is read-only (buffer_write may refuse). A backend may decline (VC_EUNSUP:
     * a device that cannot import this memory, a file beyond its largest allocation): the model then
     * copies that file's tensors into buffer_alloc'd buffers. NULL: everything is copied (be_buffer_wrap_host
     * allocates and copies). */
    int (*buffer_wrap_host)(void *ctx, const void *host, size_t bytes, be_buffer **out);
    void (*buffer_free)(void *ctx, be_buffer *b);
    int (*buffer_write)(void *ctx, be_buffer *b, size_t off, const void *src, size_t bytes);
    int (*buffer_read)(void *ctx, be_buffer *b, size_t off, void *dst, size_t bytes);
    /* Device description and memory (see be_info). */
    int (*info)(void *ctx, be_info *out);
    /* (optional) Measured memory bandwidth in GB/s over arrays of `bytes` each: the CPU's
     * STREAM triad, a GPU's device-to-device copy. Benchmarks print it beside their figures.
     * NULL: be_bandwidth_gbs() returns 0 (unknown). */
    double (*bandwidth_gbs)(void *ctx, size_t bytes);
    /* (optional) Measured peak f32 FMA rate in GFLOP/s; NULL: 0 (unknown). */
    double (*peak_gflops)(void *ctx);

    /* --- ops (recorded in order) --- */
    /* out[i,:] = f32(table[ids[i], :]); table f32/f16/bf16 [V, D], ids i32 [1, n], out f32 [n, D] */
    void (*get_rows)(void *ctx, const be_tensor *table, const be_tensor *ids, const be_tensor *out);
    /* out = x / rms(x) * (w + w_offset); x f32 [n, D], w f32 [1, D]; in place is allowed.
     * Head-wise norms (Qwen3 q_norm) pass x viewed as [n*heads, head_dim]. */
    void (*rmsnorm)(void *ctx, const be_tensor *x, const be_tensor *w, float eps, float w_offset,
                    const be_tensor *out);
    /* out = x @ w^T (+ bias); x f32 [n, K], w f32/f16/bf16/MXFP4 [M, K] (MXFP4 decoded in the kernel; the
     * CPU backend: K <= CPU_MXFP4_MAX_K), bias f32 [1, M] or NULL, out f32 [n, M]. Accumulates in f32. */
    void (*matmul)(void *ctx, const be_tensor *x, const be_tensor *w, const be_tensor *bias,
                   const be_tensor *out);
    /* (optional) nw (<= 8) matmuls that share x in one pass: out[i] = x @ w[i]^T (+ bias[i]),
     * bias[i] may be NULL. Lets a backend split all rows of q/k/v (or gate/up) across
     * its threads at once. NULL: be_matmul_multi() calls matmul nw times. */
    void (*matmul_multi)(void *ctx, const be_tensor *x, int nw, const be_tensor *const *w,
                         const be_tensor *const *bias, const be_tensor *const *out);
    /* (optional) A be_mm (below) in as few passes as the backend can: returns 1 when it ran it, 0 to leave it
     * to be_matmul_fused()'s decomposition (rmsnorm into h, matmul_multi, the activation, matmul into tmp and
     * add). A GPU runs a decode step's be_mm as one dispatch where its weights lie one after another in one
     * buffer (the model stacks q/k/v and gate/up on copying backends). */
    int (*matmul_fused)(void *ctx, const struct be_mm *op);
    /* Up to this many rows of x, matmul_fused folds a norm and a residual add into its matmuls without extra
     * passes: the runner then leaves add_rmsnorm out (0: it never does). */
    int norm_fold_rows;
    /* Rotary embedding in place on x f32 [n, heads*head_dim] (heads = cols / head_dim):
     * the first rot_dim dims of each head are rotated, pairing i with i + rot_dim/2
     * (GPT-NeoX / HF rotate_half), angle pos[t] * inv_freq[i], with cos and sin
     * multiplied by mscale (1 for most models; longrope's attention factor).
     * pos i32 [1, n], inv_freq f32 [1, rot_dim/2]. */
    void (*rope)(void *ctx, const be_tensor *x, int head_dim, int rot_dim, const be_tensor *pos,
                 const be_tensor *inv_freq, float mscale);
    /* cache[slot[t], :] = k[t, :]; k f32 [n, C], slot i32 [1, n], cache f32/f16/bf16 [slots, C].
     * Negative slots are skipped (padding). */
    void (*kv_write)(void *ctx, const be_tensor *k, const be_tensor *slot, const be_tensor *cache);
    /* (optional) RoPE for q and k and the cache writes of k and v in one pass: rope(q),
     * rope(k), kv_write(k, k_cache), kv_write(v, v_cache) (k's activation may be left
     * unrotated: only its cache copy is used afterwards). NULL: be_rope_kv_write() runs
     * the four ops. */
    void (*rope_kv_write)(void *ctx, const be_tensor *q, const be_tensor *k, const be_tensor *v, int head_dim,
                          int rot_dim, const be_tensor *pos, const be_tensor *inv_freq, float mscale,
                          const be_tensor *slot, const be_tensor *k_cache, const be_tensor *v_cache);
    /* Causal paged attention for every query row of the batch (see be_attn_meta).
     * q f32 [n, n_heads*head_dim]; k_cache/v_cache [slots, n_kv_heads*head_dim] in
     * f32/f16/bf16; out f32 [n, n_heads*head_dim]. */
    void (*attention)(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                      const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out);
    /* out = silu(gate) * up; all f32 [n, F]; in place (out == gate) is allowed. */
    void (*silu_mul)(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
    /* out = gelu_tanh(gate) * up (GeGLU, HF's gelu_pytorch_tanh:
     * 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))); all f32 [n, F]; in place (out == gate) is allowed. */
    void (*gelu_tanh_mul)(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
    /* (optional) gpt-oss's clamped SwiGLU on interleaved gate/up columns: for gate = gu[t, 2i] and
     * up = gu[t, 2i+1], g = min(gate, limit), u = clamp(up, -limit, limit),
     *   out[t, i] = (u + 1) * g * sigmoid(alpha * g);
     * gu f32 [n, 2F], out f32 [n, F]. NULL: the backend cannot run gpt-oss (the model refuses to load). */
    void (*swiglu_clamp)(void *ctx, const be_tensor *gu, float alpha, float limit, const be_tensor *out);
    /* out = a + b; all f32 [n, D]; in place (out == a) is allowed. */
    void (*add)(void *ctx, const be_tensor *a, const be_tensor *b, const be_tensor *out);
    /* out = x * s (Gemma's embedding normalizer); f32 [n, D]; in place is allowed. */
    void (*scale)(void *ctx, const be_tensor *x, float s, const be_tensor *out);
    /* out = tanh(x / cap) * cap (Gemma 2's final_logit_softcapping); f32 [n, D]; in place is allowed. */
    void (*softcap)(void *ctx, const be_tensor *x, float cap, const be_tensor *out);
    /* (optional) out[0, i] = the index of the largest element of row i of x: the first of equal ones; a
     * NaN never counts, except that a row whose first element is NaN gives 0 (what a left-to-right scan
     * that keeps the first maximum gives, as the engine's greedy sampler does). x f32 [n, V], out i32
     * [1, n]. Greedy decoding on the device: the runner reads n indexes back instead of n rows of
     * logits (0.5 MiB a row for a 128k vocabulary). NULL: the host scans the logits. */
    void (*argmax)(void *ctx, const be_tensor *x, const be_tensor *out);
    /* (optional) The k largest elements of every row of x (f32 [n, V]) and their column indexes, best first
     * (ties: the lower index first; a NaN counts as -inf): ids i32 [n, k], vals f32 [n, k];
     * 1 <= k <= BE_TOPK_MAX, k <= V. What a sampled row needs of its logits (samp_sample_top), without
     * reading the whole row back. NULL: the runner reads the logits and selects on the host. */
    void (*topk)(void *ctx, const be_tensor *x, int k, const be_tensor *ids, const be_tensor *vals);
    /* (optional) The residual add and the next norm in one pass: x += h, then
     * out = x / rms(x) * (w + w_offset). x, h, out f32 [n, D]; out may be h.
     * NULL: be_add_rmsnorm() runs add, then rmsnorm. */
    void (*add_rmsnorm)(void *ctx, const be_tensor *x, const be_tensor *h, const be_tensor *w, float eps,
                        float w_offset, const be_tensor *out);

    /* (optional) LoRA for a batch whose rows use different adapters (Punica's SGMV), in two halves: for
     * each segment (rows [row0, row0 + n) of x, t and out, adapter slot `slot`),
     *   lora_shrink: t[rows] = x[rows] @ a_s^T, a_s = rows [slot * R, +R) of a ([slots * R, K],
     *                f32/f16/bf16), R = t->cols; t's other rows are left alone;
     *   lora_expand: out[rows] += t[rows] @ b_s^T, b_s = rows [slot * M, +M) of b ([slots * M, R]),
     *                M = out->cols; d f32 [n, M] is scratch (a fused kernel may leave it alone).
     * row_slot (i32 [1, n], -1: no adapter) says the same per row, for a backend that reads it on the
     * device. x f32 [n, K], t f32 [n, R], out f32 [n, M]. Two halves so that the caller can record the
     * shrinks of the modules sharing an input before their base matmul (they only read x: a GPU runs
     * them beside it) and the expands after it. be_lora_shrink()/be_lora_expand() call them for at most
     * lora_max_rows rows. NULL, or more rows: be_lora_shrink() does nothing and be_lora_expand() runs the
     * whole update per segment (a matmul into t's first rows, a matmul into d's, an add: each segment
     * reuses the same scratch rows, so a recording backend orders them by its hazards), which is why it
     * takes x and a too. */
    void (*lora_shrink)(void *ctx, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *t);
    void (*lora_expand)(void *ctx, const be_tensor *t, const be_tensor *b, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *d, const be_tensor *out);
    int64_t lora_max_rows;

    /* --- mixture of experts (issue 15) --- */
    /* (optional) Grouped matmul: for each group g and each i < nw,
     *   out[i][rows of g] = x[rows of g] @ w[i][g.expert]^T,
     * where w[i] points at an array of one weight per expert ([M_i, K] each, f32/f16/bf16/MXFP4, in any
     * buffers), x f32 [n, K] and out[i] f32 [n, M_i]; groups do not overlap and rows outside every group
     * are left alone. The runner sorts a step's (token, expert) pairs by expert, so each active expert's
     * weights are read once per step for all of its rows; a backend may split the rows of every group's
     * weights across its threads in one pass. NULL: be_matmul_grouped() runs matmul_multi per group. */
    void (*matmul_grouped)(void *ctx, const be_tensor *x, int n_groups, const be_moe_group *groups, int nw,
                           const be_tensor *const *w, const be_tensor *const *out);
    /* The weighted sum of each token's expert outputs:
     *   out[t, :] = sum_{j < k} wt[t, j] * y[idx[t, j], :]   (j in order, f32)
     * y f32 [A, D], idx i32 [n, k] (each in [0, A)), wt f32 [n, k], out f32 [n, D]. */
    void (*moe_combine)(void *ctx, const be_tensor *y, const be_tensor *idx, const be_tensor *wt,
                        const be_tensor *out);
    /* (optional, issue 12) Routing on the device, so a decode step's MoE layers need no read-back. For each
     * token t < n of the router logits lg f32 [n, E] (any bias already added by the matmul), with
     * flags & BE_MOE_TOPK_FIRST (gpt-oss): the k largest logits, then their softmax; else the softmax over
     * all E (f32, max subtracted) and the k largest probabilities, renormalised to sum 1 with
     * flags & BE_MOE_NORM (norm_topk_prob). ids[t, j] (i32 [n, k]) gets the experts in descending order
     * (ties: the lower index first, as be_moe_route_row), wt[t, j] (f32 [n, >= k]) their weights; with a
     * gate (f32 [n, 1], Qwen2-MoE's shared-expert gate logit) also wt[t, k] = sigmoid(gate[t]), else
     * columns from k on are left alone. k <= BE_MOE_MAX_K, n * k <= BE_MOE_MAX_PAIRS,
     * E <= BE_MOE_MAX_EXPERTS. NULL: the runner routes on the host (reads the logits back). */
    void (*moe_topk)(void *ctx, const be_tensor *logits, int k, int flags, const be_tensor *gate,
                     const be_tensor *ids, const be_tensor *wt);
    /* (optional, issue 12) Expert matmul by device-made ids: for the A = n * k pairs p = t * k + j of
     * ids i32 [n, k] (contiguous), with e = ids[t, j], and each of the nw (<= BE_MOE_MAX_NW) weight sets i,
     *   out[i][p, :] = x[xr, :] @ w[i][e]^T (+ bias[i][e, :]),  xr = t when x has n rows (the token's k
     *   pairs share its row), p when x has A rows;
     * w[i] an array of n_experts weights ([M_i, K] each, f32/f16/bf16/MXFP4, in any buffers; M_i =
     * out[i]->cols, all of one dtype and shape), bias[i] f32 [n_experts, M_i] or NULL (bias itself may be
     * NULL: none), out[i] f32 [A, M_i]; an id outside [0, n_experts) leaves its rows alone. Gate and up
     * share x, as in matmul_grouped. A backend should read each active expert's weights once for all of its
     * pairs. A <= BE_MOE_MAX_PAIRS. Implemented with moe_topk or not at all. */
    void (*moe_matmul_ids)(void *ctx, const be_tensor *x, int n_experts, int nw, const be_tensor *const *w,
                           const be_tensor *const *bias, const be_tensor *ids, const be_tensor *const *out);

    /* Wait until every recorded op has finished. */
    int (*sync)(void *ctx);
    void (*free)(void *ctx);
} be_backend;

/* Open the backend for a --device value, as vLLM's platform detection does:
 *   "auto" (or NULL): the first real GPU through Vulkan (discrete before integrated, never a
 *                     CPU implementation such as lavapipe), else the CPU; why no GPU was taken
 *                     is logged on stderr;
 *   "gpu" (also "vulkan"): Vulkan, any device including lavapipe (VLLMC_VULKAN_DEVICE=<index>
 *                     picks one); no device is an error;
 *   "cpu":            the CPU backend (threads from VLLM_CPU_OMP_THREADS_BIND).
 * Anything else is VC_EINVAL naming the choices this build has. */
int be_open(const char *device, be_backend **out);
/* 1 when this build has GPU (Vulkan) code: make VLLM_TARGET_DEVICE=cpu builds without it. */
int be_have_gpu(void);

/* Wrappers: they fill optional entries and free the backend struct itself. */
int be_buffer_wrap_host(be_backend *b, const void *host, size_t bytes, be_buffer **out);
void be_matmul_multi(be_backend *b, const be_tensor *x, int nw, const be_tensor *const *w,
                     const be_tensor *const *bias, const be_tensor *const *out);
/* Runs op: the backend's matmul_fused, else its decomposition into rmsnorm, matmul_multi, silu_mul /
 * gelu_tanh_mul, matmul and add. */
void be_matmul_fused(be_backend *b, const be_mm *op);
void be_rope_kv_write(be_backend *b, const be_tensor *q, const be_tensor *k, const be_tensor *v, int head_dim,
                      int rot_dim, const be_tensor *pos, const be_tensor *inv_freq, float mscale,
                      const be_tensor *slot, const be_tensor *k_cache, const be_tensor *v_cache);
void be_add_rmsnorm(be_backend *b, const be_tensor *x, const be_tensor *h, const be_tensor *w, float eps,
                    float w_offset, const be_tensor *out);
void be_lora_shrink(be_backend *b, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                    const be_tensor *row_slot, const be_tensor *t);
void be_lora_expand(be_backend *b, const be_tensor *x, const be_tensor *a, const be_tensor *t, const be_tensor *b_w,
                    int n_seg, const be_lora_seg *seg, const be_tensor *row_slot, const be_tensor *d,
                    const be_tensor *out);
void be_matmul_grouped(be_backend *b, const be_tensor *x, int n_groups, const be_moe_group *groups, int nw,
                       const be_tensor *const *w, const be_tensor *const *out);
/* One token's routing as moe_topk defines it, in f32 with libm's expf: the host path and the CPU op share
 * it, so they agree bit for bit. p: E logits (not changed); sel/w: k experts and weights. */
void be_moe_route_row(const float *p, int E, int k, int flags, int32_t *sel, float *w);
double be_bandwidth_gbs(be_backend *b, size_t bytes);
double be_peak_gflops(be_backend *b);
void be_free(be_backend *b);

/* A tensor view over a whole buffer or a part of one. */
static inline be_tensor be_view(be_buffer *buf, size_t offset, be_dtype dt, int64_t rows, int64_t cols) {
    be_tensor t = {buf, offset, dt, rows, cols, cols};
    return t;
}
/* Rows [r0, r0+n) of t. */
static inline be_tensor be_rows(const be_tensor *t, int64_t r0, int64_t n) {
    be_tensor v = *t;
    v.offset += be_dtype_bytes(t->dtype, r0 * t->stride);
    v.rows = n;
    return v;
}
/* Columns [c0, c0+n) of t (a strided view). */
static inline be_tensor be_cols(const be_tensor *t, int64_t c0, int64_t n) {
    be_tensor v = *t;
    v.offset += be_dtype_bytes(t->dtype, c0);
    v.cols = n;
    return v;
}

#endif
