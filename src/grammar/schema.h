/* schema: JSON Schema -> grammar (grammar.h), the front end behind
 * `response_format: json_schema`, `structured_outputs.json` and `guided_json`.
 *
 * The subset real schemas use (draft 2020-12 spelling, with the older
 * `definitions` too): type (one or a list), properties (emitted in the
 * schema's order, as vLLM's grammar backends do), required,
 * additionalProperties (false by default in strict mode, else any extra
 * members after the declared ones), items, prefixItems, minItems/maxItems,
 * enum, const, anyOf/oneOf (oneOf as anyOf: exclusivity is not enforced),
 * allOf (merged), $ref to "#", "#/$defs/..." and "#/definitions/..."
 * (recursion allowed), minLength/maxLength, pattern (a full match, via the
 * regex front end), format date/time/date-time/uuid/email/ipv4, integer
 * minimum/maximum/exclusiveMinimum/exclusiveMaximum. Keywords that constrain
 * values but are not supported (not, if/then/else, uniqueItems, contains,
 * patternProperties, multipleOf, number bounds, ...) are an error naming the
 * keyword, never ignored; annotations (title, description, default,
 * examples, $schema, $id, $comment, ...) are ignored.
 *
 * Output is compact JSON plus, where any_whitespace is set, at most one
 * whitespace run between tokens: a space, or a newline and up to 32 spaces
 * of indentation, so a model cannot run away in whitespace. */
#ifndef VLLMC_GRAMMAR_SCHEMA_H
#define VLLMC_GRAMMAR_SCHEMA_H

#include <cjson/cJSON.h>

#include "grammar/compile.h"

typedef struct {
    int any_whitespace;      /* 0: no whitespace at all (disable_any_whitespace) */
    int strict;              /* additionalProperties defaults to false */
    gram_limits lim;
    const char *ws_pattern;  /* not NULL: the whitespace between tokens is this regex (whitespace_pattern),
                              * whatever any_whitespace says */
} gram_schema_opts;

/* *out is the grammar of the JSON documents valid against schema. Errors are VC_EINVAL with a
 * message naming the keyword and where it is ("schema.properties.age: 'minimum' 5 is above
 * 'maximum' 1"). */
int gram_from_json_schema(const cJSON *schema, const gram_schema_opts *o, gram_grammar **out);

#endif
