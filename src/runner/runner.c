/* The forward pass. One path for every supported architecture: the config's
 * flags decide whether biases, q/k norms and a separate head take part. */
#include "runner/runner.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "runner/runner_internal.h"



int rn_alloc(rn_runner *r, be_dtype dt, int64_t rows, int64_t cols, be_tensor *out) {
    be_buffer *b;
    size_t bytes = (size_t)rows * (size_t)cols * be_dtype_size(dt);
    if (r->n_bufs >= r->cap_bufs) return vc_errf(VC_ERR, "runner: more buffers than the %d planned", r->cap_bufs);
    int rc = r->be->buffer_alloc(r->be->ctx, bytes ? bytes : 4, &b);
    if (rc) return rc;
    r->bufs[r->n_bufs++] = b;
    *out = be_view(b, 0, dt, rows, cols);
    return VC_OK;
}

uint64_t rn_kv_bytes_per_block(const mdl_model *m, int block_size, be_dtype kv_dtype) {
    return 2ull * (uint64_t)m->cfg.n_layers * (uint64_t)block_size * (uint64_t)m->cfg.n_kv_heads *
           (uint64_t)m->cfg.head_dim * be_dtype_size(kv_dtype);
}

/* Columns of the gate/up activations: the dense MLP's, or Qwen2-MoE's shared expert's if wider. */
static int64_t rn_mlp_width(const model_config *c) {
    return c->shared_expert_intermediate_size > c->intermediate_size ? c->shared_expert_intermediate_size
                                                                     : c->intermediate_size;
}

uint64_t rn_activation_bytes(const mdl_model *m, int max_tokens, int max_logits) {
    const model_config *c = &m->cfg;
    uint64_t T = (uint64_t)max_tokens, qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t per_tok = 2ull * c->hidden_size + 2 * qd + 2 * kvd + 2ull * rn_mlp_width(c) + 3;
    /* per logit row: sel, logits, logit_rows, amax */
    return 4 * (T * per_tok + (uint64_t)max_logits * ((uint64_t)c->hidden_size + c->vocab_size + 2)) +
           rn_moe_bytes(m, max_tokens);
}

int rn_create(mdl_model *m, const rn_params *p, rn_runner **out) {
    *out = NULL;
    if (p->max_tokens < 1 || p->max_seqs < 1 || p->max_blocks < 1 || p->num_blocks < 1 || p->block_size < 1)
        return vc_errf(VC_EINVAL, "runner: all sizes must be positive");
    if (p->kv_dtype == BE_I32) return vc_errf(VC_EINVAL, "runner: KV cache dtype must be f32, f16 or bf16");
    rn_runner *r = calloc(1, sizeof *r);
    if (!r) return vc_errf(VC_ENOMEM, "out of memory");
    const model_config *c = &m->cfg;
    r->m = m;
    r->be = m->be;
    r->p = *p;
    int L = c->n_layers;
    if (p->max_loras < 0 || (p->max_loras > 0 && p->max_lora_rank < 1))
        return free(r), vc_errf(VC_EINVAL, "runner: LoRA slots need a positive rank");
    r->cap_bufs = 64 + 2 * L + p->max_loras;
    const char *ha = getenv("VLLMC_HOST_ARGMAX");
    r->host_argmax = ha && !strcmp(ha, "1");
    r->bufs = calloc((size_t)r->cap_bufs, sizeof *r->bufs);
    r->kc = calloc((size_t)L, sizeof *r->kc);
    r->vc = calloc((size_t)L, sizeof *r->vc);
    r->runs = calloc((size_t)p->max_seqs, sizeof *r->runs);
    int rc = VC_OK;
    if (!r->bufs || !r->kc || !r->vc || !r->runs) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto err;
    }
    if (r->p.max_logits < r->p.max_seqs) r->p.max_logits = r->p.max_seqs;
    int64_t T = p->max_tokens, S = p->max_seqs, D = c->hidden_size, F = rn_mlp_width(c), NL = r->p.max_logits;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    if ((rc = rn_alloc(r, BE_F32, T, D, &r->x)) || (rc = rn_alloc(r, BE_F32, T, D, &r->h)) ||
        (rc = rn_alloc(r, BE_F32, T, qd, &r->q)) || (rc = rn_alloc(r, BE_F32, T, kvd, &r->k)) ||
        (rc = rn_alloc(r, BE_F32, T, kvd, &r->v)) || (rc = rn_alloc(r, BE_F32, T, qd, &r->att)) ||
        (rc = rn_alloc(r, BE_F32, T, F, &r->g)) || (rc = rn_alloc(r, BE_F32, T, F, &r->u)) ||
        (rc = rn_alloc(r, BE_F32, NL, D, &r->sel)) || (rc = rn_alloc(r, BE_F32, NL, c->vocab_size, &r->logits)) ||
        (rc = rn_alloc(r, BE_I32, 1, T, &r->tokens)) || (rc = rn_alloc(r, BE_I32, 1, T, &r->pos)) ||
        (rc = rn_alloc(r, BE_I32, 1, T, &r->slots)) || (rc = rn_alloc(r, BE_I32, 1, S + 1, &r->q_start)) ||
        (rc = rn_alloc(r, BE_I32, 1, S, &r->seq_len)) ||
        (rc = rn_alloc(r, BE_I32, S, p->max_blocks, &r->block_table)) ||
        (rc = rn_alloc(r, BE_I32, 1, NL, &r->logit_rows)) || (rc = rn_alloc(r, BE_I32, 1, NL, &r->amax)) ||
        (rc = rn_alloc(r, BE_I32, NL, BE_TOPK_MAX, &r->top_ids)) ||
        (rc = rn_alloc(r, BE_F32, NL, BE_TOPK_MAX, &r->top_vals))) {
        vc_err_prefix(rc, "activations for %lld tokens per step", (long long)T);
        goto err;
    }
    int64_t slots = (int64_t)p->num_blocks * p->block_size;
    for (int l = 0; l < L; l++) {
        if ((rc = rn_alloc(r, p->kv_dtype, slots, kvd, &r->kc[l])) || (rc = rn_alloc(r, p->kv_dtype, slots, kvd, &r->vc[l]))) {
            vc_err_prefix(rc, "KV cache (%d blocks of %d tokens)", p->num_blocks, p->block_size);
            goto err;
        }
    }
    if ((rc = rn_moe_create(r))) {
        vc_err_prefix(rc, "mixture-of-experts activations for %lld tokens per step", (long long)T);
        goto err;
    }
    if (p->max_loras > 0 && (rc = rn_lora_create(r))) {
        vc_err_prefix(rc, "LoRA slots (--max-loras %d, --max-lora-rank %d)", p->max_loras, p->max_lora_rank);
        goto err;
    }
    *out = r;
    return VC_OK;
err:
    rn_free(r);
    return rc;
}

void rn_free(rn_runner *r) {
    if (!r) return;
    for (int i = 0; i < r->n_bufs; i++) r->be->buffer_free(r->be->ctx, r->bufs[i]);
    free(r->bufs);
    free(r->kc);
    free(r->vc);
    free(r->runs);
    rn_lora_free(r);
    rn_moe_free(r);
    free(r);
}

static int rn_check(const rn_runner *r, const rn_batch *b) {
    const rn_params *p = &r->p;
    int V = r->m->cfg.vocab_size;
    if (b->n_tokens < 1 || b->n_tokens > p->max_tokens)
        return vc_errf(VC_EINVAL, "batch of %d tokens (limit %d)", b->n_tokens, p->max_tokens);
    if (b->n_seqs < 1 || b->n_seqs > p->max_seqs)
        return vc_errf(VC_EINVAL, "batch of %d sequences (limit %d)", b->n_seqs, p->max_seqs);
    if (b->max_blocks < 1 || b->max_blocks > p->max_blocks)
        return vc_errf(VC_EINVAL, "block table of %d columns (limit %d)", b->max_blocks, p->max_blocks);
    if (b->n_logits < 0 || b->n_logits > p->max_logits)
        return vc_errf(VC_EINVAL, "%d logit rows (limit %d)", b->n_logits, p->max_logits);
    if (b->topk < 0 || b->topk > BE_TOPK_MAX || b->topk > V || (b->topk > 0 && (!b->top_ids || !b->top_vals)))
        return vc_errf(VC_EINVAL, "top-k of %d per logit row (limit %d)", b->topk, BE_TOPK_MAX < V ? BE_TOPK_MAX : V);
    int64_t nslots = (int64_t)p->num_blocks * p->block_size;
    for (int i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= V)
            return vc_errf(VC_EINVAL, "token id %d out of range [0, %d)", b->tokens[i], V);
        if (b->slots[i] >= nslots) return vc_errf(VC_EINVAL, "slot %d out of range", b->slots[i]);
    }
    if (b->q_start[0] != 0 || b->q_start[b->n_seqs] != b->n_tokens)
        return vc_errf(VC_EINVAL, "q_start must run from 0 to n_tokens");
    for (int s = 0; s < b->n_seqs; s++) {
        int ql = b->q_start[s + 1] - b->q_start[s];
        if (ql < 1) return vc_errf(VC_EINVAL, "sequence %d has no tokens in the batch", s);
        int64_t len = b->seq_len[s];
        if (len < ql || (len + p->block_size - 1) / p->block_size > b->max_blocks)
            return vc_errf(VC_EINVAL, "sequence %d: length %lld does not fit its block table", s, (long long)len);
        for (int64_t j = 0; j < (len + p->block_size - 1) / p->block_size; j++) {
            int blk = b->block_table[(int64_t)s * b->max_blocks + j];
            if (blk < 0 || blk >= p->num_blocks) return vc_errf(VC_EINVAL, "sequence %d: block %d out of range", s, blk);
        }
        for (int t = b->q_start[s]; t < b->q_start[s + 1]; t++)
            if (b->positions[t] < 0 || b->positions[t] >= len)
                return vc_errf(VC_EINVAL, "sequence %d: position %d beyond its length", s, b->positions[t]);
    }
    for (int s = 0; b->seq_lora && s < b->n_seqs; s++)
        if (b->seq_lora[s] < -1 || b->seq_lora[s] >= p->max_loras)
            return vc_errf(VC_EINVAL, "sequence %d: LoRA slot %d out of range", s, b->seq_lora[s]);
    for (int i = 0; i < b->n_logits; i++)
        if (b->logit_rows[i] < 0 || b->logit_rows[i] >= b->n_tokens)
            return vc_errf(VC_EINVAL, "logit row %d out of range", b->logit_rows[i]);
    return VC_OK;
}

static int upload(rn_runner *r, const be_tensor *t, const int32_t *src, size_t n) {
    return r->be->buffer_write(r->be->ctx, t->buf, t->offset, src, n * sizeof(int32_t));
}

/* The views of one forward pass. */
typedef struct {
    be_tensor tokens, pos, slots, x, h, q, k, v, att, g, u, qh, kh;
    be_attn_meta meta;
    /* fold: the backend folds norms and residual adds into this step's matmuls (be_backend.norm_fold_rows);
     * pend: then the norm weight whose rmsnorm of x the next matmul still has to apply (h is stale) */
    int fold;
    const be_tensor *pend;
} rn_views;

/* h = rmsnorm(x) now, for a consumer that reads h itself (LoRA, MoE, a biased MLP). */
static void rn_norm_now(rn_runner *r, rn_views *w) {
    const model_config *c = &r->m->cfg;
    if (!w->pend) return;
    r->be->rmsnorm(r->be->ctx, &w->x, w->pend, c->rms_norm_eps, c->norm_offset, &w->h);
    w->pend = NULL;
}

/* A be_mm reading x through the pending norm, or h. */
static be_mm rn_mm_in(const rn_runner *r, rn_views *w) {
    const model_config *c = &r->m->cfg;
    be_mm op = {.x = w->pend ? &w->x : &w->h, .norm_w = w->pend, .eps = c->rms_norm_eps, .w_offset = c->norm_offset,
                .h = &w->h};
    w->pend = NULL;
    return op;
}

/* longrope: runs of consecutive rows whose sequences use the same factors (short, or long once the
 * sequence's length passes original_max_position_embeddings). One run for every other model. */
static void rope_runs(rn_runner *r, const rn_batch *b) {
    const model_config *c = &r->m->cfg;
    r->n_runs = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        int len = b->seq_rope_len ? b->seq_rope_len[s] : b->seq_len[s];
        int lg = r->m->inv_freq_long.rows > 0 && len > c->rope_original_max_pos;
        int n = b->q_start[s + 1] - b->q_start[s];
        if (r->n_runs > 0 && r->runs[r->n_runs - 1].is_long == lg) r->runs[r->n_runs - 1].n += n;
        else r->runs[r->n_runs++] = (struct rn_rope_run){b->q_start[s], n, lg};
    }
}

/* q/k norms, RoPE (the layer's table; longrope by runs) and the cache writes of layer l. */
static void rn_qk_rope(rn_runner *r, const rn_views *w, int l) {
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    be_backend *be = r->be;
    const mdl_layer *L = &m->layers[l];
    if (c->qk_norm) {
        be->rmsnorm(be->ctx, &w->qh, &L->q_norm, c->rms_norm_eps, c->norm_offset, &w->qh);
        be->rmsnorm(be->ctx, &w->kh, &L->k_norm, c->rms_norm_eps, c->norm_offset, &w->kh);
    }
    const be_tensor *table = cfg_layer_local_rope(c, l) ? &m->inv_freq_local : &m->inv_freq;
    if (table == &m->inv_freq_local || r->n_runs <= 1) {
        const be_tensor *t = r->n_runs == 1 && r->runs[0].is_long ? &m->inv_freq_long : table;
        be_rope_kv_write(be, &w->q, &w->k, &w->v, c->head_dim, m->rot_dim, &w->pos, t, m->rope_mscale, &w->slots,
                         &r->kc[l], &r->vc[l]);
        return;
    }
    for (int i = 0; i < r->n_runs; i++) {
        int r0 = r->runs[i].row0, n = r->runs[i].n;
        be_tensor q = be_rows(&w->q, r0, n), k = be_rows(&w->k, r0, n), v = be_rows(&w->v, r0, n);
        be_tensor pos = be_cols(&w->pos, r0, n), sl = be_cols(&w->slots, r0, n);
        be_rope_kv_write(be, &q, &k, &v, c->head_dim, m->rot_dim, &pos,
                         r->runs[i].is_long ? &m->inv_freq_long : &m->inv_freq, m->rope_mscale, &sl, &r->kc[l],
                         &r->vc[l]);
    }
}

#define BIAS(t) ((t).rows ? &(t) : NULL)

/* Attention of layer l: h = attn_norm(x) on entry; on return the residual x has the attention's
 * output added and h = mlp_norm(x). */
static void rn_attn(rn_runner *r, const rn_batch *b, rn_views *w, int l) {
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    be_backend *be = r->be;
    const mdl_layer *L = &m->layers[l];
    const be_tensor *o[3] = {&w->q, &w->k, &w->v};
    if (rn_lora_active(r, b, l, RN_LORA_Q) || rn_lora_active(r, b, l, RN_LORA_K) || rn_lora_active(r, b, l, RN_LORA_V))
        rn_norm_now(r, w); /* the adapters read h */
    for (int j = 0; j < 3; j++) rn_lora_shrink(r, b, l, RN_LORA_Q + j, &w->h);
    be_mm qkv = rn_mm_in(r, w);
    qkv.nw = 3;
    qkv.w[0] = &L->wq, qkv.w[1] = &L->wk, qkv.w[2] = &L->wv;
    qkv.bias[0] = BIAS(L->bq), qkv.bias[1] = BIAS(L->bk), qkv.bias[2] = BIAS(L->bv);
    qkv.out[0] = o[0], qkv.out[1] = o[1], qkv.out[2] = o[2];
    be_matmul_fused(be, &qkv);
    for (int j = 0; j < 3; j++) rn_lora_expand(r, b, l, RN_LORA_Q + j, &w->h, o[j]);
    rn_qk_rope(r, w, l);
    float scale = c->query_pre_attn_scalar > 0 ? (float)pow(c->query_pre_attn_scalar, -0.5)
                                               : 1.0f / sqrtf((float)c->head_dim);
    be_attn_shape shape = {c->n_heads, c->n_kv_heads, c->head_dim, scale, cfg_layer_window(c, l), c->attn_softcap,
                           L->sinks.rows ? &L->sinks : NULL};
    be->attention(be->ctx, &w->q, &r->kc[l], &r->vc[l], &w->meta, &shape, &w->att);
    rn_lora_shrink(r, b, l, RN_LORA_O, &w->att);
    if (w->fold && !L->post_attn_norm.rows) { /* o_proj added into the residual; mlp_norm left to the MLP */
        be_mm om = {.x = &w->att, .nw = 1, .w = {&L->wo}, .bias = {BIAS(L->bo)}, .out = {&w->x}, .accumulate = 1,
                    .tmp = &w->h};
        be_matmul_fused(be, &om);
        rn_lora_expand(r, b, l, RN_LORA_O, &w->att, &w->x);
        w->pend = &L->mlp_norm;
        return;
    }
    be->matmul(be->ctx, &w->att, &L->wo, BIAS(L->bo), &w->h);
    rn_lora_expand(r, b, l, RN_LORA_O, &w->att, &w->h);
    if (L->post_attn_norm.rows)
        be->rmsnorm(be->ctx, &w->h, &L->post_attn_norm, c->rms_norm_eps, c->norm_offset, &w->h);
    be_add_rmsnorm(be, &w->x, &w->h, &L->mlp_norm, c->rms_norm_eps, c->norm_offset, &w->h);
}

/* The MLP of layer l: h = mlp_norm(x) on entry; on return x has the MLP's output added and h is
 * the next layer's attn_norm(x) (after the last layer h is free). A MoE layer reads its router's
 * logits back (moe.c), which can fail. */
static int rn_mlp(rn_runner *r, const rn_batch *b, rn_views *w, int l) {
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    be_backend *be = r->be;
    const mdl_layer *L = &m->layers[l];
    if (cfg_layer_moe(c, l)) {
        rn_norm_now(r, w);
        int rc = rn_moe_forward(r, b->n_tokens, &w->h, l);
        if (rc) return rc;
    } else {
        int act = c->act == CFG_ACT_GELU_TANH ? BE_ACT_GELU_TANH : BE_ACT_SILU;
        if (!L->b_gate.rows && !L->b_up.rows && !rn_lora_active(r, b, l, RN_LORA_GATE) &&
            !rn_lora_active(r, b, l, RN_LORA_UP)) {
            be_mm gu = rn_mm_in(r, w);
            gu.nw = 2, gu.act = act;
            gu.w[0] = &L->w_gate, gu.w[1] = &L->w_up, gu.out[0] = &w->g, gu.out[1] = &w->u;
            be_matmul_fused(be, &gu);
        } else {
            rn_norm_now(r, w);
            const be_tensor *wt[2] = {&L->w_gate, &L->w_up}, *bias[2] = {BIAS(L->b_gate), BIAS(L->b_up)};
            const be_tensor *o[2] = {&w->g, &w->u};
            rn_lora_shrink(r, b, l, RN_LORA_GATE, &w->h);
            rn_lora_shrink(r, b, l, RN_LORA_UP, &w->h);
            be_matmul_multi(be, &w->h, 2, wt, bias, o);
            rn_lora_expand(r, b, l, RN_LORA_GATE, &w->h, &w->g);
            rn_lora_expand(r, b, l, RN_LORA_UP, &w->h, &w->u);
            if (act == BE_ACT_GELU_TANH) be->gelu_tanh_mul(be->ctx, &w->g, &w->u, &w->g);
            else be->silu_mul(be->ctx, &w->g, &w->u, &w->g);
        }
        rn_lora_shrink(r, b, l, RN_LORA_DOWN, &w->g);
        if (w->fold && !L->post_mlp_norm.rows) { /* down_proj added into the residual; the next norm left */
            be_mm dm = {.x = &w->g, .nw = 1, .w = {&L->w_down}, .bias = {BIAS(L->b_down)}, .out = {&w->x},
                        .accumulate = 1, .tmp = &w->h};
            be_matmul_fused(be, &dm);
            rn_lora_expand(r, b, l, RN_LORA_DOWN, &w->g, &w->x);
            w->pend = l + 1 < c->n_layers ? &m->layers[l + 1].attn_norm : NULL;
            return VC_OK;
        }
        be->matmul(be->ctx, &w->g, &L->w_down, BIAS(L->b_down), &w->h);
        rn_lora_expand(r, b, l, RN_LORA_DOWN, &w->g, &w->h);
    }
    if (L->post_mlp_norm.rows)
        be->rmsnorm(be->ctx, &w->h, &L->post_mlp_norm, c->rms_norm_eps, c->norm_offset, &w->h);
    if (l + 1 < c->n_layers)
        be_add_rmsnorm(be, &w->x, &w->h, &m->layers[l + 1].attn_norm, c->rms_norm_eps, c->norm_offset, &w->h);
    else be->add(be->ctx, &w->x, &w->h, &w->x);
    return VC_OK;
}
#undef BIAS

static int rn_upload(rn_runner *r, const rn_batch *b) {
    int rc, n = b->n_tokens;
    if ((rc = upload(r, &r->tokens, b->tokens, (size_t)n)) || (rc = upload(r, &r->pos, b->positions, (size_t)n)) ||
        (rc = upload(r, &r->slots, b->slots, (size_t)n)) ||
        (rc = upload(r, &r->q_start, b->q_start, (size_t)b->n_seqs + 1)) ||
        (rc = upload(r, &r->seq_len, b->seq_len, (size_t)b->n_seqs)) ||
        (rc = upload(r, &r->block_table, b->block_table, (size_t)b->n_seqs * (size_t)b->max_blocks)) ||
        (rc = upload(r, &r->logit_rows, b->logit_rows, (size_t)b->n_logits)) || (rc = rn_lora_batch(r, b)))
        return rc;
    rope_runs(r, b);
    return VC_OK;
}

static void rn_views_of(rn_runner *r, const rn_batch *b, rn_views *w) {
    const model_config *c = &r->m->cfg;
    int n = b->n_tokens;
    w->tokens = be_cols(&r->tokens, 0, n), w->pos = be_cols(&r->pos, 0, n), w->slots = be_cols(&r->slots, 0, n);
    w->x = be_rows(&r->x, 0, n), w->h = be_rows(&r->h, 0, n), w->q = be_rows(&r->q, 0, n);
    w->k = be_rows(&r->k, 0, n), w->v = be_rows(&r->v, 0, n), w->att = be_rows(&r->att, 0, n);
    w->g = be_rows(&r->g, 0, n), w->u = be_rows(&r->u, 0, n);
    /* head-wise views for the q/k norms (Qwen3, Gemma 3) */
    w->qh = be_view(w->q.buf, w->q.offset, BE_F32, (int64_t)n * c->n_heads, c->head_dim);
    w->kh = be_view(w->k.buf, w->k.offset, BE_F32, (int64_t)n * c->n_kv_heads, c->head_dim);
    /* the block table is viewed with the batch's column count */
    be_tensor bt = be_view(r->block_table.buf, r->block_table.offset, BE_I32, b->n_seqs, b->max_blocks);
    w->meta = (be_attn_meta){
        .n_seqs = b->n_seqs,
        .q_start = be_cols(&r->q_start, 0, b->n_seqs + 1),
        .seq_len = be_cols(&r->seq_len, 0, b->n_seqs),
        .block_table = bt,
        .block_size = r->p.block_size,
    };
    for (int s = 0; s < b->n_seqs; s++)
        if (b->seq_len[s] > w->meta.max_seq_len) w->meta.max_seq_len = b->seq_len[s];
}

/* A read or write inside the step failed: sync still clears the step's state; the failure's message
 * is the one to keep. */
static int rn_fail_step(rn_runner *r, int rc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", vc_errmsg());
    r->be->sync(r->be->ctx);
    return vc_errf(rc, "%s", msg);
}

static _Atomic uint64_t argmax_passes;

uint64_t rn_device_argmax_passes(void) { return atomic_load(&argmax_passes); }

/* backend.h's argmax on the host: the first maximum of a left-to-right scan. */
static int32_t rn_argmax(const float *row, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (row[i] > row[best]) best = i;
    return best;
}

/* backend.h's topk on the host: the k best of row[0..n) by (value desc, index asc), a NaN as -inf. */
static void rn_topk_row(const float *row, int n, int k, int32_t *ids, float *vals) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        float v = isnan(row[i]) ? -INFINITY : row[i];
        if (m == k && !(v > vals[k - 1])) continue; /* equal: the earlier index stays */
        int j = m < k ? m++ : k - 1;
        while (j > 0 && v > vals[j - 1]) {
            vals[j] = vals[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        vals[j] = v;
        ids[j] = i;
    }
}

/* Vocabularies from which a top-k step selects on the device: the backend's topk takes k rounds of a
 * workgroup-wide pick (~50-100 us on a GPU, far more on lavapipe), which pays where it saves reading large rows
 * back (0.5 MiB a row at 128k) but not for small vocabularies (the test models' 512 logits a row: lavapipe's
 * sampled decode ran at 216 tokens/s with it, 530 without). */
#define RN_DEVICE_TOPK_MIN_VOCAB 16384

/* The step's top-k read-back (b->topk): the device's selection where the backend has it and the rows are
 * long, else the host's from the logits read back. */
static int rn_read_topk(rn_runner *r, const rn_batch *b, be_tensor *lg, float *logits) {
    be_backend *be = r->be;
    void *ctx = be->ctx;
    int V = r->m->cfg.vocab_size, k = b->topk, n = b->n_logits, rc;
    if (be->topk && !r->host_argmax && V >= RN_DEVICE_TOPK_MIN_VOCAB) {
        be_tensor ids = be_rows(&r->top_ids, 0, n), vals = be_rows(&r->top_vals, 0, n);
        ids.cols = vals.cols = k;
        ids.stride = vals.stride = k; /* packed [n, k]: one read each */
        be->topk(ctx, lg, k, &ids, &vals);
        if ((rc = be->buffer_read(ctx, ids.buf, ids.offset, b->top_ids, (size_t)n * (size_t)k * sizeof(int32_t))))
            return rc;
        return be->buffer_read(ctx, vals.buf, vals.offset, b->top_vals, (size_t)n * (size_t)k * sizeof(float));
    }
    rc = be->buffer_read(ctx, r->logits.buf, r->logits.offset, logits, (size_t)n * (size_t)V * sizeof(float));
    for (int i = 0; !rc && i < n; i++)
        rn_topk_row(logits + (size_t)i * V, V, k, b->top_ids + (size_t)i * k, b->top_vals + (size_t)i * k);
    return rc;
}

int rn_read_logits(rn_runner *r, int i, float *out) {
    size_t row = (size_t)r->m->cfg.vocab_size * sizeof(float);
    if (i < 0 || i >= r->p.max_logits) return vc_errf(VC_EINVAL, "logit row %d out of range", i);
    return r->be->buffer_read(r->be->ctx, r->logits.buf, r->logits.offset + (size_t)i * row, out, row);
}

/* Final norm, LM head and (Gemma 2) soft-capping of the selected rows, then the read-back: the logits, or
 * for a greedy batch (b->argmax) each row's argmax, or each row's best (b->topk). */
static int rn_logits(rn_runner *r, const rn_batch *b, rn_views *w, float *logits) {
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    be_backend *be = r->be;
    void *ctx = be->ctx;
    int rc = VC_OK;
    if (b->n_logits > 0) {
        be_tensor rows = be_cols(&r->logit_rows, 0, b->n_logits);
        be_tensor sel = be_rows(&r->sel, 0, b->n_logits), lg = be_rows(&r->logits, 0, b->n_logits);
        be->get_rows(ctx, &w->x, &rows, &sel);
        be->rmsnorm(ctx, &sel, &m->final_norm, c->rms_norm_eps, c->norm_offset, &sel);
        be->matmul(ctx, &sel, &m->lm_head, NULL, &lg);
        if (c->final_softcap > 0) be->softcap(ctx, &lg, c->final_softcap, &lg);
        /* The read first: a recording backend submits the step with the copy of the logits in it and
         * waits once; sync() then only reports (and clears) an op's error. */
        if (b->argmax && be->argmax && !r->host_argmax) { /* greedy: n indexes instead of n rows */
            be_tensor ids = be_cols(&r->amax, 0, b->n_logits);
            be->argmax(ctx, &lg, &ids);
            atomic_fetch_add(&argmax_passes, 1);
            rc = be->buffer_read(ctx, ids.buf, ids.offset, b->argmax, (size_t)b->n_logits * sizeof(int32_t));
        } else if (!b->argmax && b->topk > 0) {
            rc = rn_read_topk(r, b, &lg, logits);
        } else {
            rc = be->buffer_read(ctx, r->logits.buf, r->logits.offset, logits,
                                 (size_t)b->n_logits * (size_t)c->vocab_size * sizeof(float));
            for (int i = 0; !rc && b->argmax && i < b->n_logits; i++)
                b->argmax[i] = rn_argmax(logits + (size_t)i * (size_t)c->vocab_size, c->vocab_size);
        }
    }
    if (rc) return rn_fail_step(r, rc);
    return be->sync(ctx);
}

int rn_forward(rn_runner *r, const rn_batch *b, float *logits) {
    int rc = rn_check(r, b);
    if (rc || (rc = rn_upload(r, b))) return rc;
    be_backend *be = r->be;
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    rn_views w;
    rn_views_of(r, b, &w);
    be->get_rows(be->ctx, &m->embed, &w.tokens, &w.x);
    if (m->embed_scale != 1.0f) be->scale(be->ctx, &w.x, m->embed_scale, &w.x);
    w.fold = b->n_tokens <= be->norm_fold_rows;
    w.pend = &m->layers[0].attn_norm;
    if (!w.fold) rn_norm_now(r, &w);
    for (int l = 0; l < c->n_layers; l++) {
        rn_attn(r, b, &w, l);
        if ((rc = rn_mlp(r, b, &w, l))) return rn_fail_step(r, rc);
    }
    return rn_logits(r, b, &w, logits);
}
