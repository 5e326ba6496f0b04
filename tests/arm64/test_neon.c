/* test_neon: the NEON kernels compared directly with the portable C ones on the same inputs (aarch64
 * only: tests/cli/test_arm64.sh builds it and runs it under qemu-user), where the unit tests only see
 * them through a double-precision reference:
 *  - the gemv tiles (every R x T tile and K tail: n 1..7, K 1..19 and longer, rows 1..9, padded strides,
 *    f32/f16/bf16, with and without bias) against a double-precision sum;
 *  - MXFP4 decode: bit for bit the portable decode (the sign of zero codes included), every scale 0..255;
 *  - MXFP4 matmul through cpu_matmul (one token: the fused gemv; three: the decoded panel under the NEON
 *    tiles) against the forced portable path, the difference relative to the sum of |products|;
 *  - paged-attention inner loops (qk, pv) for 1..8 heads, head sizes with and without tails, f32, f16
 *    and bf16 cache rows, against the portable loops;
 *  - the machine measurements (triad, peak FMA) give positive figures.
 * Prints the worst relative differences; the limits are a few f32 roundings of the magnitude. */
#if !defined(__aarch64__) || !defined(__ARM_NEON)
#error "test_neon.c is for aarch64 (tests/cli/test_arm64.sh)"
#endif
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"

static uint64_t rng = 0x853c49e6748fea9bull;
static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)((double)(next() >> 11) / 9007199254740992.0); }
static double worse(double w, double e) { return e <= w ? w : e == e ? e : INFINITY; }

static void *rand_rows(be_dtype dt, int rows, int cols, int64_t ld);

static int same_bits(float a, float b) {
    if (a != a || b != b) return a != a && b != b;
    return memcmp(&a, &b, 4) == 0;
}

/* One gemv case through cpu_neon_gemv_rows; returns the number of wrong outputs (tolerance of
 * test_matmul: a few f32 roundings times sqrt(K) of the magnitude sum). */
static int gemv_case(be_dtype dt, int n, int K, int rows, int64_t ldx, int64_t ldw, int64_t ldy, int with_bias) {
    size_t nx = (size_t)((n - 1) * ldx + K); /* exact extents: ASan catches a read past the last row */
    float *x = calloc(nx, sizeof(float)), *bias = calloc((size_t)rows, sizeof(float));
    float *y = calloc((size_t)((n - 1) * ldy + rows), sizeof(float));
    void *w = rand_rows(dt, rows, K, ldw);
    for (size_t i = 0; i < nx; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < rows; i++) bias[i] = frand(-1, 1);
    cpu_neon_gemv_rows(x, ldx, n, K, w, dt, ldw * (int64_t)be_dtype_size(dt), rows, with_bias ? bias : NULL, y, ldy);
    int bad = 0;
    for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
            double ref = with_bias ? bias[r] : 0, mag = fabs(ref);
            for (int k = 0; k < K; k++) {
                double p = (double)x[t * ldx + k] * cpu_elem_f32(dt, w, r * ldw + k);
                ref += p, mag += fabs(p);
            }
            bad += !(fabs(y[t * ldy + r] - ref) <= 4 * FLT_EPSILON * sqrt(K + 1.0) * mag);
        }
    free(x), free(bias), free(y), free(w);
    return bad;
}

static void t_gemv(void) {
    static const be_dtype dts[] = {BE_F32, BE_F16, BE_BF16};
    int cases = 0, bad = 0;
    for (int d = 0; d < 3; d++)
        for (int n = 1; n <= 7; n++)
            for (int K = 1; K <= 40; K += K < 19 ? 1 : 21)
                for (int rows = 1; rows <= 9; rows++, cases++) {
                    int pad = cases % 3;
                    bad += gemv_case(dts[d], n, K, rows, K + pad, K + 2 * pad, rows + pad, cases % 2);
                }
    CHECK_MSG(bad == 0, "neon gemv tiles: %d wrong outputs", bad);
    printf("gemv tiles: %d cases, %d wrong outputs\n", cases, bad);
}

/* Every scale byte, random codes: the NEON decode equals the portable one bit for bit. */
static void t_decode(void) {
    enum { K = 256 * 32 };
    uint8_t row[256 * 17];
    float a[K], b[K];
    for (int i = 0; i < (int)sizeof row; i++) row[i] = (uint8_t)next();
    for (int blk = 0; blk < 256; blk++) row[blk * 17] = (uint8_t)blk;
    cpu_mxfp4_decode_row(a, row, K);
    cpu_neon_mxfp4_decode_row(b, row, K);
    int bad = 0;
    for (int k = 0; k < K; k++) bad += !same_bits(a[k], b[k]);
    CHECK_MSG(bad == 0, "neon mxfp4 decode: %d of %d elements differ from the portable decode", bad, K);
    printf("mxfp4 decode: %d elements, every scale 0..255: %d differ in bits\n", K, bad);
}

/* cpu_matmul over MXFP4 rows, NEON and then portable; returns the worst |difference| / sum |products|. */
static double mxfp4_case(tp_pool *pool, int n, int K, int M, int with_bias) {
    size_t rb = be_dtype_bytes(BE_MXFP4, K);
    uint8_t *w = malloc(rb * (size_t)M); /* calloc where gcc 12 cannot see the fill loops run */
    float *x = calloc((size_t)n * K, sizeof(float)), *row = malloc(sizeof(float) * (size_t)K);
    float *bias = calloc((size_t)M, sizeof(float)), *yn = malloc(sizeof(float) * (size_t)n * M);
    float *yp = malloc(sizeof(float) * (size_t)n * M);
    for (size_t i = 0; i < rb * (size_t)M; i++) w[i] = (uint8_t)(i % 17 ? next() : 122 + next() % 8);
    for (int i = 0; i < n * K; i++) x[i] = frand(-1, 1);
    for (int i = 0; i < M; i++) bias[i] = frand(-1, 1);
    cpu_matmul(pool, x, K, n, K, w, BE_MXFP4, K, M, with_bias ? bias : NULL, yn, M);
    cpu_kernels_force_scalar(1);
    cpu_matmul(pool, x, K, n, K, w, BE_MXFP4, K, M, with_bias ? bias : NULL, yp, M);
    cpu_kernels_force_scalar(0);
    double worst = 0;
    for (int r = 0; r < M; r++) {
        cpu_mxfp4_decode_row(row, w + rb * (size_t)r, K);
        for (int t = 0; t < n; t++) {
            double mag = with_bias ? fabs(bias[r]) : 0;
            for (int k = 0; k < K; k++) mag += fabs((double)x[t * K + k] * row[k]);
            worst = worse(worst, fabs((double)yn[t * M + r] - yp[t * M + r]) / (mag + 1e-30));
        }
    }
    free(w), free(x), free(row), free(bias), free(yn), free(yp);
    return worst;
}

static void t_mxfp4_matmul(tp_pool *pool) {
    static const int Ks[] = {32, 64, 160, 2880}, Ms[] = {1, 3, 4, 5, 9, 33};
    double worst1 = 0, worst3 = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 6; b++) {
            tp_pool *p = (a + b) % 2 ? pool : NULL;
            worst1 = worse(worst1, mxfp4_case(p, 1, Ks[a], Ms[b], b % 2));
            worst3 = worse(worst3, mxfp4_case(p, 3, Ks[a], Ms[b], a % 2));
        }
    double tol = 8 * FLT_EPSILON;
    CHECK_MSG(worst1 <= tol, "neon mxfp4 gemv (one token): relative difference %.3g > %.3g", worst1, tol);
    CHECK_MSG(worst3 <= tol, "neon mxfp4 panel (three tokens): relative difference %.3g > %.3g", worst3, tol);
    printf("mxfp4 matmul vs portable: one token (fused gemv) %.2e, three tokens (panel) %.2e (tol %.1e)\n", worst1,
           worst3, tol);
}

/* rows x cols random dt values in [-1, 1] at row stride ld elements (a weight or a cache), allocated to
 * their exact extent. */
static void *rand_rows(be_dtype dt, int rows, int cols, int64_t ld) {
    size_t es = be_dtype_size(dt), n = (size_t)((rows - 1) * ld + cols);
    char *p = malloc(es * n);
    for (size_t i = 0; i < n; i++) {
        float v = frand(-1, 1);
        uint16_t h = dt == BE_F16 ? vc_f32_to_f16(v) : vc_f32_to_bf16(v);
        if (dt == BE_F32) memcpy(p + 4 * i, &v, 4);
        else memcpy(p + 2 * i, &h, 2);
    }
    return p;
}

static double g_worst_qk, g_worst_pv;

/* qk and pv for G heads of hd over count cache rows (stride ld elements), NEON vs portable. */
static void attn_case(be_dtype dt, int G, int hd, int count, int64_t ld) {
    enum { LDS = 11 };
    float q[CPU_ATTN_MAX_GROUP * 136], sn[CPU_ATTN_MAX_GROUP * LDS], sp[CPU_ATTN_MAX_GROUP * LDS];
    float on[CPU_ATTN_MAX_GROUP * 136], op[CPU_ATTN_MAX_GROUP * 136];
    void *kv = rand_rows(dt, count, hd, ld);
    for (int i = 0; i < G * hd; i++) q[i] = frand(-2, 2), on[i] = op[i] = frand(-1, 1);
    cpu_neon_attn_qk(q, G, hd, kv, dt, ld, count, 0.125f, sn, LDS);
    cpu_kernels_force_scalar(1); /* cpu_attn_qk / _pv dispatch to the portable loops */
    cpu_attn_qk(q, G, hd, kv, dt, ld, count, 0.125f, sp, LDS);
    for (int g = 0; g < G; g++)
        for (int j = 0; j < count; j++) {
            double mag = 0;
            for (int c = 0; c < hd; c++) mag += fabs(q[g * hd + c] * cpu_elem_f32(dt, kv, j * ld + c)) * 0.125;
            g_worst_qk = worse(g_worst_qk, fabs((double)sn[g * LDS + j] - sp[g * LDS + j]) / (mag + 1e-30));
            sn[g * LDS + j] = sp[g * LDS + j] = frand(0, 1); /* the probabilities for pv */
        }
    cpu_attn_pv(op, G, hd, sp, LDS, kv, dt, ld, count);
    cpu_kernels_force_scalar(0);
    cpu_neon_attn_pv(on, G, hd, sn, LDS, kv, dt, ld, count);
    for (int g = 0; g < G; g++)
        for (int c = 0; c < hd; c++) {
            double mag = 1; /* o started in [-1, 1]; the products add at most count */
            for (int j = 0; j < count; j++) mag += fabs(sp[g * LDS + j] * cpu_elem_f32(dt, kv, j * ld + c));
            g_worst_pv = worse(g_worst_pv, fabs((double)on[g * hd + c] - op[g * hd + c]) / mag);
        }
    free(kv);
}

static void t_attention(void) {
    static const be_dtype dts[] = {BE_F32, BE_F16, BE_BF16};
    static const int Gs[] = {1, 2, 3, 5, 8}, hds[] = {1, 4, 7, 8, 13, 64, 72, 136}, counts[] = {1, 3, 11};
    int cases = 0;
    for (int d = 0; d < 3; d++)
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 8; b++, cases++)
                attn_case(dts[d], Gs[a], hds[b], counts[(a + b) % 3], hds[b] + (b % 3) * 5);
    double tol = 8 * FLT_EPSILON;
    CHECK_MSG(g_worst_qk <= tol, "neon attention qk: relative difference %.3g > %.3g", g_worst_qk, tol);
    CHECK_MSG(g_worst_pv <= tol, "neon attention pv: relative difference %.3g > %.3g", g_worst_pv, tol);
    printf("attention vs portable, %d cases: qk %.2e, pv %.2e (tol %.1e)\n", cases, g_worst_qk, g_worst_pv, tol);
}

static void t_measure(tp_pool *pool) {
    double gbs = cpu_measure_triad_gbs(pool, 1 << 20, 2), gf = cpu_measure_peak_gflops(NULL);
    CHECK_MSG(gbs > 0 && gf > 0, "measurements: triad %.3g GB/s, peak %.3g GFLOP/s", gbs, gf);
    printf("measurements (emulated, not figures of any chip): triad %.2f GB/s, peak %.2f GFLOP/s\n", gbs, gf);
}

int main(void) {
    tp_pool *pool = NULL;
    CHECK_MSG(tp_create(&pool, 2, "nobind") == 0, "tp_create: %s", vc_errmsg());
    if (!pool) TEST_END();
    CHECK_MSG(strcmp(cpu_kernels_isa(), "neon") == 0, "kernels: %s, want neon", cpu_kernels_isa());
    t_gemv();
    t_decode();
    t_mxfp4_matmul(pool);
    t_attention();
    t_measure(pool);
    tp_free(pool);
    TEST_END();
}
