/* runner/moe: the sparse MLP of Mixtral, Qwen2-MoE, Qwen3-MoE and gpt-oss layers (issue 15).
 *
 * Routing runs on the host: the router's logits are read back (buffer_read, as the final logits are),
 * and for each token the softmax over the experts (f32), the top k (ties: the lower expert index first;
 * torch.topk does not promise an order for equal values) and, with norm_topk_prob (always for Mixtral),
 * their renormalisation give the token's experts and weights, as transformers computes them. The
 * (token, expert) pairs are then counting-sorted by expert, so that the backend's grouped matmul reads
 * each active expert's weights once per step for all of its tokens (a decode step reads only the k
 * active experts per token). The pairs' inputs are gathered with get_rows, and moe_combine sums each
 * token's k expert outputs (and Qwen2-MoE's shared expert times sigmoid(x . shared_expert_gate)) with
 * its weights. On a GPU the read-back costs one submission and wait per MoE layer.
 *
 * gpt-oss (GptOssTopKRouter, GptOssExperts): the router has a bias; the top k of the raw logits are
 * taken first and softmaxed among themselves; each expert's gate_up (gate and up columns interleaved)
 * and down projections add that expert's bias row (gathered per pair with get_rows), and the clamped
 * SwiGLU (swiglu_clamp) joins them. */
#include <math.h>
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
                A * gptoss_cols(c));
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
    return VC_OK;
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

/* The k largest of p[0..E) into sel (descending; ties to the lower index). */
static void top_k(const float *p, int E, int k, int32_t *sel) {
    unsigned char taken[CFG_MAX_EXPERTS];
    memset(taken, 0, (size_t)E);
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
        taken[best] = 1;
        sel[j] = best;
    }
}

/* gpt-oss: the top k of the logits, then the softmax of those k (f32, max subtracted). */
static void route_token_topk_first(const float *p, int E, int k, int32_t *sel, float *w) {
    top_k(p, E, k, sel);
    float mx = p[sel[0]], sum = 0;
    for (int j = 0; j < k; j++) sum += (w[j] = expf(p[sel[j]] - mx));
    for (int j = 0; j < k; j++) w[j] /= sum;
}

/* One token: softmax of the router logits p[0..E) in place (f32, max subtracted, as torch), then the
 * k largest into sel/w (descending; ties to the lower index), renormalised to sum 1 when `norm`. */
static void route_token(float *p, int E, int k, int norm, int32_t *sel, float *w) {
    float mx = p[0], sum = 0;
    for (int e = 1; e < E; e++) mx = p[e] > mx ? p[e] : mx;
    for (int e = 0; e < E; e++) sum += (p[e] = expf(p[e] - mx));
    for (int e = 0; e < E; e++) p[e] /= sum;
    top_k(p, E, k, sel);
    float tot = 0;
    for (int j = 0; j < k; j++) tot += (w[j] = p[sel[j]]);
    for (int j = 0; norm && j < k; j++) w[j] /= tot;
}

/* Route n tokens and sort their pairs by expert: the groups, each pair's token (h_gid), and each token's
 * rows of ys and weights for the combine (h_idx, h_wt). Returns the number of groups. */
static int route(rn_runner *r, int n) {
    const model_config *c = &r->m->cfg;
    struct rn_moe *mo = &r->moe;
    int E = c->n_experts, k = c->n_experts_per_tok, kk = combine_cols(c), ng = 0;
    memset(mo->cnt, 0, sizeof(int) * (size_t)E);
    for (int t = 0; t < n; t++) {
        if (c->topk_then_softmax)
            route_token_topk_first(mo->h_rl + (size_t)t * (size_t)E, E, k, mo->h_sel + (size_t)t * k,
                                   mo->h_w + (size_t)t * k);
        else
            route_token(mo->h_rl + (size_t)t * (size_t)E, E, k, c->norm_topk_prob, mo->h_sel + (size_t)t * k,
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

/* Qwen2-MoE's shared expert over all n rows into ys rows [n * k, n * k + n). */
static void shared_expert(rn_runner *r, int n, const be_tensor *h, const mdl_layer *L) {
    const model_config *c = &r->m->cfg;
    be_backend *be = r->be;
    int64_t Fs = c->shared_expert_intermediate_size;
    be_tensor g = be_view(r->g.buf, r->g.offset, BE_F32, n, Fs), u = be_view(r->u.buf, r->u.offset, BE_F32, n, Fs);
    be_tensor ys = be_rows(&r->moe.ys, (int64_t)n * c->n_experts_per_tok, n);
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
    if (kk > c->n_experts_per_tok) shared_expert(r, n, h, L);
    be_tensor all = be_rows(&mo->ys, 0, A + (kk > c->n_experts_per_tok ? n : 0));
    be_tensor idx = be_view(mo->cidx.buf, mo->cidx.offset, BE_I32, n, kk);
    be_tensor wts = be_view(mo->cwt.buf, mo->cwt.offset, BE_F32, n, kk);
    be->moe_combine(be->ctx, &all, &idx, &wts, h);
    return VC_OK;
}

int rn_moe_forward(rn_runner *r, int n, const be_tensor *h, int l) {
    int rc = VC_OK;
    for (int t0 = 0; t0 < n && !rc; t0 += r->moe.chunk) {
        int nc = n - t0 < r->moe.chunk ? n - t0 : r->moe.chunk;
        be_tensor hc = be_rows(h, t0, nc);
        rc = moe_pass(r, nc, &hc, l);
    }
    return rc;
}
