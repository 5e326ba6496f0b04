/* strfmt.c: Python string formatting as templates reach it: printf-style `fmt % args` (the
 * Mod operator on a string, and the `format` filter) and str.format() with the common parts of
 * the format-spec mini-language (fill, align, sign, #, 0, width, grouping, precision and the
 * s/d/b/o/x/X/c/e/f/g/% types). Field names may be automatic, numbered or keyword; attribute
 * and index chains inside fields ({0.name}, {0[1]}) are not supported and say so. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"
#include "template/strings.h"

typedef struct {
    uint32_t fill;
    char align; /* 0, '<', '>', '^', '=' */
    char sign;  /* 0, '+', '-', ' ' */
    int alt, zero, width, prec;
    char group; /* 0, ',', '_' */
    char type;
} jspec;

static int put_cp(jrt *r, jbuf *b, uint32_t cp) {
    char enc[4];
    return jb_put(r, b, enc, ju_encode(cp, enc));
}

/* Write s padded to spec->width code points (numbers: '=' puts padding after the sign). */
static int put_padded(jrt *r, jbuf *b, const char *s, size_t n, const jspec *sp, char def_align) {
    int64_t len = js_count_cp(s, n), padn = sp->width > len ? sp->width - len : 0;
    char al = sp->align ? sp->align : def_align;
    uint32_t fill = sp->fill ? sp->fill : ' ';
    int64_t left = al == '>' ? padn : al == '^' ? padn / 2 : 0, right = padn - left;
    if (al == '=') {
        size_t sg = n && (s[0] == '-' || s[0] == '+' || s[0] == ' ') ? 1 : 0;
        if (n > sg + 1 && s[sg] == '0' && (s[sg + 1] == 'x' || s[sg + 1] == 'X' || s[sg + 1] == 'o' || s[sg + 1] == 'b'))
            sg += 2;
        if (jb_put(r, b, s, sg)) return JE_FAIL;
        for (int64_t i = 0; i < padn; i++)
            if (put_cp(r, b, fill)) return JE_FAIL;
        return jb_put(r, b, s + sg, n - sg);
    }
    for (int64_t i = 0; i < left; i++)
        if (put_cp(r, b, fill)) return JE_FAIL;
    if (jb_put(r, b, s, n)) return JE_FAIL;
    for (int64_t i = 0; i < right; i++)
        if (put_cp(r, b, fill)) return JE_FAIL;
    return 0;
}

static void group_digits(char *num, char sep) {
    /* num: [-+ ]digits[.rest]; inserts sep every 3 integer digits, in place (buffer is large) */
    char *p = num;
    if (*p == '-' || *p == '+' || *p == ' ') p++;
    char *end = p;
    while (*end >= '0' && *end <= '9') end++;
    size_t nd = (size_t)(end - p);
    if (nd <= 3) return;
    size_t extra = (nd - 1) / 3, tail = strlen(end);
    memmove(end + extra, end, tail + 1);
    char *dst = end + extra - 1, *src = end - 1;
    size_t k = 0;
    while (src >= p) {
        *dst-- = *src--;
        if (++k % 3 == 0 && src >= p) *dst-- = sep;
    }
}

static int as_int(jrt *r, jv v, int64_t *out, char type) {
    if (v.t == JT_INT || v.t == JT_BOOL) return *out = v.u.i, 0;
    if (v.t == JT_FLOAT && (type == 'd' || type == 'i' || type == 'u')) {
        if (!isfinite(v.u.f) || fabs(v.u.f) > 9.2e18) return jr_fail(r, TMPL_ERR_TYPE, "cannot convert float to integer");
        return *out = (int64_t)v.u.f, 0;
    }
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    return jr_fail(r, TMPL_ERR_TYPE, "%%%c format: %s is required, not %s", type,
                   type == 'd' || type == 'i' || type == 'u' ? "a real number" : "an integer", jv_typename(v));
}

static int as_float(jrt *r, jv v, double *out) {
    if (v.t == JT_FLOAT) return *out = v.u.f, 0;
    if (v.t == JT_INT || v.t == JT_BOOL) return *out = (double)v.u.i, 0;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    return jr_fail(r, TMPL_ERR_TYPE, "must be real number, not %s", jv_typename(v));
}

/* One value under a spec; `pct` selects printf-style semantics (precision on %s truncates too). */
static int format_one(jrt *r, jbuf *b, jv v, const jspec *sp, int pct) {
    char num[512], cf[32];
    char t = sp->type;
    if (t == 's' || t == 'r' || t == 'a' || (t == 0 && v.t != JT_INT && v.t != JT_FLOAT && !(v.t == JT_BOOL && !pct))) {
        if (t == 0 && sp->prec < 0 && !sp->width && !sp->align && !sp->sign && !pct && v.t != JT_STR &&
            (sp->zero || sp->alt || sp->group))
            return jr_fail(r, TMPL_ERR_TYPE, "unsupported format string passed to %s.__format__", jv_typename(v));
        jbuf *tmp = jb_new(r, 32);
        if (!tmp) return JE_FAIL;
        if ((t == 'r' || t == 'a') ? jv_write_repr(r, tmp, v) : jv_write_str(r, tmp, v)) return JE_FAIL;
        size_t n = tmp->used;
        if (sp->prec >= 0) n = js_cp_offset(tmp->data, tmp->used, sp->prec);
        return put_padded(r, b, tmp->data, n, sp, pct ? '>' : '<');
    }
    if (v.t == JT_BOOL && t == 0) { /* format(True, '') is 'True' */
        const char *s = v.u.i ? "True" : "False";
        return put_padded(r, b, s, strlen(s), sp, '<');
    }
    int is_float_type = t == 'e' || t == 'E' || t == 'f' || t == 'F' || t == 'g' || t == 'G' || t == '%' ||
                        (t == 0 && v.t == JT_FLOAT);
    if (!is_float_type) {
        int64_t x;
        if (t == 'c') {
            if (v.t == JT_STR) return put_padded(r, b, v.u.s->p, v.u.s->len, sp, '<');
            if (as_int(r, v, &x, 'c')) return JE_FAIL;
            if (x < 0 || x > 0x10FFFF) return jr_fail(r, TMPL_ERR_TYPE, "%%c arg not in range(0x110000)");
            char enc[4];
            size_t k = ju_encode((uint32_t)x, enc);
            return put_padded(r, b, enc, k, sp, '<');
        }
        char tt = t ? t : 'd';
        if (as_int(r, v, &x, tt)) return JE_FAIL;
        uint64_t ux = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
        char digits[80];
        if (tt == 'b') {
            int k = 0;
            char tmp2[70];
            do tmp2[k++] = (char)('0' + (ux & 1)), ux >>= 1;
            while (ux);
            for (int i = 0; i < k; i++) digits[i] = tmp2[k - 1 - i];
            digits[k] = 0;
        } else {
            snprintf(digits, sizeof digits, tt == 'x' ? "%llx" : tt == 'X' ? "%llX" : tt == 'o' ? "%llo" : "%llu",
                     (unsigned long long)ux);
        }
        const char *prefix = "";
        if (sp->alt) prefix = tt == 'x' ? "0x" : tt == 'X' ? "0X" : tt == 'o' ? "0o" : tt == 'b' ? "0b" : "";
        const char *sgn = x < 0 ? "-" : sp->sign == '+' ? "+" : sp->sign == ' ' ? " " : "";
        size_t dl = strlen(digits), want = pct && sp->prec > 0 ? (size_t)(sp->prec > 70 ? 70 : sp->prec) : 0;
        if (want > dl) { /* %.5d zero-extends */
            memmove(digits + (want - dl), digits, dl + 1);
            memset(digits, '0', want - dl);
        }
        snprintf(num, sizeof num, "%s%s%s", sgn, prefix, digits);
        if (sp->group) group_digits(num, sp->group);
    } else {
        double f = 0;
        if (as_float(r, v, &f)) return JE_FAIL;
        int prec = sp->prec >= 0 ? sp->prec : 6;
        if (prec > 60) prec = 60;
        if (t == 0) {
            if (sp->prec < 0) {
                jf_float_repr(f, num);
            } else {
                snprintf(num, sizeof num, "%.*g", prec ? prec : 1, f);
            }
            if (sp->sign == '+' && f >= 0) memmove(num + 1, num, strlen(num) + 1), num[0] = '+';
            else if (sp->sign == ' ' && f >= 0) memmove(num + 1, num, strlen(num) + 1), num[0] = ' ';
        } else {
            double x = t == '%' ? f * 100 : f;
            char ct = t == '%' ? 'f' : t;
            snprintf(cf, sizeof cf, "%%%s%s.%d%c", sp->sign == '+' ? "+" : sp->sign == ' ' ? " " : "", sp->alt ? "#" : "",
                     prec, ct);
            snprintf(num, sizeof num - 2, cf, x);
            if (t == '%') strcat(num, "%");
        }
        if (sp->group) group_digits(num, sp->group);
    }
    jspec s2 = *sp;
    if (sp->zero && !sp->align) {
        s2.fill = '0';
        s2.align = '=';
    }
    return put_padded(r, b, num, strlen(num), &s2, '>');
}

/* ---------------------------------------------------------------- fmt % args */

/* One conversion into b; for a Markup format the text is escaped unless it is a Markup's own %s. */
static int format_arg(jrt *r, jbuf *b, jv v, const jspec *sp, int pct, int markup) {
    if (!markup || (v.t == JT_STR && v.m && (sp->type == 's' || sp->type == 0))) return format_one(r, b, v, sp, pct);
    jbuf *tmp = jb_new(r, 32);
    if (!tmp || format_one(r, tmp, v, sp, pct)) return JE_FAIL;
    jstr t = {tmp->data, tmp->used, -1, NULL};
    const jstr *e;
    if (jm_escape(r, &t, &e)) return JE_FAIL;
    return jb_put(r, b, e->p, e->len);
}

int jm_percent_format(jrt *r, const jstr *fmt, jv args, jv *out, int markup) {
    const jv *pos = &args;
    size_t npos = 1, next = 0;
    const jdict *map = args.t == JT_DICT ? args.u.d : NULL;
    if (args.t == JT_LIST && args.u.l->kind == JL_TUPLE) pos = args.u.l->v, npos = args.u.l->n;
    jbuf *b = jb_new(r, fmt->len + 16);
    if (!b) return JE_FAIL;
    const char *p = fmt->p, *e = fmt->p + fmt->len;
    int used_map = 0;
    while (p < e) {
        const char *pc = memchr(p, '%', (size_t)(e - p));
        if (!pc) {
            if (jb_put(r, b, p, (size_t)(e - p))) return JE_FAIL;
            break;
        }
        if (jb_put(r, b, p, (size_t)(pc - p))) return JE_FAIL;
        p = pc + 1;
        if (p >= e) return jr_fail(r, TMPL_ERR_TYPE, "incomplete format");
        jv val;
        int have_key = 0;
        if (*p == '(') {
            const char *k = ++p;
            int depth = 1;
            while (p < e && depth) {
                if (*p == '(') depth++;
                else if (*p == ')') depth--;
                p++;
            }
            if (depth) return jr_fail(r, TMPL_ERR_TYPE, "incomplete format key");
            if (!map) return jr_fail(r, TMPL_ERR_TYPE, "format requires a mapping");
            const jv *x = jdict_get_str(map, k, (size_t)(p - 1 - k));
            if (!x) return jr_fail(r, TMPL_ERR_TYPE, "KeyError: '%.*s'", (int)(p - 1 - k), k);
            val = *x;
            have_key = used_map = 1;
        }
        jspec sp = {.prec = -1};
        for (; p < e && strchr("-+ #0", *p); p++) {
            if (*p == '-') sp.align = '<';
            else if (*p == '+') sp.sign = '+';
            else if (*p == ' ' && sp.sign != '+') sp.sign = ' ';
            else if (*p == '#') sp.alt = 1;
            else sp.zero = 1;
        }
        if (p < e && *p == '*') return jr_fail(r, TMPL_ERR_UNSUPPORTED, "'*' widths are not supported");
        while (p < e && *p >= '0' && *p <= '9') sp.width = sp.width * 10 + (*p++ - '0') % 10, sp.width %= 100000;
        if (p < e && *p == '.') {
            p++;
            sp.prec = 0;
            while (p < e && *p >= '0' && *p <= '9') sp.prec = (sp.prec * 10 + (*p++ - '0')) % 100000;
        }
        while (p < e && (*p == 'h' || *p == 'l' || *p == 'L')) p++;
        if (p >= e) return jr_fail(r, TMPL_ERR_TYPE, "incomplete format");
        char t = *p++;
        if (t == '%') {
            if (jb_putc(r, b, '%')) return JE_FAIL;
            continue;
        }
        if (!strchr("sradiuoxXeEfFgGc", t))
            return jr_fail(r, TMPL_ERR_TYPE, "unsupported format character '%c' (0x%x)", t, (unsigned char)t);
        if (!have_key) {
            if (next >= npos || (map && npos == 1 && pos == &args && used_map))
                return jr_fail(r, TMPL_ERR_TYPE, "not enough arguments for format string");
            val = pos[next++];
        }
        if (sp.zero && sp.align == '<') sp.zero = 0;
        sp.type = t == 'i' || t == 'u' ? 'd' : t;
        if (t == 'd' || t == 'i' || t == 'u') sp.type = 'd';
        if (format_arg(r, b, val, &sp, 1, markup)) return JE_FAIL;
    }
    if (!used_map && !map && next < npos)
        return jr_fail(r, TMPL_ERR_TYPE, "not all arguments converted during string formatting");
    const jstr *s = jb_str(r, b);
    if (!s) return JE_FAIL;
    *out = jv_str(s);
    out->m = (uint8_t)markup;
    return 0;
}

/* ---------------------------------------------------------------- str.format */

static int parse_spec(jrt *r, const char *p, const char *e, jspec *sp) {
    memset(sp, 0, sizeof *sp);
    sp->prec = -1;
    if (p < e) {
        size_t adv;
        uint32_t c = ju_decode(p, (size_t)(e - p), &adv);
        if (p + adv < e && strchr("<>^=", p[adv])) {
            sp->fill = c;
            sp->align = p[adv];
            p += adv + 1;
        } else if (strchr("<>^=", *p)) {
            sp->align = *p++;
        }
    }
    if (p < e && strchr("+- ", *p)) sp->sign = *p++;
    if (p < e && *p == '#') sp->alt = 1, p++;
    if (p < e && *p == '0') sp->zero = 1, p++;
    while (p < e && *p >= '0' && *p <= '9') sp->width = (sp->width * 10 + (*p++ - '0')) % 100000;
    if (p < e && (*p == ',' || *p == '_')) sp->group = *p++;
    if (p < e && *p == '.') {
        p++;
        sp->prec = 0;
        while (p < e && *p >= '0' && *p <= '9') sp->prec = (sp->prec * 10 + (*p++ - '0')) % 100000;
    }
    if (p < e) sp->type = *p++;
    if (p != e || (sp->type && !strchr("sbcdoxXeEfFgG%n", sp->type)))
        return jr_fail(r, TMPL_ERR_TYPE, "Invalid format specifier");
    if (sp->type == 'n') sp->type = 'd';
    return 0;
}

int js_format_method(jrt *r, const jstr *fmt, jargs *a, jv *out, int markup) {
    jbuf *b = jb_new(r, fmt->len + 16);
    if (!b) return JE_FAIL;
    const char *p = fmt->p, *e = fmt->p + fmt->len;
    size_t auto_idx = 0;
    while (p < e) {
        char c = *p;
        if (c == '}') {
            if (p + 1 < e && p[1] == '}') {
                if (jb_putc(r, b, '}')) return JE_FAIL;
                p += 2;
                continue;
            }
            return jr_fail(r, TMPL_ERR_TYPE, "Single '}' encountered in format string");
        }
        if (c != '{') {
            const char *q = p;
            while (q < e && *q != '{' && *q != '}') q++;
            if (jb_put(r, b, p, (size_t)(q - p))) return JE_FAIL;
            p = q;
            continue;
        }
        if (p + 1 < e && p[1] == '{') {
            if (jb_putc(r, b, '{')) return JE_FAIL;
            p += 2;
            continue;
        }
        const char *f = ++p;
        while (p < e && *p != '}' && *p != '{') p++;
        if (p >= e || *p == '{') return jr_fail(r, TMPL_ERR_TYPE, "expected '}' before end of string");
        const char *fe = p++, *name_end = f;
        while (name_end < fe && *name_end != '!' && *name_end != ':') name_end++;
        char conv = 0;
        const char *spec_b = fe;
        if (name_end < fe && *name_end == '!') {
            if (name_end + 1 >= fe) return jr_fail(r, TMPL_ERR_TYPE, "end of string while looking for conversion specifier");
            conv = name_end[1];
            spec_b = name_end + 2;
            if (spec_b < fe && *spec_b != ':') return jr_fail(r, TMPL_ERR_TYPE, "expected ':' after conversion specifier");
        } else {
            spec_b = name_end;
        }
        if (spec_b < fe && *spec_b == ':') spec_b++;
        jv val;
        size_t nl = (size_t)(name_end - f);
        if (memchr(f, '.', nl) || memchr(f, '[', nl))
            return jr_fail(r, TMPL_ERR_UNSUPPORTED, "attribute or index lookups in format fields are not supported");
        if (nl == 0 || (*f >= '0' && *f <= '9')) {
            size_t idx = auto_idx++;
            if (nl) {
                idx = 0;
                for (const char *q = f; q < name_end; q++) {
                    if (*q < '0' || *q > '9') return jr_fail(r, TMPL_ERR_TYPE, "invalid format field");
                    idx = (idx * 10 + (size_t)(*q - '0')) % 100000;
                }
            }
            if (idx >= a->npos) return jr_fail(r, TMPL_ERR_TYPE, "Replacement index %zu out of range for positional args tuple", idx);
            val = a->pos[idx];
        } else {
            size_t k = 0;
            while (k < a->nkw && !(a->kwn[k]->len == nl && memcmp(a->kwn[k]->p, f, nl) == 0)) k++;
            if (k == a->nkw) return jr_fail(r, TMPL_ERR_TYPE, "KeyError: '%.*s'", (int)nl, f);
            val = a->kwv[k];
        }
        jspec sp;
        if (parse_spec(r, spec_b, fe, &sp)) return JE_FAIL;
        if (conv == 'r' || conv == 'a' || conv == 's') {
            jbuf *t = jb_new(r, 32);
            if (!t || (conv == 's' ? jv_write_str(r, t, val) : jv_write_repr(r, t, val))) return JE_FAIL;
            const jstr *s = jb_str(r, t);
            if (!s) return JE_FAIL;
            val = jv_str(s);
        } else if (conv) {
            return jr_fail(r, TMPL_ERR_TYPE, "Unknown conversion specifier %c", conv);
        }
        if (format_arg(r, b, val, &sp, 0, markup)) return JE_FAIL;
    }
    const jstr *s = jb_str(r, b);
    if (!s) return JE_FAIL;
    *out = jv_str(s);
    out->m = (uint8_t)markup;
    return 0;
}
