/* test_config_moe: the mixture-of-experts families of issue 15 (Mixtral, Qwen2-MoE, Qwen3-MoE): their
 * published config.json (bench/configs, values as on the Hub), which layers are sparse
 * (decoder_sparse_step, mlp_only_layers), the refusals of config.json (each naming the file and the
 * field), and the loader's refusals of checkpoints with a missing or misshapen expert tensor (tiny
 * safetensors written here, loaded on the CPU backend). Run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/err.h"
#include "base/file.h"
#include "model/config.h"
#include "model/model.h"
#include "test.h"
#include "test_config_util.h"

static int n_moe(const model_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += cfg_layer_moe(c, l);
    return n;
}

static void test_published(void) {
    model_config c;
    if (!load_bench_config("Mixtral-8x7B-v0.1", &c)) {
        CHECK(c.n_experts == 8 && c.n_experts_per_tok == 2 && c.moe_intermediate_size == 14336 && c.norm_topk_prob);
        CHECK(c.moe_names == CFG_MOE_NAMES_MIXTRAL && n_moe(&c) == 32 && c.shared_expert_intermediate_size == 0);
        CHECK(c.sliding_window == 0 && !c.qkv_bias && !c.qk_norm && c.rope_theta == 1e6);
    }
    if (!load_bench_config("Qwen1.5-MoE-A2.7B", &c)) {
        CHECK(c.n_experts == 60 && c.n_experts_per_tok == 4 && c.moe_intermediate_size == 1408 && !c.norm_topk_prob);
        CHECK(c.shared_expert_intermediate_size == 5632 && c.qkv_bias && !c.o_bias && n_moe(&c) == 24);
        CHECK(c.sliding_window == 0 && c.moe_names == CFG_MOE_NAMES_QWEN);
    }
    if (!load_bench_config("Qwen3-30B-A3B", &c)) {
        CHECK(c.n_experts == 128 && c.n_experts_per_tok == 8 && c.moe_intermediate_size == 768 && c.norm_topk_prob);
        CHECK(c.qk_norm && !c.qkv_bias && c.head_dim == 128 && n_moe(&c) == 48);
        CHECK(c.shared_expert_intermediate_size == 0 && c.sliding_window == 0);
    }
}

#define Q3 "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96," \
           "\"num_hidden_layers\":6,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"vocab_size\":512," \
           "\"moe_intermediate_size\":32"
#define MIX "{\"architectures\":[\"MixtralForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96," \
            "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":512"

/* Qwen2MoeDecoderLayer's rule: MoE iff not in mlp_only_layers and (layer + 1) % decoder_sparse_step == 0. */
static void test_layers(void) {
    model_config c;
    int rc = P(Q3 ",\"decoder_sparse_step\":2,\"mlp_only_layers\":[3, 40]}", &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(!cfg_layer_moe(&c, 0) && cfg_layer_moe(&c, 1) && !cfg_layer_moe(&c, 2) && !cfg_layer_moe(&c, 3));
    CHECK(!cfg_layer_moe(&c, 4) && cfg_layer_moe(&c, 5) && n_moe(&c) == 2);
    /* transformers' defaults where the fields are absent: 128 experts, top 8, no renormalisation */
    CHECK(c.n_experts == 128 && c.n_experts_per_tok == 8 && !c.norm_topk_prob && n_moe(&c) == 2);
    rc = P(MIX ",\"sliding_window\":4096,\"num_local_experts\":4}", &c);
    CHECK_MSG(rc == 0 && c.n_experts == 4 && c.n_experts_per_tok == 2 && c.sliding_window == 4096, "%s", vc_errmsg());
    rc = P("{\"model_type\":\"qwen2_moe\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
           "\"num_attention_heads\":4,\"vocab_size\":512,\"qkv_bias\":false,\"use_sliding_window\":true,"
           "\"sliding_window\":64}", &c);
    CHECK_MSG(rc == 0 && !c.qkv_bias && c.sliding_window == 64 && c.shared_expert_intermediate_size == 5632 &&
                  c.n_experts == 60 && c.n_experts_per_tok == 4,
              "%s", vc_errmsg());
}

static void test_refusals(void) {
    model_config c;
    EXPECT_ERR(P(Q3 ",\"num_experts\":0}", &c), "config.json", "num_experts is 0");
    EXPECT_ERR(P(MIX ",\"num_local_experts\":0}", &c), "config.json", "num_local_experts is 0");
    EXPECT_ERR(P(Q3 ",\"num_experts\":4,\"num_experts_per_tok\":5}", &c), "config.json",
               "num_experts_per_tok (5) is greater than num_experts (4)");
    EXPECT_ERR(P(MIX ",\"num_experts_per_tok\":0}", &c), "config.json", "num_experts_per_tok");
    EXPECT_ERR(P(Q3 ",\"num_experts\":100000}", &c), "config.json", "num_experts");
    EXPECT_ERR(P(Q3 ",\"moe_intermediate_size\":0}", &c), "config.json", "moe_intermediate_size");
    EXPECT_ERR(P(Q3 ",\"decoder_sparse_step\":0}", &c), "config.json", "decoder_sparse_step");
    EXPECT_ERR(P(Q3 ",\"mlp_only_layers\":[1,-2]}", &c), "config.json", "mlp_only_layers[1]");
    EXPECT_ERR(P(Q3 ",\"mlp_only_layers\":3}", &c), "config.json", "mlp_only_layers");
    EXPECT_ERR(P(Q3 ",\"norm_topk_prob\":1}", &c), "config.json", "norm_topk_prob");
    EXPECT_ERR(P(Q3 ",\"hidden_act\":\"gelu\"}", &c), "config.json", "hidden_act");
    EXPECT_ERR(P("{\"architectures\":[\"Qwen2MoeForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":512,"
                 "\"shared_expert_intermediate_size\":-1}", &c),
               "config.json", "shared_expert_intermediate_size");
}

/* ---- the loader: a tiny Qwen2-MoE checkpoint (f32, zeros) with one tensor dropped or misshapen ---- */

typedef struct {
    char name[96];
    int nd;
    long long d[3];
} tdesc;

enum { D = 8, E = 3, I = 4, FS = 6, V = 16, F = 12 };

static int tiny_tensors(tdesc *t, int fused) {
    int n = 0;
#define T(nd_, a, b, c, ...) (t[n].nd = nd_, t[n].d[0] = a, t[n].d[1] = b, t[n].d[2] = c, snprintf(t[n].name, 96, __VA_ARGS__), n++)
    T(2, V, D, 0, "model.embed_tokens.weight");
    T(1, D, 0, 0, "model.norm.weight");
    T(2, V, D, 0, "lm_head.weight");
    for (int l = 0; l < 2; l++) {
        T(1, D, 0, 0, "model.layers.%d.input_layernorm.weight", l);
        T(1, D, 0, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        const char *p[4] = {"q", "k", "v", "o"};
        for (int j = 0; j < 4; j++) T(2, D, D, 0, "model.layers.%d.self_attn.%s_proj.weight", l, p[j]);
        for (int j = 0; j < 3; j++) T(1, D, 0, 0, "model.layers.%d.self_attn.%s_proj.bias", l, p[j]);
        if (l == 0) { /* mlp_only_layers [0]: dense */
            T(2, F, D, 0, "model.layers.0.mlp.gate_proj.weight");
            T(2, F, D, 0, "model.layers.0.mlp.up_proj.weight");
            T(2, D, F, 0, "model.layers.0.mlp.down_proj.weight");
            continue;
        }
        T(2, E, D, 0, "model.layers.1.mlp.gate.weight");
        if (fused) {
            T(3, E, 2 * I, D, "model.layers.1.mlp.experts.gate_up_proj");
            T(3, E, D, I, "model.layers.1.mlp.experts.down_proj");
        }
        for (int e = 0; e < E && !fused; e++) {
            T(2, I, D, 0, "model.layers.1.mlp.experts.%d.gate_proj.weight", e);
            T(2, I, D, 0, "model.layers.1.mlp.experts.%d.up_proj.weight", e);
            T(2, D, I, 0, "model.layers.1.mlp.experts.%d.down_proj.weight", e);
        }
        T(2, FS, D, 0, "model.layers.1.mlp.shared_expert.gate_proj.weight");
        T(2, FS, D, 0, "model.layers.1.mlp.shared_expert.up_proj.weight");
        T(2, D, FS, 0, "model.layers.1.mlp.shared_expert.down_proj.weight");
        T(2, 1, D, 0, "model.layers.1.mlp.shared_expert_gate.weight");
    }
#undef T
    return n;
}

/* Write DIR/config.json and DIR/model.safetensors: every tensor but `skip`, the one named `bad` with its
 * first dimension one larger. */
static void write_model(const char *dir, int fused, const char *skip, const char *bad) {
    tdesc t[64];
    int n = tiny_tensors(t, fused);
    char path[256], hdr[16384] = "{";
    long long off = 0;
    for (int i = 0; i < n; i++) {
        if (skip && !strcmp(t[i].name, skip)) continue;
        long long cnt = 1, d0 = t[i].d[0] + (bad && !strcmp(t[i].name, bad));
        char shape[64];
        int k = snprintf(shape, sizeof shape, "[%lld", d0);
        for (int j = 1; j < t[i].nd; j++) k += snprintf(shape + k, sizeof shape - (size_t)k, ",%lld", t[i].d[j]);
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        cnt = d0 * (t[i].nd > 1 ? t[i].d[1] : 1) * (t[i].nd > 2 ? t[i].d[2] : 1);
        size_t l = strlen(hdr);
        snprintf(hdr + l, sizeof hdr - l, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":%s,\"data_offsets\":[%lld,%lld]}",
                 l > 1 ? "," : "", t[i].name, shape, off, off + 4 * cnt);
        off += 4 * cnt;
    }
    strcat(hdr, "}");
    while (strlen(hdr) % 8) strcat(hdr, " ");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    unsigned long long hl = strlen(hdr);
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, hl, f);
    for (long long i = 0; i < off; i++) fputc(0, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"architectures\":[\"Qwen2MoeForCausalLM\"],\"hidden_size\":%d,\"intermediate_size\":%d,"
               "\"num_hidden_layers\":2,\"num_attention_heads\":2,\"vocab_size\":%d,\"num_experts\":%d,"
               "\"num_experts_per_tok\":2,\"moe_intermediate_size\":%d,\"shared_expert_intermediate_size\":%d,"
               "\"mlp_only_layers\":[0]}",
            D, F, V, E, I, FS);
    fclose(f);
}

/* pack: without the backend's wrap_host (as on Vulkan) per-expert tensors are packed into shared buffers */
static int try_load_p(const char *dir, int fused, const char *skip, const char *bad, int pack) {
    write_model(dir, fused, skip, bad);
    be_backend *be = NULL;
    if (be_open("cpu", &be)) return -1;
    if (pack) be->buffer_wrap_host = NULL;
    mdl_model *m = NULL;
    int rc = mdl_load(dir, "float32", be, &m);
    if (!rc) {
        CHECK(m->layers[1].exp_gate && m->layers[1].exp_down[2].rows == D && m->layers[1].exp_up[1].rows == I);
        CHECK(m->layers[1].shared_gate.cols == D && m->layers[0].exp_gate == NULL && m->layers[0].w_down.cols == F);
    }
    if (!rc && pack) CHECK(m->layers[1].exp_gate[0].buf == m->layers[1].exp_gate[2].buf);
    mdl_free(m);
    be_free(be);
    return rc;
}

static int try_load(const char *dir, int fused, const char *skip, const char *bad) {
    return try_load_p(dir, fused, skip, bad, 0);
}

static void test_loader(void) {
    char dir[] = "/tmp/vllmc_moe_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK_MSG(0, "mkdtemp failed");
        return;
    }
    CHECK_MSG(try_load(dir, 0, NULL, NULL) == 0, "per-expert: %s", vc_errmsg());
    CHECK_MSG(try_load(dir, 1, NULL, NULL) == 0, "fused: %s", vc_errmsg());
    CHECK_MSG(try_load_p(dir, 0, NULL, NULL, 1) == 0, "packed: %s", vc_errmsg());
    EXPECT_ERR(try_load_p(dir, 0, NULL, "model.layers.1.mlp.experts.2.gate_proj.weight", 1), "model.safetensors",
               "experts.2.gate_proj.weight' has shape [5, 8], expected [4, 8]");
    EXPECT_ERR(try_load(dir, 0, "model.layers.1.mlp.experts.2.up_proj.weight", NULL), dir,
               "missing tensor 'model.layers.1.mlp.experts.2.up_proj.weight'");
    EXPECT_ERR(try_load(dir, 0, "model.layers.1.mlp.experts.0.gate_proj.weight", NULL), dir,
               "missing tensor 'model.layers.1.mlp.experts.0.gate_proj.weight'");
    EXPECT_ERR(try_load(dir, 0, "model.layers.1.mlp.shared_expert_gate.weight", NULL), dir, "shared_expert_gate");
    EXPECT_ERR(try_load(dir, 0, "model.layers.1.mlp.gate.weight", NULL), dir, "'model.layers.1.mlp.gate.weight'");
    EXPECT_ERR(try_load(dir, 0, NULL, "model.layers.1.mlp.experts.1.down_proj.weight"), "model.safetensors",
               "'model.layers.1.mlp.experts.1.down_proj.weight' has shape [9, 4], expected [8, 4]");
    EXPECT_ERR(try_load(dir, 1, NULL, "model.layers.1.mlp.experts.gate_up_proj"), "model.safetensors",
               "has shape [4, 8, 8], expected [3, 8, 8]");
    char p[300];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(void) {
    test_published();
    test_layers();
    test_refusals();
    test_loader();
    TEST_END();
}
