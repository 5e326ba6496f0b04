/* adapter: PEFT LoRA adapter folders -> lora_adapter (see adapter.h for the format; adapter_config.c
 * reads adapter_config.json). Tensors are placed into (layer, module) slots by name first, then each
 * slot is checked (pairs, shapes, ranks against the config, targeting) and converted to f32, in slot
 * order, so the first error reported does not depend on the file's tensor order. */
#include "lora/adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "base/file.h"
#include "base/half.h"
#include "lora/adapter_internal.h"
#include "model/safetensors.h"

#define LORA_MAX_CONFIG ((size_t)4 << 20) /* adapter_config.json bytes */

/* adapter_model.safetensors, mapped and parsed (st_parse, not st_set_open_files: one file, and a
 * file with no tensors reaches our own "no lora_A/lora_B weights" error). */
typedef struct {
    vc_map map;
    st_tensor *t; /* [n], sorted by name, data in map */
    int n;
} lora_file;

static void lora_file_free(lora_file *f) {
    st_tensors_free(f->t, f->n);
    vc_map_free(&f->map);
    memset(f, 0, sizeof *f);
}

/* What one load needs besides the adapter it fills. */
typedef struct {
    const char *path;            /* adapter_model.safetensors, for messages */
    const lora_shape *shape;
    int max_rank;                /* --max-lora-rank */
    const st_tensor **ta, **tb;  /* [n_layers * LORA_N_MODULES]: lora_A / lora_B of each slot, or NULL */
    lora_re target;              /* target_modules in the string form (re NULL otherwise) */
    lora_re *rank_re, *alpha_re; /* [cfg.n_rank_pat], [cfg.n_alpha_pat] */
} lora_loader;

static void lora_loader_free(lora_loader *L, const lora_config *c) {
    free(L->ta);
    free(L->tb);
    lora_re_free(&L->target);
    for (int i = 0; L->rank_re && i < c->n_rank_pat; i++) lora_re_free(&L->rank_re[i]);
    for (int i = 0; L->alpha_re && i < c->n_alpha_pat; i++) lora_re_free(&L->alpha_re[i]);
    free(L->rank_re);
    free(L->alpha_re);
}

static int lora_compile_keys(char **keys, int n, const char *field, const char *what, lora_re **out) {
    *out = calloc((size_t)n + 1, sizeof **out);
    if (!*out) return vc_errf(VC_ENOMEM, "%s: out of memory", what);
    for (int i = 0; i < n; i++) {
        int rc = lora_key_compile(&(*out)[i], keys[i], what, field);
        if (rc) return rc;
    }
    return VC_OK;
}

/* Tables and regexes; for the string form, target_mask is redone over the model's layers. */
static int lora_loader_init(lora_loader *L, lora_config *c, const char *cfg_path) {
    size_t n = (size_t)L->shape->n_layers * LORA_N_MODULES;
    L->ta = calloc(n, sizeof *L->ta);
    L->tb = calloc(n, sizeof *L->tb);
    if (!L->ta || !L->tb) return vc_errf(VC_ENOMEM, "%s: out of memory", L->path);
    int rc;
    if ((rc = lora_compile_keys(c->rank_key, c->n_rank_pat, "rank_pattern", cfg_path, &L->rank_re))) return rc;
    if ((rc = lora_compile_keys(c->alpha_key, c->n_alpha_pat, "alpha_pattern", cfg_path, &L->alpha_re))) return rc;
    if (!c->target_regex) return VC_OK;
    if ((rc = lora_re_compile(&L->target, c->target_regex, cfg_path, "target_modules"))) return rc;
    return lora_regex_mask(&L->target, L->shape->n_layers, cfg_path, &c->target_mask);
}

/* "[base_model.model.]model.layers.{i}.{self_attn|mlp}.{module}.lora_{A|B}.weight" -> its parts;
 * -1 for any other name. The layer is not checked against the model here. */
static int lora_parse_name(const char *s, long *layer, int *module, int *is_b) {
    static const char pre[] = "base_model.model.", layers[] = "model.layers.";
    if (!strncmp(s, pre, sizeof pre - 1)) s += sizeof pre - 1;
    if (strncmp(s, layers, sizeof layers - 1)) return -1;
    s += sizeof layers - 1;
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '.')) return -1; /* PEFT writes no leading zeros */
    long v = 0;
    for (int nd = 0; *s >= '0' && *s <= '9'; s++) {
        if (++nd > 9) return -1;
        v = v * 10 + (*s - '0');
    }
    if (*s++ != '.') return -1;
    for (int m = 0; m < LORA_N_MODULES; m++) {
        const char *parent = lora_module_parent(m), *mod = lora_module_name(m);
        size_t pl = strlen(parent), nl = strlen(mod);
        if (strncmp(s, parent, pl) || s[pl] != '.' || strncmp(s + pl + 1, mod, nl)) continue;
        const char *t = s + pl + 1 + nl;
        if (!strcmp(t, ".lora_A.weight")) *is_b = 0;
        else if (!strcmp(t, ".lora_B.weight")) *is_b = 1;
        else return -1;
        *layer = v;
        *module = m;
        return 0;
    }
    return -1;
}

static int lora_unknown_tensor(const char *path, const char *name) {
    const char *why =
        strstr(name, "lora_embedding_") || strstr(name, "embed_tokens") ? "LoRA on the embedding is not supported"
        : strstr(name, "lm_head") ? "LoRA on the LM head and modules_to_save copies of it are not supported"
        : strstr(name, "lora_magnitude_vector") ? "DoRA is not supported"
        : "only lora_A/lora_B weights of the decoder layers' " LORA_MODULE_LIST
          " are supported (modules_to_save copies and biases are not)";
    return vc_errf(VC_EUNSUP, "%s: tensor '%.200s': %s", path, name, why);
}

/* Put one tensor into its slot's ta/tb. */
static int lora_place(lora_loader *L, const st_tensor *t) {
    long layer;
    int m, is_b;
    if (lora_parse_name(t->name, &layer, &m, &is_b)) return lora_unknown_tensor(L->path, t->name);
    if (layer >= L->shape->n_layers)
        return vc_errf(VC_EINVAL, "%s: tensor '%.200s' is for layer %ld but the model has %d layers", L->path,
                       t->name, layer, L->shape->n_layers);
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return vc_errf(VC_EUNSUP, "%s: tensor '%.200s' has dtype %s (LoRA weights must be F32, F16 or BF16)",
                       L->path, t->name, st_dtype_name(t->dtype));
    if (t->ndim != 2)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s' has %d dimensions, not 2", L->path, t->name, t->ndim);
    const st_tensor **slot = &(is_b ? L->tb : L->ta)[layer * LORA_N_MODULES + m];
    if (*slot)
        return vc_errf(VC_EFORMAT, "%s: tensors '%.200s' and '%.200s' are the same weight", L->path,
                       (*slot)->name, t->name);
    *slot = t;
    return VC_OK;
}

/* in and out features of module m, and what the model calls them. */
static void lora_dims(const lora_shape *s, int m, int *in, int *out, const char **in_name, const char **out_name) {
    static const char *const H = "hidden size", *const Q = "attention size (num_attention_heads x head_dim)",
                             *const KV = "key/value size (num_key_value_heads x head_dim)",
                             *const F = "intermediate size";
    switch (m) {
    case LORA_Q: *in = s->hidden, *in_name = H, *out = s->q_dim, *out_name = Q; break;
    case LORA_K:
    case LORA_V: *in = s->hidden, *in_name = H, *out = s->kv_dim, *out_name = KV; break;
    case LORA_O: *in = s->q_dim, *in_name = Q, *out = s->hidden, *out_name = H; break;
    case LORA_GATE:
    case LORA_UP: *in = s->hidden, *in_name = H, *out = s->intermediate, *out_name = F; break;
    default: *in = s->intermediate, *in_name = F, *out = s->hidden, *out_name = H; break;
    }
}

/* Shapes of a slot's pair: A [rank, in], B [out, rank], rank <= max_rank. */
static int lora_check_shapes(const lora_loader *L, int m, const st_tensor *A, const st_tensor *B) {
    int in, out;
    const char *in_name, *out_name;
    lora_dims(L->shape, m, &in, &out, &in_name, &out_name);
    if (A->shape[0] > L->max_rank)
        return vc_errf(VC_EINVAL, "%s: tensor '%.200s' has rank %lld, above --max-lora-rank %d", L->path, A->name,
                       (long long)A->shape[0], L->max_rank);
    if (B->shape[1] > L->max_rank)
        return vc_errf(VC_EINVAL, "%s: tensor '%.200s' has rank %lld, above --max-lora-rank %d", L->path, B->name,
                       (long long)B->shape[1], L->max_rank);
    if (A->shape[0] != B->shape[1])
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s' has rank %lld (rows) but '%.200s' has rank %lld (columns)",
                       L->path, A->name, (long long)A->shape[0], B->name, (long long)B->shape[1]);
    if (A->shape[1] != in)
        return vc_errf(VC_EINVAL, "%s: tensor '%.200s' has %lld columns but the model's %s is %d", L->path,
                       A->name, (long long)A->shape[1], in_name, in);
    if (B->shape[0] != out)
        return vc_errf(VC_EINVAL, "%s: tensor '%.200s' has %lld rows but the model's %s is %d", L->path, B->name,
                       (long long)B->shape[0], out_name, out);
    return VC_OK;
}

/* Index of the first key whose regex matches `name` (re.match), or -1; -2 and the error when a match failed. */
static int lora_first_key(const lora_re *res, int n, const char *name, const char *what, const char *field) {
    for (int i = 0; i < n; i++) {
        int hit = lora_re_match(&res[i], name, 0, what, field);
        if (hit < 0) return -2;
        if (hit) return i;
    }
    return -1;
}

/* The module is targeted, and its rank and alpha as adapter_config.json says. */
static int lora_expect(const lora_loader *L, const lora_config *c, const char *cfg_path, int layer, int m,
                       const st_tensor *A, int *rank, double *alpha) {
    char name[LORA_MAX_NAME];
    lora_module_path(name, sizeof name, layer, m);
    int hit = L->target.re ? lora_re_match(&L->target, name, PCRE2_ENDANCHORED, cfg_path, "target_modules")
                           : (int)((c->target_mask >> m) & 1);
    if (hit < 0) return hit;
    if (!hit)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s' is for %s, which target_modules in %s does not %s",
                       L->path, A->name, name, cfg_path, L->target.re ? "match" : "list");
    int k = lora_first_key(L->rank_re, c->n_rank_pat, name, cfg_path, "rank_pattern");
    if (k == -2) return VC_EUNSUP;
    *rank = k >= 0 ? c->rank_val[k] : c->r;
    if (A->shape[0] != *rank) {
        char said[96];
        if (k >= 0) snprintf(said, sizeof said, "rank_pattern['%.40s'] says %d", c->rank_key[k], *rank);
        else snprintf(said, sizeof said, "r says %d", *rank);
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s' has rank %lld but %s: %s", L->path, A->name,
                       (long long)A->shape[0], cfg_path, said);
    }
    k = lora_first_key(L->alpha_re, c->n_alpha_pat, name, cfg_path, "alpha_pattern");
    if (k == -2) return VC_EUNSUP;
    *alpha = k >= 0 ? c->alpha_val[k] : c->lora_alpha;
    return VC_OK;
}

/* A copy of a 2-D F32/F16/BF16 tensor as f32 (st_parse checked that its bytes are in the file). */
static int lora_to_f32(const st_tensor *t, const char *path, float **out) {
    size_t n = (size_t)t->shape[0] * (size_t)t->shape[1], bytes;
    *out = NULL;
    if (vc_ckd_array(n, sizeof(float), &bytes) || !(*out = malloc(bytes ? bytes : 1)))
        return vc_errf(VC_ENOMEM, "%s: tensor '%.200s': out of memory", path, t->name);
    const unsigned char *p = t->data;
    if (t->dtype == ST_F32) {
        if (bytes) memcpy(*out, p, bytes);
        return VC_OK;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        (*out)[i] = t->dtype == ST_F16 ? vc_f16_to_f32(h) : vc_bf16_to_f32(h);
    }
    return VC_OK;
}

/* Check and convert slot (layer, m) of the adapter; a slot with neither tensor stays rank 0. */
static int lora_fill(const lora_loader *L, lora_adapter *a, const char *cfg_path, int layer, int m) {
    size_t i = (size_t)layer * LORA_N_MODULES + (size_t)m;
    const st_tensor *A = L->ta[i], *B = L->tb[i];
    if (!A && !B) return VC_OK;
    if (!A || !B)
        return vc_errf(VC_EFORMAT, "%s: tensor '%.200s' has no matching lora_%s", L->path, (A ? A : B)->name,
                       A ? "B" : "A");
    int rank = 0, rc;
    double alpha = 0;
    if ((rc = lora_check_shapes(L, m, A, B))) return rc;
    if ((rc = lora_expect(L, &a->cfg, cfg_path, layer, m, A, &rank, &alpha))) return rc;
    lora_weight *w = &a->w[i];
    if ((rc = lora_to_f32(A, L->path, &w->a)) || (rc = lora_to_f32(B, L->path, &w->b))) return rc;
    w->rank = rank;
    w->scale = (float)(a->cfg.use_rslora ? alpha / sqrt((double)rank) : alpha / rank);
    uint64_t n = ((uint64_t)A->shape[0] * (uint64_t)A->shape[1] + (uint64_t)B->shape[0] * (uint64_t)B->shape[1]) * 4;
    if (__builtin_add_overflow(a->bytes, n, &a->bytes))
        return vc_errf(VC_EFORMAT, "%s: adapter size overflows", L->path);
    if (rank > a->max_rank) a->max_rank = rank;
    return VC_OK;
}

static int lora_fill_all(lora_loader *L, const lora_file *f, lora_adapter *a, const char *cfg_path) {
    int rc;
    for (int i = 0; i < f->n; i++)
        if ((rc = lora_place(L, &f->t[i]))) return rc;
    for (int l = 0; l < a->n_layers; l++)
        for (int m = 0; m < LORA_N_MODULES; m++)
            if ((rc = lora_fill(L, a, cfg_path, l, m))) return rc;
    if (!a->max_rank) return vc_errf(VC_EFORMAT, "%s: no lora_A/lora_B weights", L->path);
    return VC_OK;
}

/* ---- the folder ---- */

static int lora_read_config(const char *path, lora_config *c) {
    if (!vc_file_exists(path))
        return vc_errf(VC_EIO, "%s: not found (a PEFT LoRA adapter folder holds adapter_config.json and "
                               "adapter_model.safetensors)", path);
    char *text;
    size_t len;
    int rc = vc_read_file(path, LORA_MAX_CONFIG, &text, &len);
    if (rc) return rc;
    rc = lora_config_parse(text, len, path, c);
    free(text);
    return rc;
}

static int lora_open_weights(const char *dir, const char *path, lora_file *f) {
    if (vc_file_exists(path)) {
        int rc = vc_map_open(path, &f->map);
        return rc ? rc : st_parse(f->map.data, f->map.size, path, &f->t, &f->n);
    }
    char *bin = vc_path_join(dir, "adapter_model.bin");
    int has_bin = bin && vc_file_exists(bin);
    free(bin);
    if (has_bin)
        return vc_errf(VC_EUNSUP, "%s: not found, only adapter_model.bin: .bin (pickle) adapters are not "
                                  "supported, convert it to safetensors", path);
    return vc_errf(VC_EIO, "%s: not found", path);
}

static int lora_check_args(const char *dir, const lora_shape *s, int max_rank) {
    if (!dir || !s) return vc_errf(VC_EINVAL, "lora_adapter_load: bad arguments");
    if (s->n_layers <= 0 || s->hidden <= 0 || s->q_dim <= 0 || s->kv_dim <= 0 || s->intermediate <= 0)
        return vc_errf(VC_EINVAL, "lora_adapter_load: bad model shape");
    if (max_rank <= 0) return vc_errf(VC_EINVAL, "--max-lora-rank must be positive (got %d)", max_rank);
    return VC_OK;
}

static int lora_load_into(const char *dir, const char *cpath, const char *spath, lora_adapter *a,
                          lora_loader *L, lora_file *f) {
    int rc;
    if ((rc = lora_read_config(cpath, &a->cfg))) return rc;
    if ((rc = lora_open_weights(dir, spath, f))) return rc;
    a->w = calloc((size_t)a->n_layers * LORA_N_MODULES, sizeof *a->w);
    if (!a->w) return vc_errf(VC_ENOMEM, "%s: out of memory", spath);
    if ((rc = lora_loader_init(L, &a->cfg, cpath))) return rc;
    return lora_fill_all(L, f, a, cpath);
}

int lora_adapter_load(const char *dir, const lora_shape *shape, int max_rank, lora_adapter **out) {
    if (out) *out = NULL;
    int rc = out ? lora_check_args(dir, shape, max_rank) : vc_errf(VC_EINVAL, "lora_adapter_load: bad arguments");
    if (rc) return rc;
    lora_adapter *a = calloc(1, sizeof *a);
    char *cpath = vc_path_join(dir, "adapter_config.json"), *spath = vc_path_join(dir, "adapter_model.safetensors");
    lora_loader L = {.path = spath, .shape = shape, .max_rank = max_rank};
    lora_file f = {0};
    if (!a || !cpath || !spath) rc = vc_errf(VC_ENOMEM, "%s: out of memory", dir);
    else {
        a->n_layers = shape->n_layers;
        rc = lora_load_into(dir, cpath, spath, a, &L, &f);
    }
    if (a) lora_loader_free(&L, &a->cfg);
    lora_file_free(&f);
    free(cpath);
    free(spath);
    if (rc) lora_adapter_free(a);
    else *out = a;
    return rc;
}

void lora_adapter_free(lora_adapter *a) {
    if (!a) return;
    for (size_t i = 0; a->w && i < (size_t)a->n_layers * LORA_N_MODULES; i++) {
        free(a->w[i].a);
        free(a->w[i].b);
    }
    free(a->w);
    lora_config_free(&a->cfg);
    free(a);
}
