/* filters.c: jinja2 3.1's builtin filters on strings and numbers, transformers' tojson (json.dumps
 * with ensure_ascii=False, indent, separators, sort_keys; no HTML escaping), and the registry of all
 * filters (the sequence ones are in seqfilters.c). `safe` and `escape` make Markup strings (see jv.m
 * in jinja.h); string filters keep a Markup a Markup as markupsafe does, `replace` and `title` do
 * not (jinja2 converts with str() there). Not implemented (a clear error when used): groupby,
 * random, urlize, urlencode, wordwrap, xmlattr, filesizeformat. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"
#include "template/filters.h"
#include "template/strings.h"


int jf_ret_list(jlist *l, jv *out) {
    if (!l) return JE_FAIL;
    out->t = JT_LIST;
    out->u.l = l;
    return 0;
}

int jf_to_str(jrt *r, jv v, const jstr **out) {
    if (v.t == JT_UNDEF) {
        static const jstr empty = {"", 0, 0, NULL};
        *out = &empty;
        return 0;
    }
    return jv_to_str(r, v, out);
}

int jf_want_int(jrt *r, jv v, const char *what, int64_t *out) {
    if (v.t == JT_INT || v.t == JT_BOOL) return *out = v.u.i, 0;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    return jr_fail(r, TMPL_ERR_TYPE, "%s must be an integer, not %s", what, jv_typename(v));
}

/* make_attrgetter: "a.b.0" -> item lookups through the sandbox, digits as ints. */
int jf_attr_get(jrt *r, jv item, const jstr *path, jv *out) {
    size_t i = 0;
    *out = item;
    while (i <= path->len) {
        size_t e = i;
        while (e < path->len && path->p[e] != '.') e++;
        size_t k = i;
        int digits = e > i;
        int64_t num = 0;
        for (; k < e; k++) {
            if (path->p[k] < '0' || path->p[k] > '9') digits = 0;
            else if (num < INT64_MAX / 10) num = num * 10 + (path->p[k] - '0');
        }
        jv key;
        if (digits) key = jv_int(num);
        else {
            int rc = 0;
            key = jv_strn(r, path->p + i, e - i, &rc);
            if (rc) return rc;
        }
        if (je_getitem(r, *out, key, out)) return JE_FAIL;
        i = e + 1;
    }
    return 0;
}

int jf_iter(jrt *r, jv v, const jv **items, size_t *n) {
    if (v.t == JT_NS || v.t == JT_LOOP || v.t == JT_MACRO || v.t == JT_NONE || v.t == JT_INT || v.t == JT_FLOAT ||
        v.t == JT_BOOL)
        return jr_fail(r, TMPL_ERR_TYPE, "'%s' object is not iterable", jv_typename(v));
    return jv_iter(r, v, items, n);
}

/* ---------------------------------------------------------------- filters */

static int f_abs(jrt *r, jv v, jargs *a, jv *out) {
    BIND("abs");
    (void)p;
    if (v.t == JT_INT || v.t == JT_BOOL) {
        if (v.u.i == INT64_MIN) return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow");
        return *out = jv_int(v.u.i < 0 ? -v.u.i : v.u.i), 0;
    }
    if (v.t == JT_FLOAT) return *out = jv_float(fabs(v.u.f)), 0;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    return jr_fail(r, TMPL_ERR_TYPE, "bad operand type for abs(): '%s'", jv_typename(v));
}

static int f_attr(jrt *r, jv v, jargs *a, jv *out) {
    BIND("attr", "name");
    const jstr *name;
    if (!GIVEN(0)) return jr_fail(r, TMPL_ERR_TYPE, "attr() missing required argument 'name'");
    if (jf_to_str(r, p[0], &name)) return JE_FAIL;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    int found = jm_lookup(r, v, name, out);
    if (found < 0) return JE_FAIL;
    if (found) return 0;
    if (v.t == JT_NS && jdict_get(v.u.d, jv_str(name), out)) return 0;
    *out = jv_undef_attr(r, v, jv_str(name), UD_ATTR);
    return r->failed ? JE_FAIL : 0;
}

static int f_case(jrt *r, jv v, jargs *a, jv *out, int mode, const char *fname) {
    BIND(fname);
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s) || jm_case(r, s, mode, out)) return JE_FAIL;
    out->m = v.t == JT_STR && v.m;
    return 0;
}
static int f_upper(jrt *r, jv v, jargs *a, jv *out) { return f_case(r, v, a, out, 1, "upper"); }
static int f_lower(jrt *r, jv v, jargs *a, jv *out) { return f_case(r, v, a, out, 0, "lower"); }
static int f_capitalize(jrt *r, jv v, jargs *a, jv *out) { return f_case(r, v, a, out, 3, "capitalize"); }

static int f_title(jrt *r, jv v, jargs *a, jv *out) {
    BIND("title");
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    /* jinja2: re.split(r"([-\s({\[<]+)") then item[0].upper() + item[1:].lower() */
    jbuf *b = jb_new(r, s->len + 8);
    if (!b) return JE_FAIL;
    size_t i = 0;
    while (i < s->len) {
        size_t adv, st = i;
        uint32_t c = ju_decode(s->p + i, s->len - i, &adv);
        int sep = ju_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        while (i < s->len) {
            c = ju_decode(s->p + i, s->len - i, &adv);
            int is_sep = ju_isspace(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
            if (is_sep != sep) break;
            i += adv;
        }
        jstr part = {s->p + st, i - st, -1, NULL};
        if (sep) {
            if (jb_put(r, b, part.p, part.len)) return JE_FAIL;
            continue;
        }
        ju_decode(part.p, part.len, &adv);
        jstr head = {part.p, adv, 1, NULL}, tail = {part.p + adv, part.len - adv, -1, NULL};
        jv hu, tl;
        if (jm_case(r, &head, 1, &hu) || jm_case(r, &tail, 0, &tl)) return JE_FAIL;
        if (jb_put(r, b, hu.u.s->p, hu.u.s->len) || jb_put(r, b, tl.u.s->p, tl.u.s->len)) return JE_FAIL;
    }
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

static int f_center(jrt *r, jv v, jargs *a, jv *out) {
    BIND("center", "width");
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    jv w = GIVEN(0) ? p[0] : jv_int(80);
    jargs ca = {.pos = &w, .npos = 1};
    return js_method_call(r, s, JSM_CENTER, &ca, out, v.t == JT_STR && v.m);
}

static int f_default(jrt *r, jv v, jargs *a, jv *out) {
    BIND("default", "default_value", "boolean");
    static const jstr empty = {"", 0, 0, NULL};
    jv def = GIVEN(0) ? p[0] : jv_str(&empty);
    int boolean = GIVEN(1) && jv_truthy(p[1]);
    *out = (v.t == JT_UNDEF || (boolean && !jv_truthy(v))) ? def : v;
    return 0;
}

static int f_escape(jrt *r, jv v, jargs *a, jv *out) {
    BIND("escape");
    (void)p;
    return jm_escape_val(r, v, out);
}

static int f_forceescape(jrt *r, jv v, jargs *a, jv *out) {
    BIND("forceescape");
    (void)p;
    v.m = 0;
    return jm_escape_val(r, v, out);
}

static int parse_float(const jstr *s, double *out) {
    size_t b = 0, e = s->len, adv;
    while (b < e && ju_isspace(ju_decode(s->p + b, e - b, &adv))) b += adv;
    while (e > b) {
        size_t st = e - 1;
        while (st > b && ((unsigned char)s->p[st] & 0xC0) == 0x80) st--;
        if (!ju_isspace(ju_decode(s->p + st, e - st, &adv))) break;
        e = st;
    }
    if (e == b || e - b > 300) return -1;
    char buf[320];
    size_t k = 0;
    for (size_t i = b; i < e; i++) {
        char c = s->p[i];
        if (c == '_') {
            if (i == b || i + 1 >= e || !(s->p[i - 1] >= '0' && s->p[i - 1] <= '9') ||
                !(s->p[i + 1] >= '0' && s->p[i + 1] <= '9'))
                return -1;
            continue;
        }
        if (!strchr("0123456789+-.eEinfatyINFATY", c)) return -1;
        buf[k++] = c;
    }
    buf[k] = 0;
    const char *q = buf + (buf[0] == '+' || buf[0] == '-');
    if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity") || !strcasecmp(q, "nan")) {
        *out = strtod(buf, NULL);
        return 0;
    }
    if (q[0] == 0 || !strchr("0123456789.", q[0])) return -1;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0 ? 0 : -1;
}

/* Python int(str, 10) */
static int parse_int(const jstr *s, int64_t *out) {
    size_t b = 0, e = s->len, adv;
    while (b < e && ju_isspace(ju_decode(s->p + b, e - b, &adv))) b += adv;
    while (e > b && ju_isspace((unsigned char)s->p[e - 1])) e--;
    int neg = 0;
    if (b < e && (s->p[b] == '+' || s->p[b] == '-')) neg = s->p[b++] == '-';
    if (b == e) return -1;
    uint64_t v = 0;
    for (size_t i = b; i < e; i++) {
        char c = s->p[i];
        if (c == '_' && i > b && i + 1 < e && s->p[i + 1] != '_') continue;
        if (c < '0' || c > '9') return -1;
        if (v > (UINT64_MAX - 9) / 10) return -2;
        v = v * 10 + (uint64_t)(c - '0');
    }
    if ((!neg && v > INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1)) return -2;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int f_float(jrt *r, jv v, jargs *a, jv *out) {
    BIND("float", "default");
    jv def = GIVEN(0) ? p[0] : jv_float(0.0);
    double f;
    switch (v.t) {
    case JT_FLOAT: *out = v; return 0;
    case JT_INT:
    case JT_BOOL: *out = jv_float((double)v.u.i); return 0;
    case JT_STR: *out = parse_float(v.u.s, &f) ? def : jv_float(f); return 0;
    case JT_UNDEF: return jv_undef_error(r, v);
    default: *out = def; return 0;
    }
}

static int f_int(jrt *r, jv v, jargs *a, jv *out) {
    BIND("int", "default", "base");
    jv def = GIVEN(0) ? p[0] : jv_int(0);
    if (GIVEN(1) && !(p[1].t == JT_INT && p[1].u.i == 10))
        return jr_fail(r, TMPL_ERR_UNSUPPORTED, "int filter: only base 10 is supported");
    double f;
    int64_t i;
    switch (v.t) {
    case JT_INT: *out = v; return 0;
    case JT_BOOL: *out = jv_int(v.u.i); return 0;
    case JT_FLOAT:
        if (isnan(v.u.f)) return jr_fail(r, TMPL_ERR_TYPE, "cannot convert float NaN to integer");
        if (fabs(v.u.f) >= 9.2e18) return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow");
        *out = jv_int((int64_t)v.u.f);
        return 0;
    case JT_STR: {
        int rc = parse_int(v.u.s, &i);
        if (rc == 0) return *out = jv_int(i), 0;
        if (rc == -2) return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow");
        if (parse_float(v.u.s, &f)) return *out = def, 0;
        if (isnan(f)) return *out = def, 0;
        if (isinf(f)) return jr_fail(r, TMPL_ERR_TYPE, "cannot convert float infinity to integer");
        if (fabs(f) >= 9.2e18) return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow");
        *out = jv_int((int64_t)f);
        return 0;
    }
    case JT_UNDEF: return jv_undef_error(r, v);
    default: *out = def; return 0;
    }
}

static int f_format(jrt *r, jv v, jargs *a, jv *out) {
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    if (a->npos && a->nkw) return jr_fail(r, TMPL_ERR_TYPE, "can't handle positional and keyword arguments at the same time");
    jv args;
    if (a->nkw) {
        jdict *d = jdict_new(r, a->nkw);
        if (!d) return JE_FAIL;
        for (size_t i = 0; i < a->nkw; i++)
            if (jdict_set(r, d, jv_str(a->kwn[i]), a->kwv[i])) return JE_FAIL;
        args.t = JT_DICT;
        args.u.d = d;
    } else {
        jlist *l = jlist_new(r, JL_TUPLE, a->npos);
        if (!l) return JE_FAIL;
        memcpy(l->v, a->pos, a->npos * sizeof(jv));
        args.t = JT_LIST;
        args.u.l = l;
    }
    return jm_percent_format(r, s, args, out, v.t == JT_STR && v.m);
}

static int f_indent(jrt *r, jv v, jargs *a, jv *out) {
    BIND("indent", "width", "first", "blank");
    const jstr *s, *ind;
    static const jstr nl = {"\n", 1, 1, NULL};
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    if (GIVEN(0) && p[0].t == JT_STR) {
        ind = p[0].u.s;
    } else {
        int64_t w = 4;
        if (GIVEN(0) && jf_want_int(r, p[0], "width", &w)) return JE_FAIL;
        if (w < 0) w = 0;
        if ((uint64_t)w > r->max_output) return jr_fail(r, TMPL_ERR_LIMIT, "indent too wide");
        char *sp = jr_alloc(r, (size_t)w + 1);
        jstr *is = jr_alloc(r, sizeof *is);
        if (!sp || !is) return JE_FAIL;
        memset(sp, ' ', (size_t)w);
        is->p = sp;
        is->len = (size_t)w;
        is->ncp = w;
        ind = is;
    }
    int first = GIVEN(1) && jv_truthy(p[1]), blank = GIVEN(2) && jv_truthy(p[2]);
    const jstr *s2 = js_concat(r, s, &nl); /* the "quirk necessary for splitlines" */
    jv lines;
    if (!s2 || jm_splitlines(r, s2, 0, &lines)) return JE_FAIL;
    const jlist *l = lines.u.l;
    jbuf *b = jb_new(r, s->len + 16);
    if (!b) return JE_FAIL;
    if (first && jb_put(r, b, ind->p, ind->len)) return JE_FAIL;
    for (size_t i = 0; i < l->n; i++) {
        const jstr *ln = l->v[i].u.s;
        if (i && jb_putc(r, b, '\n')) return JE_FAIL;
        if (i && (blank || ln->len) && jb_put(r, b, ind->p, ind->len)) return JE_FAIL;
        if (jb_put(r, b, ln->p, ln->len)) return JE_FAIL;
    }
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    *out = jv_str(res);
    out->m = v.t == JT_STR && v.m;
    return 0;
}

static int f_pprint(jrt *r, jv v, jargs *a, jv *out) {
    BIND("pprint");
    (void)p;
    jbuf *b = jb_new(r, 64);
    if (!b || jv_write_repr(r, b, v)) return JE_FAIL;
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

static int f_replace(jrt *r, jv v, jargs *a, jv *out) {
    BIND("replace", "old", "new", "count");
    const jstr *s, *o, *nw;
    int64_t cnt = -1;
    if (!GIVEN(0) || !GIVEN(1)) return jr_fail(r, TMPL_ERR_TYPE, "replace() missing required arguments");
    if (jf_to_str(r, v, &s) || jf_to_str(r, p[0], &o) || jf_to_str(r, p[1], &nw)) return JE_FAIL;
    if (GIVEN(2) && p[2].t != JT_NONE && jf_want_int(r, p[2], "count", &cnt)) return JE_FAIL;
    return jm_replace(r, s, o, nw, cnt, out);
}

static int f_round(jrt *r, jv v, jargs *a, jv *out) {
    BIND("round", "precision", "method");
    int64_t prec = 0;
    if (GIVEN(0) && jf_want_int(r, p[0], "precision", &prec)) return JE_FAIL;
    int method = 0; /* common */
    if (GIVEN(1)) {
        if (jv_is_str(p[1], "ceil")) method = 1;
        else if (jv_is_str(p[1], "floor")) method = 2;
        else if (!jv_is_str(p[1], "common")) return jr_fail(r, TMPL_ERR_TYPE, "method must be common, ceil or floor");
    }
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    if (v.t != JT_INT && v.t != JT_BOOL && v.t != JT_FLOAT)
        return jr_fail(r, TMPL_ERR_TYPE, "type %s doesn't define __round__ method", jv_typename(v));
    if (prec > 300) prec = 300;
    if (prec < -300) prec = -300;
    if (method == 0 && v.t != JT_FLOAT) { /* round(int, n) stays an int */
        if (prec >= 0) return *out = jv_int(v.u.i), 0;
        int64_t m = 1;
        for (int64_t i = 0; i < -prec && m < INT64_MAX / 10; i++) m *= 10;
        int64_t q = v.u.i / m, rem = v.u.i % m;
        if (rem < 0) rem += m, q--;
        if (rem * 2 > m || (rem * 2 == m && (q & 1))) q++;
        return *out = jv_int(q * m), 0;
    }
    double x = v.t == JT_FLOAT ? v.u.f : (double)v.u.i, res;
    if (!isfinite(x)) return *out = jv_float(x), 0;
    if (method == 0) {
        if (prec >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)(prec > 340 ? 340 : prec), x);
            res = strtod(buf, NULL);
        } else {
            double m = pow(10.0, (double)-prec);
            res = nearbyint(x / m) * m;
        }
    } else {
        double m = pow(10.0, (double)prec);
        res = (method == 1 ? ceil(x * m) : floor(x * m)) / m;
    }
    return *out = jv_float(res), 0;
}

static int f_safe(jrt *r, jv v, jargs *a, jv *out) {
    BIND("safe");
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    return *out = jv_markup(s), 0;
}

static int f_string(jrt *r, jv v, jargs *a, jv *out) {
    BIND("string");
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    *out = jv_str(s);
    out->m = v.t == JT_STR && v.m;
    return 0;
}

static int f_striptags(jrt *r, jv v, jargs *a, jv *out) {
    BIND("striptags");
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    jbuf *b = jb_new(r, s->len);
    if (!b) return JE_FAIL;
    for (size_t i = 0; i < s->len; i++) {
        if (s->p[i] == '<' && i + 3 < s->len && memcmp(s->p + i, "<!--", 4) == 0) {
            const char *e = memmem(s->p + i + 4, s->len - i - 4, "-->", 3);
            if (e) {
                i = (size_t)(e - s->p) + 2;
                continue;
            }
        }
        if (s->p[i] == '<') {
            const char *e = memchr(s->p + i, '>', s->len - i);
            if (e && e > s->p + i + 1) {
                i = (size_t)(e - s->p);
                continue;
            }
        }
        if (jb_putc(r, b, s->p[i])) return JE_FAIL;
    }
    const jstr *t = jb_str(r, b);
    jv parts, joined;
    if (!t || jm_split(r, t, NULL, -1, 0, &parts)) return JE_FAIL;
    static const jstr sp = {" ", 1, 1, NULL};
    jargs ja = {.pos = &parts, .npos = 1};
    if (js_method_call(r, &sp, JSM_JOIN, &ja, &joined, 0)) return JE_FAIL;
    /* Markup.unescape(): the common entities */
    static const struct {
        const char *ent, *ch;
    } ents[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"},
                {"&apos;", "'"}, {"&nbsp;", "\xc2\xa0"}};
    const jstr *j = joined.u.s;
    jbuf *o = jb_new(r, j->len);
    if (!o) return JE_FAIL;
    for (size_t i = 0; i < j->len;) {
        size_t k = 0, n = sizeof ents / sizeof ents[0];
        if (j->p[i] == '&')
            for (; k < n; k++)
                if (j->len - i >= strlen(ents[k].ent) && memcmp(j->p + i, ents[k].ent, strlen(ents[k].ent)) == 0) break;
        if (j->p[i] == '&' && k < n) {
            if (jb_put(r, o, ents[k].ch, strlen(ents[k].ch))) return JE_FAIL;
            i += strlen(ents[k].ent);
        } else {
            if (jb_putc(r, o, j->p[i])) return JE_FAIL;
            i++;
        }
    }
    const jstr *res = jb_str(r, o);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

static int f_tojson(jrt *r, jv v, jargs *a, jv *out) {
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    static const jstr comma_sp = {", ", 2, 2, NULL}, comma = {",", 1, 1, NULL}, colon_sp = {": ", 2, 2, NULL};
    jjson_opts o = {.ensure_ascii = GIVEN(0) && jv_truthy(p[0]), .sort_keys = GIVEN(3) && jv_truthy(p[3])};
    if (GIVEN(1) && p[1].t != JT_NONE) {
        if (p[1].t == JT_STR) {
            o.indent = p[1].u.s;
        } else if (p[1].t == JT_INT || p[1].t == JT_BOOL) {
            int64_t w = p[1].u.i < 0 ? 0 : p[1].u.i;
            if (w > 1000) return jr_fail(r, TMPL_ERR_LIMIT, "tojson indent too wide");
            char *sp = jr_alloc(r, (size_t)w + 1);
            jstr *is = jr_alloc(r, sizeof *is);
            if (!sp || !is) return JE_FAIL;
            memset(sp, ' ', (size_t)w);
            is->p = sp;
            is->len = (size_t)w;
            is->ncp = w;
            o.indent = is;
        } else {
            return jr_fail(r, TMPL_ERR_TYPE, "tojson: indent must be an int or a string, not %s", jv_typename(p[1]));
        }
    }
    o.item_sep = o.indent ? &comma : &comma_sp;
    o.key_sep = &colon_sp;
    if (GIVEN(2) && p[2].t != JT_NONE) {
        const jv *sv;
        size_t sn;
        if (p[2].t != JT_LIST || jv_iter(r, p[2], &sv, &sn) || sn != 2 || sv[0].t != JT_STR || sv[1].t != JT_STR)
            return r->failed ? JE_FAIL : jr_fail(r, TMPL_ERR_TYPE, "tojson: separators must be a pair of strings");
        o.item_sep = sv[0].u.s;
        o.key_sep = sv[1].u.s;
    }
    jbuf *b = jb_new(r, 64);
    if (!b || jv_write_json(r, b, v, &o, 0)) return JE_FAIL;
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

static int f_trim(jrt *r, jv v, jargs *a, jv *out) {
    BIND("trim", "chars");
    const jstr *s, *chars = NULL;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    if (GIVEN(0) && p[0].t != JT_NONE && jf_to_str(r, p[0], &chars)) return JE_FAIL;
    if (v.t == JT_STR && v.m) { /* Markup.strip: escaped chars, Markup result */
        jv cv = jv_str(chars ? chars : s);
        jargs sa = {.pos = &cv, .npos = chars ? 1 : 0};
        return js_method_call(r, s, JSM_STRIP, &sa, out, 1);
    }
    return jm_strip(r, s, chars, 1, 1, out);
}

static int f_truncate(jrt *r, jv v, jargs *a, jv *out) {
    BIND("truncate", "length", "killwords", "end", "leeway");
    static const jstr dots = {"...", 3, 3, NULL};
    const jstr *s, *end = &dots;
    int64_t length = 255, leeway = 5;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    if (GIVEN(0) && jf_want_int(r, p[0], "length", &length)) return JE_FAIL;
    if (GIVEN(2) && jf_to_str(r, p[2], &end)) return JE_FAIL;
    if (GIVEN(3) && p[3].t != JT_NONE && jf_want_int(r, p[3], "leeway", &leeway)) return JE_FAIL;
    js_ncp(s);
    js_ncp(end);
    if (length < end->ncp) return jr_fail(r, TMPL_ERR_TYPE, "expected length >= %lld, got %lld", (long long)end->ncp, (long long)length);
    if (leeway < 0) return jr_fail(r, TMPL_ERR_TYPE, "expected leeway >= 0, got %lld", (long long)leeway);
    if (s->ncp <= length + leeway) return *out = jv_str(s), 0;
    size_t cut = js_cp_offset(s->p, s->len, length - end->ncp);
    jstr head = {s->p, cut, -1, NULL};
    if (!(GIVEN(1) && jv_truthy(p[1]))) {
        for (size_t i = cut; i-- > 0;)
            if (s->p[i] == ' ') {
                head.len = i;
                break;
            }
    }
    const jstr *res = js_concat(r, js_new(r, head.p, head.len), end);
    if (!res) return JE_FAIL;
    return *out = jv_str(res), 0;
}

static int f_wordcount(jrt *r, jv v, jargs *a, jv *out) {
    BIND("wordcount");
    (void)p;
    const jstr *s;
    if (jf_to_str(r, v, &s)) return JE_FAIL;
    int64_t cnt = 0;
    int in_word = 0;
    for (size_t i = 0; i < s->len;) {
        size_t adv;
        uint32_t c = ju_decode(s->p + i, s->len - i, &adv);
        int w = c == '_' || (c < 0x80 ? ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') : !ju_isspace(c));
        if (c >= 0x80 && w) {
            jstr one = {s->p + i, adv, 1, NULL};
            jv res;
            jargs none = {0};
            if (js_method_call(r, &one, JSM_ISALNUM, &none, &res, 0)) return JE_FAIL;
            w = (int)res.u.i;
        }
        if (w && !in_word) cnt++;
        in_word = w;
        i += adv;
    }
    return *out = jv_int(cnt), 0;
}

static int f_unsupported(jrt *r, jv v, jargs *a, jv *out) {
    (void)v, (void)a, (void)out;
    return jr_fail(r, TMPL_ERR_UNSUPPORTED, "this filter is not supported in chat templates");
}

static const struct {
    const char *name;
    jfilter_fn fn;
} filters[] = {
    {"abs", f_abs},           {"attr", f_attr},         {"batch", jf_batch},
    {"capitalize", f_capitalize}, {"center", f_center}, {"count", jf_length},
    {"d", f_default},         {"default", f_default},   {"dictsort", jf_dictsort},
    {"e", f_escape},          {"escape", f_escape},     {"filesizeformat", f_unsupported},
    {"first", jf_first},       {"float", f_float},       {"forceescape", f_forceescape},
    {"format", f_format},     {"groupby", f_unsupported}, {"indent", f_indent},
    {"int", f_int},           {"items", jf_items},       {"join", jf_join},
    {"last", jf_last},         {"length", jf_length},     {"list", jf_list},
    {"lower", f_lower},       {"map", jf_map},           {"max", jf_max},
    {"min", jf_min},           {"pprint", f_pprint},     {"random", f_unsupported},
    {"reject", jf_reject},     {"rejectattr", jf_rejectattr}, {"replace", f_replace},
    {"reverse", jf_reverse},   {"round", f_round},       {"safe", f_safe},
    {"select", jf_select},     {"selectattr", jf_selectattr}, {"slice", jf_slice},
    {"sort", jf_sort},         {"string", f_string},     {"striptags", f_striptags},
    {"sum", jf_sum},           {"title", f_title},       {"tojson", f_tojson},
    {"trim", f_trim},         {"truncate", f_truncate}, {"unique", jf_unique},
    {"upper", f_upper},       {"urlencode", f_unsupported}, {"urlize", f_unsupported},
    {"wordcount", f_wordcount}, {"wordwrap", f_unsupported}, {"xmlattr", f_unsupported},
};

jfilter_fn jf_find(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (strlen(filters[i].name) == n && memcmp(filters[i].name, name, n) == 0) return filters[i].fn;
    return NULL;
}

/* map('map', 'map', ..., f) recurses once per argument: the stack check bounds it. */
int jf_apply(jrt *r, const jstr *name, jv in, jargs *a, jv *out) {
    if (jr_stack_check(r)) return JE_FAIL;
    jfilter_fn fn = jf_find(name->p, name->len);
    if (!fn) return jr_fail(r, TMPL_ERR_TYPE, "No filter named '%.*s'.", (int)(name->len > 100 ? 100 : name->len), name->p);
    return fn(r, in, a, out);
}
