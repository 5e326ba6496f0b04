/* bench_gpu_matmul: time one backend's matmul op on shapes given on the command line.
 * Not part of `make test`. Build by hand from the repository root after `make`:
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread -o build/bench_gpu_matmul tools/bench_gpu_matmul.c \
 *       build/libvllmc.a -lmicrohttpd -lcurl -lcjson -lpcre2-8 -lutf8proc -lm -ldl
 *
 * Usage: bench_gpu_matmul [-d device] [-t bf16|f16|f32] n K M [n K M]...
 *   x [n, K] f32 times w [M, K]^T, 24 calls recorded back to back and one sync, best of 3 rounds;
 *   the weight cycles through 4 copies so that it comes from device memory, not the L2 cache.
 *   Prints the time per call, the weight bytes per second and the TFLOP/s (2 n K M per call).
 *   The kernel choice follows the backend's own rules and knobs (VLLMC_VULKAN_* in docs/PERFORMANCE.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "base/err.h"
#include "base/half.h"

enum { COPIES = 4, REPS = 24, ROUNDS = 3 };

static be_backend *B;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a [rows, cols] tensor of dtype dt in its own buffer, filled with v (NULL: zeros) */
static int make(be_dtype dt, int64_t rows, int64_t cols, const float *v, be_tensor *out) {
    size_t es = be_dtype_size(dt), n = (size_t)(rows * cols), bytes = n * es;
    unsigned char *img = calloc(1, bytes);
    be_buffer *b = NULL;
    if (!img || B->buffer_alloc(B->ctx, bytes, &b)) {
        free(img);
        return -1;
    }
    for (size_t i = 0; v && i < n; i++) {
        if (dt == BE_F32) {
            memcpy(img + 4 * i, &v[i], 4);
        } else {
            uint16_t h = dt == BE_F16 ? vc_f32_to_f16(v[i]) : vc_f32_to_bf16(v[i]);
            memcpy(img + 2 * i, &h, 2);
        }
    }
    int rc = B->buffer_write(B->ctx, b, 0, img, bytes);
    free(img);
    *out = (be_tensor){b, 0, dt, rows, cols, cols};
    return rc;
}

static int timeit(int64_t n, int64_t K, int64_t M, be_dtype dt) {
    float *x = malloc(sizeof(float) * (size_t)(n * K)), *w = malloc(sizeof(float) * (size_t)(M * K));
    be_tensor X = {0}, O = {0}, W[COPIES] = {{0}};
    int rc = !x || !w;
    for (int64_t i = 0; !rc && i < n * K; i++) x[i] = (float)(i % 7) / 7.0f - 0.5f;
    for (int64_t i = 0; !rc && i < M * K; i++) w[i] = (float)(i % 11) / 44.0f - 0.1f;
    if (!rc) rc = make(BE_F32, n, K, x, &X) || make(BE_F32, n, M, NULL, &O);
    for (int c = 0; c < COPIES && !rc; c++) rc = make(dt, M, K, w, &W[c]);
    double best = 1e30;
    for (int round = 0; round < ROUNDS && !rc; round++) {
        B->matmul(B->ctx, &X, &W[0], NULL, &O); /* pipelines and scratch made outside the timing */
        rc = B->sync(B->ctx);
        double t0 = now_s();
        for (int r = 0; r < REPS && !rc; r++) B->matmul(B->ctx, &X, &W[r % COPIES], NULL, &O);
        if (!rc) rc = B->sync(B->ctx);
        double t = (now_s() - t0) / REPS;
        if (t < best) best = t;
    }
    if (rc) {
        fprintf(stderr, "n=%lld K=%lld M=%lld: %s\n", (long long)n, (long long)K, (long long)M, vc_errmsg());
    } else {
        double bytes = (double)(M * K) * (double)be_dtype_size(dt);
        printf("n=%lld K=%lld M=%lld %s: %.1f us, weights %.0f GB/s, %.1f TFLOP/s\n", (long long)n, (long long)K,
               (long long)M, be_dtype_name(dt), best * 1e6, bytes / best / 1e9, 2.0 * (double)(n * K * M) / best / 1e12);
    }
    for (int c = 0; c < COPIES; c++)
        if (W[c].buf) B->buffer_free(B->ctx, W[c].buf);
    if (X.buf) B->buffer_free(B->ctx, X.buf);
    if (O.buf) B->buffer_free(B->ctx, O.buf);
    free(x), free(w);
    return rc;
}

int main(int argc, char **argv) {
    const char *dev = "gpu";
    be_dtype dt = BE_BF16;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
        if (!strcmp(argv[i], "-d")) dev = argv[i + 1];
        else if (!strcmp(argv[i], "-t")) dt = !strcmp(argv[i + 1], "f32") ? BE_F32 : !strcmp(argv[i + 1], "f16") ? BE_F16 : BE_BF16;
    }
    if (i >= argc || (argc - i) % 3) {
        fprintf(stderr, "usage: bench_gpu_matmul [-d device] [-t bf16|f16|f32] n K M [n K M]...\n");
        return 2;
    }
    if (be_open(dev, &B)) {
        fprintf(stderr, "bench_gpu_matmul: %s\n", vc_errmsg());
        return 1;
    }
    int bad = 0;
    for (; i + 2 < argc; i += 3) bad |= timeit(atoll(argv[i]), atoll(argv[i + 1]), atoll(argv[i + 2]), dt);
    be_free(B);
    return bad;
}
