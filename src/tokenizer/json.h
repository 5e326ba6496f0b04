/* json: a strict JSON reader for tokenizer files (tokenizer.json can be 33 MB).
 *
 * The whole document is parsed into one arena: values are contiguous arrays
 * of tok_jv (an object's members keep their file order), every string is
 * decoded, NUL-terminated and valid UTF-8 (embedded NULs keep their length).
 * Nothing points into the source text, which may be freed after parsing.
 * Rejects what serde_json rejects: invalid UTF-8, lone surrogate escapes, raw
 * control characters in strings, trailing commas, trailing content; nesting
 * is limited to TOK_JSON_MAX_DEPTH. A leading UTF-8 BOM is skipped. */
#ifndef VLLMC_TOKENIZER_JSON_H
#define VLLMC_TOKENIZER_JSON_H

#include <stddef.h>
#include <stdint.h>

#define TOK_JSON_MAX_DEPTH 200

enum { TOK_J_NULL, TOK_J_FALSE, TOK_J_TRUE, TOK_J_NUM, TOK_J_STR, TOK_J_ARR, TOK_J_OBJ };

typedef struct tok_jv tok_jv;
struct tok_jv {
    const char *key; /* member name (NUL-terminated) when inside an object, else NULL */
    union {
        const char *str;    /* TOK_J_STR: NUL-terminated, `len` bytes */
        const tok_jv *kids; /* TOK_J_ARR / TOK_J_OBJ: `len` values */
        double num;         /* TOK_J_NUM */
    } u;
    uint32_t len;  /* string bytes / number of children */
    uint32_t klen; /* key bytes */
    uint8_t type;
};

typedef struct tok_json tok_json;

int tok_json_parse(const char *src, size_t len, const char *what, tok_json **out);
const tok_jv *tok_json_root(const tok_json *d);
void tok_json_free(tok_json *d);

/* Member `key` of an object (the last one if repeated), NULL if v is not an
 * object or has no such member. */
const tok_jv *tok_jget(const tok_jv *v, const char *key);
/* "a string", "an object", ... for messages. */
const char *tok_jkind(const tok_jv *v);
/* 1 if v is a number with an integral value in [lo, hi] (stored to *out). */
int tok_jint(const tok_jv *v, long long lo, long long hi, long long *out);
/* v is absent or JSON null. */
int tok_jnull(const tok_jv *v);

#endif
