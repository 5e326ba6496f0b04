/* kernels: the CPU backend's compute core (matmul, vector helpers, machine
 * measurements).
 *
 * Weights may be f32, f16 or bf16 (be_dtype); activations are f32 and every
 * product is accumulated in f32. Strides are in elements. Kernels are picked
 * at run time: AVX2+FMA+F16C on x86-64 CPUs that have them (matmul_avx2.c),
 * NEON on aarch64 (matmul_neon.c), portable C otherwise. Results of the SIMD and portable
 * paths, and of the decode (n < CPU_GEMM_MIN_N) and prefill kernels, differ
 * only by f32 rounding (summation order); the thread count does not matter. Conversions to f16/bf16
 * round to nearest even and agree bit for bit with base/half.h on every path.
 *
 * One exception, the native 16-bit dot products (cpu_matmul_act_dtype says when): for bf16 weights on
 * CPUs with AVX-512 BF16 (matmul_avx512bf16.c, n >= CPU_AVX512BF16_MIN_N) or ARMv8.6 BF16
 * (matmul_neon_bf16.c, BFMMLA, n >= CPU_NEON_DOT16_MIN_N), and f16 weights on arm64 CPUs with FHM
 * (matmul_neon_fhm.c, FMLAL), the activations are rounded to the weights' dtype first, as a bf16/f16
 * model computes them in Hugging Face and vLLM; products and sums stay f32. The result then differs
 * from the f32 path by at most the rounding of x: |dy| <= u * sum_k |x_k w_k| (u = 2^-8 for bf16,
 * 2^-11 for f16) plus f32 rounding. f32 weights never take these paths.
 *
 * Preconditions (not checked): counts >= 0, ldx >= K, ldw >= K, ldy >= M,
 * outputs do not overlap inputs. Zero-sized calls (n, M or K = 0) are fine:
 * with K = 0, y = bias (or 0). */
#ifndef VLLMC_BACKEND_CPU_KERNELS_H
#define VLLMC_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "base/half.h"
#include "base/threadpool.h"

/* ---- multi-threaded ---- */

/* y[n, M] = x[n, K] @ w[M, K]^T (+ bias[M]); x/y f32 with row strides ldx/ldy
 * (elements), w f32/f16/bf16 with row stride ldw; bias may be NULL. Runs on all
 * threads of pool (pool NULL: on the calling thread only); each weight byte is
 * read by exactly one thread (the output rows are split in contiguous chunks).
 * Small n (decode) streams each weight row once for all tokens; larger n
 * (prefill, n >= CPU_GEMM_MIN_N) converts 16-row weight panels to f32 and runs
 * a register-blocked 6x16 kernel over them. */
void cpu_matmul(tp_pool *pool, const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                int64_t ldw, int M, const float *bias, float *y, int64_t ldy);

/* One weight of cpu_matmul_multi: y[n, M] = x @ w[M, K]^T (+ bias). */
typedef struct {
    const void *w;
    be_dtype wt;
    int64_t ldw;       /* elements */
    int M;
    const float *bias; /* [M] or NULL */
    float *y;
    int64_t ldy;
} cpu_mm_weight;
enum { CPU_MM_MAX_PARTS = 8 };

/* Several matmuls that share x (q/k/v, gate/up) in one parallel task: the
 * threads split the rows of all weights together, so the small ones do not
 * each pay a hand-off and a ramp-up. Same numerics as cpu_matmul per weight. */
void cpu_matmul_multi(tp_pool *pool, const float *x, int64_t ldx, int n, int K, int nw, const cpu_mm_weight *ws);

/* One group of a grouped matmul: w.y[n, M] = x[n, K] @ w.w^T (+ bias), each group with its own rows. */
typedef struct {
    const float *x;
    int64_t ldx;
    int n;
    cpu_mm_weight w;
} cpu_mm_group;
enum { CPU_MM_MAX_GROUPS = 64 };

/* Mixture of experts: every group's matmul in one parallel task (CPU_MM_MAX_GROUPS at a time), the
 * threads splitting all groups' weight rows by cost (rows x (tokens + 4)), so each expert's weights
 * are read once, by one thread per row range. Same numerics as cpu_matmul per group. */
void cpu_matmul_grouped(tp_pool *pool, int K, int ng, const cpu_mm_group *g);

/* STREAM-style triad a[i] = b[i] + s*c[i] over arrays of `bytes_per_array`
 * bytes each on all pool threads; best of `reps`; returns GB/s counting 3
 * arrays per pass (2 reads + 1 write), as STREAM does. 0 if allocation fails. */
double cpu_measure_triad_gbs(tp_pool *pool, size_t bytes_per_array, int reps);
/* Peak f32 FMA throughput on all threads, GFLOP/s (2 flops per FMA lane). */
double cpu_measure_peak_gflops(tp_pool *pool);
/* Peak bf16 dot-product throughput on all threads, GFLOP/s (2 flops per multiply-add): VDPBF16PS
 * on x86 with AVX-512 BF16, BFMMLA on arm64 with BF16; 0 where the CPU has neither. */
double cpu_measure_peak_bf16_gflops(tp_pool *pool);
/* 1 where the CPU has that bf16 dot product (cpu_have_avx512bf16, cpu_have_neon_bf16). */
int cpu_have_bf16_dot(void);

/* ---- single-threaded building blocks ---- */

/* sum_i a[i] * b[i]; a f32, b f32/f16/bf16. */
float cpu_dot(const float *a, const void *b, be_dtype bt, int n);
/* y[i] += alpha * x[i]; x f32/f16/bf16. */
void cpu_axpy(float *y, float alpha, const void *x, be_dtype xt, int n);
/* dst[i] = f32(src[i]); src f32/f16/bf16 (f32: a copy). */
void cpu_to_f32(float *dst, const void *src, be_dtype st, int n);
/* dst[i] = src[i] rounded to nearest even in dt (f32: a copy); NaN stays NaN
 * with the same bits as vc_f32_to_f16 / vc_f32_to_bf16. */
void cpu_from_f32(void *dst, be_dtype dt, const float *src, int n);

/* ---- dispatch ---- */

/* Which kernels run: "avx2+avx512" (AVX-512 for 8 <= n < CPU_GEMM_MIN_N), "avx2", "neon" or "scalar". */
const char *cpu_kernels_isa(void);
/* Tests: nonzero forces the portable C kernels, 0 restores detection. Call it
 * only while no kernel is running. */
void cpu_kernels_force_scalar(int on);
/* Tests: nonzero keeps the AVX-512 kernels off (the AVX2 ones run; AVX-512 BF16 too), 0 restores. */
void cpu_kernels_no_avx512(int on);
/* The native 16-bit dot-product kernels this CPU runs now: "amx+avx512bf16" (AMX tiles for the GEMM),
 * "avx512bf16", "bfmmla+fhm", "bfmmla", "fhm" or "none". */
const char *cpu_kernels_dot16(void);
/* Tests: nonzero keeps them off (the f32-activation kernels run), 0 restores. Call it only while no
 * kernel is running. */
void cpu_kernels_no_dot16(int on);
/* The dtype the activations of an n-token matmul with wt weights are rounded to on this CPU now:
 * wt where a native 16-bit dot-product kernel runs (see the top), else BE_F32 (not rounded). */
be_dtype cpu_matmul_act_dtype(int n, be_dtype wt);

/* ---- internal: the AVX2 entry points (matmul_avx2.c, measure_avx2.c) ----
 * Only called after a run-time check for avx2, fma and f16c. `w` points at the
 * first row to compute and `ldwb` is its row stride in bytes; bias and y are
 * already offset to that row. */
/* n from which the packed GEMM kernel is used: below it the dot-product tiles
 * (4 rows x 3 tokens) are as fast or faster on Zen 4 (~150-170 GFLOP/s from
 * n = 16 on), since packing is amortised over fewer tokens. */
enum { CPU_GEMM_MIN_N = 64 };
/* n from which bf16 weights take the AVX-512 BF16 kernels (matmul_avx512bf16.c): its row tiles from
 * CPU_AVX512BF16_MIN_N, its packed GEMM from CPU_AVX512BF16_GEMM_MIN_N. One Zen 4 core, 4864 x 896 and
 * 896 x 4864 bf16 matrices streamed from memory (2026-12-07), GFLOP/s of the AVX-512 f32 tiles / the bf16
 * tiles / the bf16 GEMM: n = 4: 50-62 / 64 / 31; 8: 81-84 / 92 / 54; 16: 93-98 / 121-141 / 92-102;
 * 32: 102 / 159 / 127; 48: 103-104 / 143-162 / 138-146; 64: 104 / 137-141 / 157-165. Below 8 tokens
 * (decode of a few sequences, bandwidth bound) the f32 kernels stay: f32 activations. */
enum { CPU_AVX512BF16_MIN_N = 8, CPU_AVX512BF16_GEMM_MIN_N = 64 };
void cpu_avx2_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy);
void cpu_avx2_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy);
float cpu_avx2_dot(const float *a, const void *b, be_dtype bt, int n);
/* matmul_avx512.c (AVX-512 F + BW, checked at run time): the same contract as
 * cpu_avx2_gemv_rows, used for 8 <= n < CPU_GEMM_MIN_N. */
void cpu_avx512_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                          int rows, const float *bias, float *y, int64_t ldy);
/* 1 when the CPU and OS support AVX-512 F and BW (zmm state saved). */
int cpu_have_avx512(void);
/* matmul_avx512bf16.c (AVX-512 F + BW + BF16, checked at run time): the prefill GEMM for bf16 weights
 * (wt must be BE_BF16), the same contract as cpu_avx2_gemm_rows but for the rounding of x to bf16, used
 * from CPU_AVX512BF16_GEMM_MIN_N tokens; below it (from CPU_AVX512BF16_MIN_N) cpu_avx512bf16_gemv_rows,
 * the same contract with 4-row x 6-token tiles over the weight rows as they lie (no packing). */
void cpu_avx512bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                              int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy);
/* The same contract as cpu_avx512bf16_gemm_rows with the tokens in the vector lanes and the weights read
 * as they lie (no packing; matmul_avx512bf16.c): matmul.c's choice for weights of more than 128 rows. */
void cpu_avx512bf16_gemm_t_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                                int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy);
void cpu_avx512bf16_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                              int rows, const float *bias, float *y, int64_t ldy);
/* 1 when cpu_have_avx512() and CPUID.(EAX=7,ECX=1):EAX bit 5 (AVX512_BF16). */
int cpu_have_avx512bf16(void);
/* The same contract as cpu_avx512bf16_gemm_rows with AMX tiles (TDPBF16PS) for 16- and 32-token blocks
 * of whole panels (matmul_avx512bf16.c); called only after cpu_have_amx(). */
void cpu_amx_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb, int rows,
                       const float *bias, float *y, int64_t ldy);
/* 1 when cpu_have_avx512bf16(), CPUID.(7,0):EDX bits 24 and 22 (AMX-TILE, AMX-BF16), the OS enables the
 * tile state (XCR0 bits 17, 18) and Linux grants this process its use (arch_prctl ARCH_REQ_XCOMP_PERM);
 * VLLMC_CPU_NO_AMX=1 keeps it 0 (for measurements against the AVX-512 BF16 GEMM). */
int cpu_have_amx(void);
/* AMX's 64-byte tile configuration (LDTILECFG): palette, then the bytes per row and the rows of each tile. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} cpu_amx_cfg;
/* Palette 1 with tiles 0-7 of 16 rows x 64 bytes, the only shape the AMX code uses. */
static inline void cpu_amx_cfg_16x64(cpu_amx_cfg *c) {
    memset(c, 0, sizeof *c);
    c->palette = 1;
    for (int i = 0; i < 8; i++) c->colsb[i] = 64, c->rows[i] = 16;
}
/* measure_avx512bf16.c: `iters` rounds of 12 independent VDPBF16PS chains (32 multiply-adds each);
 * cpu_amx_dot_loop: `iters` rounds of 4 TDPBF16PS on independent 16 x 16 accumulators. */
float cpu_avx512bf16_dot_loop(long iters);
float cpu_amx_dot_loop(long iters);
void cpu_avx2_axpy(float *y, float alpha, const void *x, be_dtype xt, int n);
void cpu_avx2_to_f32(float *dst, const void *src, be_dtype st, int n);
void cpu_avx2_from_f32(void *dst, be_dtype dt, const float *src, int n);
void cpu_avx2_triad(float *a, const float *b, const float *c, float s, size_t n);
/* Runs `iters` rounds of 12 independent 8-lane FMA chains; returns a value
 * that depends on all of them (keeps the work alive). */
float cpu_avx2_fma_loop(long iters);
/* Paged-attention inner loops for G (<= CPU_ATTN_MAX_GROUP) query heads sharing
 * one KV head, over `count` consecutive cache rows (stride in elements):
 *   qk: scores[g*lds + j] = scale * dot(q[g*hd ..], k[j*kstride ..])
 *   pv: o[g*hd + c] += sum_j p[g*lds + j] * v[j*vstride + c]            */
enum { CPU_ATTN_MAX_GROUP = 8 };
void cpu_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count, float scale,
                 float *scores, int64_t lds);
void cpu_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt, int64_t vstride,
                 int count);
void cpu_avx2_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds);
void cpu_avx2_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count);
/* The same on NEON (attn_neon.c, aarch64 only). */
void cpu_neon_attn_qk(const float *q, int G, int hd, const void *k, be_dtype kt, int64_t kstride, int count,
                      float scale, float *scores, int64_t lds);
void cpu_neon_attn_pv(float *o, int G, int hd, const float *p, int64_t lds, const void *v, be_dtype vt,
                      int64_t vstride, int count);
/* ---- internal: the NEON entry points (matmul_neon.c, aarch64 only) ----
 * The same contracts as the AVX2 ones above; cpu_neon_gemv_rows serves every n of f32 weights, and
 * of f16/bf16 weights where the CPU lacks FHM/BF16 or n < CPU_NEON_DOT16_MIN_N. */
/* n from which the native 16-bit kernels below run on arm64: a guess (not measured on any arm64
 * chip): the BFMMLA tile is 8 tokens, and from 16 tokens on the packing is a small part. */
enum { CPU_NEON_DOT16_MIN_N = 16 };
/* matmul_neon_bf16.c (-march=armv8.6-a+bf16; only after cpu_have_neon_bf16()): bf16 weights, BFMMLA. */
void cpu_neon_bf16_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                             int rows, const float *bias, float *y, int64_t ldy);
/* matmul_neon_fhm.c (-march=armv8.2-a+fp16+fp16fml; only after cpu_have_neon_fhm()): f16 weights, FMLAL. */
void cpu_neon_fhm_gemm_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                            int rows, const float *bias, float *y, int64_t ldy);
/* measure_neon_bf16.c: `iters` rounds of 12 independent BFMMLA chains (16 multiply-adds each). */
float cpu_neon_bfmmla_loop(long iters);
/* 1 when the CPU has ARMv8.6 BF16 (Linux HWCAP2_BF16, macOS hw.optional.arm.FEAT_BF16); 0 elsewhere. */
int cpu_have_neon_bf16(void);
/* 1 when the CPU has FHM (Linux HWCAP_ASIMDFHM, macOS hw.optional.arm.FEAT_FHM); 0 elsewhere. */
int cpu_have_neon_fhm(void);
void cpu_neon_gemv_rows(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                        int rows, const float *bias, float *y, int64_t ldy);
float cpu_neon_dot(const float *a, const void *b, be_dtype bt, int n);
void cpu_neon_axpy(float *y, float alpha, const void *x, be_dtype xt, int n);
void cpu_neon_to_f32(float *dst, const void *src, be_dtype st, int n);
void cpu_neon_from_f32(void *dst, be_dtype dt, const float *src, int n);
/* Element i of a f32/f16/bf16 row, as f32. */
static inline float cpu_elem_f32(be_dtype dt, const void *row, int64_t i) {
    uint16_t h;
    if (dt == BE_F32) {
        float f;
        __builtin_memcpy(&f, (const char *)row + 4 * i, 4);
        return f;
    }
    __builtin_memcpy(&h, (const char *)row + 2 * i, 2);
    return dt == BE_F16 ? vc_f16_to_f32(h) : vc_bf16_to_f32(h);
}

/* ---- MXFP4 weights (mxfp4.c) ---- */
/* A row kernel over f32 weights (the ISA's gemv or gemm rows, or the portable one). */
typedef void (*cpu_f32_rows_fn)(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                                int64_t ldwb, int rows, const float *bias, float *y, int64_t ldy);
/* f32 per thread for the decoded panel (256 KiB of stack); K <= CPU_MXFP4_MAX_K keeps one row in it. */
enum { CPU_MXFP4_PANEL_FLOATS = 16 * 4096, CPU_MXFP4_MAX_K = CPU_MXFP4_PANEL_FLOATS };
/* dst[0..K) = the K elements of one MXFP4 row (K a multiple of 32), exactly: portable C, AVX2
 * (mxfp4_avx2.c, after the run-time check; zero codes come out +0 there) and NEON (mxfp4_neon.c,
 * aarch64 only; bit for bit the portable result, -0 included). */
typedef void (*cpu_mxfp4_decode_fn)(float *dst, const uint8_t *src, int K);
void cpu_mxfp4_decode_row(float *dst, const uint8_t *src, int K);
void cpu_avx2_mxfp4_decode_row(float *dst, const uint8_t *src, int K);
void cpu_neon_mxfp4_decode_row(float *dst, const uint8_t *src, int K);
/* One token (decode): y[0..rows) = x . row + bias with the decode fused into the dot (nothing stored).
 * AVX2 and NEON (aarch64) only; several tokens take the decoded panel instead. */
void cpu_avx2_mxfp4_gemv1(const float *x, int K, const void *w, int64_t ldwb, int rows, const float *bias, float *y);
void cpu_neon_mxfp4_gemv1(const float *x, int K, const void *w, int64_t ldwb, int rows, const float *bias, float *y);
/* An e8m0 block scale, 2^(e - 127), as torch.ldexp gives it in f32, from its bits (no libm call per
 * block): e = 0 is the subnormal 2^-127, e = 255 overflows to inf. */
static inline float cpu_e8m0_scale(uint8_t e) {
    uint32_t bits = e == 255 ? 0x7f800000u : e ? (uint32_t)e << 23 : 0x00400000u;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
}
/* The rows kernel contract for MXFP4 weights (w at the first row, ldwb bytes per row): panels of up to
 * `panel` rows (fewer when K is large) decoded to f32 with dec, then kern over each panel. */
void cpu_mxfp4_rows(const float *x, int64_t ldx, int n, int K, const void *w, int64_t ldwb, int rows,
                    const float *bias, float *y, int64_t ldy, int panel, cpu_mxfp4_decode_fn dec, cpu_f32_rows_fn kern);

/* Nonzero when the CPU and OS support the AVX2 kernels (cached). */
int cpu_have_avx2(void);

#endif
