/* request: an OpenAI request body (POST /v1/completions, /v1/chat/completions)
 * read, validated and tokenized as vLLM's OpenAI server does it: the fields
 * of CompletionRequest / ChatCompletionRequest, vLLM's sampling extensions,
 * the chat template, generation_config.json defaults, and the context-length
 * checks. Anything wrong is an srv_error (400 with vLLM's wording, 404 for an
 * unknown model); nothing here touches the engine, so the fuzz target drives
 * it directly. */
#ifndef VLLMC_SERVER_REQUEST_H
#define VLLMC_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "engine/lora.h"
#include "engine/params.h"
#include "server/autotool.h"
#include "template/template.h"
#include "tokenizer/tokenizer.h"

enum {
    SRV_CONTENT_AUTO = 0,   /* detected from the template (request.c content_format_of) */
    SRV_CONTENT_STRING,     /* message content flattened to a string */
    SRV_CONTENT_OPENAI,     /* message content as a list of {"type": "text", "text": ...} parts */
};

typedef struct {
    int status;            /* 400, 404, 401, 500, 503 */
    const char *type;      /* "BadRequestError", "NotFoundError", ... */
    const char *param;     /* the offending field, or NULL */
    char message[1024];
} srv_error;

/* Fill e and return -1 (for `return srv_fail(...)`). The type follows the
 * status as vLLM's create_error_response names it (400 "BadRequestError", 404
 * "NotFoundError", ...). */
int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A 400 of the kind vLLM's FastAPI layer answers before its handlers run
 * (body not JSON, wrong field types, the request models' own validators):
 * type "Bad Request" (HTTPStatus.BAD_REQUEST.phrase). */
int srv_fail_parse(srv_error *e, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What requests are checked against: the model, its tokenizer and template,
 * and the server's settings. Read-only while the server runs. */
typedef struct {
    const tok_tokenizer *tok;        /* NULL: token-id prompts only (no chat) */
    const tmpl_template *tmpl;       /* the model's (or --chat-template) chat template; NULL: none */
    int harmony;                     /* gpt-oss (model_type gpt_oss): chat prompts are harmony's (template/harmony.h),
                                        as vLLM's harmony path; the chat template is not used */
    const char *bos_token, *eos_token, *unk_token, *pad_token; /* for the template */
    const char *const *names;        /* served model names */
    int n_names;
    int max_model_len;
    int vocab_size;
    int max_logprobs;
    int priority_scheduling;         /* 0: fcfs, where a request's nonzero `priority` is refused */
    int trust_request_chat_template; /* 0: a request's own `chat_template` is refused */
    struct so_cache *so_cache;       /* compiled structured-output grammars (structured.h); NULL: none kept */
    const toolp_parser *tool_parser; /* --enable-auto-tool-choice --tool-call-parser; NULL: "auto" is a 400 */
    const toolp_parser *reasoning_parser; /* --reasoning-parser; NULL: none */
    int content_format;              /* --chat-template-content-format: SRV_CONTENT_* (AUTO: detect per template) */
    int tmpl_content_format;         /* what AUTO detects for tmpl (SRV_CONTENT_STRING or _OPENAI) */
    struct lora_registry *loras;     /* --enable-lora: `model` may name an adapter (lora/registry.h); NULL: off */
    int max_seqs_per_request;        /* prompts x n (0: no bound, for tests and the fuzz target) */
    long long max_prompt_tokens_per_request; /* prompt tokens over all prompts (0: no bound) */
    /* generation_config.json defaults (vLLM's default_sampling_params) */
    int has_temperature, has_top_p, has_top_k, has_min_p, has_repetition_penalty, has_max_new_tokens;
    float temperature, top_p, min_p, repetition_penalty;
    int top_k, max_new_tokens;
} srv_ctx;

typedef struct {
    int chat;
    int n_prompts;
    int32_t **ids;               /* [n_prompts][len[i]] prompt token ids */
    int *len;
    char **text;                 /* [n_prompts] prompt text for echo (the given string or the decoded ids) */
    eng_sampling_params sp;      /* validated and normalized, shared by every prompt */
    int stream, include_usage, continuous_usage;
    int echo;
    int logprobs;                /* top-N asked for output tokens; -1: none */
    int priority;
    char *echo_prefix;           /* chat echo: the final assistant message's content, else NULL */
    int *max_tokens;             /* [n_prompts] the max_tokens each prompt runs with */
    int tokens_as_ids;           /* return_tokens_as_token_ids: logprob tokens as "token_id:N" */
    int tool_mode;               /* chat: TOOL_NONE, TOOL_AUTO, TOOL_REQUIRED or TOOL_NAMED (tools.h); for the
                                    last two sp.grammar is the tools' schema */
    char *tool_name;             /* TOOL_NAMED: the function tool_choice names */
    at_opts parse;               /* chat: the output parsers the text goes through (TOOL_AUTO, --reasoning-parser) */
    struct cJSON *tools;         /* TOOL_AUTO: a copy of the request's `tools` (parse.tools points here), else NULL */
    eng_lora *lora;              /* `model` named this LoRA adapter: a reference (NULL: the base model) */
    char *lora_name;             /* that name (what responses give as their `model`), else NULL */
} srv_request;

/* Parse body (len bytes, not necessarily NUL-terminated). A `model` that is neither a served name nor
 * (with c->loras) an adapter is vLLM's 404. */
int srv_parse_request(const srv_ctx *c, const char *body, size_t len, int chat, srv_request *out, srv_error *err);
void srv_request_free(srv_request *r);

/* POST /tokenize and /detokenize bodies: *out is the JSON response. */
int srv_tokenize(const srv_ctx *c, const char *body, size_t len, char **out, size_t *out_len, srv_error *err);
int srv_detokenize(const srv_ctx *c, const char *body, size_t len, char **out, size_t *out_len, srv_error *err);

#endif
