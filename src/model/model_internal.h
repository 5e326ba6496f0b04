/* model_internal: what model.c shares with the per-family placement files (model_gptoss.c).
 *
 * A wsrc is where tensors come from: a checkpoint (st) or a random generator (st == NULL). Every buffer
 * placed is owned by the model (mdl_add_buf) and counted in its byte totals. */
#ifndef VLLMC_MODEL_INTERNAL_H
#define VLLMC_MODEL_INTERNAL_H

#include <stdint.h>

#include "base/rng.h"
#include "model/model.h"

/* T_MAT: a weight matrix in the model's dtype; T_ROUTER: a MoE router (or shared-expert gate) matrix, kept
 * in f32 whatever the model's dtype (exact from f16/bf16; the expert choice then never depends on the
 * activations' rounding, e.g. by the CPU's bf16 dot products, issue 18); T_NORM, T_BIAS: vectors, f32. */
typedef enum { T_MAT, T_ROUTER, T_NORM, T_BIAS } tkind;

typedef struct {
    const char *dir;
    const st_set *st;
    vc_rng rng;
    /* progress bar on a terminal (vLLM's "Loading safetensors checkpoint shards"), by checkpoint bytes:
     * done of total handled, of which `read` were read and converted or copied; the rest is used in
     * place from the mmap and costs nothing until the first forward pass touches it */
    int tty;
    uint64_t done, total, read;
    double t0, shown;
    /* random weights: RTAB normals already in the run dtype; each chunk of a
     * matrix copies RCHUNK of them from a random start (drawing billions of
     * values one by one took a minute for an 8B model) */
    unsigned char *rtab;
} wsrc;

enum { RCHUNK = 1 << 16, RTAB = 1 << 20 };

void mdl_progress(wsrc *ws, uint64_t add, uint64_t read);
int mdl_add_buf(mdl_model *m, be_buffer *b);
uint64_t mdl_tbytes(const be_tensor *t);
/* Element i of a checkpoint tensor as f32; v stored as element i of a dt array (f32/f16/bf16). */
float mdl_elem_f32(const void *src, st_dtype t, size_t i);
void mdl_store_f32(void *dst, be_dtype t, size_t i, float v);
/* Place one tensor of shape dims[0..ndim) (ndim 1..3) as a 2-D view ([a, b, c] is [a * b, c]): T_MAT in
 * the run dtype, norms and biases f32; into a fresh buffer, or at into_off of `into`. Optional tensors
 * that are absent come back with rows == 0. */
int mdl_place_nd(mdl_model *m, wsrc *ws, const char *name, tkind kind, int ndim, const int64_t *dims, int optional,
                 be_buffer *into, size_t into_off, be_tensor *out);
/* A matrix (cols > 0) or a 1-D tensor of `rows` elements (cols == 0). */
int mdl_place(mdl_model *m, wsrc *ws, const char *name, tkind kind, int64_t rows, int64_t cols, int optional,
              be_tensor *out);

/* model_gptoss.c: a gpt-oss MoE block (router with bias, experts in MXFP4 or unquantized, their biases);
 * views holds the layer's 3 * E expert views. */
int mdl_place_gptoss_moe(mdl_model *m, wsrc *ws, const char *pfx, int l, mdl_layer *L, be_tensor *views);

#endif
