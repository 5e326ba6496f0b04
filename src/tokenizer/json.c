/* json: strict JSON -> arena DOM (see json.h).
 *
 * Parsing is iterative: values are pushed on a stack; when an array or object
 * closes, its children are copied into the arena as one contiguous block and
 * replaced on the stack by the container value. So nesting depth costs no C
 * stack, and memory is one arena plus the transient stack. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "tok_internal.h"

#define ARENA_CHUNK ((size_t)1 << 20)

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} chunk;

struct tok_json {
    chunk *chunks;
    tok_jv root;
};

typedef struct {
    const unsigned char *s, *end, *start;
    const char *what;
    tok_json *doc;
    tok_jv *stack; /* values of the open containers, in order */
    size_t n, cap;
    char *tmp; /* scratch for decoding strings */
    size_t tmp_cap;
} parser;

static void *arena_alloc(tok_json *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static int perr(parser *p, const char *msg) {
    size_t line = 1, col = 1;
    for (const unsigned char *q = p->start; q < p->s && q < p->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else if ((*q & 0xC0) != 0x80) {
            col++;
        }
    }
    return vc_errf(VC_EFORMAT, "%s: invalid JSON at line %zu column %zu: %s", p->what, line, col, msg);
}

static int push(parser *p, const tok_jv *v) {
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 256;
        tok_jv *ns = realloc(p->stack, nc * sizeof *ns);
        if (!ns) return vc_errf(VC_ENOMEM, "%s: out of memory", p->what);
        p->stack = ns;
        p->cap = nc;
    }
    p->stack[p->n++] = *v;
    return 0;
}

static void skip_ws(parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}

static int hex4(const unsigned char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Length of the valid UTF-8 character at s (1..4), 0 if invalid. */
static size_t utf8_char(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if ((size_t)(end - s) < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return n;
}


/* Parses the string at p->s (which is at the opening quote) into the arena. */
static int parse_string(parser *p, const char **out, uint32_t *out_len) {
    const unsigned char *s = ++p->s;
    /* find the closing quote: the decoded string is never longer than the source */
    const unsigned char *q = s;
    while (q < p->end && *q != '"') q += *q == '\\' ? 2 : 1;
    size_t need = (size_t)((q < p->end ? q : p->end) - s) + 1;
    if (need > p->tmp_cap) {
        size_t nc = need < 4096 ? 4096 : need;
        char *nt = realloc(p->tmp, nc);
        if (!nt) return vc_errf(VC_ENOMEM, "%s: out of memory", p->what);
        p->tmp = nt;
        p->tmp_cap = nc;
    }
    size_t o = 0;
    while (1) {
        if (s >= p->end) {
            p->s = s;
            return perr(p, "unterminated string");
        }
        unsigned c = *s;
        if (c == '"') break;
        if (c < 0x20) {
            p->s = s;
            return perr(p, "control character in string");
        }
        if (c == '\\') {
            if (s + 1 >= p->end) {
                p->s = s;
                return perr(p, "unterminated escape");
            }
            unsigned e = s[1];
            s += 2;
            switch (e) {
            case '"': p->tmp[o++] = '"'; break;
            case '\\': p->tmp[o++] = '\\'; break;
            case '/': p->tmp[o++] = '/'; break;
            case 'b': p->tmp[o++] = '\b'; break;
            case 'f': p->tmp[o++] = '\f'; break;
            case 'n': p->tmp[o++] = '\n'; break;
            case 'r': p->tmp[o++] = '\r'; break;
            case 't': p->tmp[o++] = '\t'; break;
            case 'u': {
                unsigned cp, lo;
                if (p->end - s < 4 || hex4(s, &cp)) {
                    p->s = s;
                    return perr(p, "bad \\u escape");
                }
                s += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    p->s = s;
                    return perr(p, "lone low surrogate in \\u escape");
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (p->end - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) || lo < 0xDC00 ||
                        lo > 0xDFFF) {
                        p->s = s;
                        return perr(p, "lone high surrogate in \\u escape");
                    }
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                o += tok_u8enc(cp, p->tmp + o);
                break;
            }
            default:
                p->s = s - 2;
                return perr(p, "bad escape");
            }
            continue;
        }
        if (c < 0x80) {
            p->tmp[o++] = (char)c;
            s++;
            continue;
        }
        size_t n = utf8_char(s, p->end);
        if (!n) {
            p->s = s;
            return perr(p, "invalid UTF-8 in string");
        }
        memcpy(p->tmp + o, s, n);
        o += n;
        s += n;
    }
    p->s = s + 1;
    if (o > UINT32_MAX - 1) return perr(p, "string too long");
    char *dst = arena_alloc(p->doc, o + 1);
    if (!dst) return vc_errf(VC_ENOMEM, "%s: out of memory", p->what);
    memcpy(dst, p->tmp, o);
    dst[o] = 0;
    *out = dst;
    *out_len = (uint32_t)o;
    return 0;
}

static int parse_number(parser *p, double *out) {
    const unsigned char *s = p->s, *b = s;
    if (s < p->end && *s == '-') s++;
    if (s >= p->end) return perr(p, "bad number");
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9')
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    else return perr(p, "bad number");
    if (s < p->end && *s == '.') {
        s++;
        if (s >= p->end || *s < '0' || *s > '9') return perr(p, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < p->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < p->end && (*s == '+' || *s == '-')) s++;
        if (s >= p->end || *s < '0' || *s > '9') return perr(p, "bad number");
        while (s < p->end && *s >= '0' && *s <= '9') s++;
    }
    char buf[64];
    size_t n = (size_t)(s - b);
    if (n >= sizeof buf) {
        /* long digit strings: only the magnitude matters to us */
        char *big = malloc(n + 1);
        if (!big) return vc_errf(VC_ENOMEM, "%s: out of memory", p->what);
        memcpy(big, b, n);
        big[n] = 0;
        *out = strtod(big, NULL);
        free(big);
    } else {
        memcpy(buf, b, n);
        buf[n] = 0;
        *out = strtod(buf, NULL);
    }
    p->s = s;
    return 0;
}

static int lit(parser *p, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(p->end - p->s) < n || memcmp(p->s, word, n) != 0) return perr(p, "unexpected character");
    p->s += n;
    return 0;
}

/* Replace the last `count` stack values with one container value. */
static int close_container(parser *p, size_t base, uint8_t type) {
    size_t count = p->n - base;
    tok_jv v = {0};
    v.type = type;
    if (count > UINT32_MAX) return perr(p, "too many values");
    v.len = (uint32_t)count;
    if (count) {
        tok_jv *kids = arena_alloc(p->doc, count * sizeof *kids);
        if (!kids) return vc_errf(VC_ENOMEM, "%s: out of memory", p->what);
        memcpy(kids, p->stack + base, count * sizeof *kids);
        v.u.kids = kids;
    }
    /* the container's own key was stashed in the frame below */
    p->n = base;
    return push(p, &v);
}

typedef struct {
    size_t base;
    uint8_t type;
    const char *key;
    uint32_t klen;
} frame;

int tok_json_parse(const char *src, size_t len, const char *what, tok_json **out) {
    *out = NULL;
    parser p = {0};
    p.s = p.start = (const unsigned char *)src;
    p.end = p.s + len;
    p.what = what ? what : "JSON";
    if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) p.s += 3;
    p.doc = calloc(1, sizeof *p.doc);
    if (!p.doc) return vc_errf(VC_ENOMEM, "%s: out of memory", p.what);
    frame fr[TOK_JSON_MAX_DEPTH];
    int depth = 0, rc = 0;
    /* The value parsed next gets this key (inside objects). */
    const char *key = NULL;
    uint32_t klen = 0;
    int done = 0;
    while (!done) {
        skip_ws(&p);
        if (p.s >= p.end) {
            rc = perr(&p, "unexpected end of input");
            goto fail;
        }
        tok_jv v = {0};
        v.key = key;
        v.klen = klen;
        unsigned c = *p.s;
        int is_value = 1;
        if (c == '{' || c == '[') {
            if (depth == TOK_JSON_MAX_DEPTH) {
                rc = perr(&p, "nesting too deep");
                goto fail;
            }
            fr[depth].base = p.n;
            fr[depth].type = c == '{' ? TOK_J_OBJ : TOK_J_ARR;
            fr[depth].key = key;
            fr[depth].klen = klen;
            depth++;
            p.s++;
            skip_ws(&p);
            if (p.s < p.end && (*p.s == (c == '{' ? '}' : ']'))) {
                /* empty container: close right away */
                p.s++;
                depth--;
                if ((rc = close_container(&p, fr[depth].base, fr[depth].type))) goto fail;
                p.stack[p.n - 1].key = fr[depth].key;
                p.stack[p.n - 1].klen = fr[depth].klen;
                is_value = 0;
            } else if (c == '{') {
                /* first member key */
                if (p.s >= p.end || *p.s != '"') {
                    rc = perr(&p, "expected a member name");
                    goto fail;
                }
                if ((rc = parse_string(&p, &key, &klen))) goto fail;
                skip_ws(&p);
                if (p.s >= p.end || *p.s != ':') {
                    rc = perr(&p, "expected ':'");
                    goto fail;
                }
                p.s++;
                continue;
            } else {
                key = NULL;
                klen = 0;
                continue;
            }
        } else if (c == '"') {
            v.type = TOK_J_STR;
            if ((rc = parse_string(&p, &v.u.str, &v.len))) goto fail;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            v.type = TOK_J_NUM;
            if ((rc = parse_number(&p, &v.u.num))) goto fail;
        } else if (c == 't') {
            if ((rc = lit(&p, "true"))) goto fail;
            v.type = TOK_J_TRUE;
        } else if (c == 'f') {
            if ((rc = lit(&p, "false"))) goto fail;
            v.type = TOK_J_FALSE;
        } else if (c == 'n') {
            if ((rc = lit(&p, "null"))) goto fail;
            v.type = TOK_J_NULL;
        } else {
            rc = perr(&p, "unexpected character");
            goto fail;
        }
        if (is_value && (rc = push(&p, &v))) goto fail;
        /* after a value: ',' or a closing bracket, possibly several */
        for (;;) {
            skip_ws(&p);
            if (depth == 0) {
                if (p.s != p.end) {
                    rc = perr(&p, "trailing characters after the JSON value");
                    goto fail;
                }
                done = 1;
                break;
            }
            frame *f = &fr[depth - 1];
            if (p.s >= p.end) {
                rc = perr(&p, "unexpected end of input");
                goto fail;
            }
            unsigned d = *p.s;
            if (d == ',') {
                p.s++;
                if (f->type == TOK_J_OBJ) {
                    skip_ws(&p);
                    if (p.s >= p.end || *p.s != '"') {
                        rc = perr(&p, "expected a member name");
                        goto fail;
                    }
                    if ((rc = parse_string(&p, &key, &klen))) goto fail;
                    skip_ws(&p);
                    if (p.s >= p.end || *p.s != ':') {
                        rc = perr(&p, "expected ':'");
                        goto fail;
                    }
                    p.s++;
                } else {
                    key = NULL;
                    klen = 0;
                }
                break;
            }
            if ((f->type == TOK_J_OBJ && d == '}') || (f->type == TOK_J_ARR && d == ']')) {
                p.s++;
                depth--;
                if ((rc = close_container(&p, f->base, f->type))) goto fail;
                p.stack[p.n - 1].key = f->key;
                p.stack[p.n - 1].klen = f->klen;
                continue;
            }
            rc = perr(&p, f->type == TOK_J_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
            goto fail;
        }
    }
    p.doc->root = p.stack[0];
    free(p.stack);
    free(p.tmp);
    *out = p.doc;
    return 0;
fail:
    free(p.stack);
    free(p.tmp);
    tok_json_free(p.doc);
    return rc;
}

const tok_jv *tok_json_root(const tok_json *d) { return &d->root; }

void tok_json_free(tok_json *d) {
    if (!d) return;
    for (chunk *c = d->chunks; c;) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
    free(d);
}

const tok_jv *tok_jget(const tok_jv *v, const char *key) {
    if (!v || v->type != TOK_J_OBJ) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = v->len; i-- > 0;) {
        const tok_jv *m = &v->u.kids[i];
        if (m->klen == kl && memcmp(m->key, key, kl) == 0) return m;
    }
    return NULL;
}

const char *tok_jkind(const tok_jv *v) {
    if (!v) return "absent";
    switch (v->type) {
    case TOK_J_NULL: return "null";
    case TOK_J_FALSE:
    case TOK_J_TRUE: return "a boolean";
    case TOK_J_NUM: return "a number";
    case TOK_J_STR: return "a string";
    case TOK_J_ARR: return "a list";
    default: return "an object";
    }
}

int tok_jint(const tok_jv *v, long long lo, long long hi, long long *out) {
    if (!v || v->type != TOK_J_NUM) return 0;
    double d = v->u.num;
    if (!(d >= (double)lo && d <= (double)hi)) return 0;
    long long i = (long long)d;
    if ((double)i != d) return 0;
    *out = i;
    return 1;
}

int tok_jnull(const tok_jv *v) { return !v || v->type == TOK_J_NULL; }
