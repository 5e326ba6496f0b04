/* be_open: the one place that turns a --device value into a backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "base/err.h"
#ifdef VLLMC_HAVE_VULKAN
#include "backend/vulkan/vk_backend.h"
#endif

int be_have_gpu(void) {
#ifdef VLLMC_HAVE_VULKAN
    return 1;
#else
    return 0;
#endif
}

static int open_cpu(be_backend **out) { return be_cpu_create(out, 0, getenv("VLLM_CPU_OMP_THREADS_BIND")); }

int be_open(const char *device, be_backend **out) {
    *out = NULL;
    if (!device || !strcmp(device, "auto")) {
#ifdef VLLMC_HAVE_VULKAN
        if (be_vk_create(out, VK_PICK_REAL_GPU) == VC_OK) return VC_OK;
        fprintf(stderr, "INFO vllmc: no GPU used (%s); running on the CPU\n", vc_errmsg());
#endif
        return open_cpu(out);
    }
    if (!strcmp(device, "cpu")) return open_cpu(out);
    if (!strcmp(device, "gpu") || !strcmp(device, "vulkan")) {
#ifdef VLLMC_HAVE_VULKAN
        return be_vk_create(out, VK_PICK_ANY);
#else
        return vc_errf(VC_EUNSUP,
                       "--device %s: this build has no GPU code (built with VLLM_TARGET_DEVICE=cpu); "
                       "available: auto, cpu",
                       device);
#endif
    }
    return vc_errf(VC_EINVAL, "--device '%s' is not available in this build (choose from auto, cpu%s)", device,
                   be_have_gpu() ? ", gpu" : "");
}
