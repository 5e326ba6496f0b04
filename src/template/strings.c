/* strings.c: Python's str methods as templates call them (s.strip('\n'), s.split('</think>'),
 * s.startswith(...), '%s' % x, '{}'.format(x), ...), on UTF-8 with code-point indexing. Case
 * mapping is utf8proc's per-code-point mapping plus ß -> SS (Python's full mapping has a few more
 * one-to-many cases, e.g. ligatures; those keep their single-code-point mapping here). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/jinja.h"
#include "template/strings.h"

static const char *const str_methods[] = {
#define X(id, name) name,
    JSTR_METHODS(X)
#undef X
};

int js_method_find(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof str_methods / sizeof str_methods[0]; i++)
        if (strlen(str_methods[i]) == n && memcmp(str_methods[i], name, n) == 0) return (int)i;
    return -1;
}

const char *js_method_name(int id) { return str_methods[id]; }

/* ---------------------------------------------------------------- helpers */

static int ret_str(jrt *r, const char *p, size_t n, jv *out) {
    int rc = 0;
    *out = jv_strn(r, p, n, &rc);
    return rc;
}

static int ret_buf(jrt *r, jbuf *b, jv *out) {
    const jstr *s = jb_str(r, b);
    if (!s) return JE_FAIL;
    *out = jv_str(s);
    return 0;
}

static int in_set(uint32_t cp, const jstr *chars) {
    for (size_t i = 0; i < chars->len;) {
        size_t adv;
        if (ju_decode(chars->p + i, chars->len - i, &adv) == cp) return 1;
        i += adv;
    }
    return 0;
}

static size_t prev_cp(const char *p, size_t i) {
    if (i == 0) return 0;
    i--;
    while (i > 0 && ((unsigned char)p[i] & 0xC0) == 0x80) i--;
    return i;
}

int jm_strip(jrt *r, const jstr *s, const jstr *chars, int left, int right, jv *out) {
    size_t b = 0, e = s->len, adv;
    if (left)
        while (b < e) {
            uint32_t cp = ju_decode(s->p + b, e - b, &adv);
            if (chars ? !in_set(cp, chars) : !ju_isspace(cp)) break;
            b += adv;
        }
    if (right)
        while (e > b) {
            size_t st = prev_cp(s->p, e);
            uint32_t cp = ju_decode(s->p + st, e - st, &adv);
            if (chars ? !in_set(cp, chars) : !ju_isspace(cp)) break;
            e = st;
        }
    if (b == 0 && e == s->len) return *out = jv_str(s), 0;
    return ret_str(r, s->p + b, e - b, out);
}

static int is_cased(uint32_t cp) {
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
    return k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT ||
           utf8proc_toupper((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp ||
           utf8proc_tolower((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp;
}

static int put_cp(jrt *r, jbuf *b, uint32_t cp) {
    char enc[4];
    return jb_put(r, b, enc, ju_encode(cp, enc));
}

/* Unconditional one-to-many mappings of Unicode's SpecialCasing.txt that Python applies (the Greek
 * iota-subscript ones are left out): code point, upper-case, title-case. */
static const struct {
    uint32_t cp;
    const char *upper, *title;
} special_case[] = {
    {0x00DF, "SS", "Ss"},
    {0x0149, "\u02BCN", "\u02BCN"},
    {0x01F0, "J\u030C", "J\u030C"},
    {0x0390, "\u0399\u0308\u0301", "\u0399\u0308\u0301"},
    {0x03B0, "\u03A5\u0308\u0301", "\u03A5\u0308\u0301"},
    {0x0587, "\u0535\u0552", "\u0535\u0582"},
    {0x1E96, "H\u0331", "H\u0331"},
    {0x1E97, "T\u0308", "T\u0308"},
    {0x1E98, "W\u030A", "W\u030A"},
    {0x1E99, "Y\u030A", "Y\u030A"},
    {0x1E9A, "A\u02BE", "A\u02BE"},
    {0xFB00, "FF", "Ff"},
    {0xFB01, "FI", "Fi"},
    {0xFB02, "FL", "Fl"},
    {0xFB03, "FFI", "Ffi"},
    {0xFB04, "FFL", "Ffl"},
    {0xFB05, "ST", "St"},
    {0xFB06, "ST", "St"},
    {0xFB13, "\u0544\u0546", "\u0544\u0576"},
    {0xFB14, "\u0544\u0535", "\u0544\u0565"},
    {0xFB15, "\u0544\u053B", "\u0544\u056B"},
    {0xFB16, "\u054E\u0546", "\u054E\u0576"},
    {0xFB17, "\u0544\u053D", "\u0544\u056D"},
};

static const char *special(uint32_t cp, int title) {
    if (cp < 0xDF) return NULL;
    for (size_t i = 0; i < sizeof special_case / sizeof special_case[0]; i++)
        if (special_case[i].cp == cp) return title ? special_case[i].title : special_case[i].upper;
    return NULL;
}

/* mode: 0 lower, 1 upper, 2 str.title(), 3 capitalize, 4 swapcase */
int jm_case(jrt *r, const jstr *s, int mode, jv *out) {
    jbuf *b = jb_new(r, s->len + 8);
    if (!b) return JE_FAIL;
    int prev_cased = 0, first = 1;
    for (size_t i = 0; i < s->len;) {
        size_t adv;
        uint32_t cp = ju_decode(s->p + i, s->len - i, &adv), o = cp;
        int want = 0; /* 0 lower, 1 upper, 2 title, 3 keep */
        switch (mode) {
        case 0: want = 0; break;
        case 1: want = 1; break;
        case 2:
            want = prev_cased ? 0 : 2;
            prev_cased = is_cased(cp);
            break;
        case 3: want = first ? 2 : 0; break;
        default:
            if (utf8proc_category((utf8proc_int32_t)cp) == UTF8PROC_CATEGORY_LT) want = 3;
            else want = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp) != cp ? 0 : 1;
            break;
        }
        if (want == 3) {
            if (put_cp(r, b, cp)) return JE_FAIL;
            i += adv;
            first = 0;
            continue;
        }
        const char *sp = want == 0 ? (cp == 0x130 ? "i\u0307" : NULL) : special(cp, want == 2);
        if (sp) {
            if (jb_put(r, b, sp, strlen(sp))) return JE_FAIL;
        } else {
            o = (uint32_t)(want == 0 ? utf8proc_tolower((utf8proc_int32_t)cp)
                           : want == 1 ? utf8proc_toupper((utf8proc_int32_t)cp)
                                       : utf8proc_totitle((utf8proc_int32_t)cp));
            if (put_cp(r, b, o)) return JE_FAIL;
        }
        i += adv;
        first = 0;
    }
    return ret_buf(r, b, out);
}

int jm_replace(jrt *r, const jstr *s, const jstr *old, const jstr *new_, int64_t count, jv *out) {
    jbuf *b = jb_new(r, s->len + 16);
    if (!b) return JE_FAIL;
    if (count < 0) count = INT64_MAX;
    if (old->len == 0) {
        for (size_t i = 0; i <= s->len;) {
            if (count > 0) {
                if (jb_put(r, b, new_->p, new_->len)) return JE_FAIL;
                count--;
            }
            if (i == s->len) break;
            size_t e = i + 1;
            while (e < s->len && ((unsigned char)s->p[e] & 0xC0) == 0x80) e++;
            if (jb_put(r, b, s->p + i, e - i)) return JE_FAIL;
            i = e;
        }
        return ret_buf(r, b, out);
    }
    size_t i = 0;
    while (count > 0) {
        const char *hit = memmem(s->p + i, s->len - i, old->p, old->len);
        if (!hit) break;
        size_t at = (size_t)(hit - s->p);
        if (jb_put(r, b, s->p + i, at - i) || jb_put(r, b, new_->p, new_->len)) return JE_FAIL;
        i = at + old->len;
        count--;
        if (jr_step(r, 1)) return JE_FAIL;
    }
    if (jb_put(r, b, s->p + i, s->len - i)) return JE_FAIL;
    return ret_buf(r, b, out);
}

static jlist *grow(jrt *r, jlist *l, size_t *cap) {
    if (l->n < *cap) return l;
    size_t nc = *cap * 2;
    jv *nv = jr_alloc(r, nc * sizeof(jv));
    if (!nv) return NULL;
    memcpy(nv, l->v, l->n * sizeof(jv));
    l->v = nv;
    *cap = nc;
    return l;
}

static int push_str(jrt *r, jlist *l, size_t *cap, const char *p, size_t n) {
    if (!grow(r, l, cap)) return JE_FAIL;
    int rc = 0;
    l->v[l->n++] = jv_strn(r, p, n, &rc);
    if (rc) return rc;
    return jr_step(r, 1);
}

/* str.split / str.rsplit. */
int jm_split(jrt *r, const jstr *s, const jstr *sep, int64_t maxsplit, int from_right, jv *out) {
    jlist *l = jlist_new(r, JL_LIST, 0);
    size_t cap = 8;
    if (!l || !(l->v = jr_alloc(r, cap * sizeof(jv)))) return JE_FAIL;
    if (maxsplit < 0) maxsplit = INT64_MAX;
    const char *p = s->p;
    size_t n = s->len, adv;
    if (!sep) {
        if (!from_right) {
            size_t i = 0;
            for (;;) {
                while (i < n && ju_isspace(ju_decode(p + i, n - i, &adv))) i += adv;
                if (i >= n) break;
                if (maxsplit-- == 0) {
                    if (push_str(r, l, &cap, p + i, n - i)) return JE_FAIL;
                    break;
                }
                size_t st = i;
                while (i < n && !ju_isspace(ju_decode(p + i, n - i, &adv))) i += adv;
                if (push_str(r, l, &cap, p + st, i - st)) return JE_FAIL;
            }
        } else {
            size_t e = n;
            for (;;) {
                while (e > 0) {
                    size_t st = prev_cp(p, e);
                    if (!ju_isspace(ju_decode(p + st, e - st, &adv))) break;
                    e = st;
                }
                if (e == 0) break;
                if (maxsplit-- == 0) {
                    if (push_str(r, l, &cap, p, e)) return JE_FAIL;
                    break;
                }
                size_t b = e;
                while (b > 0) {
                    size_t st = prev_cp(p, b);
                    if (ju_isspace(ju_decode(p + st, b - st, &adv))) break;
                    b = st;
                }
                if (push_str(r, l, &cap, p + b, e - b)) return JE_FAIL;
                e = b;
            }
            for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
                jv t = l->v[i];
                l->v[i] = l->v[j];
                l->v[j] = t;
            }
        }
    } else {
        if (sep->len == 0) return jr_fail(r, TMPL_ERR_TYPE, "empty separator");
        if (!from_right) {
            size_t i = 0;
            for (;;) {
                const char *hit = maxsplit > 0 ? memmem(p + i, n - i, sep->p, sep->len) : NULL;
                if (!hit) {
                    if (push_str(r, l, &cap, p + i, n - i)) return JE_FAIL;
                    break;
                }
                if (push_str(r, l, &cap, p + i, (size_t)(hit - p) - i)) return JE_FAIL;
                i = (size_t)(hit - p) + sep->len;
                maxsplit--;
            }
        } else {
            size_t e = n;
            for (;;) {
                size_t at = SIZE_MAX;
                if (maxsplit > 0 && e >= sep->len)
                    for (size_t k = e - sep->len + 1; k-- > 0;)
                        if (memcmp(p + k, sep->p, sep->len) == 0) {
                            at = k;
                            break;
                        }
                if (at == SIZE_MAX) {
                    if (push_str(r, l, &cap, p, e)) return JE_FAIL;
                    break;
                }
                if (push_str(r, l, &cap, p + at + sep->len, e - at - sep->len)) return JE_FAIL;
                e = at;
                maxsplit--;
            }
            for (size_t i = 0, j = l->n ? l->n - 1 : 0; i < j; i++, j--) {
                jv t = l->v[i];
                l->v[i] = l->v[j];
                l->v[j] = t;
            }
        }
    }
    out->t = JT_LIST;
    out->u.l = l;
    return 0;
}

static int is_linebreak(uint32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

int jm_splitlines(jrt *r, const jstr *s, int keepends, jv *out) {
    jlist *l = jlist_new(r, JL_LIST, 0);
    size_t cap = 8;
    if (!l || !(l->v = jr_alloc(r, cap * sizeof(jv)))) return JE_FAIL;
    size_t i = 0, st = 0, adv;
    while (i < s->len) {
        uint32_t c = ju_decode(s->p + i, s->len - i, &adv);
        if (!is_linebreak(c)) {
            i += adv;
            continue;
        }
        size_t e = i + adv;
        if (c == '\r' && e < s->len && s->p[e] == '\n') e++;
        if (push_str(r, l, &cap, s->p + st, (keepends ? e : i) - st)) return JE_FAIL;
        st = i = e;
    }
    if (st < s->len && push_str(r, l, &cap, s->p + st, s->len - st)) return JE_FAIL;
    out->t = JT_LIST;
    out->u.l = l;
    return 0;
}

/* Byte range of s[start:end] (code-point slice bounds, None = open). */
static int cp_range(jrt *r, const jstr *s, jv start, jv end, size_t *b, size_t *e) {
    js_ncp(s);
    int64_t n = s->ncp, a = 0, z = n;
    if (start.t == JT_INT || start.t == JT_BOOL) a = start.u.i;
    else if (start.t != JT_NONE && start.t != JT_ABSENT)
        return jr_fail(r, TMPL_ERR_TYPE, "slice indices must be integers or None");
    if (end.t == JT_INT || end.t == JT_BOOL) z = end.u.i;
    else if (end.t != JT_NONE && end.t != JT_ABSENT)
        return jr_fail(r, TMPL_ERR_TYPE, "slice indices must be integers or None");
    if (a < 0) a = a + n < 0 ? 0 : a + n;
    if (z < 0) z = z + n < 0 ? 0 : z + n;
    if (a > n) a = n;
    if (z > n) z = n;
    if (z < a) z = a;
    *b = js_cp_offset(s->p, s->len, a);
    *e = *b + js_cp_offset(s->p + *b, s->len - *b, z - a);
    return 0;
}

static int need_str(jrt *r, jv v, const char *what) {
    if (v.t == JT_STR) return 0;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    return jr_fail(r, TMPL_ERR_TYPE, "%s must be str, not %s", what, jv_typename(v));
}

static int64_t cp_index(const jstr *s, size_t byte_off) { return js_count_cp(s->p, byte_off); }

static int pad(jrt *r, const jstr *s, int64_t width, const jstr *fill, int align, jv *out) {
    js_ncp(s);
    if (width <= s->ncp) return *out = jv_str(s), 0;
    if (width - s->ncp > (int64_t)r->max_output) return jr_fail(r, TMPL_ERR_LIMIT, "string too long");
    int64_t total = width - s->ncp, left = align < 0 ? 0 : align > 0 ? total : total / 2 + (total & width & 1);
    jbuf *b = jb_new(r, s->len + (size_t)total * fill->len);
    if (!b) return JE_FAIL;
    for (int64_t i = 0; i < left; i++)
        if (jb_put(r, b, fill->p, fill->len)) return JE_FAIL;
    if (jb_put(r, b, s->p, s->len)) return JE_FAIL;
    for (int64_t i = left; i < total; i++)
        if (jb_put(r, b, fill->p, fill->len)) return JE_FAIL;
    return ret_buf(r, b, out);
}

static int char_class_all(const jstr *s, int cls) {
    if (s->len == 0) return 0;
    int any_cased = 0;
    for (size_t i = 0; i < s->len;) {
        size_t adv;
        uint32_t c = ju_decode(s->p + i, s->len - i, &adv);
        utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
        int alpha = k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
        int num = k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
        int ok = 1;
        switch (cls) {
        case 0: ok = alpha; break;
        case 1: ok = k == UTF8PROC_CATEGORY_ND || (k == UTF8PROC_CATEGORY_NO && c >= 0xB2 && c <= 0x2089); break;
        case 2: ok = alpha || num; break;
        case 3: ok = ju_isspace(c); break;
        case 4: ok = k == UTF8PROC_CATEGORY_ND; break;
        case 5: ok = num; break;
        case 6:
            if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= k == UTF8PROC_CATEGORY_LL;
            break;
        case 7:
            if (k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 0;
            any_cased |= k == UTF8PROC_CATEGORY_LU;
            break;
        }
        if (!ok) return 0;
        i += adv;
    }
    return cls >= 6 ? any_cased : 1;
}

/* ---------------------------------------------------------------- dispatch */

static const jstr s_space = {" ", 1, 1, NULL};

int jm_escape(jrt *r, const jstr *s, const jstr **out) {
    size_t i = 0;
    while (i < s->len && !strchr("&<>\"'", s->p[i])) i++;
    if (i == s->len) return *out = s, 0;
    jbuf *b = jb_new(r, s->len + 16);
    if (!b || jb_put(r, b, s->p, i)) return JE_FAIL;
    for (; i < s->len; i++) {
        const char *rep = NULL;
        switch (s->p[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&#34;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep ? jb_put(r, b, rep, strlen(rep)) : jb_putc(r, b, s->p[i])) return JE_FAIL;
    }
    *out = jb_str(r, b);
    return *out ? 0 : JE_FAIL;
}

int jm_escape_val(jrt *r, jv v, jv *out) {
    if (v.t == JT_STR && v.m) return *out = v, 0;
    const jstr *s, *e;
    if (jv_to_str(r, v, &s) || jm_escape(r, s, &e)) return JE_FAIL;
    *out = jv_markup(e);
    return 0;
}

static int plain_call(jrt *r, const jstr *s, int id, jargs *a, jv *out);

/* Methods of a Markup: markupsafe escapes the string arguments of the wrapped methods and returns
 * Markup; split & co return lists of Markup; join escapes the items; the rest return plain values. */
int js_method_call(jrt *r, const jstr *s, int id, jargs *a, jv *out, int markup) {
    if (id == JSM_FORMAT) return js_format_method(r, s, a, out, markup);
    if (!markup) return plain_call(r, s, id, a, out);
    switch (id) {
    case JSM_STRIP: case JSM_LSTRIP: case JSM_RSTRIP: case JSM_UPPER: case JSM_LOWER: case JSM_TITLE:
    case JSM_CAPITALIZE: case JSM_SWAPCASE: case JSM_CENTER: case JSM_LJUST: case JSM_RJUST: case JSM_ZFILL:
    case JSM_REPLACE: case JSM_EXPANDTABS: case JSM_TRANSLATE: {
        jargs e = *a;
        e.pos = jr_alloc(r, (a->npos + 1) * sizeof(jv));
        e.kwv = jr_alloc(r, (a->nkw + 1) * sizeof(jv));
        if (!e.pos || !e.kwv) return JE_FAIL;
        for (size_t i = 0; i < a->npos; i++)
            if (a->pos[i].t == JT_STR ? jm_escape_val(r, a->pos[i], &e.pos[i]) : (e.pos[i] = a->pos[i], 0)) return JE_FAIL;
        for (size_t i = 0; i < a->nkw; i++)
            if (a->kwv[i].t == JT_STR ? jm_escape_val(r, a->kwv[i], &e.kwv[i]) : (e.kwv[i] = a->kwv[i], 0)) return JE_FAIL;
        if (plain_call(r, s, id, &e, out)) return JE_FAIL;
        if (out->t == JT_STR) out->m = 1;
        return 0;
    }
    case JSM_SPLIT: case JSM_RSPLIT: case JSM_SPLITLINES: case JSM_PARTITION: case JSM_RPARTITION:
        if (plain_call(r, s, id, a, out)) return JE_FAIL;
        for (size_t i = 0; i < out->u.l->n; i++) out->u.l->v[i].m = 1;
        return 0;
    case JSM_JOIN: {
        const jv *items;
        size_t n;
        if (a->npos != 1 || a->nkw) return plain_call(r, s, id, a, out);
        if (jv_iter(r, a->pos[0], &items, &n)) return JE_FAIL;
        jlist *l = jlist_new(r, JL_LIST, n);
        if (!l) return JE_FAIL;
        for (size_t i = 0; i < n; i++)
            if (jm_escape_val(r, items[i], &l->v[i])) return JE_FAIL;
        jv lv = {.t = JT_LIST};
        lv.u.l = l;
        jargs ja = {.pos = &lv, .npos = 1};
        if (plain_call(r, s, id, &ja, out)) return JE_FAIL;
        out->m = 1;
        return 0;
    }
    default: return plain_call(r, s, id, a, out);
    }
}

static int plain_call(jrt *r, const jstr *s, int id, jargs *a, jv *out) {
    jv p[4];
    const char *name = str_methods[id];
    static const char *const one[] = {"x"}, *const strip_p[] = {"chars"}, *const split_p[] = {"sep", "maxsplit"},
                             *const find_p[] = {"sub", "start", "end"}, *const repl_p[] = {"old", "new", "count"},
                             *const pad_p[] = {"width", "fillchar"}, *const lines_p[] = {"keepends"};
    switch (id) {
    case JSM_STRIP:
    case JSM_LSTRIP:
    case JSM_RSTRIP:
        if (jargs_bind(r, name, a, strip_p, 1, p)) return JE_FAIL;
        if (p[0].t != JT_ABSENT && p[0].t != JT_NONE && need_str(r, p[0], "chars")) return JE_FAIL;
        return jm_strip(r, s, p[0].t == JT_STR ? p[0].u.s : NULL, id != JSM_RSTRIP, id != JSM_LSTRIP, out);
    case JSM_UPPER:
    case JSM_LOWER:
    case JSM_TITLE:
    case JSM_CAPITALIZE:
    case JSM_SWAPCASE:
    case JSM_CASEFOLD:
        if (jargs_bind(r, name, a, NULL, 0, p)) return JE_FAIL;
        return jm_case(r, s, id == JSM_UPPER ? 1 : id == JSM_TITLE ? 2 : id == JSM_CAPITALIZE ? 3 : id == JSM_SWAPCASE ? 4 : 0,
                       out);
    case JSM_SPLIT:
    case JSM_RSPLIT:
        if (jargs_bind(r, name, a, split_p, 2, p)) return JE_FAIL;
        if (p[0].t != JT_ABSENT && p[0].t != JT_NONE && need_str(r, p[0], "sep")) return JE_FAIL;
        if (p[1].t != JT_ABSENT && p[1].t != JT_INT && p[1].t != JT_BOOL)
            return jr_fail(r, TMPL_ERR_TYPE, "'%s' object cannot be interpreted as an integer", jv_typename(p[1]));
        return jm_split(r, s, p[0].t == JT_STR ? p[0].u.s : NULL, p[1].t == JT_ABSENT ? -1 : p[1].u.i, id == JSM_RSPLIT,
                        out);
    case JSM_SPLITLINES:
        if (jargs_bind(r, name, a, lines_p, 1, p)) return JE_FAIL;
        return jm_splitlines(r, s, p[0].t != JT_ABSENT && jv_truthy(p[0]), out);
    case JSM_STARTSWITH:
    case JSM_ENDSWITH: {
        if (jargs_bind(r, name, a, find_p, 3, p)) return JE_FAIL;
        size_t b, e;
        if (cp_range(r, s, p[1], p[2], &b, &e)) return JE_FAIL;
        const jv *cands = &p[0];
        size_t nc = 1;
        if (p[0].t == JT_LIST && p[0].u.l->kind == JL_TUPLE) cands = p[0].u.l->v, nc = p[0].u.l->n;
        else if (p[0].t != JT_STR)
            return jr_fail(r, TMPL_ERR_TYPE, "%s first arg must be str or a tuple of str, not %s", name,
                           jv_typename(p[0]));
        int res = 0;
        for (size_t i = 0; i < nc && !res; i++) {
            if (need_str(r, cands[i], "tuple item")) return JE_FAIL;
            const jstr *x = cands[i].u.s;
            if (x->len > e - b) continue;
            res = memcmp(s->p + (id == JSM_STARTSWITH ? b : e - x->len), x->p, x->len) == 0;
        }
        return *out = jv_bool(res), 0;
    }
    case JSM_FIND:
    case JSM_RFIND:
    case JSM_INDEX:
    case JSM_RINDEX:
    case JSM_COUNT: {
        if (jargs_bind(r, name, a, find_p, 3, p)) return JE_FAIL;
        if (need_str(r, p[0], "substring")) return JE_FAIL;
        size_t b, e;
        if (cp_range(r, s, p[1], p[2], &b, &e)) return JE_FAIL;
        const jstr *sub = p[0].u.s;
        if (id == JSM_COUNT) {
            int64_t cnt = 0;
            if (sub->len == 0) cnt = js_count_cp(s->p + b, e - b) + 1;
            else
                for (size_t i = b; i + sub->len <= e;) {
                    const char *h = memmem(s->p + i, e - i, sub->p, sub->len);
                    if (!h) break;
                    cnt++;
                    i = (size_t)(h - s->p) + sub->len;
                }
            return *out = jv_int(cnt), 0;
        }
        long at = -1;
        if (sub->len <= e - b) {
            if (id == JSM_FIND || id == JSM_INDEX) {
                const char *h = memmem(s->p + b, e - b, sub->p, sub->len);
                if (h) at = (long)(h - s->p);
            } else {
                for (size_t k = e - sub->len + 1; k-- > b;)
                    if (memcmp(s->p + k, sub->p, sub->len) == 0) {
                        at = (long)k;
                        break;
                    }
            }
        }
        if (at < 0 && (id == JSM_INDEX || id == JSM_RINDEX)) return jr_fail(r, TMPL_ERR_TYPE, "substring not found");
        return *out = jv_int(at < 0 ? -1 : cp_index(s, (size_t)at)), 0;
    }
    case JSM_REPLACE:
        if (jargs_bind(r, name, a, repl_p, 3, p)) return JE_FAIL;
        if (need_str(r, p[0], "replace() argument 1") || need_str(r, p[1], "replace() argument 2")) return JE_FAIL;
        if (p[2].t != JT_ABSENT && p[2].t != JT_INT && p[2].t != JT_BOOL)
            return jr_fail(r, TMPL_ERR_TYPE, "'%s' object cannot be interpreted as an integer", jv_typename(p[2]));
        return jm_replace(r, s, p[0].u.s, p[1].u.s, p[2].t == JT_ABSENT ? -1 : p[2].u.i, out);
    case JSM_JOIN: {
        if (jargs_bind(r, name, a, one, 1, p)) return JE_FAIL;
        if (p[0].t == JT_ABSENT) return jr_fail(r, TMPL_ERR_TYPE, "join() takes exactly one argument (0 given)");
        const jv *items;
        size_t n;
        if (jv_iter(r, p[0], &items, &n)) return JE_FAIL;
        jbuf *b = jb_new(r, 64);
        if (!b) return JE_FAIL;
        for (size_t i = 0; i < n; i++) {
            if (items[i].t != JT_STR)
                return jr_fail(r, TMPL_ERR_TYPE, "sequence item %zu: expected str instance, %s found", i,
                               jv_typename(items[i]));
            if ((i && jb_put(r, b, s->p, s->len)) || jb_put(r, b, items[i].u.s->p, items[i].u.s->len)) return JE_FAIL;
        }
        return ret_buf(r, b, out);
    }
    case JSM_CENTER:
    case JSM_LJUST:
    case JSM_RJUST: {
        if (jargs_bind(r, name, a, pad_p, 2, p)) return JE_FAIL;
        if (p[0].t != JT_INT && p[0].t != JT_BOOL)
            return jr_fail(r, TMPL_ERR_TYPE, "'%s' object cannot be interpreted as an integer", jv_typename(p[0]));
        const jstr *fill = &s_space;
        if (p[1].t != JT_ABSENT) {
            if (p[1].t != JT_STR || js_count_cp(p[1].u.s->p, p[1].u.s->len) != 1)
                return jr_fail(r, TMPL_ERR_TYPE, "The fill character must be exactly one character long");
            fill = p[1].u.s;
        }
        return pad(r, s, p[0].u.i, fill, id == JSM_CENTER ? 0 : id == JSM_LJUST ? -1 : 1, out);
    }
    case JSM_ZFILL: {
        if (jargs_bind(r, name, a, pad_p, 1, p)) return JE_FAIL;
        if (p[0].t != JT_INT && p[0].t != JT_BOOL)
            return jr_fail(r, TMPL_ERR_TYPE, "'%s' object cannot be interpreted as an integer", jv_typename(p[0]));
        js_ncp(s);
        if (p[0].u.i <= s->ncp) return *out = jv_str(s), 0;
        int64_t z = p[0].u.i - s->ncp;
        if (z > (int64_t)r->max_output) return jr_fail(r, TMPL_ERR_LIMIT, "string too long");
        jbuf *b = jb_new(r, s->len + (size_t)z);
        if (!b) return JE_FAIL;
        size_t sign = s->len && (s->p[0] == '+' || s->p[0] == '-');
        if (jb_put(r, b, s->p, sign)) return JE_FAIL;
        for (int64_t i = 0; i < z; i++)
            if (jb_putc(r, b, '0')) return JE_FAIL;
        if (jb_put(r, b, s->p + sign, s->len - sign)) return JE_FAIL;
        return ret_buf(r, b, out);
    }
    case JSM_PARTITION:
    case JSM_RPARTITION: {
        if (jargs_bind(r, name, a, one, 1, p) || need_str(r, p[0], "sep")) return JE_FAIL;
        const jstr *sep = p[0].u.s;
        if (sep->len == 0) return jr_fail(r, TMPL_ERR_TYPE, "empty separator");
        long at = -1;
        if (id == JSM_PARTITION) {
            const char *h = memmem(s->p, s->len, sep->p, sep->len);
            if (h) at = (long)(h - s->p);
        } else if (sep->len <= s->len) {
            for (size_t k = s->len - sep->len + 1; k-- > 0;)
                if (memcmp(s->p + k, sep->p, sep->len) == 0) {
                    at = (long)k;
                    break;
                }
        }
        jlist *l = jlist_new(r, JL_TUPLE, 3);
        if (!l) return JE_FAIL;
        int rc = 0;
        if (at < 0) {
            jv empty = jv_strn(r, "", 0, &rc);
            l->v[0] = id == JSM_PARTITION ? jv_str(s) : empty;
            l->v[1] = empty;
            l->v[2] = id == JSM_PARTITION ? empty : jv_str(s);
        } else {
            l->v[0] = jv_strn(r, s->p, (size_t)at, &rc);
            l->v[1] = jv_str(sep);
            l->v[2] = jv_strn(r, s->p + at + sep->len, s->len - (size_t)at - sep->len, &rc);
        }
        out->t = JT_LIST;
        out->u.l = l;
        return rc;
    }
    case JSM_REMOVEPREFIX:
    case JSM_REMOVESUFFIX: {
        if (jargs_bind(r, name, a, one, 1, p) || need_str(r, p[0], "argument")) return JE_FAIL;
        const jstr *x = p[0].u.s;
        if (x->len <= s->len && x->len) {
            if (id == JSM_REMOVEPREFIX && memcmp(s->p, x->p, x->len) == 0)
                return ret_str(r, s->p + x->len, s->len - x->len, out);
            if (id == JSM_REMOVESUFFIX && memcmp(s->p + s->len - x->len, x->p, x->len) == 0)
                return ret_str(r, s->p, s->len - x->len, out);
        }
        return *out = jv_str(s), 0;
    }
    case JSM_ISALPHA:
    case JSM_ISDIGIT:
    case JSM_ISALNUM:
    case JSM_ISSPACE:
    case JSM_ISDECIMAL:
    case JSM_ISNUMERIC:
    case JSM_ISLOWER:
    case JSM_ISUPPER:
        if (jargs_bind(r, name, a, NULL, 0, p)) return JE_FAIL;
        return *out = jv_bool(char_class_all(s, id - JSM_ISALPHA)), 0;
    default: return jr_fail(r, TMPL_ERR_UNSUPPORTED, "str.%s() is not supported", name);
    }
}
