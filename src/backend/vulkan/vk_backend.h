/* The Vulkan backend's constructor. Everything else is reached through
 * backend.h; be_open() calls this for --device auto and gpu. The Vulkan loader
 * is opened at run time (dlopen), so a machine without one still runs the CPU
 * backend and the binary has no link-time dependency on libvulkan. */
#ifndef VLLMC_VK_BACKEND_H
#define VLLMC_VK_BACKEND_H

#include "backend/backend.h"

typedef enum {
    VK_PICK_REAL_GPU = 0, /* --device auto: discrete, else integrated; never a CPU implementation */
    VK_PICK_ANY = 1,      /* --device gpu: any device, lavapipe included; VLLMC_VULKAN_DEVICE=<i> picks */
} vk_pick;

/* VC_EUNSUP with a message naming what is missing (no loader, no device, a
 * device without what the shaders need) when no device can be used. */
int be_vk_create(be_backend **out, vk_pick pick);

#endif
