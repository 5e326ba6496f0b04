/* format.c: how values become text, exactly as Python does it for transformers' templates:
 * str() for {{ }} output and the string filter, repr() for items inside containers, and
 * json.dumps() for HF's tojson filter (ensure_ascii=False by default, no HTML escaping, ", "/": "
 * separators, or ","/": " with indent). Floats use Python's shortest round-trip repr. Plus the
 * UTF-8 helpers the interpreter shares (Python's str.isspace set, decode/encode/validate). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/jinja.h"

#define JF_MAX_NEST 200

/* ---------------------------------------------------------------- UTF-8 */

uint32_t ju_decode(const char *s, size_t n, size_t *adv) {
    const unsigned char *p = (const unsigned char *)s;
    if (n == 0) {
        *adv = 0;
        return 0;
    }
    if (p[0] < 0x80 || n < 2) {
        *adv = 1;
        return p[0];
    }
    if ((p[0] & 0xE0) == 0xC0) {
        *adv = 2;
        return ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
    }
    if ((p[0] & 0xF0) == 0xE0 && n >= 3) {
        *adv = 3;
        return ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    }
    if (n >= 4) {
        *adv = 4;
        return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
               (p[3] & 0x3F);
    }
    *adv = 1;
    return p[0];
}

size_t ju_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int ju_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) k = 1, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0) k = 2, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0) k = 3, cp = c & 0x07, min = 0x10000;
        else return 0;
        if (n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

/* Python's str.isspace(): bidi class WS/B/S or category Zs. */
int ju_isspace(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int ju_printable(uint32_t c) {
    if (c == ' ') return 1;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return 0;
    default: return 1;
    }
}

/* ---------------------------------------------------------------- floats */

/* Python's repr(float): the shortest string that round-trips, fixed notation for 1e-4 <= |x| < 1e16. */
void jf_float_repr(double f, char out[40]) {
    if (isnan(f)) {
        strcpy(out, "nan");
        return;
    }
    if (isinf(f)) {
        strcpy(out, f < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    /* tmp: [-]d[.ddd]e[+-]XX */
    char digits[24];
    int nd = 0, neg = 0;
    const char *q = tmp;
    if (*q == '-') neg = 1, q++;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int exp10 = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    int decpt = exp10 + 1; /* value = 0.digits * 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (f == 0.0) {
        strcpy(o, "0.0");
        return;
    }
    if (decpt <= -4 || decpt > 16) {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        int e = decpt - 1;
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        memcpy(o, digits, (size_t)nd);
        o += nd;
    } else if (decpt >= nd) {
        memcpy(o, digits, (size_t)nd);
        o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    } else {
        memcpy(o, digits, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, digits + decpt, (size_t)(nd - decpt));
        o += nd - decpt;
    }
    *o = 0;
}

/* ---------------------------------------------------------------- str() and repr() */

static int write_repr_str(jrt *r, jbuf *b, const jstr *s) {
    int has_sq = memchr(s->p, '\'', s->len) != NULL, has_dq = memchr(s->p, '"', s->len) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (jb_putc(r, b, q)) return JE_FAIL;
    size_t i = 0, run = 0;
    while (i < s->len) {
        size_t adv;
        uint32_t c = ju_decode(s->p + i, s->len - i, &adv);
        char esc[12];
        int ne = 0;
        if (c == (uint32_t)q || c == '\\') ne = snprintf(esc, sizeof esc, "\\%c", (char)c);
        else if (c == '\t') ne = snprintf(esc, sizeof esc, "\\t");
        else if (c == '\n') ne = snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r') ne = snprintf(esc, sizeof esc, "\\r");
        else if (c < 0x20 || c == 0x7F) ne = snprintf(esc, sizeof esc, "\\x%02x", c);
        else if (c >= 0x80 && !ju_printable(c)) {
            if (c <= 0xFF) ne = snprintf(esc, sizeof esc, "\\x%02x", c);
            else if (c <= 0xFFFF) ne = snprintf(esc, sizeof esc, "\\u%04x", c);
            else ne = snprintf(esc, sizeof esc, "\\U%08x", c);
        }
        if (ne) {
            if (jb_put(r, b, s->p + i - run, run) || jb_put(r, b, esc, (size_t)ne)) return JE_FAIL;
            run = 0;
        } else {
            run += adv;
        }
        i += adv;
    }
    if (jb_put(r, b, s->p + i - run, run)) return JE_FAIL;
    return jb_putc(r, b, q);
}

static int write_val(jrt *r, jbuf *b, jv v, int repr, int depth);

static int write_seq(jrt *r, jbuf *b, const jlist *l, const char *open, const char *close, int depth) {
    if (jb_put(r, b, open, strlen(open))) return JE_FAIL;
    for (size_t i = 0; i < l->n; i++) {
        if (i && jb_put(r, b, ", ", 2)) return JE_FAIL;
        if (write_val(r, b, l->v[i], 1, depth + 1)) return JE_FAIL;
    }
    if (l->kind == JL_TUPLE && l->n == 1 && jb_putc(r, b, ',')) return JE_FAIL;
    return jb_put(r, b, close, strlen(close));
}

static int write_dict(jrt *r, jbuf *b, const jdict *d, int depth) {
    if (jb_putc(r, b, '{')) return JE_FAIL;
    for (size_t i = 0; i < d->n; i++) {
        if (i && jb_put(r, b, ", ", 2)) return JE_FAIL;
        if (write_val(r, b, d->k[i], 1, depth + 1) || jb_put(r, b, ": ", 2) ||
            write_val(r, b, d->v[i], 1, depth + 1))
            return JE_FAIL;
    }
    return jb_putc(r, b, '}');
}

static int write_val(jrt *r, jbuf *b, jv v, int repr, int depth) {
    if (depth > JF_MAX_NEST) return jr_fail(r, TMPL_ERR_LIMIT, "maximum recursion depth exceeded while formatting");
    if (jr_stack_check(r)) return JE_FAIL;
    char tmp[48];
    switch (v.t) {
    case JT_UNDEF: return repr ? jb_put(r, b, "Undefined", 9) : 0;
    case JT_NONE: return jb_put(r, b, "None", 4);
    case JT_BOOL: return v.u.i ? jb_put(r, b, "True", 4) : jb_put(r, b, "False", 5);
    case JT_INT: return jb_printf(r, b, "%lld", (long long)v.u.i);
    case JT_FLOAT: jf_float_repr(v.u.f, tmp); return jb_put(r, b, tmp, strlen(tmp));
    case JT_STR:
        if (!repr) return jb_put(r, b, v.u.s->p, v.u.s->len);
        if (!v.m) return write_repr_str(r, b, v.u.s);
        return jb_put(r, b, "Markup(", 7) || write_repr_str(r, b, v.u.s) || jb_putc(r, b, ')');
    case JT_LIST:
        if (jr_step(r, 1 + v.u.l->n / 8)) return JE_FAIL;
        switch (v.u.l->kind) {
        case JL_TUPLE: return write_seq(r, b, v.u.l, "(", ")", depth);
        case JL_GEN: return jb_put(r, b, "<generator object>", 18);
        case JL_ITEMS: return write_seq(r, b, v.u.l, "dict_items([", "])", depth);
        case JL_KEYS: return write_seq(r, b, v.u.l, "dict_keys([", "])", depth);
        case JL_VALUES: return write_seq(r, b, v.u.l, "dict_values([", "])", depth);
        default: return write_seq(r, b, v.u.l, "[", "]", depth);
        }
    case JT_DICT:
        if (jr_step(r, 1 + v.u.d->n / 8)) return JE_FAIL;
        return write_dict(r, b, v.u.d, depth);
    case JT_NS:
        if (jb_put(r, b, "<Namespace ", 11) || write_dict(r, b, v.u.d, depth)) return JE_FAIL;
        return jb_putc(r, b, '>');
    case JT_MACRO: {
        const jstr *nm = v.u.m->node->name;
        if (!nm) return jb_put(r, b, "<Macro 'caller'>", 16);
        return jb_printf(r, b, "<Macro '%.*s'>", (int)(nm->len > 200 ? 200 : nm->len), nm->p);
    }
    case JT_FUNC: return jb_put(r, b, "<function>", 10);
    case JT_METHOD: return jb_put(r, b, "<built-in method>", 17);
    case JT_LOOP:
        return jb_printf(r, b, "<LoopContext %lld/%lld>", (long long)v.u.lp->index0 + 1, (long long)v.u.lp->length);
    default: return 0;
    }
}

int jv_write_str(jrt *r, jbuf *b, jv v) { return write_val(r, b, v, 0, 0); }
int jv_write_repr(jrt *r, jbuf *b, jv v) { return write_val(r, b, v, 1, 0); }

int jv_to_str(jrt *r, jv v, const jstr **out) {
    if (v.t == JT_STR) {
        *out = v.u.s;
        return 0;
    }
    jbuf *b = jb_new(r, 32);
    if (!b || jv_write_str(r, b, v)) return JE_FAIL;
    *out = jb_str(r, b);
    return *out ? 0 : JE_FAIL;
}

/* ---------------------------------------------------------------- json.dumps() */

static int write_json_str(jrt *r, jbuf *b, const char *p, size_t n, int ascii) {
    if (jb_putc(r, b, '"')) return JE_FAIL;
    size_t i = 0, run = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        char esc[16];
        int ne = 0;
        size_t adv = 1;
        if (c == '"') ne = snprintf(esc, sizeof esc, "\\\"");
        else if (c == '\\') ne = snprintf(esc, sizeof esc, "\\\\");
        else if (c == '\n') ne = snprintf(esc, sizeof esc, "\\n");
        else if (c == '\r') ne = snprintf(esc, sizeof esc, "\\r");
        else if (c == '\t') ne = snprintf(esc, sizeof esc, "\\t");
        else if (c == '\b') ne = snprintf(esc, sizeof esc, "\\b");
        else if (c == '\f') ne = snprintf(esc, sizeof esc, "\\f");
        else if (c < 0x20) ne = snprintf(esc, sizeof esc, "\\u%04x", c);
        else if (c >= 0x80) {
            uint32_t cp = ju_decode(p + i, n - i, &adv);
            if (ascii) {
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    ne = snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    ne = snprintf(esc, sizeof esc, "\\u%04x", cp);
                }
            }
        }
        if (ne) {
            if (jb_put(r, b, p + i - run, run) || jb_put(r, b, esc, (size_t)ne)) return JE_FAIL;
            run = 0;
        } else {
            run += adv;
        }
        i += adv;
    }
    if (jb_put(r, b, p + i - run, run)) return JE_FAIL;
    return jb_putc(r, b, '"');
}

static int json_newline(jrt *r, jbuf *b, const jjson_opts *o, int depth) {
    if (jb_putc(r, b, '\n')) return JE_FAIL;
    for (int i = 0; i < depth; i++)
        if (jb_put(r, b, o->indent->p, o->indent->len)) return JE_FAIL;
    return 0;
}

static int json_key(jrt *r, jbuf *b, jv k, const jjson_opts *o) {
    char tmp[48];
    switch (k.t) {
    case JT_STR: return write_json_str(r, b, k.u.s->p, k.u.s->len, o->ensure_ascii);
    case JT_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)k.u.i); break;
    case JT_BOOL: strcpy(tmp, k.u.i ? "true" : "false"); break;
    case JT_NONE: strcpy(tmp, "null"); break;
    case JT_FLOAT:
        if (isnan(k.u.f)) strcpy(tmp, "NaN");
        else if (isinf(k.u.f)) strcpy(tmp, k.u.f < 0 ? "-Infinity" : "Infinity");
        else jf_float_repr(k.u.f, tmp);
        break;
    default:
        return jr_fail(r, TMPL_ERR_TYPE, "keys must be str, int, float, bool or None, not %s", jv_typename(k));
    }
    return write_json_str(r, b, tmp, strlen(tmp), 0);
}

static int key_before(jrt *r, jv a, jv b, int *lt) {
    int c;
    if (jv_cmp(r, a, b, &c)) return JE_FAIL;
    *lt = c < 0;
    return 0;
}

int jv_write_json(jrt *r, jbuf *b, jv v, const jjson_opts *o, int depth) {
    if (depth > JF_MAX_NEST) return jr_fail(r, TMPL_ERR_LIMIT, "maximum recursion depth exceeded in tojson");
    if (jr_stack_check(r)) return JE_FAIL;
    const jstr *isep = o->item_sep, *ksep = o->key_sep;
    char tmp[48];
    switch (v.t) {
    case JT_NONE: return jb_put(r, b, "null", 4);
    case JT_BOOL: return v.u.i ? jb_put(r, b, "true", 4) : jb_put(r, b, "false", 5);
    case JT_INT: return jb_printf(r, b, "%lld", (long long)v.u.i);
    case JT_FLOAT:
        if (isnan(v.u.f)) return jb_put(r, b, "NaN", 3);
        if (isinf(v.u.f)) return v.u.f < 0 ? jb_put(r, b, "-Infinity", 9) : jb_put(r, b, "Infinity", 8);
        jf_float_repr(v.u.f, tmp);
        return jb_put(r, b, tmp, strlen(tmp));
    case JT_STR: return write_json_str(r, b, v.u.s->p, v.u.s->len, o->ensure_ascii);
    case JT_LIST: {
        const jlist *l = v.u.l;
        if (l->kind != JL_LIST && l->kind != JL_TUPLE) break;
        if (jr_step(r, 1 + l->n / 8)) return JE_FAIL;
        if (l->n == 0) return jb_put(r, b, "[]", 2);
        if (jb_putc(r, b, '[')) return JE_FAIL;
        for (size_t i = 0; i < l->n; i++) {
            if (i && jb_put(r, b, isep->p, isep->len)) return JE_FAIL;
            if (o->indent && json_newline(r, b, o, depth + 1)) return JE_FAIL;
            if (jv_write_json(r, b, l->v[i], o, depth + 1)) return JE_FAIL;
        }
        if (o->indent && json_newline(r, b, o, depth)) return JE_FAIL;
        return jb_putc(r, b, ']');
    }
    case JT_DICT: {
        const jdict *d = v.u.d;
        if (jr_step(r, 1 + d->n / 8)) return JE_FAIL;
        if (d->n == 0) return jb_put(r, b, "{}", 2);
        size_t *ord = jr_alloc(r, d->n * sizeof(size_t));
        if (!ord) return JE_FAIL;
        for (size_t i = 0; i < d->n; i++) ord[i] = i;
        if (o->sort_keys) { /* insertion sort: stable, and dicts in templates are small */
            if (jr_step(r, d->n * d->n / 16)) return JE_FAIL;
            for (size_t i = 1; i < d->n; i++) {
                size_t x = ord[i], j = i;
                while (j > 0) {
                    int lt;
                    if (key_before(r, d->k[x], d->k[ord[j - 1]], &lt)) return JE_FAIL;
                    if (!lt) break;
                    ord[j] = ord[j - 1];
                    j--;
                }
                ord[j] = x;
            }
        }
        if (jb_putc(r, b, '{')) return JE_FAIL;
        for (size_t i = 0; i < d->n; i++) {
            if (i && jb_put(r, b, isep->p, isep->len)) return JE_FAIL;
            if (o->indent && json_newline(r, b, o, depth + 1)) return JE_FAIL;
            if (json_key(r, b, d->k[ord[i]], o) || jb_put(r, b, ksep->p, ksep->len) ||
                jv_write_json(r, b, d->v[ord[i]], o, depth + 1))
                return JE_FAIL;
        }
        if (o->indent && json_newline(r, b, o, depth)) return JE_FAIL;
        return jb_putc(r, b, '}');
    }
    default: break;
    }
    return jr_fail(r, TMPL_ERR_TYPE, "Object of type %s is not JSON serializable", jv_typename(v));
}
