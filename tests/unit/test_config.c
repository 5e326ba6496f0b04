/* test_config: config.json / generation_config.json parsing. The four real
 * configs are copied verbatim (the test never reads ../shared at run time);
 * the rest are small variations that hit each rule and each error. Errors are
 * checked for their code and for naming the file and the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "model/config.h"
#include "test.h"

static void expect_err_at(int line, int rc, int code, const char *a, const char *b) {
    const char *m = vc_errmsg();
    CHECK_MSG(rc == code, "line %d: rc %d, want %d (%s)", line, rc, code, m);
    CHECK_MSG(!a || strstr(m, a), "line %d: message '%s' lacks '%s'", line, m, a);
    CHECK_MSG(!b || strstr(m, b), "line %d: message '%s' lacks '%s'", line, m, b);
}
#define EXPECT_ERR(rc, code, a, b) expect_err_at(__LINE__, rc, code, a, b)

static int P(const char *json, model_config *c) { return cfg_parse(json, strlen(json), "config.json", c); }

static int G(const char *json, model_config *c) {
    return cfg_parse_generation(json, strlen(json), "generation_config.json", c);
}

/* A small valid config: D=64, 4 heads of 16. */
#define REQ "\"hidden_size\":64,\"intermediate_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100"
#define LLAMA(extra) "{\"architectures\":[\"LlamaForCausalLM\"]," REQ extra "}"
#define MISTRAL(extra) "{\"architectures\":[\"MistralForCausalLM\"]," REQ extra "}"
#define QWEN2(extra) "{\"architectures\":[\"Qwen2ForCausalLM\"]," REQ extra "}"
#define QWEN3(extra) "{\"architectures\":[\"Qwen3ForCausalLM\"]," REQ extra "}"

/* Llama-3.2-1B-Instruct/config.json, verbatim */
static const char LLAMA32_1B[] =
    "{\n"
    "  \"architectures\": [\n"
    "    \"LlamaForCausalLM\"\n"
    "  ],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 128000,\n"
    "  \"eos_token_id\": [\n"
    "    128001,\n"
    "    128008,\n"
    "    128009\n"
    "  ],\n"
    "  \"head_dim\": 64,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 2048,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 8192,\n"
    "  \"max_position_embeddings\": 131072,\n"
    "  \"mlp_bias\": false,\n"
    "  \"model_type\": \"llama\",\n"
    "  \"num_attention_heads\": 32,\n"
    "  \"num_hidden_layers\": 16,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"pretraining_tp\": 1,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_scaling\": {\n"
    "    \"factor\": 32.0,\n"
    "    \"high_freq_factor\": 4.0,\n"
    "    \"low_freq_factor\": 1.0,\n"
    "    \"original_max_position_embeddings\": 8192,\n"
    "    \"rope_type\": \"llama3\"\n"
    "  },\n"
    "  \"rope_theta\": 500000.0,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.45.0.dev0\",\n"
    "  \"use_cache\": true,\n"
    "  \"vocab_size\": 128256\n"
    "}\n";

/* Qwen2.5-0.5B-Instruct/config.json, verbatim */
static const char QWEN25_05B[] =
    "{\n"
    "  \"architectures\": [\n"
    "    \"Qwen2ForCausalLM\"\n"
    "  ],\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 151643,\n"
    "  \"eos_token_id\": 151645,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 896,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 4864,\n"
    "  \"max_position_embeddings\": 32768,\n"
    "  \"max_window_layers\": 21,\n"
    "  \"model_type\": \"qwen2\",\n"
    "  \"num_attention_heads\": 14,\n"
    "  \"num_hidden_layers\": 24,\n"
    "  \"num_key_value_heads\": 2,\n"
    "  \"rms_norm_eps\": 1e-06,\n"
    "  \"rope_theta\": 1000000.0,\n"
    "  \"sliding_window\": 32768,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.43.1\",\n"
    "  \"use_cache\": true,\n"
    "  \"use_sliding_window\": false,\n"
    "  \"vocab_size\": 151936\n"
    "}\n";

/* Qwen3-0.6B/config.json, verbatim */
static const char QWEN3_06B[] =
    "{\n"
    "  \"architectures\": [\n"
    "    \"Qwen3ForCausalLM\"\n"
    "  ],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 151643,\n"
    "  \"eos_token_id\": 151645,\n"
    "  \"head_dim\": 128,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 1024,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 3072,\n"
    "  \"max_position_embeddings\": 40960,\n"
    "  \"max_window_layers\": 28,\n"
    "  \"model_type\": \"qwen3\",\n"
    "  \"num_attention_heads\": 16,\n"
    "  \"num_hidden_layers\": 28,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"rms_norm_eps\": 1e-06,\n"
    "  \"rope_scaling\": null,\n"
    "  \"rope_theta\": 1000000,\n"
    "  \"sliding_window\": null,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.51.0\",\n"
    "  \"use_cache\": true,\n"
    "  \"use_sliding_window\": false,\n"
    "  \"vocab_size\": 151936\n"
    "}\n";

/* Mistral-7B-v0.1/config.json, verbatim */
static const char MISTRAL_7B_V01[] =
    "{\n"
    "  \"architectures\": [\n"
    "    \"MistralForCausalLM\"\n"
    "  ],\n"
    "  \"bos_token_id\": 1,\n"
    "  \"eos_token_id\": 2,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 4096,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 14336,\n"
    "  \"max_position_embeddings\": 32768,\n"
    "  \"model_type\": \"mistral\",\n"
    "  \"num_attention_heads\": 32,\n"
    "  \"num_hidden_layers\": 32,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"rms_norm_eps\": 1e-05,\n"
    "  \"rope_theta\": 10000.0,\n"
    "  \"sliding_window\": 4096,\n"
    "  \"tie_word_embeddings\": false,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.34.0.dev0\",\n"
    "  \"use_cache\": true,\n"
    "  \"vocab_size\": 32000\n"
    "}\n";

static void test_real_configs(void) {
    model_config c;
    int rc = P(LLAMA32_1B, &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(!strcmp(c.arch, "LlamaForCausalLM") && !strcmp(c.model_type, "llama"));
    CHECK(c.hidden_size == 2048 && c.intermediate_size == 8192 && c.n_layers == 16);
    CHECK(c.n_heads == 32 && c.n_kv_heads == 8 && c.head_dim == 64 && c.vocab_size == 128256);
    CHECK(c.max_position_embeddings == 131072);
    CHECK_NEAR(c.rms_norm_eps, 1e-5, 1e-12);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    CHECK(c.rope_type == CFG_ROPE_LLAMA3);
    CHECK_NEAR(c.rope_factor, 32.0, 0);
    CHECK_NEAR(c.rope_low_freq_factor, 1.0, 0);
    CHECK_NEAR(c.rope_high_freq_factor, 4.0, 0);
    CHECK(c.rope_original_max_pos == 8192);
    CHECK_NEAR(c.partial_rotary_factor, 1.0, 0);
    CHECK(!c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.qk_norm && c.tie_word_embeddings && !c.sliding_window);
    CHECK(c.torch_dtype == BE_BF16 && c.bos_token_id == 128000);
    CHECK(c.n_eos == 3 && c.eos_token_ids[0] == 128001 && c.eos_token_ids[1] == 128008 &&
          c.eos_token_ids[2] == 128009);
    CHECK(!c.has_temperature && !c.has_top_p && !c.has_top_k);

    rc = P(QWEN25_05B, &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(!strcmp(c.arch, "Qwen2ForCausalLM") && !strcmp(c.model_type, "qwen2"));
    CHECK(c.hidden_size == 896 && c.intermediate_size == 4864 && c.n_layers == 24);
    CHECK(c.n_heads == 14 && c.n_kv_heads == 2 && c.head_dim == 64 && c.vocab_size == 151936);
    CHECK(c.max_position_embeddings == 32768 && c.rope_type == CFG_ROPE_DEFAULT);
    CHECK_NEAR(c.rms_norm_eps, 1e-6, 1e-13);
    CHECK_NEAR(c.rope_theta, 1e6, 0);
    CHECK(c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.qk_norm && c.tie_word_embeddings);
    CHECK(c.sliding_window == 0); /* use_sliding_window is false */
    CHECK(c.torch_dtype == BE_BF16 && c.bos_token_id == 151643 && c.n_eos == 1 &&
          c.eos_token_ids[0] == 151645);

    rc = P(QWEN3_06B, &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(!strcmp(c.arch, "Qwen3ForCausalLM") && c.hidden_size == 1024 && c.n_heads == 16);
    CHECK(c.head_dim == 128); /* explicit, not 1024/16 */
    CHECK(c.n_kv_heads == 8 && c.n_layers == 28 && c.intermediate_size == 3072 && c.max_position_embeddings == 40960);
    CHECK(c.qk_norm && !c.qkv_bias && !c.o_bias && c.tie_word_embeddings && c.sliding_window == 0);
    CHECK(c.rope_type == CFG_ROPE_DEFAULT);
    CHECK_NEAR(c.rope_theta, 1e6, 0);

    rc = P(MISTRAL_7B_V01, &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(!strcmp(c.arch, "MistralForCausalLM") && c.hidden_size == 4096 && c.head_dim == 128);
    CHECK(c.n_kv_heads == 8 && c.vocab_size == 32000 && c.sliding_window == 4096);
    CHECK(!c.qkv_bias && !c.o_bias && !c.qk_norm && !c.tie_word_embeddings);
    CHECK(c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);

    /* the text need not be NUL-terminated: parse a prefix of a longer buffer */
    size_t n = strlen(QWEN3_06B);
    char *buf = malloc(n + 8);
    memcpy(buf, QWEN3_06B, n);
    memcpy(buf + n, "garbage!", 8);
    rc = cfg_parse(buf, n, "config.json", &c);
    CHECK_MSG(rc == 0 && c.head_dim == 128, "%s", vc_errmsg());
    free(buf);
}

static void test_defaults_and_dims(void) {
    model_config c;
    int rc = P(LLAMA(""), &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(c.n_kv_heads == 4 && c.head_dim == 16 && c.max_position_embeddings == 2048);
    CHECK_NEAR(c.rms_norm_eps, 1e-6, 1e-13);
    CHECK_NEAR(c.rope_theta, 10000.0, 0);
    CHECK_NEAR(c.partial_rotary_factor, 1.0, 0);
    CHECK(c.rope_type == CFG_ROPE_DEFAULT && c.torch_dtype == BE_F32 && !c.tie_word_embeddings);
    CHECK(c.bos_token_id == -1 && c.n_eos == 0 && !strcmp(c.model_type, "llama"));
    rc = P(LLAMA(",\"head_dim\":null,\"num_key_value_heads\":null,\"max_position_embeddings\":null"), &c);
    CHECK_MSG(rc == 0 && c.head_dim == 16 && c.n_kv_heads == 4 && c.max_position_embeddings == 2048, "%s",
              vc_errmsg());
    rc = P(LLAMA(",\"head_dim\":32"), &c);
    CHECK(rc == 0 && c.head_dim == 32);

    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":\"big\",\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}", &c),
               VC_EFORMAT, "config.json: hidden_size must be an integer (got a string)", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}", &c),
               VC_EFORMAT, "config.json: missing hidden_size", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                 "\"num_attention_heads\":4,\"vocab_size\":100}", &c),
               VC_EFORMAT, "config.json: missing num_hidden_layers", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4}", &c),
               VC_EFORMAT, "config.json: missing vocab_size", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"vocab_size\":100}", &c),
               VC_EFORMAT, "missing num_attention_heads", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}", &c),
               VC_EFORMAT, "missing intermediate_size", NULL);
    static const struct {
        const char *json, *a;
    } bad[] = {
        {"{\"model_type\":\"llama\",\"hidden_size\":0,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "hidden_size (0)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":-64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "hidden_size (-64)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":1e30,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "hidden_size"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64.5,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "hidden_size (64.5) must be an integer"},
        {"{\"model_type\":\"llama\",\"hidden_size\":16777216,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "hidden_size (16777216)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":4096,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "num_hidden_layers (4096)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":16777216}", "vocab_size (16777216)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":true,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "intermediate_size must be an integer (got a boolean)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":[1],\"num_hidden_layers\":1,"
         "\"num_attention_heads\":1,\"vocab_size\":1}", "intermediate_size must be an integer (got a list)"},
        {"{\"model_type\":\"llama\",\"hidden_size\":4096,\"intermediate_size\":1,\"num_hidden_layers\":1,"
         "\"num_attention_heads\":4096,\"head_dim\":8192,\"vocab_size\":1}", "num_attention_heads * head_dim"},
        {LLAMA(",\"max_position_embeddings\":0"), "max_position_embeddings (0)"},
        {LLAMA(",\"head_dim\":\"16\""), "head_dim must be an integer"},
        {LLAMA(",\"head_dim\":15"), "head_dim (15) must be even"},
        {LLAMA(",\"num_key_value_heads\":0"), "num_key_value_heads (0)"},
        {LLAMA(",\"rms_norm_eps\":-1"), "rms_norm_eps (-1)"},
        {LLAMA(",\"rms_norm_eps\":\"small\""), "rms_norm_eps must be a number (got a string)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = P(bad[i].json, &c);
        expect_err_at((int)(1000 + i), r, VC_EFORMAT, "config.json: ", bad[i].a);
    }
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":3,\"vocab_size\":100}",
                 &c),
               VC_EFORMAT, "config.json: num_key_value_heads (3) must divide num_attention_heads (8)", NULL);
    EXPECT_ERR(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":66,\"intermediate_size\":128,"
                 "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100}", &c),
               VC_EFORMAT, "config.json: hidden_size (66) must be a multiple of num_attention_heads (4)", NULL);
    /* an explicit head_dim lifts that requirement */
    CHECK(P("{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":66,\"intermediate_size\":128,"
            "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"head_dim\":16,\"vocab_size\":100}", &c) == 0);
}

static void test_architectures(void) {
    model_config c;
    EXPECT_ERR(P("{\"architectures\":[\"GPT2LMHeadModel\"]," REQ "}", &c), VC_EUNSUP,
               "config.json: unsupported architecture 'GPT2LMHeadModel' (supported: ",
               "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM");
    int rc = P("{\"model_type\":\"qwen2\"," REQ "}", &c);
    CHECK_MSG(rc == 0 && !strcmp(c.arch, "Qwen2ForCausalLM") && c.qkv_bias, "%s", vc_errmsg());
    rc = P("{\"architectures\":[],\"model_type\":\"mistral\"," REQ "}", &c);
    CHECK_MSG(rc == 0 && !strcmp(c.arch, "MistralForCausalLM"), "%s", vc_errmsg());
    rc = P("{\"architectures\":null,\"model_type\":\"qwen3\"," REQ "}", &c);
    CHECK_MSG(rc == 0 && c.qk_norm && !strcmp(c.model_type, "qwen3"), "%s", vc_errmsg());
    EXPECT_ERR(P("{" REQ "}", &c), VC_EFORMAT, "config.json: no architectures and no model_type", NULL);
    EXPECT_ERR(P("{\"model_type\":\"gpt2\"," REQ "}", &c), VC_EUNSUP, "config.json", "model_type 'gpt2'");
    EXPECT_ERR(P("{\"architectures\":\"LlamaForCausalLM\"," REQ "}", &c), VC_EFORMAT, "config.json",
               "architectures must be a list");
    EXPECT_ERR(P("{\"architectures\":[5]," REQ "}", &c), VC_EFORMAT, "config.json", "architectures[0]");
    EXPECT_ERR(P("{\"model_type\":7," REQ "}", &c), VC_EFORMAT, "config.json", "model_type must be a string");
    /* the failure leaves *out zeroed */
    CHECK(c.hidden_size == 0 && c.arch[0] == 0);
}

static void test_flags(void) {
    model_config c;
    int rc = P(LLAMA(",\"attention_bias\":true,\"mlp_bias\":true"), &c);
    CHECK_MSG(rc == 0 && c.qkv_bias && c.o_bias && c.mlp_bias && !c.qk_norm, "%s", vc_errmsg());
    rc = P(QWEN3(",\"attention_bias\":true,\"mlp_bias\":true"), &c);
    CHECK(rc == 0 && c.qkv_bias && c.o_bias && !c.mlp_bias && c.qk_norm);
    rc = P(MISTRAL(",\"attention_bias\":true,\"mlp_bias\":true"), &c);
    CHECK(rc == 0 && c.qkv_bias && !c.o_bias && !c.mlp_bias && !c.qk_norm);
    rc = P(QWEN2(",\"attention_bias\":false"), &c);
    CHECK(rc == 0 && c.qkv_bias && !c.o_bias && !c.qk_norm);
    rc = P(QWEN2(",\"use_sliding_window\":true,\"sliding_window\":4096"), &c);
    CHECK(rc == 0 && c.sliding_window == 4096);
    rc = P(QWEN3(",\"use_sliding_window\":false,\"sliding_window\":4096"), &c);
    CHECK(rc == 0 && c.sliding_window == 0);
    rc = P(QWEN3(",\"use_sliding_window\":true,\"sliding_window\":null"), &c);
    CHECK(rc == 0 && c.sliding_window == 0);
    rc = P(MISTRAL(",\"sliding_window\":null"), &c); /* Mistral-7B-v0.3 */
    CHECK(rc == 0 && c.sliding_window == 0);
    rc = P(MISTRAL(""), &c);
    CHECK(rc == 0 && c.sliding_window == 0);
    rc = P(LLAMA(",\"sliding_window\":4096"), &c);
    CHECK(rc == 0 && c.sliding_window == 0);
    rc = P(LLAMA(",\"tie_word_embeddings\":true"), &c);
    CHECK(rc == 0 && c.tie_word_embeddings);
    EXPECT_ERR(P(LLAMA(",\"attention_bias\":\"yes\""), &c), VC_EFORMAT, "config.json: attention_bias", NULL);
    EXPECT_ERR(P(LLAMA(",\"tie_word_embeddings\":1"), &c), VC_EFORMAT, "config.json: tie_word_embeddings", NULL);
    EXPECT_ERR(P(MISTRAL(",\"sliding_window\":\"x\""), &c), VC_EFORMAT, "config.json: sliding_window", NULL);
    EXPECT_ERR(P(MISTRAL(",\"sliding_window\":-1"), &c), VC_EFORMAT, "config.json: sliding_window (-1)", NULL);
    EXPECT_ERR(P(QWEN2(",\"use_sliding_window\":\"no\""), &c), VC_EFORMAT, "config.json: use_sliding_window",
               NULL);
}

static void test_rope(void) {
    model_config c;
    int rc = P(LLAMA(",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000.0}"), &c);
    CHECK_MSG(rc == 0 && c.rope_type == CFG_ROPE_DEFAULT, "%s", vc_errmsg());
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    rc = P(LLAMA(",\"rope_theta\":10000,\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000.0}"), &c);
    CHECK_NEAR(c.rope_theta, 500000.0, 0);
    rc = P(LLAMA(",\"rope_theta\":20000,\"rope_parameters\":{\"rope_type\":\"default\"}"), &c);
    CHECK(rc == 0);
    CHECK_NEAR(c.rope_theta, 20000.0, 0);
    rc = P(LLAMA(",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,\"factor\":8.0,"
                 "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}"),
           &c);
    CHECK_MSG(rc == 0 && c.rope_type == CFG_ROPE_LLAMA3 && c.rope_original_max_pos == 8192, "%s", vc_errmsg());
    CHECK_NEAR(c.rope_factor, 8.0, 0);
    rc = P(LLAMA(",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}"), &c);
    CHECK_MSG(rc == 0 && c.rope_type == CFG_ROPE_LINEAR, "%s", vc_errmsg());
    CHECK_NEAR(c.rope_factor, 2.0, 0);
    rc = P(LLAMA(",\"rope_scaling\":{\"rope_type\":\"default\"},\"rope_parameters\":null"), &c);
    CHECK(rc == 0 && c.rope_type == CFG_ROPE_DEFAULT);
    rc = P(LLAMA(",\"rope_scaling\":null,\"rope_parameters\":null"), &c);
    CHECK(rc == 0 && c.rope_type == CFG_ROPE_DEFAULT);
    rc = P(LLAMA(",\"partial_rotary_factor\":0.5"), &c);
    CHECK(rc == 0);
    CHECK_NEAR(c.partial_rotary_factor, 0.5, 0);
    rc = P(LLAMA(",\"partial_rotary_factor\":0.5,\"rope_parameters\":{\"rope_type\":\"default\",\"partial_rotary_factor\":0.25}"), &c);
    CHECK(rc == 0);
    CHECK_NEAR(c.partial_rotary_factor, 0.25, 0);

    /* yarn (gpt-oss's; any architecture may name it): the attention factor 0.1 ln(factor) + 1 by default */
    rc = P(LLAMA(",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":32768}"), &c);
    CHECK(rc == 0 && c.rope_type == CFG_ROPE_YARN && c.rope_original_max_pos == 32768 && c.rope_truncate == 1);
    CHECK_NEAR(c.rope_attn_factor, 0.1 * log(4.0) + 1.0, 1e-12);
    CHECK_NEAR(c.rope_beta_fast, 32, 0);
    CHECK_NEAR(c.rope_beta_slow, 1, 0);
    const char *unsup[] = {
        LLAMA(",\"rope_scaling\":{\"type\":\"dynamic\",\"factor\":2.0}"),
    };
    const char *names[] = {"'dynamic'"};
    for (int i = 0; i < 1; i++) {
        rc = P(unsup[i], &c);
        expect_err_at(2000 + i, rc, VC_EUNSUP, "config.json: rope_scaling type ", names[i]);
    }
    /* longrope (Phi-3's; any architecture may name it, as in transformers): one factor per frequency */
    EXPECT_ERR(P(LLAMA(",\"rope_scaling\":{\"type\":\"longrope\",\"long_factor\":[1],\"short_factor\":[1]}"), &c),
               VC_EFORMAT, "config.json: rope_scaling.short_factor must be a list of 8 numbers", NULL);
    EXPECT_ERR(P(LLAMA(",\"rope_parameters\":{\"rope_type\":\"dynamic\",\"rope_theta\":1e6,\"factor\":4.0}"), &c),
               VC_EUNSUP, "config.json: rope_parameters type 'dynamic' is not supported", NULL);
    static const struct {
        const char *json, *a;
    } bad[] = {
        {LLAMA(",\"rope_scaling\":{\"type\":\"linear\"}"), "missing rope_scaling.factor"},
        {LLAMA(",\"rope_scaling\":{\"type\":\"linear\",\"factor\":0}"), "rope_scaling.factor (0)"},
        {LLAMA(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"high_freq_factor\":4.0,"
               "\"original_max_position_embeddings\":8192}"), "missing rope_scaling.low_freq_factor"},
        {LLAMA(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":4.0,"
               "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}"), "high_freq_factor (4)"},
        {LLAMA(",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
               "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":\"8k\"}"),
         "rope_scaling.original_max_position_embeddings must be an integer"},
        {LLAMA(",\"rope_scaling\":5"), "rope_scaling must be an object or null (got a number)"},
        {LLAMA(",\"rope_parameters\":[]"), "rope_parameters must be an object"},
        {LLAMA(",\"rope_scaling\":{\"rope_type\":3}"), "rope_scaling.rope_type must be a string"},
        {LLAMA(",\"rope_scaling\":{\"factor\":2.0}"), "rope_scaling has a factor but no rope_type"},
        {LLAMA(",\"rope_theta\":\"big\""), "rope_theta must be a number"},
        {LLAMA(",\"rope_theta\":0"), "rope_theta (0)"},
        {LLAMA(",\"rope_parameters\":{\"rope_theta\":-1}"), "rope_parameters.rope_theta (-1)"},
        {LLAMA(",\"partial_rotary_factor\":0"), "partial_rotary_factor (0)"},
        {LLAMA(",\"partial_rotary_factor\":1.5"), "partial_rotary_factor (1.5)"},
        {LLAMA(",\"partial_rotary_factor\":0.3125"), "rotary dimension of 5"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = P(bad[i].json, &c);
        expect_err_at((int)(2100 + i), rc, VC_EFORMAT, "config.json: ", bad[i].a);
    }
}

static void test_json_and_dtype(void) {
    model_config c;
    EXPECT_ERR(P("{\"a\": }", &c), VC_EFORMAT, "config.json: invalid JSON at line 1", NULL);
    EXPECT_ERR(P("{\n  \"a\": 1,\n  \"b\": x\n}", &c), VC_EFORMAT, "config.json: invalid JSON at line 3", NULL);
    EXPECT_ERR(P("{} {}", &c), VC_EFORMAT, "config.json: invalid JSON", NULL);
    EXPECT_ERR(P("", &c), VC_EFORMAT, "config.json: invalid JSON", NULL);
    EXPECT_ERR(P("[1,2]", &c), VC_EFORMAT, "config.json: invalid JSON", "not an object");
    EXPECT_ERR(cfg_parse(NULL, 0, "config.json", &c), VC_EFORMAT, "config.json: invalid JSON", NULL);

    static const struct {
        const char *json;
        be_dtype dt;
    } ok[] = {
        {LLAMA(",\"torch_dtype\":\"float16\""), BE_F16},  {LLAMA(",\"torch_dtype\":\"half\""), BE_F16},
        {LLAMA(",\"torch_dtype\":\"float32\""), BE_F32},  {LLAMA(",\"torch_dtype\":\"float\""), BE_F32},
        {LLAMA(",\"torch_dtype\":\"bfloat16\""), BE_BF16}, {LLAMA(",\"dtype\":\"bfloat16\""), BE_BF16},
        {LLAMA(",\"dtype\":\"float16\",\"torch_dtype\":\"float32\""), BE_F16},
        {LLAMA(",\"torch_dtype\":null"), BE_F32},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int rc = P(ok[i].json, &c);
        CHECK_MSG(rc == 0 && c.torch_dtype == ok[i].dt, "dtype case %zu: %s", i, vc_errmsg());
    }
    EXPECT_ERR(P(LLAMA(",\"torch_dtype\":\"int8\""), &c), VC_EUNSUP, "config.json: torch_dtype 'int8'", NULL);
    EXPECT_ERR(P(LLAMA(",\"dtype\":5"), &c), VC_EFORMAT, "config.json: dtype must be a string", NULL);

    static const struct {
        const char *flag;
        be_dtype ck, want;
    } rs[] = {
        {"auto", BE_BF16, BE_BF16}, {"auto", BE_F32, BE_F16},   {"auto", BE_F16, BE_F16},
        {"half", BE_BF16, BE_F16},  {"float16", BE_F32, BE_F16}, {"bfloat16", BE_F32, BE_BF16},
        {"float", BE_BF16, BE_F32}, {"float32", BE_F16, BE_F32},
    };
    for (size_t i = 0; i < sizeof rs / sizeof rs[0]; i++) {
        be_dtype o = BE_I32;
        CHECK(cfg_resolve_dtype(rs[i].flag, rs[i].ck, &o) == 0 && o == rs[i].want);
    }
    /* the flag alone (checked before any download): auto is -1 */
    int f = 0;
    CHECK(cfg_parse_dtype_flag(NULL, &f) == 0 && f == -1);
    CHECK(cfg_parse_dtype_flag("auto", &f) == 0 && f == -1);
    CHECK(cfg_parse_dtype_flag("half", &f) == 0 && f == BE_F16);
    CHECK(cfg_parse_dtype_flag("float", &f) == 0 && f == BE_F32);
    EXPECT_ERR(cfg_parse_dtype_flag("int8", &f), VC_EINVAL, "unknown --dtype 'int8'", NULL);
    be_dtype o;
    EXPECT_ERR(cfg_resolve_dtype("fp8", BE_BF16, &o), VC_EINVAL,
               "unknown --dtype 'fp8' (expected auto, half, float16, bfloat16, float, float32)", NULL);
    EXPECT_ERR(cfg_resolve_dtype("AUTO", BE_BF16, &o), VC_EINVAL, "'AUTO'", NULL);
}

static void test_tokens(void) {
    model_config c;
    int rc = P(LLAMA(",\"bos_token_id\":[5,6],\"eos_token_id\":null"), &c);
    CHECK(rc == 0 && c.bos_token_id == 5 && c.n_eos == 0);
    rc = P(LLAMA(",\"bos_token_id\":null,\"eos_token_id\":[]"), &c);
    CHECK(rc == 0 && c.bos_token_id == -1 && c.n_eos == 0);
    rc = P(LLAMA(",\"eos_token_id\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]"), &c);
    CHECK(rc == 0 && c.n_eos == 16 && c.eos_token_ids[15] == 16);
    EXPECT_ERR(P(LLAMA(",\"eos_token_id\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]"), &c), VC_EFORMAT,
               "config.json: eos_token_id has 17 entries", NULL);
    EXPECT_ERR(P(LLAMA(",\"eos_token_id\":\"x\""), &c), VC_EFORMAT, "config.json: eos_token_id", NULL);
    EXPECT_ERR(P(LLAMA(",\"eos_token_id\":[1,\"x\"]"), &c), VC_EFORMAT, "config.json: eos_token_id", NULL);
    EXPECT_ERR(P(LLAMA(",\"eos_token_id\":-1"), &c), VC_EFORMAT, "config.json: eos_token_id", NULL);
    EXPECT_ERR(P(LLAMA(",\"bos_token_id\":1.5"), &c), VC_EFORMAT, "config.json: bos_token_id", NULL);
    EXPECT_ERR(P(LLAMA(",\"bos_token_id\":{}"), &c), VC_EFORMAT, "config.json: bos_token_id", NULL);
}

static void test_generation(void) {
    model_config c, before;
    CHECK(P(LLAMA32_1B, &c) == 0);
    /* Llama-3.2-1B-Instruct/generation_config.json */
    int rc = G("{\"bos_token_id\": 128000, \"do_sample\": true, \"eos_token_id\": [128001, 128008, 128009],"
               " \"temperature\": 0.6, \"top_p\": 0.9, \"transformers_version\": \"4.45.0.dev0\"}", &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(c.has_temperature && c.has_top_p && !c.has_top_k && c.n_eos == 3 && c.bos_token_id == 128000);
    CHECK_NEAR(c.gen_temperature, 0.6, 1e-6);
    CHECK_NEAR(c.gen_top_p, 0.9, 1e-6);

    CHECK(P(QWEN25_05B, &c) == 0);
    /* Qwen2.5-0.5B-Instruct/generation_config.json */
    rc = G("{\"bos_token_id\": 151643, \"pad_token_id\": 151643, \"do_sample\": true,"
           " \"eos_token_id\": [151645, 151643], \"repetition_penalty\": 1.1, \"temperature\": 0.7,"
           " \"top_p\": 0.8, \"top_k\": 20, \"transformers_version\": \"4.37.0\"}", &c);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    CHECK(c.n_eos == 2 && c.eos_token_ids[0] == 151645 && c.eos_token_ids[1] == 151643);
    CHECK(c.has_top_k && c.gen_top_k == 20 && c.has_temperature && c.has_top_p);
    CHECK_NEAR(c.gen_temperature, 0.7, 1e-6);

    CHECK(P(MISTRAL_7B_V01, &c) == 0);
    rc = G("{\"bos_token_id\": 1, \"eos_token_id\": 2, \"transformers_version\": \"4.34.0.dev0\"}", &c);
    CHECK(rc == 0 && c.n_eos == 1 && c.eos_token_ids[0] == 2 && !c.has_temperature && !c.has_top_k);
    rc = G("{\"eos_token_id\": 7, \"bos_token_id\": null}", &c);
    CHECK(rc == 0 && c.n_eos == 1 && c.eos_token_ids[0] == 7 && c.bos_token_id == 1);
    rc = G("{\"top_k\": 0}", &c);
    CHECK(rc == 0 && c.has_top_k && c.gen_top_k == 0 && !c.has_temperature);

    before = c;
    static const struct {
        const char *json, *a;
    } bad[] = {
        {"{\"temperature\":\"hot\"}", "temperature must be a number"},
        {"{\"temperature\":-1}", "temperature (-1)"},
        {"{\"top_p\":0}", "top_p (0)"},
        {"{\"top_p\":1.5}", "top_p (1.5)"},
        {"{\"top_k\":1.5}", "top_k (1.5) must be an integer"},
        {"{\"top_k\":-2}", "top_k (-2)"},
        {"{\"eos_token_id\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}", "eos_token_id has 17"},
        {"{\"temperature\":0.5,\"eos_token_id\":\"x\"}", "eos_token_id"},
        {"{\"temperature\": ", "invalid JSON"},
        {"7", "not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = G(bad[i].json, &c);
        expect_err_at((int)(3000 + i), rc, VC_EFORMAT, "generation_config.json: ", bad[i].a);
        CHECK(memcmp(&c, &before, sizeof c) == 0); /* unchanged on failure */
    }
}

static char tmpd[64];

static void put(const char *name, const char *text) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpd, name);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void drop(const char *name) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", tmpd, name);
    unlink(p);
}

static void test_load_dir(void) {
    snprintf(tmpd, sizeof tmpd, "/tmp/vllmc_cfg_XXXXXX");
    if (!mkdtemp(tmpd)) {
        CHECK(!"mkdtemp");
        return;
    }
    model_config c;
    char want[256];
    snprintf(want, sizeof want, "%s/config.json", tmpd);
    EXPECT_ERR(cfg_load_dir(tmpd, &c), VC_EIO, want, NULL);

    put("config.json", QWEN25_05B);
    int rc = cfg_load_dir(tmpd, &c);
    CHECK_MSG(rc == 0 && c.hidden_size == 896 && c.n_eos == 1 && !c.has_top_k, "%s", vc_errmsg());

    put("generation_config.json", "{\"eos_token_id\":[151645,151643],\"top_k\":20,\"temperature\":0.7}");
    rc = cfg_load_dir(tmpd, &c);
    CHECK_MSG(rc == 0 && c.n_eos == 2 && c.has_top_k && c.gen_top_k == 20, "%s", vc_errmsg());

    put("generation_config.json", "{\"top_k\":\"many\"}");
    snprintf(want, sizeof want, "%s/generation_config.json: top_k must be an integer", tmpd);
    EXPECT_ERR(cfg_load_dir(tmpd, &c), VC_EFORMAT, want, NULL);
    CHECK(c.hidden_size == 0);

    put("config.json", "{\"architectures\": [\"LlamaForCausalLM\"],");
    snprintf(want, sizeof want, "%s/config.json: invalid JSON", tmpd);
    EXPECT_ERR(cfg_load_dir(tmpd, &c), VC_EFORMAT, want, NULL);

    put("config.json", "{\"architectures\": [\"GPT2LMHeadModel\"]}");
    snprintf(want, sizeof want, "%s/config.json: unsupported architecture 'GPT2LMHeadModel'", tmpd);
    EXPECT_ERR(cfg_load_dir(tmpd, &c), VC_EUNSUP, want, NULL);

    drop("config.json");
    drop("generation_config.json");
    rmdir(tmpd);
}

int main(void) {
    test_real_configs();
    test_defaults_and_dims();
    test_architectures();
    test_flags();
    test_rope();
    test_json_and_dtype();
    test_tokens();
    test_generation();
    test_load_dir();
    TEST_END();
}
