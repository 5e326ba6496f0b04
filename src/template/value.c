/* value.c: the arena, runtime error/budget helpers, and template values with Python semantics
 * (truthiness, ==, ordering, len(), iteration, hashing) as jinja2 sees them through its sandbox.
 *
 * Values live in the render's arena and are immutable once built, except namespace dicts. Strings
 * and lists built by repeated concatenation grow in place when nothing else has extended their
 * backing store (see jbuf in jinja.h), which keeps `ns.x = ns.x + [y]` loops linear. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"

/* ---------------------------------------------------------------- arena */

struct ja_chunk {
    ja_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define JA_CHUNK 65536

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    ja_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > JA_CHUNK / 4 ? n : JA_CHUNK;
        if (cap > SIZE_MAX - sizeof(ja_chunk)) return NULL;
        if (a->limit && (a->total + cap + sizeof(ja_chunk) > a->limit)) return NULL;
        ja_chunk *nc = calloc(1, sizeof(ja_chunk) + cap);
        if (!nc) return NULL;
        nc->cap = cap;
        a->total += cap + sizeof(ja_chunk);
        if (c && cap != JA_CHUNK && c->cap - c->used >= 1024) {
            /* a big one-off block: keep filling the current chunk afterwards */
            nc->next = c->next;
            c->next = nc;
            nc->used = n;
            return nc->data;
        }
        nc->next = c;
        a->head = c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void ja_free_all(jarena *a) {
    ja_chunk *c = a->head;
    while (c) {
        ja_chunk *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------------------------------------------------------- runtime helpers */

int jr_fail(jrt *r, int kind, const char *fmt, ...) {
    if (r->failed) return JE_FAIL;
    r->failed = 1;
    r->err->kind = kind;
    r->err->line = r->line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
    va_end(ap);
    return JE_FAIL;
}

void *jr_alloc(jrt *r, size_t n) {
    void *p = ja_alloc(r->ar, n);
    if (!p) {
        if (r->ar->limit && r->ar->total + n + JA_CHUNK >= r->ar->limit)
            jr_fail(r, TMPL_ERR_LIMIT, "template exceeded the memory limit (%zu bytes)", r->ar->limit);
        else
            jr_fail(r, TMPL_ERR_NOMEM, "out of memory");
    }
    return p;
}

int jr_step(jrt *r, uint64_t n) {
    r->steps += n;
    if (r->steps > r->max_steps)
        return jr_fail(r, TMPL_ERR_LIMIT, "template exceeded the step budget (%llu steps); runaway loop?",
                       (unsigned long long)r->max_steps);
    return 0;
}

int jargs_bind(jrt *r, const char *fname, const jargs *a, const char *const *params, size_t nparams,
               jv *slots) {
    for (size_t i = 0; i < nparams; i++) slots[i].t = JT_ABSENT;
    if (a->npos > nparams)
        return jr_fail(r, TMPL_ERR_TYPE, "%s() takes at most %zu argument%s (%zu given)", fname, nparams,
                       nparams == 1 ? "" : "s", a->npos);
    for (size_t i = 0; i < a->npos; i++) slots[i] = a->pos[i];
    for (size_t k = 0; k < a->nkw; k++) {
        size_t i = 0;
        for (; i < nparams; i++)
            if (strlen(params[i]) == a->kwn[k]->len && memcmp(params[i], a->kwn[k]->p, a->kwn[k]->len) == 0) break;
        if (i == nparams)
            return jr_fail(r, TMPL_ERR_TYPE, "%s() got an unexpected keyword argument '%.*s'", fname,
                           (int)a->kwn[k]->len, a->kwn[k]->p);
        if (slots[i].t != JT_ABSENT)
            return jr_fail(r, TMPL_ERR_TYPE, "%s() got multiple values for argument '%s'", fname, params[i]);
        slots[i] = a->kwv[k];
    }
    return 0;
}

/* ---------------------------------------------------------------- constructors */

jv jv_undef(void) { jv v = {.t = JT_UNDEF}; v.u.ud = NULL; return v; }
jv jv_none(void) { jv v = {.t = JT_NONE}; v.u.i = 0; return v; }
jv jv_bool(int b) { jv v = {.t = JT_BOOL}; v.u.i = b != 0; return v; }
jv jv_int(int64_t i) { jv v = {.t = JT_INT}; v.u.i = i; return v; }
jv jv_float(double f) { jv v = {.t = JT_FLOAT}; v.u.f = f; return v; }
jv jv_str(const jstr *s) { jv v = {.t = JT_STR}; v.u.s = s; return v; }
jv jv_markup(const jstr *s) { jv v = {.t = JT_STR, .m = 1}; v.u.s = s; return v; }

jv jv_undef_name(jrt *r, const jstr *name) {
    jundef *u = jr_alloc(r, sizeof *u);
    if (!u) return jv_undef();
    u->kind = UD_NAME;
    u->key = jv_str(name);
    jv v = jv_undef();
    v.u.ud = u;
    return v;
}

jv jv_undef_attr(jrt *r, jv obj, jv key, int kind) {
    jundef *u = jr_alloc(r, sizeof *u);
    if (!u) return jv_undef();
    u->kind = (uint8_t)kind;
    u->objtype = kind == UD_UNSAFE ? jv_typename(obj) : jv_objdesc(obj);
    u->key = key;
    jv v = jv_undef();
    v.u.ud = u;
    return v;
}

jv jv_undef_hint(jrt *r, const char *hint) {
    jundef *u = jr_alloc(r, sizeof *u);
    if (!u) return jv_undef();
    u->kind = UD_HINT;
    u->hint = hint;
    jv v = jv_undef();
    v.u.ud = u;
    return v;
}

int jv_undef_error(jrt *r, jv v) {
    const jundef *u = v.t == JT_UNDEF ? v.u.ud : NULL;
    if (!u) return jr_fail(r, TMPL_ERR_UNDEFINED, "None is undefined");
    char key[200] = "";
    if (u->key.t == JT_STR)
        snprintf(key, sizeof key, "'%.*s'", (int)(u->key.u.s->len > 150 ? 150 : u->key.u.s->len), u->key.u.s->p);
    else if (u->key.t == JT_INT)
        snprintf(key, sizeof key, "%lld", (long long)u->key.u.i);
    else
        snprintf(key, sizeof key, "<%s>", jv_typename(u->key));
    switch (u->kind) {
    case UD_NAME: return jr_fail(r, TMPL_ERR_UNDEFINED, "%s is undefined", key);
    case UD_ATTR: return jr_fail(r, TMPL_ERR_UNDEFINED, "'%s' has no attribute %s", u->objtype, key);
    case UD_ITEM: return jr_fail(r, TMPL_ERR_UNDEFINED, "%s has no element %s", u->objtype, key);
    case UD_UNSAFE:
        return jr_fail(r, TMPL_ERR_SECURITY, "access to attribute %s of '%s' object is unsafe.", key, u->objtype);
    case UD_HINT: return jr_fail(r, TMPL_ERR_UNDEFINED, "%s", u->hint);
    default: return jr_fail(r, TMPL_ERR_UNDEFINED, "None is undefined");
    }
}

/* ---------------------------------------------------------------- strings */

jbuf *jb_new(jrt *r, size_t cap) {
    jbuf *b = jr_alloc(r, sizeof *b);
    if (!b) return NULL;
    if (cap < 64) cap = 64;
    b->data = jr_alloc(r, cap);
    if (!b->data) return NULL;
    b->cap = cap;
    return b;
}

static int jb_reserve(jrt *r, jbuf *b, size_t extra) {
    if (b->cap - b->used >= extra) return 0;
    if (extra > r->max_output || b->used > r->max_output - extra)
        return jr_fail(r, TMPL_ERR_LIMIT, "template output exceeded the limit (%zu bytes)", r->max_output);
    size_t need = b->used + extra, cap = b->cap * 2;
    if (cap < need) cap = need;
    if (cap > r->max_output + 1) cap = r->max_output + 1;
    void *d = jr_alloc(r, cap);
    if (!d) return JE_FAIL;
    memcpy(d, b->data, b->used);
    b->data = d;
    b->cap = cap;
    return 0;
}

int jb_put(jrt *r, jbuf *b, const void *p, size_t n) {
    if (n == 0) return 0;
    if (jb_reserve(r, b, n)) return JE_FAIL;
    memcpy((char *)b->data + b->used, p, n);
    b->used += n;
    return 0;
}

int jb_putc(jrt *r, jbuf *b, char ch) { return jb_put(r, b, &ch, 1); }

int jb_printf(jrt *r, jbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return 0;
    return jb_put(r, b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

const jstr *jb_str(jrt *r, jbuf *b) {
    jstr *s = jr_alloc(r, sizeof *s);
    if (!s) return NULL;
    s->p = b->data;
    s->len = b->used;
    s->ncp = -1;
    s->buf = b;
    return s;
}

const jstr *js_new(jrt *r, const char *p, size_t n) {
    jstr *s = jr_alloc(r, sizeof *s + n + 1);
    if (!s) return NULL;
    char *d = (char *)(s + 1);
    if (n) memcpy(d, p, n);
    s->p = d;
    s->len = n;
    s->ncp = -1;
    return s;
}

const jstr *js_lit(jrt *r, const char *cstr) { return js_new(r, cstr, strlen(cstr)); }

jv jv_strn(jrt *r, const char *p, size_t n, int *rc) {
    const jstr *s = js_new(r, p, n);
    if (!s) *rc = JE_FAIL;
    return jv_str(s);
}

const jstr *js_concat(jrt *r, const jstr *a, const jstr *b) {
    if (b->len == 0) return a;
    if (a->len > r->max_output || b->len > r->max_output - a->len) {
        jr_fail(r, TMPL_ERR_LIMIT, "string longer than the output limit (%zu bytes)", r->max_output);
        return NULL;
    }
    int64_t ncp = a->ncp >= 0 && b->ncp >= 0 ? a->ncp + b->ncp : -1;
    jbuf *buf = a->buf;
    if (!(buf && a->p + a->len == (char *)buf->data + buf->used && buf->cap - buf->used >= b->len)) {
        size_t n = a->len + b->len;
        buf = jb_new(r, n < 48 ? n : n + n / 2 + 16);
        if (!buf) return NULL;
        memcpy(buf->data, a->p, a->len);
        buf->used = a->len;
        a = NULL;
    }
    const char *start = a ? a->p : (const char *)buf->data;
    size_t alen = a ? a->len : buf->used;
    memcpy((char *)buf->data + buf->used, b->p, b->len);
    buf->used += b->len;
    jstr *s = jr_alloc(r, sizeof *s);
    if (!s) return NULL;
    s->p = start;
    s->len = alen + b->len;
    s->ncp = ncp;
    s->buf = buf;
    return s;
}

int64_t js_count_cp(const char *p, size_t n) {
    int64_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

int js_ncp(const jstr *s) {
    if (s->ncp < 0) ((jstr *)s)->ncp = js_count_cp(s->p, s->len);
    return 0;
}

size_t js_cp_offset(const char *p, size_t n, int64_t cp) {
    size_t i = 0;
    while (i < n && cp > 0) {
        i++;
        while (i < n && ((unsigned char)p[i] & 0xC0) == 0x80) i++;
        cp--;
    }
    return i;
}

int jv_is_str(jv v, const char *s) {
    size_t n = strlen(s);
    return v.t == JT_STR && v.u.s->len == n && memcmp(v.u.s->p, s, n) == 0;
}

/* ---------------------------------------------------------------- lists and dicts */

jlist *jlist_new(jrt *r, int kind, size_t n) {
    if (n > r->max_output) {
        jr_fail(r, TMPL_ERR_LIMIT, "list of %zu items is over the limit", n);
        return NULL;
    }
    jlist *l = jr_alloc(r, sizeof *l);
    if (!l) return NULL;
    l->kind = (uint8_t)kind;
    l->n = n;
    l->v = jr_alloc(r, (n ? n : 1) * sizeof(jv));
    if (!l->v) return NULL;
    return l;
}

int jlist_concat(jrt *r, const jlist *a, const jlist *b, jv *out) {
    jbuf *buf = a->buf;
    if (jr_step(r, 1 + b->n / 16)) return JE_FAIL;
    if (!(buf && a->v == buf->data && a->n == buf->used && buf->cap - buf->used >= b->n)) {
        size_t n = a->n + b->n;
        if (n > r->max_output / sizeof(jv)) return jr_fail(r, TMPL_ERR_LIMIT, "list too long");
        size_t cap = n < 4 ? 4 : n * 2;
        buf = jr_alloc(r, sizeof *buf);
        if (!buf) return JE_FAIL;
        buf->data = jr_alloc(r, cap * sizeof(jv));
        if (!buf->data) return JE_FAIL;
        buf->cap = cap;
        memcpy(buf->data, a->v, a->n * sizeof(jv));
        buf->used = a->n;
    }
    memcpy((jv *)buf->data + buf->used, b->v, b->n * sizeof(jv));
    buf->used += b->n;
    jlist *l = jr_alloc(r, sizeof *l);
    if (!l) return JE_FAIL;
    l->kind = a->kind == JL_TUPLE ? JL_TUPLE : JL_LIST;
    l->v = buf->data;
    l->n = buf->used;
    l->buf = buf;
    out->t = JT_LIST;
    out->u.l = l;
    return 0;
}

jdict *jdict_new(jrt *r, size_t cap) {
    jdict *d = jr_alloc(r, sizeof *d);
    if (!d) return NULL;
    if (cap < 4) cap = 4;
    d->k = jr_alloc(r, cap * sizeof(jv));
    d->v = jr_alloc(r, cap * sizeof(jv));
    if (!d->k || !d->v) return NULL;
    d->cap = cap;
    return d;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

#define JV_MAX_NEST 400 /* nesting beyond this in == and <: Python's RecursionError */
/* Tuples are hashed down to this depth only: equal values still hash equal, and the recursion stays
 * a few frames deep, so it needs no stack check (and no error path). */
#define JV_HASH_NEST 16

static uint64_t hash_at(jv v, int depth);

uint64_t jv_hash(jv v) { return hash_at(v, 0); }

static uint64_t hash_at(jv v, int depth) {
    switch (v.t) {
    case JT_STR: {
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < v.u.s->len; i++) h = (h ^ (unsigned char)v.u.s->p[i]) * 1099511628211ULL;
        return h;
    }
    case JT_BOOL:
    case JT_INT: return mix64((uint64_t)v.u.i);
    case JT_FLOAT:
        if (v.u.f == floor(v.u.f) && fabs(v.u.f) < 9.2e18) return mix64((uint64_t)(int64_t)v.u.f);
        {
            uint64_t bits;
            memcpy(&bits, &v.u.f, 8);
            return mix64(bits);
        }
    case JT_NONE: return 0x9e3779b97f4a7c15ULL;
    case JT_LIST: {
        uint64_t h = 0x345678;
        if (depth < JV_HASH_NEST)
            for (size_t i = 0; i < v.u.l->n; i++) h = mix64(h ^ hash_at(v.u.l->v[i], depth + 1));
        return h;
    }
    default: return mix64((uint64_t)(uintptr_t)v.u.l);
    }
}

static void jdict_index(jdict *d, size_t i) {
    size_t m = d->htcap - 1, h = (size_t)jv_hash(d->k[i]) & m;
    while (d->ht[h]) h = (h + 1) & m;
    d->ht[h] = (uint32_t)(i + 1);
}

static long jdict_find(const jdict *d, jv k) {
    if (d->ht) {
        size_t m = d->htcap - 1, h = (size_t)jv_hash(k) & m;
        while (d->ht[h]) {
            size_t i = d->ht[h] - 1;
            if (jv_eq(d->k[i], k)) return (long)i;
            h = (h + 1) & m;
        }
        return -1;
    }
    for (size_t i = 0; i < d->n; i++)
        if (jv_eq(d->k[i], k)) return (long)i;
    return -1;
}

int jdict_get(const jdict *d, jv k, jv *out) {
    long i = jdict_find(d, k);
    if (i < 0) return 0;
    *out = d->v[i];
    return 1;
}

const jv *jdict_get_str(const jdict *d, const char *key, size_t n) {
    jstr s = {.p = key, .len = n, .ncp = -1};
    long i = jdict_find(d, jv_str(&s));
    return i < 0 ? NULL : &d->v[i];
}

int jdict_set(jrt *r, jdict *d, jv k, jv v) {
    if (k.t == JT_DICT || k.t == JT_NS || (k.t == JT_LIST && k.u.l->kind != JL_TUPLE) || k.t == JT_UNDEF) {
        if (k.t == JT_UNDEF) return jv_undef_error(r, k);
        return jr_fail(r, TMPL_ERR_TYPE, "unhashable type: '%s'", jv_typename(k));
    }
    long i = jdict_find(d, k);
    if (i >= 0) {
        d->v[i] = v;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        jv *nk = jr_alloc(r, cap * sizeof(jv)), *nv = jr_alloc(r, cap * sizeof(jv));
        if (!nk || !nv) return JE_FAIL;
        memcpy(nk, d->k, d->n * sizeof(jv));
        memcpy(nv, d->v, d->n * sizeof(jv));
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
    if (d->n > 8 && d->n * 2 > d->htcap) {
        size_t hc = 16;
        while (hc < d->n * 4) hc *= 2;
        d->ht = jr_alloc(r, hc * sizeof(uint32_t));
        if (!d->ht) return JE_FAIL;
        d->htcap = hc;
        for (size_t j = 0; j < d->n; j++) jdict_index(d, j);
    } else if (d->ht) {
        jdict_index(d, d->n - 1);
    }
    return 0;
}

/* ---------------------------------------------------------------- Python semantics */

int jv_truthy(jv v) {
    switch (v.t) {
    case JT_UNDEF:
    case JT_NONE:
    case JT_ABSENT: return 0;
    case JT_BOOL:
    case JT_INT: return v.u.i != 0;
    case JT_FLOAT: return v.u.f != 0.0;
    case JT_STR: return v.u.s->len != 0;
    case JT_LIST: return v.u.l->kind == JL_GEN || v.u.l->n != 0;
    case JT_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

static int is_num(jv v) { return v.t == JT_BOOL || v.t == JT_INT || v.t == JT_FLOAT; }

/* Exact comparison of an integer with a double, as Python does. */
static int cmp_int_float(int64_t i, double f) {
    if (isnan(f)) return 2; /* unordered */
    if (f >= 9223372036854775808.0) return -1;
    if (f < -9223372036854775808.0) return 1;
    double fl = floor(f);
    int64_t fi = (int64_t)fl;
    if (i < fi) return -1;
    if (i > fi) return 1;
    return fl < f ? -1 : 0;
}

static int num_cmp(jv a, jv b) {
    if (a.t != JT_FLOAT && b.t != JT_FLOAT) return a.u.i < b.u.i ? -1 : a.u.i > b.u.i;
    if (a.t == JT_FLOAT && b.t == JT_FLOAT) {
        if (isnan(a.u.f) || isnan(b.u.f)) return 2;
        return a.u.f < b.u.f ? -1 : a.u.f > b.u.f;
    }
    if (a.t == JT_FLOAT) {
        int c = cmp_int_float(b.u.i, a.u.f);
        return c == 2 ? 2 : -c;
    }
    return cmp_int_float(a.u.i, b.u.f);
}

static int eq_at(jv a, jv b, int depth);

int jv_eq(jv a, jv b) { return eq_at(a, b, 0); }

/* Python ==; past JV_MAX_NEST levels of nesting, or when the thread's stack runs low (base/stack.h),
 * the values count as different (Python would raise RecursionError), so hostile self-nesting cannot
 * exhaust the C stack. */
static int eq_at(jv a, jv b, int depth) {
    if (is_num(a) && is_num(b)) return num_cmp(a, b) == 0;
    if (depth > JV_MAX_NEST) return 0;
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JT_UNDEF:
    case JT_NONE: return 1;
    case JT_STR: return a.u.s->len == b.u.s->len && memcmp(a.u.s->p, b.u.s->p, a.u.s->len) == 0;
    case JT_LIST: {
        const jlist *x = a.u.l, *y = b.u.l;
        if (x == y) return 1;
        if (x->kind != y->kind || x->kind == JL_GEN || x->n != y->n || vc_stack_low()) return 0;
        for (size_t i = 0; i < x->n; i++)
            if (!eq_at(x->v[i], y->v[i], depth + 1)) return 0;
        return 1;
    }
    case JT_DICT: {
        const jdict *x = a.u.d, *y = b.u.d;
        if (x == y) return 1;
        if (x->n != y->n || vc_stack_low()) return 0;
        for (size_t i = 0; i < x->n; i++) {
            jv o;
            if (!jdict_get(y, x->k[i], &o) || !eq_at(x->v[i], o, depth + 1)) return 0;
        }
        return 1;
    }
    case JT_FUNC: return a.u.i == b.u.i;
    case JT_METHOD: return a.u.bm->id == b.u.bm->id && eq_at(a.u.bm->self, b.u.bm->self, depth + 1);
    default: return a.u.l == b.u.l;
    }
}

static int cmp_at(jrt *r, jv a, jv b, int *res, int depth, const char *op);

int jv_cmp(jrt *r, jv a, jv b, int *res) { return cmp_at(r, a, b, res, 0, "<"); }
int jv_cmp_op(jrt *r, jv a, jv b, const char *op, int *res) { return cmp_at(r, a, b, res, 0, op); }

/* Python's ordering: *res is -1, 0, 1, or 2 when unordered (NaN; every comparison is false). */
static int cmp_at(jrt *r, jv a, jv b, int *res, int depth, const char *op) {
    if (depth > JV_MAX_NEST) return jr_fail(r, TMPL_ERR_LIMIT, "maximum recursion depth exceeded in comparison");
    if (jr_stack_check(r)) return JE_FAIL;
    if (a.t == JT_UNDEF) return jv_undef_error(r, a);
    if (b.t == JT_UNDEF) return jv_undef_error(r, b);
    if (is_num(a) && is_num(b)) {
        *res = num_cmp(a, b);
        return 0;
    }
    if (a.t == JT_STR && b.t == JT_STR) {
        size_t n = a.u.s->len < b.u.s->len ? a.u.s->len : b.u.s->len;
        int c = memcmp(a.u.s->p, b.u.s->p, n);
        *res = c ? (c < 0 ? -1 : 1) : (a.u.s->len < b.u.s->len ? -1 : a.u.s->len > b.u.s->len);
        return 0;
    }
    if (a.t == JT_LIST && b.t == JT_LIST && a.u.l->kind == b.u.l->kind &&
        (a.u.l->kind == JL_LIST || a.u.l->kind == JL_TUPLE)) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (eq_at(a.u.l->v[i], b.u.l->v[i], depth + 1)) continue;
            return cmp_at(r, a.u.l->v[i], b.u.l->v[i], res, depth + 1, op);
        }
        *res = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    return jr_fail(r, TMPL_ERR_TYPE, "'%s' not supported between instances of '%s' and '%s'", op, jv_typename(a),
                   jv_typename(b));
}

int jv_len(jrt *r, jv v, int64_t *n) {
    switch (v.t) {
    case JT_UNDEF: *n = 0; return 0;
    case JT_STR: js_ncp(v.u.s); *n = v.u.s->ncp; return 0;
    case JT_LIST:
        if (v.u.l->kind == JL_GEN) break;
        *n = (int64_t)v.u.l->n;
        return 0;
    case JT_DICT: *n = (int64_t)v.u.d->n; return 0;
    case JT_LOOP: *n = v.u.lp->length; return 0;
    default: break;
    }
    return jr_fail(r, TMPL_ERR_TYPE, "object of type '%s' has no len()", jv_typename(v));
}

int jv_iter(jrt *r, jv v, const jv **items, size_t *n) {
    static const jv none[1];
    switch (v.t) {
    case JT_UNDEF: *items = none; *n = 0; return 0;
    case JT_LIST: *items = v.u.l->v; *n = v.u.l->n; return 0;
    case JT_DICT: *items = v.u.d->k; *n = v.u.d->n; return 0;
    case JT_STR: {
        const jstr *s = v.u.s;
        js_ncp(s);
        jv *out = jr_alloc(r, ((size_t)s->ncp + 1) * sizeof(jv));
        jstr *cs = jr_alloc(r, ((size_t)s->ncp + 1) * sizeof(jstr));
        if (!out || !cs) return JE_FAIL;
        size_t i = 0, k = 0;
        while (i < s->len) {
            size_t j = i + 1;
            while (j < s->len && ((unsigned char)s->p[j] & 0xC0) == 0x80) j++;
            cs[k].p = s->p + i;
            cs[k].len = j - i;
            cs[k].ncp = 1;
            out[k] = jv_str(&cs[k]);
            k++;
            i = j;
        }
        *items = out;
        *n = k;
        return jr_step(r, k / 16);
    }
    default:
        return jr_fail(r, TMPL_ERR_TYPE, "'%s' object is not iterable", jv_typename(v));
    }
}

const char *jv_typename(jv v) {
    switch (v.t) {
    case JT_UNDEF: return "Undefined";
    case JT_NONE: return "NoneType";
    case JT_BOOL: return "bool";
    case JT_INT: return "int";
    case JT_FLOAT: return "float";
    case JT_STR: return "str";
    case JT_LIST:
        switch (v.u.l->kind) {
        case JL_TUPLE: return "tuple";
        case JL_GEN: return "generator";
        case JL_ITEMS: return "dict_items";
        case JL_KEYS: return "dict_keys";
        case JL_VALUES: return "dict_values";
        default: return "list";
        }
    case JT_DICT: return "dict";
    case JT_NS: return "Namespace";
    case JT_MACRO: return "Macro";
    case JT_FUNC: return "function";
    case JT_METHOD: return "builtin_function_or_method";
    case JT_LOOP: return "LoopContext";
    default: return "object";
    }
}

const char *jv_objdesc(jv v) {
    switch (v.t) {
    case JT_NONE: return "None";
    case JT_BOOL: return "bool object";
    case JT_INT: return "int object";
    case JT_FLOAT: return "float object";
    case JT_STR: return "str object";
    case JT_LIST:
        switch (v.u.l->kind) {
        case JL_TUPLE: return "tuple object";
        case JL_GEN: return "generator object";
        case JL_ITEMS: return "dict_items object";
        case JL_KEYS: return "dict_keys object";
        case JL_VALUES: return "dict_values object";
        default: return "list object";
        }
    case JT_DICT: return "dict object";
    case JT_NS: return "jinja2.utils.Namespace object";
    case JT_MACRO: return "jinja2.runtime.Macro object";
    case JT_LOOP: return "jinja2.runtime.LoopContext object";
    case JT_FUNC: return "function object";
    case JT_METHOD: return "builtin_function_or_method object";
    default: return "jinja2.runtime.Undefined object";
    }
}
