/* test_config_family: config.json of the issue-15 dense families (Gemma 2, Gemma 3 text and its
 * multimodal wrapper, Phi-3): the published configs in bench/configs (copied verbatim from the Hub
 * repos), both spellings of the sliding pattern and of the rope settings, and the refusals, each
 * naming the file and the field. Run from the repository root. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "model/config.h"
#include "test.h"
#include "test_config_util.h"

static int n_sliding(const model_config *c) {
    int n = 0;
    for (int l = 0; l < c->n_layers; l++) n += cfg_layer_window(c, l) > 0;
    return n;
}

static void test_published(void) {
    model_config c;
    if (!load_bench_config("gemma-2-2b-it", &c)) {
        CHECK(c.norm_offset == 1.0f && c.post_norms && c.embed_scale && c.act == CFG_ACT_GELU_TANH);
        CHECK(c.query_pre_attn_scalar == 256 && c.attn_softcap == 50.0f && c.final_softcap == 30.0f);
        CHECK(c.sliding_window == 4096 && c.tie_word_embeddings && !c.qk_norm && c.head_dim == 256);
        CHECK(cfg_layer_window(&c, 0) == 4096 && cfg_layer_window(&c, 1) == 0 && n_sliding(&c) == 13);
        CHECK(c.rope_local_theta == 0 && c.rope_theta == 10000.0);
    }
    if (!load_bench_config("gemma-3-1b-it", &c)) {
        CHECK(c.qk_norm && c.post_norms && c.attn_softcap == 0 && c.final_softcap == 0);
        CHECK(c.rope_theta == 1e6 && c.rope_local_theta == 10000.0 && c.rope_type == CFG_ROPE_DEFAULT);
        CHECK(c.sliding_window == 512 && n_sliding(&c) == 22); /* 26 layers, every 6th global */
        CHECK(cfg_layer_window(&c, 5) == 0 && cfg_layer_local_rope(&c, 4) && !cfg_layer_local_rope(&c, 11));
        CHECK(!strcmp(c.arch, "Gemma3ForCausalLM") && !c.multimodal);
    }
    if (!load_bench_config("Phi-3-mini-4k-instruct", &c)) {
        CHECK(c.fused_qkv && c.act == CFG_ACT_SILU && c.norm_offset == 0 && !c.post_norms);
        CHECK(c.sliding_window == 2047 && n_sliding(&c) == 32 && c.rope_type == CFG_ROPE_DEFAULT);
    }
    if (!load_bench_config("Phi-3.5-mini-instruct", &c)) {
        CHECK(c.rope_type == CFG_ROPE_LONGROPE && c.rope_n_factors == 48 && c.rope_original_max_pos == 4096);
        CHECK(fabs(c.rope_attn_factor - sqrt(1 + log(32.0) / log(4096.0))) < 1e-12);
        CHECK(c.rope_short_factor[0] > 0 && c.rope_long_factor[47] > c.rope_short_factor[47]);
    }
}

#define G3 "{\"architectures\":[\"Gemma3ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96," \
           "\"num_hidden_layers\":4,\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16," \
           "\"vocab_size\":512,\"sliding_window\":24"
#define PHI3 "{\"architectures\":[\"Phi3ForCausalLM\"],\"hidden_size\":64,\"intermediate_size\":96," \
             "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":512,\"max_position_embeddings\":512"

/* transformers 5's spelling (layer_types, rope_parameters per layer type) and the published one. */
static void test_spellings(void) {
    model_config a, b;
    int rc = P(G3 ",\"rope_theta\":1e6,\"rope_local_base_freq\":10000,\"sliding_window_pattern\":3,"
                  "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0}}", &a);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    rc = P(G3 ",\"layer_types\":[\"sliding_attention\",\"sliding_attention\",\"full_attention\","
              "\"sliding_attention\"],\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"linear\","
              "\"factor\":2.0,\"rope_theta\":1e6},\"sliding_attention\":{\"rope_type\":\"default\","
              "\"rope_theta\":10000}}}", &b);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    for (int l = 0; l < 4; l++) {
        CHECK(cfg_layer_window(&a, l) == cfg_layer_window(&b, l));
        CHECK(cfg_layer_local_rope(&a, l) == cfg_layer_local_rope(&b, l));
    }
    CHECK(cfg_layer_window(&a, 2) == 0 && cfg_layer_window(&a, 3) == 24);
    CHECK(a.rope_type == CFG_ROPE_LINEAR && b.rope_type == CFG_ROPE_LINEAR && b.rope_factor == 2.0);
    CHECK(a.rope_theta == b.rope_theta && a.rope_local_theta == b.rope_local_theta && b.rope_local_theta == 10000);
    /* Phi-3: longrope with partial rotary; "su" is the older name; transformers 5 puts everything in rope_parameters */
    rc = P(PHI3 ",\"partial_rotary_factor\":0.5,\"original_max_position_embeddings\":64,\"rope_scaling\":{\"type\":"
                "\"su\",\"short_factor\":[1,1.25,1.5,2],\"long_factor\":[1.5,3,6,12]}}", &a);
    CHECK_MSG(rc == 0 && a.rope_type == CFG_ROPE_LONGROPE && a.rope_n_factors == 4, "%s", vc_errmsg());
    CHECK(fabs(a.rope_attn_factor - sqrt(1.5)) < 1e-12 && a.rope_original_max_pos == 64);
    rc = P(PHI3 ",\"rope_parameters\":{\"rope_type\":\"longrope\",\"rope_theta\":10000,\"partial_rotary_factor\":0.5,"
                "\"original_max_position_embeddings\":64,\"short_factor\":[1,1.25,1.5,2],"
                "\"long_factor\":[1.5,3,6,12]}}", &b);
    CHECK_MSG(rc == 0 && b.rope_n_factors == 4 && b.rope_attn_factor == a.rope_attn_factor, "%s", vc_errmsg());
    /* the language model of a multimodal Gemma 3: text_config with Gemma3TextConfig's defaults */
    rc = P("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"torch_dtype\":\"bfloat16\",\"text_config\":{"
           "\"hidden_size\":2560,\"intermediate_size\":10240,\"model_type\":\"gemma3_text\",\"num_hidden_layers\":34,"
           "\"rope_scaling\":{\"factor\":8.0,\"rope_type\":\"linear\"},\"sliding_window\":1024}}", &a);
    CHECK_MSG(rc == 0 && a.multimodal && a.n_heads == 8 && a.n_kv_heads == 4 && a.head_dim == 256, "%s", vc_errmsg());
    CHECK(a.vocab_size == 262208 && a.rope_theta == 1e6 && a.rope_factor == 8.0 && a.tie_word_embeddings);
    CHECK(a.torch_dtype == BE_BF16 && n_sliding(&a) == 29 && a.query_pre_attn_scalar == 256);
}

static void test_refusals(void) {
    model_config c;
    EXPECT_ERR(P(G3 ",\"layer_types\":[\"full_attention\"]}", &c), "config.json", "layer_types");
    EXPECT_ERR(P(G3 ",\"layer_types\":[\"x\",\"full_attention\",\"full_attention\",\"full_attention\"]}", &c),
               "config.json", "layer_types[0]");
    EXPECT_ERR(P(G3 ",\"hidden_activation\":\"relu\"}", &c), "config.json", "hidden_activation");
    EXPECT_ERR(P(G3 ",\"attn_logit_softcapping\":\"big\"}", &c), "config.json", "attn_logit_softcapping");
    EXPECT_ERR(P(G3 ",\"sliding_window_pattern\":0}", &c), "config.json", "sliding_window_pattern");
    EXPECT_ERR(P(G3 ",\"use_bidirectional_attention\":true}", &c), "config.json", "use_bidirectional_attention");
    EXPECT_ERR(P(G3 ",\"rope_parameters\":{\"sliding_attention\":{\"rope_type\":\"linear\",\"factor\":2}}}", &c),
               "config.json", "rope_parameters.sliding_attention.rope_type");
    EXPECT_ERR(P(PHI3 ",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,1],\"long_factor\":[1,1]}}", &c),
               "config.json", "rope_scaling.short_factor");
    EXPECT_ERR(P(PHI3 ",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1]}}", &c),
               "config.json", "missing rope_scaling.long_factor");
    EXPECT_ERR(P(PHI3 ",\"rope_scaling\":{\"type\":\"longrope\",\"short_factor\":[1,1,1,1,1,1,1,1],"
                      "\"long_factor\":[1,1,1,1,1,1,1,-1]}}", &c),
               "config.json", "rope_scaling.long_factor[7]");
    EXPECT_ERR(P(PHI3 ",\"hidden_act\":\"gelu\"}", &c), "config.json", "hidden_act");
    EXPECT_ERR(P("{\"architectures\":[\"Gemma3ForConditionalGeneration\"]}", &c), "config.json", "text_config");
    EXPECT_ERR(P("{\"architectures\":[\"Gemma3ForConditionalGeneration\"],\"text_config\":{\"hidden_size\":\"x\"}}", &c),
               "config.json: text_config", "hidden_size");
    EXPECT_ERR(P("{\"model_type\":\"gemma7\",\"hidden_size\":64}", &c), "config.json", "model_type 'gemma7'");
    /* a missing required field names it */
    EXPECT_ERR(P("{\"architectures\":[\"Gemma2ForCausalLM\"],\"hidden_size\":64}", &c), "config.json",
               "missing intermediate_size");
}

int main(void) {
    test_published();
    test_spellings();
    test_refusals();
    TEST_END();
}
