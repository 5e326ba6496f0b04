/* The forward pass. One path for every supported architecture: the config's
 * flags decide whether biases, q/k norms and a separate head take part. */
#include "runner/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "runner/runner_internal.h"



int rn_alloc(rn_runner *r, be_dtype dt, int64_t rows, int64_t cols, be_tensor *out) {
    be_buffer *b;
    size_t bytes = (size_t)rows * (size_t)cols * be_dtype_size(dt);
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

uint64_t rn_activation_bytes(const mdl_model *m, int max_tokens, int max_logits) {
    const model_config *c = &m->cfg;
    uint64_t T = (uint64_t)max_tokens, qd = (uint64_t)c->n_heads * c->head_dim, kvd = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t per_tok = 2ull * c->hidden_size + 2 * qd + 2 * kvd + 2ull * c->intermediate_size + 3;
    return 4 * (T * per_tok + (uint64_t)max_logits * ((uint64_t)c->hidden_size + c->vocab_size + 1));
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
    r->bufs = calloc((size_t)(32 + 2 * L + p->max_loras), sizeof *r->bufs);
    r->kc = calloc((size_t)L, sizeof *r->kc);
    r->vc = calloc((size_t)L, sizeof *r->vc);
    int rc = VC_OK;
    if (!r->bufs || !r->kc || !r->vc) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto err;
    }
    if (r->p.max_logits < r->p.max_seqs) r->p.max_logits = r->p.max_seqs;
    int64_t T = p->max_tokens, S = p->max_seqs, D = c->hidden_size, F = c->intermediate_size, NL = r->p.max_logits;
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
        (rc = rn_alloc(r, BE_I32, 1, NL, &r->logit_rows))) {
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
    rn_lora_free(r);
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

int rn_forward(rn_runner *r, const rn_batch *b, float *logits) {
    int rc = rn_check(r, b);
    if (rc) return rc;
    be_backend *be = r->be;
    void *ctx = be->ctx;
    const mdl_model *m = r->m;
    const model_config *c = &m->cfg;
    int n = b->n_tokens;
    if ((rc = upload(r, &r->tokens, b->tokens, (size_t)n)) || (rc = upload(r, &r->pos, b->positions, (size_t)n)) ||
        (rc = upload(r, &r->slots, b->slots, (size_t)n)) ||
        (rc = upload(r, &r->q_start, b->q_start, (size_t)b->n_seqs + 1)) ||
        (rc = upload(r, &r->seq_len, b->seq_len, (size_t)b->n_seqs)) ||
        (rc = upload(r, &r->block_table, b->block_table, (size_t)b->n_seqs * (size_t)b->max_blocks)) ||
        (rc = upload(r, &r->logit_rows, b->logit_rows, (size_t)b->n_logits)) || (rc = rn_lora_batch(r, b)))
        return rc;

    be_tensor tokens = be_cols(&r->tokens, 0, n), pos = be_cols(&r->pos, 0, n), slots = be_cols(&r->slots, 0, n);
    be_tensor x = be_rows(&r->x, 0, n), h = be_rows(&r->h, 0, n), q = be_rows(&r->q, 0, n);
    be_tensor k = be_rows(&r->k, 0, n), v = be_rows(&r->v, 0, n), att = be_rows(&r->att, 0, n);
    be_tensor g = be_rows(&r->g, 0, n), u = be_rows(&r->u, 0, n);
    /* the block table is viewed with the batch's column count */
    be_tensor bt = be_view(r->block_table.buf, r->block_table.offset, BE_I32, b->n_seqs, b->max_blocks);
    be_attn_meta meta = {
        .n_seqs = b->n_seqs,
        .q_start = be_cols(&r->q_start, 0, b->n_seqs + 1),
        .seq_len = be_cols(&r->seq_len, 0, b->n_seqs),
        .block_table = bt,
        .block_size = r->p.block_size,
    };
    for (int s = 0; s < b->n_seqs; s++)
        if (b->seq_len[s] > meta.max_seq_len) meta.max_seq_len = b->seq_len[s];
    be_attn_shape shape = {c->n_heads, c->n_kv_heads, c->head_dim, 1.0f / sqrtf((float)c->head_dim), c->sliding_window};
    /* Head-wise views for the Qwen3 q/k norms. */
    be_tensor qh = be_view(q.buf, q.offset, BE_F32, (int64_t)n * c->n_heads, c->head_dim);
    be_tensor kh = be_view(k.buf, k.offset, BE_F32, (int64_t)n * c->n_kv_heads, c->head_dim);
#define BIAS(t) ((t).rows ? &(t) : NULL)

    be->get_rows(ctx, &m->embed, &tokens, &x);
    be->rmsnorm(ctx, &x, &m->layers[0].attn_norm, c->rms_norm_eps, 0.0f, &h);
    for (int l = 0; l < c->n_layers; l++) {
        const mdl_layer *L = &m->layers[l];
        /* h = attn_norm(x) here: the first layer's above, the others' fused with the residual add */
        {
            const be_tensor *w[3] = {&L->wq, &L->wk, &L->wv}, *bias[3] = {BIAS(L->bq), BIAS(L->bk), BIAS(L->bv)};
            const be_tensor *o[3] = {&q, &k, &v};
            be_matmul_multi(be, &h, 3, w, bias, o);
            for (int j = 0; j < 3; j++) rn_lora_apply(r, b, l, RN_LORA_Q + j, &h, o[j]);
        }
        if (c->qk_norm) {
            be->rmsnorm(ctx, &qh, &L->q_norm, c->rms_norm_eps, 0.0f, &qh);
            be->rmsnorm(ctx, &kh, &L->k_norm, c->rms_norm_eps, 0.0f, &kh);
        }
        be_rope_kv_write(be, &q, &k, &v, c->head_dim, m->rot_dim, &pos, &m->inv_freq, &slots, &r->kc[l], &r->vc[l]);
        be->attention(ctx, &q, &r->kc[l], &r->vc[l], &meta, &shape, &att);
        be->matmul(ctx, &att, &L->wo, BIAS(L->bo), &h);
        rn_lora_apply(r, b, l, RN_LORA_O, &att, &h);
        be_add_rmsnorm(be, &x, &h, &L->mlp_norm, c->rms_norm_eps, 0.0f, &h);
        {
            const be_tensor *w[2] = {&L->w_gate, &L->w_up}, *bias[2] = {BIAS(L->b_gate), BIAS(L->b_up)};
            const be_tensor *o[2] = {&g, &u};
            be_matmul_multi(be, &h, 2, w, bias, o);
            rn_lora_apply(r, b, l, RN_LORA_GATE, &h, &g);
            rn_lora_apply(r, b, l, RN_LORA_UP, &h, &u);
        }
        be->silu_mul(ctx, &g, &u, &g);
        be->matmul(ctx, &g, &L->w_down, BIAS(L->b_down), &h);
        rn_lora_apply(r, b, l, RN_LORA_DOWN, &g, &h);
        if (l + 1 < c->n_layers) be_add_rmsnorm(be, &x, &h, &m->layers[l + 1].attn_norm, c->rms_norm_eps, 0.0f, &h);
        else be->add(ctx, &x, &h, &x);
    }
#undef BIAS
    if (b->n_logits > 0) {
        be_tensor rows = be_cols(&r->logit_rows, 0, b->n_logits);
        be_tensor sel = be_rows(&r->sel, 0, b->n_logits), lg = be_rows(&r->logits, 0, b->n_logits);
        be->get_rows(ctx, &x, &rows, &sel);
        be->rmsnorm(ctx, &sel, &m->final_norm, c->rms_norm_eps, 0.0f, &sel);
        be->matmul(ctx, &sel, &m->lm_head, NULL, &lg);
    }
    /* The read first: a recording backend submits the step with the copy of the logits in it and
     * waits once; sync() then only reports (and clears) an op's error. */
    if (b->n_logits > 0)
        rc = be->buffer_read(ctx, r->logits.buf, r->logits.offset, logits,
                             (size_t)b->n_logits * (size_t)c->vocab_size * sizeof(float));
    if (rc) { /* sync still clears the step's state; the read's message is the one to keep */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", vc_errmsg());
        be->sync(ctx);
        return vc_errf(rc, "%s", msg);
    }
    return be->sync(ctx);
}
