/* runner/moe: the sparse MLP of Mixtral, Qwen2-MoE, Qwen3-MoE and gpt-oss layers (issue 15).
 *
 * Host routing (passes above dev_max tokens: prefill): the router's logits are read back (buffer_read, as
 * the final logits are), and for each token (be_moe_route_row) the softmax over the experts (f32), the top
 * k (ties: the lower expert index first; torch.topk does not promise an order for equal values) and, with
 * norm_topk_prob (always for Mixtral), their renormalisation give the token's experts and weights, as
 * transformers computes them. The
 * (token, expert) pairs are then counting-sorted by expert, so that the backend's grouped matmul reads
 * each active expert's weights once per step for all of its tokens (a decode step reads only the k
 * active experts per token). The pairs' inputs are gathered with get_rows, and moe_combine sums each
 * token's k expert outputs (and Qwen2-MoE's shared expert times sigmoid(x . shared_expert_gate)) with
 * its weights. On a GPU the read-back costs one submission and wait per MoE layer.
 *
 * gpt-oss (GptOssTopKRouter, GptOssExperts): the router has a bias; the top k of the raw logits are
 * taken first and softmaxed among themselves; each expert's gate_up (gate and up columns interleaved)
 * and down projections add that expert's bias row (gathered per pair with get_rows), and the clamped
 * SwiGLU (swiglu_clamp) joins them.
 *
 * Device routing (issue 12): a pass of at most `dev_max` tokens (16; a decode step) on a backend with
 * moe_topk and moe_matmul_ids never reads back: moe_topk writes each token's k experts (ids, in gid's
 * buffer as [n, k]) and combine weights (cwt, with sigmoid of the shared-expert gate logit as column k),
 * moe_matmul_ids runs gate/up (x = h: a token's k pairs share its row) and down (x = the pair's row) by
 * those ids (gpt-oss's bias rows inside it), and moe_combine reads the pairs in token order through a
 * constant index table (didx: pair t * k + j, the shared expert at row chunk * k + t). The host path
 * serves larger passes (prefill: its sort lets each expert's rows run as a GEMM), backends without the
 * ops and VLLMC_MOE_HOST_ROUTING=1 (A/B runs); VLLMC_MOE_DEVICE_MAX_TOKENS=<n> moves the threshold. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "runner/runner_internal.h"

/* Pairs' columns per token in the combine: k experts, plus the shared expert where there is one. */
static int combine_cols(const model_config *c) {
    return c->n_experts_per_tok + (c->shared_expert_intermediate_size > 0);
}

/* Tokens per MoE pass: at most 1024 (a step's larger batch runs in several, each with its own
 * read-back), and few enough that xs and ys fit one view of the device (maxStorageBufferRange). */
static int moe_chunk(const mdl_model *m, int max_tokens) {
    const model_config *c = &m->cfg;
    int64_t wide = c->hidden_size > c->moe_intermediate_size ? c->hidden_size : c->moe_intermediate_size;
    int64_t ch = max_tokens < 1024 ? max_tokens : 1024;
    be_info info;
    if (m->be->info(m->be->ctx, &info) == VC_OK && info.max_view_bytes > 0) {
        int64_t fit = (int64_t)(info.max_view_bytes / (4ull * (uint64_t)(c->n_experts_per_tok + 1) * (uint64_t)wide));
        if (fit < ch) ch = fit;
    }
    return ch < 1 ? 1 : (int)ch;
}

/* gpt-oss's extra scratch columns per pair: egu (2I), eb (max(2I, D)) and eid (1). */
static uint64_t gptoss_cols(const model_config *c) {
    uint64_t I2 = 2 * (uint64_t)c->moe_intermediate_size, D = (uint64_t)c->hidden_size;
    return c->moe_names == CFG_MOE_NAMES_GPTOSS ? I2 + (I2 > D ? I2 : D) + 1 : 0;
}

uint64_t rn_moe_bytes(const mdl_model *m, int max_tokens) {
    const model_config *c = &m->cfg;
    if (c->n_experts <= 0) return 0;
    uint64_t T = (uint64_t)moe_chunk(m, max_tokens), A = T * (uint64_t)c->n_experts_per_tok, D = (uint64_t)c->hidden_size;
    uint64_t I = (uint64_t)c->moe_intermediate_size, kk = (uint64_t)combine_cols(c);
    return 4 * (A * D + 2 * A * I + (A + T) * D + T * (uint64_t)c->n_experts + T + A + 2 * T * kk +
                A * gptoss_cols(c) + RN_MOE_DEVICE_TOKENS * kk);
}

static int gptoss_create(rn_runner *r, int64_t A) {
    const model_config *c = &r->m->cfg;
    struct rn_moe *mo = &r->moe;
    int64_t I2 = 2 * (int64_t)c->moe_intermediate_size, D = c->hidden_size;
    int rc;
    if (c->moe_names != CFG_MOE_NAMES_GPTOSS) return VC_OK;
    if ((rc = rn_alloc(r, BE_F32, A, I2, &mo->egu)) || (rc = rn_alloc(r, BE_F32, A, I2 > D ? I2 : D, &mo->eb)) ||
        (rc = rn_alloc(r, BE_I32, 1, A, &mo->eid)))
        return rc;
    if (!(mo->h_eid = malloc(sizeof(int32_t) * (size_t)A))) return vc_errf(VC_ENOMEM, "out of memory");
    return VC_OK;
}

/* Tokens per pass that route on the device: RN_MOE_DEVICE_TOKENS (or VLLMC_MOE_DEVICE_MAX_TOKENS) where the
 * backend has the ops and the shapes fit their limits; 0 (the host path) otherwise. */
static int device_tokens(const rn_runner *r) {
    const model_config *c = &r->m->cfg;
    const be_backend *be = r->be;
    const char *host = getenv("VLLMC_MOE_HOST_ROUTING"), *env = getenv("VLLMC_MOE_DEVICE_MAX_TOKENS");
    if (!be->moe_topk || !be->moe_matmul_ids || (host && atoi(host) == 1)) return 0;
    if (c->n_experts > BE_MOE_MAX_EXPERTS || c->n_experts_per_tok > BE_MOE_MAX_K) return 0;
    int t = env ? atoi(env) : RN_MOE_DEVICE_TOKENS;
    if (t > BE_MOE_MAX_PAIRS / c->n_experts_per_tok) t = BE_MOE_MAX_PAIRS / c->n_experts_per_tok;
    if (t > r->moe.chunk) t = r->moe.chunk;
    return t < 0 ? 0 : t;
}

/* The device path's constant combine rows: token t's pair j at ys row t * k + j, its shared expert at
 * chunk * k + t. */
static int device_create(rn_runner *r) {
    const model_config *c = &r->m->cfg;
    struct rn_moe *mo = &r->moe;
    int k = c->n_experts_per_tok, kk = combine_cols(c), rc;
    if ((mo->dev_max = device_tokens(r)) <= 0) return VC_OK;
    if ((rc = rn_alloc(r, BE_I32, mo->dev_max, kk, &mo->didx))) return rc;
    for (int t = 0; t < mo->dev_max; t++)
        for (int j = 0; j < kk; j++) mo->h_idx[t * kk + j] = j < k ? t * k + j : mo->chunk * k + t;
    return r->be->buffer_write(r->be->ctx, mo->didx.buf, mo->didx.offset, mo->h_idx,
                               sizeof(int32_t) * (size_t)mo->dev_max * (size_t)kk);
}

int rn_moe_create(rn_runner *r) {
    const model_config *c = &r->m->cfg;
    struct rn_moe *mo = &r->moe;
    if (c->n_experts <= 0) return VC_OK;
    mo->chunk = moe_chunk(r->m, r->p.max_tokens);
    int64_t T = mo->chunk, A = T * c->n_experts_per_tok, D = c->hidden_size, E = c->n_experts;
    int64_t I = c->moe_intermediate_size, kk = combine_cols(c);
    int rc;
    if ((rc = rn_alloc(r, BE_F32, A, D, &mo->xs)) || (rc = rn_alloc(r, BE_F32, A, I, &mo->eg)) ||
        (rc = rn_alloc(r, BE_F32, A, I, &mo->eu)) || (rc = rn_alloc(r, BE_F32, A + T, D, &mo->ys)) ||
        (rc = rn_alloc(r, BE_F32, T, E, &mo->rl)) || (rc = rn_alloc(r, BE_F32, T, 1, &mo->sgl)) ||
        (rc = rn_alloc(r, BE_I32, 1, A, &mo->gid)) || (rc = rn_alloc(r, BE_I32, T, kk, &mo->cidx)) ||
        (rc = rn_alloc(r, BE_F32, T, kk, &mo->cwt)) || (rc = gptoss_create(r, A)))
        return rc;
    mo->h_rl = malloc(sizeof(float) * (size_t)(T * E));
    mo->h_sg = malloc(sizeof(float) * (size_t)T);
    mo->h_w = malloc(sizeof(float) * (size_t)A);
    mo->h_wt = malloc(sizeof(float) * (size_t)(T * kk));
    mo->h_sel = malloc(sizeof(int32_t) * (size_t)A);
    mo->h_gid = malloc(sizeof(int32_t) * (size_t)A);
    mo->h_idx = malloc(sizeof(int32_t) * (size_t)(T * kk));
    mo->cnt = malloc(sizeof(int) * (size_t)E);
    mo->off = malloc(sizeof(int) * (size_t)E);
    mo->grp = malloc(sizeof(be_moe_group) * (size_t)E);
    if (!mo->h_rl || !mo->h_sg || !mo->h_w || !mo->h_wt || !mo->h_sel || !mo->h_gid || !mo->h_idx || !mo->cnt ||
        !mo->off || !mo->grp)
        return vc_errf(VC_ENOMEM, "out of memory");
    return device_create(r);
}

void rn_moe_free(rn_runner *r) {
    struct rn_moe *mo = &r->moe;
    free(mo->h_rl);
    free(mo->h_sg);
    free(mo->h_w);
    free(mo->h_wt);
    free(mo->h_sel);
    free(mo->h_gid);
    free(mo->h_idx);
    free(mo->cnt);
    free(mo->off);
    free(mo->grp);
    free(mo->h_eid);
}

/* moe_topk's flags for the model's routing flavour. */
static int route_flags(const model_config *c) {
    return c->topk_then_softmax ? BE_MOE_TOPK_FIRST : c->norm_topk_prob ? BE_MOE_NORM : 0;
}

/* Route n tokens and sort their pairs by expert: the groups, each pair's token (h_gid), and each token's
 * rows of ys and weights for the combine (h_idx, h_wt). Returns the number of groups. */
static int route(rn_runner *r, int n) {
    const model_config *c = &r->m->cfg;
    struct rn_moe *mo = &r->moe;
    int E = c->n_experts, k = c->n_experts_per_tok, kk = combine_cols(c), ng = 0;
    memset(mo->cnt, 0, sizeof(int) * (size_t)E);
    for (int t = 0; t < n; t++) {
        be_moe_route_row(mo->h_rl + (size_t)t * (size_t)E, E, k, route_flags(c), mo->h_sel + (size_t)t * k,
                         mo->h_w + (size_t)t * k);
        for (int j = 0; j < k; j++) mo->cnt[mo->h_sel[t * k + j]]++;
    }
    for (int e = 0, o = 0; e < E; o += mo->cnt[e], e++) {
        mo->off[e] = o;
        if (mo->cnt[e]) mo->grp[ng++] = (be_moe_group){e, o, mo->cnt[e]};
    }
    for (int t = 0; t < n; t++) { /* pairs in token order within each expert: a stable counting sort */
        for (int j = 0; j < k; j++) {
            int p = mo->off[mo->h_sel[t * k + j]]++;
            mo->h_gid[p] = t;
            if (mo->h_eid) mo->h_eid[p] = mo->h_sel[t * k + j];
            mo->h_idx[t * kk + j] = p;
            mo->h_wt[t * kk + j] = mo->h_w[t * k + j];
        }
        if (kk > k) { /* the shared expert's output row and its gate, sigmoid in f32 */
            mo->h_idx[t * kk + k] = n * k + t;
            mo->h_wt[t * kk + k] = 1.0f / (1.0f + expf(-mo->h_sg[t]));
        }
    }
    return ng;
}

/* The router (and shared-expert gate) logits of n rows of h, computed and read back. */
static int router_logits(rn_runner *r, int n, const be_tensor *h, const mdl_layer *L) {
    be_backend *be = r->be;
    struct rn_moe *mo = &r->moe;
    int E = r->m->cfg.n_experts, rc;
    be_tensor rl = be_view(mo->rl.buf, mo->rl.offset, BE_F32, n, E), sg = be_rows(&mo->sgl, 0, n);
    be->matmul(be->ctx, h, &L->router, L->router_b.rows ? &L->router_b : NULL, &rl);
    if (L->shared_gate.rows) be->matmul(be->ctx, h, &L->shared_gate, NULL, &sg);
    if ((rc = be->buffer_read(be->ctx, rl.buf, rl.offset, mo->h_rl, sizeof(float) * (size_t)n * (size_t)E)))
        return rc;
    if (L->shared_gate.rows) return be->buffer_read(be->ctx, sg.buf, sg.offset, mo->h_sg, sizeof(float) * (size_t)n);
    return VC_OK;
}

static int upload_routes(rn_runner *r, int n) {
    const model_config *c = &r->m->cfg;
    be_backend *be = r->be;
    struct rn_moe *mo = &r->moe;
    size_t A = (size_t)n * (size_t)c->n_experts_per_tok, nk = (size_t)n * (size_t)combine_cols(c);
    int rc;
    if ((rc = be->buffer_write(be->ctx, mo->gid.buf, mo->gid.offset, mo->h_gid, A * sizeof(int32_t))) ||
        (mo->h_eid &&
         (rc = be->buffer_write(be->ctx, mo->eid.buf, mo->eid.offset, mo->h_eid, A * sizeof(int32_t)))) ||
        (rc = be->buffer_write(be->ctx, mo->cidx.buf, mo->cidx.offset, mo->h_idx, nk * sizeof(int32_t))))
        return rc;
    return be->buffer_write(be->ctx, mo->cwt.buf, mo->cwt.offset, mo->h_wt, nk * sizeof(float));
}

/* Qwen2-MoE's shared expert over all n rows into ys rows [row0, row0 + n). */
static void shared_expert(rn_runner *r, int n, const be_tensor *h, const mdl_layer *L, int64_t row0) {
    const model_config *c = &r->m->cfg;
    be_backend *be = r->be;
    int64_t Fs = c->shared_expert_intermediate_size;
    be_tensor g = be_view(r->g.buf, r->g.offset, BE_F32, n, Fs), u = be_view(r->u.buf, r->u.offset, BE_F32, n, Fs);
    be_tensor ys = be_rows(&r->moe.ys, row0, n);
    const be_tensor *wt[2] = {&L->w_gate, &L->w_up}, *bias[2] = {NULL, NULL}, *o[2] = {&g, &u};
    be_matmul_multi(be, h, 2, wt, bias, o);
    be->silu_mul(be->ctx, &g, &u, &g);
    be->matmul(be->ctx, &g, &L->w_down, NULL, &ys);
}

/* gpt-oss's experts for A pairs: gate_up + bias, the clamped SwiGLU, down + bias, into ys. */
static void gptoss_experts(rn_runner *r, int64_t A, int ng, const be_tensor *xs, const mdl_layer *L) {
    const model_config *c = &r->m->cfg;
    be_backend *be = r->be;
    struct rn_moe *mo = &r->moe;
    int64_t I = c->moe_intermediate_size, D = c->hidden_size;
    be_tensor eid = be_cols(&mo->eid, 0, A), egu = be_rows(&mo->egu, 0, A), eg = be_rows(&mo->eg, 0, A);
    be_tensor ys = be_rows(&mo->ys, 0, A);
    be_tensor bgu = be_view(mo->eb.buf, mo->eb.offset, BE_F32, A, 2 * I);
    be_tensor bd = be_view(mo->eb.buf, mo->eb.offset, BE_F32, A, D);
    const be_tensor *wgu[1] = {L->exp_gate}, *ogu[1] = {&egu}, *wd[1] = {L->exp_down}, *od[1] = {&ys};
    be_matmul_grouped(be, xs, ng, mo->grp, 1, wgu, ogu);
    be->get_rows(be->ctx, &L->exp_b_gate_up, &eid, &bgu);
    be->add(be->ctx, &egu, &bgu, &egu);
    be->swiglu_clamp(be->ctx, &egu, c->swiglu_alpha, c->swiglu_limit, &eg);
    be_matmul_grouped(be, &eg, ng, mo->grp, 1, wd, od);
    be->get_rows(be->ctx, &L->exp_b_down, &eid, &bd);
    be->add(be->ctx, &ys, &bd, &ys);
}

static int moe_pass(rn_runner *r, int n, const be_tensor *h, int l) {
    const model_config *c = &r->m->cfg;
    const mdl_layer *L = &r->m->layers[l];
    be_backend *be = r->be;
    struct rn_moe *mo = &r->moe;
    int rc = router_logits(r, n, h, L);
    if (rc) return rc;
    int ng = route(r, n);
    if ((rc = upload_routes(r, n))) return rc;
    int64_t A = (int64_t)n * c->n_experts_per_tok, kk = combine_cols(c);
    be_tensor gid = be_cols(&mo->gid, 0, A), xs = be_rows(&mo->xs, 0, A);
    be_tensor eg = be_rows(&mo->eg, 0, A), eu = be_rows(&mo->eu, 0, A), ys = be_rows(&mo->ys, 0, A);
    be->get_rows(be->ctx, h, &gid, &xs);
    if (c->moe_names == CFG_MOE_NAMES_GPTOSS) {
        gptoss_experts(r, A, ng, &xs, L);
        be_tensor idx = be_view(mo->cidx.buf, mo->cidx.offset, BE_I32, n, kk);
        be_tensor wts = be_view(mo->cwt.buf, mo->cwt.offset, BE_F32, n, kk);
        be->moe_combine(be->ctx, &ys, &idx, &wts, h);
        return VC_OK;
    }
    const be_tensor *wgu[2] = {L->exp_gate, L->exp_up}, *ogu[2] = {&eg, &eu}, *wd[1] = {L->exp_down}, *od[1] = {&ys};
    be_matmul_grouped(be, &xs, ng, mo->grp, 2, wgu, ogu);
    be->silu_mul(be->ctx, &eg, &eu, &eg);
    be_matmul_grouped(be, &eg, ng, mo->grp, 1, wd, od);
    if (kk > c->n_experts_per_tok) shared_expert(r, n, h, L, A);
    be_tensor all = be_rows(&mo->ys, 0, A + (kk > c->n_experts_per_tok ? n : 0));
    be_tensor idx = be_view(mo->cidx.buf, mo->cidx.offset, BE_I32, n, kk);
    be_tensor wts = be_view(mo->cwt.buf, mo->cwt.offset, BE_F32, n, kk);
    be->moe_combine(be->ctx, &all, &idx, &wts, h);
    return VC_OK;
}

static _Atomic uint64_t device_passes;

uint64_t rn_moe_device_passes(void) { return atomic_load(&device_passes); }

/* A pass of n <= dev_max tokens routed on the device: nothing is read back (see the header). */
static void device_pass(rn_runner *r, int n, const be_tensor *h, int l) {
    const model_config *c = &r->m->cfg;
    const mdl_layer *L = &r->m->layers[l];
    be_backend *be = r->be;
    struct rn_moe *mo = &r->moe;
    int E = c->n_experts, k = c->n_experts_per_tok, kk = combine_cols(c);
    int64_t A = (int64_t)n * k, shared_row = (int64_t)mo->chunk * k;
    be_tensor rl = be_view(mo->rl.buf, mo->rl.offset, BE_F32, n, E), sg = be_rows(&mo->sgl, 0, n);
    be_tensor ids = be_view(mo->gid.buf, mo->gid.offset, BE_I32, n, k);
    be_tensor wts = be_view(mo->cwt.buf, mo->cwt.offset, BE_F32, n, kk);
    be_tensor idx = be_view(mo->didx.buf, mo->didx.offset, BE_I32, n, kk);
    be_tensor eg = be_rows(&mo->eg, 0, A), ys = be_rows(&mo->ys, 0, A);
    be->matmul(be->ctx, h, &L->router, L->router_b.rows ? &L->router_b : NULL, &rl);
    if (L->shared_gate.rows) be->matmul(be->ctx, h, &L->shared_gate, NULL, &sg);
    be->moe_topk(be->ctx, &rl, k, route_flags(c), L->shared_gate.rows ? &sg : NULL, &ids, &wts);
    const be_tensor *wd[1] = {L->exp_down}, *od[1] = {&ys};
    if (c->moe_names == CFG_MOE_NAMES_GPTOSS) {
        be_tensor egu = be_rows(&mo->egu, 0, A);
        const be_tensor *wgu[1] = {L->exp_gate}, *bgu[1] = {&L->exp_b_gate_up}, *ogu[1] = {&egu};
        const be_tensor *bd[1] = {&L->exp_b_down};
        be->moe_matmul_ids(be->ctx, h, E, 1, wgu, bgu, &ids, ogu);
        be->swiglu_clamp(be->ctx, &egu, c->swiglu_alpha, c->swiglu_limit, &eg);
        be->moe_matmul_ids(be->ctx, &eg, E, 1, wd, bd, &ids, od);
    } else {
        be_tensor eu = be_rows(&mo->eu, 0, A);
        const be_tensor *wgu[2] = {L->exp_gate, L->exp_up}, *ogu[2] = {&eg, &eu};
        be->moe_matmul_ids(be->ctx, h, E, 2, wgu, NULL, &ids, ogu);
        be->silu_mul(be->ctx, &eg, &eu, &eg);
        be->moe_matmul_ids(be->ctx, &eg, E, 1, wd, NULL, &ids, od);
        if (kk > k) shared_expert(r, n, h, L, shared_row);
    }
    be_tensor all = be_rows(&mo->ys, 0, shared_row + (kk > k ? n : 0));
    be->moe_combine(be->ctx, &all, &idx, &wts, h);
    atomic_fetch_add(&device_passes, 1);
}

int rn_moe_forward(rn_runner *r, int n, const be_tensor *h, int l) {
    int rc = VC_OK;
    if (n <= r->moe.dev_max) {
        device_pass(r, n, h, l);
        return VC_OK;
    }
    for (int t0 = 0; t0 < n && !rc; t0 += r->moe.chunk) {
        int nc = n - t0 < r->moe.chunk ? n - t0 : r->moe.chunk;
        be_tensor hc = be_rows(h, t0, nc);
        rc = moe_pass(r, nc, &hc, l);
    }
    return rc;
}
