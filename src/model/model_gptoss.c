/* gpt-oss's MoE blocks (GptOssMLP): mlp.router.{weight [E, D], bias [E]} and mlp.experts.* with biases.
 *
 * The experts come as published, MXFP4 (quantization_config.quant_method "mxfp4"):
 *   gate_up_proj_blocks u8 [E, 2I, D/32, 16], gate_up_proj_scales u8 [E, 2I, D/32],
 *   down_proj_blocks    u8 [E, D, I/32, 16],  down_proj_scales    u8 [E, D, I/32],
 * one row per output feature (gate and up interleaved: row 2i is gate i, row 2i+1 up i), 32 inputs per
 * block, the low nibble first (transformers' convert_moe_packed_tensors). They are repacked once into
 * BE_MXFP4 rows (each block's scale byte before its 16 code bytes: the same 4.25 bits per weight) and
 * decoded in the matmul kernel. An unquantized checkpoint (transformers' dequantized save) holds
 * gate_up_proj [E, D, 2I] and down_proj [E, I, D] (the x @ W orientation of GptOssExperts): those are
 * transposed once into the run dtype. Random weights follow quantization_config: MXFP4 blocks with
 * random codes and scales 2^-7 .. 2^-4, else normals in the run dtype. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/model_internal.h"

/* The largest K (D or I) the CPU MXFP4 kernel takes: one decoded row fits its panel. */
enum { GPTOSS_MXFP4_MAX_K = 65536 };

static int new_buffer(mdl_model *m, size_t bytes, be_buffer **out) {
    int rc = m->be->buffer_alloc(m->be->ctx, bytes ? bytes : 4, out);
    if (!rc && (rc = mdl_add_buf(m, *out))) m->be->buffer_free(m->be->ctx, *out);
    return rc;
}

static int check_u8(const char *dir, const st_set *st, const st_tensor *t, const char *name, int ndim,
                    const int64_t *dims) {
    if (!t) return vc_errf(VC_EFORMAT, "%s: missing tensor '%s'", dir, name);
    const char *file = st->files[t->file].path;
    if (t->dtype != ST_U8)
        return vc_errf(VC_EFORMAT, "%s: tensor '%s' has dtype %s (MXFP4 blocks and scales are U8)", file, name,
                       st_dtype_name(t->dtype));
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == dims[d];
    if (!ok)
        return vc_errf(VC_EFORMAT, "%s: tensor '%s' has a shape other than [%lld, %lld, %lld%s]", file, name,
                       (long long)dims[0], (long long)dims[1], (long long)dims[2], ndim == 4 ? ", 16" : "");
    return VC_OK;
}

/* Rows [r0, r0 + n) of the packed BE_MXFP4 tensor: from the checkpoint's blocks and scales, or random. */
static void pack_rows(wsrc *ws, const uint8_t *blocks, const uint8_t *scales, int64_t r0, int64_t n, int64_t nb,
                      uint8_t *dst) {
    for (int64_t r = 0; r < n; r++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *o = dst + (r * nb + b) * BE_MXFP4_BLOCK_BYTES;
            if (blocks) {
                o[0] = scales[(r0 + r) * nb + b];
                memcpy(o + 1, blocks + ((r0 + r) * nb + b) * 16, 16);
                continue;
            }
            uint64_t x = vc_rng_next(&ws->rng), y = vc_rng_next(&ws->rng);
            o[0] = (uint8_t)(120 + x % 4);
            memcpy(o + 1, &x, 8);
            memcpy(o + 9, &y, 8);
        }
}

/* One MXFP4 projection, base "...experts.gate_up_proj" or "...experts.down_proj": [E * rows, K]. */
static int place_mxfp4(mdl_model *m, wsrc *ws, const char *base, int64_t E, int64_t rows, int64_t K, be_tensor *out) {
    char bn[240], sn[240];
    snprintf(bn, sizeof bn, "%s_blocks", base);
    snprintf(sn, sizeof sn, "%s_scales", base);
    int64_t nb = K / BE_MXFP4_BLOCK, R = E * rows, bd[4] = {E, rows, nb, 16};
    const uint8_t *blocks = NULL, *scales = NULL;
    int rc;
    if (ws->st) {
        const st_tensor *tb = st_find(ws->st, bn), *ts = st_find(ws->st, sn);
        if ((rc = check_u8(ws->dir, ws->st, tb, bn, 4, bd)) || (rc = check_u8(ws->dir, ws->st, ts, sn, 3, bd)))
            return rc;
        blocks = tb->data, scales = ts->data;
    }
    size_t row_bytes = be_dtype_bytes(BE_MXFP4, K), bytes = (size_t)R * row_bytes;
    int64_t chunk = (int64_t)((4u << 20) / row_bytes) + 1;
    be_buffer *buf;
    uint8_t *tmp = malloc((size_t)chunk * row_bytes);
    if (!tmp) return vc_errf(VC_ENOMEM, "out of memory");
    if ((rc = new_buffer(m, bytes, &buf))) goto done;
    for (int64_t r0 = 0; r0 < R && !rc; r0 += chunk) {
        int64_t n = R - r0 < chunk ? R - r0 : chunk;
        pack_rows(ws, blocks, scales, r0, n, nb, tmp);
        rc = m->be->buffer_write(m->be->ctx, buf, (size_t)r0 * row_bytes, tmp, (size_t)n * row_bytes);
    }
    if (rc) goto done;
    if (ws->st) mdl_progress(ws, (uint64_t)R * (uint64_t)nb * 17, (uint64_t)R * (uint64_t)nb * 17);
    *out = be_view(buf, 0, BE_MXFP4, R, K);
    m->weight_bytes += bytes;
    m->bytes_loaded += bytes;
    m->n_params += (uint64_t)R * (uint64_t)K;
done:
    free(tmp);
    return rc ? vc_err_prefix(rc, "tensor '%s'", bn) : VC_OK;
}

/* An unquantized projection stored [E, K, M] (x @ W) as the run dtype's [E * M, K]. */
static int place_transposed(mdl_model *m, wsrc *ws, const char *name, int64_t E, int64_t K, int64_t M,
                            be_tensor *out) {
    const st_tensor *t = st_find(ws->st, name);
    if (!t) return vc_errf(VC_EFORMAT, "%s: missing tensor '%s' (or its MXFP4 '%s_blocks')", ws->dir, name, name);
    const char *file = ws->st->files[t->file].path;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return vc_errf(VC_EUNSUP, "%s: tensor '%s' has dtype %s (supported: F32, F16, BF16)", file, name,
                       st_dtype_name(t->dtype));
    if (t->ndim != 3 || t->shape[0] != E || t->shape[1] != K || t->shape[2] != M)
        return vc_errf(VC_EFORMAT, "%s: tensor '%s' must have shape [%lld, %lld, %lld] (experts, in, out)", file,
                       name, (long long)E, (long long)K, (long long)M);
    be_dtype dt = m->wdtype;
    size_t es = be_dtype_size(dt), per = (size_t)M * (size_t)K;
    be_buffer *buf;
    int rc;
    unsigned char *tmp = malloc(per * es);
    if (!tmp) return vc_errf(VC_ENOMEM, "out of memory");
    if ((rc = new_buffer(m, (size_t)E * per * es, &buf))) goto done;
    for (int64_t e = 0; e < E && !rc; e++) {
        size_t src0 = (size_t)e * per;
        for (int64_t r = 0; r < M; r++)
            for (int64_t k = 0; k < K; k++)
                mdl_store_f32(tmp, dt, (size_t)(r * K + k),
                              mdl_elem_f32(t->data, t->dtype, src0 + (size_t)(k * M + r)));
        rc = m->be->buffer_write(m->be->ctx, buf, (size_t)e * per * es, tmp, per * es);
    }
    if (rc) goto done;
    mdl_progress(ws, t->nbytes, t->nbytes);
    *out = be_view(buf, 0, dt, E * M, K);
    m->weight_bytes += (uint64_t)E * per * es;
    m->n_params += (uint64_t)E * per;
    m->bytes_loaded += (uint64_t)E * per * es;
done:
    free(tmp);
    return rc ? vc_err_prefix(rc, "tensor '%s'", name) : VC_OK;
}

/* The experts' two projections: MXFP4 when the checkpoint has *_blocks (or random weights of an mxfp4
 * config), else unquantized. */
static int place_projs(mdl_model *m, wsrc *ws, const char *pfx, int l, be_tensor *gu, be_tensor *dn) {
    const model_config *c = &m->cfg;
    int64_t E = c->n_experts, D = c->hidden_size, I = c->moe_intermediate_size;
    char g[200], d[200], probe[220];
    snprintf(g, sizeof g, "%slayers.%d.mlp.experts.gate_up_proj", pfx, l);
    snprintf(d, sizeof d, "%slayers.%d.mlp.experts.down_proj", pfx, l);
    snprintf(probe, sizeof probe, "%s_blocks", g);
    int mx = ws->st ? st_find(ws->st, probe) != NULL : c->experts_mxfp4, rc;
    if (mx) {
        if (D % BE_MXFP4_BLOCK || I % BE_MXFP4_BLOCK || D > GPTOSS_MXFP4_MAX_K || I > GPTOSS_MXFP4_MAX_K)
            return vc_errf(VC_EUNSUP, "%s: MXFP4 experts need hidden_size (%lld) and intermediate_size (%lld) to be "
                           "multiples of 32 and at most %d", ws->dir, (long long)D, (long long)I, GPTOSS_MXFP4_MAX_K);
        if ((rc = place_mxfp4(m, ws, g, E, 2 * I, D, gu))) return rc;
        return place_mxfp4(m, ws, d, E, D, I, dn);
    }
    if (!ws->st) {
        int64_t dg[3] = {E, 2 * I, D}, dd[3] = {E, D, I};
        if ((rc = mdl_place_nd(m, ws, g, T_MAT, 3, dg, 0, NULL, 0, gu))) return rc;
        return mdl_place_nd(m, ws, d, T_MAT, 3, dd, 0, NULL, 0, dn);
    }
    if ((rc = place_transposed(m, ws, g, E, D, 2 * I, gu))) return rc;
    return place_transposed(m, ws, d, E, I, D, dn);
}

int mdl_place_gptoss_moe(mdl_model *m, wsrc *ws, const char *pfx, int l, mdl_layer *L, be_tensor *views) {
    const model_config *c = &m->cfg;
    int64_t E = c->n_experts, D = c->hidden_size, I = c->moe_intermediate_size;
    char nm[200];
    int rc;
    snprintf(nm, sizeof nm, "%slayers.%d.mlp.router.weight", pfx, l);
    if ((rc = mdl_place(m, ws, nm, T_ROUTER, E, D, 0, &L->router))) return rc;
    snprintf(nm, sizeof nm, "%slayers.%d.mlp.router.bias", pfx, l);
    if ((rc = mdl_place(m, ws, nm, T_BIAS, E, 0, 0, &L->router_b))) return rc;
    int64_t bg[2] = {E, 2 * I}, bd[2] = {E, D};
    snprintf(nm, sizeof nm, "%slayers.%d.mlp.experts.gate_up_proj_bias", pfx, l);
    if ((rc = mdl_place_nd(m, ws, nm, T_BIAS, 2, bg, 0, NULL, 0, &L->exp_b_gate_up))) return rc;
    snprintf(nm, sizeof nm, "%slayers.%d.mlp.experts.down_proj_bias", pfx, l);
    if ((rc = mdl_place_nd(m, ws, nm, T_BIAS, 2, bd, 0, NULL, 0, &L->exp_b_down))) return rc;
    be_tensor gu, dn;
    if ((rc = place_projs(m, ws, pfx, l, &gu, &dn))) return rc;
    L->exp_gate = views, L->exp_up = NULL, L->exp_down = views + 2 * E;
    for (int64_t e = 0; e < E; e++) {
        L->exp_gate[e] = be_rows(&gu, 2 * I * e, 2 * I);
        L->exp_down[e] = be_rows(&dn, D * e, D);
    }
    /* a decode step reads the router and k experts (with their bias rows) */
    uint64_t one = mdl_tbytes(&L->exp_gate[0]) + mdl_tbytes(&L->exp_down[0]) + 4 * (uint64_t)(2 * I + D);
    m->decode_bytes_per_token += mdl_tbytes(&L->router) + mdl_tbytes(&L->router_b) + (uint64_t)c->n_experts_per_tok * one;
    return VC_OK;
}
