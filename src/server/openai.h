/* openai: POST /v1/completions and /v1/chat/completions from a parsed
 * request to vLLM's response JSON or its SSE stream (serving_completion.py,
 * serving_chat.py). Nothing here blocks: the HTTP layer starts a job (on a
 * worker thread: parsing, templating, tokenizing), attaches its connection so
 * the engine's events wake it, and polls the job each time it is woken. A job
 * freed before it finished (the client went away) aborts its engine requests,
 * which frees their KV blocks. */
#ifndef VLLMC_SERVER_OPENAI_H
#define VLLMC_SERVER_OPENAI_H

#include <stddef.h>

#include "server/internal.h"
#include "base/sbuf.h"

typedef struct oa_job oa_job;

/* Parse, validate and queue. On failure *err says what to answer. */
int oa_start(srv_server *s, const char *body, size_t len, int chat, oa_job **out, srv_error *err);
int oa_is_stream(const oa_job *j);
/* Wake w (srv_wake) whenever the job's engine requests produce something. */
void oa_attach(oa_job *j, srv_conn *w);
/* Non-streaming: take what the engine produced. Returns 0 (not finished), 1
 * (finished: the response body is set) or -1 (*err set: the engine failed or
 * the server is shutting down). */
int oa_poll(oa_job *j, char **body, size_t *len, srv_error *err);
/* Streaming: append the SSE events ready now to out (maybe none); *done once
 * `data: [DONE]` is in out. A failed job ends with an error event and [DONE]. */
int oa_stream(oa_job *j, sbuf *out, int *done);
/* Abort whatever is unfinished and free. */
void oa_free(oa_job *j);

/* The error body {"error": {...}} for e. */
char *oa_error_json(const srv_error *e, size_t *len);

#endif
