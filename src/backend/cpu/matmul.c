/* matmul: kernel dispatch, threading and the portable C kernels (see
 * kernels.h). The AVX2 kernels live in matmul_avx2.c, the NEON ones in
 * matmul_neon.c. */
#include "backend/cpu/kernels.h"

#include "base/half.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDFHM
#define HWCAP_ASIMDFHM (1UL << 23)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1UL << 14)
#endif
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#if defined(__aarch64__) && defined(__ARM_NEON)
#define CPU_HAVE_NEON 1
#else
#define CPU_HAVE_NEON 0
#endif

enum { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_NEON = 2 };

static atomic_int g_force_scalar, g_no_avx512, g_no_dot16;

int cpu_have_avx2(void) {
#if defined(__x86_64__)
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        /* cpuid directly: clang's __builtin_cpu_supports() does not know "f16c" */
        unsigned a, b, c, d;
        v = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) && (c & bit_AVX) && (c & bit_FMA) &&
            (c & bit_F16C)) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            int ymm_saved = (lo & 6u) == 6u; /* the OS saves SSE and AVX state */
            if (ymm_saved && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2)) v = 1;
        }
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

int cpu_have_avx512(void) {
#if defined(__x86_64__)
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        unsigned a, b, c, d;
        v = 0;
        if (cpu_have_avx2() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX512F) && (b & bit_AVX512BW)) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            v = (lo & 0xE6u) == 0xE6u; /* the OS saves opmask and all zmm state */
        }
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

int cpu_have_avx512bf16(void) {
#if defined(__x86_64__)
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        unsigned a, b, c, d;
        /* leaf 7 subleaf 1 exists when subleaf 0's EAX (the highest subleaf) is >= 1; EAX bit 5: AVX512_BF16 */
        v = cpu_have_avx512() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && a >= 1 &&
            __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

int cpu_have_amx(void) {
#if defined(__x86_64__) && defined(__linux__)
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        unsigned a, b, c, d;
        const char *off = getenv("VLLMC_CPU_NO_AMX");
        v = 0;
        if (!(off && !strcmp(off, "1")) && cpu_have_avx512bf16() && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
            (d & (1u << 24)) && (d & (1u << 22))) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            /* XTILECFG and XTILEDATA enabled; then this process asks for XTILEDATA (feature 18) */
            v = (lo & (3u << 17)) == (3u << 17) && syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0;
        }
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
#else
    return 0;
#endif
}

#if defined(__x86_64__)
/* The prefill GEMM with the tokens in the lanes (no weight packing) where it measured faster than the packed
 * one on Zen 4 (docs/PERFORMANCE.md, sessions 10-11): a call's x fits one 1,024-column K block and its rows
 * outnumber its tokens 16 times (Qwen2.5-0.5B's gate/up: +9% per shape), never under AMX. Elsewhere it lost
 * (Llama-3.2-1B's shapes, K 2,048 and 8,192: -20 to -28%; 2,048 x 896: -14%). VLLMC_CPU_GEMM_T=0 never,
 * =1 for every call of more than 128 rows (session 10's rule), for A/B runs. */
static int use_gemm_t(int rows, int K, int n) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("VLLMC_CPU_GEMM_T");
        v = e && !strcmp(e, "0") ? 0 : e && !strcmp(e, "1") ? 1 : 2;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    if (v == 0 || cpu_have_amx()) return 0;
    return v == 1 ? rows > 128 : K <= 1024 && rows >= 16 * n;
}
#endif

#if defined(__aarch64__) && defined(__APPLE__)
static int apple_feature(const char *name) {
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname(name, &v, &len, NULL, 0) == 0 && v != 0;
}
#endif

/* which: 0 BF16 (BFMMLA, BFDOT), 1 FHM (FMLAL); cached */
static int arm_feature(int which) {
#if defined(__aarch64__) && (defined(__linux__) || defined(__APPLE__))
    static atomic_int cached[2] = {-1, -1};
    int v = atomic_load_explicit(&cached[which], memory_order_relaxed);
    if (v < 0) {
#if defined(__linux__)
        v = which == 0 ? (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0 : (getauxval(AT_HWCAP) & HWCAP_ASIMDFHM) != 0;
#else
        v = apple_feature(which == 0 ? "hw.optional.arm.FEAT_BF16" : "hw.optional.arm.FEAT_FHM");
#endif
        atomic_store_explicit(&cached[which], v, memory_order_relaxed);
    }
    return v;
#else
    (void)which;
    return 0;
#endif
}

int cpu_have_neon_bf16(void) { return arm_feature(0); }
int cpu_have_neon_fhm(void) { return arm_feature(1); }

/* The AVX-512 decode kernel, unless a test turned it off. */
static int use_avx512(void) {
    return !atomic_load_explicit(&g_no_avx512, memory_order_relaxed) && cpu_have_avx512();
}

static int isa(void) {
    if (atomic_load_explicit(&g_force_scalar, memory_order_relaxed)) return ISA_SCALAR;
    if (CPU_HAVE_NEON) return ISA_NEON;
    return cpu_have_avx2() ? ISA_AVX2 : ISA_SCALAR;
}

/* Whether an n-token matmul of wt weights runs a native 16-bit dot-product kernel (isa as isa()):
 * AVX-512 BF16 for bf16 from CPU_AVX512BF16_MIN_N tokens; BFMMLA for bf16, FMLAL for f16 from
 * CPU_NEON_DOT16_MIN_N tokens. Never for f32 weights: an f32 model keeps f32 activations. */
static int use_dot16(int i, int n, be_dtype wt) {
    if (atomic_load_explicit(&g_no_dot16, memory_order_relaxed)) return 0;
    if (i == ISA_AVX2) return wt == BE_BF16 && n >= CPU_AVX512BF16_MIN_N && use_avx512() && cpu_have_avx512bf16();
    if (i == ISA_NEON && n >= CPU_NEON_DOT16_MIN_N)
        return wt == BE_BF16 ? cpu_have_neon_bf16() : wt == BE_F16 && cpu_have_neon_fhm();
    return 0;
}

be_dtype cpu_matmul_act_dtype(int n, be_dtype wt) { return use_dot16(isa(), n, wt) ? wt : BE_F32; }

const char *cpu_kernels_dot16(void) {
    if (atomic_load_explicit(&g_no_dot16, memory_order_relaxed)) return "none";
    switch (isa()) {
    case ISA_AVX2:
        if (!use_avx512() || !cpu_have_avx512bf16()) return "none";
        return cpu_have_amx() ? "amx+avx512bf16" : "avx512bf16";
    case ISA_NEON:
        if (cpu_have_neon_bf16()) return cpu_have_neon_fhm() ? "bfmmla+fhm" : "bfmmla";
        return cpu_have_neon_fhm() ? "fhm" : "none";
    default: return "none";
    }
}

void cpu_kernels_no_dot16(int on) { atomic_store(&g_no_dot16, on != 0); }

const char *cpu_kernels_isa(void) {
    static const char *const names[] = {"scalar", "avx2", "neon"};
    int i = isa();
    return i == ISA_AVX2 && use_avx512() ? "avx2+avx512" : names[i];
}

void cpu_kernels_force_scalar(int on) { atomic_store(&g_force_scalar, on != 0); }

void cpu_kernels_no_avx512(int on) { atomic_store(&g_no_avx512, on != 0); }

static inline float ld1(be_dtype dt, const void *row, int64_t i) {
    if (dt == BE_F16) return vc_f16_to_f32(((const uint16_t *)row)[i]);
    if (dt == BE_BF16) return vc_bf16_to_f32(((const uint16_t *)row)[i]);
    return ((const float *)row)[i];
}

/* ---- portable C ---- */

static float dot_scalar(const float *a, const void *b, be_dtype bt, int n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * ld1(bt, b, i);
        s1 += a[i + 1] * ld1(bt, b, i + 1);
        s2 += a[i + 2] * ld1(bt, b, i + 2);
        s3 += a[i + 3] * ld1(bt, b, i + 3);
    }
    for (; i < n; i++) s0 += a[i] * ld1(bt, b, i);
    return (s0 + s1) + (s2 + s3);
}

static void gemv_rows_scalar(const float *x, int64_t ldx, int n, int K, const char *w, be_dtype wt, int64_t ldwb,
                             int rows, const float *bias, float *y, int64_t ldy) {
    for (int r = 0; r < rows; r++)
        for (int t = 0; t < n; t++) {
            float s = dot_scalar(x + (int64_t)t * ldx, w + (int64_t)r * ldwb, wt, K);
            y[(int64_t)t * ldy + r] = bias ? s + bias[r] : s;
        }
}

/* ---- threading ---- */

/* One weight of a (multi-, grouped) matmul: y = x @ w^T (+ bias) over M rows, for n tokens. */
typedef struct {
    const float *x;
    int64_t ldx;
    int n;
    int gemm, avx512, dot16; /* dot16: the native bf16/f16 dot-product kernel (use_dot16) */
    int64_t align; /* rows per unit: whole panels (16 rows for gemm, 32/8 for dot16, 4 for gemv) */
    const char *w;
    be_dtype wt;
    int64_t ldwb; /* bytes */
    int M;
    const float *bias;
    float *y;
    int64_t ldy;
    int64_t unit0, units; /* this part's units in the combined row space */
    int64_t cost0, ucost; /* the cost before this part and of each of its units */
} mm_part;

typedef struct {
    int K, isa;
    int nparts;
    const mm_part *parts;
    int64_t units, cost; /* totals over parts */
    int64_t chunk;       /* > 0: threads take chunks of this cost in turn (mm_run), 0: one range each */
    atomic_llong next;   /* the next chunk to take */
} mm_task;

static void gemv_rows_portable(const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt, int64_t ldwb,
                               int rows, const float *bias, float *y, int64_t ldy) {
    gemv_rows_scalar(x, ldx, n, K, w, wt, ldwb, rows, bias, y, ldy);
}

/* The f32 rows kernel that this part would run: MXFP4 panels are decoded and handed to it. */
static cpu_f32_rows_fn mm_f32_kernel(const mm_task *t, const mm_part *p) {
    switch (t->isa) {
#if defined(__x86_64__)
    case ISA_AVX2: return p->gemm ? cpu_avx2_gemm_rows : p->avx512 ? cpu_avx512_gemv_rows : cpu_avx2_gemv_rows;
#endif
#if CPU_HAVE_NEON
    case ISA_NEON: return cpu_neon_gemv_rows;
#endif
    default: (void)p; return gemv_rows_portable;
    }
}

static void mm_rows(const mm_task *t, const mm_part *p, int64_t r0, int64_t r1) {
    int rows = (int)(r1 - r0);
    const char *w = p->w + r0 * p->ldwb;
    const float *bias = p->bias ? p->bias + r0 : NULL;
    float *y = p->y + r0;
    if (p->dot16) {
#if defined(__x86_64__)
        if (p->n >= CPU_AVX512BF16_GEMM_MIN_N && use_gemm_t(rows, t->K, p->n))
            cpu_avx512bf16_gemm_t_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
        else if (p->n >= CPU_AVX512BF16_GEMM_MIN_N)
            (cpu_have_amx() ? cpu_amx_gemm_rows : cpu_avx512bf16_gemm_rows)(p->x, p->ldx, p->n, t->K, w, p->wt,
                                                                            p->ldwb, rows, bias, y, p->ldy);
        else
            cpu_avx512bf16_gemv_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
#elif CPU_HAVE_NEON
        if (p->wt == BE_BF16) cpu_neon_bf16_gemm_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
        else cpu_neon_fhm_gemm_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
#endif
        return;
    }
    if (p->wt == BE_MXFP4) {
        cpu_mxfp4_decode_fn dec = cpu_mxfp4_decode_row;
#if defined(__x86_64__)
        if (t->isa == ISA_AVX2 && p->n == 1) {
            cpu_avx2_mxfp4_gemv1(p->x, t->K, w, p->ldwb, rows, bias, y);
            return;
        }
        if (t->isa == ISA_AVX2) dec = cpu_avx2_mxfp4_decode_row;
#endif
#if CPU_HAVE_NEON
        if (t->isa == ISA_NEON && p->n == 1) {
            cpu_neon_mxfp4_gemv1(p->x, t->K, w, p->ldwb, rows, bias, y);
            return;
        }
        if (t->isa == ISA_NEON) dec = cpu_neon_mxfp4_decode_row;
#endif
        cpu_mxfp4_rows(p->x, p->ldx, p->n, t->K, w, p->ldwb, rows, bias, y, p->ldy, (int)p->align, dec,
                       mm_f32_kernel(t, p));
        return;
    }
    switch (t->isa) {
#if defined(__x86_64__)
    case ISA_AVX2:
        if (p->gemm) cpu_avx2_gemm_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
        else if (p->avx512) cpu_avx512_gemv_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
        else cpu_avx2_gemv_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy);
        break;
#endif
#if CPU_HAVE_NEON
    case ISA_NEON: cpu_neon_gemv_rows(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy); break;
#endif
    default: gemv_rows_scalar(p->x, p->ldx, p->n, t->K, w, p->wt, p->ldwb, rows, bias, y, p->ldy); break;
    }
}

/* The first unit whose cost starts at or after `c` (all of them when c reaches the total). */
static int64_t mm_unit_at(const mm_task *t, int64_t c) {
    for (int i = 0; i < t->nparts; i++) {
        const mm_part *p = &t->parts[i];
        if (c <= p->cost0 + p->units * p->ucost) return p->unit0 + (c - p->cost0 + p->ucost - 1) / p->ucost;
    }
    return t->units;
}

/* Units [u0, u1) of the combined row space of all parts. A thread takes contiguous ranges of it, split by
 * cost (rows x tokens, plus the weight stream), so every weight byte is read by one thread and several small
 * matrices (or experts with different token counts) cost one hand-off instead of one each. */
static void mm_units(const mm_task *t, int64_t u0, int64_t u1) {
    for (int i = 0; i < t->nparts && u0 < u1; i++) {
        const mm_part *p = &t->parts[i];
        int64_t a = u0 > p->unit0 ? u0 : p->unit0, b = u1 < p->unit0 + p->units ? u1 : p->unit0 + p->units;
        if (a >= b) continue;
        int64_t r0 = (a - p->unit0) * p->align, r1 = (b - p->unit0) * p->align;
        if (r1 > p->M) r1 = p->M;
        mm_rows(t, p, r0, r1);
    }
}

/* Decode-sized calls: one range per thread. Calls with 16 or more tokens go in chunks that the threads take
 * in turn (an atomic counter), so a thread slowed by its core's other work (a VM's vCPU, interrupts) holds
 * the other less at the end: on the 2-core dev VM the caller waited ~11% of a Llama-3.2-1B prefill for the
 * worker under the static split. Each chunk is still whole rows read by one thread, computed as before
 * (same results). */
static void mm_run(void *arg, int ith, int nth) {
    mm_task *t = arg;
    if (t->chunk <= 0) {
        mm_units(t, mm_unit_at(t, t->cost * ith / nth), mm_unit_at(t, t->cost * (ith + 1) / nth));
        return;
    }
    for (;;) {
        int64_t c0 = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed) * t->chunk;
        if (c0 >= t->cost) return;
        mm_units(t, mm_unit_at(t, c0), mm_unit_at(t, c0 + t->chunk < t->cost ? c0 + t->chunk : t->cost));
    }
}

static void fill_bias(int n, const cpu_mm_weight *w) {
    for (int t = 0; t < n; t++)
        for (int r = 0; r < w->M; r++) w->y[(int64_t)t * w->ldy + r] = w->bias ? w->bias[r] : 0.0f;
}

/* VLLMC_CPU_STATIC_SPLIT=1: one contiguous range per thread for every call (the split before chunks; A/B) */
static int static_split(void) {
    static atomic_int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        const char *e = getenv("VLLMC_CPU_STATIC_SPLIT");
        v = e && !strcmp(e, "1");
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

/* Add group g's weight to the task (the kernel choice follows its own token count). */
static void mm_add(mm_task *t, mm_part *parts, const cpu_mm_group *g) {
    const cpu_mm_weight *w = &g->w;
    if (w->M <= 0 || g->n <= 0) return;
    mm_part *p = &parts[t->nparts++];
    p->x = g->x, p->ldx = g->ldx, p->n = g->n;
    p->dot16 = use_dot16(t->isa, g->n, w->wt);
    p->gemm = !p->dot16 && t->isa == ISA_AVX2 && g->n >= CPU_GEMM_MIN_N;
    /* n < 8 is memory bound: the AVX2 tiles already stream the weights at the triad rate */
    p->avx512 = t->isa == ISA_AVX2 && !p->gemm && !p->dot16 && g->n >= 8 && use_avx512();
    p->align = p->dot16 ? (t->isa == ISA_AVX2 ? 32 : 8) : p->gemm ? 16 : 4;
    p->w = (const char *)w->w, p->wt = w->wt, p->ldwb = (int64_t)be_dtype_bytes(w->wt, w->ldw);
    p->M = w->M, p->bias = w->bias, p->y = w->y, p->ldy = w->ldy;
    p->unit0 = t->units, p->units = (w->M + p->align - 1) / p->align;
    p->cost0 = t->cost, p->ucost = p->align * (g->n + 4);
    t->units += p->units;
    t->cost += p->units * p->ucost;
}

void cpu_matmul_grouped(tp_pool *pool, int K, int ng, const cpu_mm_group *g) {
    if (ng <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < ng; i++) fill_bias(g[i].n, &g[i].w);
        return;
    }
    mm_part parts[CPU_MM_MAX_GROUPS];
    for (int i0 = 0; i0 < ng; i0 += CPU_MM_MAX_GROUPS) { /* more than fit in one task: run in batches */
        mm_task t = {.K = K, .isa = isa(), .parts = parts};
        for (int i = i0; i < ng && i < i0 + CPU_MM_MAX_GROUPS; i++) mm_add(&t, parts, &g[i]);
        if (t.units == 0) continue;
        int nth = pool ? tp_nthreads(pool) : 1, big = 0;
        for (int i = 0; i < t.nparts; i++) big |= parts[i].n >= 16;
        atomic_init(&t.next, 0);
        /* two chunks per thread: more would repeat the GEMM's per-call activation conversion (measured: eight
         * per thread lost 5-7% of Llama-3.2-1B's pp128, two gained ~2% over the static split) */
        t.chunk = nth > 1 && big && !static_split() ? (t.cost + nth * 2 - 1) / (nth * 2) : 0;
        if (nth > 1) tp_run(pool, mm_run, &t);
        else mm_run(&t, 0, 1);
    }
}

void cpu_matmul_multi(tp_pool *pool, const float *x, int64_t ldx, int n, int K, int nw, const cpu_mm_weight *ws) {
    if (n <= 0 || nw <= 0) return;
    cpu_mm_group g[CPU_MM_MAX_PARTS];
    for (int i0 = 0; i0 < nw; i0 += CPU_MM_MAX_PARTS) {
        int k = nw - i0 < CPU_MM_MAX_PARTS ? nw - i0 : CPU_MM_MAX_PARTS;
        for (int i = 0; i < k; i++) g[i] = (cpu_mm_group){x, ldx, n, ws[i0 + i]};
        cpu_matmul_grouped(pool, K, k, g);
    }
}

void cpu_matmul(tp_pool *pool, const float *x, int64_t ldx, int n, int K, const void *w, be_dtype wt,
                int64_t ldw, int M, const float *bias, float *y, int64_t ldy) {
    cpu_mm_weight one = {w, wt, ldw, M, bias, y, ldy};
    cpu_matmul_multi(pool, x, ldx, n, K, 1, &one);
}

/* ---- single-threaded helpers ---- */

float cpu_dot(const float *a, const void *b, be_dtype bt, int n) {
    switch (isa()) {
#if defined(__x86_64__)
    case ISA_AVX2: return cpu_avx2_dot(a, b, bt, n);
#endif
#if CPU_HAVE_NEON
    case ISA_NEON: return cpu_neon_dot(a, b, bt, n);
#endif
    default: return dot_scalar(a, b, bt, n);
    }
}

void cpu_axpy(float *y, float alpha, const void *x, be_dtype xt, int n) {
    switch (isa()) {
#if defined(__x86_64__)
    case ISA_AVX2: cpu_avx2_axpy(y, alpha, x, xt, n); return;
#endif
#if CPU_HAVE_NEON
    case ISA_NEON: cpu_neon_axpy(y, alpha, x, xt, n); return;
#endif
    default:
        for (int i = 0; i < n; i++) y[i] += alpha * ld1(xt, x, i);
    }
}

void cpu_to_f32(float *dst, const void *src, be_dtype st, int n) {
    if (n <= 0) return;
#if defined(__x86_64__)
    if (isa() == ISA_AVX2) {
        cpu_avx2_to_f32(dst, src, st, n);
        return;
    }
#endif
#if CPU_HAVE_NEON
    if (isa() == ISA_NEON) {
        cpu_neon_to_f32(dst, src, st, n);
        return;
    }
#endif
    if (st == BE_F32) memcpy(dst, src, sizeof(float) * (size_t)n);
    else
        for (int i = 0; i < n; i++) dst[i] = ld1(st, src, i);
}

void cpu_from_f32(void *dst, be_dtype dt, const float *src, int n) {
    if (n <= 0) return;
#if defined(__x86_64__)
    if (isa() == ISA_AVX2) {
        cpu_avx2_from_f32(dst, dt, src, n);
        return;
    }
#endif
#if CPU_HAVE_NEON
    if (isa() == ISA_NEON) {
        cpu_neon_from_f32(dst, dt, src, n);
        return;
    }
#endif
    uint16_t *d = dst;
    if (dt == BE_F16)
        for (int i = 0; i < n; i++) d[i] = vc_f32_to_f16(src[i]);
    else if (dt == BE_BF16)
        for (int i = 0; i < n; i++) d[i] = vc_f32_to_bf16(src[i]);
    else memcpy(dst, src, sizeof(float) * (size_t)n);
}
