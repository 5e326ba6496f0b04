/* stack: parse-then-open set-up of backend, model folder, tokenizer, model and engine (stack.h). */
#include "stack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/err.h"
#include "base/file.h"
#include "hub/hub.h"
#include "model/config.h"

void stk_params_default(stk_params *p) {
    memset(p, 0, sizeof *p);
    p->tokenizer = 1;
    p->engine = 1;
    eng_config_default(&p->ec);
}

int stk_parse_kv_cache_dtype(const char *flag, int *out) {
    if (!flag || !strcmp(flag, "auto")) *out = -1;
    else if (!strcmp(flag, "bfloat16")) *out = BE_BF16;
    else if (!strcmp(flag, "float16")) *out = BE_F16;
    else if (!strcmp(flag, "float32")) *out = BE_F32;
    else if (!strncmp(flag, "fp8", 3))
        return vc_errf(VC_EUNSUP, "--kv-cache-dtype %.40s is not supported: vllmc has no KV cache quantization "
                                  "(choose from auto, bfloat16, float16, float32)", flag);
    else
        return vc_errf(VC_EINVAL, "unknown --kv-cache-dtype '%.60s' (expected auto, bfloat16, float16, float32)", flag);
    return VC_OK;
}

/* The names be_open takes; checked here so that a typo fails before a download. */
static int check_device(const char *d) {
    if (!d || !strcmp(d, "auto") || !strcmp(d, "cpu")) return VC_OK;
    if (!strcmp(d, "gpu") || !strcmp(d, "vulkan")) return VC_OK; /* be_open says whether this build has one */
    return vc_errf(VC_EINVAL, "--device '%.60s' is not available in this build (available: auto, cpu%s)", d,
                   be_have_gpu() ? ", gpu" : "");
}

int stk_check(stk_params *p) {
    int dt, rc;
    if (!p->model || !*p->model) return vc_errf(VC_EINVAL, "no model given");
    if ((rc = cfg_parse_dtype_flag(p->dtype, &dt))) return rc;
    if ((rc = check_device(p->device))) return rc;
    if (p->kv_cache_dtype && (rc = stk_parse_kv_cache_dtype(p->kv_cache_dtype, &p->ec.kv_dtype))) return rc;
    double u = p->ec.gpu_memory_utilization;
    if (!(u >= 0 && u <= 1)) /* 0 stands for the default */
        return vc_errf(VC_EINVAL, "--gpu-memory-utilization must be in (0, 1], got %g", u);
    return VC_OK;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Random weights (vLLM's --load-format dummy) for a config.json file or a folder's config. */
static int open_dummy(const stk_params *p, stk_stack *s) {
    model_config mc;
    be_dtype dt;
    int rc;
    if (s->model_dir) {
        rc = cfg_load_dir(s->model_dir, &mc);
    } else {
        char *text;
        size_t len;
        if ((rc = vc_read_file(p->model, (size_t)16 << 20, &text, &len))) return rc;
        rc = cfg_parse(text, len, p->model, &mc);
        free(text);
    }
    if (!rc && p->num_layers > 0 && p->num_layers < mc.n_layers) mc.n_layers = p->num_layers;
    if (!rc) rc = cfg_resolve_dtype(p->dtype, mc.torch_dtype, &dt);
    if (!rc) rc = mdl_random(&mc, dt, 1234, s->be, &s->m);
    return rc;
}

/* What loading really did: bytes read and converted or copied, apart from bytes used in place
 * (mmapped, read from disk only when the first forward pass touches them). */
static void log_load(const stk_stack *s) {
    const mdl_model *m = s->m;
    const double gib = 1073741824.0;
    fprintf(stderr, "INFO vllmc: model weights: %.4f GiB %s in %.3f s; ", (double)m->weight_bytes / gib,
            be_dtype_name(m->wdtype), s->load_s);
    if (!m->st.n_files)
        fprintf(stderr, "random (--load-format dummy)\n");
    else
        fprintf(stderr, "%.4f GiB read and converted or copied (%.2f GiB/s), %.4f GiB used in place from the mmapped "
                        "checkpoint (read from disk on first use)\n",
                (double)m->bytes_loaded / gib, s->load_s > 0 ? (double)m->bytes_loaded / gib / s->load_s : 0,
                (double)m->bytes_in_place / gib);
}

static int log_device(const stk_params *p, stk_stack *s) {
    if (p->quiet) return VC_OK;
    be_info info;
    int rc = s->be->info(s->be->ctx, &info);
    if (!rc) fprintf(stderr, "INFO vllmc: device %s: %s\n", s->be->name, info.desc);
    return rc;
}

/* The grammar vocabulary: every id below the model's vocab_size as the bytes it adds to text
 * (tok_token_bytes; ids the tokenizer lacks, and special tokens, get none), in one block. */
int stk_grammar_vocab(stk_stack *s) {
    if (s->gvocab) return VC_OK;
    if (!s->tok) return vc_errf(VC_EINVAL, "structured output needs the model's tokenizer (no tokenizer.json)");
    int n = s->m->cfg.vocab_size;
    size_t total = 0;
    char **tmp = calloc((size_t)n, sizeof *tmp);
    s->gtok = calloc((size_t)n, sizeof *s->gtok);
    s->gtok_len = calloc((size_t)n, sizeof *s->gtok_len);
    int rc = !tmp || !s->gtok || !s->gtok_len ? vc_errf(VC_ENOMEM, "out of memory") : VC_OK;
    for (int i = 0; i < n && !rc; i++)
        if (!(rc = tok_token_bytes(s->tok, i, &tmp[i], &s->gtok_len[i]))) total += s->gtok_len[i];
    unsigned char *blob = rc ? NULL : malloc(total ? total : 1);
    if (!rc && !blob) rc = vc_errf(VC_ENOMEM, "out of memory");
    for (int i = 0, off = 0; i < n && !rc; off += (int)s->gtok_len[i], i++) {
        s->gtok[i] = blob + off;
        memcpy(blob + off, tmp[i], s->gtok_len[i]);
    }
    if (tmp)
        for (int i = 0; i < n; i++) free(tmp[i]);
    free(tmp);
    if (!rc) rc = gram_vocab_new((const unsigned char *const *)s->gtok, s->gtok_len, n, &s->gvocab);
    return rc; /* blob (n > 0) is gtok[0]: stk_free frees it */
}

/* Weights and engine on s->be. */
static int load_model(stk_params *p, stk_stack *s) {
    double t0 = now_s();
    int rc = p->load_dummy ? open_dummy(p, s) : mdl_load(s->model_dir, p->dtype, s->be, &s->m);
    if (rc) return rc;
    s->load_s = now_s() - t0;
    if (!p->quiet) log_load(s);
    if (p->engine && s->tok && (rc = stk_grammar_vocab(s))) return rc;
    eng_config ec = p->ec;
    if (!ec.grammar_vocab && s->gvocab) {
        ec.grammar_vocab = s->gvocab;
        ec.grammar_tok = (const unsigned char *const *)s->gtok;
        ec.grammar_tok_len = s->gtok_len;
    }
    if (p->engine && (rc = eng_create(s->m, &ec, &s->e))) return rc;
    return VC_OK;
}

int stk_open(stk_params *p, stk_stack **out) {
    *out = NULL;
    int rc = stk_check(p);
    if (rc) return rc;
    stk_stack *s = calloc(1, sizeof *s);
    if (!s) return vc_errf(VC_ENOMEM, "out of memory");
    /* the device first: a --device that cannot open fails before a download */
    if ((rc = be_open(p->device, &s->be))) goto err;
    if ((rc = log_device(p, s))) goto err;
    if (!(p->load_dummy && is_file(p->model))) {
        hub_opts ho = {p->revision, p->download_dir, -1};
        if ((rc = hub_resolve(p->model, &ho, &s->model_dir))) goto err;
    }
    if (p->tokenizer && p->tokenizer_dir) {
        if ((rc = tok_load_dir(p->tokenizer_dir, &s->tok))) goto err;
    } else if (p->tokenizer && s->model_dir) {
        char *tj = vc_path_join(s->model_dir, "tokenizer.json");
        if (!tj) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto err;
        }
        rc = vc_file_exists(tj) ? tok_load_dir(s->model_dir, &s->tok) : VC_OK;
        free(tj);
        if (rc) goto err;
    }
    if ((rc = load_model(p, s))) {
        /* --device auto: a GPU that cannot hold the model (or fails) leaves the CPU, as the
         * issue asks; the message names the device and the figures */
        int is_auto = !p->device || !strcmp(p->device, "auto");
        if (!is_auto || strcmp(s->be->name, "vulkan") || !strstr(vc_errmsg(), "vulkan: ")) goto err;
        fprintf(stderr, "WARNING vllmc: %s; --device auto falls back to the CPU\n", vc_errmsg());
        eng_free(s->e);
        mdl_free(s->m);
        be_free(s->be);
        s->e = NULL, s->m = NULL, s->be = NULL;
        if ((rc = be_open("cpu", &s->be)) || (rc = log_device(p, s)) || (rc = load_model(p, s))) goto err;
    }
    *out = s;
    return VC_OK;
err:
    stk_free(s);
    return rc;
}

void stk_free(stk_stack *s) {
    if (!s) return;
    eng_free(s->e);
    gram_vocab_free(s->gvocab);
    if (s->gtok) free(s->gtok[0]);
    free(s->gtok);
    free(s->gtok_len);
    mdl_free(s->m);
    tok_free(s->tok);
    be_free(s->be);
    free(s->model_dir);
    free(s);
}
