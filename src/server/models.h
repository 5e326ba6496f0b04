/* models: what vLLM's OpenAIServingModels does for `vllmc serve`: the /v1/models list (the served
 * names, then one card per LoRA adapter), POST /v1/load_lora_adapter and /v1/unload_lora_adapter
 * (only with VLLM_ALLOW_RUNTIME_LORA_UPDATING; http.c routes them), and the adapter names that
 * vllm:lora_requests_info reports. The adapters are the registry's (lora/registry.h,
 * srv_config.loras, thread-safe); this module keeps only the name of every adapter id a request has
 * run with (srv_server.lora_seen, under lora_mu), since the engine reports ids and an adapter
 * unloaded while its requests run is no longer in the registry. */
#ifndef VLLMC_SERVER_MODELS_H
#define VLLMC_SERVER_MODELS_H

#include <stddef.h>

#include "base/sbuf.h"
#include "server/internal.h"

struct srv_lora_name {
    int id;
    char *name;
};

/* The body of GET /v1/models: {"object": "list", "data": [cards]} (malloc'd, NULL when out of memory). */
char *models_list(srv_server *s, size_t *len);
/* 1 when name is a served name or a loaded adapter. */
int models_has(srv_server *s, const char *name);
/* POST /v1/load_lora_adapter {"lora_name", "lora_path"} and /v1/unload_lora_adapter {"lora_name"}:
 * 0 with *out vLLM's plain-text "Success: ..." line (malloc'd), or -1 with err (vLLM's statuses,
 * types and wording). Loading reads the adapter's files (a worker thread's job). */
int models_load(srv_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_error *err);
int models_unload(srv_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_error *err);
/* A request runs with adapter `id` named `name`: remember the name. */
void models_seen(srv_server *s, int id, const char *name);
/* "a,b": the names of the adapters with these ids, comma-separated, in that order (malloc'd; NULL when
 * out of memory). */
char *models_names(srv_server *s, const int *ids, int n);
void models_init(srv_server *s);
void models_free(srv_server *s);

#endif
