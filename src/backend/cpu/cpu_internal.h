/* cpu_internal: state shared by the CPU backend's files.
 *
 * The CPU backend runs every op at once on its thread pool (no recording), so
 * sync() is a no-op. Buffers are plain host memory, either owned (malloc'd,
 * 64-byte aligned) or wrapping memory the caller keeps alive (mmapped weights). */
#ifndef VLLMC_CPU_INTERNAL_H
#define VLLMC_CPU_INTERNAL_H

#include "backend/backend.h"
#include "base/threadpool.h"

struct be_buffer {
    void *data;
    size_t size;   /* bytes */
    int owned;     /* 1: free data with the buffer */
};

typedef struct {
    tp_pool *pool;
    int nthreads;
    float *scratch;        /* per-thread attention scratch: nthreads * scratch_per_thread floats */
    size_t scratch_per_thread;
    float *moe_buf;        /* moe_matmul_ids' gathered inputs and outputs (cpu_moe.c), moe_cap floats */
    size_t moe_cap;
    int error;             /* first failure inside an op (VC_E*), reported by sync() */
} cpu_ctx;

static inline void *cpu_ptr(const be_tensor *t) { return (char *)t->buf->data + t->offset; }
static inline float *cpu_f32(const be_tensor *t) { return (float *)cpu_ptr(t); }
static inline int32_t *cpu_i32(const be_tensor *t) { return (int32_t *)cpu_ptr(t); }

/* Run fn over rows [0, rows) on the pool, split in contiguous ranges, or on the calling thread when
 * rows * cols is too small to pay for the hand-off (cpu_ops.c). */
typedef void (*row_fn)(const void *arg, int64_t r0, int64_t r1);
void cpu_for_rows(cpu_ctx *c, int64_t rows, int64_t cols, row_fn fn, const void *arg);

/* ops (cpu_ops.c) */
void cpu_op_get_rows(void *ctx, const be_tensor *table, const be_tensor *ids, const be_tensor *out);
void cpu_op_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *w, float eps, float w_offset,
                    const be_tensor *out);
void cpu_op_matmul(void *ctx, const be_tensor *x, const be_tensor *w, const be_tensor *bias,
                   const be_tensor *out);
void cpu_op_matmul_multi(void *ctx, const be_tensor *x, int nw, const be_tensor *const *w,
                         const be_tensor *const *bias, const be_tensor *const *out);
void cpu_op_rope(void *ctx, const be_tensor *x, int head_dim, int rot_dim, const be_tensor *pos,
                 const be_tensor *inv_freq, float mscale);
void cpu_op_kv_write(void *ctx, const be_tensor *k, const be_tensor *slot, const be_tensor *cache);
void cpu_op_silu_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
void cpu_op_gelu_tanh_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
void cpu_op_scale(void *ctx, const be_tensor *x, float s, const be_tensor *out);
void cpu_op_softcap(void *ctx, const be_tensor *x, float cap, const be_tensor *out);
void cpu_op_argmax(void *ctx, const be_tensor *x, const be_tensor *out);
void cpu_op_add(void *ctx, const be_tensor *a, const be_tensor *b, const be_tensor *out);
/* LoRA's halves (cpu_lora.c) */
void cpu_op_lora_shrink(void *ctx, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *t);
void cpu_op_lora_expand(void *ctx, const be_tensor *t, const be_tensor *b, int n_seg, const be_lora_seg *seg,
                        const be_tensor *row_slot, const be_tensor *d, const be_tensor *out);
/* mixture of experts (cpu_moe.c) */
void cpu_op_matmul_grouped(void *ctx, const be_tensor *x, int n_groups, const be_moe_group *groups, int nw,
                           const be_tensor *const *w, const be_tensor *const *out);
void cpu_op_swiglu_clamp(void *ctx, const be_tensor *gu, float alpha, float limit, const be_tensor *out);
void cpu_op_moe_combine(void *ctx, const be_tensor *y, const be_tensor *idx, const be_tensor *wt,
                        const be_tensor *out);
void cpu_op_moe_topk(void *ctx, const be_tensor *logits, int k, int flags, const be_tensor *gate, const be_tensor *ids,
                     const be_tensor *wt);
void cpu_op_moe_matmul_ids(void *ctx, const be_tensor *x, int E, int nw, const be_tensor *const *w,
                           const be_tensor *const *bias, const be_tensor *ids, const be_tensor *const *out);
/* attention (cpu_attention.c) */
void cpu_op_attention(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                      const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out);

#endif
