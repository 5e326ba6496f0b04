/* gbnf: llama.cpp's GBNF grammars (as vLLM passes them) -> grammar rules.
 *
 * The syntax follows llama.cpp's grammar-parser: a rule ends at a newline unless it is inside
 * parentheses or right after '|'; a repetition applies to the element before it (a whole
 * "string" counts as one); '#' comments run to the end of the line. Each named rule is one builder
 * rule, made at its first mention (definition or reference) and found again by name through a
 * small hash table. As in regex.c a sequence is collected first and emitted once complete, since
 * a nested group starts alternatives of its own rule. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "base/stack.h"
#include "grammar/compile.h"
#include "grammar/front.h"

#define GB_MAX_DEPTH 1000
#define GB_DEFAULT_REPEAT 1000
#define GB_DEFAULT_EXPANSION 1000000

enum { IT_NONE = -1, IT_BYTES, IT_CLASS, IT_RULE };

typedef struct {
    int kind;
    int rule;
    int nbytes;
    unsigned char bytes[4];
    gram_bytes set;
    int rep; /* IT_RULE made by gram_repeat(rep_of, rep_min, rep_max) */
    int rep_of, rep_min, rep_max;
    size_t cost; /* elements it expands to, bounded repeats multiplied out (0: 1) */
} gb_item;

typedef struct {
    gb_item *v;
    int n, cap;
} gb_seq;

typedef struct {
    const unsigned char *name; /* into the source */
    size_t len;
    int rule;
    int defined;
    size_t first_ref; /* byte offset of the first mention */
} gb_sym;

typedef struct {
    gram_builder *b;
    const unsigned char *s;
    size_t n, pos;
    int max_repeat;
    size_t max_cost; /* what one expression may expand to (llama.cpp builds that many) */
    int depth;
    int any_rule; /* '.', made once; -1 until then */
    gb_sym *syms;
    int nsyms;
    int *table; /* open addressing: symbol index + 1, 0 empty */
    size_t tcap;  /* a power of two */
} gb_parser;

/* errors: "gbnf: <what> at <offset>" (front.h) */
#define gb_err(p, at, ...) ((void)(p), gram_front_err("gbnf", (at), __VA_ARGS__))
#define gb_berr(rc) gram_front_berr("gbnf", (rc), (size_t)-1)
#define gb_berr_at(p, rc) gram_front_berr("gbnf", (rc), (p)->pos)

static int seq_push(gb_seq *q, const gb_item *it) {
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 8;
        if (cap < q->cap) return vc_errf(VC_ENOMEM, "gbnf: out of memory");
        gb_item *v = realloc(q->v, (size_t)cap * sizeof *v);
        if (!v) return vc_errf(VC_ENOMEM, "gbnf: out of memory");
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n] = *it;
    if (!q->v[q->n].cost) q->v[q->n].cost = 1;
    q->n++;
    return 0;
}


static int too_large(const gb_parser *p, size_t at) {
    return gb_err(p, at, "grammar too large (the expression expands to more than %zu elements)", p->max_cost);
}

/* ---------------------------------------------------------------- symbols */

static size_t name_hash(const unsigned char *s, size_t n) {
    size_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211u;
    return h;
}

static int table_grow(gb_parser *p) {
    size_t cap = p->tcap ? p->tcap * 2 : 64;
    gb_sym *s = realloc(p->syms, cap / 2 * sizeof *s);
    if (!s) return vc_errf(VC_ENOMEM, "gbnf: out of memory");
    p->syms = s;
    int *t = calloc(cap, sizeof *t);
    if (!t) return vc_errf(VC_ENOMEM, "gbnf: out of memory");
    for (int i = 0; i < p->nsyms; i++) {
        size_t h = name_hash(p->syms[i].name, p->syms[i].len) & (cap - 1);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = i + 1;
    }
    free(p->table);
    p->table = t;
    p->tcap = cap;
    return 0;
}

/* The symbol named s[0..n), made (with its rule) at its first mention. */
static int symbol(gb_parser *p, const unsigned char *s, size_t n, size_t at, gb_sym **out) {
    if ((size_t)p->nsyms + 1 > p->tcap / 2) {
        int rc = table_grow(p);
        if (rc) return rc;
    }
    size_t h = name_hash(s, n) & (p->tcap - 1);
    while (p->table[h]) {
        gb_sym *y = &p->syms[p->table[h] - 1];
        if (y->len == n && !memcmp(y->name, s, n)) {
            *out = y;
            return 0;
        }
        h = (h + 1) & (p->tcap - 1);
    }
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(n < 100 ? n : 100), (const char *)s);
    int r = gram_rule(p->b, name);
    if (r < 0) return gb_berr_at(p, r);
    gb_sym *y = &p->syms[p->nsyms];
    *y = (gb_sym){.name = s, .len = n, .rule = r, .first_ref = at};
    p->table[h] = ++p->nsyms;
    *out = y;
    return 0;
}

/* ---------------------------------------------------------------- lexing */

static int is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Spaces, tabs and comments; newlines too when newline_ok. */
static void skip_space(gb_parser *p, int newline_ok) {
    while (p->pos < p->n) {
        int c = p->s[p->pos];
        if (c == ' ' || c == '\t') {
            p->pos++;
        } else if (c == '#') {
            while (p->pos < p->n && p->s[p->pos] != '\r' && p->s[p->pos] != '\n') p->pos++;
        } else if (newline_ok && (c == '\r' || c == '\n')) {
            p->pos++;
        } else {
            break;
        }
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a string or class: an escape or one UTF-8 encoded code point. */
static int parse_char(gb_parser *p, uint32_t *cp) {
    size_t at = p->pos;
    if (p->pos >= p->n) return gb_err(p, at, "unexpected end of input");
    if (p->s[p->pos] != '\\') {
        int len = gram_utf8_decode(p->s + p->pos, p->n - p->pos, cp);
        if (!len) return gb_err(p, at, "invalid UTF-8");
        p->pos += (size_t)len;
        return 0;
    }
    if (++p->pos >= p->n) return gb_err(p, at, "unexpected end of input");
    int c = p->s[p->pos++], k = 0;
    switch (c) {
    case 'x': k = 2; break;
    case 'u': k = 4; break;
    case 'U': k = 8; break;
    case 't': *cp = '\t'; return 0;
    case 'r': *cp = '\r'; return 0;
    case 'n': *cp = '\n'; return 0;
    case '\\': case '"': case '[': case ']': case '-': *cp = (uint32_t)c; return 0;
    default: return gb_err(p, at, "unknown escape \\%c", c >= 0x20 && c < 0x7f ? c : '?');
    }
    uint32_t v = 0;
    for (int i = 0; i < k; i++, p->pos++) {
        int h = p->pos < p->n ? hexval(p->s[p->pos]) : -1;
        if (h < 0) return gb_err(p, at, "expecting %d hex digits", k);
        v = v * 16 + (uint32_t)h;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return gb_err(p, at, "invalid code point U+%X", (unsigned)v);
    *cp = v;
    return 0;
}

/* ---------------------------------------------------------------- elements */

static int parse_string(gb_parser *p, gb_seq *q) {
    size_t start = p->pos++;
    while (p->pos < p->n && p->s[p->pos] != '"') {
        gb_item it = {.kind = IT_BYTES};
        uint32_t cp;
        int rc = parse_char(p, &cp);
        if (rc) return rc;
        it.nbytes = gram_utf8_encode(cp, it.bytes);
        if ((rc = seq_push(q, &it))) return rc;
    }
    if (p->pos >= p->n) return gb_err(p, start, "unterminated string");
    p->pos++;
    return 0;
}

static int parse_class(gb_parser *p, gb_item *it) {
    size_t start = p->pos++;
    int negate = 0, rc = 0, n = 0, cap = 0;
    uint32_t(*r)[2] = NULL;
    if (p->pos < p->n && p->s[p->pos] == '^') negate = 1, p->pos++;
    while (p->pos < p->n && p->s[p->pos] != ']') {
        uint32_t lo, hi;
        size_t at = p->pos;
        if ((rc = parse_char(p, &lo))) goto out;
        hi = lo;
        if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if ((rc = parse_char(p, &hi))) goto out;
            if (hi < lo) {
                rc = gb_err(p, at, "class range out of order");
                goto out;
            }
        }
        if (n == cap) {
            int nc = cap ? cap * 2 : 16;
            uint32_t(*nr)[2] = nc > cap ? realloc(r, (size_t)nc * sizeof *nr) : NULL;
            if (!nr) {
                rc = vc_errf(VC_ENOMEM, "gbnf: out of memory");
                goto out;
            }
            r = nr;
            cap = nc;
        }
        r[n][0] = lo;
        r[n][1] = hi;
        n++;
    }
    if (p->pos >= p->n) {
        rc = gb_err(p, start, "unterminated character class");
        goto out;
    }
    p->pos++;
    n = gram_ranges_normalize(r, n);
    memset(it, 0, sizeof *it);
    int ascii = 1;
    for (int i = 0; i < n; i++) ascii &= r[i][1] < 0x80;
    if (!negate && ascii) {
        it->kind = IT_CLASS;
        gram_bytes_clear(&it->set);
        for (int i = 0; i < n; i++) gram_bytes_add_range(&it->set, r[i][0], r[i][1]);
    } else {
        int rr = gram_utf8_class(p->b, (const uint32_t(*)[2])r, n, negate);
        if (rr < 0) {
            rc = gb_berr_at(p, rr);
            goto out;
        }
        it->kind = IT_RULE;
        it->rule = rr;
    }
out:
    free(r);
    return rc;
}

static int parse_int(gb_parser *p, long *v) {
    size_t start = p->pos;
    long x = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        x = x * 10 + (p->s[p->pos++] - '0');
        if (x > 1000000000L) x = 1000000000L;
    }
    if (p->pos == start) return gb_err(p, start, "expecting an integer");
    *v = x;
    return 0;
}

/* * + ? */
static int simple_quant(int min, int max) { return (min == 0 || min == 1) && (max < 0 || (min == 0 && max == 1)); }

/* Replace q's items from `from` on by one rule repeated min..max times (the repetition at `at`). */
static int repeat_tail(gb_parser *p, gb_seq *q, int from, int min, int max, size_t at) {
    int r, rc;
    const gb_item *last = q->n - from == 1 ? &q->v[from] : NULL;
    size_t cost = 0;
    for (int i = from; i < q->n; i++) cost = vc_sat_add_size(cost, q->v[i].cost);
    cost = vc_sat_add_size(vc_sat_mul_size(cost, max < 0 ? (size_t)min + 1 : (size_t)max), 1);
    if (cost > p->max_cost) return too_large(p, at);
    if (last && last->rep && simple_quant(last->rep_min, last->rep_max) && simple_quant(min, max)) {
        /* x** (x+)? (x?)+ ...: one repeat of x, not a nest of nullable loops (the Earley matcher's
         * slow case) */
        r = last->rep_of;
        max = last->rep_max < 0 || max < 0 ? -1 : 1;
        min = last->rep_min * min;
    } else if (last && last->kind == IT_RULE) {
        r = last->rule;
    } else {
        if ((r = gram_rule(p->b, NULL)) < 0) return gb_berr_at(p, r);
        if ((rc = gram_alt(p->b, r))) return gb_berr_at(p, rc);
        for (int i = from; i < q->n; i++) {
            const gb_item *it = &q->v[i];
            rc = it->kind == IT_RULE    ? gram_add_rule(p->b, it->rule)
                 : it->kind == IT_CLASS ? gram_add_class(p->b, &it->set)
                                        : gram_add_bytes(p->b, it->bytes, (size_t)it->nbytes);
            if (rc) return gb_berr_at(p, rc);
        }
    }
    int rr = gram_repeat(p->b, r, min, max);
    if (rr < 0) return gb_berr_at(p, rr);
    q->n = from;
    gb_item it = {.kind = IT_RULE, .rule = rr, .rep = 1, .rep_of = r, .rep_min = min, .rep_max = max, .cost = cost};
    return seq_push(q, &it);
}

static int parse_alternates(gb_parser *p, int rule, int nested, gb_item *single, size_t *cost);

/* Elements up to what cannot continue a sequence ('|', ')', a newline outside parentheses). */
static int parse_sequence(gb_parser *p, gb_seq *q, int nested) {
    int last = -1; /* where the last element starts in q: what a repetition applies to */
    int rc;
    while (p->pos < p->n) {
        size_t at = p->pos;
        int c = p->s[p->pos];
        gb_item it;
        memset(&it, 0, sizeof it);
        if (c == '"') {
            last = q->n;
            if ((rc = parse_string(p, q))) return rc;
        } else if (c == '[') {
            last = q->n;
            if ((rc = parse_class(p, &it)) || (rc = seq_push(q, &it))) return rc;
        } else if (c == '.') {
            last = q->n;
            p->pos++;
            if (p->any_rule < 0 && (p->any_rule = gram_utf8_class(p->b, NULL, 0, 1)) < 0)
                return gb_berr_at(p, p->any_rule);
            it.kind = IT_RULE;
            it.rule = p->any_rule;
            if ((rc = seq_push(q, &it))) return rc;
        } else if (is_word(c)) {
            last = q->n;
            while (p->pos < p->n && is_word(p->s[p->pos])) p->pos++;
            gb_sym *y;
            if ((rc = symbol(p, p->s + at, p->pos - at, at, &y))) return rc;
            it.kind = IT_RULE;
            it.rule = y->rule;
            if ((rc = seq_push(q, &it))) return rc;
        } else if (c == '(') {
            last = q->n;
            p->pos++;
            skip_space(p, 1);
            int r = gram_rule(p->b, NULL);
            if (r < 0) return gb_berr_at(p, r);
            gb_item one;
            size_t cost;
            if ((rc = parse_alternates(p, r, 1, &one, &cost))) return rc;
            if (p->pos >= p->n || p->s[p->pos] != ')') return gb_err(p, p->pos, "expecting ')' for the '(' at %zu", at);
            p->pos++;
            if (one.kind != IT_NONE) { /* (x) is x: so that ((x*)*) can become x* */
                it = one;
            } else {
                it.kind = IT_RULE;
                it.rule = r;
                it.cost = cost;
            }
            if ((rc = seq_push(q, &it))) return rc;
        } else if (c == '<') {
            return gb_err(p, at, "token references are not supported");
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last < 0) return gb_err(p, at, "expecting an element before '%c'", c);
            long min, max;
            p->pos++;
            if (c == '*') min = 0, max = -1;
            else if (c == '+') min = 1, max = -1;
            else if (c == '?') min = 0, max = 1;
            else {
                skip_space(p, nested);
                if ((rc = parse_int(p, &min))) return rc;
                skip_space(p, nested);
                max = min;
                if (p->pos < p->n && p->s[p->pos] == ',') {
                    p->pos++;
                    skip_space(p, nested);
                    max = -1;
                    if (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
                        if ((rc = parse_int(p, &max))) return rc;
                        skip_space(p, nested);
                    }
                }
                if (p->pos >= p->n || p->s[p->pos] != '}') return gb_err(p, p->pos, "expecting '}'");
                p->pos++;
                if (min > p->max_repeat || max > p->max_repeat)
                    return gb_err(p, at, "repeat bound %ld exceeds the limit %d", min > max ? min : max, p->max_repeat);
                if (max >= 0 && min > max) return gb_err(p, at, "bad repeat bounds {%ld,%ld}", min, max);
            }
            if ((rc = repeat_tail(p, q, last, (int)min, (int)max, at))) return rc;
        } else {
            break;
        }
        skip_space(p, nested);
    }
    return 0;
}

static int emit(gb_parser *p, int r, const gb_seq *q) {
    int rc = gram_alt(p->b, r);
    for (int i = 0; !rc && i < q->n; i++) {
        const gb_item *it = &q->v[i];
        if (it->kind == IT_RULE) rc = gram_add_rule(p->b, it->rule);
        else if (it->kind == IT_CLASS) rc = gram_add_class(p->b, &it->set);
        else rc = gram_add_bytes(p->b, it->bytes, (size_t)it->nbytes);
    }
    return rc ? gb_berr_at(p, rc) : 0;
}

/* seq ('|' seq)* as alternatives of rule. When there is one alternative of one item, that item
 * also goes to *single (else single->kind is IT_NONE). */
static int parse_alternates(gb_parser *p, int rule, int nested, gb_item *single, size_t *cost) {
    if (p->depth >= GB_MAX_DEPTH || vc_stack_low()) return gb_err(p, p->pos, "groups nested too deeply");
    p->depth++;
    gb_seq q = {0};
    int rc, n_alts = 0;
    size_t total = 1;
    single->kind = IT_NONE;
    for (;;) {
        size_t at = p->pos;
        q.n = 0;
        if ((rc = parse_sequence(p, &q, nested)) || (rc = emit(p, rule, &q))) goto out;
        n_alts++;
        for (int i = 0; i < q.n; i++) total = vc_sat_add_size(total, q.v[i].cost);
        if (total > p->max_cost) {
            rc = too_large(p, at);
            goto out;
        }
        /* llama.cpp wants '|' before the line break; a line that starts with '|' continues the
         * rule too (xgrammar's and most EBNF's reading), which no valid llama.cpp grammar has */
        size_t save = p->pos;
        if (!nested) skip_space(p, 1);
        if (p->pos < p->n && p->s[p->pos] == '|') {
            p->pos++;
            skip_space(p, 1);
            continue;
        }
        p->pos = save;
        break;
    }
    if (n_alts == 1 && q.n == 1) *single = q.v[0];
    *cost = total;
out:
    free(q.v);
    p->depth--;
    return rc;
}

static int parse_rule(gb_parser *p) {
    size_t at = p->pos;
    while (p->pos < p->n && is_word(p->s[p->pos])) p->pos++;
    if (p->pos == at) return gb_err(p, at, "expecting a rule name");
    gb_sym *y;
    int rc = symbol(p, p->s + at, p->pos - at, at, &y);
    if (rc) return rc;
    if (y->defined) return gb_err(p, at, "rule '%.*s' defined twice", (int)(y->len < 100 ? y->len : 100), y->name);
    y->defined = 1;
    skip_space(p, 0);
    if (p->pos + 3 > p->n || memcmp(p->s + p->pos, "::=", 3) != 0) return gb_err(p, p->pos, "expecting ::=");
    p->pos += 3;
    skip_space(p, 1);
    gb_item one;
    size_t cost;
    if ((rc = parse_alternates(p, y->rule, 0, &one, &cost))) return rc;
    if (p->pos < p->n && p->s[p->pos] == '\r') p->pos += p->pos + 1 < p->n && p->s[p->pos + 1] == '\n' ? 2 : 1;
    else if (p->pos < p->n && p->s[p->pos] == '\n') p->pos++;
    else if (p->pos < p->n) return gb_err(p, p->pos, "expecting a newline or the end");
    skip_space(p, 1);
    return 0;
}

int gram_from_gbnf(const char *src, size_t n, const gram_limits *lim, gram_grammar **out) {
    if (!out || (!src && n)) return vc_errf(VC_EINVAL, "gbnf: bad arguments");
    *out = NULL;
    gb_parser p = {.s = (const unsigned char *)src, .n = n, .any_rule = -1,
                   .max_cost = lim && lim->max_elems ? lim->max_elems : GB_DEFAULT_EXPANSION,
                   .max_repeat = lim && lim->max_repeat > 0 ? lim->max_repeat : GB_DEFAULT_REPEAT};
    int rc = gram_builder_new(lim ? lim->max_elems : 0, &p.b);
    if (rc) {
        rc = gb_berr(rc);
        goto out;
    }
    skip_space(&p, 1);
    while (p.pos < p.n)
        if ((rc = parse_rule(&p))) goto out;
    for (int i = 0; i < p.nsyms; i++) {
        const gb_sym *y = &p.syms[i];
        if (!y->defined) {
            rc = gb_err(&p, y->first_ref, "undefined rule '%.*s'", (int)(y->len < 100 ? y->len : 100), y->name);
            goto out;
        }
    }
    gb_sym *root = NULL;
    for (int i = 0; i < p.nsyms && !root; i++)
        if (p.syms[i].len == 4 && !memcmp(p.syms[i].name, "root", 4)) root = &p.syms[i];
    if (!root) {
        rc = vc_errf(VC_EINVAL, "gbnf: no rule 'root'");
        goto out;
    }
    if ((rc = gram_build(p.b, root->rule, out))) rc = gb_berr(rc);
out:
    gram_builder_free(p.b);
    free(p.syms);
    free(p.table);
    return rc;
}
