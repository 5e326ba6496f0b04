/* server: `vllmc serve`, vLLM's OpenAI-compatible API server.
 *
 * Threads (docs/ARCHITECTURE.md): libmicrohttpd's few event-loop threads move
 * bytes and turn engine events into JSON or SSE, never blocking; worker
 * threads parse, validate, template, tokenize and queue requests; one engine
 * thread steps the engine while work exists and hands each output to its
 * request's channel, waking the request's suspended connection. Only the
 * engine thread (and the backend's threads) run model compute. */
#ifndef VLLMC_SERVER_SERVER_H
#define VLLMC_SERVER_SERVER_H

#include "lora/registry.h"
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
    int priority_scheduling;          /* --scheduling-policy priority: requests may set `priority` */
    int trust_request_chat_template;  /* --trust-request-chat-template: a request may bring its own template */
    lora_registry *loras;             /* --enable-lora: the adapters requests may name (the caller's); NULL: off */
    int max_loras;                    /* --max-loras (vllm:lora_requests_info's max_lora) */
    const char *tool_call_parser;     /* --enable-auto-tool-choice --tool-call-parser NAME (checked); NULL: off */
    const char *reasoning_parser;     /* --reasoning-parser NAME (checked); NULL: none */
    int content_format;               /* --chat-template-content-format: SRV_CONTENT_* (request.h) */
    int runtime_lora;                 /* VLLM_ALLOW_RUNTIME_LORA_UPDATING: /v1/load_lora_adapter, /v1/unload_lora_adapter */
} srv_config;

/* Load the chat template and generation config, listen, serve until SIGINT or SIGTERM; returns the
 * exit status. */
int srv_run(const srv_config *c);

#endif
