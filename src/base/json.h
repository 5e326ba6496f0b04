/* json: the project's one strict JSON reader. js_parse reads exactly one JSON value (RFC 8259, with
 * Python's json.loads semantics) into a cJSON tree, so callers keep cJSON's getters; the caller owns
 * the tree (cJSON_Delete). It is iterative: at most JS_MAX_DEPTH containers may be open, so neither
 * the parse nor cJSON's recursive functions on its trees (Delete, Duplicate, Print, Compare) can
 * overflow a thread's stack. Invariants of the trees it builds: an object holds each key once (a
 * duplicate key's last value replaces the first in place, as a Python dict does); strings are valid
 * UTF-8 except that U+0000 is stored as the bytes C0 80 (see js_unmask_nul); a number keeps its
 * source literal in valuestring (for js_int64), valuedouble/valueint are set as cJSON sets them. */
#ifndef VLLMC_BASE_JSON_H
#define VLLMC_BASE_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Containers open at once; the 513th is refused. cJSON's recursion on such a tree stays well under
 * 100 KiB of stack. */
#define JS_MAX_DEPTH 512

typedef struct {
    /* Python's wording plus the place: "Expecting ',' delimiter: line 1 column 7 (char 6)";
     * just "out of memory" when an allocation failed. */
    char message[256];
    size_t offset;       /* bytes from the start of the text */
    size_t line, column; /* 1-based; the column counts characters (code points), as Python does */
    int oom;             /* 1 when the failure was an allocation, not the text */
} js_error;

/* Parse the `len` bytes at `text` (no NUL terminator needed): one value with only space, tab, LF
 * and CR around it. Returns the tree, or NULL with *err filled (err may be NULL).
 * Refused where Python's json.loads accepts: NaN, Infinity and -Infinity; \u escapes of lone
 * surrogates (the string could not be UTF-8); a leading UTF-8 BOM (json.loads of a str refuses it
 * too). Numbers too large for a double become +-inf, as in Python. Sizes are not bounded. */
cJSON *js_parse(const char *text, size_t len, js_error *err);

/* The exact integer value of a number item: 0 and *out set, or -1 when `item` is not a number, not
 * an integer, or outside int64. A literal without '.', 'e' or 'E' is read exactly (so
 * 9223372036854775807 works); one with them counts when its double value is integral and within
 * +-2^53 (1e2, 1.0). Items not from js_parse (no literal) are judged by their double value. */
int js_int64(const cJSON *item, long long *out);
/* Member k of object o, or NULL when it is missing or null (how request fields are read: a null is
 * as good as absent, as in vLLM's pydantic models). */
const cJSON *js_field(const cJSON *o, const char *k);

/* Turn each C0 80 pair in the n bytes at s into a real 0 byte, in place; returns the new length and,
 * when it shrank, writes a 0 at s[new length]. For text handed on with its length (the tokenizer). */
size_t js_unmask_nul(char *s, size_t n);

#endif
