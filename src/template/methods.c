/* methods.c: Python attributes and methods of template values (str via strings.c, dict, list,
 * tuple, the loop object), jinja2's tests (`x is defined`, ...), and the globals of transformers'
 * environment: range (capped at 100,000 items like the sandbox), namespace, dict,
 * raise_exception and strftime_now. Mutating methods (list.append, dict.update, ...) are found but
 * unsafe: using them raises the sandbox's security error, as in transformers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/jinja.h"
#include "template/strings.h"

enum {
    JM_DICT_ITEMS = 1000, JM_DICT_KEYS, JM_DICT_VALUES, JM_DICT_GET, JM_DICT_COPY,
    JM_LIST_INDEX, JM_LIST_COUNT, JM_LIST_COPY, JM_LOOP_CYCLE, JM_LOOP_CHANGED,
};

static int streq(const jstr *s, const char *c) { return s->len == strlen(c) && memcmp(s->p, c, s->len) == 0; }

static int in_list(const jstr *s, const char *const *names, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (streq(s, names[i])) return 1;
    return 0;
}

static int bind(jrt *r, jv self, int id, jv *out) {
    jmethod *m = jr_alloc(r, sizeof *m);
    if (!m) return JE_FAIL;
    m->self = self;
    m->id = id;
    out->t = JT_METHOD;
    out->u.bm = m;
    return 1;
}

static int unsafe(jrt *r, jv self, const jstr *name, jv *out) {
    *out = jv_undef_attr(r, self, jv_str(name), UD_UNSAFE);
    return r->failed ? JE_FAIL : 1;
}

int jm_lookup(jrt *r, jv self, const jstr *name, jv *out) {
    static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
    static const char *const list_unsafe[] = {"append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"};
    switch (self.t) {
    case JT_STR: {
        int id = js_method_find(name->p, name->len);
        return id < 0 ? 0 : bind(r, self, id, out);
    }
    case JT_DICT:
        if (streq(name, "items")) return bind(r, self, JM_DICT_ITEMS, out);
        if (streq(name, "keys")) return bind(r, self, JM_DICT_KEYS, out);
        if (streq(name, "values")) return bind(r, self, JM_DICT_VALUES, out);
        if (streq(name, "get")) return bind(r, self, JM_DICT_GET, out);
        if (streq(name, "copy")) return bind(r, self, JM_DICT_COPY, out);
        if (in_list(name, dict_unsafe, sizeof dict_unsafe / sizeof dict_unsafe[0])) return unsafe(r, self, name, out);
        return 0;
    case JT_LIST: {
        int kind = self.u.l->kind;
        if (kind != JL_LIST && kind != JL_TUPLE) return 0;
        if (streq(name, "index")) return bind(r, self, JM_LIST_INDEX, out);
        if (streq(name, "count")) return bind(r, self, JM_LIST_COUNT, out);
        if (kind == JL_LIST && streq(name, "copy")) return bind(r, self, JM_LIST_COPY, out);
        if (kind == JL_LIST && in_list(name, list_unsafe, sizeof list_unsafe / sizeof list_unsafe[0]))
            return unsafe(r, self, name, out);
        return 0;
    }
    case JT_LOOP: {
        const jloop *lp = self.u.lp;
        int64_t i = lp->index0, n = lp->length;
        if (streq(name, "index")) *out = jv_int(i + 1);
        else if (streq(name, "index0")) *out = jv_int(i);
        else if (streq(name, "revindex")) *out = jv_int(n - i);
        else if (streq(name, "revindex0")) *out = jv_int(n - i - 1);
        else if (streq(name, "first")) *out = jv_bool(i == 0);
        else if (streq(name, "last")) *out = jv_bool(i == n - 1);
        else if (streq(name, "length")) *out = jv_int(n);
        else if (streq(name, "depth")) *out = jv_int(lp->depth);
        else if (streq(name, "depth0")) *out = jv_int(lp->depth - 1);
        else if (streq(name, "previtem"))
            *out = i > 0 ? lp->items[i - 1] : jv_undef_hint(r, "there is no previous item");
        else if (streq(name, "nextitem"))
            *out = i + 1 < n ? lp->items[i + 1] : jv_undef_hint(r, "there is no next item");
        else if (streq(name, "cycle")) return bind(r, self, JM_LOOP_CYCLE, out);
        else if (streq(name, "changed")) return bind(r, self, JM_LOOP_CHANGED, out);
        else return 0;
        return r->failed ? JE_FAIL : 1;
    }
    default: return 0;
    }
}

static int ret_list(jlist *l, jv *out) {
    if (!l) return JE_FAIL;
    out->t = JT_LIST;
    out->u.l = l;
    return 0;
}

int jm_call(jrt *r, jmethod *m, jargs *a, jv *out) {
    jv self = m->self, p[2];
    static const char *const one[] = {"x"}, *const get_p[] = {"key", "default"};
    if (m->id < 1000) return js_method_call(r, self.u.s, m->id, a, out, self.m);
    switch (m->id) {
    case JM_DICT_ITEMS:
    case JM_DICT_KEYS:
    case JM_DICT_VALUES: {
        if (jargs_bind(r, "items", a, NULL, 0, p)) return JE_FAIL;
        const jdict *d = self.u.d;
        int kind = m->id == JM_DICT_ITEMS ? JL_ITEMS : m->id == JM_DICT_KEYS ? JL_KEYS : JL_VALUES;
        jlist *l = jlist_new(r, kind, d->n);
        if (!l) return JE_FAIL;
        for (size_t i = 0; i < d->n; i++) {
            if (kind == JL_KEYS) l->v[i] = d->k[i];
            else if (kind == JL_VALUES) l->v[i] = d->v[i];
            else {
                jlist *t = jlist_new(r, JL_TUPLE, 2);
                if (!t) return JE_FAIL;
                t->v[0] = d->k[i];
                t->v[1] = d->v[i];
                l->v[i].t = JT_LIST;
                l->v[i].u.l = t;
            }
        }
        if (jr_step(r, d->n / 8)) return JE_FAIL;
        return ret_list(l, out);
    }
    case JM_DICT_GET:
        if (jargs_bind(r, "get", a, get_p, 2, p)) return JE_FAIL;
        if (p[0].t == JT_ABSENT) return jr_fail(r, TMPL_ERR_TYPE, "get expected at least 1 argument, got 0");
        if (p[0].t == JT_DICT || p[0].t == JT_NS || (p[0].t == JT_LIST && p[0].u.l->kind != JL_TUPLE))
            return jr_fail(r, TMPL_ERR_TYPE, "unhashable type: '%s'", jv_typename(p[0]));
        if (p[0].t == JT_UNDEF) return jv_undef_error(r, p[0]);
        if (jdict_get(self.u.d, p[0], out)) return 0;
        *out = p[1].t == JT_ABSENT ? jv_none() : p[1];
        return 0;
    case JM_DICT_COPY: {
        if (jargs_bind(r, "copy", a, NULL, 0, p)) return JE_FAIL;
        jdict *d = jdict_new(r, self.u.d->n);
        if (!d) return JE_FAIL;
        for (size_t i = 0; i < self.u.d->n; i++)
            if (jdict_set(r, d, self.u.d->k[i], self.u.d->v[i])) return JE_FAIL;
        out->t = JT_DICT;
        out->u.d = d;
        return 0;
    }
    case JM_LIST_INDEX:
    case JM_LIST_COUNT: {
        if (jargs_bind(r, m->id == JM_LIST_INDEX ? "index" : "count", a, one, 1, p)) return JE_FAIL;
        if (p[0].t == JT_ABSENT) return jr_fail(r, TMPL_ERR_TYPE, "expected 1 argument, got 0");
        const jlist *l = self.u.l;
        int64_t cnt = 0;
        if (jr_step(r, l->n / 16)) return JE_FAIL;
        for (size_t i = 0; i < l->n; i++)
            if (jv_eq(l->v[i], p[0])) {
                if (m->id == JM_LIST_INDEX) return *out = jv_int((int64_t)i), 0;
                cnt++;
            }
        if (m->id == JM_LIST_INDEX) return jr_fail(r, TMPL_ERR_TYPE, "%s.index(x): x not in %s", jv_typename(self), jv_typename(self));
        return *out = jv_int(cnt), 0;
    }
    case JM_LIST_COPY: {
        if (jargs_bind(r, "copy", a, NULL, 0, p)) return JE_FAIL;
        jlist *l = jlist_new(r, JL_LIST, self.u.l->n);
        if (!l) return JE_FAIL;
        memcpy(l->v, self.u.l->v, self.u.l->n * sizeof(jv));
        return ret_list(l, out);
    }
    case JM_LOOP_CYCLE:
        if (a->nkw) return jr_fail(r, TMPL_ERR_TYPE, "cycle() got an unexpected keyword argument");
        if (!a->npos) return jr_fail(r, TMPL_ERR_TYPE, "no items for cycling given");
        *out = a->pos[self.u.lp->index0 % (int64_t)a->npos];
        return 0;
    default: return jr_fail(r, TMPL_ERR_UNSUPPORTED, "this method is not supported");
    }
}

/* ---------------------------------------------------------------- tests */

static const char *const test_names[] = {
    "==", "!=", "<", "<=", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
    "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt",
    "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined",
    "upper",
};

int jt_exists(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (strlen(test_names[i]) == n && memcmp(test_names[i], name, n) == 0) return 1;
    return 0;
}

int je_contains(jrt *r, jv hay, jv needle, int *res);

static int is_numv(jv v) { return v.t == JT_INT || v.t == JT_BOOL || v.t == JT_FLOAT; }

static int mod_is(jrt *r, jv v, jv m, int want_zero_or_one, int *res) {
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    if (m.t == JT_UNDEF) return jv_undef_error(r, m);
    if (!is_numv(v) || !is_numv(m)) {
        if (v.t == JT_STR) return jr_fail(r, TMPL_ERR_TYPE, "not all arguments converted during string formatting");
        return jr_fail(r, TMPL_ERR_TYPE, "unsupported operand type(s) for %%: '%s' and '%s'", jv_typename(v),
                       jv_typename(m));
    }
    if (v.t != JT_FLOAT && m.t != JT_FLOAT) {
        if (m.u.i == 0) return jr_fail(r, TMPL_ERR_TYPE, "integer division or modulo by zero");
        int64_t x = m.u.i == -1 ? 0 : v.u.i % m.u.i;
        if (x != 0 && ((x < 0) != (m.u.i < 0))) x += m.u.i;
        *res = x == want_zero_or_one;
        return 0;
    }
    double fm = m.t == JT_FLOAT ? m.u.f : (double)m.u.i, fv = v.t == JT_FLOAT ? v.u.f : (double)v.u.i;
    if (fm == 0.0) return jr_fail(r, TMPL_ERR_TYPE, "float modulo");
    double x = fmod(fv, fm);
    if (x != 0.0 && ((x < 0) != (fm < 0))) x += fm;
    *res = x == (double)want_zero_or_one;
    return 0;
}

int jt_apply(jrt *r, const jstr *name, jv v, jargs *a, int *res) {
    jv arg = a->npos ? a->pos[0] : (a->nkw ? a->kwv[0] : jv_undef());
    size_t nargs = a->npos + a->nkw;
    int c;
    if (streq(name, "defined")) return *res = v.t != JT_UNDEF, 0;
    if (streq(name, "undefined")) return *res = v.t == JT_UNDEF, 0;
    if (streq(name, "none")) return *res = v.t == JT_NONE, 0;
    if (streq(name, "boolean")) return *res = v.t == JT_BOOL, 0;
    if (streq(name, "true")) return *res = v.t == JT_BOOL && v.u.i, 0;
    if (streq(name, "false")) return *res = v.t == JT_BOOL && !v.u.i, 0;
    if (streq(name, "integer")) return *res = v.t == JT_INT, 0;
    if (streq(name, "float")) return *res = v.t == JT_FLOAT, 0;
    if (streq(name, "number")) return *res = is_numv(v), 0;
    if (streq(name, "string")) return *res = v.t == JT_STR, 0;
    if (streq(name, "mapping")) return *res = v.t == JT_DICT, 0;
    if (streq(name, "iterable")) return *res = v.t == JT_STR || v.t == JT_LIST || v.t == JT_DICT || v.t == JT_UNDEF || v.t == JT_LOOP, 0;
    if (streq(name, "sequence"))
        return *res = v.t == JT_STR || v.t == JT_DICT || v.t == JT_UNDEF ||
                      (v.t == JT_LIST && (v.u.l->kind == JL_LIST || v.u.l->kind == JL_TUPLE)), 0;
    if (streq(name, "callable"))
        return *res = v.t == JT_MACRO || v.t == JT_FUNC || v.t == JT_METHOD || v.t == JT_UNDEF || v.t == JT_LOOP, 0;
    if (streq(name, "escaped")) return *res = 0, 0;
    if (streq(name, "filter") || streq(name, "test")) {
        if (v.t != JT_STR) return *res = 0, 0;
        *res = name->p[0] == 'f' ? jf_find(v.u.s->p, v.u.s->len) != NULL : jt_exists(v.u.s->p, v.u.s->len);
        return 0;
    }
    if (streq(name, "lower") || streq(name, "upper")) {
        const jstr *s;
        if (jv_to_str(r, v, &s)) return JE_FAIL;
        jv tmp;
        jargs none = {0};
        if (js_method_call(r, s, name->p[0] == 'l' ? JSM_ISLOWER : JSM_ISUPPER, &none, &tmp, 0)) return JE_FAIL;
        return *res = (int)tmp.u.i, 0;
    }
    if (streq(name, "odd") || streq(name, "even")) return mod_is(r, v, jv_int(2), name->p[0] == 'o', res);
    if (nargs != 1)
        return jr_fail(r, TMPL_ERR_TYPE, "test '%.*s' takes exactly one argument (%zu given)", (int)name->len, name->p,
                       nargs);
    if (streq(name, "divisibleby")) return mod_is(r, v, arg, 0, res);
    if (streq(name, "in")) return je_contains(r, arg, v, res);
    if (streq(name, "eq") || streq(name, "equalto") || streq(name, "==")) return *res = jv_eq(v, arg), 0;
    if (streq(name, "ne") || streq(name, "!=")) return *res = !jv_eq(v, arg), 0;
    if (streq(name, "sameas")) {
        if (v.t != arg.t) return *res = 0, 0;
        switch (v.t) {
        case JT_NONE:
        case JT_UNDEF: *res = v.t == JT_NONE || v.u.ud == arg.u.ud; break;
        case JT_BOOL: *res = v.u.i == arg.u.i; break;
        case JT_INT: *res = v.u.i == arg.u.i && v.u.i >= -5 && v.u.i <= 256; break;
        case JT_FLOAT: *res = 0; break;
        case JT_FUNC: *res = v.u.i == arg.u.i; break;
        default: *res = v.u.l == arg.u.l; break;
        }
        return 0;
    }
    if (jv_cmp(r, v, arg, &c)) return JE_FAIL;
    if (c == 2) return *res = 0, 0;
    if (streq(name, "lt") || streq(name, "lessthan") || streq(name, "<")) *res = c < 0;
    else if (streq(name, "le") || streq(name, "<=")) *res = c <= 0;
    else if (streq(name, "gt") || streq(name, "greaterthan") || streq(name, ">")) *res = c > 0;
    else *res = c >= 0; /* ge */
    return 0;
}

/* ---------------------------------------------------------------- globals */

static const struct {
    const char *name;
    int id;
} globals[] = {{"range", JG_RANGE},
               {"namespace", JG_NAMESPACE},
               {"dict", JG_DICT},
               {"raise_exception", JG_RAISE},
               {"strftime_now", JG_STRFTIME}};

int jg_lookup(const jstr *name, jv *out) {
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (streq(name, globals[i].name)) {
            out->t = JT_FUNC;
            out->u.i = globals[i].id;
            return 1;
        }
    return 0;
}

/* dict(*args, **kwargs) as Python builds it: one mapping or iterable of pairs, then keywords. */
static int build_dict(jrt *r, const char *fname, jargs *a, jdict **out) {
    jdict *d = jdict_new(r, 4);
    if (!d) return JE_FAIL;
    if (a->npos > 1) return jr_fail(r, TMPL_ERR_TYPE, "%s expected at most 1 argument, got %zu", fname, a->npos);
    if (a->npos == 1) {
        jv src = a->pos[0];
        if (src.t == JT_DICT || src.t == JT_NS) {
            for (size_t i = 0; i < src.u.d->n; i++)
                if (jdict_set(r, d, src.u.d->k[i], src.u.d->v[i])) return JE_FAIL;
        } else {
            const jv *items;
            size_t n;
            if (jv_iter(r, src, &items, &n)) return JE_FAIL;
            for (size_t i = 0; i < n; i++) {
                const jv *pair;
                size_t pn;
                if (items[i].t != JT_LIST && items[i].t != JT_STR)
                    return jr_fail(r, TMPL_ERR_TYPE, "cannot convert dictionary update sequence element #%zu to a sequence", i);
                if (jv_iter(r, items[i], &pair, &pn)) return JE_FAIL;
                if (pn != 2)
                    return jr_fail(r, TMPL_ERR_TYPE,
                                   "dictionary update sequence element #%zu has length %zu; 2 is required", i, pn);
                if (jdict_set(r, d, pair[0], pair[1])) return JE_FAIL;
            }
        }
    }
    for (size_t k = 0; k < a->nkw; k++)
        if (jdict_set(r, d, jv_str(a->kwn[k]), a->kwv[k])) return JE_FAIL;
    *out = d;
    return 0;
}

static int do_strftime(jrt *r, jargs *a, jv *out) {
    static const char *const fmt_p[] = {"format"};
    jv p[1];
    if (jargs_bind(r, "strftime_now", a, fmt_p, 1, p)) return JE_FAIL;
    if (p[0].t != JT_STR)
        return jr_fail(r, TMPL_ERR_TYPE, "strftime() argument 1 must be str, not %s",
                       p[0].t == JT_ABSENT ? "nothing" : jv_typename(p[0]));
    const jstr *f = p[0].u.s;
    /* %f (microseconds) is Python's own; the rest goes to the C library as Python does */
    jbuf *fb = jb_new(r, f->len + 8);
    if (!fb) return JE_FAIL;
    for (size_t i = 0; i < f->len; i++) {
        if (f->p[i] == '%' && i + 1 < f->len && f->p[i + 1] == 'f') {
            if (jb_put(r, fb, "000000", 6)) return JE_FAIL;
            i++;
        } else if (f->p[i] == '%' && i + 1 < f->len) {
            if (jb_put(r, fb, f->p + i, 2)) return JE_FAIL;
            i++;
        } else if (jb_putc(r, fb, f->p[i] ? f->p[i] : ' ')) {
            return JE_FAIL;
        }
    }
    if (jb_putc(r, fb, 0)) return JE_FAIL;
    time_t now = r->now ? (time_t)r->now : time(NULL);
    struct tm tm;
    if (!localtime_r(&now, &tm)) return jr_fail(r, TMPL_ERR_TYPE, "strftime_now: bad clock");
    size_t cap = fb->used * 8 + 64;
    if (cap > r->max_output) cap = r->max_output;
    char *buf = jr_alloc(r, cap + 1);
    if (!buf) return JE_FAIL;
    size_t n = fb->used > 1 ? strftime(buf, cap, fb->data, &tm) : 0;
    int rc = 0;
    *out = jv_strn(r, buf, n, &rc);
    return rc;
}

int jg_call(jrt *r, int id, jargs *a, jv *out) {
    switch (id) {
    case JG_RANGE: {
        if (a->nkw) return jr_fail(r, TMPL_ERR_TYPE, "range() takes no keyword arguments");
        if (a->npos < 1 || a->npos > 3)
            return jr_fail(r, TMPL_ERR_TYPE, "range expected at most 3 arguments, got %zu", a->npos);
        int64_t v[3] = {0, 0, 1};
        for (size_t i = 0; i < a->npos; i++) {
            if (a->pos[i].t == JT_UNDEF) return jv_undef_error(r, a->pos[i]);
            if (a->pos[i].t != JT_INT && a->pos[i].t != JT_BOOL)
                return jr_fail(r, TMPL_ERR_TYPE, "'%s' object cannot be interpreted as an integer",
                               jv_typename(a->pos[i]));
        }
        if (a->npos == 1) v[1] = a->pos[0].u.i;
        else {
            v[0] = a->pos[0].u.i;
            v[1] = a->pos[1].u.i;
            if (a->npos == 3) v[2] = a->pos[2].u.i;
        }
        if (v[2] == 0) return jr_fail(r, TMPL_ERR_TYPE, "range() arg 3 must not be zero");
        double cnt = 0;
        if (v[2] > 0 && v[1] > v[0]) cnt = ceil(((double)v[1] - (double)v[0]) / (double)v[2]);
        if (v[2] < 0 && v[1] < v[0]) cnt = ceil(((double)v[0] - (double)v[1]) / -(double)v[2]);
        if (cnt > 100000)
            return jr_fail(r, TMPL_ERR_LIMIT,
                           "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        jlist *l = jlist_new(r, JL_LIST, (size_t)cnt);
        if (!l || jr_step(r, (uint64_t)cnt / 16)) return JE_FAIL;
        for (size_t i = 0; i < (size_t)cnt; i++) l->v[i] = jv_int(v[0] + (int64_t)i * v[2]);
        return ret_list(l, out);
    }
    case JG_NAMESPACE:
    case JG_DICT: {
        jdict *d = NULL;
        if (build_dict(r, id == JG_DICT ? "dict" : "namespace", a, &d)) return JE_FAIL;
        out->t = id == JG_DICT ? JT_DICT : JT_NS;
        out->u.d = d;
        return 0;
    }
    case JG_RAISE: {
        static const char *const msg_p[] = {"message"};
        jv p[1];
        if (jargs_bind(r, "raise_exception", a, msg_p, 1, p)) return JE_FAIL;
        if (p[0].t == JT_ABSENT)
            return jr_fail(r, TMPL_ERR_TYPE, "raise_exception() missing 1 required positional argument: 'message'");
        const jstr *s;
        if (jv_to_str(r, p[0], &s)) return JE_FAIL;
        return jr_fail(r, TMPL_ERR_RAISED, "%.*s", (int)(s->len > 500 ? 500 : s->len), s->p);
    }
    case JG_STRFTIME: return do_strftime(r, a, out);
    default: return jr_fail(r, TMPL_ERR_TYPE, "internal error: unknown global %d", id);
    }
}
