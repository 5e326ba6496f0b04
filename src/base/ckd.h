/* ckd: checked arithmetic for sizes and counts that a request, a model file or
 * a config controls. Each helper returns 0 and writes the result, or returns 1
 * (the result would overflow) and leaves *out unspecified, as C23's
 * ckd_add/ckd_mul do. Every size computed from outside input goes through
 * these before it reaches an allocator or an index. */
#ifndef VLLMC_BASE_CKD_H
#define VLLMC_BASE_CKD_H

#include <stddef.h>
#include <stdint.h>

static inline int vc_ckd_mul_size(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int vc_ckd_add_size(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }
static inline int vc_ckd_mul_int(int a, int b, int *out) { return __builtin_mul_overflow(a, b, out); }
static inline int vc_ckd_add_int(int a, int b, int *out) { return __builtin_add_overflow(a, b, out); }
static inline int vc_ckd_add_ll(long long a, long long b, long long *out) { return __builtin_add_overflow(a, b, out); }

/* n elements of size bytes each: 0 and the byte count, or 1 on overflow. */
static inline int vc_ckd_array(size_t n, size_t size, size_t *bytes) { return __builtin_mul_overflow(n, size, bytes); }

/* Saturating forms, for bounds that only need to know "too large": SIZE_MAX on overflow. */
static inline size_t vc_sat_add_size(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }
static inline size_t vc_sat_mul_size(size_t a, size_t b) {
    size_t r;
    return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

#endif
