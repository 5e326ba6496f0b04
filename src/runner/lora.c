/* runner/lora: LoRA adapter slots in backend memory and the low-rank updates of the forward pass
 * (step 8). Per layer and module, the slots' weights lie side by side, a [slots * R, in] and
 * b [slots * out, R] with R = max_lora_rank (a smaller rank padded with zeros, the scale folded into b),
 * so that one backend op (be_lora: Punica's SGMV) serves every adapter of a batch: the base matmul runs
 * once for all rows, then each row adds (x a_s^T) b_s^T of its slot s. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/half.h"
#include "runner/runner_internal.h"

/* in and out widths of a LoRA module */
void rn_lora_dims(const model_config *c, int mod, int64_t *in, int64_t *out) {
    int64_t D = c->hidden_size, F = c->intermediate_size, qd = (int64_t)c->n_heads * c->head_dim,
            kvd = (int64_t)c->n_kv_heads * c->head_dim;
    static const int in_kind[RN_LORA_MODULES] = {0, 0, 0, 1, 0, 0, 2}, out_kind[RN_LORA_MODULES] = {1, 3, 3, 0, 2, 2, 0};
    int64_t w[4] = {D, qd, F, kvd};
    *in = w[in_kind[mod]];
    *out = w[out_kind[mod]];
}

static uint64_t lora_slot_bytes(const mdl_model *m, int max_rank) {
    uint64_t n = 0;
    for (int mod = 0; mod < RN_LORA_MODULES; mod++) {
        int64_t in, out;
        rn_lora_dims(&m->cfg, mod, &in, &out);
        n += (uint64_t)max_rank * (uint64_t)(in + out);
    }
    return n * (uint64_t)m->cfg.n_layers * be_dtype_size(m->wdtype);
}

static int64_t lora_widest(const model_config *c) {
    int64_t w = 0;
    for (int mod = 0; mod < RN_LORA_MODULES; mod++) {
        int64_t in, out;
        rn_lora_dims(c, mod, &in, &out);
        if (out > w) w = out;
    }
    return w;
}

uint64_t rn_lora_bytes(const mdl_model *m, int max_tokens, int max_loras, int max_lora_rank) {
    if (max_loras <= 0) return 0;
    return (uint64_t)max_loras * lora_slot_bytes(m, max_lora_rank) +
           4ull * (uint64_t)max_tokens * (uint64_t)(RN_LORA_MODULES * max_lora_rank + lora_widest(&m->cfg) + 1);
}

int rn_lora_create(rn_runner *r) {
    const model_config *c = &r->m->cfg;
    int S = r->p.max_loras, R = r->p.max_lora_rank, L = c->n_layers, rc;
    r->la = calloc((size_t)L * RN_LORA_MODULES, sizeof *r->la);
    r->lb = calloc((size_t)L * RN_LORA_MODULES, sizeof *r->lb);
    r->lrank = calloc((size_t)S * (size_t)L * RN_LORA_MODULES, sizeof *r->lrank);
    r->lseg = calloc((size_t)r->p.max_seqs, sizeof *r->lseg);
    r->lrows = calloc((size_t)r->p.max_tokens, sizeof *r->lrows);
    if (!r->la || !r->lb || !r->lrank || !r->lseg || !r->lrows) return vc_errf(VC_ENOMEM, "out of memory");
    for (int mod = 0; mod < RN_LORA_MODULES; mod++)
        if ((rc = rn_alloc(r, BE_F32, r->p.max_tokens, R, &r->lt[mod]))) return rc;
    if ((rc = rn_alloc(r, BE_F32, r->p.max_tokens, lora_widest(c), &r->ld)) ||
        (rc = rn_alloc(r, BE_I32, 1, r->p.max_tokens, &r->row_slot)))
        return rc;
    be_buffer *buf;
    size_t es = be_dtype_size(r->m->wdtype), off = 0;
    if (r->n_bufs >= r->cap_bufs) return vc_errf(VC_ERR, "runner: more buffers than the %d planned", r->cap_bufs);
    if ((rc = r->be->buffer_alloc(r->be->ctx, (size_t)S * lora_slot_bytes(r->m, R), &buf))) return rc;
    r->bufs[r->n_bufs++] = buf;
    for (int i = 0; i < L * RN_LORA_MODULES; i++) {
        int64_t in, out;
        rn_lora_dims(c, i % RN_LORA_MODULES, &in, &out);
        r->la[i] = be_view(buf, off, r->m->wdtype, (int64_t)S * R, in);
        off += (size_t)S * (size_t)R * (size_t)in * es;
        r->lb[i] = be_view(buf, off, r->m->wdtype, (int64_t)S * out, R);
        off += (size_t)S * (size_t)out * (size_t)R * es;
    }
    /* zeros everywhere: a slot never written adds nothing */
    void *z = calloc(1, (size_t)1 << 20);
    if (!z) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t o = 0; o < off && !rc; o += (size_t)1 << 20)
        rc = r->be->buffer_write(r->be->ctx, buf, o, z, off - o < ((size_t)1 << 20) ? off - o : (size_t)1 << 20);
    free(z);
    return rc;
}

void rn_lora_free(rn_runner *r) {
    free(r->la);
    free(r->lb);
    free(r->lrank);
    free(r->lseg);
    free(r->lrows);
}

/* n f32 values (times scale) to the weights' dtype, into dst */
static void to_wdtype(be_dtype dt, const float *src, size_t n, float scale, void *dst) {
    for (size_t i = 0; i < n; i++) {
        float v = src[i] * scale;
        if (dt == BE_F32) ((float *)dst)[i] = v;
        else if (dt == BE_F16) ((uint16_t *)dst)[i] = vc_f32_to_f16(v);
        else ((uint16_t *)dst)[i] = vc_f32_to_bf16(v);
    }
}

/* One (layer, module) of an adapter (prepared: rn_lora_prepare) into slot `slot`, padded to R with zeros:
 * a's rank rows straight from the adapter, then zero rows; b's rows of R columns, straight from the
 * adapter when its rank is R, else through tmp, which holds at least max(R * in, out * R) elements. */
static int set_one(rn_runner *r, int slot, int i, const rn_lora_weight *x, void *tmp) {
    int64_t in, out;
    int R = r->p.max_lora_rank;
    be_dtype wdt = r->m->wdtype;
    rn_lora_dims(&r->m->cfg, i % RN_LORA_MODULES, &in, &out);
    size_t es = be_dtype_size(wdt), na = (size_t)R * (size_t)in, nb = (size_t)out * (size_t)R;
    size_t ra = (size_t)x->rank * (size_t)in; /* a's values */
    if (x->rank && (x->dt != wdt || x->scale != 1.0f))
        return vc_errf(VC_EINVAL, "LoRA: adapter weights in %s, scale %g, for a %s model (not prepared)",
                       be_dtype_name(x->dt), (double)x->scale, be_dtype_name(wdt));
    be_tensor a = be_rows(&r->la[i], (int64_t)slot * R, R), b = be_rows(&r->lb[i], (int64_t)slot * out, out);
    int rc;
    memset(tmp, 0, (na > nb ? na : nb) * es);
    if (ra && (rc = r->be->buffer_write(r->be->ctx, a.buf, a.offset, x->a, ra * es))) return rc;
    if (na > ra && (rc = r->be->buffer_write(r->be->ctx, a.buf, a.offset + ra * es, tmp, (na - ra) * es))) return rc;
    if (x->rank == R) return r->be->buffer_write(r->be->ctx, b.buf, b.offset, x->b, nb * es);
    for (int64_t o = 0; o < out && x->rank; o++) /* b's row o: rank values, then zeros */
        memcpy((char *)tmp + (size_t)o * R * es, (const char *)x->b + (size_t)o * x->rank * es, (size_t)x->rank * es);
    return r->be->buffer_write(r->be->ctx, b.buf, b.offset, tmp, nb * es);
}

int rn_lora_prepare(const model_config *c, be_dtype wdt, const rn_lora_weight *w, rn_lora_weight **out, void **data) {
    *out = NULL, *data = NULL;
    size_t n = (size_t)c->n_layers * RN_LORA_MODULES, total = 0, es = be_dtype_size(wdt);
    for (size_t i = 0; i < n; i++) {
        int64_t in, o;
        rn_lora_dims(c, (int)(i % RN_LORA_MODULES), &in, &o);
        if (w[i].rank && w[i].dt != BE_F32) return vc_errf(VC_EINVAL, "LoRA: rn_lora_prepare takes f32 weights");
        total += (size_t)w[i].rank * (size_t)(in + o);
    }
    rn_lora_weight *nw = calloc(n, sizeof *nw);
    char *p = malloc(total * es + 1);
    if (!nw || !p) {
        free(nw);
        free(p);
        return vc_errf(VC_ENOMEM, "out of memory for a LoRA adapter");
    }
    *out = nw, *data = p;
    for (size_t i = 0; i < n; i++) {
        int64_t in, o;
        rn_lora_dims(c, (int)(i % RN_LORA_MODULES), &in, &o);
        size_t ra = (size_t)w[i].rank * (size_t)in, rb = (size_t)w[i].rank * (size_t)o;
        nw[i] = (rn_lora_weight){w[i].rank, 1.0f, p, p + ra * es, wdt};
        if (!w[i].rank) {
            nw[i].a = nw[i].b = NULL;
            continue;
        }
        to_wdtype(wdt, w[i].a, ra, 1.0f, p); /* the scale folded into b before its one rounding, as before */
        to_wdtype(wdt, w[i].b, rb, w[i].scale, p + ra * es);
        p += (ra + rb) * es;
    }
    return VC_OK;
}

int rn_lora_set(rn_runner *r, int slot, const rn_lora_weight *w) {
    const model_config *c = &r->m->cfg;
    int L = c->n_layers, R = r->p.max_lora_rank;
    if (slot < 0 || slot >= r->p.max_loras) return vc_errf(VC_EINVAL, "LoRA slot %d out of range", slot);
    for (int i = 0; i < L * RN_LORA_MODULES; i++) {
        if (w[i].rank < 0 || w[i].rank > R)
            return vc_errf(VC_EINVAL, "LoRA rank %d above --max-lora-rank %d", w[i].rank, R);
        if (w[i].rank > 0 && i % RN_LORA_MODULES >= RN_LORA_GATE && cfg_layer_moe(c, i / RN_LORA_MODULES))
            return vc_errf(VC_EUNSUP, "LoRA on the MLP of a mixture-of-experts layer (layer %d) is not supported",
                           i / RN_LORA_MODULES);
    }
    int64_t in, out, most = 0;
    for (int mod = 0; mod < RN_LORA_MODULES; mod++) {
        rn_lora_dims(c, mod, &in, &out);
        if (in > most) most = in;
        if (out > most) most = out;
    }
    void *tmp = malloc((size_t)most * (size_t)R * be_dtype_size(r->m->wdtype));
    if (!tmp) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = VC_OK;
    for (int i = 0; i < L * RN_LORA_MODULES && !rc; i++) {
        int *rank = &r->lrank[(size_t)slot * (size_t)L * RN_LORA_MODULES + (size_t)i];
        *rank = 0; /* a failure below leaves the module off, never half written */
        if (!(rc = set_one(r, slot, i, &w[i], tmp))) *rank = w[i].rank;
    }
    free(tmp);
    return rc;
}

/* The batch's rows' slots, for a backend that reads them on the device. */
int rn_lora_batch(rn_runner *r, const rn_batch *b) {
    if (!b->seq_lora || !r->lrank) return VC_OK;
    for (int s = 0; s < b->n_seqs; s++)
        for (int t = b->q_start[s]; t < b->q_start[s + 1]; t++) r->lrows[t] = b->seq_lora[s];
    return r->be->buffer_write(r->be->ctx, r->row_slot.buf, r->row_slot.offset, r->lrows,
                               sizeof *r->lrows * (size_t)b->n_tokens);
}

/* The segments of module mod in layer l (consecutive sequences with one slot s whose adapter has this
 * module) into r->lseg; returns their count (0: nothing to add). */
static int lora_segments(rn_runner *r, const rn_batch *b, int l, int mod) {
    if (!b->seq_lora || !r->lrank) return 0;
    int L = r->m->cfg.n_layers, n_seg = 0;
    for (int s = 0, e; s < b->n_seqs; s = e) {
        int slot = b->seq_lora[s];
        for (e = s + 1; e < b->n_seqs && b->seq_lora[e] == slot; e++) {}
        if (slot < 0 || !r->lrank[((size_t)slot * (size_t)L + (size_t)l) * RN_LORA_MODULES + (size_t)mod]) continue;
        r->lseg[n_seg++] = (be_lora_seg){b->q_start[s], b->q_start[e] - b->q_start[s], slot};
    }
    return n_seg;
}

int rn_lora_active(rn_runner *r, const rn_batch *b, int l, int mod) { return lora_segments(r, b, l, mod) > 0; }

/* Module mod's rows of lt: its own buffer, so shrinks of modules sharing an input do not wait on each other */
static be_tensor lora_t(const rn_runner *r, const rn_batch *b, int mod) { return be_rows(&r->lt[mod], 0, b->n_tokens); }

/* The first half of module mod's update: lt[mod] = x a_s^T for the rows of each segment. The forward pass
 * records it before the module's base matmul (both only read x). */
void rn_lora_shrink(rn_runner *r, const rn_batch *b, int l, int mod, const be_tensor *x) {
    int n_seg = lora_segments(r, b, l, mod);
    if (!n_seg) return;
    be_tensor t = lora_t(r, b, mod), rs = be_cols(&r->row_slot, 0, b->n_tokens);
    be_lora_shrink(r->be, x, &r->la[l * RN_LORA_MODULES + mod], n_seg, r->lseg, &rs, &t);
}

/* The second half, after the base matmul: out += lt[mod] b_s^T for the rows of each segment (x: the same
 * input as the shrink's, for the backend's fallback that runs both halves here). */
void rn_lora_expand(rn_runner *r, const rn_batch *b, int l, int mod, const be_tensor *x, const be_tensor *out) {
    int n_seg = lora_segments(r, b, l, mod);
    if (!n_seg) return;
    be_tensor t = lora_t(r, b, mod), rs = be_cols(&r->row_slot, 0, b->n_tokens);
    be_tensor d = be_view(r->ld.buf, r->ld.offset, BE_F32, b->n_tokens, out->cols);
    be_lora_expand(r->be, x, &r->la[l * RN_LORA_MODULES + mod], &t, &r->lb[l * RN_LORA_MODULES + mod], n_seg, r->lseg, &rs,
                   &d, out);
}
