/* toolp_pylex: the Python tokens the pythonic parser reads (toolp_pythonic.c): whitespace and comments
 * inside brackets, string literals (prefixes, quotes, escapes, implicit concatenation) and number
 * literals (bases, underscores, floats, imaginary), as Python's tokenizer reads them. Values become
 * cJSON items as js_parse makes them (U+0000 as C0 80, numbers with their literal); a constant
 * that is not JSON becomes a "poison" item (see toolp_py_poison). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/stack.h"
#include "toolparse/internal.h"

#define PY_INT_MAX_DIGITS 4300 /* sys.get_int_max_str_digits() */

/* Whitespace inside brackets: blanks, newlines, comments, backslash continuations. */
void toolp_py_ws(toolp_py *p) {
    for (;;) {
        int c = py_at(p, 0);
        if (c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r') p->i++;
        else if (c == '#') while (p->i < p->n && p->t[p->i] != '\n' && p->t[p->i] != '\r') p->i++;
        else if (c == '\\' && (py_at(p, 1) == '\n' || py_at(p, 1) == '\r')) p->i += 2;
        else return;
    }
}

/* Code point cp as UTF-8 (U+0000 as C0 80, as js_parse keeps it in cJSON strings). */
#define PY_MAX_LEVEL 200 /* brackets open at once: Python's tokenizer refuses the 201st */

int toolp_py_open_level(toolp_py *p) {
    if (++p->level > PY_MAX_LEVEL || vc_stack_low()) p->bad = 1;
    return !p->bad;
}

static void put_cp(sbuf *b, uint32_t cp) {
    char u[4];
    size_t k;
    if (cp == 0) u[0] = (char)0xC0, u[1] = (char)0x80, k = 2;
    else if (cp < 0x80) u[0] = (char)cp, k = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), k = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)), u[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[3] = (char)(0x80 | (cp & 0x3F)), k = 4;
    sb_raw(b, u, k);
}

static int hexval(int c) {
    return py_digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string literal's prefix length at p->i (letters then a quote), or -1. *kind: LIT_STR ('', r,
 * u), LIT_BYTES (b, with or without r), LIT_FORMAT (f- and t-strings, with or without r). */
enum { LIT_STR, LIT_BYTES, LIT_FORMAT };

int toolp_py_str_prefix(const toolp_py *p, int *raw, int *kind) {
    int k = 0, l[3];
    *raw = *kind = 0;
    while (k < 3 && py_alpha(py_at(p, (size_t)k))) l[k] = py_at(p, (size_t)k) | 0x20, k++;
    if (py_at(p, (size_t)k) != '\'' && py_at(p, (size_t)k) != '"') return -1;
    if (k == 1) {
        if (l[0] == 'r') *raw = 1;
        else if (l[0] == 'b') *kind = LIT_BYTES;
        else if (l[0] == 'f' || l[0] == 't') *kind = LIT_FORMAT;
        else if (l[0] != 'u') return -1;
    } else if (k == 2) {
        int r0 = l[0] == 'r', r1 = l[1] == 'r', o = r0 ? l[1] : l[0];
        if (r0 == r1 || !(o == 'b' || o == 'f' || o == 't')) return -1;
        *raw = 1;
        *kind = o == 'b' ? LIT_BYTES : LIT_FORMAT;
    } else if (k) {
        return -1;
    }
    return k;
}

/* One escape after a backslash (p->i at the character after it), appended to b. In bytes, \u, \U
 * and \N are no escapes. */
static void escape(toolp_py *p, sbuf *b, int bytes) {
    int c = py_at(p, 0);
    if (bytes && (c == 'u' || c == 'U' || c == 'N')) c = '?'; /* read as no escape */
    uint32_t cp;
    p->i++;
    switch (c) {
    case '\n': return;
    case '\r': if (py_at(p, 0) == '\n') p->i++; return;
    case '\\': case '\'': case '"': sb_raw(b, (char[]){(char)c}, 1); return;
    case 'a': sb_raw(b, "\a", 1); return;
    case 'b': sb_raw(b, "\b", 1); return;
    case 'f': sb_raw(b, "\f", 1); return;
    case 'n': sb_raw(b, "\n", 1); return;
    case 'r': sb_raw(b, "\r", 1); return;
    case 't': sb_raw(b, "\t", 1); return;
    case 'v': sb_raw(b, "\v", 1); return;
    case 'x': case 'u': case 'U': {
        int k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
        cp = 0;
        for (int j = 0; j < k; j++) {
            int h = hexval(py_at(p, 0));
            if (h < 0) {
                p->bad = 1;
                return;
            }
            cp = cp * 16 + (uint32_t)h;
            p->i++;
        }
        break;
    }
    default:
        if (c >= '0' && c <= '7') {
            cp = (uint32_t)(c - '0');
            for (int j = 0; j < 2 && py_at(p, 0) >= '0' && py_at(p, 0) <= '7'; j++) cp = cp * 8 + (uint32_t)(py_at(p, 0) - '0'), p->i++;
            break;
        }
        if (c == 'N' || c < 0) { /* \N{name}: no Unicode name table here */
            p->bad = 1;
            return;
        }
        p->i--; /* not an escape: the backslash stays, the character is read as usual */
        sb_raw(b, "\\", 1);
        return;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) p->bad = 1; /* no surrogates in JSON text */
    else put_cp(b, cp);
}

/* One string literal (its prefix known to be k letters) appended to b; bytes must be ASCII. */
static void string_lit(toolp_py *p, sbuf *b, int k, int raw, int bytes) {
    p->i += (size_t)k;
    int q = py_at(p, 0);
    int triple = py_at(p, 1) == q && py_at(p, 2) == q;
    p->i += triple ? 3 : 1;
    for (;;) {
        int c = py_at(p, 0);
        if (c < 0 || c == 0 || (bytes && c >= 0x80)) {
            p->bad = 1; /* unterminated, a NUL byte in the source, a non-ASCII byte in bytes */
            return;
        }
        if (c == q && (!triple || (py_at(p, 1) == q && py_at(p, 2) == q))) {
            p->i += triple ? 3 : 1;
            return;
        }
        if (!triple && (c == '\n' || c == '\r')) {
            p->bad = 1;
            return;
        }
        if (c == '\r') { /* source newlines read as \n */
            sb_raw(b, "\n", 1);
            p->i += py_at(p, 1) == '\n' ? 2 : 1;
        } else if (c == '\\' && raw) {
            int d = py_at(p, 1);
            sb_raw(b, "\\", 1);
            p->i++;
            if (d == '\r') {
                sb_raw(b, "\n", 1);
                p->i += py_at(p, 1) == '\n' ? 2 : 1;
            } else if (d > 0) {
                sb_raw(b, p->t + p->i, 1);
                p->i++;
            }
        } else if (c == '\\') {
            p->i++;
            escape(p, b, bytes);
            if (p->bad) return;
        } else {
            sb_raw(b, p->t + p->i, 1);
            p->i++;
        }
    }
}

/* A constant that is not JSON (bytes, a complex number, ..., an int Python will not print): vLLM
 * reads it, and json.dumps raises only if it is still in the arguments (a repeated keyword or dict
 * key can replace it). toolp_pydumps refuses a raw item. */
cJSON *toolp_py_poison(toolp_py *p) {
    cJSON *v = cJSON_CreateRaw("");
    if (!v) p->oom = 1;
    return v;
}

/* Adjacent string literals, concatenated as Python does (str and bytes do not mix; an f-string
 * is not a constant). */
cJSON *toolp_py_strings(toolp_py *p) {
    sbuf b = {0};
    int raw, kind, k, first = -1;
    sb_raw(&b, "", 0);
    while (!p->bad && (k = toolp_py_str_prefix(p, &raw, &kind)) >= 0) {
        if (kind == LIT_FORMAT || (first >= 0 && kind != first)) p->bad = 1;
        else string_lit(p, &b, k, raw, kind == LIT_BYTES);
        first = kind;
        toolp_py_ws(p);
    }
    if (!p->bad && !b.oom && first == LIT_BYTES) {
        sb_free(&b);
        return toolp_py_poison(p);
    }
    cJSON *s = p->bad || b.oom ? NULL : cJSON_CreateString(b.b ? b.b : "");
    if (b.oom || (!p->bad && !s)) p->oom = 1;
    sb_free(&b);
    return s;
}

/* ---- numbers ---- */

/* digit (_? digit)* of the given base into b (without underscores); the count of digits. */
static size_t digits(toolp_py *p, sbuf *b, int base) {
    size_t k = 0;
    for (;;) {
        int c = py_at(p, 0), v = hexval(c);
        if (c == '_' && k && hexval(py_at(p, 1)) >= 0 && hexval(py_at(p, 1)) < base) {
            p->i++;
            continue;
        }
        if (v < 0 || v >= base) return k;
        sb_raw(b, p->t + p->i, 1);
        p->i++;
        k++;
    }
}

/* The decimal text of the number whose base-`base` digits are d[0, n). NULL: too many digits (or oom). */
static char *to_decimal(const char *d, size_t n, int base, int *too_big) {
    int bits = base == 16 ? 4 : base == 8 ? 3 : 1;
    while (n > 1 && *d == '0') d++, n--;
    if (n * (size_t)bits > 15000) { /* > 4500 decimal digits */
        *too_big = 1;
        return NULL;
    }
    size_t cap = n + 2, len = 1; /* little-endian base 10^9 limbs */
    uint32_t *limb = calloc(cap, sizeof *limb);
    if (!limb) return NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t carry = (uint64_t)hexval((unsigned char)d[i]);
        for (size_t j = 0; j < len; j++) {
            uint64_t x = (uint64_t)limb[j] * (uint64_t)base + carry;
            limb[j] = (uint32_t)(x % 1000000000u);
            carry = x / 1000000000u;
        }
        if (carry) limb[len++] = (uint32_t)carry;
    }
    sbuf s = {0};
    sb_printf(&s, "%u", limb[len - 1]);
    for (size_t j = len - 1; j-- > 0;) sb_printf(&s, "%09u", limb[j]);
    free(limb);
    if (s.n > PY_INT_MAX_DIGITS) *too_big = 1;
    char *r = s.oom || *too_big ? NULL : s.b;
    if (!r) sb_free(&s);
    return r;
}

cJSON *toolp_py_number(toolp_py *p) {
    sbuf b = {0};
    char *lit = NULL;
    int too_big = 0, c1 = py_at(p, 1) | 0x20, not_json = 0;
    if (py_at(p, 0) == '0' && (c1 == 'x' || c1 == 'o' || c1 == 'b')) {
        p->i += 2;
        if (py_at(p, 0) == '_') p->i++; /* 0x_1f */
        size_t k = digits(p, &b, c1 == 'x' ? 16 : c1 == 'o' ? 8 : 2);
        if (!k) p->bad = 1;
        else if (!b.oom) lit = to_decimal(b.b, b.n, c1 == 'x' ? 16 : c1 == 'o' ? 8 : 2, &too_big);
        if (!lit && !p->bad && !too_big) p->oom = 1;
        not_json = too_big; /* a valid int that json.dumps cannot print */
        too_big = 0;
    } else {
        size_t ki = digits(p, &b, 10), kf = 0;
        int is_float = 0;
        if (py_at(p, 0) == '.') {
            is_float = 1;
            sb_raw(&b, ".", 1);
            p->i++;
            kf = digits(p, &b, 10);
            if (!ki && !kf) p->bad = 1;
        }
        if ((py_at(p, 0) | 0x20) == 'e' && (ki || kf)) {
            size_t save = p->i;
            is_float = 1;
            sb_raw(&b, "e", 1);
            p->i++;
            if (py_at(p, 0) == '+' || py_at(p, 0) == '-') sb_raw(&b, p->t + p->i++, 1);
            if (!digits(p, &b, 10)) p->i = save, p->bad = 1;
        }
        if (!is_float && ki > 1 && b.b && b.b[0] == '0' && strspn(b.b, "0") != b.n) p->bad = 1; /* 01 */
        if (!is_float && b.b) { /* an int: its digits without leading zeros */
            size_t z = strspn(b.b, "0");
            if (z == b.n) z = b.n - 1;
            if (b.n - z > PY_INT_MAX_DIGITS) too_big = 1;
            lit = toolp_dup(b.b + z, b.n - z);
        } else if (b.b) {
            lit = toolp_dup(b.b, b.n);
        }
        if (!lit && !p->bad) p->oom = 1;
        if ((py_at(p, 0) | 0x20) == 'j' && !p->bad) { /* an imaginary number: complex, not JSON */
            p->i++;
            not_json = 1;
        }
    }
    sb_free(&b);
    int c = py_at(p, 0);
    if (too_big || py_word(c) || c == '.' || c >= 0x80) p->bad = 1; /* 1abc, 1.2.3, 0x1j, limits */
    if (not_json && !p->bad && !p->oom) {
        free(lit);
        return toolp_py_poison(p);
    }
    cJSON *v = p->bad || p->oom ? NULL : cJSON_CreateNumber(0);
    if (v) v->valuestring = lit;
    else free(lit);
    if (!v && !p->bad) p->oom = 1;
    return v;
}
