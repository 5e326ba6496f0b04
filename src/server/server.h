/* server: `vllmc serve`, vLLM's OpenAI-compatible API server.
 *
 * Threads (docs/ARCHITECTURE.md): libmicrohttpd runs one thread per
 * connection; those threads parse, validate, tokenize, queue requests and
 * turn engine events into JSON or SSE. One engine thread steps the engine
 * while work exists and hands each output to its request's channel. HTTP
 * threads never run model compute. */
#ifndef VLLMC_SERVER_SERVER_H
#define VLLMC_SERVER_SERVER_H

#include "stack.h"

typedef struct {
    const stk_stack *stk;             /* model folder, backend, tokenizer, model and engine (the caller's) */
    const char *host;                 /* NULL: every interface */
    int port;                         /* 8000; 0: any free port */
    const char **names;               /* --served-model-name (NULL: the model argument) */
    int n_names;
    const char **api_keys;            /* --api-key / VLLM_API_KEY */
    int n_api_keys;
    const char *chat_template;        /* file or inline template (--chat-template) */
    const char *generation_config;    /* auto | vllm | DIR */
    int prompt_tokens_details;        /* --enable-prompt-tokens-details */
    int log_requests;                 /* --enable-log-requests */
    int log_stats;                    /* 0 with --disable-log-stats */
    int access_log;                   /* uvicorn's access log (--uvicorn-log-level info and below) */
    double shutdown_grace_s;          /* SIGINT/SIGTERM: how long in-flight requests may finish */
    int max_logprobs;                 /* the engine's --max-logprobs, for request validation */
} srv_config;

/* Load the chat template and generation config, listen, serve until SIGINT or SIGTERM; returns the
 * exit status. */
int srv_run(const srv_config *c);

#endif
