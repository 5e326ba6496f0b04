/* Vulkan recording: one command buffer per step, narrow barriers, cached descriptor sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "backend/vulkan/vk_internal.h"
#include "base/err.h"

#define SETS_PER_POOL 1024

void vk_fail(vk_ctx *c, int rc) {
    if (!c->error) c->error = rc ? rc : VC_ERR;
}

static double hnow(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int wait_slot(vk_ctx *c, int i) {
    if (!c->busy[i]) return VC_OK;
    c->busy[i] = 0;
    double t0 = c->host_prof ? hnow() : 0;
    int rc = vk_check(c, c->f.vkWaitForFences(c->dev, 1, &c->fences[i], VK_TRUE, UINT64_MAX), "vkWaitForFences");
    if (c->host_prof) c->h_wait += hnow() - t0;
    c->f.vkResetFences(c->dev, 1, &c->fences[i]);
    return rc;
}

static void barrier(vk_ctx *c);

int vk_begin(vk_ctx *c) {
    if (c->recording) return VC_OK;
    if (c->lost) return vc_errf(VC_EIO, "vulkan: %s: device lost", c->props.deviceName);
    int rc = wait_slot(c, c->cur);
    if (rc) return rc;
    c->cb = c->cbs[c->cur];
    c->fence = c->fences[c->cur];
    if ((rc = vk_check(c, c->f.vkResetCommandBuffer(c->cb, 0), "vkResetCommandBuffer"))) return rc;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if ((rc = vk_check(c, c->f.vkBeginCommandBuffer(c->cb, &bi), "vkBeginCommandBuffer"))) return rc;
    c->recording = 1;
    c->n_pend = 0;
    c->n_dispatch = 0;
    /* what earlier pieces of this step wrote is not tracked here: one barrier covers it */
    if (c->continuing) barrier(c);
    c->continuing = 0;
    if (c->qpool) {
        c->n_q = 0;
        c->f.vkCmdResetQueryPool(c->cb, c->qpool, 0, 4096);
        c->f.vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, c->qpool, 0);
        c->q_pipe[c->n_q++] = -1;
    }
    return VC_OK;
}

static int submit_current(vk_ctx *c) {
    c->recording = 0;
    c->n_pend = 0;
    int rc = vk_check(c, c->f.vkEndCommandBuffer(c->cb), "vkEndCommandBuffer");
    if (rc) return rc;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->cb};
    if (c->fault_after && ++c->n_submits >= c->fault_after) return vk_check(c, VK_ERROR_DEVICE_LOST, "vkQueueSubmit (injected)");
    double t0 = c->host_prof ? hnow() : 0;
    if ((rc = vk_check(c, c->f.vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit"))) return rc;
    if (c->host_prof) c->h_submit += hnow() - t0;
    c->busy[c->cur] = 1;
    return VC_OK;
}

/* Send what is recorded so far to the GPU and go on recording the same step
 * into the next command buffer of the ring (#12406 in llama.cpp measured this
 * overlap of recording and execution at +20% on small models). Staging space
 * stays reserved until the whole step has been waited for. */
static void flush_piece(vk_ctx *c) {
    int rc = submit_current(c);
    if (rc) {
        vk_fail(c, rc);
        return;
    }
    c->cur = (c->cur + 1) % VK_NCB;
    c->continuing = 1;
}

/* Time between consecutive timestamps, charged to the dispatch that ended it. */
static void prof_collect(vk_ctx *c) {
    if (!c->qpool || c->n_q < 2) return;
    uint64_t ts[4096];
    if (c->f.vkGetQueryPoolResults(c->dev, c->qpool, 0, (uint32_t)c->n_q, sizeof ts, ts, 8,
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return;
    for (int i = 1; i < c->n_q; i++)
        if (c->q_pipe[i] >= 0) {
            c->prof_ms[c->q_pipe[i]] += (double)(ts[i] - ts[i - 1]) * c->ts_period * 1e-6;
            c->prof_n[c->q_pipe[i]]++;
        }
}

void vk_prof_print(vk_ctx *c) {
    if (c->host_prof) {
        fprintf(stderr, "vulkan host time: %ld dispatches recorded in %.3f ms (%.2f us each), %.3f ms submitting, "
                "%.3f ms waiting for the GPU, %ld syncs\n", c->h_dispatches, 1e3 * c->h_record,
                c->h_dispatches ? 1e6 * c->h_record / (double)c->h_dispatches : 0.0, 1e3 * c->h_submit, 1e3 * c->h_wait,
                c->h_syncs);
        fprintf(stderr, "vulkan host read-backs: %.1f MB copied out of the staging buffer (%s memory) in %.3f ms\n",
                (double)c->h_read_bytes * 1e-6, c->stage_cached ? "host-cached" : "uncached", 1e3 * c->h_read);
    }
    if (!c->qpool) return;
    double total = 0;
    for (int i = 0; i < VKP_COUNT; i++) total += c->prof_ms[i];
    fprintf(stderr, "vulkan profile (GPU time between dispatch ends, by pipeline):\n");
    for (int i = 0; i < VKP_COUNT; i++)
        if (c->prof_n[i])
            fprintf(stderr, "  %-16s %9.3f ms  %5.1f%%  %7ld dispatches  %8.2f us each\n", vk_pipe_name(i), c->prof_ms[i],
                    100.0 * c->prof_ms[i] / total, c->prof_n[i], 1e3 * c->prof_ms[i] / (double)c->prof_n[i]);
}

static void barrier(vk_ctx *c) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                           VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT};
    VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    c->f.vkCmdPipelineBarrier(c->cb, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
    c->n_pend = 0;
}

static int overlaps(const vk_use *a, const vk_use *b) {
    return a->b == b->b && a->off < b->off + b->bytes && b->off < a->off + a->bytes;
}

/* A barrier is needed when a new use overlaps a pending one and either writes
 * (read-after-write, write-after-write, write-after-read). Reads of the same
 * input by back-to-back dispatches (q, k and v projections) need none. */
void vk_hazard(vk_ctx *c, const vk_use *u, int n) {
    int need = 0;
    for (int i = 0; i < n && !need; i++)
        for (int j = 0; j < c->n_pend && !need; j++)
            if ((u[i].write || c->pend[j].write) && overlaps(&u[i], &c->pend[j])) need = 1;
    if (need) barrier(c);
    if (c->n_pend + n > c->cap_pend) {
        int cap = c->cap_pend ? c->cap_pend * 2 : 64;
        while (cap < c->n_pend + n) cap *= 2;
        vk_use *p = realloc(c->pend, sizeof *p * (size_t)cap);
        if (!p) { /* without room to track, stay correct: a full barrier each time */
            barrier(c);
            return;
        }
        c->pend = p;
        c->cap_pend = cap;
    }
    memcpy(c->pend + c->n_pend, u, sizeof *u * (size_t)n);
    c->n_pend += n;
}

void vk_dsets_clear(vk_ctx *c) {
    for (int i = 0; i < c->n_pools; i++) c->f.vkDestroyDescriptorPool(c->dev, c->pools[i], NULL);
    c->n_pools = 0;
    c->pool_left = 0;
    if (c->dsets)
        for (size_t i = 0; i < c->dset_cap; i++) c->dsets[i].pipe = -1;
    c->dset_n = 0;
}

static uint64_t key_hash(int pipe, const unsigned *ids, const VkDeviceSize *offs, int n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)pipe;
    for (int i = 0; i < n; i++) {
        h = (h ^ ids[i]) * 1099511628211ull;
        h = (h ^ (uint64_t)offs[i]) * 1099511628211ull;
    }
    return h;
}

static int grow_dsets(vk_ctx *c) {
    size_t cap = c->dset_cap ? c->dset_cap * 2 : 1024;
    vk_dset *d = malloc(sizeof *d * cap);
    if (!d) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i < cap; i++) d[i].pipe = -1;
    for (size_t i = 0; i < c->dset_cap; i++) {
        vk_dset *e = &c->dsets[i];
        if (e->pipe < 0) continue;
        size_t h = (size_t)key_hash(e->pipe, e->ids, e->offs, c->pipes[e->pipe].n_bindings) & (cap - 1);
        while (d[h].pipe >= 0) h = (h + 1) & (cap - 1);
        d[h] = *e;
    }
    free(c->dsets);
    c->dsets = d;
    c->dset_cap = cap;
    return VC_OK;
}

static int new_set(vk_ctx *c, vk_pipe_id p, VkDescriptorSet *out) {
    if (c->pool_left == 0) {
        VkDescriptorPool *np = realloc(c->pools, sizeof *np * (size_t)(c->n_pools + 1));
        if (!np) return vc_errf(VC_ENOMEM, "out of memory");
        c->pools = np;
        VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * VK_MAX_BINDINGS};
        VkDescriptorPoolCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                         .maxSets = SETS_PER_POOL, .poolSizeCount = 1, .pPoolSizes = &ps};
        int rc = vk_check(c, c->f.vkCreateDescriptorPool(c->dev, &ci, NULL, &c->pools[c->n_pools]), "vkCreateDescriptorPool");
        if (rc) return rc;
        c->n_pools++;
        c->pool_left = SETS_PER_POOL;
    }
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = c->pools[c->n_pools - 1], .descriptorSetCount = 1,
                                      .pSetLayouts = &c->pipes[p].dsl};
    c->pool_left--;
    return vk_check(c, c->f.vkAllocateDescriptorSets(c->dev, &ai, out), "vkAllocateDescriptorSets");
}

static size_t vk_size(const be_buffer *b) { return b->size ? (b->size + 15) & ~(size_t)15 : 16; }

/* The cached set for these bindings, made on first use. Each binding starts
 * at the operand's offset rounded down to the device's alignment and reaches
 * as far as the buffer and maxStorageBufferRange allow, so the same set serves
 * every batch size. */
static int get_set(vk_ctx *c, vk_pipe_id p, const vk_use *u, int n, VkDescriptorSet *out) {
    unsigned ids[VK_MAX_BINDINGS];
    VkDeviceSize offs[VK_MAX_BINDINGS];
    for (int i = 0; i < n; i++) {
        ids[i] = u[i].b->id;
        offs[i] = u[i].off - u[i].off % c->align;
    }
    if (2 * (c->dset_n + 1) > c->dset_cap) {
        int rc = grow_dsets(c);
        if (rc) return rc;
    }
    size_t h = (size_t)key_hash(p, ids, offs, n) & (c->dset_cap - 1);
    for (; c->dsets[h].pipe >= 0; h = (h + 1) & (c->dset_cap - 1)) {
        vk_dset *e = &c->dsets[h];
        if (e->pipe == (int)p && !memcmp(e->ids, ids, sizeof *ids * (size_t)n) && !memcmp(e->offs, offs, sizeof *offs * (size_t)n)) {
            *out = e->set;
            return VC_OK;
        }
    }
    VkDescriptorSet set;
    int rc = new_set(c, p, &set);
    if (rc) return rc;
    VkDescriptorBufferInfo bi[VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[VK_MAX_BINDINGS];
    for (int i = 0; i < n; i++) {
        VkDeviceSize room = vk_size(u[i].b) - offs[i];
        bi[i] = (VkDescriptorBufferInfo){u[i].b->buf, offs[i], room < c->max_range ? room : c->max_range};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = (uint32_t)i,
                                      .descriptorCount = 1, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &bi[i]};
    }
    c->f.vkUpdateDescriptorSets(c->dev, (uint32_t)n, w, 0, NULL);
    vk_dset *e = &c->dsets[h];
    e->pipe = (int)p;
    memcpy(e->ids, ids, sizeof *ids * (size_t)n);
    memcpy(e->offs, offs, sizeof *offs * (size_t)n);
    e->set = set;
    c->dset_n++;
    *out = set;
    return VC_OK;
}

static void dispatch(vk_ctx *c, vk_pipe_id p, const vk_use *uses, int n_uses, const void *push, size_t push_bytes,
                     uint32_t gx, uint32_t gy, uint32_t gz);

void vk_dispatch(vk_ctx *c, vk_pipe_id p, const vk_use *uses, int n_uses, const void *push, size_t push_bytes,
                 uint32_t gx, uint32_t gy, uint32_t gz) {
    if (!c->host_prof) {
        dispatch(c, p, uses, n_uses, push, push_bytes, gx, gy, gz);
        return;
    }
    double t0 = hnow(), w0 = c->h_wait, s0 = c->h_submit;
    dispatch(c, p, uses, n_uses, push, push_bytes, gx, gy, gz);
    /* waits for a free command buffer and piece submissions are counted apart */
    c->h_record += hnow() - t0 - (c->h_wait - w0) - (c->h_submit - s0);
    c->h_dispatches++;
}

static void dispatch(vk_ctx *c, vk_pipe_id p, const vk_use *uses, int n_uses, const void *push, size_t push_bytes,
                     uint32_t gx, uint32_t gy, uint32_t gz) {
    if (c->error || gx == 0 || gy == 0 || gz == 0) return;
    int rc;
    if (n_uses != c->pipes[p].n_bindings || push_bytes > VK_PUSH_BYTES) {
        vk_fail(c, vc_errf(VC_ERR, "vulkan: pipeline %d takes %d bindings, got %d", (int)p, c->pipes[p].n_bindings, n_uses));
        return;
    }
    const uint32_t *lim = c->props.limits.maxComputeWorkGroupCount;
    if (gx > lim[0] || gy > lim[1] || gz > lim[2]) {
        vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: %s: a dispatch of %u x %u x %u workgroups exceeds the device's limit",
                           c->props.deviceName, gx, gy, gz));
        return;
    }
    for (int i = 0; i < n_uses; i++) {
        uint64_t start = uses[i].off % c->align;
        if (start + uses[i].bytes > c->max_range) {
            vk_fail(c, vc_errf(VC_EUNSUP, "vulkan: %s: a tensor of %zu bytes exceeds maxStorageBufferRange (%llu)", c->props.deviceName,
                               uses[i].bytes, (unsigned long long)c->max_range));
            return;
        }
    }
    VkDescriptorSet set;
    if ((rc = vk_pipe_ensure(c, p)) || (rc = vk_begin(c)) || (rc = get_set(c, p, uses, n_uses, &set))) {
        vk_fail(c, rc);
        return;
    }
    vk_hazard(c, uses, n_uses);
    c->f.vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipes[p].pipe);
    c->f.vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipes[p].layout, 0, 1, &set, 0, NULL);
    if (push_bytes) c->f.vkCmdPushConstants(c->cb, c->pipes[p].layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)push_bytes, push);
    c->f.vkCmdDispatch(c->cb, gx, gy, gz);
    c->n_dispatch++;
    if (c->qpool && c->n_q < 4096) {
        c->f.vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, c->qpool, (uint32_t)c->n_q);
        c->q_pipe[c->n_q++] = (int)p;
    } else if (!c->qpool && c->n_dispatch >= c->flush_every) {
        flush_piece(c);
    }
}

int vk_submit_wait(vk_ctx *c) {
    int rc = c->recording ? submit_current(c) : VC_OK, r2;
    for (int i = 1; i <= VK_NCB; i++)
        if ((r2 = wait_slot(c, (c->cur + i) % VK_NCB)) && !rc) rc = r2;
    c->cur = (c->cur + 1) % VK_NCB;
    c->continuing = 0;
    c->stage_used = 0;
    if (!rc) prof_collect(c);
    return rc;
}

int vk_sync(void *ctx) {
    vk_ctx *c = ctx;
    c->h_syncs++;
    int rc = vk_submit_wait(c);
    if (rc) vk_fail(c, rc);
    rc = c->error;
    c->error = VC_OK;
    if (c->lost && !rc) rc = vc_errf(VC_EIO, "vulkan: %s: device lost", c->props.deviceName);
    return rc;
}
