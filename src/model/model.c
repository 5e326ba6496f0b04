/* Model weights: the HF tensor names of the Llama family mapped onto one layout. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/half.h"
#include "base/rng.h"

#include "model/model_internal.h"

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void mdl_progress(wsrc *ws, uint64_t add, uint64_t read) {
    ws->done += add;
    ws->read += read;
    if (!ws->tty || !ws->total) return;
    double now = mono_s(), el = now - ws->t0;
    int last = ws->done >= ws->total;
    if (!last && now - ws->shown < 0.1) return;
    ws->shown = now;
    double f = (double)ws->done / (double)ws->total;
    int bar = (int)(f * 20.0);
    char b[21];
    for (int i = 0; i < 20; i++) b[i] = i < bar ? '#' : ' ';
    b[20] = 0;
    double rate = el > 0 ? (double)ws->read / el / 1e9 : 0;
    fprintf(stderr,
            "\rLoading safetensors checkpoint shards: %3d%% Completed |%s| %.2f/%.2f GB [%.1fs, %.2f GB read at %.2f "
            "GB/s, %.2f GB used in place]%s",
            (int)(100.0 * f), b, (double)ws->done / 1e9, (double)ws->total / 1e9, el, (double)ws->read / 1e9, rate,
            (double)(ws->done - ws->read) / 1e9, last ? "\n" : "");
}

int mdl_add_buf(mdl_model *m, be_buffer *b) {
    if (m->n_bufs == m->cap_bufs) {
        int cap = m->cap_bufs ? m->cap_bufs * 2 : 64;
        be_buffer **nb = realloc(m->bufs, sizeof *nb * (size_t)cap);
        if (!nb) return vc_errf(VC_ENOMEM, "out of memory");
        m->bufs = nb;
        m->cap_bufs = cap;
    }
    m->bufs[m->n_bufs++] = b;
    return VC_OK;
}

/* Approximately normal (Irwin-Hall of four 16-bit uniforms), scaled; never 0. */
static float rand_normal(vc_rng *s, float mean, float std) {
    uint64_t r = vc_rng_next(s);
    float u = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) + (float)(r >> 48);
    float z = (u / 65536.0f - 2.0f) * 1.7320508f;
    float v = mean + std * z;
    return v != 0.0f ? v : std * 1e-3f;
}

static st_dtype st_of(be_dtype t) { return t == BE_F32 ? ST_F32 : t == BE_F16 ? ST_F16 : ST_BF16; }

float mdl_elem_f32(const void *src, st_dtype t, size_t i) {
    const uint16_t *h = src;
    switch (t) {
    case ST_F32: {
        float f;
        memcpy(&f, (const char *)src + 4 * i, 4);
        return f;
    }
    case ST_F16: return vc_f16_to_f32(h[i]);
    default: return vc_bf16_to_f32(h[i]);
    }
}

void mdl_store_f32(void *dst, be_dtype t, size_t i, float v) {
    if (t == BE_F32) ((float *)dst)[i] = v;
    else if (t == BE_F16) ((uint16_t *)dst)[i] = vc_f32_to_f16(v);
    else ((uint16_t *)dst)[i] = vc_f32_to_bf16(v);
}

/* Write n elements of dtype `want` into buf at byte offset off: the checkpoint tensor `src` (copied, or
 * converted in chunks so no whole-tensor temporary is needed) or random values (src == NULL). */
static int fill_into(mdl_model *m, wsrc *ws, const void *src, st_dtype sdt, size_t n, tkind kind, be_dtype want,
                     be_buffer *buf, size_t off) {
    be_backend *be = m->be;
    size_t es = be_dtype_size(want);
    enum { CHUNK = RCHUNK };
    if (src && sdt == st_of(want)) return be->buffer_write(be->ctx, buf, off, src, n * es); /* a plain copy */
    if (!src && kind == T_MAT && !ws->rtab) {
        if (!(ws->rtab = malloc((size_t)(RTAB + RCHUNK) * es))) return vc_errf(VC_ENOMEM, "out of memory");
        for (size_t i = 0; i < (size_t)(RTAB + RCHUNK); i++) mdl_store_f32(ws->rtab, want, i, rand_normal(&ws->rng, 0.0f, 0.02f));
    }
    unsigned char *tmp = malloc((size_t)CHUNK * 4);
    if (!tmp) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = VC_OK;
    for (size_t i0 = 0; i0 < n && !rc; i0 += CHUNK) {
        size_t c = n - i0 < CHUNK ? n - i0 : CHUNK;
        const unsigned char *chunk = tmp;
        if (!src && kind == T_MAT) {
            chunk = ws->rtab + (size_t)(vc_rng_next(&ws->rng) % RTAB) * es;
        } else for (size_t i = 0; i < c; i++) {
            float v;
            if (src) v = mdl_elem_f32(src, sdt, i0 + i);
            else if (kind == T_NORM) v = rand_normal(&ws->rng, 1.0f, 0.02f);
            else v = rand_normal(&ws->rng, 0.0f, 0.02f);
            mdl_store_f32(tmp, want, i, v);
        }
        rc = be->buffer_write(be->ctx, buf, off + i0 * es, chunk, c * es);
    }
    free(tmp);
    return rc;
}

/* Fill a new buffer of n elements of dtype `want`, converting from `src` (a
 * checkpoint tensor) or drawing random values (src == NULL), in chunks so no
 * whole-tensor temporary is needed. */
static int fill_buffer(mdl_model *m, wsrc *ws, const void *src, st_dtype sdt, size_t n, tkind kind,
                       be_dtype want, be_buffer **out) {
    be_backend *be = m->be;
    int rc = be->buffer_alloc(be->ctx, n * be_dtype_size(want), out);
    if (rc) return rc;
    if ((rc = fill_into(m, ws, src, sdt, n, kind, want, *out, 0))) {
        be->buffer_free(be->ctx, *out);
        *out = NULL;
    }
    return rc;
}

/* The checkpoint file `f` as one backend buffer over its mapping (be_backend.buffer_wrap_host), made on
 * first use and owned by the model: *out is NULL where the backend has no wrap_host or declines this file
 * (VC_EUNSUP: a Vulkan device that cannot import it; its tensors are then copied). Other errors (out of
 * memory) fail the load. Tensors become views at their offset in the file, so a GPU that imports host
 * memory binds the mmapped file itself. */
static int file_buffer(mdl_model *m, const st_set *st, int f, be_buffer **out) {
    *out = NULL;
    if (!m->be->buffer_wrap_host || f < 0 || f >= st->n_files) return VC_OK;
    if (!m->file_state) {
        signed char *fs = calloc((size_t)st->n_files, 1);
        be_buffer **fb = calloc((size_t)st->n_files, sizeof *fb);
        if (!fs || !fb) {
            free(fs);
            free(fb);
            return vc_errf(VC_ENOMEM, "out of memory");
        }
        m->file_state = fs, m->file_bufs = fb;
    }
    if (m->file_state[f] == 0) {
        const vc_map *map = &st->files[f].map;
        be_buffer *b = NULL;
        int rc = map->data ? m->be->buffer_wrap_host(m->be->ctx, map->data, map->size, &b) : VC_EUNSUP;
        if (rc == VC_EUNSUP) {
            m->file_state[f] = -1;
        } else if (rc) {
            return rc;
        } else if ((rc = mdl_add_buf(m, b))) {
            m->be->buffer_free(m->be->ctx, b);
            return rc;
        } else {
            m->file_bufs[f] = b, m->file_state[f] = 1;
        }
    }
    *out = m->file_state[f] == 1 ? m->file_bufs[f] : NULL;
    return VC_OK;
}

/* "[a, b, c]" for messages. */
static void shape_str(char *buf, size_t cap, int ndim, const int64_t *dims) {
    snprintf(buf, cap, "[");
    for (int d = 0; d < ndim; d++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%lld", d ? ", " : "", (long long)dims[d]);
    }
    size_t l = strlen(buf);
    snprintf(buf + l, cap - l, "]");
}

/* Place one tensor of shape dims[0..ndim) (ndim 1..3), held as a 2-D view: a 1-D tensor of n elements
 * is [1, n]; [a, b, c] (transformers 5's fused experts) is [a * b, c]. Optional tensors that are absent
 * come back with rows == 0. */
int mdl_place_nd(mdl_model *m, wsrc *ws, const char *name, tkind kind, int ndim, const int64_t *dims,
                    int optional, be_buffer *into, size_t into_off, be_tensor *out) {
    memset(out, 0, sizeof *out);
    int64_t vr = 1, vc = dims[ndim - 1];
    for (int d = 0; d + 1 < ndim; d++) vr *= dims[d];
    be_dtype want = kind == T_MAT ? m->wdtype : BE_F32;
    size_t n = (size_t)vr * (size_t)vc;
    be_buffer *buf = NULL;
    int rc, in_place = 0;
    uint64_t ck_bytes = 0; /* checkpoint bytes of this tensor */
    if (!ws->st) {
        rc = into ? fill_into(m, ws, NULL, ST_F32, n, kind, want, into, into_off)
                  : fill_buffer(m, ws, NULL, ST_F32, n, kind, want, &buf);
    } else {
        const st_tensor *t = st_find(ws->st, name);
        if (!t) {
            if (optional) return VC_OK;
            return vc_errf(VC_EFORMAT, "%s: missing tensor '%s'", ws->dir, name);
        }
        const char *file = ws->st->files[t->file].path;
        if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
            return vc_errf(VC_EUNSUP, "%s: tensor '%s' has dtype %s (supported: F32, F16, BF16)", file, name,
                           st_dtype_name(t->dtype));
        int ok = t->ndim == ndim;
        for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == dims[d];
        if (!ok) {
            char got[128], want_s[128];
            int64_t tdims[8];
            for (int d = 0; d < t->ndim && d < 8; d++) tdims[d] = t->shape[d];
            shape_str(got, sizeof got, t->ndim < 8 ? t->ndim : 8, tdims);
            shape_str(want_s, sizeof want_s, ndim, dims);
            return vc_errf(VC_EFORMAT, "%s: tensor '%s' has shape %s, expected %s", file, name, got, want_s);
        }
        size_t es = be_dtype_size(want);
        ck_bytes = t->nbytes;
        be_buffer *fb = NULL;
        int same = t->dtype == st_of(want) && ((uintptr_t)t->data % es) == 0;
        if (!into && same && (rc = file_buffer(m, ws->st, t->file, &fb))) return vc_err_prefix(rc, "tensor '%s'", name);
        if (into) {
            rc = fill_into(m, ws, t->data, t->dtype, n, kind, want, into, into_off);
        } else if (fb) {
            /* in place: a view of the wrapped file (no buffer of its own) */
            rc = VC_OK, in_place = 1;
            into = fb;
            into_off = (size_t)((const char *)t->data - (const char *)ws->st->files[t->file].map.data);
        } else {
            rc = fill_buffer(m, ws, t->data, t->dtype, n, kind, want, &buf);
        }
    }
    if (rc) return vc_err_prefix(rc, "tensor '%s'", name);
    if (ws->st) mdl_progress(ws, ck_bytes, in_place ? 0 : ck_bytes);
    if (!into && (rc = mdl_add_buf(m, buf))) {
        m->be->buffer_free(m->be->ctx, buf);
        return rc;
    }
    *out = into ? be_view(into, into_off, want, vr, vc) : be_view(buf, 0, want, vr, vc);
    m->weight_bytes += n * be_dtype_size(want);
    m->n_params += n;
    if (in_place) m->bytes_in_place += n * be_dtype_size(want);
    else m->bytes_loaded += n * be_dtype_size(want);
    return VC_OK;
}

/* A matrix (cols > 0) or a 1-D tensor of `rows` elements (cols == 0). */
int mdl_place(mdl_model *m, wsrc *ws, const char *name, tkind kind, int64_t rows, int64_t cols,
                 int optional, be_tensor *out) {
    int64_t dims[2] = {rows, cols};
    return cols == 0 ? mdl_place_nd(m, ws, name, kind, 1, dims, optional, NULL, 0, out)
                     : mdl_place_nd(m, ws, name, kind, 2, dims, optional, NULL, 0, out);
}

uint64_t mdl_tbytes(const be_tensor *t) { return be_dtype_bytes(t->dtype, t->rows * t->cols); }

/* YaRN's frequency i (transformers' _compute_yarn_parameters): the correction range [low, high] of
 * dimensions between beta_fast and beta_slow rotations over the original context (floored and ceiled
 * when truncate), a linear ramp across it, interpolated (inv / factor) below and extrapolated (inv)
 * above. */
static double yarn_corr_dim(const model_config *c, int rot, double rotations) {
    return rot * log(c->rope_original_max_pos / (rotations * 2.0 * M_PI)) / (2.0 * log(c->rope_theta));
}

static double yarn_inv_freq(const model_config *c, int rot, int i, double inv) {
    double lo = yarn_corr_dim(c, rot, c->rope_beta_fast), hi = yarn_corr_dim(c, rot, c->rope_beta_slow);
    if (c->rope_truncate) lo = floor(lo), hi = ceil(hi);
    lo = lo > 0 ? lo : 0;
    hi = hi < rot - 1 ? hi : rot - 1;
    if (lo == hi) hi += 0.001;
    double ramp = ((double)i - lo) / (hi - lo);
    ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
    double extra = 1.0 - ramp; /* the share of the extrapolated (unscaled) frequency */
    return inv / c->rope_factor * (1.0 - extra) + inv * extra;
}

/* RoPE inverse frequencies, as transformers computes them for each rope_type. which: 0 the global
 * table (longrope: short factors), 1 longrope's long factors, 2 plain RoPE with rope_local_theta. */
static void inv_freq_table(const model_config *c, int rot, int which, float *f) {
    for (int i = 0; i < rot / 2; i++) {
        /* transformers: base ** (arange(0, dim, 2).float() / dim), in f32 */
        float expo = (float)(2 * i) / (float)rot;
        double inv = 1.0 / pow(which == 2 ? c->rope_local_theta : c->rope_theta, (double)expo);
        if (which == 2) {
            /* Gemma 3's local layers: default RoPE */
        } else if (c->rope_type == CFG_ROPE_LINEAR) {
            inv /= c->rope_factor;
        } else if (c->rope_type == CFG_ROPE_LONGROPE) {
            inv /= (double)(which == 1 ? c->rope_long_factor[i] : c->rope_short_factor[i]);
        } else if (c->rope_type == CFG_ROPE_YARN) {
            inv = yarn_inv_freq(c, rot, i, inv);
        } else if (c->rope_type == CFG_ROPE_LLAMA3) {
            double old = c->rope_original_max_pos, lf = c->rope_low_freq_factor, hf = c->rope_high_freq_factor;
            double low_wl = old / lf, high_wl = old / hf;
            double wl = 2.0 * M_PI / inv;
            if (wl > low_wl) {
                inv = inv / c->rope_factor;
            } else if (!(wl < high_wl)) { /* medium frequencies: interpolate */
                double smooth = (old / wl - lf) / (hf - lf);
                inv = (1.0 - smooth) * inv / c->rope_factor + smooth * inv;
            }
        }
        f[i] = (float)inv;
    }
}

static int upload_inv_freq(mdl_model *m, int which, be_tensor *out) {
    int half = m->rot_dim / 2;
    float f[512];
    inv_freq_table(&m->cfg, m->rot_dim, which, f);
    be_buffer *buf;
    int rc = m->be->buffer_alloc(m->be->ctx, sizeof(float) * (size_t)half, &buf);
    if (rc) return rc;
    if ((rc = mdl_add_buf(m, buf))) {
        m->be->buffer_free(m->be->ctx, buf);
        return rc;
    }
    rc = m->be->buffer_write(m->be->ctx, buf, 0, f, sizeof(float) * (size_t)half);
    *out = be_view(buf, 0, BE_F32, 1, half);
    return rc;
}

static int make_inv_freq(mdl_model *m) {
    const model_config *c = &m->cfg;
    int rot = (int)(c->head_dim * c->partial_rotary_factor);
    rot &= ~1;
    if (rot < 2 || rot > 1024) return vc_errf(VC_EUNSUP, "config.json: rotary dimension %d out of range", rot);
    if (c->rope_type == CFG_ROPE_LONGROPE && c->rope_n_factors != rot / 2)
        return vc_errf(VC_EFORMAT, "config.json: longrope has %d factors for a rotary dimension of %d", c->rope_n_factors, rot);
    m->rot_dim = rot;
    m->rope_mscale = (float)c->rope_attn_factor;
    if (!(m->rope_mscale > 0)) m->rope_mscale = 1.0f;
    /* HF: sqrt(hidden_size) as a tensor of the model's dtype (vLLM: the normalizer buffer, cast with the model) */
    float es = sqrtf((float)c->hidden_size);
    m->embed_scale = !c->embed_scale ? 1.0f : m->wdtype == BE_F16 ? vc_f16_to_f32(vc_f32_to_f16(es))
                                          : m->wdtype == BE_BF16 ? vc_bf16_to_f32(vc_f32_to_bf16(es)) : es;
    int rc = upload_inv_freq(m, 0, &m->inv_freq);
    if (!rc && c->rope_type == CFG_ROPE_LONGROPE) rc = upload_inv_freq(m, 1, &m->inv_freq_long);
    if (!rc && c->rope_local_theta > 0) rc = upload_inv_freq(m, 2, &m->inv_freq_local);
    return rc;
}

/* A new buffer of `bytes` owned by the model. */
static int pack_buffer(mdl_model *m, size_t bytes, be_buffer **out) {
    int rc = m->be->buffer_alloc(m->be->ctx, bytes, out);
    if (!rc && (rc = mdl_add_buf(m, *out))) m->be->buffer_free(m->be->ctx, *out);
    return rc;
}

/* The n (<= 3) tensors "<pfx>layers.<l>.<mods[i]>.<suffix>" of rows[i] x cols (cols 0: vectors): where the backend
 * copies them (a discrete GPU, random weights, a dtype conversion), one after another in one new buffer, so
 * that a backend can run q/k/v or gate/up as one matmul (be_backend.matmul_multi / matmul_fused); where the
 * first one can be used in place (a view of the file), each where it lies. */
static int place_stacked(mdl_model *m, wsrc *ws, tkind kind, const char *pfx, int l, int n, const char *const *mods,
                         const char *suffix, const int64_t *rows, int64_t cols, be_tensor *const *dst) {
    be_dtype want = kind == T_MAT ? m->wdtype : BE_F32;
    char nm[3][200];
    for (int i = 0; i < n; i++) snprintf(nm[i], sizeof nm[i], "%slayers.%d.%s.%s", pfx, l, mods[i], suffix);
    const st_tensor *t0 = ws->st ? st_find(ws->st, nm[0]) : NULL;
    be_buffer *fb = NULL, *pb = NULL;
    int rc;
    if (ws->st && !t0) return mdl_place(m, ws, nm[0], kind, rows[0], cols, 0, dst[0]); /* its error */
    if (t0 && t0->dtype == st_of(want) && (uintptr_t)t0->data % be_dtype_size(want) == 0 &&
        (rc = file_buffer(m, ws->st, t0->file, &fb)))
        return vc_err_prefix(rc, "tensor '%s'", nm[0]);
    size_t bytes[3], total = 0;
    for (int i = 0; i < n; i++)
        total += bytes[i] = (size_t)rows[i] * (size_t)(cols > 0 ? cols : 1) * be_dtype_size(want);
    if (!fb && (rc = pack_buffer(m, total, &pb))) return rc;
    size_t off = 0;
    for (int i = 0; i < n; off += bytes[i++]) {
        int64_t dims[2] = {rows[i], cols};
        rc = fb ? mdl_place(m, ws, nm[i], kind, rows[i], cols, 0, dst[i])
                : mdl_place_nd(m, ws, nm[i], kind, cols > 0 ? 2 : 1, dims, 0, pb, off, dst[i]);
        if (rc) return rc;
    }
    return VC_OK;
}

/* q/k/v and gate/up: separate tensors (stacked where copied), or row ranges of Phi-3's fused qkv_proj /
 * gate_up_proj (used where they lie, no copy). */
static int place_proj(mdl_model *m, wsrc *ws, const char *pfx, int l, mdl_layer *L) {
    const model_config *c = &m->cfg;
    int64_t D = c->hidden_size, F = c->intermediate_size;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    char nm[200];
    int rc;
    if (c->fused_qkv) {
        be_tensor qkv, gu;
        snprintf(nm, sizeof nm, "%slayers.%d.self_attn.qkv_proj.weight", pfx, l);
        if ((rc = mdl_place(m, ws, nm, T_MAT, qd + 2 * kvd, D, 0, &qkv))) return rc;
        snprintf(nm, sizeof nm, "%slayers.%d.mlp.gate_up_proj.weight", pfx, l);
        if ((rc = mdl_place(m, ws, nm, T_MAT, 2 * F, D, 0, &gu))) return rc;
        L->wq = be_rows(&qkv, 0, qd), L->wk = be_rows(&qkv, qd, kvd), L->wv = be_rows(&qkv, qd + kvd, kvd);
        L->w_gate = be_rows(&gu, 0, F), L->w_up = be_rows(&gu, F, F);
        return VC_OK;
    }
    static const char *names[5] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj",
                                   "mlp.up_proj"};
    be_tensor *dst[5] = {&L->wq, &L->wk, &L->wv, &L->w_gate, &L->w_up};
    int64_t rows[5] = {qd, kvd, kvd, F, F};
    if ((rc = place_stacked(m, ws, T_MAT, pfx, l, 3, names, "weight", rows, D, dst))) return rc;
    if (cfg_layer_moe(c, l)) return VC_OK; /* the experts take gate/up's place */
    return place_stacked(m, ws, T_MAT, pfx, l, 2, names + 3, "weight", rows + 3, D, dst + 3);
}

/* The prefix of the language model's tensors: "model." for a causal LM; a multimodal Gemma 3
 * checkpoint keeps them under "language_model.model." (transformers 4) or "model.language_model."
 * (transformers 5). */
static const char *weight_prefix(const mdl_model *m, const wsrc *ws) {
    static const char *mm[2] = {"model.language_model.", "language_model.model."};
    if (!m->cfg.multimodal || !ws->st) return "model.";
    char nm[96];
    for (int i = 0; i < 2; i++) {
        snprintf(nm, sizeof nm, "%sembed_tokens.weight", mm[i]);
        if (st_find(ws->st, nm)) return mm[i];
    }
    return mm[0];
}

/* The experts of MoE layer l, from per-expert tensors (the published checkpoints) or transformers 5's
 * fused experts.gate_up_proj [E, 2I, D] and experts.down_proj [E, D, I] (used where they lie; random
 * weights take this layout too, one buffer per projection). */
static int place_experts(mdl_model *m, wsrc *ws, const char *pfx, int l, mdl_layer *L) {
    const model_config *c = &m->cfg;
    int E = c->n_experts, mix = c->moe_names == CFG_MOE_NAMES_MIXTRAL;
    int64_t D = c->hidden_size, I = c->moe_intermediate_size;
    static const char *pub[2][3] = {{"gate_proj", "up_proj", "down_proj"}, {"w1", "w3", "w2"}};
    const char *blk = mix ? "block_sparse_moe" : "mlp";
    char nm[200], fused[2][200];
    int rc, nf = 0;
    snprintf(nm, sizeof nm, "%slayers.%d.%s.experts.0.%s.weight", pfx, l, blk, pub[mix][0]);
    for (int b = 0; b < 2 && ws->st && !st_find(ws->st, nm) && !nf; b++) { /* transformers 5: Mixtral's is mlp */
        const char *bn = b ? "block_sparse_moe" : "mlp";
        snprintf(fused[0], sizeof fused[0], "%slayers.%d.%s.experts.gate_up_proj", pfx, l, bn);
        snprintf(fused[1], sizeof fused[1], "%slayers.%d.%s.experts.down_proj", pfx, l, bn);
        nf = st_find(ws->st, fused[0]) != NULL;
    }
    if (!ws->st || nf) {
        be_tensor gu, dn;
        int64_t dgu[3] = {E, 2 * I, D}, ddn[3] = {E, D, I};
        if (!ws->st) snprintf(fused[0], sizeof fused[0], "layers.%d.experts.gate_up_proj", l);
        if (!ws->st) snprintf(fused[1], sizeof fused[1], "layers.%d.experts.down_proj", l);
        if ((rc = mdl_place_nd(m, ws, fused[0], T_MAT, 3, dgu, 0, NULL, 0, &gu)) ||
            (rc = mdl_place_nd(m, ws, fused[1], T_MAT, 3, ddn, 0, NULL, 0, &dn)))
            return rc;
        for (int e = 0; e < E; e++) {
            L->exp_gate[e] = be_rows(&gu, 2 * I * e, I), L->exp_up[e] = be_rows(&gu, 2 * I * e + I, I);
            L->exp_down[e] = be_rows(&dn, D * e, D);
        }
        return VC_OK;
    }
    /* Experts the backend copies (no wrap_host, a file it declines to wrap: a discrete GPU) are packed into
     * buffers of up to 512 MiB, not one allocation per expert (Qwen3-30B-A3B has 18,432 expert tensors;
     * drivers may allow 4,096 allocations); in place (the CPU, unified GPUs) they are views of the files. */
    snprintf(nm, sizeof nm, "%slayers.%d.%s.experts.0.%s.weight", pfx, l, blk, pub[mix][0]);
    const st_tensor *t0 = st_find(ws->st, nm);
    be_buffer *fb0 = NULL;
    if (t0 && t0->dtype == st_of(m->wdtype) && (rc = file_buffer(m, ws->st, t0->file, &fb0))) return rc;
    int pack = !fb0;
    size_t eb = (size_t)I * (size_t)D * be_dtype_size(m->wdtype);
    int per = eb >= ((size_t)512 << 20) ? 1 : (int)(((size_t)512 << 20) / eb);
    be_buffer *pb[3] = {NULL, NULL, NULL};
    for (int e = 0; e < E; e++) {
        be_tensor *dst[3] = {&L->exp_gate[e], &L->exp_up[e], &L->exp_down[e]};
        for (int j = 0; j < 3; j++) {
            if (pack && e % per == 0 && (rc = pack_buffer(m, (size_t)(E - e < per ? E - e : per) * eb, &pb[j])))
                return rc;
            int64_t dims[2] = {j < 2 ? I : D, j < 2 ? D : I};
            snprintf(nm, sizeof nm, "%slayers.%d.%s.experts.%d.%s.weight", pfx, l, blk, e, pub[mix][j]);
            if ((rc = mdl_place_nd(m, ws, nm, T_MAT, 2, dims, 0, pb[j], (size_t)(e % per) * eb, dst[j]))) return rc;
        }
    }
    return VC_OK;
}

/* A sparse MoE block: the router, the experts, Qwen2-MoE's shared expert and its gate. */
static int place_moe(mdl_model *m, wsrc *ws, const char *pfx, int l, mdl_layer *L, be_tensor *views) {
    const model_config *c = &m->cfg;
    int64_t D = c->hidden_size, Fs = c->shared_expert_intermediate_size;
    int mix = c->moe_names == CFG_MOE_NAMES_MIXTRAL, rc;
    char nm[200];
    snprintf(nm, sizeof nm, "%slayers.%d.%s.gate.weight", pfx, l, mix ? "block_sparse_moe" : "mlp");
    if (mix && ws->st && !st_find(ws->st, nm)) { /* transformers 5's Mixtral: mlp.gate */
        char alt[200];
        snprintf(alt, sizeof alt, "%slayers.%d.mlp.gate.weight", pfx, l);
        if (st_find(ws->st, alt)) memcpy(nm, alt, sizeof nm);
    }
    if ((rc = mdl_place(m, ws, nm, T_ROUTER, c->n_experts, D, 0, &L->router))) return rc;
    L->exp_gate = views, L->exp_up = views + c->n_experts, L->exp_down = views + 2 * c->n_experts;
    if ((rc = place_experts(m, ws, pfx, l, L))) return rc;
    if (Fs > 0) {
        static const char *names[3] = {"gate_proj", "up_proj", "down_proj"};
        be_tensor *dst[3] = {&L->w_gate, &L->w_up, &L->w_down};
        for (int j = 0; j < 3; j++) {
            snprintf(nm, sizeof nm, "%slayers.%d.mlp.shared_expert.%s.weight", pfx, l, names[j]);
            if ((rc = mdl_place(m, ws, nm, T_MAT, j < 2 ? Fs : D, j < 2 ? D : Fs, 0, dst[j]))) return rc;
        }
        snprintf(nm, sizeof nm, "%slayers.%d.mlp.shared_expert_gate.weight", pfx, l);
        if ((rc = mdl_place(m, ws, nm, T_ROUTER, 1, D, 0, &L->shared_gate))) return rc;
    }
    /* a decode step reads the router, the shared expert (counted with the dense MLP) and k experts */
    m->decode_bytes_per_token += mdl_tbytes(&L->router) + mdl_tbytes(&L->shared_gate) +
                                 (uint64_t)c->n_experts_per_tok *
                                     (mdl_tbytes(&L->exp_gate[0]) + mdl_tbytes(&L->exp_up[0]) + mdl_tbytes(&L->exp_down[0]));
    return VC_OK;
}

static int place_layer(mdl_model *m, wsrc *ws, const char *pfx, int l) {
    const model_config *c = &m->cfg;
    int64_t D = c->hidden_size, F = c->intermediate_size;
    int64_t qd = (int64_t)c->n_heads * c->head_dim, kvd = (int64_t)c->n_kv_heads * c->head_dim;
    int rc;
    char nm[200];
    mdl_layer *L = &m->layers[l];
#define PLACE(kind, rows, cols, opt, dst, ...)                             \
    do {                                                                 \
        snprintf(nm, sizeof nm, __VA_ARGS__);                            \
        if ((rc = mdl_place(m, ws, nm, kind, rows, cols, opt, dst))) return rc; \
    } while (0)
    PLACE(T_NORM, D, 0, 0, &L->attn_norm, "%slayers.%d.input_layernorm.weight", pfx, l);
    if ((rc = place_proj(m, ws, pfx, l, L))) return rc;
    PLACE(T_MAT, D, qd, 0, &L->wo, "%slayers.%d.self_attn.o_proj.weight", pfx, l);
    if (c->qkv_bias) {
        static const char *mods[3] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"};
        int64_t rows[3] = {qd, kvd, kvd};
        be_tensor *dst[3] = {&L->bq, &L->bk, &L->bv};
        if ((rc = place_stacked(m, ws, T_BIAS, pfx, l, 3, mods, "bias", rows, 0, dst))) return rc;
    }
    if (c->o_bias) PLACE(T_BIAS, D, 0, 0, &L->bo, "%slayers.%d.self_attn.o_proj.bias", pfx, l);
    if (c->attn_sinks) PLACE(T_BIAS, c->n_heads, 0, 0, &L->sinks, "%slayers.%d.self_attn.sinks", pfx, l);
    if (c->qk_norm) {
        PLACE(T_NORM, c->head_dim, 0, 0, &L->q_norm, "%slayers.%d.self_attn.q_norm.weight", pfx, l);
        PLACE(T_NORM, c->head_dim, 0, 0, &L->k_norm, "%slayers.%d.self_attn.k_norm.weight", pfx, l);
    }
    if (c->post_norms) { /* Gemma: post_attention_layernorm follows attention; the MLP has its own pair */
        PLACE(T_NORM, D, 0, 0, &L->post_attn_norm, "%slayers.%d.post_attention_layernorm.weight", pfx, l);
        PLACE(T_NORM, D, 0, 0, &L->mlp_norm, "%slayers.%d.pre_feedforward_layernorm.weight", pfx, l);
        PLACE(T_NORM, D, 0, 0, &L->post_mlp_norm, "%slayers.%d.post_feedforward_layernorm.weight", pfx, l);
    } else {
        PLACE(T_NORM, D, 0, 0, &L->mlp_norm, "%slayers.%d.post_attention_layernorm.weight", pfx, l);
    }
    if (cfg_layer_moe(c, l) && c->moe_names == CFG_MOE_NAMES_GPTOSS) {
        if ((rc = mdl_place_gptoss_moe(m, ws, pfx, l, L, m->expert_views + 3 * (size_t)c->n_experts * (size_t)l)))
            return rc;
    } else if (cfg_layer_moe(c, l)) {
        if ((rc = place_moe(m, ws, pfx, l, L, m->expert_views + 3 * (size_t)c->n_experts * (size_t)l))) return rc;
    } else {
        PLACE(T_MAT, D, F, 0, &L->w_down, "%slayers.%d.mlp.down_proj.weight", pfx, l);
    }
    if (c->mlp_bias) {
        PLACE(T_BIAS, F, 0, 0, &L->b_gate, "%slayers.%d.mlp.gate_proj.bias", pfx, l);
        PLACE(T_BIAS, F, 0, 0, &L->b_up, "%slayers.%d.mlp.up_proj.bias", pfx, l);
        PLACE(T_BIAS, D, 0, 0, &L->b_down, "%slayers.%d.mlp.down_proj.bias", pfx, l);
    }
#undef PLACE
    const be_tensor *ts[] = {&L->attn_norm, &L->wq,       &L->wk,       &L->wv,       &L->wo,
                             &L->bq,        &L->bk,       &L->bv,       &L->bo,       &L->q_norm,
                             &L->k_norm,    &L->mlp_norm, &L->w_gate,   &L->w_up,     &L->w_down,
                             &L->b_gate,    &L->b_up,     &L->b_down,   &L->post_attn_norm, &L->post_mlp_norm,
                             &L->sinks};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) m->decode_bytes_per_token += mdl_tbytes(ts[i]);
    return VC_OK;
}

static int place_all(mdl_model *m, wsrc *ws) {
    const model_config *c = &m->cfg;
    int64_t D = c->hidden_size, V = c->vocab_size;
    int rc;
    char nm[160];
    const char *pfx = weight_prefix(m, ws);
    if (c->moe_names == CFG_MOE_NAMES_GPTOSS && !m->be->swiglu_clamp) /* the op is optional in backend.h */
        return vc_errf(VC_EUNSUP, "%s: the %s backend has no clamped SwiGLU (swiglu_clamp), which %s needs; use "
                       "--device cpu", ws->dir, m->be->name, c->arch);
    snprintf(nm, sizeof nm, "%sembed_tokens.weight", pfx);
    if ((rc = mdl_place(m, ws, nm, T_MAT, V, D, 0, &m->embed))) return rc;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return vc_errf(VC_ENOMEM, "out of memory");
    if (c->n_experts > 0 &&
        !(m->expert_views = calloc(3 * (size_t)c->n_experts * (size_t)c->n_layers, sizeof *m->expert_views)))
        return vc_errf(VC_ENOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = place_layer(m, ws, pfx, l))) return rc;
    snprintf(nm, sizeof nm, "%snorm.weight", pfx);
    if ((rc = mdl_place(m, ws, nm, T_NORM, D, 0, 0, &m->final_norm))) return rc;
    if (c->tie_word_embeddings) {
        m->lm_head = m->embed;
    } else {
        const char *head = "lm_head.weight";
        if (c->multimodal && ws->st && !st_find(ws->st, head)) head = "language_model.lm_head.weight";
        if ((rc = mdl_place(m, ws, head, T_MAT, V, D, 0, &m->lm_head))) return rc;
    }
    m->decode_bytes_per_token += mdl_tbytes(&m->final_norm) + mdl_tbytes(&m->lm_head) +
                                 (uint64_t)D * be_dtype_size(m->embed.dtype);
    return make_inv_freq(m);
}

static int model_new(const model_config *cfg, be_dtype dt, be_backend *be, mdl_model **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return vc_errf(VC_ENOMEM, "out of memory");
    (*out)->cfg = *cfg;
    (*out)->wdtype = dt;
    (*out)->be = be;
    return VC_OK;
}

int mdl_load(const char *dir, const char *dtype_flag, be_backend *be, mdl_model **out) {
    *out = NULL;
    model_config cfg;
    int rc = cfg_load_dir(dir, &cfg);
    if (rc) return rc;
    be_dtype dt;
    if ((rc = cfg_resolve_dtype(dtype_flag, cfg.torch_dtype, &dt))) return rc;
    mdl_model *m;
    if ((rc = model_new(&cfg, dt, be, &m))) return rc;
    if ((rc = st_set_open_dir(dir, &m->st))) goto err;
    wsrc ws = {.dir = dir, .st = &m->st, .tty = isatty(2), .t0 = mono_s()};
    for (int i = 0; i < m->st.n_tensors; i++) ws.total += m->st.tensors[i].nbytes;
    if ((rc = place_all(m, &ws))) goto err;
    if (ws.tty && ws.done < ws.total) { /* tensors the model does not use: finish the bar */
        ws.done = ws.total - 1;
        mdl_progress(&ws, 1, 0);
    }
    *out = m;
    return VC_OK;
err:
    mdl_free(m);
    return rc;
}

int mdl_random(const model_config *cfg, be_dtype dt, uint64_t seed, be_backend *be, mdl_model **out) {
    *out = NULL;
    mdl_model *m;
    int rc = model_new(cfg, dt, be, &m);
    if (rc) return rc;
    wsrc ws = {.dir = "random"};
    vc_rng_seed(&ws.rng, seed);
    rc = place_all(m, &ws);
    free(ws.rtab);
    if (rc) {
        mdl_free(m);
        return rc;
    }
    *out = m;
    return VC_OK;
}

void mdl_free(mdl_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_bufs; i++) m->be->buffer_free(m->be->ctx, m->bufs[i]);
    free(m->bufs);
    free(m->file_bufs);
    free(m->file_state);
    free(m->layers);
    free(m->expert_views);
    st_set_free(&m->st);
    free(m);
}
