/* harmony: the prompt of a chat request for gpt-oss (config model_type "gpt_oss"), built as vLLM builds it:
 * not with the Jinja chat template but with OpenAI's openai_harmony library (vLLM's
 * entrypoints/openai/parser/harmony_utils.py: build_harmony_preamble, parse_chat_inputs_to_harmony_messages,
 * render_for_completion; the text is harmony's src/encoding.rs). The prompt is a system message (model
 * identity, knowledge cutoff, the conversation start date, reasoning effort, valid channels), a developer
 * message (the leading system/developer message's text as instructions, the function tools as a TypeScript-like
 * `namespace functions`), the conversation (assistant turns on the analysis/commentary/final channels, tool
 * calls as `to=functions.NAME`, tool results from `functions.NAME`), then `<|start|>assistant`.
 *
 * A rendered prompt is a list of pieces: harmony's formatting tokens (`<|start|>`, `<|message|>`, ...) and
 * text, each text piece tokenized on its own and without special-token matching (tiktoken's encode_ordinary),
 * exactly as harmony renders; hm_tokenize gives those ids. The request's JSON is only read; the prompt owns
 * its text. Bad input (a message shape vLLM refuses, a role harmony lacks, a prompt over HM_MAX_TEXT) is
 * VC_EINVAL with vc_errmsg() saying why (the server's 400), never a crash. */
#ifndef VLLMC_TEMPLATE_HARMONY_H
#define VLLMC_TEMPLATE_HARMONY_H

#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "tokenizer/tokenizer.h"

struct cJSON;

#define HM_MAX_TEXT ((size_t)64 << 20) /* bytes of prompt text; more is VC_EINVAL */

typedef struct {
    size_t off, len; /* bytes of hm_prompt.text */
    int special;     /* 1: a formatting token (its text is the token, e.g. "<|start|>"); 0: plain text */
} hm_piece;

typedef struct {
    sbuf text;     /* every piece in order, NUL-terminated once rendered; U+0000 as a real 0 byte */
    hm_piece *p;   /* [n] */
    size_t n, cap;
} hm_prompt;

/* What the prompt is built from: the fields of an OpenAI chat request. */
typedef struct {
    const struct cJSON *messages; /* the request's `messages` (an array; required) */
    const struct cJSON *tools;    /* `tools` (already checked: srv_check_tools), or NULL: no tools */
    const char *reasoning_effort; /* "low", "medium", "high", or NULL (harmony's default: medium) */
    const char *date;             /* the conversation start date, written as given (hm_start_date) */
} hm_request;

/* Render r into *out (zeroed first; hm_prompt_free it whatever the result). 0, VC_EINVAL, VC_ENOMEM. */
int hm_render(const hm_request *r, hm_prompt *out);

/* The fields of a chat request body `o` (a JSON object) into an hm_request, checking what vLLM's harmony path
 * checks: `messages` a list, `reasoning_effort` one of low/medium/high ("none" and anything else: VC_EINVAL).
 * `tools` are taken as they are (check them first). */
int hm_request_from_body(const struct cJSON *o, const char *date, hm_request *r);

/* The conversation start date vLLM writes: the local date of `now` (seconds since the epoch) as YYYY-MM-DD; with
 * now 0, $VLLM_SYSTEM_START_DATE when set and non-empty (vLLM's own pin, also the tests' hook), else today,
 * as Python's datetime.now() gives it (the UTC date where TZ is unset, as on most servers). */
void hm_start_date(int64_t now, char *buf, size_t size);

/* The prompt's token ids: each formatting token's id, each text piece encoded alone with no special-token
 * matching. VC_EINVAL when the tokenizer lacks a harmony token (not an o200k_harmony tokenizer). */
int hm_tokenize(const hm_prompt *p, const tok_tokenizer *t, tok_ids *out);

void hm_prompt_free(hm_prompt *p);

/* 1 when DIR/config.json says model_type "gpt_oss" (the CLI's test for the harmony path), else 0. */
int hm_dir_is_gpt_oss(const char *dir);

/* The pieces of the tools section (harmony_ts.c), for harmony.c and the unit tests. */
/* harmony's json_schema_to_typescript: a tool's parameters as a TypeScript type, `indent` before nested lines.
 * 0, or VC_EINVAL (nested deeper than the thread's stack allows, or out grew past HM_MAX_TEXT). */
int hm_schema_ts(const struct cJSON *schema, const char *indent, sbuf *out);
/* A JSON value as Rust's serde_json writes it (compact, its string escapes, its float format), as harmony
 * prints a non-string `default`. */
void hm_json_serde(const struct cJSON *v, sbuf *out);

#endif
