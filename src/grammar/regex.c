/* regex: a regular expression (JavaScript / Python re syntax, compile.h) -> grammar rules.
 *
 * A recursive-descent parser. Each level (alternation, sequence, atom) collects its pieces in a
 * local list first and emits them into the builder only when the sequence is complete: the builder
 * has one "current alternative", and a nested group or class starts alternatives of its own rules.
 * Every atom carries its expanded size (bounded repeats multiplied out), so a pattern like
 * (((a{100}){100}){100}) fails before it is built, whatever gram_repeat does inside. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "base/stack.h"
#include "grammar/compile.h"
#include "grammar/front.h"

#define RX_MAX_DEPTH 1000          /* nested groups: a language limit, the stack check is the other */
#define RX_DEFAULT_REPEAT 1000
#define RX_DEFAULT_EXPANSION 1000000

/* ---------------------------------------------------------------- shared helpers */

int gram_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if (n < (size_t)len) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

int gram_utf8_encode(uint32_t cp, unsigned char out[4]) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

static int range_cmp(const void *a, const void *b) {
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0;
}

int gram_ranges_normalize(uint32_t (*r)[2], int n) {
    if (n <= 1) return n;
    qsort(r, (size_t)n, sizeof r[0], range_cmp);
    int k = 0;
    for (int i = 1; i < n; i++) {
        if (r[i][0] <= r[k][1] || r[i][0] == r[k][1] + 1) {
            if (r[i][1] > r[k][1]) r[k][1] = r[i][1];
        } else {
            k++;
            r[k][0] = r[i][0];
            r[k][1] = r[i][1];
        }
    }
    return k + 1;
}

/* ---------------------------------------------------------------- parser state */

enum { IT_EMPTY, IT_BYTES, IT_CLASS, IT_RULE };

typedef struct {
    int kind;
    int rule;                 /* IT_RULE */
    int nbytes;               /* IT_BYTES: 1..4 */
    unsigned char bytes[4];   /* IT_BYTES: one UTF-8 encoded code point */
    gram_bytes set;           /* IT_CLASS: one byte */
    int rep;                  /* IT_RULE made by gram_repeat(rep_of, rep_min, rep_max) */
    int rep_of, rep_min, rep_max;
} rx_item;

typedef struct {
    rx_item *v;
    int n, cap;
} rx_seq;

typedef struct {
    uint32_t (*r)[2];
    int n, cap;
} rx_ranges;

typedef struct {
    gram_builder *b;
    const unsigned char *s;
    size_t n, pos;
    int max_repeat;
    size_t max_cost;   /* elements the pattern may expand to */
    int depth;
    int dot_rule;      /* '.', made once; -1 until then */
} rx_parser;

/* errors: "regex: <what> at <offset>" (front.h) */
#define rx_err(p, at, ...) ((void)(p), gram_front_err("regex", (at), __VA_ARGS__))
#define rx_berr(rc) gram_front_berr("regex", (rc), (size_t)-1)
#define rx_berr_at(p, rc) gram_front_berr("regex", (rc), (p)->pos)


static int seq_push(rx_seq *q, const rx_item *it) {
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 8;
        if (cap < q->cap) return vc_errf(VC_ENOMEM, "regex: out of memory");
        rx_item *v = realloc(q->v, (size_t)cap * sizeof *v);
        if (!v) return vc_errf(VC_ENOMEM, "regex: out of memory");
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = *it;
    return 0;
}

static int ranges_add(rx_ranges *rs, uint32_t lo, uint32_t hi) {
    if (rs->n == rs->cap) {
        int cap = rs->cap ? rs->cap * 2 : 16;
        if (cap < rs->cap) return vc_errf(VC_ENOMEM, "regex: out of memory");
        uint32_t(*r)[2] = realloc(rs->r, (size_t)cap * sizeof *r);
        if (!r) return vc_errf(VC_ENOMEM, "regex: out of memory");
        rs->r = r;
        rs->cap = cap;
    }
    rs->r[rs->n][0] = lo;
    rs->r[rs->n][1] = hi;
    rs->n++;
    return 0;
}

/* ---------------------------------------------------------------- shorthand classes */

static const uint32_t DIGIT[][2] = {{'0', '9'}};
static const uint32_t WORD[][2] = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
/* JavaScript's \s: WhiteSpace and LineTerminator. Sorted. */
static const uint32_t SPACE[][2] = {{0x09, 0x0D}, {0x20, 0x20},     {0xA0, 0xA0},     {0x1680, 0x1680},
                                    {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                    {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};

static const uint32_t (*shorthand(int c, int *n))[2] {
    switch (c | 0x20) {
    case 'd': *n = 1; return DIGIT;
    case 'w': *n = 4; return WORD;
    default: *n = (int)(sizeof SPACE / sizeof SPACE[0]); return SPACE;
    }
}

/* Add shorthand c (d w s, or D W S: the complement) to rs. */
static int ranges_add_shorthand(rx_ranges *rs, int c) {
    int n, rc;
    const uint32_t(*r)[2] = shorthand(c, &n);
    if (c >= 'a') {
        for (int i = 0; i < n; i++)
            if ((rc = ranges_add(rs, r[i][0], r[i][1]))) return rc;
        return 0;
    }
    uint32_t next = 0;
    for (int i = 0; i < n; i++) {
        if (r[i][0] > next && (rc = ranges_add(rs, next, r[i][0] - 1))) return rc;
        next = r[i][1] + 1;
    }
    return next <= 0x10FFFF ? ranges_add(rs, next, 0x10FFFF) : 0;
}

/* ---------------------------------------------------------------- escapes */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Exactly k hex digits at p->pos (k > 0), or as many as there are up to '}' when k == 0. */
static int read_hex(rx_parser *p, int k, uint32_t *v) {
    uint32_t x = 0;
    int i = 0;
    for (; p->pos < p->n && (k == 0 || i < k); i++, p->pos++) {
        int h = hexval(p->s[p->pos]);
        if (h < 0) break;
        if (x > 0x10FFFF) return -1;
        x = x * 16 + (uint32_t)h;
    }
    if (i == 0 || (k && i < k) || x > 0x10FFFF) return -1;
    *v = x;
    return 0;
}

static int read_u(rx_parser *p, size_t at, uint32_t *cp) {
    uint32_t v;
    if (p->pos < p->n && p->s[p->pos] == '{') {
        p->pos++;
        if (read_hex(p, 0, &v) || p->pos >= p->n || p->s[p->pos] != '}')
            return rx_err(p, at, "bad \\u{...} escape");
        p->pos++;
    } else if (read_hex(p, 4, &v)) {
        return rx_err(p, at, "bad \\u escape");
    } else if (v >= 0xD800 && v <= 0xDBFF && p->pos + 6 <= p->n && p->s[p->pos] == '\\' &&
               p->s[p->pos + 1] == 'u') {
        /* a surrogate pair written as two escapes is one code point */
        size_t save = p->pos;
        uint32_t lo;
        p->pos += 2;
        if (!read_hex(p, 4, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            return 0;
        }
        p->pos = save;
    }
    if (v >= 0xD800 && v <= 0xDFFF) return rx_err(p, at, "lone surrogate in escape");
    *cp = v;
    return 0;
}

/* The escape at p->pos ('\\'). Either a code point (*cp, *cls = 0) or a shorthand class (*cls one
 * of d D w W s S). */
static int parse_escape(rx_parser *p, int in_class, uint32_t *cp, int *cls) {
    size_t at = p->pos++;
    *cls = 0;
    if (p->pos >= p->n) return rx_err(p, at, "trailing backslash");
    int c = p->s[p->pos++];
    switch (c) {
    case 'n': *cp = '\n'; return 0;
    case 't': *cp = '\t'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'f': *cp = '\f'; return 0;
    case 'v': *cp = '\v'; return 0;
    case '0':
        if (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            return rx_err(p, at, "octal escapes are not supported");
        *cp = 0;
        return 0;
    case 'x':
        if (read_hex(p, 2, cp)) return rx_err(p, at, "bad \\x escape");
        return 0;
    case 'u': return read_u(p, at, cp);
    case 'U':
        if (read_hex(p, 8, cp) || (*cp >= 0xD800 && *cp <= 0xDFFF)) return rx_err(p, at, "bad \\U escape");
        return 0;
    case 'c':
        if (p->pos < p->n && ((p->s[p->pos] | 0x20) >= 'a' && (p->s[p->pos] | 0x20) <= 'z')) {
            *cp = p->s[p->pos++] % 32u;
            return 0;
        }
        return rx_err(p, at, "bad \\c escape");
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        *cls = c;
        return 0;
    case 'b':
        if (in_class) {
            *cp = 8;
            return 0;
        }
        return rx_err(p, at, "word boundaries (\\b) are not supported");
    case 'B': return rx_err(p, at, "word boundaries (\\B) are not supported");
    case 'k':
    case '1': case '2': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
        return rx_err(p, at, "backreferences are not supported");
    case 'p': case 'P': return rx_err(p, at, "unicode property escapes (\\%c) are not supported", c);
    case 'A': case 'Z': case 'z': case 'G': return rx_err(p, at, "anchor \\%c is not supported", c);
    default: break;
    }
    if (c < 0x80) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return rx_err(p, at, "bad escape \\%c", c);
        *cp = (uint32_t)c; /* escaped punctuation */
        return 0;
    }
    p->pos--;
    int len = gram_utf8_decode(p->s + p->pos, p->n - p->pos, cp); /* the pattern is valid UTF-8 */
    p->pos += (size_t)(len ? len : 1);
    return 0;
}

/* ---------------------------------------------------------------- atoms */

static int item_from_ranges(rx_parser *p, rx_ranges *rs, int negate, rx_item *it) {
    rs->n = gram_ranges_normalize(rs->r, rs->n);
    memset(it, 0, sizeof *it);
    int ascii = 1;
    for (int i = 0; i < rs->n; i++) ascii &= rs->r[i][1] < 0x80;
    if (!negate && ascii) { /* one byte: no rule needed ([] is the empty set: it never matches) */
        it->kind = IT_CLASS;
        gram_bytes_clear(&it->set);
        for (int i = 0; i < rs->n; i++) gram_bytes_add_range(&it->set, rs->r[i][0], rs->r[i][1]);
        return 0;
    }
    int r = gram_utf8_class(p->b, (const uint32_t(*)[2])rs->r, rs->n, negate);
    if (r < 0) return rx_berr_at(p, r);
    it->kind = IT_RULE;
    it->rule = r;
    return 0;
}

static int parse_class(rx_parser *p, rx_item *it) {
    size_t start = p->pos++;
    int negate = 0, rc = 0;
    rx_ranges rs = {0};
    if (p->pos < p->n && p->s[p->pos] == '^') negate = 1, p->pos++;
    for (;;) {
        if (p->pos >= p->n) {
            rc = rx_err(p, start, "unterminated character class");
            goto out;
        }
        if (p->s[p->pos] == ']') {
            p->pos++;
            break;
        }
        uint32_t lo, hi;
        int cls = 0;
        size_t at = p->pos;
        if (p->s[p->pos] == '\\') {
            if ((rc = parse_escape(p, 1, &lo, &cls))) goto out;
        } else {
            p->pos += (size_t)gram_utf8_decode(p->s + p->pos, p->n - p->pos, &lo);
        }
        int dash = p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']';
        if (cls) {
            if (dash) {
                rc = rx_err(p, at, "bad class range");
                goto out;
            }
            if ((rc = ranges_add_shorthand(&rs, cls))) goto out;
            continue;
        }
        if (!dash) {
            if ((rc = ranges_add(&rs, lo, lo))) goto out;
            continue;
        }
        p->pos++;
        size_t hat = p->pos;
        if (p->s[p->pos] == '\\') {
            if ((rc = parse_escape(p, 1, &hi, &cls))) goto out;
            if (cls) {
                rc = rx_err(p, hat, "bad class range");
                goto out;
            }
        } else {
            p->pos += (size_t)gram_utf8_decode(p->s + p->pos, p->n - p->pos, &hi);
        }
        if (hi < lo) {
            rc = rx_err(p, at, "class range out of order");
            goto out;
        }
        if ((rc = ranges_add(&rs, lo, hi))) goto out;
    }
    rc = item_from_ranges(p, &rs, negate, it);
out:
    free(rs.r);
    return rc;
}

static int parse_alt(rx_parser *p, int *rule, size_t *cost, rx_item *single);

/* A group: ( (?: (?<name> (?P<name>; the unsupported (? forms are errors. */
static int parse_group(rx_parser *p, rx_item *it, size_t *cost) {
    size_t start = p->pos++;
    const unsigned char *s = p->s;
    if (p->pos < p->n && s[p->pos] == '?') {
        p->pos++;
        int c = p->pos < p->n ? s[p->pos] : 0;
        if (c == ':') {
            p->pos++;
        } else if (c == '=' || c == '!') {
            return rx_err(p, start, "lookahead is not supported");
        } else if (c == '<' && p->pos + 1 < p->n && (s[p->pos + 1] == '=' || s[p->pos + 1] == '!')) {
            return rx_err(p, start, "lookbehind is not supported");
        } else if (c == 'P' && p->pos + 1 < p->n && s[p->pos + 1] == '=') {
            return rx_err(p, start, "backreferences are not supported");
        } else if (c == '<' || (c == 'P' && p->pos + 1 < p->n && s[p->pos + 1] == '<')) {
            p->pos += c == 'P' ? 2 : 1;
            size_t name = p->pos;
            while (p->pos < p->n && (s[p->pos] == '_' || (s[p->pos] >= '0' && s[p->pos] <= '9' && p->pos > name) ||
                                     ((s[p->pos] | 0x20) >= 'a' && (s[p->pos] | 0x20) <= 'z')))
                p->pos++;
            if (p->pos == name || p->pos >= p->n || s[p->pos] != '>') return rx_err(p, start, "bad group name");
            p->pos++;
        } else {
            return rx_err(p, start, "flags and (?%c groups are not supported", c ? c : ' ');
        }
    }
    int r;
    rx_item one;
    int rc = parse_alt(p, &r, cost, &one);
    if (rc) return rc;
    if (p->pos >= p->n || s[p->pos] != ')') return rx_err(p, start, "unbalanced '('");
    p->pos++;
    if (one.kind != IT_EMPTY) { /* (x) is x: so that ((x*)*) can become x* below */
        *it = one;
        return 0;
    }
    memset(it, 0, sizeof *it);
    it->kind = IT_RULE;
    it->rule = r;
    return 0;
}

/* One atom without its quantifier. */
static int parse_atom(rx_parser *p, rx_item *it, size_t *cost) {
    int c = p->s[p->pos];
    *cost = 1;
    memset(it, 0, sizeof *it);
    switch (c) {
    case '(': return parse_group(p, it, cost);
    case '[': return parse_class(p, it);
    case '.': {
        if (p->dot_rule < 0) {
            static const uint32_t NL[][2] = {{'\n', '\n'}};
            p->dot_rule = gram_utf8_class(p->b, NL, 1, 1);
            if (p->dot_rule < 0) return rx_berr_at(p, p->dot_rule);
        }
        p->pos++;
        it->kind = IT_RULE;
        it->rule = p->dot_rule;
        return 0;
    }
    case '^':
    case '$':
        if ((c == '^' && p->pos == 0) || (c == '$' && p->pos == p->n - 1)) {
            p->pos++;
            it->kind = IT_EMPTY;
            *cost = 0;
            return 0;
        }
        return rx_err(p, p->pos, "anchors inside the pattern are not supported");
    case '*':
    case '+':
    case '?': return rx_err(p, p->pos, "nothing to repeat");
    case '\\': {
        uint32_t cp;
        int cls;
        int rc = parse_escape(p, 0, &cp, &cls);
        if (rc) return rc;
        if (cls) {
            int n;
            const uint32_t(*r)[2] = shorthand(cls, &n);
            if (cls >= 'a' && r[n - 1][1] < 0x80) {
                it->kind = IT_CLASS;
                gram_bytes_clear(&it->set);
                for (int i = 0; i < n; i++) gram_bytes_add_range(&it->set, r[i][0], r[i][1]);
                return 0;
            }
            int rr = gram_utf8_class(p->b, r, n, cls < 'a');
            if (rr < 0) return rx_berr_at(p, rr);
            it->kind = IT_RULE;
            it->rule = rr;
            return 0;
        }
        it->kind = IT_BYTES;
        it->nbytes = gram_utf8_encode(cp, it->bytes);
        return 0;
    }
    default: {
        uint32_t cp;
        int len = gram_utf8_decode(p->s + p->pos, p->n - p->pos, &cp);
        it->kind = IT_BYTES;
        it->nbytes = len;
        memcpy(it->bytes, p->s + p->pos, (size_t)len);
        p->pos += (size_t)len;
        return 0;
    }
    }
}

/* ---------------------------------------------------------------- quantifiers */

/* A decimal number at p->pos: its value (capped at INT_MAX) in *v; -1 when there are no digits. */
static int read_num(rx_parser *p, long *v) {
    size_t start = p->pos;
    long x = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        x = x * 10 + (p->s[p->pos] - '0');
        if (x > INT_MAX) x = INT_MAX;
        p->pos++;
    }
    *v = x;
    return p->pos > start ? 0 : -1;
}

/* The quantifier at p->pos, if any: 1 with the bounds in *min and *max (max -1: unbounded), 0 when there is none
 * (a '{' that does not start {m} {m,} {m,n} {,n} is a literal), negative on error. */
static int parse_quant(rx_parser *p, int *min, int *max) {
    size_t at = p->pos;
    int c = p->s[p->pos];
    if (c == '*') *min = 0, *max = -1, p->pos++;
    else if (c == '+') *min = 1, *max = -1, p->pos++;
    else if (c == '?') *min = 0, *max = 1, p->pos++;
    else if (c == '{') {
        long m = 0, n = -1;
        p->pos++;
        int has_m = read_num(p, &m) == 0;
        if (p->pos < p->n && p->s[p->pos] == ',') {
            p->pos++;
            if (read_num(p, &n) != 0) n = -1;
            else if (!has_m) has_m = 1; /* {,n} is {0,n} (Python) */
        } else {
            n = m;
        }
        if (!has_m || p->pos >= p->n || p->s[p->pos] != '}') {
            p->pos = at;
            return 0;
        }
        p->pos++;
        long big = m > n ? m : n;
        if (big > p->max_repeat)
            return rx_err(p, at, "repeat bound %.*s exceeds the limit %d", (int)(p->pos - at), (const char *)p->s + at,
                          p->max_repeat);
        if (n >= 0 && m > n) return rx_err(p, at, "bad repeat bounds %.*s", (int)(p->pos - at), (const char *)p->s + at);
        *min = (int)m;
        *max = (int)n;
    } else {
        return 0;
    }
    if (p->pos < p->n && p->s[p->pos] == '?') p->pos++; /* lazy: the same language */
    else if (p->pos < p->n && p->s[p->pos] == '+') return rx_err(p, at, "possessive quantifiers are not supported");
    return 1;
}

/* * + ? */
static int simple_quant(int min, int max) { return (min == 0 || min == 1) && (max < 0 || (min == 0 && max == 1)); }

/* The item as a rule of its own (for gram_repeat). */
static int item_rule(rx_parser *p, const rx_item *it, int *out) {
    if (it->kind == IT_RULE) {
        *out = it->rule;
        return 0;
    }
    int r = gram_rule(p->b, NULL), rc;
    if (r < 0) return rx_berr_at(p, r);
    if ((rc = gram_alt(p->b, r))) return rx_berr_at(p, rc);
    if (it->kind == IT_CLASS) rc = gram_add_class(p->b, &it->set);
    else rc = gram_add_bytes(p->b, it->bytes, (size_t)it->nbytes);
    if (rc) return rx_berr_at(p, rc);
    *out = r;
    return 0;
}

/* ---------------------------------------------------------------- sequences and alternation */

static int too_large(const rx_parser *p, size_t at) {
    return rx_err(p, at, "grammar too large (the pattern expands to more than %zu elements)", p->max_cost);
}

/* Items up to '|', ')' or the end, into q; their expanded size into *cost. */
static int parse_seq(rx_parser *p, rx_seq *q, size_t *cost) {
    size_t total = 0;
    while (p->pos < p->n && p->s[p->pos] != '|' && p->s[p->pos] != ')') {
        size_t at = p->pos, c = 0;
        rx_item it;
        int rc = parse_atom(p, &it, &c);
        if (rc) return rc;
        int min, max;
        if (p->pos < p->n && (rc = parse_quant(p, &min, &max)) != 0) {
            if (rc < 0) return rc;
            if (it.kind == IT_EMPTY) return rx_err(p, at, "nothing to repeat");
            if (p->pos < p->n && (p->s[p->pos] == '*' || p->s[p->pos] == '+' || p->s[p->pos] == '?'))
                return rx_err(p, p->pos, "nothing to repeat");
            if (p->pos < p->n && p->s[p->pos] == '{') {
                size_t q_at = p->pos;
                int m2, n2;
                rc = parse_quant(p, &m2, &n2);
                if (rc < 0) return rc;
                if (rc > 0) return rx_err(p, q_at, "nothing to repeat");
            }
            c = vc_sat_add_size(vc_sat_mul_size(c, max < 0 ? (size_t)min + 1 : (size_t)max), 1);
            if (c > p->max_cost) return too_large(p, at);
            if (!(min == 1 && max == 1)) {
                int r = -1, rr;
                if (it.rep && simple_quant(it.rep_min, it.rep_max) && simple_quant(min, max)) {
                    /* (x*)* (x+)? (x?)+ ...: one repeat of x, not a nest of nullable loops (the
                     * Earley matcher's slow case) */
                    r = it.rep_of;
                    min = it.rep_min * min;
                    max = it.rep_max < 0 || max < 0 ? -1 : 1;
                } else if ((rc = item_rule(p, &it, &r))) {
                    return rc;
                }
                if ((rr = gram_repeat(p->b, r, min, max)) < 0) return rx_berr_at(p, rr);
                memset(&it, 0, sizeof it);
                it.kind = IT_RULE;
                it.rule = rr;
                it.rep = 1;
                it.rep_of = r;
                it.rep_min = min;
                it.rep_max = max;
            }
        }
        total = vc_sat_add_size(total, c);
        if (total > p->max_cost) return too_large(p, at);
        if (it.kind != IT_EMPTY && (rc = seq_push(q, &it))) return rc;
    }
    *cost = total;
    return 0;
}

static int emit(rx_parser *p, int r, const rx_seq *q) {
    int rc = gram_alt(p->b, r);
    for (int i = 0; !rc && i < q->n; i++) {
        const rx_item *it = &q->v[i];
        if (it->kind == IT_RULE) rc = gram_add_rule(p->b, it->rule);
        else if (it->kind == IT_CLASS) rc = gram_add_class(p->b, &it->set);
        else rc = gram_add_bytes(p->b, it->bytes, (size_t)it->nbytes);
    }
    return rc ? rx_berr_at(p, rc) : 0;
}

/* Alternatives up to ')' or the end: a new rule with one alternative each. When there is one
 * alternative of one item, that item also goes to *single (else single->kind is IT_EMPTY). */
static int parse_alt(rx_parser *p, int *rule, size_t *cost, rx_item *single) {
    if (p->depth >= RX_MAX_DEPTH || vc_stack_low()) return rx_err(p, p->pos, "groups nested too deeply");
    p->depth++;
    rx_seq q = {0};
    size_t total = 1;
    int rc, n_alts = 0, r = gram_rule(p->b, NULL);
    memset(single, 0, sizeof *single);
    if (r < 0) {
        rc = rx_berr_at(p, r);
        goto out;
    }
    for (;;) {
        size_t c = 0, at = p->pos;
        q.n = 0;
        if ((rc = parse_seq(p, &q, &c))) goto out;
        total = vc_sat_add_size(total, c);
        if (total > p->max_cost) {
            rc = too_large(p, at);
            goto out;
        }
        if ((rc = emit(p, r, &q))) goto out;
        n_alts++;
        if (p->pos < p->n && p->s[p->pos] == '|') {
            p->pos++;
            continue;
        }
        break;
    }
    *rule = r;
    *cost = total;
    if (n_alts == 1 && q.n == 1) *single = q.v[0];
out:
    free(q.v);
    p->depth--;
    return rc;
}

static int rx_compile(gram_builder *b, const char *re, size_t n, int max_repeat, size_t max_cost, int *rule) {
    const unsigned char *s = (const unsigned char *)re;
    if (!b || (!re && n) || !rule) return vc_errf(VC_EINVAL, "regex: bad arguments");
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int len = gram_utf8_decode(s + i, n - i, &cp);
        if (!len) return vc_errf(VC_EINVAL, "regex: invalid UTF-8 at %zu", i);
        i += (size_t)len;
    }
    rx_parser p = {.b = b, .s = s, .n = n, .max_repeat = max_repeat > 0 ? max_repeat : RX_DEFAULT_REPEAT,
                   .max_cost = max_cost, .dot_rule = -1};
    size_t cost;
    rx_item one;
    int r, rc = parse_alt(&p, &r, &cost, &one);
    if (rc) return rc;
    if (p.pos < n) return rx_err(&p, p.pos, "unbalanced ')'");
    *rule = r;
    return 0;
}

int gram_regex_rule(gram_builder *b, const char *re, size_t n, int max_repeat, int *rule) {
    return rx_compile(b, re, n, max_repeat, RX_DEFAULT_EXPANSION, rule);
}

int gram_from_regex(const char *re, size_t n, const gram_limits *lim, gram_grammar **out) {
    if (!out) return vc_errf(VC_EINVAL, "regex: bad arguments");
    *out = NULL;
    size_t max_elems = lim && lim->max_elems ? lim->max_elems : RX_DEFAULT_EXPANSION;
    int max_repeat = lim && lim->max_repeat > 0 ? lim->max_repeat : RX_DEFAULT_REPEAT;
    gram_builder *b = NULL;
    int rule, rc = gram_builder_new(max_elems, &b);
    if (rc) return rx_berr(rc);
    if (!(rc = rx_compile(b, re, n, max_repeat, max_elems, &rule)) && (rc = gram_build(b, rule, out)))
        rc = rx_berr(rc);
    gram_builder_free(b);
    return rc;
}
