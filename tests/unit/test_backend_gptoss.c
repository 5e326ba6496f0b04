/* test_backend_gptoss: the ops gpt-oss adds (issue 15) on every backend this build can open, against
 * double-precision references computed here: MXFP4 weights in matmul and matmul_grouped (the reference
 * decodes e2m1 from its sign/exponent/mantissa bits, not from a table), the clamped SwiGLU on interleaved
 * gate/up columns, and attention with per-head sinks (with and without a sliding window, GQA, prefill
 * chunks and decode rows, f32 and bf16 caches).
 *
 * Backends: "cpu" with its own kernels (AVX2/NEON; its MXFP4 decoders too), then with the portable C ones
 * forced; "gpu" when it opens (VLLMC_TEST_GPU=1: a GPU that cannot be opened is a failure), twice: as it
 * is, then with VLLMC_VULKAN_SPLIT_RANGE=600 (weights split into row ranges of a few rows, each range at
 * its own byte offset) and VLLMC_VULKAN_ATTN_SPLIT=4 (the context of every decode-sized batch cut into
 * splits of 4 keys, some empty under a window, merged where the sink must count once per row).
 *
 * Outputs are views with a row stride above their width, at an offset into a buffer poisoned with NaN:
 * every element of the view must be written and finite (a NaN or Inf is an infinite error), and the
 * poison around it must come back unchanged. Expert weights are row views at byte offsets that are not
 * multiples of 4 (17-byte blocks); some activations start at an odd element. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"

static be_backend *g_be;
static const char *g_name = "cpu"; /* the pass, for messages */
static be_buffer *g_bufs[64];
static size_t g_sizes[64];
static int g_nbufs;
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static const uint32_t POISON = 0x7fc0dead; /* a quiet NaN that no kernel computes */

static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)((double)(next() >> 11) / 9007199254740992.0); }

/* The larger error; NaN (a kernel's NaN, or a reference that went wrong) becomes a sticky infinity. */
static double worse(double w, double e) { return e <= w ? w : e == e ? e : INFINITY; }

static be_buffer *new_buf(const void *img, size_t bytes) {
    be_buffer *b = NULL;
    int rc = g_nbufs < 64 ? g_be->buffer_alloc(g_be->ctx, bytes, &b) : VC_ENOMEM;
    if (!rc) rc = g_be->buffer_write(g_be->ctx, b, 0, img, bytes);
    CHECK_MSG(rc == 0, "%s: buffer: %s", g_name, vc_errmsg());
    if (rc) exit(1);
    g_sizes[g_nbufs] = bytes;
    g_bufs[g_nbufs++] = b;
    return b;
}

/* [rows, cols] of dtype dt from img, `off` elements into a buffer poisoned before and after. */
static be_tensor put_at(be_dtype dt, const void *img, int64_t rows, int64_t cols, int64_t off) {
    size_t es = dt == BE_MXFP4 ? 1 : be_dtype_size(dt), lead = (size_t)off * es;
    size_t bytes = be_dtype_bytes(dt, rows * cols), total = lead + bytes + 8;
    unsigned char *all = malloc(total);
    for (size_t i = 0; i < total; i += 4) memcpy(all + i, &POISON, total - i < 4 ? total - i : 4);
    memcpy(all + lead, img, bytes);
    be_tensor t = be_view(new_buf(all, total), lead, dt, rows, cols);
    free(all);
    return t;
}
static be_tensor put(be_dtype dt, const void *img, int64_t rows, int64_t cols) { return put_at(dt, img, rows, cols, 0); }

/* vals rounded to dt in place (the reference uses what the backend holds), then put. */
static be_tensor put_rounded(be_dtype dt, float *vals, int64_t rows, int64_t cols) {
    if (dt == BE_F32) return put(dt, vals, rows, cols);
    uint16_t *h = malloc(sizeof(uint16_t) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) {
        h[i] = vc_f32_to_bf16(vals[i]);
        vals[i] = vc_bf16_to_f32(h[i]);
    }
    be_tensor t = put(dt, h, rows, cols);
    free(h);
    return t;
}

/* An f32 output [rows, cols]: row stride cols + 3, 5 elements into a buffer of poison. */
static be_tensor put_out(int64_t rows, int64_t cols) {
    int64_t stride = cols + 3, n = 5 + rows * stride + 2;
    uint32_t *img = malloc(sizeof(uint32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) img[i] = POISON;
    be_tensor t = be_view(new_buf(img, sizeof(uint32_t) * (size_t)n), 5 * 4, BE_F32, rows, cols);
    t.stride = stride;
    free(img);
    return t;
}

/* sync, then t's values into out [rows * cols]; every element outside the view must still be poison. */
static void get(const be_tensor *t, float *out) {
    int rc = g_be->sync(g_be->ctx);
    CHECK_MSG(rc == 0, "%s: sync: %s", g_name, vc_errmsg());
    size_t bytes = 0;
    for (int i = 0; i < g_nbufs; i++)
        if (g_bufs[i] == t->buf) bytes = g_sizes[i];
    uint32_t *all = malloc(bytes);
    if (rc || g_be->buffer_read(g_be->ctx, t->buf, 0, all, bytes)) {
        CHECK_MSG(0, "%s: buffer_read: %s", g_name, vc_errmsg());
        for (int64_t i = 0; i < t->rows * t->cols; i++) out[i] = NAN;
        free(all);
        return;
    }
    size_t first = t->offset / 4, n = bytes / 4, outside = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t r = ((int64_t)i - (int64_t)first) / t->stride, c = ((int64_t)i - (int64_t)first) % t->stride;
        if (i >= first && r < t->rows && c < t->cols) memcpy(&out[r * t->cols + c], &all[i], 4);
        else outside += all[i] != POISON;
    }
    CHECK_MSG(outside == 0, "%s: %zu elements outside an output view were written", g_name, outside);
    free(all);
}

static void case_end(void) {
    for (int i = 0; i < g_nbufs; i++) g_be->buffer_free(g_be->ctx, g_bufs[i]);
    g_nbufs = 0;
}

/* e2m1: sign, 2 exponent bits (bias 1), 1 mantissa bit; exponent 0 is subnormal (m * 0.5). */
static double e2m1(int c) {
    int e = (c >> 1) & 3, m = c & 1;
    double v = e == 0 ? 0.5 * m : (1.0 + 0.5 * m) * ldexp(1.0, e - 1);
    return c & 8 ? -v : v;
}

/* Element k of an MXFP4 row (17-byte blocks: scale, then 16 bytes of codes, the even element low). */
static double mx_elem(const uint8_t *row, int k) {
    const uint8_t *b = row + (k / 32) * 17;
    int byte = b[1 + (k % 32) / 2], c = k % 2 ? byte >> 4 : byte & 15;
    return e2m1(c) * ldexp(1.0, b[0] - 127);
}

static uint8_t *rand_mxfp4(int64_t rows, int K) {
    size_t bytes = be_dtype_bytes(BE_MXFP4, rows * K);
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)next();
    for (size_t i = 0; i < bytes; i += 17) w[i] = (uint8_t)(122 + next() % 8); /* 2^-5 .. 2^2 */
    return w;
}

/* Both CPU decoders on fixed blocks, then on random ones against mx_elem (every code, scales 0 .. 254). */
static void t_decode_with(cpu_mxfp4_decode_fn dec, const char *name) {
    uint8_t blk[17] = {127, 0x21, 0xf8, 0x7e};
    float d[64];
    dec(d, blk, 32);
    CHECK_MSG(d[0] == 0.5f && d[1] == 1.0f && d[2] == 0.0f && d[3] == -6.0f && d[4] == -4.0f && d[5] == 6.0f &&
                  d[6] == 0.0f,
              "%s: fixed block", name);
    blk[0] = 0; /* the subnormal 2^-127 */
    dec(d, blk, 32);
    CHECK_MSG(d[5] == 6.0f * ldexpf(1.0f, -127) && d[0] == ldexpf(1.0f, -128), "%s: scale 0", name);
    blk[0] = 254;
    dec(d, blk, 32);
    CHECK_MSG(d[3] == -6.0f * ldexpf(1.0f, 127), "%s: scale 254", name);
    blk[0] = 255; /* torch.ldexp overflows to inf (0 * inf: NaN) */
    dec(d, blk, 32);
    CHECK_MSG(isinf(d[3]) && d[3] < 0 && isnan(d[6]), "%s: scale 255", name);
    uint8_t row[34];
    for (int it = 0; it < 200; it++) {
        for (int i = 0; i < 34; i++) row[i] = (uint8_t)next();
        row[0] %= 253, row[17] %= 253; /* 6 * 2^(252 - 127) is the largest finite f32 value here */
        dec(d, row, 64);
        for (int k = 0; k < 64; k++)
            CHECK_MSG((double)d[k] == mx_elem(row, k), "%s: element %d: %g, want %g", name, k, d[k], mx_elem(row, k));
    }
}

static void t_decode(void) {
    t_decode_with(cpu_mxfp4_decode_row, "portable decode");
#if defined(__x86_64__)
    if (cpu_have_avx2()) t_decode_with(cpu_avx2_mxfp4_decode_row, "avx2 decode");
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
    t_decode_with(cpu_neon_mxfp4_decode_row, "neon decode");
#endif
}

enum { N_EXPERTS = 3 }; /* expert weight sets of t_matmul */

/* Worst error of y [n, M] against x @ (rows of expert e(t))^T (+ bias), relative to sum |products|.
 * Each used row is decoded once for all its tokens (the emulated arm64 run is slow enough as it is). */
static double mm_err(const float *y, const float *x, int n, int K, int M, const uint8_t *w, const int *expert_of,
                     const float *bias) {
    size_t rb = be_dtype_bytes(BE_MXFP4, K);
    double worst = 0, *row = malloc(sizeof(double) * (size_t)K);
    for (int r = 0; r < M; r++)
        for (int e = 0; e < N_EXPERTS; e++) {
            int used = 0;
            for (int t = 0; t < n; t++) used |= expert_of[t] == e;
            for (int k = 0; used && k < K; k++) row[k] = mx_elem(w + (size_t)(e * M + r) * rb, k);
            for (int t = 0; used && t < n; t++) {
                if (expert_of[t] != e) continue;
                double s = bias ? bias[r] : 0, mag = bias ? fabs(bias[r]) : 0;
                for (int k = 0; k < K; k++) {
                    double p = x[t * K + k] * row[k];
                    s += p, mag += fabs(p);
                }
                worst = worse(worst, fabs(y[t * M + r] - s) / (mag + 1e-30));
            }
        }
    free(row);
    return worst;
}

static double g_worst_mm, g_worst_swiglu, g_worst_sinks; /* per pass, printed */

/* y = x @ w^T (+ bias) through matmul with expert 1's rows (a view at M x 17 K / 32 bytes: odd when M and
 * K / 32 are), and the same rows as experts of matmul_grouped. x starts xoff elements into its buffer. */
static void t_matmul(int n, int K, int M, int with_bias, int xoff) {
    int E = N_EXPERTS;
    uint8_t *w = rand_mxfp4((int64_t)E * M, K);
    float *x = malloc(sizeof(float) * (size_t)n * K), *bias = malloc(sizeof(float) * (size_t)M);
    float *y = malloc(sizeof(float) * (size_t)n * M);
    for (int i = 0; i < n * K; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < M; i++) bias[i] = frand(-1, 1);
    be_tensor wt = put(BE_MXFP4, w, (int64_t)E * M, K), xt = put_at(BE_F32, x, n, K, xoff), bt = put(BE_F32, bias, 1, M);
    be_tensor yt = put_out(n, M), gy = put_out(n, M);
    be_tensor e1 = be_rows(&wt, M, M); /* expert 1 as a row view: the offset is in 17-byte blocks */
    g_be->matmul(g_be->ctx, &xt, &e1, with_bias ? &bt : NULL, &yt);
    get(&yt, y);
    int *ex = malloc(sizeof(int) * (size_t)n);
    for (int t = 0; t < n; t++) ex[t] = 1;
    double err = mm_err(y, x, n, K, M, w, ex, with_bias ? bias : NULL);
    g_worst_mm = worse(g_worst_mm, err);
    CHECK_MSG(err < 2e-6, "%s: matmul mxfp4 n=%d K=%d M=%d bias %d x at %d: relative error %.3g", g_name, n, K, M,
              with_bias, xoff, err);
    /* grouped: rows [0, n/2) to expert 2, [n/2, n) to expert 0 */
    be_tensor views[3] = {be_rows(&wt, 0, M), e1, be_rows(&wt, 2 * M, M)};
    be_moe_group grp[2] = {{2, 0, n / 2}, {0, n / 2, n - n / 2}};
    const be_tensor *wp[1] = {views}, *op[1] = {&gy};
    be_matmul_grouped(g_be, &xt, grp[0].n ? 2 : 1, grp[0].n ? grp : grp + 1, 1, wp, op);
    get(&gy, y);
    for (int t = 0; t < n; t++) ex[t] = t < n / 2 ? 2 : 0;
    err = mm_err(y, x, n, K, M, w, ex, NULL);
    g_worst_mm = worse(g_worst_mm, err);
    CHECK_MSG(err < 2e-6, "%s: grouped mxfp4 n=%d K=%d M=%d: relative error %.3g", g_name, n, K, M, err);
    case_end();
    free(w), free(x), free(bias), free(y), free(ex);
}

static void t_swiglu(int n, int F) {
    float *gu = malloc(sizeof(float) * (size_t)n * 2 * F), *o = malloc(sizeof(float) * (size_t)n * F);
    for (int i = 0; i < n * 2 * F; i++) gu[i] = frand(-12, 12); /* both clamps taken */
    be_tensor g = put_at(BE_F32, gu, n, 2 * F, 3), ot = put_out(n, F);
    g_be->swiglu_clamp(g_be->ctx, &g, 1.702f, 7.0f, &ot);
    get(&ot, o);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < F; i++) {
            double gt = gu[t * 2 * F + 2 * i], up = gu[t * 2 * F + 2 * i + 1];
            gt = fmin(gt, 7.0), up = fmax(fmin(up, 7.0), -7.0);
            double ref = (up + 1) * gt / (1 + exp(-1.702 * gt));
            worst = worse(worst, fabs(o[t * F + i] - ref) / (fabs(ref) + 1));
        }
    g_worst_swiglu = worse(g_worst_swiglu, worst);
    CHECK_MSG(worst < 1e-6, "%s: swiglu_clamp n=%d F=%d: error %.3g", g_name, n, F, worst);
    case_end();
    free(gu), free(o);
}

typedef struct {
    int H, HKV, HD, L, q, window;
    const float *k, *v, *qv, *sinks; /* k, v [slots, HKV * HD] (as the cache holds them) */
    const int32_t *bt;
    int BS;
} sink_case;

/* The reference (sinks NULL: without them, the result a kernel that ignores them would give). */
static double sinks_err(const sink_case *a, const float *sinks, const float *o) {
    int C = a->HKV * a->HD, G = a->H / a->HKV;
    double worst = 0, *sc = malloc(sizeof(double) * (size_t)a->L);
    for (int r = 0; r < a->q; r++)
        for (int h = 0; h < a->H; h++) {
            int pos = a->L - a->q + r, j0 = a->window > 0 && pos + 1 > a->window ? pos + 1 - a->window : 0;
            double mx = sinks ? sinks[h] : -INFINITY, z = 0, scale = 1 / sqrt(a->HD);
            for (int j = j0; j <= pos; j++) {
                const float *kr = a->k + (size_t)(a->bt[j / a->BS] * a->BS + j % a->BS) * C + h / G * a->HD;
                double s = 0;
                for (int d = 0; d < a->HD; d++) s += (double)a->qv[(r * a->H + h) * a->HD + d] * kr[d];
                sc[j - j0] = scale * s, mx = fmax(mx, scale * s);
            }
            for (int j = j0; j <= pos; j++) z += exp(sc[j - j0] - mx);
            if (sinks) z += exp(sinks[h] - mx);
            for (int d = 0; d < a->HD; d++) {
                double acc = 0;
                for (int j = j0; j <= pos; j++)
                    acc += exp(sc[j - j0] - mx) / z *
                           a->v[(size_t)(a->bt[j / a->BS] * a->BS + j % a->BS) * C + h / G * a->HD + d];
                worst = worse(worst, fabs(o[(r * a->H + h) * a->HD + d] - acc));
            }
        }
    free(sc);
    return worst;
}

/* One sequence of L tokens whose last q rows are queried (a prefill chunk, or decode when q = 1); H heads
 * over HKV KV heads of HD dims; the cache in dtype cdt, its blocks in reverse order. */
static void t_sinks(be_dtype cdt, int H, int HKV, int HD, int L, int q, int window) {
    enum { BS = 4 };
    int nb = (L + BS - 1) / BS, C = HKV * HD;
    float *k = malloc(sizeof(float) * (size_t)nb * BS * C), *v = malloc(sizeof(float) * (size_t)nb * BS * C);
    float *qv = malloc(sizeof(float) * (size_t)q * H * HD), *o = malloc(sizeof(float) * (size_t)q * H * HD);
    float sinks[64];
    int32_t bt[64], qs[2] = {0, q}, sl[1] = {L};
    for (int b = 0; b < nb; b++) bt[b] = nb - 1 - b;
    for (int i = 0; i < nb * BS * C; i++) k[i] = frand(-1, 1), v[i] = frand(-1, 1);
    for (int i = 0; i < q * H * HD; i++) qv[i] = frand(-2, 2);
    for (int h = 0; h < H; h++) sinks[h] = frand(-2, 3);
    sinks[H - 1] = 6; /* above every score: the sink is the row's max */
    be_tensor kc = put_rounded(cdt, k, (int64_t)nb * BS, C), vc = put_rounded(cdt, v, (int64_t)nb * BS, C);
    be_tensor qt = put_at(BE_F32, qv, q, H * HD, 1), ot = put_out(q, H * HD), st = put_at(BE_F32, sinks, 1, H, 2);
    be_attn_meta meta = {1, put(BE_I32, qs, 1, 2), put(BE_I32, sl, 1, 1), put(BE_I32, bt, 1, nb), BS, L};
    be_attn_shape shape = {H, HKV, HD, (float)(1 / sqrt(HD)), window, 0, &st};
    g_be->attention(g_be->ctx, &qt, &kc, &vc, &meta, &shape, &ot);
    get(&ot, o);
    sink_case a = {H, HKV, HD, L, q, window, k, v, qv, sinks, bt, BS};
    double err = sinks_err(&a, sinks, o), wrong = sinks_err(&a, NULL, o);
    g_worst_sinks = worse(g_worst_sinks, err);
    CHECK_MSG(err < 1e-5, "%s: attention sinks %s %d/%d heads of %d, L=%d q=%d window=%d: error %.3g", g_name,
              be_dtype_name(cdt), H, HKV, HD, L, q, window, err);
    CHECK_MSG(wrong > 1e-3, "%s: attention sinks L=%d q=%d: the result without sinks would pass (%.3g)", g_name, L,
              q, wrong);
    case_end();
    free(k), free(v), free(qv), free(o);
}

/* The ops on the pass's backend; small_range: weights of at most 85-byte rows (the split pass). */
static void run_ops(int small_range) {
    int ns[] = {1, 2, 3, 4, 9, 17, 70}, Ks[] = {32, 160, 2880}, Ms[] = {7, 33, 130};
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < (small_range ? 2 : 3); b++)
            for (int c = 0; c < 3; c++) {
                if (c == 2 && (b == 2 || a % 3)) continue; /* more than 128 rows: a few cases */
                t_matmul(ns[a], Ks[b], Ms[c], (a + b + c) % 2, a % 2);
            }
    t_swiglu(5, 40);
    t_swiglu(1, 33);
    t_swiglu(70, 24);
    static const be_dtype cdts[2] = {BE_F32, BE_BF16};
    for (int d = 0; d < 2; d++) {
        t_sinks(cdts[d], 4, 2, 16, 11, 11, 0);
        t_sinks(cdts[d], 4, 2, 16, 11, 11, 4);
        t_sinks(cdts[d], 4, 2, 16, 23, 1, 0);
        t_sinks(cdts[d], 4, 2, 16, 23, 1, 6); /* forced splits of 4 keys: most of them empty */
        t_sinks(cdts[d], 8, 1, 16, 23, 5, 0); /* a chunk of 5 rows, 8 heads on one KV head */
        t_sinks(cdts[d], 12, 1, 64, 30, 3, 5); /* head_dim 64 (gpt-oss's), 12 query heads: 2 blocks of them */
        t_sinks(cdts[d], 6, 3, 16, 40, 20, 7);
        t_sinks(cdts[d], 8, 2, 64, 70, 40, 0);  /* a 40-row chunk (attn_prefill.comp on the GPU for bf16) */
        t_sinks(cdts[d], 8, 2, 64, 70, 40, 16);
    }
}

static void report(void) {
    printf("%s: worst errors: mxfp4 matmul %.2e (tol 2e-6), swiglu_clamp %.2e (tol 1e-6), attention sinks %.2e "
           "(tol 1e-5)\n", g_name, g_worst_mm, g_worst_swiglu, g_worst_sinks);
    g_worst_mm = g_worst_swiglu = g_worst_sinks = 0;
}

static void run_cpu(void) {
    t_decode();
    run_ops(0);
    t_matmul(2, 8192, 3, 1, 0); /* a panel of fewer rows than the kernel's own (K * 16 > the panel) */
    report();
}

/* The GPU, as it is and then with weights split into small bindings and decode contexts into splits. */
static void run_gpu(void) {
    const char *req = getenv("VLLMC_TEST_GPU");
    for (int pass = 0; pass < 2; pass++) {
        if (pass) setenv("VLLMC_VULKAN_SPLIT_RANGE", "600", 1), setenv("VLLMC_VULKAN_ATTN_SPLIT", "4", 1);
        be_backend *be = NULL;
        int rc = be_open("gpu", &be);
        if (pass) unsetenv("VLLMC_VULKAN_SPLIT_RANGE"), unsetenv("VLLMC_VULKAN_ATTN_SPLIT");
        if (rc || !be) {
            if (req && !strcmp(req, "1")) CHECK_MSG(0, "gpu: be_open failed: %s", vc_errmsg());
            else printf("gpu: skipped (%s)\n", vc_errmsg());
            return;
        }
        g_be = be;
        g_name = pass ? "gpu (split)" : "gpu";
        CHECK_MSG(be->swiglu_clamp != NULL, "%s: no swiglu_clamp", g_name);
        if (be->swiglu_clamp) run_ops(pass);
        report();
        be_free(be);
    }
}

int main(void) {
    if (be_open("cpu", &g_be) != 0 || !g_be) {
        CHECK_MSG(0, "cpu: be_open failed: %s", vc_errmsg());
        TEST_END();
    }
    run_cpu();
    cpu_kernels_force_scalar(1); /* the portable C kernels */
    g_name = "cpu (portable)";
    run_cpu();
    cpu_kernels_force_scalar(0);
    be_free(g_be);
    run_gpu();
    TEST_END();
}
