/* Compute pipelines from the SPIR-V that glslc made at build time (embedded
 * as uint32_t arrays; nothing is compiled at run time). A pipeline is made on
 * first use, so a run pays only for the shaders it needs. Dtype variants are
 * one shader with a specialisation constant (constant_id 0). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/vulkan/vk_internal.h"
#include "base/err.h"

static const uint32_t spv_get_rows[] =
#include "get_rows.spv.h"
    ;
static const uint32_t spv_rmsnorm[] =
#include "rmsnorm.spv.h"
    ;
static const uint32_t spv_matvec[] =
#include "matvec.spv.h"
    ;
static const uint32_t spv_matmul[] =
#include "matmul.spv.h"
    ;
static const uint32_t spv_rope[] =
#include "rope.spv.h"
    ;
static const uint32_t spv_kv_write[] =
#include "kv_write.spv.h"
    ;
static const uint32_t spv_attention[] =
#include "attention.spv.h"
    ;
static const uint32_t spv_eltwise[] =
#include "eltwise.spv.h"
    ;
static const uint32_t spv_matvec_sg[] =
#include "matvec_sg.spv.h"
    ;
static const uint32_t spv_matmul_coop[] =
#include "matmul_coop.spv.h"
    ;
static const uint32_t spv_attn_combine[] =
#include "attn_combine.spv.h"
    ;
static const uint32_t spv_add_rmsnorm[] =
#include "add_rmsnorm.spv.h"
    ;
static const uint32_t spv_rope_kv[] =
#include "rope_kv.spv.h"
    ;
static const uint32_t spv_matmul_v[] =
#include "matmul_v.spv.h"
    ;
static const uint32_t spv_matmul_reduce[] =
#include "matmul_reduce.spv.h"
    ;
static const uint32_t spv_lora_shrink[] =
#include "lora_shrink.spv.h"
    ;
static const uint32_t spv_lora_expand[] =
#include "lora_expand.spv.h"
    ;
static const uint32_t spv_moe_combine[] =
#include "moe_combine.spv.h"
    ;
static const uint32_t spv_copy[] =
#include "copy.spv.h"
    ;
static const uint32_t spv_matvec_mx[] =
#include "matvec_mx.spv.h"
    ;
static const uint32_t spv_matmul_mx[] =
#include "matmul_mx.spv.h"
    ;
static const uint32_t spv_moe_topk[] =
#include "moe_topk.spv.h"
    ;
static const uint32_t spv_moe_matvec[] =
#include "moe_matvec.spv.h"
    ;
static const uint32_t spv_argmax[] =
#include "argmax.spv.h"
    ;
static const uint32_t spv_matmul_cd[] =
#include "matmul_cd.spv.h"
    ;
static const uint32_t spv_attn_prefill[] =
#include "attn_prefill.spv.h"
    ;
static const uint32_t spv_topk[] =
#include "topk.spv.h"
    ;

typedef struct {
    const uint32_t *code;
    size_t bytes;
    int n_bindings;
    uint32_t spec[5];  /* values of constant_id 0 .. 4 */
} pipe_src;

#define SRC(a, nb, sp) {a, sizeof a, nb, {sp, 1, 1, 0}}

static pipe_src source_of(const vk_ctx *c, vk_pipe_id id) {
    if (id == VKP_COPY) return (pipe_src)SRC(spv_copy, 2, 0);
    if (id == VKP_ARGMAX) return (pipe_src)SRC(spv_argmax, 3, 0);
    if (id == VKP_TOPK) return (pipe_src)SRC(spv_topk, 4, 0);
    if (id >= VKP_ATTN_PREFILL) { /* constant 0: cache dtype (f16, bf16), 1: head_dim (64, 128) */
        pipe_src s = SRC(spv_attn_prefill, 8, 1u + (uint32_t)(id - VKP_ATTN_PREFILL) / 2u);
        s.spec[1] = (id - VKP_ATTN_PREFILL) % 2 ? 128u : 64u;
        return s;
    }
    if (id >= VKP_MATMUL_CD) { /* constant 0: dtype (f16, bf16), 1: activations split, 2: token fragments */
        uint32_t v = (uint32_t)(id - VKP_MATMUL_CD);
        pipe_src s = SRC(spv_matmul_cd, 4, 1u + v / 3u);
        s.spec[1] = (uint32_t)c->coop_split;
        s.spec[2] = 1u << (v % 3u);
        return s;
    }
    if (id >= VKP_MOE_MATVEC) { /* constant 0: dtype (3: MXFP4), 1: rows per workgroup (one per subgroup) */
        pipe_src s = SRC(spv_moe_matvec, 5, (uint32_t)(id - VKP_MOE_MATVEC));
        s.spec[1] = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
        return s;
    }
    if (id == VKP_MOE_TOPK) return (pipe_src)SRC(spv_moe_topk, 4, 0);
    if (id == VKP_MATMUL_MX) return (pipe_src)SRC(spv_matmul_mx, 4, 0);
    if (id >= VKP_MATVEC_MX) { /* constant 0: tokens, 1: rows per workgroup (one per subgroup) */
        pipe_src s = SRC(spv_matvec_mx, 4, 1u << (id - VKP_MATVEC_MX));
        s.spec[1] = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
        return s;
    }
    if (id == VKP_SWIGLU) return (pipe_src)SRC(spv_eltwise, 3, 5);
    if (id == VKP_MOE_COMBINE) return (pipe_src)SRC(spv_moe_combine, 4, 0);
    if (id >= VKP_GELU_MUL) return (pipe_src)SRC(spv_eltwise, 3, 2u + (uint32_t)(id - VKP_GELU_MUL));
    if (id == VKP_MATMUL_REDUCE) return (pipe_src)SRC(spv_matmul_reduce, 3, 0);
    if (id >= VKP_LORA_EXPAND) return (pipe_src)SRC(spv_lora_expand, 4, (uint32_t)(id - VKP_LORA_EXPAND));
    if (id >= VKP_LORA_SHRINK) return (pipe_src)SRC(spv_lora_shrink, 4, (uint32_t)(id - VKP_LORA_SHRINK));
    if (id == VKP_ATTN_COMBINE) return (pipe_src)SRC(spv_attn_combine, 4, 0);
    if (id == VKP_ADD_RMSNORM) return (pipe_src)SRC(spv_add_rmsnorm, 4, 0);
    if ((id >= VKP_MATMUL_COOP_L && id < VKP_MATMUL_REDUCE) || (id >= VKP_MATMUL_COOP && id < VKP_ATTN_COMBINE)) {
        int large = id >= VKP_MATMUL_COOP_L;
        pipe_src s = SRC(spv_matmul_coop, 6, (uint32_t)(id - (large ? VKP_MATMUL_COOP_L : VKP_MATMUL_COOP)));
        const char *v = getenv("VLLMC_VULKAN_COOP_VARIANT"); /* measurement only (PERFORMANCE.md) */
        s.spec[1] = v ? (uint32_t)atoi(v) : 0;
        s.spec[2] = large ? 4 : 2; /* fragments per subgroup along the tokens */
        s.spec[3] = large ? (uint32_t)c->coop_l_split : 1u; /* activations as hi + lo, or rounded to f16 */
        s.spec[4] = large ? (uint32_t)c->coop_bk64 : 0u;   /* K steps of 64 */
        return s;
    }
    if (id >= VKP_MATVEC_SGW) {
        pipe_src s = SRC(spv_matvec_sg, 7, (uint32_t)(id - VKP_MATVEC_SGW) / 4);
        s.spec[1] = 1u << ((id - VKP_MATVEC_SGW) % 4);
        s.spec[3] = 1;
        return s;
    }
    if (id >= VKP_MATMUL_V) return (pipe_src)SRC(spv_matmul_v, 4, (uint32_t)(id - VKP_MATMUL_V));
    if (id >= VKP_ROPE_KV) return (pipe_src)SRC(spv_rope_kv, 8, (uint32_t)(id - VKP_ROPE_KV));
    if (id >= VKP_MATVEC_SG) {
        pipe_src s = SRC(spv_matvec_sg, 7, (uint32_t)(id - VKP_MATVEC_SG) / 4);
        s.spec[1] = 1u << ((id - VKP_MATVEC_SG) % 4);
        s.spec[2] = c->subgroup_size >= 1 && c->subgroup_size <= 128 ? 128u / (uint32_t)c->subgroup_size : 1u;
        return s;
    }
    if (id < VKP_RMSNORM) return (pipe_src)SRC(spv_get_rows, 3, (uint32_t)(id - VKP_GET_ROWS));
    if (id == VKP_RMSNORM) return (pipe_src)SRC(spv_rmsnorm, 3, 0);
    if (id < VKP_MATMUL) {
        pipe_src s = SRC(spv_matvec, 4, (uint32_t)(id - VKP_MATVEC) / 4);
        s.spec[1] = 1u << ((id - VKP_MATVEC) % 4);
        return s;
    }
    if (id < VKP_ROPE) return (pipe_src)SRC(spv_matmul, 4, (uint32_t)(id - VKP_MATMUL));
    if (id == VKP_ROPE) return (pipe_src)SRC(spv_rope, 3, 0);
    if (id < VKP_ATTENTION) return (pipe_src)SRC(spv_kv_write, 3, (uint32_t)(id - VKP_KV_WRITE));
    if (id < VKP_SILU_MUL) { /* constant 1: V loads in flight (VLLMC_VULKAN_ATTN_VU, A/B runs; 0 the old loop) */
        pipe_src s = SRC(spv_attention, 9, (uint32_t)(id - VKP_ATTENTION));
        const char *vu = getenv("VLLMC_VULKAN_ATTN_VU");
        s.spec[1] = vu && *vu ? (uint32_t)atoi(vu) : 16;
        s.spec[2] = 128u * (uint32_t)c->attn_groups; /* invocations: groups of 128 */
        return s;
    }
    return (pipe_src)SRC(spv_eltwise, 3, id == VKP_SILU_MUL ? 1u : 0u);
}

const char *vk_pipe_name(int id) {
    static const char *dt[3] = {"f32", "f16", "bf16"};
    static char buf[VKP_COUNT][32];
    if (id < 0 || id >= VKP_COUNT) return "?";
    const char *base;
    int d = -1;
    if (id == VKP_ARGMAX) return "argmax";
    if (id == VKP_TOPK) return "topk";
    if (id >= VKP_ATTN_PREFILL) {
        int v = id - VKP_ATTN_PREFILL;
        snprintf(buf[id], sizeof buf[id], "attn_prefill%d %s", v % 2 ? 128 : 64, dt[1 + v / 2]);
        return buf[id];
    }
    if (id >= VKP_MATMUL_CD) {
        int v = id - VKP_MATMUL_CD;
        snprintf(buf[id], sizeof buf[id], "matmul_cd%d %s", 16 << (v % 3), dt[1 + v / 3]);
        return buf[id];
    }
    if (id == VKP_GELU_MUL) base = "gelu_tanh_mul";
    else if (id == VKP_MOE_MATVEC + 3) base = "moe_matvec_mxfp4";
    else if (id >= VKP_MOE_MATVEC) base = "moe_matvec", d = id - VKP_MOE_MATVEC;
    else if (id == VKP_MOE_TOPK) base = "moe_topk";
    else if (id == VKP_SWIGLU) base = "swiglu_clamp";
    else if (id == VKP_MATMUL_MX) base = "matmul_mxfp4";
    else if (id >= VKP_MATVEC_MX) base = "matvec_mxfp4";
    else if (id == VKP_MOE_COMBINE) base = "moe_combine";
    else if (id == VKP_SCALE) base = "scale";
    else if (id == VKP_SOFTCAP) base = "softcap";
    else if (id < VKP_RMSNORM) base = "get_rows", d = id - VKP_GET_ROWS;
    else if (id == VKP_RMSNORM) base = "rmsnorm";
    else if (id < VKP_MATMUL) base = "matvec", d = (id - VKP_MATVEC) / 4;
    else if (id < VKP_ROPE) base = "matmul", d = id - VKP_MATMUL;
    else if (id == VKP_ROPE) base = "rope";
    else if (id < VKP_ATTENTION) base = "kv_write", d = id - VKP_KV_WRITE;
    else if (id < VKP_SILU_MUL) base = "attention", d = id - VKP_ATTENTION;
    else if (id == VKP_SILU_MUL) base = "silu_mul";
    else if (id == VKP_ADD) base = "add";
    else if (id < VKP_COPY) base = "matvec_sg", d = (id - VKP_MATVEC_SG) / 4;
    else if (id == VKP_COPY) base = "copy";
    else if (id == VKP_ATTN_COMBINE) base = "attn_combine";
    else if (id == VKP_ADD_RMSNORM) base = "add_rmsnorm";
    else if (id >= VKP_LORA_EXPAND) base = "lora_expand", d = id - VKP_LORA_EXPAND;
    else if (id >= VKP_LORA_SHRINK) base = "lora_shrink", d = id - VKP_LORA_SHRINK;
    else if (id == VKP_MATMUL_REDUCE) base = "matmul_reduce";
    else if (id >= VKP_MATMUL_COOP_L) base = "matmul_coop_128", d = id - VKP_MATMUL_COOP_L;
    else if (id >= VKP_MATVEC_SGW) base = "matvec_wide", d = (id - VKP_MATVEC_SGW) / 4;
    else if (id >= VKP_MATMUL_V) base = "matmul_v", d = id - VKP_MATMUL_V;
    else if (id >= VKP_ROPE_KV) base = "rope_kv", d = id - VKP_ROPE_KV;
    else base = "matmul_coop", d = id - VKP_MATMUL_COOP;
    snprintf(buf[id], sizeof buf[id], "%s%s%s", base, d >= 0 ? " " : "", d >= 0 ? dt[d] : "");
    return buf[id];
}

int vk_pipe_ensure(vk_ctx *c, vk_pipe_id id) {
    vk_pipe *p = &c->pipes[id];
    if (p->pipe) return VC_OK;
    pipe_src s = source_of(c, id);
    VkDescriptorSetLayoutBinding b[VK_MAX_BINDINGS];
    for (int i = 0; i < s.n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){(uint32_t)i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                           .bindingCount = (uint32_t)s.n_bindings, .pBindings = b};
    int rc;
    if (!p->dsl && (rc = vk_check(c, c->f.vkCreateDescriptorSetLayout(c->dev, &dci, NULL, &p->dsl), "vkCreateDescriptorSetLayout")))
        return rc;
    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo lci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &p->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pr};
    if (!p->layout && (rc = vk_check(c, c->f.vkCreatePipelineLayout(c->dev, &lci, NULL, &p->layout), "vkCreatePipelineLayout")))
        return rc;
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = s.bytes, .pCode = s.code};
    VkShaderModule mod;
    if ((rc = vk_check(c, c->f.vkCreateShaderModule(c->dev, &mci, NULL, &mod), "vkCreateShaderModule"))) return rc;
    VkSpecializationMapEntry me[5] = {{0, 0, 4}, {1, 4, 4}, {2, 8, 4}, {3, 12, 4}, {4, 16, 4}};
    VkSpecializationInfo si = {5, me, sizeof s.spec, s.spec};
    VkComputePipelineCreateInfo pci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod, .pName = "main", .pSpecializationInfo = &si},
        .layout = p->layout,
    };
    rc = vk_check(c, c->f.vkCreateComputePipelines(c->dev, VK_NULL_HANDLE, 1, &pci, NULL, &p->pipe), "vkCreateComputePipelines");
    c->f.vkDestroyShaderModule(c->dev, mod, NULL);
    p->n_bindings = s.n_bindings;
    return rc;
}

int vk_pipelines_create(vk_ctx *c) {
    for (int i = 0; i < VKP_COUNT; i++) c->pipes[i].n_bindings = source_of(c, (vk_pipe_id)i).n_bindings;
    return VC_OK;
}

void vk_pipelines_free(vk_ctx *c) {
    for (int i = 0; i < VKP_COUNT; i++) {
        vk_pipe *p = &c->pipes[i];
        if (p->pipe) c->f.vkDestroyPipeline(c->dev, p->pipe, NULL);
        if (p->layout) c->f.vkDestroyPipelineLayout(c->dev, p->layout, NULL);
        if (p->dsl) c->f.vkDestroyDescriptorSetLayout(c->dev, p->dsl, NULL);
        *p = (vk_pipe){0};
    }
}
