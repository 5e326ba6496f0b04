/* lsan_keep_vulkan.so: LD_PRELOADed by `make asan` so that LeakSanitizer can name the Vulkan
 * libraries in its reports.
 *
 * The Vulkan backend dlopens the loader (libvulkan), which dlopens the driver (Mesa's lavapipe, with
 * LLVM) and any layers (the Khronos validation layer), and all of them are dlclosed before exit. By
 * the time LeakSanitizer looks, their code is unmapped: what they still held in their globals reads
 * as leaked, from "<unknown module>", and no suppression can name it. This dlclose() keeps exactly
 * those libraries (names containing "vulkan" or "VkLayer") loaded and passes every other handle to
 * the real dlclose(). Not linked into vllmc; built without sanitizers, since node, bash and the
 * compilers load it too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>

static int (*real_dlclose)(void *);

__attribute__((constructor)) static void find_real_dlclose(void) {
    void *sym = dlsym(RTLD_NEXT, "dlclose");
    memcpy(&real_dlclose, &sym, sizeof sym);
}

int dlclose(void *handle) {
    struct link_map *lm = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name &&
        (strstr(lm->l_name, "vulkan") || strstr(lm->l_name, "VkLayer")))
        return 0;
    return real_dlclose ? real_dlclose(handle) : -1;
}
