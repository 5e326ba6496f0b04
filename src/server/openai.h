/* openai: POST /v1/completions and /v1/chat/completions from a parsed
 * request to vLLM's response JSON or its SSE stream (serving_completion.py,
 * serving_chat.py). The HTTP layer feeds bodies in and writes out what comes
 * back; `alive` tells whether the client is still connected (a gone client's
 * request is aborted and its KV blocks freed). */
#ifndef VLLMC_SERVER_OPENAI_H
#define VLLMC_SERVER_OPENAI_H

#include <stddef.h>

#include "server/internal.h"
#include "base/sbuf.h"

typedef struct oa_job oa_job;
typedef int (*oa_alive_fn)(void *ctx);

/* Parse, validate and queue. On failure *err says what to answer. */
int oa_start(srv_server *s, const char *body, size_t len, int chat, oa_job **out, srv_error *err);
int oa_is_stream(const oa_job *j);
/* Non-streaming: wait for every completion, then the response body. Returns
 * 0 (body set), -1 (*err set) or 1 (the client went away; aborted). */
int oa_wait(oa_job *j, oa_alive_fn alive, void *ctx, char **body, size_t *len, srv_error *err);
/* Streaming: append the next SSE events to out (waits for at least one).
 * *done once `data: [DONE]` is in out. Returns 1 if the client went away. */
int oa_stream(oa_job *j, oa_alive_fn alive, void *ctx, sbuf *out, int *done);
/* Abort whatever is unfinished and free. */
void oa_free(oa_job *j);

/* The error body {"error": {...}} for e. */
char *oa_error_json(const srv_error *e, size_t *len);

#endif
