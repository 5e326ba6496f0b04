/* CPU backend ops against plain double-precision references on random data:
 * paged attention over shuffled blocks (several sequences, chunked queries,
 * GQA, sliding window, f32/f16/bf16 caches), rope, rmsnorm, kv_write. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/kernels.h"
#include "base/half.h"
#include "test.h"

static uint64_t rs = 12345;
static float frand(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((rs >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static be_tensor mk(be_backend *be, be_dtype dt, int64_t rows, int64_t cols, const void *src) {
    be_buffer *b;
    size_t bytes = (size_t)(rows * cols) * be_dtype_size(dt);
    CHECK(be->buffer_alloc(be->ctx, bytes, &b) == 0);
    if (src) CHECK(be->buffer_write(be->ctx, b, 0, src, bytes) == 0);
    return be_view(b, 0, dt, rows, cols);
}

static float round_to(be_dtype dt, float v) {
    if (dt == BE_F16) return vc_f16_to_f32(vc_f32_to_f16(v));
    if (dt == BE_BF16) return vc_bf16_to_f32(vc_f32_to_bf16(v));
    return v;
}

static void test_attention(be_backend *be, be_dtype cdt, int window, int H, int HKV) {
    enum { S = 3, HD = 16, BS = 4, NB = 24, MAXB = 8, HMAX = 20 };
    int seq_len[S] = {5, 17, 30}, q_len[S] = {5, 3, 1}; /* full prefill, a chunk, a decode */
    int n = 0;
    for (int s = 0; s < S; s++) n += q_len[s];
    /* shuffled distinct blocks */
    int perm[NB];
    for (int i = 0; i < NB; i++) perm[i] = i;
    for (int i = NB - 1; i > 0; i--) {
        int j = (int)((frand() + 1) * 0.5f * (float)i);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int32_t bt[S * MAXB];
    for (int i = 0; i < S * MAXB; i++) bt[i] = perm[i];
    /* full K/V of every sequence (rounded to the cache dtype), queries for the new rows */
    static float K[S][32][HMAX * HD], Vv[S][32][HMAX * HD], Q[64][HMAX * HD];
    for (int s = 0; s < S; s++)
        for (int t = 0; t < seq_len[s]; t++)
            for (int c = 0; c < HKV * HD; c++) {
                K[s][t][c] = round_to(cdt, frand());
                Vv[s][t][c] = round_to(cdt, frand());
            }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < H * HD; c++) Q[r][c] = frand();
    be_tensor kc = mk(be, cdt, NB * BS, HKV * HD, NULL), vc = mk(be, cdt, NB * BS, HKV * HD, NULL);
    /* write all tokens through kv_write with their slots */
    for (int s = 0; s < S; s++) {
        int32_t slots[32];
        for (int t = 0; t < seq_len[s]; t++) slots[t] = bt[s * MAXB + t / BS] * BS + t % BS;
        static float kp[32 * HMAX * HD], vp[32 * HMAX * HD];
        for (int t = 0; t < seq_len[s]; t++)
            for (int c = 0; c < HKV * HD; c++) {
                kp[t * HKV * HD + c] = K[s][t][c];
                vp[t * HKV * HD + c] = Vv[s][t][c];
            }
        be_tensor kt = mk(be, BE_F32, seq_len[s], HKV * HD, kp), vt = mk(be, BE_F32, seq_len[s], HKV * HD, vp);
        be_tensor st = mk(be, BE_I32, 1, seq_len[s], slots);
        be->kv_write(be->ctx, &kt, &st, &kc);
        be->kv_write(be->ctx, &vt, &st, &vc);
        be->buffer_free(be->ctx, kt.buf);
        be->buffer_free(be->ctx, vt.buf);
        be->buffer_free(be->ctx, st.buf);
    }
    int32_t qs[S + 1] = {0};
    for (int s = 0; s < S; s++) qs[s + 1] = qs[s] + q_len[s];
    static float qp[64 * HMAX * HD];
    for (int r = 0; r < n; r++)
        for (int c = 0; c < H * HD; c++) qp[r * H * HD + c] = Q[r][c];
    be_tensor q = mk(be, BE_F32, n, H * HD, qp), out = mk(be, BE_F32, n, H * HD, NULL);
    be_attn_meta meta = {S, mk(be, BE_I32, 1, S + 1, qs), mk(be, BE_I32, 1, S, seq_len), mk(be, BE_I32, S, MAXB, bt), BS, 30};
    be_attn_shape shape = {H, HKV, HD, 0.25f, window};
    be->attention(be->ctx, &q, &kc, &vc, &meta, &shape, &out);
    CHECK(be->sync(be->ctx) == 0);
    static float got[64 * HMAX * HD];
    CHECK(be->buffer_read(be->ctx, out.buf, 0, got, sizeof(float) * (size_t)n * H * HD) == 0);
    double worst = 0;
    for (int s = 0; s < S; s++)
        for (int i = 0; i < q_len[s]; i++) {
            int r = qs[s] + i, pos = seq_len[s] - q_len[s] + i;
            for (int h = 0; h < H; h++) {
                int kvh = h / (H / HKV);
                int j0 = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
                double sc[32], mx = -1e30, z = 0;
                for (int j = j0; j <= pos; j++) {
                    double d = 0;
                    for (int c = 0; c < HD; c++) d += (double)Q[r][h * HD + c] * K[s][j][kvh * HD + c];
                    sc[j] = d * 0.25;
                    mx = fmax(mx, sc[j]);
                }
                for (int j = j0; j <= pos; j++) z += sc[j] = exp(sc[j] - mx);
                for (int c = 0; c < HD; c++) {
                    double o = 0;
                    for (int j = j0; j <= pos; j++) o += sc[j] / z * Vv[s][j][kvh * HD + c];
                    worst = fmax(worst, fabs(o - got[(r * H + h) * HD + c]));
                }
            }
        }
    CHECK_MSG(worst < 2e-5, "attention (%s, window %d, %d/%d heads) error %g", be_dtype_name(cdt), window, H, HKV, worst);
    be_buffer *bufs[] = {kc.buf, vc.buf, q.buf, out.buf, meta.q_start.buf, meta.seq_len.buf, meta.block_table.buf};
    for (int i = 0; i < 7; i++) be->buffer_free(be->ctx, bufs[i]);
}

static void test_rope_norm(be_backend *be) {
    enum { N = 5, H = 3, HD = 8, ROT = 6 };
    float x[N][H * HD], inv[ROT / 2] = {1.0f, 0.1f, 0.01f}, w[HD];
    int32_t pos[N] = {0, 1, 7, 100, 511};
    for (int i = 0; i < N; i++)
        for (int c = 0; c < H * HD; c++) x[i][c] = frand();
    for (int c = 0; c < HD; c++) w[c] = 1 + frand();
    be_tensor xt = mk(be, BE_F32, N, H * HD, x), pt = mk(be, BE_I32, 1, N, pos), it = mk(be, BE_F32, 1, ROT / 2, inv);
    be->rope(be->ctx, &xt, HD, ROT, &pt, &it);
    float got[N][H * HD];
    CHECK(be->buffer_read(be->ctx, xt.buf, 0, got, sizeof got) == 0);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++)
            for (int c = 0; c < HD; c++) {
                const float *v = &x[i][h * HD];
                double want = v[c];
                if (c < ROT) {
                    int k = c % (ROT / 2);
                    double a = (double)pos[i] * inv[k];
                    want = c < ROT / 2 ? v[c] * cos(a) - v[c + ROT / 2] * sin(a) : v[c] * cos(a) + v[c - ROT / 2] * sin(a);
                }
                CHECK_NEAR(got[i][h * HD + c], want, 2e-4);
            }
    /* head-wise rmsnorm, in place, with a weight offset */
    be_tensor hv = be_view(xt.buf, 0, BE_F32, N * H, HD), wt = mk(be, BE_F32, 1, HD, w);
    CHECK(be->buffer_write(be->ctx, xt.buf, 0, x, sizeof x) == 0);
    be->rmsnorm(be->ctx, &hv, &wt, 1e-6f, 1.0f, &hv);
    CHECK(be->buffer_read(be->ctx, xt.buf, 0, got, sizeof got) == 0);
    for (int r = 0; r < N * H; r++) {
        const float *v = &x[r / H][(r % H) * HD];
        double ss = 0;
        for (int c = 0; c < HD; c++) ss += (double)v[c] * v[c];
        for (int c = 0; c < HD; c++)
            CHECK_NEAR(got[r / H][(r % H) * HD + c], v[c] / sqrt(ss / HD + 1e-6) * (w[c] + 1.0), 1e-5);
    }
    be->buffer_free(be->ctx, xt.buf);
    be->buffer_free(be->ctx, pt.buf);
    be->buffer_free(be->ctx, it.buf);
    be->buffer_free(be->ctx, wt.buf);
}

int main(void) {
    be_backend *be;
    CHECK(be_cpu_create(&be, 0, NULL) == 0);
    be_dtype dts[] = {BE_F32, BE_F16, BE_BF16};
    for (int scalar = 0; scalar < 2; scalar++) {
        cpu_kernels_force_scalar(scalar);
        for (int i = 0; i < 3; i++) {
            test_attention(be, dts[i], 0, 4, 2);
            test_attention(be, dts[i], 6, 4, 2);
            test_attention(be, dts[i], 0, 20, 2); /* 10 heads per KV head: split into groups of 8 */
            test_attention(be, dts[i], 3, 7, 1);
        }
    }
    cpu_kernels_force_scalar(0);
    test_rope_norm(be);
    be_free(be);
    TEST_END();
}
