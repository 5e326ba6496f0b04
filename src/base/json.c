/* json: an iterative RFC 8259 reader that builds cJSON trees (see json.h). Containers are attached
 * to their parent when they open, so the partial tree is always reachable from the root and one
 * cJSON_Delete frees it on any error. Every allocation goes through cJSON's hooks (cJSON_malloc), so
 * a test can make any of them fail. */
#include "base/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cJSON *node;  /* the open array or object */
    size_t first; /* object: its first member in js_parser.mem */
} js_frame;

/* One member of an open object, kept until the object closes to find duplicate keys in
 * O(n log n) by sorting (a hash set would be open to chosen collisions). */
typedef struct {
    cJSON *item;
    size_t seq; /* order of appearance, so equal keys sort first to last */
} js_member;

typedef struct {
    const unsigned char *s;
    size_t n, i;           /* text, its length, the read position (bytes) */
    js_frame *stk;         /* [depth] open containers, innermost last */
    size_t depth, stk_cap;
    js_member *mem;        /* [n_mem] members of the open objects, innermost last */
    size_t n_mem, mem_cap;
    char *key;             /* the key of the object member being read (owned until attached) */
    cJSON *root;
    js_error *err;
} js_parser;

/* ---- errors ---- */

static int fail(js_parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(js_parser *p, size_t at, const char *fmt, ...) {
    js_error *e = p->err;
    if (!e) return -1;
    size_t line = 1, col = 1, ch = 0;
    for (size_t i = 0; i < at && i < p->n; i++) {
        if ((p->s[i] & 0xC0) == 0x80) continue; /* a UTF-8 continuation byte: same character */
        ch++;
        if (p->s[i] == '\n') line++, col = 1;
        else col++;
    }
    char what[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(e->message, sizeof e->message, "%s: line %zu column %zu (char %zu)", what, line, col, ch);
    e->offset = at;
    e->line = line;
    e->column = col;
    return -1;
}

static int oom(js_parser *p) {
    if (p->err) {
        fail(p, p->i, "out of memory");
        snprintf(p->err->message, sizeof p->err->message, "out of memory");
        p->err->oom = 1;
    }
    return -1;
}

/* ---- growable arrays (through cJSON's allocator) ---- */

/* arr with room for `need` elements (moved when it grew), or NULL with arr and *cap unchanged. */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return arr;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *b = nc <= (size_t)-1 / elem ? cJSON_malloc(nc * elem) : NULL;
    if (!b) return NULL;
    if (*cap) memcpy(b, arr, *cap * elem);
    cJSON_free(arr);
    *cap = nc;
    return b;
}

/* ---- strings ---- */

/* Length of the valid UTF-8 sequence at p (2-4 bytes, p[0] >= 0x80), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0], cp, min;
    size_t l;
    if (c >= 0xC2 && c <= 0xDF) l = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) l = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) l = 4, min = 0x10000;
    else return 0;
    if (l > n) return 0;
    cp = c & (0x3F >> (l - 1));
    for (size_t i = 1; i < l; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return l;
}

/* Code point cp as UTF-8 at o; U+0000 as C0 80. Returns the bytes written. */
static size_t put_utf8(char *o, unsigned cp) {
    unsigned char *u = (unsigned char *)o;
    if (cp > 0 && cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) { /* U+0000 too: C0 80 */
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The 4 hex digits of a \u escape whose backslash is at i (before lim); -1 if not there. */
static long hex4(const js_parser *p, size_t i, size_t lim) {
    if (i + 6 > lim || p->s[i] != '\\' || p->s[i + 1] != 'u') return -1;
    long v = 0;
    for (size_t k = i + 2; k < i + 6; k++) {
        unsigned c = p->s[k], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') d = (c | 0x20) - 'a' + 10;
        else return -1;
        v = v << 4 | (long)d;
    }
    return v;
}

/* The escape whose backslash is at *i (i + 1 < lim): decoded to o; *i moves past it. */
static int escape(js_parser *p, size_t *i, size_t lim, char *o, size_t *olen) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    unsigned c = p->s[*i + 1];
    const char *k = c ? strchr(from, (int)c) : NULL;
    if (k) {
        o[(*olen)++] = to[k - from];
        *i += 2;
        return 0;
    }
    if (c != 'u') return fail(p, *i, "Invalid \\escape");
    long hi = hex4(p, *i, lim), lo = -1;
    if (hi < 0) return fail(p, *i, "Invalid \\uXXXX escape");
    if (hi >= 0xD800 && hi <= 0xDBFF && (lo = hex4(p, *i + 6, lim)) >= 0xDC00 && lo <= 0xDFFF) {
        *olen += put_utf8(o + *olen, (unsigned)(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)));
        *i += 12;
        return 0;
    }
    if (hi >= 0xD800 && hi <= 0xDFFF)
        return fail(p, *i, "Invalid \\uXXXX escape: lone surrogate \\u%04lx (text with it cannot be UTF-8)", hi);
    *olen += put_utf8(o + *olen, (unsigned)hi);
    *i += 6;
    return 0;
}

/* The string whose opening quote is at p->i, decoded into a cJSON_malloc'd buffer. The closing
 * quote is found first so the buffer can be sized: decoding never makes text longer. */
static int parse_string(js_parser *p, char **out) {
    size_t start = p->i, end = start + 1;
    while (end < p->n && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    size_t lim = end < p->n ? end : p->n, i = start + 1, o = 0;
    char *b = cJSON_malloc(lim - i + 1);
    if (!b) return oom(p);
    while (i < lim) {
        unsigned c = p->s[i];
        size_t l = 1;
        if (c == '\\') {
            if (i + 1 >= lim) { /* the input ends inside the escape */
                fail(p, start, "Unterminated string starting at");
                goto err;
            }
            if (escape(p, &i, lim, b, &o)) goto err;
            continue;
        }
        if (c < 0x20) {
            fail(p, i, "Invalid control character at");
            goto err;
        }
        if (c >= 0x80 && !(l = utf8_len(p->s + i, lim - i))) {
            fail(p, i, "Invalid UTF-8 (byte 0x%02x) in string at", c);
            goto err;
        }
        memcpy(b + o, p->s + i, l);
        o += l, i += l;
    }
    if (end >= p->n) {
        fail(p, start, "Unterminated string starting at");
        goto err;
    }
    b[o] = 0;
    p->i = end + 1;
    *out = b;
    return 0;
err:
    cJSON_free(b);
    return -1;
}

/* ---- numbers and literals ---- */

static int is_digit(const js_parser *p, size_t i) { return i < p->n && p->s[i] >= '0' && p->s[i] <= '9'; }

static size_t digits(const js_parser *p, size_t i) {
    while (is_digit(p, i)) i++;
    return i;
}

/* A number per the JSON grammar at p->i (which is '-' or a digit). Like Python, the longest valid
 * prefix is the number ("01" is 0, then "1" is unexpected). */
static int parse_number(js_parser *p, cJSON **out) {
    size_t st = p->i, i = st + (p->s[st] == '-');
    if (!is_digit(p, i)) return fail(p, st, "Expecting value");
    i = p->s[i] == '0' ? i + 1 : digits(p, i);
    if (i < p->n && p->s[i] == '.' && is_digit(p, i + 1)) i = digits(p, i + 1);
    if (i < p->n && (p->s[i] == 'e' || p->s[i] == 'E')) {
        size_t j = i + 1 + (i + 1 < p->n && (p->s[i + 1] == '+' || p->s[i + 1] == '-'));
        if (is_digit(p, j)) i = digits(p, j);
    }
    char *lit = cJSON_malloc(i - st + 1);
    if (!lit) return oom(p);
    memcpy(lit, p->s + st, i - st);
    lit[i - st] = 0;
    cJSON *item = cJSON_CreateNumber(strtod(lit, NULL));
    if (!item) {
        cJSON_free(lit);
        return oom(p);
    }
    item->valuestring = lit; /* cJSON_Delete frees it and cJSON_Duplicate copies it, for any type */
    p->i = i;
    *out = item;
    return 0;
}

static int has(const js_parser *p, const char *word) {
    size_t k = strlen(word);
    return p->n - p->i >= k && memcmp(p->s + p->i, word, k) == 0;
}

/* A scalar value at p->i, or an error naming what was found. */
static int parse_scalar(js_parser *p, cJSON **out) {
    unsigned c = p->i < p->n ? p->s[p->i] : 0;
    char *s;
    if (c == '"') {
        if (parse_string(p, &s)) return -1;
        if (!(*out = cJSON_CreateStringReference(s))) {
            cJSON_free(s);
            return oom(p);
        }
        (*out)->type = cJSON_String; /* owns s: not a reference */
        return 0;
    }
    if (has(p, "NaN") || has(p, "Infinity") || has(p, "-Infinity"))
        return fail(p, p->i, "Expecting value (NaN and Infinity are not JSON)");
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
    int word = has(p, "true") ? 4 : has(p, "false") ? 5 : has(p, "null") ? 4 : 0;
    if (!word) return fail(p, p->i, "Expecting value");
    *out = c == 't' ? cJSON_CreateTrue() : c == 'f' ? cJSON_CreateFalse() : cJSON_CreateNull();
    if (!*out) return oom(p);
    p->i += (size_t)word;
    return 0;
}

/* ---- containers ---- */

static void skip_ws(js_parser *p) {
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

/* Put a new value into the open container (or make it the root), under the pending key. */
static int attach(js_parser *p, cJSON *item) {
    if (!p->depth) {
        p->root = item;
        return 0;
    }
    js_frame *f = &p->stk[p->depth - 1];
    if (cJSON_IsObject(f->node)) {
        item->string = p->key;
        p->key = NULL;
    }
    cJSON_AddItemToArray(f->node, item); /* appends to objects too: ->prev of the first is the last */
    if (!cJSON_IsObject(f->node)) return 0;
    js_member *m = grow(p->mem, &p->mem_cap, p->n_mem + 1, sizeof *m);
    if (!m) return oom(p);
    p->mem = m;
    m[p->n_mem] = (js_member){item, p->n_mem};
    p->n_mem++;
    return 0;
}

static int open_container(js_parser *p, int is_object) {
    if (p->depth == JS_MAX_DEPTH) return fail(p, p->i, "nested too deeply (more than %d levels)", JS_MAX_DEPTH);
    cJSON *c = is_object ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!c) return oom(p);
    if (attach(p, c)) return -1; /* attached even on failure: freed with the tree */
    js_frame *stk = grow(p->stk, &p->stk_cap, p->depth + 1, sizeof *stk);
    if (!stk) return oom(p);
    p->stk = stk;
    stk[p->depth++] = (js_frame){c, p->n_mem};
    p->i++;
    return 0;
}

static int member_cmp(const void *a, const void *b) {
    const js_member *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Python's dict: a repeated key stays where it first appeared, with the last value. */
static void merge_duplicates(cJSON *obj, js_member *m, size_t k) {
    for (size_t j = 1; j + 1 < k; j++) cJSON_Delete(cJSON_DetachItemViaPointer(obj, m[j].item));
    cJSON_ReplaceItemViaPointer(obj, m[0].item, cJSON_DetachItemViaPointer(obj, m[k - 1].item));
}

static void close_container(js_parser *p) {
    js_frame *f = &p->stk[--p->depth];
    p->i++;
    size_t n = p->n_mem - f->first;
    if (!cJSON_IsObject(f->node) || n < 2) {
        p->n_mem = f->first;
        return;
    }
    js_member *m = p->mem + f->first;
    qsort(m, n, sizeof *m, member_cmp);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a + 1; b < n && strcmp(m[a].item->string, m[b].item->string) == 0; b++) continue;
        if (b - a > 1) merge_duplicates(f->node, m + a, b - a);
    }
    p->n_mem = f->first;
}

/* At an object's key: read it and the ':' after it. */
static int parse_key(js_parser *p) {
    if (p->i >= p->n || p->s[p->i] != '"')
        return fail(p, p->i, "Expecting property name enclosed in double quotes");
    if (parse_string(p, &p->key)) return -1;
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != ':') return fail(p, p->i, "Expecting ':' delimiter");
    p->i++;
    return 0;
}

/* A value is wanted at p->i. Returns 1 if an empty-or-not container opened and its first member
 * (or its end) comes next, 0 after a complete value, -1 on error. */
static int value(js_parser *p) {
    skip_ws(p);
    unsigned c = p->i < p->n ? p->s[p->i] : 0;
    if (c == '{' || c == '[') {
        if (open_container(p, c == '{')) return -1;
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == (c == '{' ? '}' : ']')) {
            close_container(p);
            return 0;
        }
        return c == '{' ? (parse_key(p) ? -1 : 1) : 1;
    }
    cJSON *item = NULL;
    if (parse_scalar(p, &item)) return -1;
    if (attach(p, item)) return -1;
    return 0;
}

/* After a complete value inside a container: ',' (1: another value comes) or the close (0). */
static int after_value(js_parser *p) {
    skip_ws(p);
    int obj = cJSON_IsObject(p->stk[p->depth - 1].node);
    unsigned c = p->i < p->n ? p->s[p->i] : 0;
    if (c == ',') {
        p->i++;
        if (!obj) return 1;
        skip_ws(p);
        return parse_key(p) ? -1 : 1;
    }
    if (c == (obj ? '}' : ']')) {
        close_container(p);
        return 0;
    }
    return fail(p, p->i, "Expecting ',' delimiter");
}

static int run(js_parser *p) {
    if (p->n >= 3 && memcmp(p->s, "\xEF\xBB\xBF", 3) == 0)
        return fail(p, 0, "Unexpected UTF-8 BOM (decode using utf-8-sig)");
    int want_value = 1;
    for (;;) {
        int r = want_value ? value(p) : after_value(p);
        if (r < 0) return -1;
        want_value = r;
        if (!want_value && !p->depth) break;
    }
    skip_ws(p);
    if (p->i < p->n) return fail(p, p->i, "Extra data");
    return 0;
}

cJSON *js_parse(const char *text, size_t len, js_error *err) {
    js_parser p = {.s = (const unsigned char *)(text ? text : ""), .n = text ? len : 0, .err = err};
    if (err) memset(err, 0, sizeof *err);
    int rc = run(&p);
    cJSON_free(p.stk);
    cJSON_free(p.mem);
    cJSON_free(p.key);
    if (rc) {
        cJSON_Delete(p.root);
        return NULL;
    }
    return p.root;
}

/* ---- helpers on the trees ---- */

int js_int64(const cJSON *item, long long *out) {
    if (!cJSON_IsNumber(item)) return -1;
    const char *lit = item->valuestring;
    if (lit && !strpbrk(lit, ".eE")) {
        errno = 0;
        char *end;
        long long v = strtoll(lit, &end, 10);
        if (errno == ERANGE || *end || end == lit) return -1;
        /* a literal that no longer matches the value (cJSON_SetNumberValue since) is stale */
        if ((double)v == item->valuedouble) {
            *out = v;
            return 0;
        }
    }
    double d = item->valuedouble;
    if (!(d == floor(d) && fabs(d) <= 9007199254740992.0)) return -1; /* 2^53 */
    *out = (long long)d;
    return 0;
}

size_t js_unmask_nul(char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] == 0xC0 && i + 1 < n && (unsigned char)s[i + 1] == 0x80) {
            s[o++] = 0;
            i++;
        } else {
            s[o++] = s[i];
        }
    }
    if (o < n) s[o] = 0;
    return o;
}

const cJSON *js_field(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return x && !cJSON_IsNull(x) ? x : NULL;
}
