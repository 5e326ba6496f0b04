/* test_lora_adapter: PEFT LoRA adapter folders written into a temporary directory (adapter_config.json
 * + a safetensors file made here, F32/F16/BF16) and loaded for a tiny model shape. Valid adapters are
 * read back value by value; each refusal checks its code and that the message names the file and the
 * field or tensor. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/half.h"
#include "lora/adapter.h"
#include "test.h"

static void expect_err_at(int line, int rc, int code, const char *a, const char *b) {
    const char *m = vc_errmsg();
    CHECK_MSG(rc == code, "line %d: rc %d, want %d (%s)", line, rc, code, m);
    CHECK_MSG(!a || strstr(m, a), "line %d: message '%s' lacks '%s'", line, m, a);
    CHECK_MSG(!b || strstr(m, b), "line %d: message '%s' lacks '%s'", line, m, b);
}
#define EXPECT_ERR(rc, code, a, b) expect_err_at(__LINE__, rc, code, a, b)

/* The model: 2 layers, hidden 16, 4 heads of 4 (q_dim 16), 2 kv heads (kv_dim 8), intermediate 24. */
static const lora_shape SHAPE = {.n_layers = 2, .hidden = 16, .q_dim = 16, .kv_dim = 8, .intermediate = 24};
static const char *const MOD[LORA_N_MODULES] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                "mlp.down_proj"};
static const int IN[LORA_N_MODULES] = {16, 16, 16, 16, 16, 16, 24};
static const int OUT[LORA_N_MODULES] = {16, 8, 8, 16, 24, 24, 16};

/* Element i of a tensor made with `seed`: multiples of 1/8 in [-2, 2], exact in f16 and bf16. */
static float val(int seed, int i) { return (float)(((i * 7 + seed * 13) % 33) - 16) * 0.125f; }

/* ---- a tiny safetensors writer ---- */

#define MAX_T 64
typedef struct {
    char name[192];
    const char *dtype; /* "F32", "F16", "BF16", or another name written as 4-byte elements */
    int ndim;
    int dims[3];
    int seed;
} tdesc;

typedef struct {
    tdesc t[MAX_T];
    int n;
} tset;

static void add_t(tset *s, const char *name, const char *dtype, int rows, int cols, int seed) {
    if (s->n >= MAX_T) return;
    tdesc *t = &s->t[s->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype;
    t->ndim = 2;
    t->dims[0] = rows;
    t->dims[1] = cols;
    t->seed = seed;
}

/* lora_A [rank, in] and lora_B [out, rank] of module m in layer l; prefix "" or "base_model.model.". */
static void add_pair(tset *s, const char *prefix, int l, int m, int rank, const char *dtype) {
    char name[192];
    snprintf(name, sizeof name, "%smodel.layers.%d.%s.lora_A.weight", prefix, l, MOD[m]);
    add_t(s, name, dtype, rank, IN[m], l * 14 + m * 2);
    snprintf(name, sizeof name, "%smodel.layers.%d.%s.lora_B.weight", prefix, l, MOD[m]);
    add_t(s, name, dtype, OUT[m], rank, l * 14 + m * 2 + 1);
}

static size_t t_elems(const tdesc *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->dims[d];
    return n;
}

static size_t t_esize(const tdesc *t) { return !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16") ? 2 : 4; }

static void put_elem(unsigned char *p, const tdesc *t, size_t i) {
    float f = val(t->seed, (int)i);
    if (!strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16")) {
        uint16_t h = !strcmp(t->dtype, "F16") ? vc_f32_to_f16(f) : vc_f32_to_bf16(f);
        memcpy(p, &h, 2);
    } else {
        memcpy(p, &f, 4);
    }
}

static void write_st(const char *path, const tset *s) {
    char *hdr = malloc(65536);
    size_t off = 0, h = 0;
    h += (size_t)snprintf(hdr + h, 65536 - h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < s->n; i++) {
        const tdesc *t = &s->t[i];
        size_t nb = t_elems(t) * t_esize(t);
        h += (size_t)snprintf(hdr + h, 65536 - h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        for (int d = 0; d < t->ndim; d++) h += (size_t)snprintf(hdr + h, 65536 - h, "%s%d", d ? "," : "", t->dims[d]);
        h += (size_t)snprintf(hdr + h, 65536 - h, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        off += nb;
    }
    h += (size_t)snprintf(hdr + h, 65536 - h, "}");
    unsigned char *data = calloc(1, off + 1);
    size_t at = 0;
    for (int i = 0; i < s->n; i++) {
        const tdesc *t = &s->t[i];
        for (size_t k = 0; k < t_elems(t); k++, at += t_esize(t)) put_elem(data + at, t, k);
    }
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (f) {
        unsigned char len[8];
        for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)h >> (8 * i));
        CHECK(fwrite(len, 1, 8, f) == 8 && fwrite(hdr, 1, h, f) == h && fwrite(data, 1, off, f) == off);
        fclose(f);
    }
    free(hdr);
    free(data);
}

/* ---- adapter folders ---- */

static char tmp_root[64];
static int n_dirs;

static void put_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* A fresh folder with adapter_config.json = config (unless NULL) and adapter_model.safetensors from s
 * (unless NULL). Returns a static path (a few in rotation). */
static const char *mk_adapter(const char *config, const tset *s) {
    static char dirs[4][128];
    char *d = dirs[n_dirs & 3], p[256];
    snprintf(d, 128, "%s/a%d", tmp_root, n_dirs++);
    CHECK(mkdir(d, 0700) == 0);
    if (config) {
        snprintf(p, sizeof p, "%s/adapter_config.json", d);
        put_text(p, config);
    }
    if (s) {
        snprintf(p, sizeof p, "%s/adapter_model.safetensors", d);
        write_st(p, s);
    }
    return d;
}

static void rm_tree(const char *path) {
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            rm_tree(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

#define ALL7 "[\"q_proj\",\"k_proj\",\"v_proj\",\"o_proj\",\"gate_proj\",\"up_proj\",\"down_proj\"]"

/* Load, expecting success. */
static lora_adapter *load_ok(int line, const char *config, const tset *s) {
    lora_adapter *a = NULL;
    int rc = lora_adapter_load(mk_adapter(config, s), &SHAPE, 16, &a);
    CHECK_MSG(rc == 0 && a, "line %d: load failed: %s", line, vc_errmsg());
    return a;
}
#define LOAD_OK(config, s) load_ok(__LINE__, config, s)

/* Load, expecting failure with `code` and a message holding x and y; *out must stay NULL. */
static void load_err_at(int line, const char *config, const tset *s, int max_rank, int code, const char *x,
                        const char *y) {
    lora_adapter *a = (lora_adapter *)&a;
    int rc = lora_adapter_load(mk_adapter(config, s), &SHAPE, max_rank, &a);
    CHECK_MSG(a == NULL, "line %d: *out not NULL after failure", line);
    if (a) lora_adapter_free(a);
    expect_err_at(line, rc, code, x, y);
}
#define LOAD_ERR(config, s, code, x, y) load_err_at(__LINE__, config, s, 16, code, x, y)

/* Slot (l, m) holds rank `rank`, scale `scale`, and the values add_pair wrote. */
static void check_slot(int line, const lora_adapter *a, int l, int m, int rank, float scale) {
    const lora_weight *w = &a->w[l * LORA_N_MODULES + m];
    CHECK_MSG(w->rank == rank, "line %d: layer %d %s: rank %d, want %d", line, l, lora_module_name(m), w->rank, rank);
    CHECK_MSG(w->scale == scale, "line %d: layer %d %s: scale %g, want %g", line, l, lora_module_name(m),
              (double)w->scale, (double)scale);
    if (w->rank != rank || !rank) {
        CHECK_MSG(rank || (!w->a && !w->b), "line %d: an empty slot has weights", line);
        return;
    }
    int bad = 0;
    for (int i = 0; i < rank * IN[m]; i++) bad += w->a[i] != val(l * 14 + m * 2, i);
    for (int i = 0; i < OUT[m] * rank; i++) bad += w->b[i] != val(l * 14 + m * 2 + 1, i);
    CHECK_MSG(!bad, "line %d: layer %d %s: %d values differ", line, l, lora_module_name(m), bad);
}
#define CHECK_SLOT(a, l, m, rank, scale) check_slot(__LINE__, a, l, m, rank, scale)

/* ---- valid adapters ---- */

static void test_all_modules(void) {
    static const char *const dt[3] = {"F32", "F16", "BF16"};
    tset s = {0};
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LORA_N_MODULES; m++) add_pair(&s, "base_model.model.", l, m, 4, dt[(l + m) % 3]);
    lora_adapter *a = LOAD_OK("{\"peft_type\":\"LORA\",\"task_type\":\"CAUSAL_LM\",\"r\":4,\"lora_alpha\":8,"
                              "\"lora_dropout\":0.05,\"bias\":\"none\",\"fan_in_fan_out\":false,\"use_rslora\":false,"
                              "\"use_dora\":false,\"modules_to_save\":null,\"inference_mode\":true,"
                              "\"init_lora_weights\":true,\"layers_to_transform\":null,\"layers_pattern\":null,"
                              "\"rank_pattern\":{},\"alpha_pattern\":{},\"revision\":null,"
                              "\"base_model_name_or_path\":\"meta-llama/Llama-3.2-1B\",\"target_modules\":" ALL7 "}",
                              &s);
    if (!a) return;
    CHECK(a->n_layers == 2 && a->max_rank == 4);
    CHECK(a->cfg.r == 4 && a->cfg.lora_alpha == 8 && !a->cfg.use_rslora && !a->cfg.target_regex);
    CHECK(a->cfg.target_mask == 0x7f);
    CHECK(a->cfg.base_model && !strcmp(a->cfg.base_model, "meta-llama/Llama-3.2-1B"));
    uint64_t bytes = 0;
    for (int l = 0; l < 2; l++)
        for (int m = 0; m < LORA_N_MODULES; m++) {
            CHECK_SLOT(a, l, m, 4, 2.0f);
            bytes += (uint64_t)4 * 4 * (IN[m] + OUT[m]);
        }
    CHECK(a->bytes == bytes);
    lora_adapter_free(a);
}

static void test_rslora_and_patterns(void) {
    tset s = {0};
    for (int l = 0; l < 2; l++) {
        add_pair(&s, "base_model.model.", l, LORA_Q, l == 0 ? 3 : 2, "F32");
        add_pair(&s, "base_model.model.", l, LORA_V, 4, "BF16");
        add_pair(&s, "base_model.model.", l, LORA_DOWN, l == 1 ? 8 : 4, "F16");
    }
    /* first matching key wins: layer 0's q_proj takes 3, layer 1's the plain q_proj key's 2 */
    lora_adapter *a = LOAD_OK("{\"r\":4,\"lora_alpha\":16,\"target_modules\":[\"q_proj\",\"v_proj\",\"down_proj\"],"
                              "\"rank_pattern\":{\"layers.0.self_attn.q_proj\":3,\"q_proj\":2,"
                              "\"model.layers.1.mlp.down_proj\":8},"
                              "\"alpha_pattern\":{\"proj\":100,\"v_proj\":32,\"mlp\\\\..*\":2.5}}",
                              &s);
    if (a) {
        CHECK(a->max_rank == 8 && a->cfg.n_rank_pat == 3 && a->cfg.n_alpha_pat == 3);
        CHECK(a->cfg.rank_val[1] == 2 && !strcmp(a->cfg.rank_key[1], "q_proj") && a->cfg.alpha_val[2] == 2.5);
        CHECK_SLOT(a, 0, LORA_Q, 3, 16.0f / 3);
        CHECK_SLOT(a, 1, LORA_Q, 2, 8.0f);
        CHECK_SLOT(a, 0, LORA_V, 4, 8.0f); /* alpha 32: "proj" needs a dot before it, so it matches nothing */
        CHECK_SLOT(a, 1, LORA_V, 4, 8.0f);
        CHECK_SLOT(a, 0, LORA_DOWN, 4, 0.625f); /* "mlp\..*" after "model.layers.0.": alpha 2.5 */
        CHECK_SLOT(a, 1, LORA_DOWN, 8, 0.3125f);
        CHECK_SLOT(a, 0, LORA_K, 0, 0.0f);
        lora_adapter_free(a);
    }
    tset r = {0};
    add_pair(&r, "", 0, LORA_Q, 4, "F32");
    add_pair(&r, "", 1, LORA_O, 16, "F32");
    a = LOAD_OK("{\"r\":4,\"lora_alpha\":8,\"use_rslora\":true,\"target_modules\":[\"q_proj\",\"o_proj\"],"
                "\"rank_pattern\":{\"o_proj\":16},\"alpha_pattern\":{\"o_proj\":64}}",
                &r);
    if (a) {
        CHECK(a->cfg.use_rslora);
        CHECK_SLOT(a, 0, LORA_Q, 4, 4.0f);  /* 8 / sqrt(4) */
        CHECK_SLOT(a, 1, LORA_O, 16, 16.0f); /* 64 / sqrt(16) */
        lora_adapter_free(a);
    }
}

static void test_qv_and_prefix(void) {
    tset s = {0};
    for (int l = 0; l < 2; l++) {
        add_pair(&s, "", l, LORA_Q, 8, "BF16");
        add_pair(&s, "", l, LORA_V, 8, "F16");
    }
    lora_adapter *a = LOAD_OK("{\"r\":8,\"lora_alpha\":16,\"target_modules\":[\"v_proj\",\"q_proj\"]}", &s);
    if (a) {
        CHECK(a->cfg.target_mask == ((1u << LORA_Q) | (1u << LORA_V)));
        for (int l = 0; l < 2; l++)
            for (int m = 0; m < LORA_N_MODULES; m++)
                CHECK_SLOT(a, l, m, m == LORA_Q || m == LORA_V ? 8 : 0, m == LORA_Q || m == LORA_V ? 2.0f : 0.0f);
        lora_adapter_free(a);
    }
    /* defaults: r 8, lora_alpha 8; a dotted list entry counts by its last component; layers_to_transform
     * and friends are not read (the tensors present decide) */
    a = LOAD_OK("{\"target_modules\":[\"self_attn.q_proj\",\"layers.1.self_attn.v_proj\"],"
                "\"layers_to_transform\":[0],\"layers_pattern\":\"layers\",\"exclude_modules\":[\"k_proj\"]}",
                &s);
    if (a) {
        CHECK(a->cfg.r == 8 && a->cfg.lora_alpha == 8);
        CHECK_SLOT(a, 1, LORA_V, 8, 1.0f);
        lora_adapter_free(a);
    }
}

static void test_regex_targets(void) {
    tset s = {0};
    add_pair(&s, "base_model.model.", 0, LORA_Q, 4, "F32");
    add_pair(&s, "base_model.model.", 1, LORA_V, 4, "F32");
    lora_adapter *a = LOAD_OK("{\"r\":4,\"lora_alpha\":4,\"target_modules\":\".*\\\\.(q_proj|v_proj)\"}", &s);
    if (a) {
        CHECK(a->cfg.target_regex && !strcmp(a->cfg.target_regex, ".*\\.(q_proj|v_proj)"));
        CHECK(a->cfg.target_mask == ((1u << LORA_Q) | (1u << LORA_V)));
        CHECK_SLOT(a, 0, LORA_Q, 4, 1.0f);
        CHECK_SLOT(a, 1, LORA_V, 4, 1.0f);
        lora_adapter_free(a);
    }
    a = LOAD_OK("{\"r\":4,\"target_modules\":\"all-linear\"}", &s);
    if (a) {
        CHECK(a->cfg.target_mask == 0x7f && !a->cfg.target_regex);
        lora_adapter_free(a);
    }
    /* fullmatch: "q_proj" alone matches no module name */
    LOAD_ERR("{\"r\":4,\"target_modules\":\"q_proj|v_proj\"}", &s, VC_EFORMAT, "model.layers.0.self_attn.q_proj",
             "does not match");
    /* a layer-restricted regex */
    tset t = {0};
    add_pair(&t, "", 0, LORA_Q, 4, "F32");
    add_pair(&t, "", 1, LORA_Q, 4, "F32");
    LOAD_ERR("{\"r\":4,\"target_modules\":\"model\\\\.layers\\\\.0\\\\..*_proj\"}", &t, VC_EFORMAT,
             "model.layers.1.self_attn.q_proj.lora_A.weight", "target_modules");
    /* the list form refuses modules it does not list */
    LOAD_ERR("{\"r\":4,\"target_modules\":[\"q_proj\"]}", &s, VC_EFORMAT, "model.layers.1.self_attn.v_proj",
             "does not list");
}

static void test_modules_to_save(void) {
    tset s = {0};
    add_pair(&s, "base_model.model.", 0, LORA_Q, 4, "F32");
    /* listed but no weights in the file: nothing to refuse */
    lora_adapter *a = LOAD_OK("{\"r\":4,\"target_modules\":[\"q_proj\"],\"modules_to_save\":[\"lm_head\"]}", &s);
    lora_adapter_free(a);
    add_t(&s, "base_model.model.lm_head.weight", "F32", 4, 16, 1);
    LOAD_ERR("{\"r\":4,\"target_modules\":[\"q_proj\"],\"modules_to_save\":[\"lm_head\"]}", &s, VC_EUNSUP,
             "adapter_model.safetensors", "'base_model.model.lm_head.weight'");
}

/* ---- refusals ---- */

static void test_files(void) {
    tset s = {0};
    add_pair(&s, "", 0, LORA_Q, 4, "F32");
    LOAD_ERR(NULL, &s, VC_EIO, "adapter_config.json", "not found");
    LOAD_ERR("{\"target_modules\":[\"q_proj\"]}", NULL, VC_EIO, "adapter_model.safetensors", "not found");
    const char *d = mk_adapter("{\"target_modules\":[\"q_proj\"]}", NULL);
    char p[256];
    snprintf(p, sizeof p, "%s/adapter_model.bin", d);
    put_text(p, "not really a pickle");
    lora_adapter *a = NULL;
    EXPECT_ERR(lora_adapter_load(d, &SHAPE, 16, &a), VC_EUNSUP, "adapter_model.safetensors", ".bin (pickle)");
    CHECK(a == NULL);
    tset empty = {0};
    LOAD_ERR("{\"target_modules\":[\"q_proj\"]}", &empty, VC_EFORMAT, "adapter_model.safetensors",
             "no lora_A/lora_B");
    EXPECT_ERR(lora_adapter_load(d, &SHAPE, 0, &a), VC_EINVAL, "--max-lora-rank", NULL);
    lora_shape bad = SHAPE;
    bad.hidden = 0;
    EXPECT_ERR(lora_adapter_load(d, &bad, 16, &a), VC_EINVAL, "shape", NULL);
}

static void test_config_refusals(void) {
    tset s = {0};
    add_pair(&s, "", 0, LORA_Q, 4, "F32");
    LOAD_ERR("{\"use_dora\":true,\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "adapter_config.json", "use_dora");
    LOAD_ERR("{\"bias\":\"all\",\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "adapter_config.json", "bias");
    LOAD_ERR("{\"bias\":\"lora_only\",\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "bias", "lora_only");
    LOAD_ERR("{\"lora_bias\":true,\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "adapter_config.json",
             "lora_bias");
    LOAD_ERR("{\"layer_replication\":[[0,2]],\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "adapter_config.json",
             "layer_replication");
    LOAD_ERR("{\"peft_type\":\"IA3\",\"target_modules\":[\"q_proj\"]}", &s, VC_EUNSUP, "peft_type", "IA3");
    LOAD_ERR("{\"target_modules\":[\"q_proj\",\"embed_tokens\"]}", &s, VC_EUNSUP, "adapter_config.json",
             "embed_tokens");
    LOAD_ERR("{\"target_modules\":[\"lm_head\",\"q_proj\"]}", &s, VC_EUNSUP, "target_modules", "lm_head");
    LOAD_ERR("{\"target_modules\":\".*(q_proj|lm_head)\"}", &s, VC_EUNSUP, "target_modules", "lm_head");
    LOAD_ERR("{\"target_modules\":[\"q_proj\",\"fc1\"]}", &s, VC_EUNSUP, "target_modules", "'fc1'");
    LOAD_ERR("{\"target_modules\":[]}", &s, VC_EFORMAT, "adapter_config.json", "target_modules is empty");
    LOAD_ERR("{\"r\":4}", &s, VC_EFORMAT, "adapter_config.json", "missing target_modules");
    LOAD_ERR("{\"target_modules\":\"(q_proj\"}", &s, VC_EFORMAT, "target_modules", "bad regex");
    /* catastrophic backtracking stops at the match limit */
    LOAD_ERR("{\"target_modules\":\"(\\\\w*\\\\.?\\\\w*)*q\"}", &s, VC_EUNSUP, "target_modules", "match limit");
    LOAD_ERR("{\"target_modules\":[\"q_proj\"],\"rank_pattern\":{\"q_proj[\":4}}", &s, VC_EFORMAT, "rank_pattern",
             "bad regex");
    LOAD_ERR("{\"target_modules\":[\"q_proj\"],\"alpha_pattern\":{\"(\":4}}", &s, VC_EFORMAT, "alpha_pattern",
             "bad regex");
    static const char *const bad_r[] = {"0", "-1", "2.5", "\"8\"", "1e9", "true"};
    for (int i = 0; i < 6; i++) {
        char cfg[128];
        snprintf(cfg, sizeof cfg, "{\"r\":%s,\"target_modules\":[\"q_proj\"]}", bad_r[i]);
        LOAD_ERR(cfg, &s, VC_EFORMAT, "adapter_config.json", "r must be a positive integer");
    }
    static const char *const bad_alpha[] = {"0", "-8", "\"16\"", "1e300", "[]"};
    for (int i = 0; i < 5; i++) {
        char cfg[128];
        snprintf(cfg, sizeof cfg, "{\"lora_alpha\":%s,\"target_modules\":[\"q_proj\"]}", bad_alpha[i]);
        LOAD_ERR(cfg, &s, VC_EFORMAT, "adapter_config.json", "lora_alpha must be a positive number");
    }
    LOAD_ERR("[\"q_proj\"]", &s, VC_EFORMAT, "adapter_config.json", "not an object");
    LOAD_ERR("{\"target_modules\":[\"q_proj\"]", &s, VC_EFORMAT, "adapter_config.json", "invalid JSON");
}

static void test_config_types(void) {
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"target_modules\":5}", "target_modules must be"},
        {"{\"target_modules\":[\"q_proj\",3]}", "target_modules entries"},
        {"{\"target_modules\":[\"q_proj\"],\"use_rslora\":\"yes\"}", "use_rslora"},
        {"{\"target_modules\":[\"q_proj\"],\"use_dora\":1}", "use_dora"},
        {"{\"target_modules\":[\"q_proj\"],\"fan_in_fan_out\":0}", "fan_in_fan_out"},
        {"{\"target_modules\":[\"q_proj\"],\"bias\":false}", "bias"},
        {"{\"target_modules\":[\"q_proj\"],\"peft_type\":1}", "peft_type"},
        {"{\"target_modules\":[\"q_proj\"],\"base_model_name_or_path\":[]}", "base_model_name_or_path"},
        {"{\"target_modules\":[\"q_proj\"],\"modules_to_save\":\"lm_head\"}", "modules_to_save"},
        {"{\"target_modules\":[\"q_proj\"],\"rank_pattern\":[]}", "rank_pattern must be an object"},
        {"{\"target_modules\":[\"q_proj\"],\"rank_pattern\":{\"q_proj\":\"4\"}}", "rank_pattern['q_proj']"},
        {"{\"target_modules\":[\"q_proj\"],\"rank_pattern\":{\"q_proj\":0}}", "rank_pattern['q_proj']"},
        {"{\"target_modules\":[\"q_proj\"],\"alpha_pattern\":{\"q_proj\":null}}", "alpha_pattern['q_proj']"},
        {"{\"target_modules\":[\"q_proj\"],\"alpha_pattern\":7}", "alpha_pattern must be an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lora_config c;
        int rc = lora_config_parse(cases[i].json, strlen(cases[i].json), "x/adapter_config.json", &c);
        expect_err_at((int)i, rc, VC_EFORMAT, "x/adapter_config.json", cases[i].field);
        CHECK(c.target_regex == NULL && c.rank_key == NULL && c.n_rank_pat == 0);
        lora_config_free(&c);
    }
    /* at most LORA_MAX_PATTERNS keys */
    size_t cap = 64 + (LORA_MAX_PATTERNS + 1) * 16, n = 0;
    char *big = malloc(cap);
    n += (size_t)snprintf(big, cap, "{\"target_modules\":[\"q_proj\"],\"rank_pattern\":{");
    for (int i = 0; i <= LORA_MAX_PATTERNS; i++) n += (size_t)snprintf(big + n, cap - n, "%s\"k%d\":4", i ? "," : "", i);
    n += (size_t)snprintf(big + n, cap - n, "}}");
    lora_config c;
    EXPECT_ERR(lora_config_parse(big, n, "adapter_config.json", &c), VC_EFORMAT, "rank_pattern", "at most 4096");
    lora_config_free(&c);
    free(big);
    /* a good one, read back */
    const char *ok = "{\"r\":16,\"lora_alpha\":32.5,\"fan_in_fan_out\":true,\"target_modules\":[\"gate_proj\"],"
                     "\"rank_pattern\":{\"a\":1,\"b\":2},\"alpha_pattern\":{\"c\":0.5},\"unknown\":{\"x\":[1]}}";
    CHECK(lora_config_parse(ok, strlen(ok), "adapter_config.json", &c) == 0);
    CHECK(c.r == 16 && c.lora_alpha == 32.5 && c.fan_in_fan_out && c.target_mask == (1u << LORA_GATE));
    CHECK(c.n_rank_pat == 2 && !strcmp(c.rank_key[0], "a") && c.rank_val[1] == 2);
    CHECK(c.n_alpha_pat == 1 && !strcmp(c.alpha_key[0], "c") && c.alpha_val[0] == 0.5);
    CHECK(c.base_model == NULL);
    lora_config_free(&c);
    lora_config_free(&c); /* twice is harmless */
    CHECK(!strcmp(lora_module_name(LORA_Q), "q_proj") && !strcmp(lora_module_name(LORA_DOWN), "down_proj"));
    CHECK(!strcmp(lora_module_name(LORA_N_MODULES), "?"));
}

#define CFG4 "{\"r\":4,\"lora_alpha\":8,\"target_modules\":" ALL7 "}"

static void test_tensor_refusals(void) {
    tset s = {0};
    add_pair(&s, "base_model.model.", 0, LORA_Q, 4, "F32");
    load_err_at(__LINE__, CFG4, &s, 2, VC_EINVAL, "model.layers.0.self_attn.q_proj.lora_A.weight' has rank 4",
                "above --max-lora-rank 2");

    tset t = {0}; /* A without B, B without A */
    add_pair(&t, "", 0, LORA_Q, 4, "F32");
    t.n--;
    LOAD_ERR(CFG4, &t, VC_EFORMAT, "model.layers.0.self_attn.q_proj.lora_A.weight", "no matching lora_B");
    add_pair(&t, "", 1, LORA_K, 4, "F32");
    t.t[0] = t.t[2];
    t.n = 1;
    LOAD_ERR(CFG4, &t, VC_EFORMAT, "model.layers.1.self_attn.k_proj.lora_B.weight", "no matching lora_A");

    tset u = {0}; /* a layer the model lacks */
    add_pair(&u, "", 5, LORA_Q, 4, "F32");
    LOAD_ERR(CFG4, &u, VC_EINVAL, "model.layers.5.self_attn.q_proj", "layer 5 but the model has 2 layers");

    tset v = {0}; /* hidden size */
    add_pair(&v, "", 0, LORA_Q, 4, "F32");
    v.t[0].dims[1] = 32;
    LOAD_ERR(CFG4, &v, VC_EINVAL, "model.layers.0.self_attn.q_proj.lora_A.weight",
             "has 32 columns but the model's hidden size is 16");
    tset w = {0}; /* k_proj out = kv_dim */
    add_pair(&w, "", 1, LORA_K, 4, "F16");
    w.t[1].dims[0] = 16;
    LOAD_ERR(CFG4, &w, VC_EINVAL, "model.layers.1.self_attn.k_proj.lora_B.weight",
             "16 rows but the model's key/value size");
    tset x = {0}; /* down_proj in = intermediate */
    add_pair(&x, "", 0, LORA_DOWN, 4, "BF16");
    x.t[0].dims[1] = 16;
    LOAD_ERR(CFG4, &x, VC_EINVAL, "mlp.down_proj.lora_A.weight", "intermediate size is 24");

    tset y = {0}; /* A and B ranks differ */
    add_pair(&y, "", 0, LORA_O, 4, "F32");
    y.t[1].dims[1] = 2;
    LOAD_ERR(CFG4, &y, VC_EFORMAT, "self_attn.o_proj.lora_A.weight' has rank 4", "o_proj.lora_B.weight' has rank 2");

    tset z = {0}; /* rank vs r, vs rank_pattern */
    add_pair(&z, "", 0, LORA_UP, 2, "F32");
    LOAD_ERR(CFG4, &z, VC_EFORMAT, "mlp.up_proj.lora_A.weight' has rank 2", "adapter_config.json: r says 4");
    LOAD_ERR("{\"r\":2,\"target_modules\":[\"up_proj\"],\"rank_pattern\":{\"up_proj\":6}}", &z, VC_EFORMAT,
             "has rank 2", "rank_pattern['up_proj'] says 6");
}

static void test_tensor_names(void) {
    static const char *const bad[] = {
        "base_model.model.model.embed_tokens.lora_embedding_A",
        "base_model.model.lm_head.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias",
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight",
        "base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
        "base_model.model.model.layers.01.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.0.self_attn.fc1.lora_A.weight",
        "model.model.layers.0.self_attn.q_proj.lora_A.weight",
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        tset s = {0};
        add_pair(&s, "", 0, LORA_Q, 4, "F32");
        add_t(&s, bad[i], "F32", 4, 16, 0);
        load_err_at(i, CFG4, &s, 16, VC_EUNSUP, "adapter_model.safetensors", bad[i]);
    }
    tset d = {0}; /* the same weight with and without the prefix */
    add_pair(&d, "", 0, LORA_Q, 4, "F32");
    add_pair(&d, "base_model.model.", 0, LORA_Q, 4, "F32");
    LOAD_ERR(CFG4, &d, VC_EFORMAT, "are the same weight", "model.layers.0.self_attn.q_proj.lora_A.weight");
    tset e = {0}; /* dtype */
    add_pair(&e, "", 0, LORA_Q, 4, "F32");
    e.t[1].dtype = "I32";
    LOAD_ERR(CFG4, &e, VC_EUNSUP, "q_proj.lora_B.weight' has dtype I32", "F32, F16 or BF16");
    tset f = {0}; /* dimensions */
    add_pair(&f, "", 0, LORA_Q, 4, "F32");
    f.t[0].ndim = 3;
    f.t[0].dims[2] = 1;
    LOAD_ERR(CFG4, &f, VC_EFORMAT, "q_proj.lora_A.weight' has 3 dimensions", NULL);
}

int main(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/vllmc_lora_adapter_XXXXXX");
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_all_modules();
    test_rslora_and_patterns();
    test_qv_and_prefix();
    test_regex_targets();
    test_modules_to_save();
    test_files();
    test_config_refusals();
    test_config_types();
    test_tensor_refusals();
    test_tensor_names();
    rm_tree(tmp_root);
    TEST_END();
}
