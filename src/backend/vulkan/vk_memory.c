/* Vulkan buffers. Every buffer is a storage buffer in device-local memory;
 * where the device shares host memory (integrated GPUs, Apple, lavapipe) that
 * memory is also host-visible and stays mapped, so writes and reads are plain
 * copies. Elsewhere writes and reads go through one host-visible staging
 * buffer, and small writes recorded between ops (a step's batch metadata)
 * travel inside the command buffer (vkCmdUpdateBuffer), keeping one
 * submission per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/vulkan/vk_internal.h"
#include "base/err.h"

#define STAGE_BYTES ((size_t)64 << 20)

/* "512 B", "6.0 KiB", "57.2 MiB", "1.50 GiB" */
static const char *human(char *buf, size_t n, uint64_t b) {
    if (b < 1024) snprintf(buf, n, "%llu B", (unsigned long long)b);
    else if (b < 1048576) snprintf(buf, n, "%.1f KiB", (double)b / 1024.0);
    else if (b < 1073741824) snprintf(buf, n, "%.1f MiB", (double)b / 1048576.0);
    else snprintf(buf, n, "%.2f GiB", (double)b / 1073741824.0);
    return buf;
}

static int find_type(vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags avoid) {
    for (uint32_t i = 0; i < c->memprops.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = c->memprops.memoryTypes[i].propertyFlags;
        if ((bits & (1u << i)) && (f & want) == want && !(f & avoid)) return (int)i;
    }
    return -1;
}

/* host: a staging buffer (host-visible, cached where possible); else a device buffer. */
int vk_buffer_alloc_kind(vk_ctx *c, size_t bytes, int host, be_buffer **out) {
    *out = NULL;
    if (c->lost) return vc_errf(VC_EIO, "vulkan: %s: device lost", c->props.deviceName);
    size_t size = (bytes + 15) & ~(size_t)15;
    if (size < bytes || (uint64_t)size > c->max_alloc)
        return vc_errf(VC_ENOMEM, "vulkan: %s: a buffer of %.2f GiB exceeds the device's largest allocation (%.2f GiB)",
                       c->props.deviceName, (double)bytes / 1073741824.0, (double)c->max_alloc / 1073741824.0);
    if (size == 0) size = 16;
    be_buffer *b = calloc(1, sizeof *b);
    if (!b) return vc_errf(VC_ENOMEM, "out of memory");
    b->size = bytes;
    b->id = ++c->next_id;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    int rc = vk_check(c, c->f.vkCreateBuffer(c->dev, &bi, NULL, &b->buf), "vkCreateBuffer");
    if (rc) goto err;
    VkMemoryRequirements req;
    c->f.vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT,
                                HC = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, CA = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    int t = -1;
    if (host) {
        if ((t = find_type(c, req.memoryTypeBits, HV | HC | CA, 0)) < 0) t = find_type(c, req.memoryTypeBits, HV | HC, 0);
        if (t < 0) t = find_type(c, req.memoryTypeBits, HV, 0);
    } else if (c->unified) {
        if ((t = find_type(c, req.memoryTypeBits, DL | HV | HC, 0)) < 0) t = find_type(c, req.memoryTypeBits, DL | HV, 0);
        if (t < 0) t = find_type(c, req.memoryTypeBits, DL, 0);
    } else {
        /* keep the small host-visible window of a discrete card (BAR) for others */
        if ((t = find_type(c, req.memoryTypeBits, DL, HV)) < 0) t = find_type(c, req.memoryTypeBits, DL, 0);
    }
    if (t < 0) t = find_type(c, req.memoryTypeBits, 0, 0);
    if (t < 0) {
        rc = vc_errf(VC_EUNSUP, "vulkan: %s: no memory type for a storage buffer", c->props.deviceName);
        goto err;
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)t};
    VkResult r = c->mem_limit && c->mem_used + req.size > c->mem_limit ? VK_ERROR_OUT_OF_DEVICE_MEMORY
                                                                         : c->f.vkAllocateMemory(c->dev, &ai, NULL, &b->mem);
    if (r != VK_SUCCESS) {
        be_info info;
        vk_info(c, &info);
        rc = vk_check(c, r, "vkAllocateMemory");
        if (c->mem_limit) info.mem_total = c->mem_limit, info.mem_free = c->mem_limit - c->mem_used;
        char h1[32], h2[32], h3[32];
        vc_errf(rc, "vulkan: %s: cannot allocate %s of %s memory (%s of %s free)", c->props.deviceName,
                human(h1, sizeof h1, bytes), host ? "host-visible" : "device", human(h2, sizeof h2, info.mem_free),
                human(h3, sizeof h3, info.mem_total));
        goto err;
    }
    b->charged = req.size;
    c->mem_used += req.size;
    if ((rc = vk_check(c, c->f.vkBindBufferMemory(c->dev, b->buf, b->mem, 0), "vkBindBufferMemory"))) goto err;
    VkMemoryPropertyFlags f = c->memprops.memoryTypes[t].propertyFlags;
    if ((f & HV) && (host || !c->force_staging)) {
        if ((rc = vk_check(c, c->f.vkMapMemory(c->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map), "vkMapMemory"))) goto err;
        b->coherent = (f & HC) != 0;
        b->cached = (f & CA) != 0;
    }
    *out = b;
    return VC_OK;
err:
    c->mem_used -= b->charged;
    if (b->buf) c->f.vkDestroyBuffer(c->dev, b->buf, NULL);
    if (b->mem) c->f.vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
    return rc;
}

int vk_buffer_alloc(void *ctx, size_t bytes, be_buffer **out) { return vk_buffer_alloc_kind(ctx, bytes, 0, out); }

/* A memory type for an imported host range: both the buffer and the pointer allow it, device-local and
 * host-visible preferred (unified devices have such types). */
static int import_type(vk_ctx *c, uint32_t bits) {
    const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    int t = find_type(c, bits, DL | HV, 0);
    if (t < 0) t = find_type(c, bits, HV, 0);
    return t < 0 ? find_type(c, bits, 0, 0) : t;
}

/* The mmapped weight file itself as a buffer (unified devices): no copy at load, no second copy of the
 * weights in memory. The range is imported whole pages at a time (the mapping covers them); whatever the
 * driver declines is VC_EUNSUP, and the model then copies the file's tensors as before. Read-only: the
 * mapping is. Not charged against VLLMC_VULKAN_MEMORY_LIMIT (the pages are the page cache's). */
int vk_buffer_wrap_host(void *ctx, const void *host, size_t bytes, be_buffer **out) {
    vk_ctx *c = ctx;
    *out = NULL;
    if (c->lost) return vc_errf(VC_EIO, "vulkan: %s: device lost", c->props.deviceName);
    uint64_t a = c->import_align;
    size_t size = (size_t)((bytes + a - 1) / a * a);
    if (!a || (uintptr_t)host % a || bytes == 0 || size < bytes || (uint64_t)size > c->max_alloc)
        return vc_errf(VC_EUNSUP, "vulkan: %s cannot import %zu bytes of host memory here", c->props.deviceName, bytes);
    const VkExternalMemoryHandleTypeFlagBits ht = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkMemoryHostPointerPropertiesEXT hp = {.sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    if (c->f.vkGetMemoryHostPointerPropertiesEXT(c->dev, ht, host, &hp) != VK_SUCCESS || !hp.memoryTypeBits)
        return vc_errf(VC_EUNSUP, "vulkan: %s declines to import this host memory", c->props.deviceName);
    be_buffer *b = calloc(1, sizeof *b);
    if (!b) return vc_errf(VC_ENOMEM, "out of memory");
    b->size = bytes, b->id = ++c->next_id, b->imported = 1;
    VkExternalMemoryBufferCreateInfo eb = {.sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO, .handleTypes = ht};
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .pNext = &eb, .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkMemoryRequirements req = {0};
    int t = -1;
    if (c->f.vkCreateBuffer(c->dev, &bi, NULL, &b->buf) == VK_SUCCESS) {
        c->f.vkGetBufferMemoryRequirements(c->dev, b->buf, &req);
        if (req.size <= size) t = import_type(c, req.memoryTypeBits & hp.memoryTypeBits);
    }
    VkImportMemoryHostPointerInfoEXT imp = {.sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
                                            .handleType = ht, .pHostPointer = (void *)host};
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &imp, .allocationSize = size,
                               .memoryTypeIndex = (uint32_t)t};
    if (t < 0 || c->f.vkAllocateMemory(c->dev, &ai, NULL, &b->mem) != VK_SUCCESS ||
        c->f.vkBindBufferMemory(c->dev, b->buf, b->mem, 0) != VK_SUCCESS) {
        if (b->mem) c->f.vkFreeMemory(c->dev, b->mem, NULL);
        if (b->buf) c->f.vkDestroyBuffer(c->dev, b->buf, NULL);
        free(b);
        return vc_errf(VC_EUNSUP, "vulkan: %s could not import %zu bytes of host memory", c->props.deviceName, bytes);
    }
    /* reads (never needed for weights, but the contract allows them) come straight from the mapping */
    b->map = (void *)host;
    b->coherent = 1;
    *out = b;
    return VC_OK;
}

void vk_buffer_free(void *ctx, be_buffer *b) {
    vk_ctx *c = ctx;
    if (!b) return;
    /* a recorded op may still use it: run what is recorded first */
    if (c->recording || c->continuing) vk_submit_wait(c);
    c->f.vkDeviceWaitIdle(c->dev);
    vk_dsets_clear(c);
    if (b->map && !b->imported) c->f.vkUnmapMemory(c->dev, b->mem);
    c->mem_used -= b->charged;
    c->f.vkDestroyBuffer(c->dev, b->buf, NULL);
    c->f.vkFreeMemory(c->dev, b->mem, NULL);
    free(b);
}

static int check_range(vk_ctx *c, be_buffer *b, size_t off, size_t bytes, const char *what) {
    if (c->lost) return vc_errf(VC_EIO, "vulkan: %s: device lost", c->props.deviceName);
    if (off > b->size || bytes > b->size - off)
        return vc_errf(VC_EINVAL, "vulkan: %s of %zu bytes at %zu outside buffer of %zu", what, bytes, off, b->size);
    return VC_OK;
}

static int ensure_stage(vk_ctx *c) {
    if (c->stage) return VC_OK;
    c->stage_size = STAGE_BYTES;
    int rc = vk_buffer_alloc_kind(c, c->stage_size, 1, &c->stage);
    if (!rc) c->stage_cached = c->stage->cached;
    return rc;
}

static void mapped_sync(vk_ctx *c, be_buffer *b, int flush) {
    if (b->coherent) return;
    VkMappedMemoryRange r = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->mem, .size = VK_WHOLE_SIZE};
    if (flush) c->f.vkFlushMappedMemoryRanges(c->dev, 1, &r);
    else c->f.vkInvalidateMappedMemoryRanges(c->dev, 1, &r);
}

static int copy_cmd(vk_ctx *c, be_buffer *src, size_t soff, be_buffer *dst, size_t doff, size_t n) {
    int rc = vk_begin(c);
    if (rc) return rc;
    vk_use u[2] = {{src, soff, n, 0}, {dst, doff, n, 1}};
    vk_hazard(c, u, 2);
    VkBufferCopy region = {soff, doff, n};
    c->f.vkCmdCopyBuffer(c->cb, src->buf, dst->buf, 1, &region);
    return VC_OK;
}

/* Room for n bytes in the staging buffer, flushing what is recorded when it is full. */
static int stage_take(vk_ctx *c, size_t n, size_t *at) {
    int rc = ensure_stage(c);
    if (rc) return rc;
    if (c->stage_used + n > c->stage_size && (rc = vk_submit_wait(c))) return rc;
    *at = c->stage_used;
    c->stage_used += (n + 15) & ~(size_t)15;
    return VC_OK;
}

int vk_buffer_write(void *ctx, be_buffer *b, size_t off, const void *src, size_t bytes) {
    vk_ctx *c = ctx;
    int rc = check_range(c, b, off, bytes, "write");
    if (rc || bytes == 0) return rc;
    if (b->imported) return vc_errf(VC_EINVAL, "vulkan: a write into an imported (read-only) weight file");
    int pending = c->recording || c->continuing; /* ops of this step recorded or in flight */
    if (pending && bytes <= 65536 && off % 4 == 0 && bytes % 4 == 0) {
        if ((rc = vk_begin(c))) return rc;
        vk_use u = {b, off, bytes, 1};
        vk_hazard(c, &u, 1);
        c->f.vkCmdUpdateBuffer(c->cb, b->buf, off, bytes, src);
        return VC_OK;
    }
    if (b->map) {
        if (pending && (rc = vk_submit_wait(c))) return rc;
        memcpy((char *)b->map + off, src, bytes);
        mapped_sync(c, b, 1);
        return VC_OK;
    }
    /* Device-local: through the staging buffer, as copies recorded in order with
     * the ops; a model's weights go up 64 MiB per submission. */
    if ((rc = ensure_stage(c))) return rc;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < c->stage_size ? bytes - done : c->stage_size, at;
        if ((rc = stage_take(c, n, &at))) return rc;
        memcpy((char *)c->stage->map + at, (const char *)src + done, n);
        mapped_sync(c, c->stage, 1);
        if ((rc = copy_cmd(c, c->stage, at, b, off + done, n))) return rc;
        done += n;
    }
    return VC_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int vk_buffer_read(void *ctx, be_buffer *b, size_t off, void *dst, size_t bytes) {
    vk_ctx *c = ctx;
    int rc = check_range(c, b, off, bytes, "read");
    if (rc) return rc;
    if (c->error) return vc_errf(c->error, "vulkan: reading the results of a step that failed");
    if (b->map) {
        if ((c->recording || c->continuing) && (rc = vk_submit_wait(c))) return rc;
        mapped_sync(c, b, 0);
        memcpy(dst, (const char *)b->map + off, bytes);
        return c->error;
    }
    if ((rc = ensure_stage(c))) return rc;
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < c->stage_size ? bytes - done : c->stage_size, at;
        /* recorded with whatever ops are pending: one submission for the step and its read-back */
        if ((rc = stage_take(c, n, &at)) || (rc = copy_cmd(c, b, off + done, c->stage, at, n)) ||
            (rc = vk_submit_wait(c)))
            return rc;
        if (c->error) return c->error;
        mapped_sync(c, c->stage, 0);
        double t0 = c->host_prof ? now_s() : 0;
        memcpy((char *)dst + done, (const char *)c->stage->map + at, n);
        if (c->host_prof) c->h_read += now_s() - t0, c->h_read_bytes += n;
        done += n;
    }
    return VC_OK;
}

/* Device memory bandwidth as shaders see it: a copy shader with 16-byte loads
 * and stores, counting the bytes read and written (as a STREAM copy does);
 * best of 3 runs of 4 copies of `bytes`. 0 on failure. */
double vk_bandwidth(void *ctx, size_t bytes) {
    vk_ctx *c = ctx;
    be_buffer *a = NULL, *b = NULL;
    double best = 0;
    if (bytes > c->max_alloc) bytes = (size_t)c->max_alloc;
    if (bytes > c->max_range) bytes = (size_t)c->max_range;
    bytes &= ~(size_t)15;
    if (vk_sync(c) || vk_buffer_alloc(c, bytes, &a) || vk_buffer_alloc(c, bytes, &b)) goto done;
    uint32_t n = (uint32_t)(bytes / 16), groups = n / 256 < 4096 ? (n + 255) / 256 : 4096;
    for (int rep = 0; rep < 4; rep++) {
        if (vk_begin(c)) goto done;
        double t0 = now_s();
        for (int i = 0; i < 4; i++) {
            vk_use u[2] = {{i % 2 ? b : a, 0, bytes, 0}, {i % 2 ? a : b, 0, bytes, 1}};
            vk_dispatch(c, VKP_COPY, u, 2, &n, sizeof n, groups, 1, 1);
        }
        if (vk_sync(c)) goto done;
        double gbs = 4.0 * 2.0 * (double)bytes / (now_s() - t0) * 1e-9;
        if (rep > 0 && gbs > best) best = gbs; /* the first run warms up */
    }
done:
    vk_buffer_free(c, a);
    vk_buffer_free(c, b);
    return best;
}
