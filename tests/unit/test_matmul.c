/* test_matmul: cpu_matmul on every weight dtype and kernel path (SIMD and the
 * forced portable C one), odd shapes, strides, bias, thread counts, against a
 * double-precision reference; and cpu_dot / cpu_axpy / cpu_to_f32 /
 * cpu_from_f32 (bit-exact against base/half.h). Buffers are allocated to their
 * exact extent so ASan catches any over-read past the last row.
 *
 * The native 16-bit dot-product kernels (AVX-512 BF16, BFMMLA, FMLAL) round the activations to the
 * weights' dtype: where cpu_matmul_act_dtype says a case takes one, the bound adds that rounding,
 * u * sum |x w| (u = 2^-8 bf16, 2^-11 f16), and the result must also be within the f32 bound of a
 * second reference computed from the rounded activations (which catches a wrong layout that the
 * looser bound might let pass). Each such kernel is also called directly on a sweep of shapes with
 * tails of every block, and the AVX-512 BF16 one runs on every CPU through portable C versions of
 * its intrinsics (avx512bf16_emu.h); where the CPU lacks one, a "skipped: no ..." line says so.
 *
 * VLLMC_TEST_QUICK=1 (the arm64 run under qemu, tests/cli/test_arm64.sh): one
 * case in 7 of the shape sweep (7 is prime to the rotations of pools and
 * strides, so every n, K, M, dtype, stride and pool still occurs) and the large
 * cases of up to 5M multiply-adds. */
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"

#include <float.h>
#include <stdint.h>
#include <string.h>

/* The AVX-512 BF16 GEMM and row tiles on portable C intrinsics, under other names beside the real ones. */
#define VLLMC_AVX512BF16_EMULATE 1
#define cpu_avx512bf16_gemm_rows emu_avx512bf16_gemm_rows
#define cpu_avx512bf16_gemv_rows emu_avx512bf16_gemv_rows
#define cpu_amx_gemm_rows emu_amx_gemm_rows
#define cpu_avx512bf16_gemm_t_rows emu_avx512bf16_gemm_t_rows
void emu_amx_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb, int rows,
                       const float *bias, float *y, int64_t ldy);
void emu_avx512bf16_gemm_t_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                                int rows, const float *bias, float *y, int64_t ldy);
void emu_avx512bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                              int rows, const float *bias, float *y, int64_t ldy);
void emu_avx512bf16_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                              int rows, const float *bias, float *y, int64_t ldy);
#include "backend/cpu/matmul_avx512bf16.c"
#undef cpu_avx512bf16_gemm_rows
#undef cpu_avx512bf16_gemv_rows
#undef cpu_amx_gemm_rows

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd64(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint32_t rnd32(void) { return (uint32_t)(rnd64() >> 32); }
/* uniform in +-[0.1, 1): never zero */
static float frand_nz(void) {
    float m = 0.1f + 0.9f * (float)(rnd64() >> 40) / (float)(1 << 24);
    return rnd64() & 1 ? m : -m;
}

static const be_dtype k_dtypes[] = {BE_F32, BE_F16, BE_BF16};
static const char *dt_name(be_dtype t) { return t == BE_F32 ? "f32" : t == BE_F16 ? "f16" : "bf16"; }

static float w_at(const void *w, be_dtype dt, int64_t i) {
    if (dt == BE_F16) return vc_f16_to_f32(((const uint16_t *)w)[i]);
    if (dt == BE_BF16) return vc_bf16_to_f32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

/* extent of a [rows, cols] view with row stride ld, in elements */
static size_t extent(int rows, int cols, int64_t ld) {
    return rows > 0 && cols > 0 ? (size_t)((int64_t)(rows - 1) * ld + cols) : 1;
}

static int g_cases, g_bad_cases, g_quick, g_dot16_cases;

/* x rounded as a native 16-bit kernel rounds it (act = the dtype it is rounded to, BE_F32: not at all) */
static double act_round(be_dtype act, float v) {
    if (act == BE_BF16) return vc_bf16_to_f32(vc_f32_to_bf16(v));
    if (act == BE_F16) return vc_f16_to_f32(vc_f32_to_f16(v));
    return v;
}

/* Checks y[t, r] of x[n, K] @ wf[M, K]^T (+ bias) computed with activations rounded to act: within
 * the f32 bound of the exact reference plus the rounding of x, and within the f32 bound of the
 * reference on the rounded x. Returns the number of wrong elements reported (at most 3). */
static int check_y(const float *x, int64_t ldx, int n, int K, const float *wf, int64_t ldw, int M,
                   const float *bias, const float *y, int64_t ldy, be_dtype act, const char *what) {
    /* unit roundoff of the activations' dtype, and the absolute error of an f16 subnormal */
    double u = act == BE_BF16 ? 1.0 / 256 : act == BE_F16 ? 1.0 / 2048 : 0, tiny = act == BE_F16 ? 0x1p-25 : 0;
    int bad = 0;
    for (int t = 0; t < n && bad < 3; t++)
        for (int r = 0; r < M && bad < 3; r++) {
            double ref = bias ? bias[r] : 0.0, mag = bias ? fabs(bias[r]) : 0.0, refr = ref, wsum = 0;
            for (int k = 0; k < K; k++) {
                double xv = x[t * ldx + k], wv = wf[r * ldw + k];
                ref += xv * wv;
                mag += fabs(xv * wv);
                refr += act_round(act, (float)xv) * wv;
                wsum += fabs(wv);
            }
            /* f32 accumulation: a few ulps times sqrt(K) of the magnitude sum */
            double tol = 4.0 * FLT_EPSILON * sqrt((double)K + 1.0) * mag + 1e-30;
            double got = y[t * ldy + r];
            int ok = fabs(got - ref) <= tol + u * mag + tiny * wsum;
            if (act != BE_F32) ok = ok && fabs(got - refr) <= tol * (1.0 + u) + tiny * wsum;
            if (!ok) {
                fprintf(stderr, "  %s n=%d K=%d M=%d ldx=%ld ldw=%ld ldy=%ld bias=%d: y[%d,%d]=%.9g ref=%.9g "
                        "(x as %s: %.9g)\n", what, n, K, M, (long)ldx, (long)ldw, (long)ldy, bias != NULL, t, r, got,
                        ref, act == BE_BF16 ? "bf16" : act == BE_F16 ? "f16" : "f32", refr);
                bad++;
            }
        }
    return bad;
}

static void run_case(tp_pool *pool, int n, int K, int M, be_dtype dt, int64_t ldx, int64_t ldw, int64_t ldy,
                     int with_bias, const char *path) {
    const float sentinel = 12345.0f;
    size_t nx = extent(n, K, ldx), nw = extent(M, K, ldw), ny = extent(n, M, ldy);
    float *x = malloc(nx * sizeof(float));
    void *w = malloc(nw * be_dtype_size(dt));
    float *wf = malloc(nw * sizeof(float)); /* w as f32, converted once for the reference */
    float *y = malloc(ny * sizeof(float));
    float *bias = with_bias ? malloc(sizeof(float) * (size_t)(M > 0 ? M : 1)) : NULL;
    for (size_t i = 0; i < nx; i++) x[i] = frand_nz();
    for (size_t i = 0; i < nw; i++) {
        float v = frand_nz();
        if (dt == BE_F32) ((float *)w)[i] = v;
        else if (dt == BE_F16) ((uint16_t *)w)[i] = vc_f32_to_f16(v);
        else ((uint16_t *)w)[i] = vc_f32_to_bf16(v);
        wf[i] = w_at(w, dt, (int64_t)i);
    }
    for (int i = 0; bias && i < M; i++) bias[i] = frand_nz();
    for (size_t i = 0; i < ny; i++) y[i] = sentinel;

    cpu_matmul(pool, x, ldx, n, K, w, dt, ldw, M, bias, y, ldy);

    be_dtype act = cpu_matmul_act_dtype(n, dt);
    char what[64];
    snprintf(what, sizeof what, "%s%s %s", path, act != BE_F32 ? "(dot16)" : "", dt_name(dt));
    int bad = check_y(x, ldx, n, K, wf, ldw, M, bias, y, ldy, act, what);
    if (act != BE_F32) g_dot16_cases++;
    for (int t = 0; t < n && bad < 3; t++) {
        for (int64_t c = M; t + 1 < n && c < ldy; c++) /* the gaps between rows are untouched */
            if (y[t * ldy + c] != sentinel) {
                fprintf(stderr, "  %s %s n=%d K=%d M=%d: wrote y[%d,%ld] past M\n", path, dt_name(dt), n, K, M, t,
                        (long)c);
                bad++;
                break;
            }
    }
    g_cases++;
    if (bad) g_bad_cases++;
    CHECK(bad == 0);
    free(x);
    free(w);
    free(wf);
    free(y);
    free(bias);
}

static void test_matmul_shapes(tp_pool *pools[3], const char *path) {
    static const int ns[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 63, 64, 65, 130};
    static const int Ks[] = {1, 7, 8, 15, 16, 33, 100, 257, 300};
    static const int Ms[] = {1, 3, 4, 16, 17, 35, 64, 70};
    int idx = 0;
    for (size_t di = 0; di < 3; di++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++)
                for (size_t c = 0; c < sizeof Ms / sizeof Ms[0]; c++, idx++) {
                    if (g_quick && idx % 7) continue;
                    int n = ns[a], K = Ks[b], M = Ms[c];
                    /* strides: tight or padded; bias on every other case; rotate the pools */
                    int64_t ldx = K + (idx % 3 == 1 ? 1 + (int)(rnd32() % 9) : 0);
                    int64_t ldw = K + (idx % 4 == 2 ? 1 + (int)(rnd32() % 9) : 0);
                    int64_t ldy = M + (idx % 5 == 3 ? 1 + (int)(rnd32() % 9) : 0);
                    run_case(pools[idx % 3], n, K, M, k_dtypes[di], ldx, ldw, ldy, idx % 2, path);
                }
    /* larger: several K blocks with a tail, token blocks past the GEMM's NC,
     * long rows with few tokens, big strides */
    static const int big[][3] = {{130, 1100, 200}, {400, 600, 40}, {3, 5000, 9}, {1, 4099, 37},
                                 {70, 520, 161}, {129, 17, 1000}, {64, 2048, 33}, {200, 64, 96}};
    for (size_t di = 0; di < 3; di++)
        for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
            int n = big[i][0], K = big[i][1], M = big[i][2];
            if (g_quick && (int64_t)n * K * M > 5000000) continue;
            run_case(pools[(i + di) % 3], n, K, M, k_dtypes[di], K + (int64_t)(i % 2) * 13, K + (int64_t)(i % 3) * 5,
                     M + (int64_t)(i % 2) * 3, (int)(i + di) % 2, path);
        }
}

static void test_matmul_empty(tp_pool *pool) {
    float x[4] = {1, 2, 3, 4}, bias[3] = {0.5f, -1.0f, 2.0f}, y[8];
    uint16_t w[8] = {0};
    for (int i = 0; i < 8; i++) y[i] = 7.0f;
    cpu_matmul(pool, x, 4, 0, 4, w, BE_BF16, 4, 2, bias, y, 3); /* n = 0 */
    cpu_matmul(pool, x, 4, 2, 4, w, BE_F16, 4, 0, bias, y, 3); /* M = 0 */
    for (int i = 0; i < 8; i++) CHECK(y[i] == 7.0f);
    cpu_matmul(pool, x, 0, 2, 0, w, BE_F32, 0, 3, bias, y, 4); /* K = 0: y = bias */
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < 3; r++) CHECK(y[t * 4 + r] == bias[r]);
    CHECK(y[3] == 7.0f);
    cpu_matmul(pool, x, 0, 2, 0, w, BE_F32, 0, 3, NULL, y, 4); /* K = 0, no bias: zeros */
    for (int t = 0; t < 2; t++)
        for (int r = 0; r < 3; r++) CHECK(y[t * 4 + r] == 0.0f);
}

static void test_dot_axpy(const char *path) {
    for (size_t di = 0; di < 3; di++) {
        be_dtype dt = k_dtypes[di];
        for (int n = 0; n <= 1100; n += n < 80 ? 1 : 97) {
            float *a = malloc(sizeof(float) * (size_t)(n ? n : 1));
            void *b = malloc(be_dtype_size(dt) * (size_t)(n ? n : 1));
            float *y = malloc(sizeof(float) * (size_t)(n ? n : 1));
            float *y0 = malloc(sizeof(float) * (size_t)(n ? n : 1));
            double ref = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                a[i] = frand_nz();
                y0[i] = y[i] = frand_nz();
                float v = frand_nz();
                if (dt == BE_F32) ((float *)b)[i] = v;
                else if (dt == BE_F16) ((uint16_t *)b)[i] = vc_f32_to_f16(v);
                else ((uint16_t *)b)[i] = vc_f32_to_bf16(v);
                ref += (double)a[i] * w_at(b, dt, i);
                mag += fabs((double)a[i] * w_at(b, dt, i));
            }
            float got = cpu_dot(a, b, dt, n);
            CHECK_MSG(fabs(got - ref) <= 4.0 * FLT_EPSILON * sqrt(n + 1.0) * mag, "%s dot %s n=%d: %g vs %g", path,
                      dt_name(dt), n, got, ref);
            float alpha = frand_nz();
            cpu_axpy(y, alpha, b, dt, n);
            int bad = 0;
            for (int i = 0; i < n; i++) {
                double r = (double)y0[i] + (double)alpha * w_at(b, dt, i);
                double tol = 2.0 * FLT_EPSILON * (fabs(y0[i]) + fabs(alpha * w_at(b, dt, i)));
                if (!(fabs(y[i] - r) <= tol)) bad++;
            }
            CHECK_MSG(bad == 0, "%s axpy %s n=%d: %d wrong", path, dt_name(dt), n, bad);
            free(a);
            free(b);
            free(y);
            free(y0);
        }
    }
}

static int same_f32(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub;
}

static void test_to_f32(const char *path) {
    uint16_t *h = malloc(sizeof(uint16_t) * 65536);
    float *f = malloc(sizeof(float) * 65536);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int d = 1; d < 3; d++) {
        be_dtype dt = k_dtypes[d];
        int bad = 0;
        cpu_to_f32(f, h, dt, 65536);
        for (int i = 0; i < 65536; i++)
            bad += !same_f32(f[i], dt == BE_F16 ? vc_f16_to_f32(h[i]) : vc_bf16_to_f32(h[i]));
        /* short lengths and odd offsets (tails) */
        for (int n = 0; n < 20; n++) {
            float g[20];
            cpu_to_f32(g, h + 31000 + n, dt, n);
            for (int i = 0; i < n; i++) bad += !same_f32(g[i], w_at(h + 31000 + n, dt, i));
        }
        CHECK_MSG(bad == 0, "%s to_f32 %s: %d wrong", path, dt_name(dt), bad);
    }
    float src[19], dst[19];
    for (int i = 0; i < 19; i++) src[i] = frand_nz();
    cpu_to_f32(dst, src, BE_F32, 19);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    free(h);
    free(f);
}

static float f32_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_from_f32(const char *path) {
    enum { N = 1 << 20 };
    float *src = malloc(sizeof(float) * N);
    uint16_t *dst = malloc(sizeof(uint16_t) * N);
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001,
        0x7fbfffff, 0x7fffffff, 0x7f812345, 0xffa00000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000,
        0x3f808000, 0x3f818000, 0x3f807fff, 0x3f808001, 0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x7f7f7fff,
        0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x47800000, 0x387fc000, 0x38800000, 0x33000000,
        0x33000001, 0x32ffffff, 0x33800000, 0x337fffff, 0x38000000, 0x38001000, 0x38003000, 0x3f800000,
        0xc7800000, 0xb3000001, 0x3c003000, 0x3c001000, 0x3c001001, 0x5c000000, 0x1c000000, 0x9f000000,
    };
    const int nspecial = (int)(sizeof special / sizeof special[0]);
    /* specials, then a sweep over all exponents, then random bit patterns */
    for (int i = 0; i < N; i++) {
        uint32_t u;
        if (i < nspecial) u = special[i];
        else if (i < N / 2) u = (uint32_t)i * 8191u;
        else u = rnd32();
        src[i] = f32_bits(u);
    }
    for (int d = 1; d < 3; d++) {
        be_dtype dt = k_dtypes[d];
        int bad = 0;
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: one call; pass 1: many short calls at odd offsets (tails) */
            if (pass == 0) cpu_from_f32(dst, dt, src, N);
            else
                for (int i = 0, len = 0; i < N; i += len, len = (len + 1) % 23)
                    cpu_from_f32(dst + i, dt, src + i, len < N - i ? len : N - i);
            for (int i = 0; i < N; i++) {
                uint16_t want = dt == BE_F16 ? vc_f32_to_f16(src[i]) : vc_f32_to_bf16(src[i]);
                if (dst[i] != want) {
                    if (bad < 5) {
                        uint32_t u;
                        memcpy(&u, &src[i], 4);
                        fprintf(stderr, "  %s from_f32 %s: 0x%08x -> 0x%04x, want 0x%04x\n", path, dt_name(dt), u,
                                dst[i], want);
                    }
                    bad++;
                }
            }
        }
        CHECK_MSG(bad == 0, "%s from_f32 %s: %d wrong", path, dt_name(dt), bad);
    }
    float f[7];
    cpu_from_f32(f, BE_F32, src + 100, 7);
    CHECK(memcmp(f, src + 100, sizeof f) == 0);
    free(src);
    free(dst);
}

/* One native 16-bit kernel called directly (one thread, all rows) on shapes with tails of every block:
 * tokens around its tile (8, 12) and block (128, 192), K around its steps (2, 4, 8, 32), blocks (256,
 * 2048) and odd, rows around its panels (8, 32) and chunks (64, 128), padded strides, bias. */
/* One direct case of fn: n tokens, K columns, M rows, strides and bias varied by idx; 1 when wrong. */
static int direct_case(const char *name, cpu_f32_rows_fn fn, be_dtype dt, int n, int K, int M, int idx) {
    int64_t ldx = K + (idx % 3 == 1 ? 3 : 0), ldw = K + (idx % 4 == 2 ? 5 : 0), ldy = M + (idx % 5 == 3 ? 2 : 0);
    size_t nx = extent(n, K, ldx), nw = extent(M, K, ldw), ny = extent(n, M, ldy);
    float *x = malloc(nx * sizeof(float)), *wf = malloc(nw * sizeof(float)), *y = malloc(ny * sizeof(float));
    uint16_t *w = malloc(nw * sizeof(uint16_t));
    float *bias = idx % 2 ? malloc(sizeof(float) * (size_t)M) : NULL;
    for (size_t i = 0; i < nx; i++) x[i] = frand_nz();
    for (size_t i = 0; i < nw; i++) {
        w[i] = dt == BE_F16 ? vc_f32_to_f16(frand_nz()) : vc_f32_to_bf16(frand_nz());
        wf[i] = w_at(w, dt, (int64_t)i);
    }
    for (int i = 0; bias && i < M; i++) bias[i] = frand_nz();
    for (size_t i = 0; i < ny; i++) y[i] = 12345.0f;
    fn(x, ldx, n, K, w, dt, (int64_t)ldw * 2, M, bias, y, ldy);
    int bad = check_y(x, ldx, n, K, wf, ldw, M, bias, y, ldy, dt, name);
    for (int t = 0; t + 1 < n; t++)
        for (int64_t g = M; g < ldy; g++) bad += y[t * ldy + g] != 12345.0f; /* gaps untouched */
    free(x), free(wf), free(y), free(w), free(bias);
    return bad != 0;
}

static void sweep_kernel(const char *name, cpu_f32_rows_fn fn, be_dtype dt) {
    static const int ns[] = {1, 2, 7, 8, 9, 12, 13, 17, 64, 130, 200};
    static const int Ks[] = {1, 2, 3, 5, 8, 31, 33, 256, 257, 600, 2100};
    static const int Ms[] = {1, 7, 8, 9, 31, 33, 70, 130};
    int idx = 0, cases = 0, bad_cases = 0;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof Ks / sizeof Ks[0]; b++)
            for (size_t c = 0; c < sizeof Ms / sizeof Ms[0]; c++, idx++) {
                int n = ns[a], K = Ks[b], M = Ms[c];
                /* 3 and 7 are prime to 8 and 11: every n, K and M still occurs */
                if (idx % (g_quick ? 7 : 3) || (g_quick && (int64_t)n * K * M > 3000000)) continue;
                cases++;
                bad_cases += direct_case(name, fn, dt, n, K, M, idx);
            }
    CHECK_MSG(bad_cases == 0, "%s: %d of %d cases wrong", name, bad_cases, cases);
    printf("%s: %d direct cases (activations as %s), %d wrong\n", name, cases, dt_name(dt), bad_cases);
}

/* The tokens-in-lanes GEMM's token blocks (256 tokens): more than one, a partial last, odd K across its
 * 1024-column K blocks. */
static void token_blocks(const char *name, cpu_f32_rows_fn fn) {
    int bad = direct_case(name, fn, BE_BF16, 300, 70, 30, 1) + direct_case(name, fn, BE_BF16, 513, 1031, 13, 2);
    CHECK_MSG(bad == 0, "%s: %d of 2 token-block cases wrong", name, bad);
    printf("%s: 2 token-block cases (300 and 513 tokens), %d wrong\n", name, bad);
}

#if defined(__aarch64__) && defined(__ARM_NEON)
/* FMLAL with an x past the f16 range: the call must give the f32 kernel's result, not inf or NaN. */
static void fhm_overflow(void) {
    enum { n = 20, K = 40, M = 9 };
    float x[n * K], wf[M * K], y[n * M];
    uint16_t w[M * K];
    for (int i = 0; i < n * K; i++) x[i] = frand_nz();
    x[7 * K + 11] = 1e5f;
    for (int i = 0; i < M * K; i++) wf[i] = vc_f16_to_f32(w[i] = vc_f32_to_f16(frand_nz()));
    cpu_neon_fhm_gemm_rows(x, K, n, K, w, BE_F16, K * 2, M, NULL, y, M);
    int bad = check_y(x, K, n, K, wf, K, M, NULL, y, M, BE_F32, "dot16 fhm, x past f16");
    CHECK_MSG(bad == 0, "fhm: an x of 1e5 must take the f32 kernel");
}
#endif

/* The native 16-bit kernels called directly: the emulated AVX-512 BF16 one everywhere, the real ones
 * where the CPU has them, a "skipped" line where it does not. */
static void test_dot16_kernels(void) {
#if !defined(__x86_64__)
    if (g_quick) /* x86 code, slow on emulated vectors under qemu: the x86 and native arm64 runs check it */
        printf("dot16 avx512bf16 (emulated intrinsics): skipped in the quick run on this architecture\n");
    else
#endif
    {
        sweep_kernel("dot16 avx512bf16 (emulated intrinsics)", emu_avx512bf16_gemm_rows, BE_BF16);
        sweep_kernel("dot16 avx512bf16 row tiles (emulated intrinsics)", emu_avx512bf16_gemv_rows, BE_BF16);
        sweep_kernel("dot16 amx (emulated intrinsics)", emu_amx_gemm_rows, BE_BF16);
        sweep_kernel("dot16 avx512bf16 tokens in lanes (emulated intrinsics)", emu_avx512bf16_gemm_t_rows, BE_BF16);
        token_blocks("dot16 avx512bf16 tokens in lanes (emulated intrinsics)", emu_avx512bf16_gemm_t_rows);
    }
#if defined(__x86_64__)
    if (cpu_have_avx512bf16()) {
        sweep_kernel("dot16 avx512bf16", cpu_avx512bf16_gemm_rows, BE_BF16);
        sweep_kernel("dot16 avx512bf16 row tiles", cpu_avx512bf16_gemv_rows, BE_BF16);
        sweep_kernel("dot16 avx512bf16 tokens in lanes", cpu_avx512bf16_gemm_t_rows, BE_BF16);
        token_blocks("dot16 avx512bf16 tokens in lanes", cpu_avx512bf16_gemm_t_rows);
    } else printf("dot16 avx512bf16: skipped: no AVX512_BF16 on this CPU (the emulated run above checked its code)\n");
    if (cpu_have_amx()) sweep_kernel("dot16 amx", cpu_amx_gemm_rows, BE_BF16);
    else printf("dot16 amx: skipped: no AMX-BF16 on this CPU or not granted by the OS (the emulated run above checked its code)\n");
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
    if (cpu_have_neon_bf16()) sweep_kernel("dot16 bfmmla", cpu_neon_bf16_gemm_rows, BE_BF16);
    else printf("dot16 bfmmla: skipped: no BF16 (ARMv8.6 BFMMLA) on this CPU\n");
    if (cpu_have_neon_fhm()) {
        sweep_kernel("dot16 fhm", cpu_neon_fhm_gemm_rows, BE_F16);
        fhm_overflow();
    } else {
        printf("dot16 fhm: skipped: no FHM (FMLAL) on this CPU\n");
    }
#endif
}

int main(void) {
    tp_pool *pools[3] = {NULL, NULL, NULL};
    const char *quick = getenv("VLLMC_TEST_QUICK");
    g_quick = quick && !strcmp(quick, "1");
    int rc = tp_create(&pools[1], 0, NULL);
    CHECK_MSG(rc == 0, "tp_create: %s", vc_errmsg());
    rc = tp_create(&pools[2], 3, "nobind");
    CHECK_MSG(rc == 0, "tp_create: %s", vc_errmsg());
    if (!pools[1] || !pools[2]) TEST_END();
    printf("kernels: %s; pools: single thread, %s, %s\n", cpu_kernels_isa(), tp_describe(pools[1]),
           tp_describe(pools[2]));

    printf("native 16-bit dot products: %s\n", cpu_kernels_dot16());
    test_dot16_kernels();

    /* mode 0: every kernel this CPU has (AVX-512 for 8 <= n < 64, the native 16-bit dot products from
     * their n on, where present); 1: without the 16-bit dot products (only where present); 2: AVX2
     * alone (only where AVX-512 is present); 3: the portable C kernels */
    int have_dot16 = strcmp(cpu_kernels_dot16(), "none") != 0;
    for (int mode = 0; mode < 4; mode++) {
        if ((mode == 1 && !have_dot16) || (mode == 2 && !cpu_have_avx512())) continue;
        int forced = mode == 3;
        cpu_kernels_no_dot16(mode == 1);
        cpu_kernels_no_avx512(mode == 2);
        cpu_kernels_force_scalar(forced);
        char path[64];
        const char *d16 = cpu_kernels_dot16();
        snprintf(path, sizeof path, "%s%s%s", cpu_kernels_isa(), strcmp(d16, "none") ? "+" : "",
                 strcmp(d16, "none") ? d16 : "");
        if (forced) CHECK(strcmp(path, "scalar") == 0);
        if (mode == 1) CHECK(strcmp(d16, "none") == 0);
        if (mode == 2) CHECK(strcmp(path, "avx2") == 0);
        g_cases = g_bad_cases = g_dot16_cases = 0;
        test_matmul_shapes(pools, path);
        printf("%s: %d matmul cases (%d through a 16-bit dot-product kernel), %d wrong\n", path, g_cases,
               g_dot16_cases, g_bad_cases);
        CHECK_MSG(mode != 0 || !have_dot16 || g_dot16_cases > 0, "%s: no case took the dot16 kernel", path);
        test_matmul_empty(pools[forced + 1]);
        test_matmul_empty(NULL);
        test_dot_axpy(path);
        test_to_f32(path);
        test_from_f32(path);
        if (!forced && strcmp(path, "scalar") == 0) break; /* no SIMD path on this machine */
    }
    cpu_kernels_force_scalar(0);
    cpu_kernels_no_avx512(0);
    cpu_kernels_no_dot16(0);
    tp_free(pools[1]);
    tp_free(pools[2]);
    TEST_END();
}
