/* Vulkan: the loader (opened at run time), instance, device choice and the be_backend table. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/vulkan/vk_internal.h"
#include "base/err.h"

int vk_check(vk_ctx *c, VkResult r, const char *what) {
    if (r == VK_SUCCESS) return VC_OK;
    if (r == VK_ERROR_DEVICE_LOST) {
        c->lost = 1;
        return vc_errf(VC_EIO, "vulkan: %s: device lost (%s)", c->props.deviceName, what);
    }
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
        return vc_errf(VC_ENOMEM, "vulkan: %s: out of %s memory (%s)", c->props.deviceName,
                       r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "device" : "host", what);
    return vc_errf(VC_EIO, "vulkan: %s: %s failed (VkResult %d)", c->props.deviceName, what, (int)r);
}

static int load_loader(vk_ctx *c) {
    const char *names[] = {
#ifdef __APPLE__
        /* Homebrew's loader is not on dyld's default path on Apple Silicon */
        "libvulkan.1.dylib", "/opt/homebrew/lib/libvulkan.1.dylib", "/usr/local/lib/libvulkan.1.dylib",
        "libvulkan.dylib", "libMoltenVK.dylib", "/opt/homebrew/lib/libMoltenVK.dylib",
#else
        "libvulkan.so.1", "libvulkan.so",
#endif
    };
    for (size_t i = 0; i < sizeof names / sizeof *names && !c->lib; i++) c->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!c->lib) return vc_errf(VC_EUNSUP, "no Vulkan loader (%s not found)", names[0]);
    void *sym = dlsym(c->lib, "vkGetInstanceProcAddr");
    if (!sym) return vc_errf(VC_EUNSUP, "the Vulkan loader has no vkGetInstanceProcAddr");
    memcpy(&c->f.vkGetInstanceProcAddr, &sym, sizeof sym);
#define LOAD_GLOBAL(name)                                                                    \
    if (!(c->f.name = (PFN_##name)c->f.vkGetInstanceProcAddr(NULL, #name)))                \
        return vc_errf(VC_EUNSUP, "the Vulkan loader lacks %s", #name);
    VK_GLOBAL_FNS(LOAD_GLOBAL)
#undef LOAD_GLOBAL
    return VC_OK;
}

static int has_ext(const VkExtensionProperties *e, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(e[i].extensionName, name)) return 1;
    return 0;
}

static int create_instance(vk_ctx *c) {
    uint32_t n = 0;
    c->f.vkEnumerateInstanceExtensionProperties(NULL, &n, NULL);
    VkExtensionProperties *ext = calloc(n ? n : 1, sizeof *ext);
    if (!ext) return vc_errf(VC_ENOMEM, "out of memory");
    c->f.vkEnumerateInstanceExtensionProperties(NULL, &n, ext);
    const char *want[2];
    uint32_t nw = 0;
    VkInstanceCreateFlags flags = 0;
    /* MoltenVK is a portability implementation: the loader lists it only when asked to */
    if (has_ext(ext, n, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        want[nw++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    free(ext);
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "vllmc",
                             .pEngineName = "vllmc", .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .flags = flags,
                               .pApplicationInfo = &app, .enabledExtensionCount = nw, .ppEnabledExtensionNames = want};
    VkResult r = c->f.vkCreateInstance(&ci, NULL, &c->inst);
    if (r != VK_SUCCESS) return vc_errf(VC_EUNSUP, "vkCreateInstance failed (VkResult %d): no Vulkan driver?", (int)r);
#define LOAD_INST(name)                                                                    \
    if (!(c->f.name = (PFN_##name)c->f.vkGetInstanceProcAddr(c->inst, #name)))           \
        return vc_errf(VC_EUNSUP, "the Vulkan instance lacks %s", #name);
    VK_INSTANCE_FNS(LOAD_INST)
#undef LOAD_INST
    c->f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
        c->f.vkGetInstanceProcAddr(c->inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    return VC_OK;
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU implementation";
    default: return "other";
    }
}

/* Lower is preferred; -1: not usable for this pick. */
static int rank(const VkPhysicalDeviceProperties *p, vk_pick pick) {
    if (p->apiVersion < VK_API_VERSION_1_1) return -1;
    int cpu = p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU || strstr(p->deviceName, "llvmpipe") ||
              strstr(p->deviceName, "SwiftShader");
    const char *allow = getenv("VLLMC_VULKAN_ALLOW_CPU");
    if (cpu) return pick == VK_PICK_ANY || (allow && !strcmp(allow, "1")) ? 4 : -1;
    switch (p->deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    default: return 3;
    }
}

static int pick_device(vk_ctx *c, vk_pick pick) {
    uint32_t n = 0;
    VkResult r = c->f.vkEnumeratePhysicalDevices(c->inst, &n, NULL);
    if (r != VK_SUCCESS || n == 0) return vc_errf(VC_EUNSUP, "no Vulkan device");
    VkPhysicalDevice *d = calloc(n, sizeof *d);
    if (!d) return vc_errf(VC_ENOMEM, "out of memory");
    c->f.vkEnumeratePhysicalDevices(c->inst, &n, d);
    const char *env = getenv("VLLMC_VULKAN_DEVICE");
    int best = -1, best_rank = 1 << 30;
    char seen[512] = "";
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        c->f.vkGetPhysicalDeviceProperties(d[i], &p);
        size_t sl = strlen(seen);
        snprintf(seen + sl, sizeof seen - sl, "%s%u: %s (%s)", i ? ", " : "", i, p.deviceName, type_name(p.deviceType));
        int rk = rank(&p, pick);
        if (env && *env && pick == VK_PICK_ANY) {
            if ((uint32_t)atoi(env) == i) best = rk >= 0 ? (int)i : -2;
            continue;
        }
        if (rk >= 0 && rk < best_rank) best = (int)i, best_rank = rk;
    }
    if (best >= 0) c->pdev = d[best];
    free(d);
    if (env && *env && pick == VK_PICK_ANY && best == -1)
        return vc_errf(VC_EINVAL, "VLLMC_VULKAN_DEVICE=%s: no such device (devices: %s)", env, seen);
    if (best < 0)
        return vc_errf(VC_EUNSUP, "no usable Vulkan GPU (devices: %s%s)", seen,
                       pick == VK_PICK_REAL_GPU ? "; CPU implementations are used only with --device gpu" : "");
    return VC_OK;
}

/* The one cooperative-matrix shape matmul_coop.comp uses: 16x16x16, f16 A/B, f32 C/D, subgroup scope. */
static int coop_shape_ok(vk_ctx *c) {
    if (!c->f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) return 0;
    uint32_t n = 0;
    if (c->f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(c->pdev, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkCooperativeMatrixPropertiesNV *p = calloc(n, sizeof *p);
    if (!p) return 0;
    for (uint32_t i = 0; i < n; i++) p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    int ok = 0;
    if (c->f.vkGetPhysicalDeviceCooperativeMatrixPropertiesNV(c->pdev, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !ok; i++)
            ok = p[i].MSize == 16 && p[i].NSize == 16 && p[i].KSize == 16 && p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
                 p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
                 p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].scope == VK_SCOPE_SUBGROUP_NV;
    free(p);
    return ok;
}

static int create_device(vk_ctx *c) {
    c->f.vkGetPhysicalDeviceProperties(c->pdev, &c->props);
    c->f.vkGetPhysicalDeviceMemoryProperties(c->pdev, &c->memprops);
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT hostp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    sg.pNext = &hostp; /* filled where the extension exists, else left 0 */
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES, .pNext = &sg};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    c->f.vkGetPhysicalDeviceProperties2(c->pdev, &p2);
    c->subgroup_size = (int)sg.subgroupSize;
    c->subgroup_shuffle = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
    c->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                        (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && sg.subgroupSize >= 4;
    /* Reductions use subgroupAdd/subgroupMax: every target (NVIDIA, AMD, Intel, Apple through
     * MoltenVK, lavapipe) has subgroup arithmetic in compute shaders; a device without it is refused
     * (--device auto then uses the CPU). */
    if (!c->subgroup_arith)
        return vc_errf(VC_EUNSUP, "vulkan: %s lacks subgroup arithmetic in compute shaders", c->props.deviceName);
    c->max_range = c->props.limits.maxStorageBufferRange;
    c->align = c->props.limits.minStorageBufferOffsetAlignment;
    if (c->align < 4) c->align = 4;
    c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : (1ull << 30);
    c->unified = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                 c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    const char *lim = getenv("VLLMC_VULKAN_MEMORY_LIMIT"), *fa = getenv("VLLMC_VULKAN_FAULT_AFTER_SUBMITS");
    c->mem_limit = lim ? strtoull(lim, NULL, 10) : 0;
    c->fault_after = fa ? atol(fa) : 0;
    const char *wr = getenv("VLLMC_VULKAN_MATVEC_WIDE_ROWS");
    c->matvec_wide_rows = wr ? atoll(wr) : 4096;
    const char *mp = getenv("VLLMC_VULKAN_MATVEC_PASSES_UPTO");
    c->matvec_passes_upto = mp ? atoll(mp) : 0;
    const char *sr = getenv("VLLMC_VULKAN_SPLIT_RANGE");
    c->split_range = sr ? strtoull(sr, NULL, 10) : 0;
    const char *as = getenv("VLLMC_VULKAN_ATTN_SPLIT");
    c->attn_split = as ? atoi(as) : 0;
    const char *sg2 = getenv("VLLMC_VULKAN_STACKED_GEMM");
    c->stacked_gemm = sg2 && !strcmp(sg2, "1"); /* opt-in until measured on a GPU with cooperative matrices */
    const char *ks = getenv("VLLMC_VULKAN_ATTN_KSTAGE"); /* opt-in: measured slower on the H100 (session 14) */
    c->attn_kstage = ks && !strcmp(ks, "1");
    /* attention.comp in groups of 128 (opt-in until measured): shared memory 20 KiB (q; the staging that holds
     * the probabilities, then the merge) and 1.6 KiB a group (its slots and reductions): 26,880 bytes at 4 */
    const char *ag = getenv("VLLMC_VULKAN_ATTN_GROUPS");
    c->attn_groups = ag && (atoi(ag) == 2 || atoi(ag) == 4) ? atoi(ag) : 1;
    while (c->attn_groups > 1 && (c->props.limits.maxComputeSharedMemorySize < 20480u + 1600u * (uint32_t)c->attn_groups ||
                                  c->props.limits.maxComputeWorkGroupInvocations < 128u * (uint32_t)c->attn_groups ||
                                  c->props.limits.maxComputeWorkGroupSize[0] < 128u * (uint32_t)c->attn_groups))
        c->attn_groups /= 2;
    const char *ab = getenv("VLLMC_VULKAN_ATTN_BLOCK_MIN");
    c->attn_block_min = ab && *ab ? atoi(ab) : 2;
    const char *nf = getenv("VLLMC_VULKAN_NO_FUSE");
    c->no_fuse = nf && !strcmp(nf, "1");
    const char *nfo = getenv("VLLMC_VULKAN_NO_FOLD");
    c->no_fold = nfo && !strcmp(nfo, "1");
    const char *sk = getenv("VLLMC_VULKAN_COOP_SPLITK");
    c->coop_splitk = !(sk && !strcmp(sk, "0"));
    const char *ct = getenv("VLLMC_VULKAN_COOP_TOKENS"), *cs = getenv("VLLMC_VULKAN_COOP_SPLIT");
    const char *bk = getenv("VLLMC_VULKAN_COOP_BK");
    /* matmul_coop.comp's shared memory with 128-token tiles: split activations 2 x 10 KiB, weights 10 KiB,
     * staging 8 KiB (38,912 bytes); f16 activations in K steps of 64: 18 + 18 + 8 KiB and the unused lo
     * tile's 16 bytes (45,072), of 32: 10 + 10 + 8 KiB + 16 (28,688) */
    uint32_t smem = c->props.limits.maxComputeSharedMemorySize;
    /* the prompts' tiles alone (A/B runs): split unless VLLMC_VULKAN_COOP_L_SPLIT=0, until the f16 form is
     * measured on a GPU with cooperative matrices (session 13 had none) */
    const char *ls = getenv("VLLMC_VULKAN_COOP_L_SPLIT");
    c->coop_l_split = (cs && !strcmp(cs, "1")) || !(ls && !strcmp(ls, "0"));
    c->coop_bk64 = !c->coop_l_split && !(bk && atoi(bk) == 32) && smem >= 45072;
    c->coop_tokens = (ct && atoi(ct) == 64) || smem < (c->coop_l_split ? 38912u : c->coop_bk64 ? 45072u : 28688u) ? 64 : 128;
    const char *cd = getenv("VLLMC_VULKAN_COOP_DIRECT");
    /* 64 by default: longer prompts keep matmul_coop.comp's 128-token tiles (measured faster for them) */
    c->coop_direct_max_n = cd && *cd ? atoll(cd) : 64;
    /* matmul_cd.comp's shared memory: 18 KiB of f16 activations (twice that split), 4 KiB of staging */
    c->coop_split = cs && !strcmp(cs, "1") && c->props.limits.maxComputeSharedMemorySize >= 41984;
    const char *fe = getenv("VLLMC_VULKAN_FLUSH_EVERY");
    c->flush_every = fe && atoi(fe) > 0 ? atoi(fe) : VK_FLUSH_DISPATCHES;
    const char *st = getenv("VLLMC_VULKAN_STAGING");
    c->force_staging = st && !strcmp(st, "1");

    uint32_t nq = 0;
    c->f.vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, NULL);
    VkQueueFamilyProperties qf[16];
    if (nq > 16) nq = 16;
    c->f.vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, qf);
    int fam = -1;
    for (uint32_t i = 0; i < nq && fam < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) fam = (int)i;
    if (fam < 0) return vc_errf(VC_EUNSUP, "vulkan: %s has no compute queue", c->props.deviceName);
    c->qfam = (uint32_t)fam;

    uint32_t ne = 0;
    c->f.vkEnumerateDeviceExtensionProperties(c->pdev, NULL, &ne, NULL);
    VkExtensionProperties *ext = calloc(ne ? ne : 1, sizeof *ext);
    if (!ext) return vc_errf(VC_ENOMEM, "out of memory");
    c->f.vkEnumerateDeviceExtensionProperties(c->pdev, NULL, &ne, ext);
    const char *want[8];
    uint32_t nw = 0;
    if (has_ext(ext, ne, "VK_KHR_portability_subset")) want[nw++] = "VK_KHR_portability_subset"; /* required when listed */
    if (has_ext(ext, ne, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
        want[nw++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
        c->has_budget = 1;
    }
    /* weight files imported in place on unified devices (VLLMC_VULKAN_NO_IMPORT=1: copied, as before) */
    const char *noimp = getenv("VLLMC_VULKAN_NO_IMPORT");
    long page = sysconf(_SC_PAGESIZE);
    uint64_t ia = hostp.minImportedHostPointerAlignment;
    if (has_ext(ext, ne, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME) && c->unified && !c->force_staging &&
        !(noimp && !strcmp(noimp, "1")) && ia > 0 && page > 0 && ia <= (uint64_t)page && (ia & (ia - 1)) == 0) {
        want[nw++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
        c->import_align = ia;
    }
    int has_f16_ext = has_ext(ext, ne, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
    int has_coop_ext = has_ext(ext, ne, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    free(ext);
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                .pNext = has_coop_ext ? &cmf : NULL};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                                                      .pNext = &s16};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16};
    c->f.vkGetPhysicalDeviceFeatures2(c->pdev, &f2);
    c->fp16_arith = f16.shaderFloat16 != 0;
    /* VLLMC_VULKAN_NO_COOPMAT=1 turns it off (A/B runs); it is exact to f32 level (activations split
     * into two f16 parts) and measured faster than the f32 kernel on the H100 (docs/PERFORMANCE.md). */
    const char *nocoop = getenv("VLLMC_VULKAN_NO_COOPMAT");
    c->coopmat = has_coop_ext && has_f16_ext && cmf.cooperativeMatrix && c->fp16_arith && c->subgroup_size == 32 &&
                 coop_shape_ok(c) && !(nocoop && !strcmp(nocoop, "1"));
    if (c->fp16_arith && has_f16_ext) want[nw++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    if (c->coopmat) want[nw++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
    /* matmul_cd.comp loads weight fragments through a float16_t view of the weight buffer */
    if (!c->coopmat || !s16.storageBuffer16BitAccess) c->coop_direct_max_n = 0;
    /* enable exactly the features the shaders use */
    VkPhysicalDevice16BitStorageFeatures s16e = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
                                                 .storageBuffer16BitAccess = VK_TRUE};
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cme = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
                                                       .cooperativeMatrix = VK_TRUE,
                                                       .pNext = c->coop_direct_max_n > 0 ? &s16e : NULL};
    VkPhysicalDeviceShaderFloat16Int8Features f16e = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                                                       .shaderFloat16 = VK_TRUE, .pNext = c->coopmat ? &cme : NULL};

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = c->qfam,
                                   .queueCount = 1, .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                              .pNext = c->fp16_arith && has_f16_ext ? &f16e : NULL,
                              .pQueueCreateInfos = &qci, .enabledExtensionCount = nw, .ppEnabledExtensionNames = want};
    VkResult r = c->f.vkCreateDevice(c->pdev, &dci, NULL, &c->dev);
    if (r != VK_SUCCESS) return vc_errf(VC_EUNSUP, "vulkan: vkCreateDevice failed on %s (VkResult %d)", c->props.deviceName, (int)r);
#define LOAD_DEV(name)                                                                       \
    if (!(c->f.name = (PFN_##name)c->f.vkGetDeviceProcAddr(c->dev, #name)))                \
        return vc_errf(VC_EUNSUP, "the Vulkan device lacks %s", #name);
    VK_DEVICE_FNS(LOAD_DEV)
#undef LOAD_DEV
    if (c->import_align) {
        c->f.vkGetMemoryHostPointerPropertiesEXT =
            (PFN_vkGetMemoryHostPointerPropertiesEXT)c->f.vkGetDeviceProcAddr(c->dev, "vkGetMemoryHostPointerPropertiesEXT");
        if (!c->f.vkGetMemoryHostPointerPropertiesEXT) c->import_align = 0;
    }
    c->f.vkGetDeviceQueue(c->dev, c->qfam, 0, &c->queue);
    return VC_OK;
}

/* The largest device-local heap, and its budget when the driver reports one. */
static void heap_sizes(vk_ctx *c, uint64_t *total, uint64_t *free_b) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT bud = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
                                            .pNext = c->has_budget ? &bud : NULL};
    c->f.vkGetPhysicalDeviceMemoryProperties2(c->pdev, &mp);
    int best = -1;
    for (uint32_t i = 0; i < mp.memoryProperties.memoryHeapCount; i++)
        if ((mp.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (best < 0 || mp.memoryProperties.memoryHeaps[i].size > mp.memoryProperties.memoryHeaps[best].size))
            best = (int)i;
    if (best < 0) best = 0;
    *total = mp.memoryProperties.memoryHeaps[best].size;
    *free_b = 0;
    if (c->has_budget && bud.heapBudget[best] > bud.heapUsage[best]) *free_b = bud.heapBudget[best] - bud.heapUsage[best];
}

int vk_info(void *ctx, be_info *out) {
    vk_ctx *c = ctx;
    memset(out, 0, sizeof *out);
    memcpy(out->desc, c->desc, sizeof out->desc);
    heap_sizes(c, &out->mem_total, &out->mem_free);
    out->unified = c->unified;
    out->max_view_bytes = c->max_range > c->align ? c->max_range - c->align : c->max_range;
    return VC_OK;
}

static void vk_free_ctx(void *ctx) {
    vk_ctx *c = ctx;
    if (!c) return;
    if (c->dev) {
        c->f.vkDeviceWaitIdle(c->dev);
        if (c->stage) vk_buffer_free(c, c->stage);
        if (c->scratch) vk_buffer_free(c, c->scratch);
        vk_dsets_clear(c);
        for (int i = 0; i < c->n_pools; i++) c->f.vkDestroyDescriptorPool(c->dev, c->pools[i], NULL);
        vk_pipelines_free(c);
        for (int i = 0; i < VK_NCB; i++)
            if (c->fences[i]) c->f.vkDestroyFence(c->dev, c->fences[i], NULL);
        vk_prof_print(c);
        if (c->qpool) c->f.vkDestroyQueryPool(c->dev, c->qpool, NULL);
        if (c->cpool) c->f.vkDestroyCommandPool(c->dev, c->cpool, NULL);
        c->f.vkDestroyDevice(c->dev, NULL);
    }
    if (c->inst) c->f.vkDestroyInstance(c->inst, NULL);
    if (c->lib) dlclose(c->lib);
    free(c->pools);
    free(c->dsets);
    free(c->pend);
    free(c);
}

static int create_queue_objects(vk_ctx *c) {
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = c->qfam};
    int rc;
    if ((rc = vk_check(c, c->f.vkCreateCommandPool(c->dev, &pci, NULL, &c->cpool), "vkCreateCommandPool"))) return rc;
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = c->cpool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = VK_NCB};
    if ((rc = vk_check(c, c->f.vkAllocateCommandBuffers(c->dev, &ai, c->cbs), "vkAllocateCommandBuffers"))) return rc;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    for (int i = 0; i < VK_NCB; i++)
        if ((rc = vk_check(c, c->f.vkCreateFence(c->dev, &fci, NULL, &c->fences[i]), "vkCreateFence"))) return rc;
    c->cb = c->cbs[0];
    c->fence = c->fences[0];
    const char *prof = getenv("VLLMC_VULKAN_PROFILE");
    c->host_prof = prof && !strcmp(prof, "2");
    if (prof && !strcmp(prof, "1") && c->props.limits.timestampComputeAndGraphics) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                    .queryCount = 4096};
        if ((rc = vk_check(c, c->f.vkCreateQueryPool(c->dev, &qi, NULL, &c->qpool), "vkCreateQueryPool"))) return rc;
        c->ts_period = c->props.limits.timestampPeriod;
    }
    return VC_OK;
}

static void describe(vk_ctx *c) {
    uint64_t total, fr;
    heap_sizes(c, &total, &fr);
    uint32_t v = c->props.apiVersion;
    char tmp[512];
    snprintf(tmp, sizeof tmp,
             "Vulkan %u.%u: %.100s (%s, %.1f GiB%s), subgroup %d%s, fp16 arithmetic %s, bf16 read as 16-bit words, "
             "%s%s",
             VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), c->props.deviceName, type_name(c->props.deviceType),
             (double)total / 1073741824.0, c->unified ? " shared with the CPU" : "", c->subgroup_size,
             c->subgroup_arith ? " (subgroupAdd)" : "", c->fp16_arith ? "yes" : "no",
             !c->coopmat                                    ? "cooperative matrix not used"
             : (c->coop_direct_max_n > 0 && !c->coop_split) || !c->coop_l_split
                 ? "cooperative matrix (NV, f16 16x16x16), f16 activations"
                                                            : "cooperative matrix (NV, f16 16x16x16)",
             c->import_align ? ", weight files used in place (VK_EXT_external_memory_host)" : "");
    snprintf(c->desc, sizeof c->desc, "%.255s", tmp);
}

/* Rows up to which be_lora_shrink/expand use the fused kernels (VK_LORA_MAX_ROWS; VLLMC_VULKAN_LORA_MAX_ROWS
 * for measurements, at most 65535: the shrink's grid is one workgroup column per row). */
static int64_t lora_max_rows(void) {
    const char *e = getenv("VLLMC_VULKAN_LORA_MAX_ROWS");
    long long v = e ? atoll(e) : VK_LORA_MAX_ROWS;
    return v < 0 ? 0 : v > 65535 ? 65535 : v;
}

int be_vk_create(be_backend **out, vk_pick pick) {
    *out = NULL;
    vk_ctx *c = calloc(1, sizeof *c);
    be_backend *b = calloc(1, sizeof *b);
    int rc = VC_OK;
    if (!c || !b) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto err;
    }
    if ((rc = load_loader(c)) || (rc = create_instance(c)) || (rc = pick_device(c, pick)) || (rc = create_device(c)))
        goto err;
    describe(c);
    if ((rc = create_queue_objects(c)) || (rc = vk_pipelines_create(c))) goto err;
    *b = (be_backend){
        .name = "vulkan",
        .ctx = c,
        .buffer_alloc = vk_buffer_alloc,
        .buffer_free = vk_buffer_free,
        .buffer_write = vk_buffer_write,
        .buffer_read = vk_buffer_read,
        .info = vk_info,
        .bandwidth_gbs = vk_bandwidth,
        .get_rows = vk_op_get_rows,
        .rmsnorm = vk_op_rmsnorm,
        .matmul = vk_op_matmul,
        .matmul_multi = vk_op_matmul_multi,
        .matmul_fused = vk_op_matmul_fused,
        .norm_fold_rows = c->no_fuse || c->no_fold ? 0 : 8, /* matvec_sg.comp's token count */
        .rope = vk_op_rope,
        .kv_write = vk_op_kv_write,
        .attention = vk_op_attention,
        .silu_mul = vk_op_silu_mul,
        .gelu_tanh_mul = vk_op_gelu_tanh_mul,
        .scale = vk_op_scale,
        .softcap = vk_op_softcap,
        .argmax = vk_op_argmax,
        .topk = vk_op_topk,
        .moe_combine = vk_op_moe_combine,
        .moe_topk = vk_op_moe_topk,
        .moe_matmul_ids = vk_op_moe_matmul_ids,
        .swiglu_clamp = vk_op_swiglu_clamp,
        .add = vk_op_add,
        .lora_shrink = vk_op_lora_shrink,
        .lora_expand = vk_op_lora_expand,
        .lora_max_rows = lora_max_rows(),
        .add_rmsnorm = vk_op_add_rmsnorm,
        .rope_kv_write = vk_op_rope_kv_write,
        .buffer_wrap_host = c->import_align ? vk_buffer_wrap_host : NULL,
        .sync = vk_sync,
        .free = vk_free_ctx,
    };
    *out = b;
    return VC_OK;
err:
    vk_free_ctx(c);
    free(b);
    return rc;
}
