/* stack: the one place that sets up what every entry point runs on (serve, generate, bench and the
 * C API): the model folder (a Hub download when the model is a repo id), the backend for --device,
 * the tokenizer, the model (safetensors, or random weights for --load-format dummy), the engine
 * (with the tokenizer's token bytes as its grammar vocabulary, so structured output works).
 *
 * Callers fill an stk_params from their flags, then stk_check() it: every flag value is validated
 * there, before anything is downloaded or loaded (a bad --dtype costs no network). stk_open() then
 * builds the stack in that order, and stk_free() (NULL-safe, also on a half-built stack) takes it
 * down in reverse. The stack owns everything it built; params strings stay the caller's and must
 * outlive the stack. */
#ifndef VLLMC_STACK_H
#define VLLMC_STACK_H

#include "backend/backend.h"
#include "engine/engine.h"
#include "grammar/grammar.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    const char *model;        /* model folder or Hub repo id ORG/NAME; with load_dummy also a config.json */
    const char *revision;     /* Hub revision (NULL: main) */
    const char *download_dir; /* NULL: the Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/...) */
    const char *dtype;        /* --dtype: auto | half | float16 | bfloat16 | float | float32 (NULL: auto) */
    const char *device;       /* --device: auto | cpu | gpu (NULL: auto) */
    const char *kv_cache_dtype; /* --kv-cache-dtype: auto | bfloat16 | float16 | float32 (NULL: auto);
                                   stk_check() sets ec.kv_dtype from it */
    int load_dummy;           /* random weights from config.json (--load-format dummy, --random-weights) */
    int num_layers;           /* with load_dummy: keep only the first N layers (0: all; bench --num-layers) */
    int tokenizer;            /* 1: load tokenizer.json when the model folder has one */
    const char *tokenizer_dir; /* with tokenizer: load it from this folder instead (vLLM's --tokenizer) */
    int engine;               /* 1: create the engine from ec (0: the caller makes its own from the model) */
    int quiet;                /* 0: log the device and the model load on stderr */
    eng_config ec;            /* gpu_memory_utilization: 0 (vLLM's 0.9) or in (0, 1] */
} stk_params;

typedef struct {
    char *model_dir;          /* the local model folder; NULL when the model came from a config.json file */
    be_backend *be;
    tok_tokenizer *tok;       /* NULL: not asked for, or the folder has no tokenizer.json */
    mdl_model *m;
    eng_engine *e;            /* NULL unless params.engine */
    gram_vocab *gvocab;       /* the tokenizer's token bytes for grammar masks (NULL without a tokenizer) */
    unsigned char **gtok;     /* [vocab_size] token i's bytes (gtok_len[i]; all in one block at gtok[0]) */
    size_t *gtok_len;
    double load_s;            /* seconds spent placing the weights */
} stk_stack;

/* tokenizer and engine on, everything else auto / unset, eng_config_default(). */
void stk_params_default(stk_params *p);
/* Validate every value (messages name the flag and its choices); fills p->ec.kv_dtype. No I/O. */
int stk_check(stk_params *p);
/* --kv-cache-dtype -> -1 (auto: the model's run dtype) or a be_dtype; fp8 kinds are VC_EUNSUP. */
int stk_parse_kv_cache_dtype(const char *flag, int *out);
/* stk_check, then backend, model folder, tokenizer, model, engine. */
int stk_open(stk_params *p, stk_stack **out);
/* Build s->gvocab / gtok / gtok_len from s->tok (done by stk_open for its engine; callers that make
 * their own engine call it). A no-op once built; VC_EINVAL without a tokenizer. */
int stk_grammar_vocab(stk_stack *s);
void stk_free(stk_stack *s);

#endif
