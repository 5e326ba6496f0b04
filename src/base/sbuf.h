/* sbuf: a growable byte buffer for building JSON and Prometheus text, and the
 * project's one JSON string writer (the server's responses and the CLI's output).
 * Allocation failure is sticky: `oom` is set and later appends do nothing,
 * so callers check once at the end. */
#ifndef VLLMC_BASE_SBUF_H
#define VLLMC_BASE_SBUF_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    char *b;
    size_t n, cap;
    int oom;
} sbuf;

void sb_raw(sbuf *s, const char *p, size_t n);
void sb_str(sbuf *s, const char *z);
void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of n bytes: escapes as Python's json.dumps(ensure_ascii=False)
 * does, writes the pair C0 80 (U+0000 as js_parse stores it, see base/json.h) as \u0000,
 * and other invalid UTF-8 bytes as U+FFFD so the output is always valid JSON. */
void sb_jstr(sbuf *s, const char *p, size_t n);
void sb_jstrz(sbuf *s, const char *z); /* NULL: null */
/* A float as JSON: finite values round-trip (%.9g is exact for f32); -inf
 * becomes -9999.0 as vLLM clamps logprobs; NaN becomes null. */
void sb_jfloat(sbuf *s, double v);
/* Write sb_jstr's literal to a stream (the CLI's JSON output). */
void sb_fput_jstr(FILE *f, const char *p, size_t n);
/* Take the buffer (NUL-terminated; NULL on oom) and reset s. */
char *sb_take(sbuf *s, size_t *len);
void sb_free(sbuf *s);

#endif
