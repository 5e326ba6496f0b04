#include "base/sbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int grow(sbuf *s, size_t add) {
    if (s->oom) return 0;
    if (s->n + add + 1 <= s->cap) return 1;
    size_t nc = s->cap ? s->cap : 256;
    while (nc < s->n + add + 1) nc *= 2;
    char *b = realloc(s->b, nc);
    if (!b) {
        s->oom = 1;
        return 0;
    }
    s->b = b;
    s->cap = nc;
    return 1;
}

void sb_raw(sbuf *s, const char *p, size_t n) {
    if (!grow(s, n)) return;
    memcpy(s->b + s->n, p, n);
    s->n += n;
    s->b[s->n] = 0;
}

void sb_str(sbuf *s, const char *z) { sb_raw(s, z, strlen(z)); }

void sb_printf(sbuf *s, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_raw(s, tmp, (size_t)n);
        return;
    }
    if (!grow(s, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(s->b + s->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->n += (size_t)n;
}

/* Length of the valid UTF-8 sequence at p (1-4), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t l;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) l = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) l = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) l = 4, min = 0x10000;
    else return 0;
    if (l > n) return 0;
    unsigned cp = c & (0x3F >> (l - 1));
    for (size_t i = 1; i < l; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return l;
}

void sb_jstr(sbuf *s, const char *p, size_t n) {
    const unsigned char *u = (const unsigned char *)p;
    sb_raw(s, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        const char *esc = NULL;
        char tmp[8];
        size_t l = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c == 0xC0 && i + 1 < n && u[i + 1] == 0x80) { /* U+0000 as js_parse stores it */
            esc = "\\u0000";
            l = 2;
        } else if (c >= 0x80 && !(l = utf8_len(u + i, n - i))) {
            esc = "\xEF\xBF\xBD";
            l = 1;
        }
        if (esc) {
            sb_raw(s, p + run, i - run);
            sb_str(s, esc);
            run = i + l;
        }
        i += l;
    }
    sb_raw(s, p + run, n - run);
    sb_raw(s, "\"", 1);
}

void sb_jstrz(sbuf *s, const char *z) {
    if (z) sb_jstr(s, z, strlen(z));
    else sb_str(s, "null");
}

void sb_jfloat(sbuf *s, double v) {
    if (isnan(v)) sb_str(s, "null");
    else if (v < -9999.0) sb_str(s, "-9999.0");
    else if (v > 1e300) sb_str(s, "1e300");
    else {
        char tmp[40];
        int n = snprintf(tmp, sizeof tmp, "%.9g", v);
        /* Python prints floats with a dot or an exponent: 0.0, not 0 */
        if (!strpbrk(tmp, ".eEn")) snprintf(tmp + n, sizeof tmp - (size_t)n, ".0");
        sb_str(s, tmp);
    }
}

char *sb_take(sbuf *s, size_t *len) {
    char *b = s->oom ? NULL : s->b;
    if (!b && !s->oom) b = calloc(1, 1);
    if (s->oom) free(s->b);
    if (len) *len = b ? s->n : 0;
    memset(s, 0, sizeof *s);
    return b;
}

void sb_free(sbuf *s) {
    free(s->b);
    memset(s, 0, sizeof *s);
}

void sb_fput_jstr(FILE *f, const char *p, size_t n) {
    sbuf s = {0};
    sb_jstr(&s, p, n);
    if (s.b) fwrite(s.b, 1, s.n, f);
    sb_free(&s);
}
