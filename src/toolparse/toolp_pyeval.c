/* toolp_pyeval: Python's ast.literal_eval(s) for a str s, as vLLM's qwen3_coder parser applies it to a
 * parameter value (toolp_qwen3coder.c). The text is parsed as Python does in eval mode (after
 * s.lstrip(" \t")): one expression, a bare tuple "1, 2" included, then only blanks, comments and
 * newlines. Accepted as literal_eval accepts: constants (str with implicit concatenation, bytes,
 * numbers, True, False, None, ...), lists, tuples (as JSON arrays), dicts, sets and set(), a sign on
 * a number, and a number plus or minus an imaginary one (a complex). Values that json.dumps cannot
 * write (bytes, complex, Ellipsis, sets, a dict with a tuple or bytes key) become poison items, so
 * that the caller's json.dumps fails where vLLM's does; what literal_eval itself refuses (a name, an
 * operation, a list as a dict key or set element) is NULL.
 * Dict keys as a Python dict keeps them: 1, 1.0 and True are one key (the first's place and text,
 * the last value); "1" and 1 are two, both written by json.dumps as "1".
 * Not covered (rare in model output): a sign before a parenthesized complex sum ("-(1+2j)" is
 * refused by Python, poison here); string literals on separate lines outside brackets are joined
 * (Python refuses them); a form feed inside the indentation of the first line; \N{name} escapes
 * (no Unicode name table: the text stays a string). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "toolparse/internal.h"


/* Blanks: inside brackets newlines and comments too; outside, a newline ends the expression. */
static void ws(toolp_py *p) {
    if (p->level) {
        toolp_py_ws(p);
        return;
    }
    for (;;) {
        int c = py_at(p, 0);
        if (c == ' ' || c == '\t' || c == '\f') p->i++;
        else if (c == '\\' && py_at(p, 1) == '\n') p->i += 2;
        else if (c == '\\' && py_at(p, 1) == '\r') p->i += py_at(p, 2) == '\n' ? 3 : 2;
        else return;
    }
}

static int eat(toolp_py *p, int c) {
    ws(p);
    if (py_at(p, 0) != c) return 0;
    p->i++;
    return 1;
}

static int number_starts(const toolp_py *p) { return py_digit(py_at(p, 0)) || (py_at(p, 0) == '.' && py_digit(py_at(p, 1))); }

static cJSON *fail(toolp_py *p, cJSON *v) {
    cJSON_Delete(v);
    if (!p->oom) p->bad = 1;
    return NULL;
}

static cJSON *poison(toolp_py *p, cJSON *v) {
    cJSON_Delete(v);
    return toolp_py_poison(p);
}

static cJSON *expr(toolp_py *p, int *hashable);

/* -n: the literal with a minus (a poison item, complex or too large, stays as it is). */
static void negate(toolp_py *p, cJSON *v) {
    if (cJSON_IsRaw(v) || !v->valuestring) return;
    size_t k = strlen(v->valuestring);
    char *m = malloc(k + 2);
    if (!m) {
        p->oom = 1;
        return;
    }
    m[0] = '-';
    memcpy(m + 1, v->valuestring, k + 1);
    free(v->valuestring);
    v->valuestring = m;
}

/* A number with its sign (sign: '+', '-' or 0) and, after it, "+ imaginary" making a complex. */
static cJSON *sequence(toolp_py *p, int close, int *hashable);

static cJSON *signed_number(toolp_py *p, int sign) {
    cJSON *v;
    int h;
    if (sign && py_at(p, 0) == '(') { /* -(1): the parentheses make no node */
        v = sequence(p, ')', &h);
        if (v && !cJSON_IsNumber(v) && !cJSON_IsRaw(v)) return fail(p, v);
    } else if (number_starts(p)) {
        v = toolp_py_number(p);
    } else {
        return fail(p, NULL);
    }
    if (!v) return NULL;
    if (sign == '-') negate(p, v);
    size_t save = p->i;
    ws(p);
    int c = py_at(p, 0);
    if (c != '+' && c != '-') {
        p->i = save;
        return v;
    }
    p->i++;
    ws(p);
    cJSON *r = number_starts(p) ? toolp_py_number(p) : NULL;
    /* literal_eval takes a real number plus or minus an imaginary one; any other operation raises */
    int complex = r && cJSON_IsRaw(r) && !cJSON_IsRaw(v);
    cJSON_Delete(r);
    return complex ? poison(p, v) : fail(p, v);
}

/* Items up to `close` after the first (already in a); *hashable ANDs theirs. 0: p->bad or p->oom. */
static int items(toolp_py *p, cJSON *a, int close, int *hashable) {
    for (;;) {
        if (eat(p, close)) return 1;
        if (!eat(p, ',')) return !(p->bad = 1);
        if (eat(p, close)) return 1;
        int h;
        cJSON *e = expr(p, &h);
        if (!e) return 0;
        cJSON_AddItemToArray(a, e);
        *hashable &= h;
    }
}

/* [ ... ] (list) or ( ... ) (a parenthesized value or a tuple). */
static cJSON *sequence(toolp_py *p, int close, int *hashable) {
    p->i++;
    if (!toolp_py_open_level(p)) return NULL;
    cJSON *a = cJSON_CreateArray();
    if (!a) {
        p->oom = 1;
        return NULL;
    }
    int h = 1;
    if (!eat(p, close)) {
        cJSON *e = expr(p, &h);
        if (!e) return fail(p, a);
        if (close == ')' && eat(p, ')')) { /* (x): x itself */
            cJSON_Delete(a);
            p->level--;
            *hashable = h;
            return e;
        }
        cJSON_AddItemToArray(a, e);
        if (!items(p, a, close, &h)) return fail(p, a);
    }
    p->level--;
    *hashable = close == ')' && h; /* a tuple of hashable items is hashable, a list never */
    return a;
}

/* A dict key as json.dumps writes it; NULL when json.dumps refuses the key (*unprintable). */
static char *key_text(toolp_py *p, const cJSON *k, int *unprintable) {
    sbuf b = {0};
    if (cJSON_IsString(k)) sb_str(&b, k->valuestring);
    else if (cJSON_IsTrue(k)) sb_str(&b, "true");
    else if (cJSON_IsFalse(k)) sb_str(&b, "false");
    else if (cJSON_IsNull(k)) sb_str(&b, "null");
    else if (!cJSON_IsNumber(k) || toolp_pydumps(&b, k)) *unprintable = 1; /* a tuple, bytes, complex */
    if (b.oom) p->oom = 1;
    char *s = *unprintable || p->oom ? NULL : b.b ? b.b : toolp_dup("", 0);
    if (!s) sb_free(&b);
    if (!s && !*unprintable) p->oom = 1;
    return s;
}

/* int(x) of an integral double, exactly ("1e+22" is 10000000000000000000000). */
void toolp_int_digits(sbuf *s, double x) {
    if (fabs(x) < 9.0e18) {
        sb_printf(s, "%lld", (long long)x);
        return;
    }
    int e;
    uint64_t mant = (uint64_t)ldexp(frexp(fabs(x), &e), 53);
    e -= 53; /* |x| = mant * 2^e, e > 0 here */
    uint32_t limb[40] = {0}; /* base 10^9, little-endian: 2^1024 has 309 digits */
    size_t len = 0;
    for (; mant; mant /= 1000000000u) limb[len++] = (uint32_t)(mant % 1000000000u);
    for (int k = 0; k < e; k++) {
        uint32_t carry = 0;
        for (size_t j = 0; j < len; j++) {
            uint64_t y = (uint64_t)limb[j] * 2 + carry;
            limb[j] = (uint32_t)(y % 1000000000u);
            carry = (uint32_t)(y / 1000000000u);
        }
        if (carry) limb[len++] = carry;
    }
    if (x < 0) sb_raw(s, "-", 1);
    sb_printf(s, "%u", limb[len - 1]);
    for (size_t j = len - 1; j-- > 0;) sb_printf(s, "%09u", limb[j]);
}

/* What makes keys one key of a Python dict, as text: 1, 1.0 and True are equal, "1" is not. */
static void key_id(const cJSON *k, sbuf *b) {
    if (cJSON_IsString(k)) {
        sb_raw(b, "s", 1);
        sb_str(b, k->valuestring);
    } else if (cJSON_IsTrue(k) || cJSON_IsFalse(k)) {
        sb_str(b, cJSON_IsTrue(k) ? "n1" : "n0");
    } else if (cJSON_IsNull(k)) {
        sb_str(b, "z");
    } else if (k->valuestring && !strpbrk(k->valuestring, ".eE")) { /* an int: digits without leading zeros */
        sb_raw(b, "n", 1);
        sb_str(b, strcmp(k->valuestring, "-0") ? k->valuestring : "0");
    } else {
        double x = k->valuestring ? strtod(k->valuestring, NULL) : k->valuedouble;
        if (isfinite(x) && x == trunc(x)) {
            sb_raw(b, "n", 1);
            toolp_int_digits(b, x == 0 ? 0.0 : x);
        } else {
            sb_raw(b, "f", 1);
            toolp_pyrepr(b, x);
        }
    }
}

/* Put v under key k (its text kt) into d, whose keys so far are ids[*n]: an equal key keeps its place
 * and its text and takes v (a Python dict); keys that differ but print alike are both written, as
 * json.dumps writes them. 0, or -1 out of memory (v freed). */
static int dict_put(cJSON *d, char ***ids, size_t *n, size_t *cap, const cJSON *k, const char *kt, cJSON *v) {
    sbuf id = {0};
    key_id(k, &id);
    if (id.oom) goto oom;
    for (size_t j = 0; j < *n; j++) {
        if (strcmp((*ids)[j], id.b)) continue;
        cJSON *old = cJSON_GetArrayItem(d, (int)j);
        sb_free(&id);
        if (!(v->string = toolp_dup(old->string, strlen(old->string)))) goto oom;
        cJSON_ReplaceItemViaPointer(d, old, v);
        return 0;
    }
    if (vc_grow((void **)ids, cap, *n + 1, sizeof **ids) || !cJSON_AddItemToObject(d, kt, v)) goto oom;
    (*ids)[(*n)++] = id.b;
    return 0;
oom:
    sb_free(&id);
    cJSON_Delete(v);
    return -1;
}

/* {k: v, ...} after its first key k. */
static cJSON *dict_rest(toolp_py *p, cJSON *k, int kh) {
    cJSON *d = cJSON_CreateObject();
    char **ids = NULL;
    size_t n_ids = 0, cap_ids = 0;
    int unprintable = 0;
    if (!d) p->oom = 1;
    while (d && !p->oom && !p->bad) {
        int vh;
        cJSON *v = expr(p, &vh);
        if (!v || !kh) { /* an unhashable key: literal_eval raises TypeError */
            cJSON_Delete(v);
            break;
        }
        char *kt = key_text(p, k, &unprintable);
        if (kt && dict_put(d, &ids, &n_ids, &cap_ids, k, kt, v)) p->oom = 1;
        else if (!kt) cJSON_Delete(v); /* the dict cannot be printed: its values do not matter */
        free(kt);
        cJSON_Delete(k);
        k = NULL;
        if (p->oom) break;
        int end = eat(p, '}');
        if (!end && !eat(p, ',')) break;
        if (end || eat(p, '}')) {
            p->level--;
            for (size_t j = 0; j < n_ids; j++) free(ids[j]);
            free(ids);
            return unprintable ? poison(p, d) : d;
        }
        if (!(k = expr(p, &kh))) break;
        if (!eat(p, ':')) break;
    }
    cJSON_Delete(k);
    for (size_t j = 0; j < n_ids; j++) free(ids[j]);
    free(ids);
    return fail(p, d);
}

/* { ... }: a dict, or a set (poison: json.dumps refuses sets). */
static cJSON *brace(toolp_py *p, int *hashable) {
    p->i++;
    *hashable = 0;
    if (!toolp_py_open_level(p)) return NULL;
    if (eat(p, '}')) {
        p->level--;
        cJSON *d = cJSON_CreateObject();
        if (!d) p->oom = 1;
        return d;
    }
    int h;
    cJSON *k = expr(p, &h);
    if (!k) return NULL;
    if (eat(p, ':')) return dict_rest(p, k, h);
    cJSON *a = cJSON_CreateArray();
    if (!a) {
        cJSON_Delete(k);
        p->oom = 1;
        return NULL;
    }
    cJSON_AddItemToArray(a, k);
    if (!items(p, a, '}', &h) || !h) return fail(p, a); /* a set of lists: TypeError */
    p->level--;
    return poison(p, a);
}

static cJSON *expr(toolp_py *p, int *hashable) {
    ws(p);
    int c = py_at(p, 0), raw, kind;
    *hashable = 1;
    if (c == '[' || c == '(') return sequence(p, c == '[' ? ']' : ')', hashable);
    if (c == '{') return brace(p, hashable);
    if (c == '-' || c == '+') {
        p->i++;
        ws(p);
        return signed_number(p, c);
    }
    if (number_starts(p)) return signed_number(p, 0);
    if (toolp_py_str_prefix(p, &raw, &kind) >= 0) return toolp_py_strings(p);
    if (c == '.' && py_at(p, 1) == '.' && py_at(p, 2) == '.') {
        p->i += 3;
        return toolp_py_poison(p);
    }
    size_t k = 0;
    if (py_alpha(c) || c == '_')
        while (py_word(py_at(p, k))) k++;
    if (!k || py_at(p, k) >= 0x80) return fail(p, NULL); /* not a literal (a non-ASCII name included) */
    const char *w = p->t + p->i;
    cJSON *v = NULL;
    if (k == 4 && !memcmp(w, "True", 4)) v = cJSON_CreateTrue();
    else if (k == 5 && !memcmp(w, "False", 5)) v = cJSON_CreateFalse();
    else if (k == 4 && !memcmp(w, "None", 4)) v = cJSON_CreateNull();
    else if (k == 3 && !memcmp(w, "set", 3)) { /* set(): an empty set */
        p->i += 3;
        if (!eat(p, '(') || !eat(p, ')')) return fail(p, NULL);
        *hashable = 0;
        return toolp_py_poison(p);
    } else {
        return fail(p, NULL);
    }
    if (!v) p->oom = 1;
    p->i += k;
    return v;
}

/* The end of a line: the end of the text, a comment or a newline. */
static int line_ends(const toolp_py *p) {
    int c = py_at(p, 0);
    return c < 0 || c == '#' || c == '\n' || c == '\r';
}

/* Blank lines and comments up to the next line with something on it: 1 at the end of the text, 0 at
 * that line's first token, -1 when it is indented and not the first line (IndentationError). */
static int blank_lines(toolp_py *p, int later) {
    for (;;) {
        size_t ind = 0;
        for (int c; (c = py_at(p, 0)) == ' ' || c == '\t' || c == '\f'; p->i++) ind = c == '\f' ? 0 : ind + 1;
        if (py_at(p, 0) == '#')
            while (p->i < p->n && p->t[p->i] != '\n' && p->t[p->i] != '\r') p->i++;
        int c = py_at(p, 0);
        if (c < 0) return 1;
        if (c != '\n' && c != '\r') return later && ind ? -1 : 0;
        p->i += c == '\r' && py_at(p, 1) == '\n' ? 2 : 1;
        later = 1;
    }
}

cJSON *toolp_py_literal_eval(const char *t, size_t n, int *oom) {
    *oom = 0;
    if (memchr(t, 0, n)) return NULL; /* "source code string cannot contain null bytes" */
    toolp_py p = {t, n, 0, 0, 0, 0};
    while (p.i < n && (t[p.i] == ' ' || t[p.i] == '\t')) p.i++;
    int lead = blank_lines(&p, 0);
    if (lead) return NULL; /* nothing, or indented */
    int h;
    cJSON *v = expr(&p, &h);
    ws(&p);
    if (v && py_at(&p, 0) == ',') { /* a bare tuple */
        cJSON *a = cJSON_CreateArray();
        if (!a) p.oom = 1;
        else cJSON_AddItemToArray(a, v);
        v = a;
        while (v && eat(&p, ',')) {
            ws(&p);
            if (line_ends(&p)) break;
            cJSON *e = expr(&p, &h);
            if (!e) v = fail(&p, v);
            else cJSON_AddItemToArray(v, e);
            ws(&p);
        }
    }
    if (v && (!line_ends(&p) || blank_lines(&p, 1) != 1)) v = fail(&p, v);
    *oom = p.oom;
    if (p.oom || p.bad) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}
