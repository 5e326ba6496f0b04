/* test_config_gptoss: gpt-oss's config.json (bench/configs/gpt-oss-20b.json, as published, and the
 * transformers 5 spelling with rope_parameters and no layer_types), the refusals (other quantization
 * methods, mxfp4 on another family, bad layer_types, top-k above the experts), and random weights of a
 * tiny gpt-oss on the CPU backend: experts in MXFP4 views, YaRN inverse frequencies and attention factor
 * as transformers' _compute_yarn_parameters gives them (recomputed here in double). Also
 * bench/configs/gpt-oss-120b.json. Run from the
 * repository root. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "base/err.h"
#include "base/file.h"
#include "model/config.h"
#include "model/model.h"
#include "test.h"
#include "test_config_util.h"

static void t_published(const char *path, int layers, int experts) {
    char *text = NULL;
    size_t len = 0;
    model_config c;
    int rc = vc_read_file(path, 1 << 20, &text, &len);
    if (!rc) rc = cfg_parse(text, len, path, &c);
    free(text);
    CHECK_MSG(rc == 0, "%s: %s", path, vc_errmsg());
    if (rc) return;
    CHECK(strcmp(c.arch, "GptOssForCausalLM") == 0 && c.moe_names == CFG_MOE_NAMES_GPTOSS);
    CHECK(c.n_layers == layers && c.hidden_size == 2880 && c.head_dim == 64 && c.n_heads == 64 && c.n_kv_heads == 8);
    CHECK(c.n_experts == experts && c.n_experts_per_tok == 4 && c.moe_intermediate_size == 2880);
    CHECK(c.topk_then_softmax && c.attn_sinks && c.experts_mxfp4 && c.qkv_bias && c.o_bias && !c.tie_word_embeddings);
    CHECK(c.sliding_window == 128 && cfg_layer_window(&c, 0) == 128 && cfg_layer_window(&c, 1) == 0 &&
          cfg_layer_window(&c, layers - 2) == 128 && cfg_layer_window(&c, layers - 1) == 0);
    for (int l = 0; l < layers; l++) CHECK(cfg_layer_moe(&c, l));
    CHECK(c.rope_type == CFG_ROPE_YARN && c.rope_original_max_pos == 4096 && !c.rope_truncate);
    CHECK_NEAR(c.rope_factor, 32, 0);
    CHECK_NEAR(c.rope_theta, 150000, 0);
    CHECK_NEAR(c.rope_attn_factor, 0.1 * log(32.0) + 1.0, 1e-12);
    CHECK_NEAR(c.swiglu_limit, 7.0, 0);
    CHECK_NEAR(c.swiglu_alpha, 1.702, 1e-6);
    CHECK_NEAR(c.rms_norm_eps, 1e-5, 1e-12);
    CHECK(c.torch_dtype == BE_BF16); /* no torch_dtype in the published config: bf16, as its tensors */
}

#define TINY(extra)                                                                                            \
    "{\"architectures\":[\"GptOssForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":32,"                  \
    "\"num_hidden_layers\":3,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,"             \
    "\"vocab_size\":50,\"num_local_experts\":4,\"max_position_embeddings\":4096" extra "}"

static void t_transformers5(void) {
    model_config c;
    int rc = P(TINY(",\"rope_parameters\":{\"rope_type\":\"yarn\",\"rope_theta\":150000,\"factor\":32.0,"
                    "\"beta_fast\":16,\"original_max_position_embeddings\":128,\"attention_factor\":1.25}"),
               &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(c.n_experts_per_tok == 4 && c.sliding_window == 128 && c.qkv_bias && c.o_bias && !c.experts_mxfp4);
    CHECK(cfg_layer_window(&c, 0) == 128 && cfg_layer_window(&c, 1) == 0 && cfg_layer_window(&c, 2) == 128);
    CHECK(c.rope_type == CFG_ROPE_YARN && c.rope_original_max_pos == 128 && c.rope_truncate == 1);
    CHECK_NEAR(c.rope_theta, 150000, 0);
    CHECK_NEAR(c.rope_attn_factor, 1.25, 0);
    CHECK_NEAR(c.rope_beta_fast, 16, 0);
    rc = P(TINY(",\"experts_per_token\":2,\"layer_types\":[\"full_attention\",\"full_attention\","
                "\"sliding_attention\"],\"rope_scaling\":{\"rope_type\":\"yarn\",\"original_max_position_embeddings\":1024}"),
           &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(c.n_experts_per_tok == 2 && cfg_layer_window(&c, 0) == 0 && cfg_layer_window(&c, 2) == 128);
    CHECK_NEAR(c.rope_factor, 4.0, 0); /* max_position_embeddings / original_max_position_embeddings */
}

static void t_refusals(void) {
    model_config c;
    EXPECT_ERR(P(TINY(",\"quantization_config\":{\"quant_method\":\"awq\",\"bits\":4}"), &c),
               "config.json: quantization_config.quant_method 'awq' is not supported", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":32,"
                 "\"num_hidden_layers\":1,\"num_attention_heads\":4,\"vocab_size\":50,"
                 "\"quantization_config\":{\"quant_method\":\"mxfp4\"}}",
                 &c),
               "quant_method 'mxfp4' is not supported for LlamaForCausalLM", NULL);
    EXPECT_ERR(P(TINY(",\"quantization_config\":[1]"), &c), "quantization_config must be an object", NULL);
    EXPECT_ERR(P(TINY(",\"quantization_config\":{\"quant_method\":\"mxfp4\",\"modules_to_not_convert\":[3]}"), &c),
               "modules_to_not_convert must hold strings", NULL);
    EXPECT_ERR(P(TINY(",\"num_experts_per_tok\":5"), &c), "num_experts_per_tok (5) is greater than num_local_experts",
               NULL);
    EXPECT_ERR(P(TINY(",\"layer_types\":[\"full_attention\"]"), &c), "layer_types must be a list of num_hidden_layers",
               NULL);
    EXPECT_ERR(P(TINY(",\"swiglu_limit\":0"), &c), "swiglu_limit", NULL);
    EXPECT_ERR(P(TINY(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":-2}"), &c), "rope_scaling.factor", NULL);
}

/* transformers' YaRN frequency i of dim (truncate on unless said), recomputed independently. */
static double yarn_ref(double base, int dim, double factor, double orig, int truncate, int i) {
    double lo = dim * log(orig / (32 * 2 * M_PI)) / (2 * log(base));
    double hi = dim * log(orig / (1 * 2 * M_PI)) / (2 * log(base));
    if (truncate) lo = floor(lo), hi = ceil(hi);
    lo = fmax(lo, 0), hi = fmin(hi, dim - 1);
    double pf = pow(base, 2.0 * i / dim), ramp = fmin(fmax((i - lo) / (hi - lo), 0), 1);
    return (1 / pf) * (1 - ramp) + (1 / (factor * pf)) * ramp;
}

static void t_random(void) {
    model_config c;
    int rc = P(TINY(",\"quantization_config\":{\"quant_method\":\"mxfp4\"},\"rope_theta\":150000,"
                    "\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":32.0,\"original_max_position_embeddings\":4096,"
                    "\"truncate\":false}"),
               &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    be_backend *be = NULL;
    mdl_model *m = NULL;
    if (rc || be_open("cpu", &be) != 0) return;
    rc = mdl_random(&c, BE_BF16, 7, be, &m);
    CHECK_MSG(rc == 0, "mdl_random: %s", vc_errmsg());
    if (!rc) {
        const mdl_layer *L = &m->layers[1];
        CHECK(L->exp_gate[0].dtype == BE_MXFP4 && L->exp_gate[3].rows == 64 && L->exp_gate[3].cols == 64);
        CHECK(L->exp_down[2].dtype == BE_MXFP4 && L->exp_down[2].rows == 64 && L->exp_down[2].cols == 32);
        CHECK(L->sinks.cols == 4 && L->router_b.cols == 4 && L->exp_b_gate_up.rows == 4 && L->exp_b_gate_up.cols == 64);
        CHECK(L->exp_b_down.rows == 4 && L->exp_b_down.cols == 64 && L->bq.cols == 64 && L->bo.cols == 64);
        CHECK_NEAR(m->rope_mscale, 0.1 * log(32.0) + 1.0, 1e-6);
        float f[8];
        CHECK(be->buffer_read(be->ctx, m->inv_freq.buf, m->inv_freq.offset, f, sizeof f) == 0);
        for (int i = 0; i < 8; i++) {
            double r = yarn_ref(150000, 16, 32, 4096, 0, i);
            CHECK_MSG(fabs(f[i] - r) <= 1e-6 * r, "yarn inv_freq[%d] = %.9g, want %.9g", i, f[i], r);
        }
        /* a decode step reads k = 4 experts of 64 x 64 and 64 x 32 MXFP4 weights per layer */
        CHECK(m->decode_bytes_per_token > 3ull * 4 * (64 * 2 * 17 + 64 * 17));
    }
    mdl_free(m);
    be_free(be);
}

int main(void) {
    t_published("bench/configs/gpt-oss-20b.json", 24, 32);
    t_published("bench/configs/gpt-oss-120b.json", 36, 128);
    t_transformers5();
    t_refusals();
    t_random();
    TEST_END();
}
