/* vk_internal: state shared by the Vulkan backend's files.
 *
 * vk_device.c   loader (dlopen), instance, device choice, queue, limits, be_info
 * vk_memory.c   buffers: device memory, host-visible mapping, staging, writes and reads
 * vk_record.c   the step's command buffer: dispatch, barriers, descriptor-set cache, submit/wait
 * vk_pipeline.c embedded SPIR-V -> compute pipelines (one per op and dtype)
 * vk_ops.c      the be_backend ops: push constants, bindings, workgroup counts
 *
 * Recording model: every op appends dispatches to one command buffer; a
 * barrier is inserted only when a dispatch touches a buffer range that an
 * earlier dispatch since the last barrier wrote (or writes one it read).
 * sync() submits once and waits on one fence. Descriptor sets are cached by
 * their bindings and never updated after creation, so steady-state steps
 * allocate nothing. Every failure is recorded in ctx->error (first one wins)
 * and returned by the next sync(). */
#ifndef VLLMC_VK_INTERNAL_H
#define VLLMC_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "backend/backend.h"
#include "backend/vulkan/vk_backend.h"

/* Every Vulkan entry point the backend calls, loaded through vkGetInstanceProcAddr. */
#define VK_GLOBAL_FNS(X) X(vkCreateInstance) X(vkEnumerateInstanceExtensionProperties)
#define VK_INSTANCE_FNS(X)                                                                                  \
    X(vkDestroyInstance) X(vkEnumeratePhysicalDevices) X(vkGetPhysicalDeviceProperties)                     \
    X(vkGetPhysicalDeviceProperties2) X(vkGetPhysicalDeviceFeatures2) X(vkGetPhysicalDeviceMemoryProperties) \
    X(vkGetPhysicalDeviceMemoryProperties2) X(vkGetPhysicalDeviceQueueFamilyProperties) X(vkCreateDevice)   \
    X(vkEnumerateDeviceExtensionProperties) X(vkGetDeviceProcAddr)
#define VK_DEVICE_FNS(X)                                                                                    \
    X(vkDestroyDevice) X(vkGetDeviceQueue) X(vkCreateBuffer) X(vkDestroyBuffer)                              \
    X(vkGetBufferMemoryRequirements) X(vkAllocateMemory) X(vkFreeMemory) X(vkBindBufferMemory)              \
    X(vkMapMemory) X(vkUnmapMemory) X(vkInvalidateMappedMemoryRanges) X(vkFlushMappedMemoryRanges)          \
    X(vkCreateShaderModule) X(vkDestroyShaderModule) X(vkCreateDescriptorSetLayout)                         \
    X(vkDestroyDescriptorSetLayout) X(vkCreatePipelineLayout) X(vkDestroyPipelineLayout)                    \
    X(vkCreateComputePipelines) X(vkDestroyPipeline) X(vkCreateDescriptorPool) X(vkDestroyDescriptorPool)    \
    X(vkAllocateDescriptorSets) X(vkUpdateDescriptorSets) X(vkCreateCommandPool) X(vkDestroyCommandPool)     \
    X(vkAllocateCommandBuffers) X(vkResetCommandBuffer) X(vkBeginCommandBuffer) X(vkEndCommandBuffer)        \
    X(vkCmdBindPipeline) X(vkCmdBindDescriptorSets) X(vkCmdPushConstants) X(vkCmdDispatch)                   \
    X(vkCmdPipelineBarrier) X(vkCmdCopyBuffer) X(vkCmdUpdateBuffer) X(vkCmdFillBuffer) X(vkCreateFence)      \
    X(vkDestroyFence) X(vkResetFences) X(vkWaitForFences) X(vkQueueSubmit) X(vkDeviceWaitIdle)          \
    X(vkCreateQueryPool) X(vkDestroyQueryPool) X(vkCmdResetQueryPool) X(vkCmdWriteTimestamp)                 \
    X(vkGetQueryPoolResults)

typedef struct {
#define VK_FN_FIELD(name) PFN_##name name;
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV vkGetPhysicalDeviceCooperativeMatrixPropertiesNV; /* optional */
    PFN_vkGetMemoryHostPointerPropertiesEXT vkGetMemoryHostPointerPropertiesEXT;                             /* optional */
    VK_GLOBAL_FNS(VK_FN_FIELD)
    VK_INSTANCE_FNS(VK_FN_FIELD)
    VK_DEVICE_FNS(VK_FN_FIELD)
#undef VK_FN_FIELD
} vk_fns;

struct be_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t size;          /* bytes asked for */
    uint64_t charged;     /* bytes counted against the memory limit */
    void *map;            /* persistent mapping when host-visible, else NULL */
    int coherent;         /* the mapping needs no flush/invalidate */
    int cached;           /* HOST_CACHED memory: host reads from the mapping are fast */
    unsigned id;          /* unique per buffer: the descriptor cache's key */
    int imported;         /* host memory imported in place (VK_EXT_external_memory_host): read-only */
};

/* Pipelines: one per shader and weight/cache dtype variant. */
typedef enum {
    VKP_GET_ROWS,       /* + dtype */
    VKP_RMSNORM = VKP_GET_ROWS + 3,
    VKP_MATVEC,         /* + 4 * dtype + log2(tokens per workgroup): small n */
    VKP_MATMUL = VKP_MATVEC + 12, /* + dtype: tiled, larger n */
    VKP_ROPE = VKP_MATMUL + 3,
    VKP_KV_WRITE,       /* + dtype */
    VKP_ATTENTION = VKP_KV_WRITE + 3, /* + dtype */
    VKP_SILU_MUL = VKP_ATTENTION + 3,
    VKP_ADD,
    VKP_MATVEC_SG,      /* + 4 * dtype + log2(tokens): decode with 16-byte loads and subgroupAdd */
    VKP_COPY = VKP_MATVEC_SG + 12,
    VKP_MATMUL_COOP,    /* + dtype: tensor cores (VK_NV_cooperative_matrix) */
    VKP_ATTN_COMBINE = VKP_MATMUL_COOP + 3,
    VKP_ADD_RMSNORM,
    VKP_ROPE_KV,        /* + cache dtype */
    VKP_MATMUL_V = VKP_ROPE_KV + 3, /* + dtype: tiled f32 FMA with 16-byte loads */
    VKP_MATVEC_SGW = VKP_MATMUL_V + 3, /* + 4 * dtype + log2(tokens): matvec_sg with K split across the workgroup */
    VKP_MATVEC_SGW_END = VKP_MATVEC_SGW + 11,
    VKP_MATMUL_COOP_L,  /* + dtype: matmul_coop with 128-token tiles (prefill) */
    VKP_MATMUL_REDUCE = VKP_MATMUL_COOP_L + 3, /* the split-K sums of matmul_coop */
    VKP_LORA_SHRINK,    /* + dtype: LoRA x a^T per row's slot */
    VKP_LORA_EXPAND = VKP_LORA_SHRINK + 3, /* + dtype: LoRA out += t b^T per row's slot */
    VKP_GELU_MUL = VKP_LORA_EXPAND + 3, /* eltwise.comp's GeGLU, scale and softcap */
    VKP_SCALE,
    VKP_SOFTCAP,
    VKP_MOE_COMBINE,    /* moe_combine.comp: each token's weighted sum of its experts' outputs */
    VKP_SWIGLU,         /* eltwise.comp's gpt-oss clamped SwiGLU */
    VKP_MATVEC_MX,      /* + log2(tokens): MXFP4 weights, decode (matvec_mx.comp) */
    VKP_MATMUL_MX = VKP_MATVEC_MX + 4, /* MXFP4 weights, tiled f32 FMA (matmul_mx.comp) */
    VKP_MOE_TOPK,       /* moe_topk.comp: routing on the device (issue 12) */
    VKP_MOE_MATVEC,     /* + dtype (3: MXFP4): moe_matvec.comp, expert matmul by device-made ids */
    VKP_MATMUL_CD = VKP_MOE_MATVEC + 4, /* + 3 * (dtype - 1) + log2(token fragments): matmul_cd.comp, weights
                                         * loaded straight into tensor-core fragments (f16 and bf16) */
    VKP_ARGMAX = VKP_MATMUL_CD + 6, /* argmax.comp: greedy sampling's index per row */
    VKP_ATTN_PREFILL,   /* + 2 * (dtype - 1) + (head_dim == 128): attn_prefill.comp, a block of prompt rows per
                         * workgroup (f16/bf16 caches, head_dim 64 or 128) */
    VKP_TOPK = VKP_ATTN_PREFILL + 4, /* topk.comp: a sampled row's best k on the device */
    VKP_COUNT
} vk_pipe_id;

#define VK_MAX_BINDINGS 9   /* attention: q, K, V, out, 3 metadata tensors, split scratch, sinks */
#define VK_NCB 4                /* command buffers in the ring */
#define VK_FLUSH_DISPATCHES 48  /* submit a piece of the step after this many dispatches
                                   (VLLMC_VULKAN_FLUSH_EVERY overrides it; tests use small pieces) */
#define VK_PUSH_BYTES 128

typedef struct {
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipeline pipe;
    int n_bindings;
} vk_pipe;

/* One operand of a dispatch: a byte range of a buffer, and whether the dispatch writes it. */
typedef struct {
    be_buffer *b;
    size_t off, bytes;
    int write;
} vk_use;

/* Descriptor-set cache entry: a pipeline layout with its bindings. */
typedef struct {
    int pipe;             /* vk_pipe_id, -1 empty */
    unsigned ids[VK_MAX_BINDINGS];
    VkDeviceSize offs[VK_MAX_BINDINGS];
    VkDescriptorSet set;
} vk_dset;

typedef struct {
    vk_fns f;
    void *lib;
    VkInstance inst;
    VkPhysicalDevice pdev;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    int has_budget;          /* VK_EXT_memory_budget */
    int unified;             /* device-local memory is host-visible (Apple, integrated, lavapipe) */
    int force_staging;       /* VLLMC_VULKAN_STAGING=1: never map device buffers, as on a discrete GPU
                                (so lavapipe in CI tests the staging paths too) */
    int64_t matvec_passes_upto; /* VLLMC_VULKAN_MATVEC_PASSES_UPTO: batches up to this many tokens as matvec
                                   passes of 8 (an A/B knob for batched decode; 0: off) */
    uint64_t import_align;   /* > 0: weight files imported in place (VK_EXT_external_memory_host's
                                minImportedHostPointerAlignment; unified devices only) */
    int subgroup_size;
    int subgroup_arith;      /* subgroupAdd usable in compute shaders */
    int subgroup_shuffle;    /* subgroupShuffleXor usable in compute shaders */
    int fp16_arith;
    int coopmat;             /* VK_NV_cooperative_matrix with 16x16x16 f16 -> f32 on 32-wide subgroups */
    uint64_t max_range;      /* maxStorageBufferRange */
    uint64_t align;          /* minStorageBufferOffsetAlignment */
    uint64_t max_alloc;      /* maxMemoryAllocationSize */
    char desc[256];

    vk_pipe pipes[VKP_COUNT];

    /* recording */
    VkCommandPool cpool;
    VkCommandBuffer cbs[VK_NCB];  /* a ring: a long step goes to the GPU in pieces while the host records */
    VkFence fences[VK_NCB];
    int busy[VK_NCB];        /* submitted, fence not yet waited */
    int cur;                 /* ring index of cb */
    VkCommandBuffer cb;      /* cbs[cur] */
    VkFence fence;           /* fences[cur] */
    int recording;           /* cb has been begun */
    int flush_every;         /* dispatches per submitted piece */
    int continuing;          /* cb continues a step whose earlier pieces were submitted */
    int n_dispatch;          /* dispatches recorded since begin */
    /* hazard tracking since the last barrier */
    vk_use *pend;
    int n_pend, cap_pend;

    /* descriptor sets */
    VkDescriptorPool *pools;
    int n_pools, pool_left;  /* sets left in the newest pool */
    vk_dset *dsets;
    size_t dset_cap, dset_n; /* open addressing, power of two */

    /* staging for large writes and reads to device-local memory */
    be_buffer *stage;
    size_t stage_size;
    size_t stage_used;       /* bytes of `stage` that recorded copies still read or write */
    be_buffer *scratch;      /* attention's per-split partial results, grown on demand */
    int64_t matvec_wide_rows; /* weights of at most this many rows use the K-split matvec
                                 (4096; VLLMC_VULKAN_MATVEC_WIDE_ROWS overrides it, for A/B runs) */
    uint64_t split_range;    /* VLLMC_VULKAN_SPLIT_RANGE=<bytes>: weights and tables split as if bindings
                                reached only this far (tests of the maxStorageBufferRange path) */
    int attn_split;          /* VLLMC_VULKAN_ATTN_SPLIT=<keys>: force context splits of that size (tests) */
    int stacked_gemm;        /* a prompt's stacked q/k/v, gate/up as one GEMM (VLLMC_VULKAN_STACKED_GEMM=1; off
                              * until measured on a GPU with cooperative matrices) */
    int attn_kstage;         /* attention.comp stages K rows through shared memory (VLLMC_VULKAN_ATTN_KSTAGE=1) */
    int attn_groups;         /* attention.comp's groups of 128 per workgroup (VLLMC_VULKAN_ATTN_GROUPS: 1, 2, 4) */
    int attn_block_min;      /* sequences with at least this many query rows run attn_prefill.comp (0: never;
                              * VLLMC_VULKAN_ATTN_BLOCK_MIN, default 2) */
    int no_fuse;             /* VLLMC_VULKAN_NO_FUSE=1: matmul_multi / matmul_fused as separate dispatches (A/B runs) */
    int no_fold;             /* VLLMC_VULKAN_NO_FOLD=1: fused matvecs kept, norms and residual adds not folded (A/B) */
    int coop_splitk;         /* split matmul_coop along K when it has too few workgroups (VLLMC_VULKAN_COOP_SPLITK=0
                                turns it off, for A/B runs) */
    int64_t coop_direct_max_n; /* matmul_cd.comp (weights straight into the fragments) for up to this many tokens:
                                  64 by default (batched decode); VLLMC_VULKAN_COOP_DIRECT=0 keeps matmul_coop.comp */
    int coop_split;          /* matmul_cd.comp's activations as hi + lo f16 parts, f32-level exact
                                (VLLMC_VULKAN_COOP_SPLIT=1; test_golden's exact pass) instead of f16-rounded */
    int coop_l_split;        /* matmul_coop.comp's 128-token tiles (prompts): activations as hi + lo (the
                                default until the f16 form is measured; VLLMC_VULKAN_COOP_L_SPLIT=0: f16-rounded,
                                K steps of 64 where the shared memory allows) */
    int coop_bk64;           /* ... and, without the split, K steps of 64 (VLLMC_VULKAN_COOP_BK=32: 32) */
    int coop_tokens;         /* token tile of the cooperative-matrix GEMM for more than 64 tokens: 128
                                where the shared memory allows it, else 64 (VLLMC_VULKAN_COOP_TOKENS, A/B) */

    /* VLLMC_VULKAN_PROFILE=1: a timestamp after every dispatch; time per pipeline printed at exit */
    VkQueryPool qpool;
    int n_q;                 /* timestamps written in this recording */
    int q_pipe[4096];        /* pipeline of each timestamp (-1: the start) */
    double prof_ms[VKP_COUNT];
    long prof_n[VKP_COUNT];
    double ts_period;        /* ns per tick */
    /* VLLMC_VULKAN_PROFILE=2: host time recording dispatches, submitting and waiting (no timestamps) */
    int host_prof;
    double h_record, h_submit, h_wait;
    long h_dispatches, h_syncs;
    double h_read;           /* seconds copying read-backs out of the staging buffer (host profile) */
    uint64_t h_read_bytes;
    int stage_cached;        /* the staging buffer's memory is HOST_CACHED (reads from it run at memory speed) */

    /* fault injection for tests: VLLMC_VULKAN_MEMORY_LIMIT (bytes the device pretends to have for
     * buffers) and VLLMC_VULKAN_FAULT_AFTER_SUBMITS (that submission reports a lost device) */
    uint64_t mem_limit, mem_used;
    long fault_after, n_submits;

    unsigned next_id;
    int error;               /* first error since the last sync (VC_E*) */
    int lost;                /* the device was lost: every later call fails */
} vk_ctx;

/* vk_device.c */
int vk_check(vk_ctx *c, VkResult r, const char *what);
int vk_info(void *ctx, be_info *out);

/* vk_memory.c */
int vk_buffer_alloc(void *ctx, size_t bytes, be_buffer **out);
/* An mmapped weight file in place (unified devices with VK_EXT_external_memory_host): host aligned to
 * import_align; VC_EUNSUP where the device declines (the caller copies instead). Read-only. */
int vk_buffer_wrap_host(void *ctx, const void *host, size_t bytes, be_buffer **out);
int vk_buffer_alloc_kind(vk_ctx *c, size_t bytes, int host, be_buffer **out);
void vk_buffer_free(void *ctx, be_buffer *b);
int vk_buffer_write(void *ctx, be_buffer *b, size_t off, const void *src, size_t bytes);
int vk_buffer_read(void *ctx, be_buffer *b, size_t off, void *dst, size_t bytes);
double vk_bandwidth(void *ctx, size_t bytes);

/* vk_record.c */
int vk_begin(vk_ctx *c);
/* Record one dispatch: pipeline, its operands (one per binding, in binding order), push constants. */
void vk_dispatch(vk_ctx *c, vk_pipe_id p, const vk_use *uses, int n_uses, const void *push, size_t push_bytes,
                 uint32_t gx, uint32_t gy, uint32_t gz);
/* Barrier before a transfer command that touches `u` (copies, updates). */
void vk_hazard(vk_ctx *c, const vk_use *u, int n);
int vk_submit_wait(vk_ctx *c);
int vk_sync(void *ctx);
void vk_prof_print(vk_ctx *c);
void vk_fail(vk_ctx *c, int rc);
void vk_dsets_clear(vk_ctx *c);

/* vk_pipeline.c */
int vk_pipelines_create(vk_ctx *c);
int vk_pipe_ensure(vk_ctx *c, vk_pipe_id id);
const char *vk_pipe_name(int id);
void vk_pipelines_free(vk_ctx *c);

/* vk_ops.c */
void vk_op_get_rows(void *ctx, const be_tensor *table, const be_tensor *ids, const be_tensor *out);
void vk_op_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *w, float eps, float w_offset, const be_tensor *out);
void vk_op_matmul(void *ctx, const be_tensor *x, const be_tensor *w, const be_tensor *bias, const be_tensor *out);
void vk_op_rope(void *ctx, const be_tensor *x, int head_dim, int rot_dim, const be_tensor *pos, const be_tensor *inv_freq,
                float mscale);
void vk_op_kv_write(void *ctx, const be_tensor *k, const be_tensor *slot, const be_tensor *cache);
void vk_op_attention(void *ctx, const be_tensor *q, const be_tensor *k_cache, const be_tensor *v_cache,
                     const be_attn_meta *meta, const be_attn_shape *shape, const be_tensor *out);
void vk_op_silu_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
void vk_op_add(void *ctx, const be_tensor *a, const be_tensor *b, const be_tensor *out);
void vk_op_gelu_tanh_mul(void *ctx, const be_tensor *gate, const be_tensor *up, const be_tensor *out);
void vk_op_scale(void *ctx, const be_tensor *x, float s, const be_tensor *out);
void vk_op_softcap(void *ctx, const be_tensor *x, float cap, const be_tensor *out);
void vk_op_matmul_multi(void *ctx, const be_tensor *x, int nw, const be_tensor *const *w,
                        const be_tensor *const *bias, const be_tensor *const *out);
int vk_op_matmul_fused(void *ctx, const be_mm *op);
void vk_op_argmax(void *ctx, const be_tensor *x, const be_tensor *out);
void vk_op_topk(void *ctx, const be_tensor *x, int k, const be_tensor *ids, const be_tensor *vals);
void vk_op_moe_combine(void *ctx, const be_tensor *y, const be_tensor *idx, const be_tensor *wt, const be_tensor *out);
void vk_op_swiglu_clamp(void *ctx, const be_tensor *gu, float alpha, float limit, const be_tensor *out);
void vk_op_moe_topk(void *ctx, const be_tensor *logits, int k, int flags, const be_tensor *gate, const be_tensor *ids,
                    const be_tensor *wt);
void vk_op_moe_matmul_ids(void *ctx, const be_tensor *x, int n_experts, int nw, const be_tensor *const *w,
                          const be_tensor *const *bias, const be_tensor *ids, const be_tensor *const *out);
/* Rows up to which the fused kernels run LoRA; above, be_lora_expand runs matmuls per segment. The
 * kernels read an adapter's weights once per row (from cache after the first), which measured badly with
 * the first, latency-bound shrink kernel (session 5: -45% at every step, so 64 was the limit); with
 * today's kernels the H100 (8B, 16 x (128 + 128), 4 adapters, 2026-12-07) gives the same throughput
 * with them at the 2,048-row prefill (403.8 / 404.2 output tokens/s) as with matmuls per segment on
 * separate rows (405.4 / 402.5), and more than with the per-segment matmuls through one scratch (390.4
 * / 385.4), which Vulkan's synchronization validation requires of the fallback. */
#define VK_LORA_MAX_ROWS 4096
void vk_op_lora_shrink(void *ctx, const be_tensor *x, const be_tensor *a, int n_seg, const be_lora_seg *seg,
                       const be_tensor *row_slot, const be_tensor *t);
void vk_op_lora_expand(void *ctx, const be_tensor *t, const be_tensor *b, int n_seg, const be_lora_seg *seg,
                       const be_tensor *row_slot, const be_tensor *d, const be_tensor *out);
void vk_op_rope_kv_write(void *ctx, const be_tensor *q, const be_tensor *k, const be_tensor *v, int head_dim, int rot_dim,
                         const be_tensor *pos, const be_tensor *inv_freq, float mscale, const be_tensor *slot,
                         const be_tensor *k_cache, const be_tensor *v_cache);
void vk_op_add_rmsnorm(void *ctx, const be_tensor *x, const be_tensor *h, const be_tensor *w, float eps, float w_offset,
                       const be_tensor *out);

#endif
