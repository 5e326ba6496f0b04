/* test_backend_gptoss: the CPU ops gpt-oss adds (issue 15), against double-precision references computed
 * here: MXFP4 weights in matmul and matmul_grouped (decoded in the kernel; the reference decodes e2m1 from
 * its sign/exponent/mantissa bits, not from a table), the clamped SwiGLU on interleaved gate/up columns,
 * and attention with per-head sinks (with and without a sliding window, prefill and decode rows).
 * Each runs on the CPU's own kernels (AVX2/NEON), then on the portable C ones forced. The Vulkan backend
 * has none of these yet (a gpt-oss model refuses to load there), so only "cpu" is opened. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "test.h"

static be_backend *g_be;
static be_buffer *g_bufs[64];
static int g_nbufs;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)((double)(next() >> 11) / 9007199254740992.0); }

static be_tensor put(be_dtype dt, const void *img, int64_t rows, int64_t cols) {
    size_t bytes = be_dtype_bytes(dt, rows * cols);
    be_buffer *b = NULL;
    int rc = g_be->buffer_alloc(g_be->ctx, bytes, &b);
    if (!rc) rc = g_be->buffer_write(g_be->ctx, b, 0, img, bytes);
    CHECK_MSG(rc == 0, "buffer: %s", vc_errmsg());
    g_bufs[g_nbufs++] = b;
    return be_view(b, 0, dt, rows, cols);
}

static void get(const be_tensor *t, float *out) {
    CHECK(g_be->sync(g_be->ctx) == 0);
    CHECK(g_be->buffer_read(g_be->ctx, t->buf, t->offset, out, sizeof(float) * (size_t)(t->rows * t->cols)) == 0);
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

/* Both decoders on fixed blocks, then on random ones against mx_elem (every code, scales 0 .. 254). */
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
    if (cpu_have_avx2()) t_decode_with(cpu_avx2_mxfp4_decode_row, "avx2 decode");
}

/* y = x @ w^T + bias through matmul, and the same rows as experts of matmul_grouped. */
static void t_matmul(int n, int K, int M) {
    int E = 3;
    uint8_t *w = rand_mxfp4((int64_t)E * M, K);
    float *x = malloc(sizeof(float) * (size_t)n * K), *bias = malloc(sizeof(float) * (size_t)M);
    float *y = calloc((size_t)n * M, sizeof(float));
    for (int i = 0; i < n * K; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < M; i++) bias[i] = frand(-1, 1);
    be_tensor wt = put(BE_MXFP4, w, (int64_t)E * M, K), xt = put(BE_F32, x, n, K), bt = put(BE_F32, bias, 1, M);
    be_tensor yt = put(BE_F32, y, n, M), gy = put(BE_F32, y, n, M);
    size_t rb = be_dtype_bytes(BE_MXFP4, K);
    be_tensor e1 = be_rows(&wt, M, M); /* expert 1 as a row view: the offset is in 17-byte blocks */
    g_be->matmul(g_be->ctx, &xt, &e1, &bt, &yt);
    get(&yt, y);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < M; r++) {
            double s = bias[r], mag = fabs(bias[r]);
            for (int k = 0; k < K; k++) {
                double p = x[t * K + k] * mx_elem(w + (size_t)(M + r) * rb, k);
                s += p, mag += fabs(p);
            }
            double e = fabs(y[t * M + r] - s) / (mag + 1e-30);
            worst = e > worst ? e : worst;
        }
    CHECK_MSG(worst < 2e-6, "matmul mxfp4 n=%d K=%d M=%d (%s): relative error %.3g", n, K, M, cpu_kernels_isa(), worst);
    /* grouped: rows [0, n/2) to expert 2, [n/2, n) to expert 0 */
    be_tensor views[3] = {be_rows(&wt, 0, M), e1, be_rows(&wt, 2 * M, M)};
    be_moe_group grp[2] = {{2, 0, n / 2}, {0, n / 2, n - n / 2}};
    const be_tensor *wp[1] = {views}, *op[1] = {&gy};
    be_matmul_grouped(g_be, &xt, grp[0].n ? 2 : 1, grp[0].n ? grp : grp + 1, 1, wp, op);
    get(&gy, y);
    worst = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < M; r++) {
            int e = t < n / 2 ? 2 : 0;
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double p = x[t * K + k] * mx_elem(w + (size_t)(e * M + r) * rb, k);
                s += p, mag += fabs(p);
            }
            double err = fabs(y[t * M + r] - s) / (mag + 1e-30);
            worst = err > worst ? err : worst;
        }
    CHECK_MSG(worst < 2e-6, "grouped mxfp4 n=%d K=%d M=%d (%s): relative error %.3g", n, K, M, cpu_kernels_isa(),
              worst);
    case_end();
    free(w), free(x), free(bias), free(y);
}

static void t_swiglu(int n, int F) {
    float *gu = malloc(sizeof(float) * (size_t)n * 2 * F), *o = malloc(sizeof(float) * (size_t)n * F);
    for (int i = 0; i < n * 2 * F; i++) gu[i] = frand(-12, 12); /* both clamps taken */
    be_tensor g = put(BE_F32, gu, n, 2 * F), ot = put(BE_F32, o, n, F);
    g_be->swiglu_clamp(g_be->ctx, &g, 1.702f, 7.0f, &ot);
    get(&ot, o);
    double worst = 0;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < F; i++) {
            double gt = gu[t * 2 * F + 2 * i], up = gu[t * 2 * F + 2 * i + 1];
            gt = fmin(gt, 7.0), up = fmax(fmin(up, 7.0), -7.0);
            double ref = (up + 1) * gt / (1 + exp(-1.702 * gt));
            double e = fabs(o[t * F + i] - ref) / (fabs(ref) + 1);
            worst = e > worst ? e : worst;
        }
    CHECK_MSG(worst < 1e-6, "swiglu_clamp n=%d F=%d: error %.3g", n, F, worst);
    case_end();
    free(gu), free(o);
}

/* One sequence of L tokens whose last q rows are queried; H heads over HKV KV heads of 16 dims. */
static void t_sinks(int L, int q, int window) {
    enum { H = 4, HKV = 2, HD = 16, BS = 4, C = HKV * HD };
    int nb = (L + BS - 1) / BS;
    float *k = malloc(sizeof(float) * (size_t)nb * BS * C), *v = malloc(sizeof(float) * (size_t)nb * BS * C);
    float *qv = malloc(sizeof(float) * (size_t)q * H * HD), *o = malloc(sizeof(float) * (size_t)q * H * HD);
    float sinks[H];
    int32_t bt[64], qs[2] = {0, q}, sl[1] = {L};
    for (int b = 0; b < nb; b++) bt[b] = nb - 1 - b; /* blocks in reverse order */
    for (int i = 0; i < nb * BS * C; i++) k[i] = frand(-1, 1), v[i] = frand(-1, 1);
    for (int i = 0; i < q * H * HD; i++) qv[i] = frand(-2, 2);
    for (int h = 0; h < H; h++) sinks[h] = frand(-2, 3);
    be_tensor kc = put(BE_F32, k, (int64_t)nb * BS, C), vc = put(BE_F32, v, (int64_t)nb * BS, C);
    be_tensor qt = put(BE_F32, qv, q, H * HD), ot = put(BE_F32, o, q, H * HD), st = put(BE_F32, sinks, 1, H);
    be_attn_meta meta = {1, put(BE_I32, qs, 1, 2), put(BE_I32, sl, 1, 1), put(BE_I32, bt, 1, nb), BS, L};
    be_attn_shape shape = {H, HKV, HD, 0.25f, window, 0, &st};
    g_be->attention(g_be->ctx, &qt, &kc, &vc, &meta, &shape, &ot);
    get(&ot, o);
    double worst = 0;
    for (int r = 0; r < q; r++)
        for (int h = 0; h < H; h++) {
            int pos = L - q + r, g = h / (H / HKV), j0 = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
            double sc[256], mx = sinks[h], z = 0;
            for (int j = j0; j <= pos; j++) {
                const float *kr = k + (size_t)(bt[j / BS] * BS + j % BS) * C + g * HD;
                double s = 0;
                for (int d = 0; d < HD; d++) s += (double)qv[(r * H + h) * HD + d] * kr[d];
                sc[j - j0] = 0.25 * s, mx = fmax(mx, 0.25 * s);
            }
            for (int j = j0; j <= pos; j++) z += exp(sc[j - j0] - mx);
            z += exp(sinks[h] - mx);
            for (int d = 0; d < HD; d++) {
                double acc = 0;
                for (int j = j0; j <= pos; j++)
                    acc += exp(sc[j - j0] - mx) / z * v[(size_t)(bt[j / BS] * BS + j % BS) * C + g * HD + d];
                double e = fabs(o[(r * H + h) * HD + d] - acc);
                worst = e > worst ? e : worst;
            }
        }
    CHECK_MSG(worst < 1e-5, "attention sinks L=%d q=%d window=%d (%s): error %.3g", L, q, window, cpu_kernels_isa(),
              worst);
    case_end();
    free(k), free(v), free(qv), free(o);
}

static void run_all(void) {
    t_decode();
    int ns[] = {1, 3, 5, 9, 70}, Ks[] = {32, 160, 2880}, Ms[] = {7, 33}; /* fused (< 8), panel gemv, gemm */
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) t_matmul(ns[a], Ks[b], Ms[c]);
    t_matmul(2, 8192, 3); /* a panel of fewer rows than the kernel's own (K * 16 > the panel) */
    t_swiglu(5, 40);
    t_sinks(11, 11, 0);
    t_sinks(11, 11, 4);
    t_sinks(23, 1, 0);
    t_sinks(23, 1, 6);
}

int main(void) {
    if (be_open("cpu", &g_be) != 0 || !g_be) {
        CHECK_MSG(0, "cpu: be_open failed: %s", vc_errmsg());
        TEST_END();
    }
    run_all();
    cpu_kernels_force_scalar(1); /* the portable C kernels */
    run_all();
    cpu_kernels_force_scalar(0);
    be_free(g_be);
    TEST_END();
}
