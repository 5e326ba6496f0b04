/* seqfilters.c: jinja2's filters over sequences and mappings (sort, dictsort, unique, min/max, sum,
 * select/reject(attr), map, join, first/last, list, length, items, batch, slice, reverse), with
 * Python's stable sorting and jinja2's case-insensitive keys. Lazy results (map, select, ...) are
 * generator-kind lists, as in jinja2. Registered in filters.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/filters.h"
#include "template/jinja.h"
#include "template/strings.h"

/* ---------------------------------------------------------------- sorting */

typedef struct {
    jrt *r;
    const jv *keys;
    int reverse;
    int failed;
} sortctx;

static int key_lt(sortctx *c, size_t a, size_t b) {
    int res;
    if (c->failed) return 0;
    if (c->reverse ? jv_cmp(c->r, c->keys[b], c->keys[a], &res) : jv_cmp(c->r, c->keys[a], c->keys[b], &res)) {
        c->failed = 1;
        return 0;
    }
    return res == -1;
}

/* Stable merge sort of idx[0..n) by keys (Python's sorted(), reverse keeping equal items in order). */

static int sort_idx(jrt *r, const jv *keys, size_t *idx, size_t n, int reverse) {
    if (jr_step(r, n * 4)) return JE_FAIL;
    size_t *tmp = jr_alloc(r, (n + 1) * sizeof(size_t));
    if (!tmp) return JE_FAIL;
    sortctx c = {r, keys, reverse, 0};
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = key_lt(&c, idx[j], idx[i]) ? idx[j++] : idx[i++];
            while (i < mid) tmp[k++] = idx[i++];
            while (j < hi) tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(size_t));
        if (c.failed) return JE_FAIL;
    }
    return c.failed ? JE_FAIL : 0;
}

static int fold_case(jrt *r, jv v, int case_sensitive, jv *out) {
    if (case_sensitive || v.t != JT_STR) return *out = v, 0;
    return jm_case(r, v.u.s, 0, out);
}

/* Sort key of an item: the item, an attribute path, or a tuple of comma-separated paths. */

static int sort_key(jrt *r, jv item, const jstr *attr, int cs, jv *out) {
    if (!attr) return fold_case(r, item, cs, out);
    const char *comma = memchr(attr->p, ',', attr->len);
    if (!comma) {
        jv v;
        return jf_attr_get(r, item, attr, &v) || fold_case(r, v, cs, out);
    }
    size_t parts = 1;
    for (size_t i = 0; i < attr->len; i++) parts += attr->p[i] == ',';
    jlist *l = jlist_new(r, JL_LIST, parts);
    if (!l) return JE_FAIL;
    size_t i = 0, k = 0;
    while (k < parts) {
        size_t e = i;
        while (e < attr->len && attr->p[e] != ',') e++;
        jstr part = {attr->p + i, e - i, -1, NULL};
        jv v;
        if (jf_attr_get(r, item, &part, &v) || fold_case(r, v, cs, &l->v[k])) return JE_FAIL;
        k++;
        i = e + 1;
    }
    return jf_ret_list(l, out);
}

static int f_batch_slice(jrt *r, jv v, jargs *a, jv *out, int is_slice) {
    const char *params_[] = {is_slice ? "slices" : "linecount", "fill_with"};
    jv p[2];
    if (jargs_bind(r, is_slice ? "slice" : "batch", a, params_, 2, p)) return JE_FAIL;
    int64_t k = 0;
    const jv *items;
    size_t n;
    if (jf_want_int(r, p[0], is_slice ? "slices" : "linecount", &k) || jf_iter(r, v, &items, &n)) return JE_FAIL;
    if (k <= 0) return jr_fail(r, TMPL_ERR_TYPE, "%s must be positive", is_slice ? "slices" : "linecount");
    int fill = GIVEN(1) && p[1].t != JT_NONE;
    size_t groups = is_slice ? (size_t)k : (n + (size_t)k - 1) / (size_t)k;
    if (is_slice && (uint64_t)k > n + 1000) return jr_fail(r, TMPL_ERR_LIMIT, "too many slices");
    jlist *res = jlist_new(r, JL_GEN, groups);
    if (!res) return JE_FAIL;
    size_t per = is_slice ? n / (size_t)k : (size_t)k, extra = is_slice ? n % (size_t)k : 0, off = 0;
    for (size_t g = 0; g < groups; g++) {
        size_t take = is_slice ? per + (g < extra) : (n - off < per ? n - off : per);
        size_t len = take + (fill && (is_slice ? (extra && g >= extra) : take < per) ? (is_slice ? 1 : per - take) : 0);
        jlist *l = jlist_new(r, JL_LIST, len);
        if (!l) return JE_FAIL;
        memcpy(l->v, items + off, take * sizeof(jv));
        for (size_t i = take; i < len; i++) l->v[i] = p[1];
        off += take;
        res->v[g].t = JT_LIST;
        res->v[g].u.l = l;
    }
    if (!is_slice && groups && res->v[groups - 1].u.l->n == 0) res->n--;
    return jf_ret_list(res, out);
}

int jf_batch(jrt *r, jv v, jargs *a, jv *out) { return f_batch_slice(r, v, a, out, 0); }

int jf_slice(jrt *r, jv v, jargs *a, jv *out) { return f_batch_slice(r, v, a, out, 1); }

int jf_dictsort(jrt *r, jv v, jargs *a, jv *out) {
    BIND("dictsort", "case_sensitive", "by", "reverse");
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    if (v.t != JT_DICT) return jr_fail(r, TMPL_ERR_TYPE, "'%s' object has no attribute 'items'", jv_typename(v));
    int cs = GIVEN(0) && jv_truthy(p[0]), by_value = 0;
    if (GIVEN(1)) {
        if (jv_is_str(p[1], "value")) by_value = 1;
        else if (!jv_is_str(p[1], "key")) return jr_fail(r, TMPL_ERR_TYPE, "You can only sort by either \"key\" or \"value\"");
    }
    const jdict *d = v.u.d;
    jv *keys = jr_alloc(r, (d->n + 1) * sizeof(jv));
    size_t *idx = jr_alloc(r, (d->n + 1) * sizeof(size_t));
    jlist *l = jlist_new(r, JL_LIST, d->n);
    if (!keys || !idx || !l) return JE_FAIL;
    for (size_t i = 0; i < d->n; i++) {
        idx[i] = i;
        if (fold_case(r, by_value ? d->v[i] : d->k[i], cs, &keys[i])) return JE_FAIL;
    }
    if (sort_idx(r, keys, idx, d->n, GIVEN(2) && jv_truthy(p[2]))) return JE_FAIL;
    for (size_t i = 0; i < d->n; i++) {
        jlist *t = jlist_new(r, JL_TUPLE, 2);
        if (!t) return JE_FAIL;
        t->v[0] = d->k[idx[i]];
        t->v[1] = d->v[idx[i]];
        l->v[i].t = JT_LIST;
        l->v[i].u.l = t;
    }
    return jf_ret_list(l, out);
}

static int f_first_last(jrt *r, jv v, jargs *a, jv *out, int last) {
    BIND(last ? "last" : "first");
    (void)p;
    if (v.t == JT_STR) {
        const jstr *s = v.u.s;
        if (!s->len) goto empty;
        size_t b = last ? s->len - 1 : 0, e;
        while (last && b > 0 && ((unsigned char)s->p[b] & 0xC0) == 0x80) b--;
        e = b + 1;
        while (e < s->len && ((unsigned char)s->p[e] & 0xC0) == 0x80) e++;
        int rc = 0;
        *out = jv_strn(r, s->p + b, e - b, &rc);
        return rc;
    }
    if (last && v.t == JT_LIST && v.u.l->kind == JL_GEN)
        return jr_fail(r, TMPL_ERR_TYPE, "'generator' object is not reversible");
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    if (n) return *out = items[last ? n - 1 : 0], 0;
empty:
    *out = jv_undef_hint(r, last ? "No last item, sequence was empty." : "No first item, sequence was empty.");
    return r->failed ? JE_FAIL : 0;
}

int jf_first(jrt *r, jv v, jargs *a, jv *out) { return f_first_last(r, v, a, out, 0); }

int jf_last(jrt *r, jv v, jargs *a, jv *out) { return f_first_last(r, v, a, out, 1); }

/* Python float(str): surrounding whitespace, sign, digits with single underscores, inf/nan. */

int jf_items(jrt *r, jv v, jargs *a, jv *out) {
    BIND("items");
    (void)p;
    if (v.t == JT_UNDEF) return jf_ret_list(jlist_new(r, JL_GEN, 0), out);
    if (v.t != JT_DICT) return jr_fail(r, TMPL_ERR_TYPE, "Can only get item pairs from a mapping.");
    jlist *l = jlist_new(r, JL_GEN, v.u.d->n);
    if (!l) return JE_FAIL;
    for (size_t i = 0; i < v.u.d->n; i++) {
        jlist *t = jlist_new(r, JL_TUPLE, 2);
        if (!t) return JE_FAIL;
        t->v[0] = v.u.d->k[i];
        t->v[1] = v.u.d->v[i];
        l->v[i].t = JT_LIST;
        l->v[i].u.l = t;
    }
    return jf_ret_list(l, out);
}

int jf_join(jrt *r, jv v, jargs *a, jv *out) {
    BIND("join", "d", "attribute");
    const jstr *sep = NULL, *s;
    static const jstr empty = {"", 0, 0, NULL};
    if (GIVEN(0)) {
        if (jf_to_str(r, p[0], &sep)) return JE_FAIL;
    } else {
        sep = &empty;
    }
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    jbuf *b = jb_new(r, 64);
    if (!b) return JE_FAIL;
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (GIVEN(1) && p[1].t != JT_NONE) {
            const jstr *path;
            if (p[1].t == JT_INT) {
                if (je_getitem(r, items[i], p[1], &x)) return JE_FAIL;
            } else if (jf_to_str(r, p[1], &path) || jf_attr_get(r, items[i], path, &x)) {
                return JE_FAIL;
            }
        }
        if (i && jb_put(r, b, sep->p, sep->len)) return JE_FAIL;
        if (jf_to_str(r, x, &s) || jb_put(r, b, s->p, s->len)) return JE_FAIL;
    }
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

int jf_length(jrt *r, jv v, jargs *a, jv *out) {
    BIND("length");
    (void)p;
    int64_t n;
    if (jv_len(r, v, &n)) return JE_FAIL;
    return *out = jv_int(n), 0;
}

int jf_list(jrt *r, jv v, jargs *a, jv *out) {
    BIND("list");
    (void)p;
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    jlist *l = jlist_new(r, JL_LIST, n);
    if (!l) return JE_FAIL;
    memcpy(l->v, items, n * sizeof(jv));
    return jf_ret_list(l, out);
}

/* select/reject/selectattr/rejectattr: mode bit 1 = attr, bit 2 = reject */

static int select_common(jrt *r, jv v, jargs *a, jv *out, int mode) {
    const jv *items;
    size_t n, off = 0;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    const jstr *attr = NULL, *test = NULL;
    if (a->nkw) return jr_fail(r, TMPL_ERR_TYPE, "unexpected keyword argument");
    if (mode & 1) {
        if (a->npos < 1) return jr_fail(r, TMPL_ERR_TYPE, "Missing parameter for attribute name");
        if (jf_to_str(r, a->pos[0], &attr)) return JE_FAIL;
        off = 1;
    }
    if (a->npos > off) {
        if (a->pos[off].t != JT_STR) return jr_fail(r, TMPL_ERR_TYPE, "test name must be a string");
        test = a->pos[off].u.s;
        if (!jt_exists(test->p, test->len))
            return jr_fail(r, TMPL_ERR_TYPE, "No test named '%.*s'.", (int)test->len, test->p);
        off++;
    }
    jargs ta = {.pos = a->pos + off, .npos = a->npos - off};
    jlist *l = jlist_new(r, JL_GEN, n);
    if (!l) return JE_FAIL;
    l->n = 0;
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        int res;
        if (jr_step(r, 1)) return JE_FAIL;
        if (attr && jf_attr_get(r, items[i], attr, &x)) return JE_FAIL;
        if (test) {
            if (jt_apply(r, test, x, &ta, &res)) return JE_FAIL;
        } else {
            res = jv_truthy(x);
        }
        if (res != ((mode & 2) != 0)) l->v[l->n++] = items[i];
    }
    return jf_ret_list(l, out);
}

int jf_select(jrt *r, jv v, jargs *a, jv *out) { return select_common(r, v, a, out, 0); }

int jf_reject(jrt *r, jv v, jargs *a, jv *out) { return select_common(r, v, a, out, 2); }

int jf_selectattr(jrt *r, jv v, jargs *a, jv *out) { return select_common(r, v, a, out, 1); }

int jf_rejectattr(jrt *r, jv v, jargs *a, jv *out) { return select_common(r, v, a, out, 3); }

int jf_map(jrt *r, jv v, jargs *a, jv *out) {
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    jlist *l = jlist_new(r, JL_GEN, n);
    if (!l) return JE_FAIL;
    const jstr *attr = NULL;
    jv def = {.t = JT_ABSENT};
    for (size_t k = 0; k < a->nkw; k++) {
        if (jv_is_str(jv_str(a->kwn[k]), "attribute")) {
            if (jf_to_str(r, a->kwv[k], &attr)) return JE_FAIL;
        } else if (jv_is_str(jv_str(a->kwn[k]), "default")) {
            def = a->kwv[k];
        } else if (!a->npos) {
            return jr_fail(r, TMPL_ERR_TYPE, "Unexpected keyword argument '%.*s'", (int)a->kwn[k]->len, a->kwn[k]->p);
        }
    }
    if (attr) {
        if (a->npos) return jr_fail(r, TMPL_ERR_TYPE, "map() with attribute takes no positional arguments");
        for (size_t i = 0; i < n; i++) {
            if (jr_step(r, 1) || jf_attr_get(r, items[i], attr, &l->v[i])) return JE_FAIL;
            if (l->v[i].t == JT_UNDEF && def.t != JT_ABSENT && def.t != JT_NONE) l->v[i] = def;
        }
        return jf_ret_list(l, out);
    }
    if (!a->npos) return jr_fail(r, TMPL_ERR_TYPE, "map requires a filter argument");
    if (a->pos[0].t != JT_STR) return jr_fail(r, TMPL_ERR_TYPE, "map: filter name must be a string");
    const jstr *fname = a->pos[0].u.s;
    jargs fa = {.pos = a->pos + 1, .npos = a->npos - 1, .kwn = a->kwn, .kwv = a->kwv, .nkw = a->nkw};
    for (size_t i = 0; i < n; i++)
        if (jr_step(r, 1) || jf_apply(r, fname, items[i], &fa, &l->v[i])) return JE_FAIL;
    return jf_ret_list(l, out);
}

static int f_minmax(jrt *r, jv v, jargs *a, jv *out, int want_max) {
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    if (!n) {
        *out = jv_undef_hint(r, "No aggregated item, sequence was empty.");
        return r->failed ? JE_FAIL : 0;
    }
    const jstr *attr = NULL;
    if (GIVEN(1) && p[1].t != JT_NONE && jf_to_str(r, p[1], &attr)) return JE_FAIL;
    int cs = GIVEN(0) && jv_truthy(p[0]);
    size_t best = 0;
    jv bk;
    if (sort_key(r, items[0], attr, cs, &bk)) return JE_FAIL;
    for (size_t i = 1; i < n; i++) {
        jv k;
        int c;
        if (sort_key(r, items[i], attr, cs, &k) || jv_cmp(r, k, bk, &c)) return JE_FAIL;
        if (want_max ? c == 1 : c == -1) best = i, bk = k;
    }
    return *out = items[best], 0;
}

int jf_max(jrt *r, jv v, jargs *a, jv *out) { return f_minmax(r, v, a, out, 1); }

int jf_min(jrt *r, jv v, jargs *a, jv *out) { return f_minmax(r, v, a, out, 0); }

int jf_reverse(jrt *r, jv v, jargs *a, jv *out) {
    BIND("reverse");
    (void)p;
    if (v.t == JT_STR) {
        const jstr *s = v.u.s;
        jbuf *b = jb_new(r, s->len);
        if (!b) return JE_FAIL;
        for (size_t e = s->len; e > 0;) {
            size_t st = e - 1;
            while (st > 0 && ((unsigned char)s->p[st] & 0xC0) == 0x80) st--;
            if (jb_put(r, b, s->p + st, e - st)) return JE_FAIL;
            e = st;
        }
        const jstr *res = jb_str(r, b);
        if (!res) return JE_FAIL;
        *out = jv_str(res);
        out->m = v.m;
        return 0;
    }
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    int gen = v.t == JT_LIST && v.u.l->kind != JL_GEN;
    jlist *l = jlist_new(r, gen ? JL_GEN : JL_LIST, n);
    if (!l) return JE_FAIL;
    for (size_t i = 0; i < n; i++) l->v[i] = items[n - 1 - i];
    return jf_ret_list(l, out);
}

int jf_sort(jrt *r, jv v, jargs *a, jv *out) {
    BIND("sort", "reverse", "case_sensitive", "attribute");
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    const jstr *attr = NULL;
    if (GIVEN(2) && p[2].t != JT_NONE) {
        if (p[2].t == JT_INT) {
            const jstr *tmp;
            if (jv_to_str(r, p[2], &tmp)) return JE_FAIL;
            attr = tmp;
        } else if (jf_to_str(r, p[2], &attr)) {
            return JE_FAIL;
        }
    }
    int cs = GIVEN(1) && jv_truthy(p[1]);
    jv *keys = jr_alloc(r, (n + 1) * sizeof(jv));
    size_t *idx = jr_alloc(r, (n + 1) * sizeof(size_t));
    jlist *l = jlist_new(r, JL_LIST, n);
    if (!keys || !idx || !l) return JE_FAIL;
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        if (sort_key(r, items[i], attr, cs, &keys[i])) return JE_FAIL;
    }
    if (sort_idx(r, keys, idx, n, GIVEN(0) && jv_truthy(p[0]))) return JE_FAIL;
    for (size_t i = 0; i < n; i++) l->v[i] = items[idx[i]];
    return jf_ret_list(l, out);
}

int jf_sum(jrt *r, jv v, jargs *a, jv *out) {
    BIND("sum", "attribute", "start");
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    const jstr *attr = NULL;
    if (GIVEN(0) && p[0].t != JT_NONE && jf_to_str(r, p[0], &attr)) return JE_FAIL;
    jv acc = GIVEN(1) ? p[1] : jv_int(0);
    int is_f = acc.t == JT_FLOAT;
    int64_t ia = acc.t == JT_INT || acc.t == JT_BOOL ? acc.u.i : 0;
    double fa = is_f ? acc.u.f : 0;
    if (acc.t != JT_INT && acc.t != JT_BOOL && acc.t != JT_FLOAT)
        return jr_fail(r, TMPL_ERR_UNSUPPORTED, "sum() of non-numbers is not supported");
    for (size_t i = 0; i < n; i++) {
        jv x = items[i];
        if (attr && jf_attr_get(r, items[i], attr, &x)) return JE_FAIL;
        if (x.t == JT_UNDEF) return jv_undef_error(r, x);
        if (x.t == JT_FLOAT) {
            if (!is_f) fa = (double)ia, is_f = 1;
            fa += x.u.f;
        } else if (x.t == JT_INT || x.t == JT_BOOL) {
            if (is_f) fa += (double)x.u.i;
            else if (__builtin_add_overflow(ia, x.u.i, &ia)) return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow");
        } else {
            return jr_fail(r, TMPL_ERR_TYPE, "unsupported operand type(s) for +: '%s' and '%s'", is_f ? "float" : "int",
                           jv_typename(x));
        }
    }
    return *out = is_f ? jv_float(fa) : jv_int(ia), 0;
}

int jf_unique(jrt *r, jv v, jargs *a, jv *out) {
    BIND("unique", "case_sensitive", "attribute");
    const jv *items;
    size_t n;
    if (jf_iter(r, v, &items, &n)) return JE_FAIL;
    const jstr *attr = NULL;
    if (GIVEN(1) && p[1].t != JT_NONE && jf_to_str(r, p[1], &attr)) return JE_FAIL;
    int cs = GIVEN(0) && jv_truthy(p[0]);
    jdict *seen = jdict_new(r, 8);
    jlist *l = jlist_new(r, JL_GEN, n);
    if (!seen || !l) return JE_FAIL;
    l->n = 0;
    for (size_t i = 0; i < n; i++) {
        jv k, tmp;
        if (sort_key(r, items[i], attr, cs, &k)) return JE_FAIL;
        if (jdict_get(seen, k, &tmp)) continue;
        if (jdict_set(r, seen, k, jv_none())) return JE_FAIL;
        l->v[l->n++] = items[i];
    }
    return jf_ret_list(l, out);
}
