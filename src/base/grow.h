/* grow: the array-growing step that many buffers share. */
#ifndef VLLMC_BASE_GROW_H
#define VLLMC_BASE_GROW_H

#include <stdlib.h>

#include "base/ckd.h"
#include "base/err.h"

/* Make *p (elements of elem bytes, capacity *cap elements) hold at least need elements, doubling from 64;
 * on failure (also a size that would overflow) *p and *cap are left as they were: VC_ENOMEM "out of memory". */
static inline int vc_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64, bytes;
    while (nc < need) {
        if (vc_ckd_mul_size(nc, 2, &nc)) return vc_errf(VC_ENOMEM, "out of memory");
    }
    if (vc_ckd_array(nc, elem, &bytes)) return vc_errf(VC_ENOMEM, "out of memory");
    void *q = realloc(*p, bytes);
    if (!q) return vc_errf(VC_ENOMEM, "out of memory");
    *p = q;
    *cap = nc;
    return 0;
}

#endif
