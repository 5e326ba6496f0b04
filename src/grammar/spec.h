/* spec: a structured-output constraint as a request states it (its kind, its
 * text, its options) -> a compiled grammar (grammar.h), with no knowledge of
 * who asked. The server reads it from a request body (server/structured.c),
 * `vllmc generate` from its flags and from each --prompts-file line.
 *
 * gram_spec_read takes the fields vLLM reads: `response_format` ({"type":
 * "text" | "json_object" | "json_schema", "json_schema": {"name", "schema",
 * "strict"}}), `structured_outputs` ({"json" | "regex" | "choice" | "grammar" |
 * "json_object", "disable_any_whitespace"}) and the older `guided_json`,
 * `guided_regex`, `guided_choice`, `guided_grammar`. At most one constraint.
 * A spec borrows its value from the cJSON object it was read from, which
 * must outlive it. Errors are plain data (gram_spec_error): a message and the
 * field it is about, which the caller words as a 400 or a command-line error.
 *
 * A compile is bounded (GRAM_SPEC_MAX_ELEMS grammar elements, repeats up to
 * GRAM_SPEC_MAX_REPEAT). gram_spec_cache keeps compiled grammars by kind,
 * options and text (LRU, locked: any thread may use it). */
#ifndef VLLMC_GRAMMAR_SPEC_H
#define VLLMC_GRAMMAR_SPEC_H

#include <cjson/cJSON.h>

#include "grammar/grammar.h"

#define GRAM_SPEC_MAX_ELEMS 400000
#define GRAM_SPEC_MAX_REPEAT 1000

typedef enum {
    GRAM_SPEC_NONE,
    GRAM_SPEC_JSON,        /* value: a JSON Schema (an object or boolean, or a string holding one) */
    GRAM_SPEC_REGEX,       /* value: a string, matched whole */
    GRAM_SPEC_CHOICE,      /* value: a non-empty array of strings */
    GRAM_SPEC_GRAMMAR,     /* value: a string of GBNF */
    GRAM_SPEC_JSON_OBJECT, /* value: NULL; any JSON object */
} gram_spec_kind;

typedef struct {
    gram_spec_kind kind;
    const cJSON *value;    /* borrowed, see gram_spec_kind */
    const char *field;     /* where it came from, for messages ("guided_regex", "--regex"); borrowed */
    int strict;            /* json_schema.strict: additionalProperties false by default */
    int any_ws;            /* 1 (default): whitespace allowed between JSON tokens; 0: disable_any_whitespace */
    int text;              /* response_format type "text" was given: no constraint, said outright */
    const char *ws_pattern; /* whitespace_pattern: a regex for the whitespace between JSON tokens (borrowed;
                               NULL: the default run; it wins over any_ws) */
} gram_spec;

typedef struct {
    int code;              /* VC_EINVAL: the spec is wrong; VC_ENOMEM: out of memory */
    int shape;             /* with VC_EINVAL, 1: a field has the wrong type or shape (what a request model's
                              validation refuses); 0: the value is refused (a bad regex, two constraints) */
    const char *field;     /* the field it is about (a static name or the spec's field); NULL: none */
    char message[1024];
} gram_spec_error;

/* No constraint, whitespace allowed. */
void gram_spec_init(gram_spec *s);
/* Set s's constraint; VC_EINVAL when it already has one ("only use one kind", naming both fields). */
int gram_spec_set(gram_spec *s, gram_spec_kind kind, const cJSON *value, const char *field, gram_spec_error *err);
/* Read the constraint fields of obj (a request body, a prompts-file line) into s (initialized here).
 * 0 with kind NONE: none given. */
int gram_spec_read(const cJSON *obj, gram_spec *s, gram_spec_error *err);
/* Compile s (kind not NONE) into *g (one reference for the caller). A refused value is VC_EINVAL with
 * the message "FIELD: what is wrong". With a cache (may be NULL), an equal spec compiled before is
 * shared and a new one kept. */
typedef struct gram_spec_cache gram_spec_cache;
int gram_spec_compile(gram_spec_cache *c, const gram_spec *s, gram_grammar **g, gram_spec_error *err);

/* A cache of at most capacity grammars (< 1: 1). */
int gram_spec_cache_new(int capacity, gram_spec_cache **out);
void gram_spec_cache_free(gram_spec_cache *c);

#endif
