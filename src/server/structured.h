/* structured: a request's structured-output fields -> a compiled grammar
 * (src/grammar/), as vLLM reads them: `response_format` ({"type": "text" |
 * "json_object" | "json_schema", "json_schema": {"name", "schema",
 * "strict"}}), `structured_outputs` ({"json" | "regex" | "choice" | "grammar"
 * | "json_object", "disable_any_whitespace"}) and the older `guided_json`,
 * `guided_regex`, `guided_choice`, `guided_grammar` (removed in vLLM 0.12,
 * accepted for older clients; `guided_decoding_backend` is ignored). At most
 * one constraint per request. Compiled grammars are kept in an LRU cache keyed
 * by the constraint's kind, text and options, so a repeated schema skips
 * compilation; the cache is shared by the request workers (locked). The
 * reading, compiling and cache are grammar/spec.h's; this adapter words its
 * errors as vLLM's HTTP errors. */
#ifndef VLLMC_SERVER_STRUCTURED_H
#define VLLMC_SERVER_STRUCTURED_H

#include <cjson/cJSON.h>

#include "grammar/grammar.h"
#include "server/request.h"

typedef struct so_cache so_cache;

int so_cache_new(int capacity, so_cache **out);
void so_cache_free(so_cache *c);

/* Read the request's constraint. 0 and *g NULL: none; 0 and *g set: the grammar, with one reference
 * for the caller (gram_free releases it); -1: *err says why (400 naming the field, 500 out of memory). */
int so_from_request(so_cache *c, const cJSON *body, gram_grammar **g, srv_error *err);

#endif
