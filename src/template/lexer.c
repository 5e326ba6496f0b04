/* lexer.c: template source -> tokens, following jinja2's lexer.py with transformers' settings
 * (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
 *   - newlines are normalised to \n and one trailing newline is dropped;
 *   - {%- {{- {#- strip all whitespace before the tag, -%} -}} -#} all whitespace after it;
 *   - lstrip_blocks: spaces/tabs between a line start and {% or {# are dropped (not before {{,
 *     not with {%+); trim_blocks: the first newline after %} or #} is dropped (not after +%});
 *   - {% raw %}...{% endraw %} is data; brackets must balance, and %} / }} inside brackets are
 *     operators (so {{ {'a': {'b': 1}} }} works);
 *   - string literals are decoded like Python's unicode-escape, as jinja2 does.
 * Whitespace means Python's str.isspace() set, as jinja2's \s does. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "template/jinja.h"

#define LEX_MAX_BRACKETS 256

int jc_fail(jcomp *c, int line, const char *fmt, ...) {
    if (c->err->kind) return JE_FAIL;
    c->err->kind = TMPL_ERR_SYNTAX;
    c->err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
    va_end(ap);
    return JE_FAIL;
}

static const jstr *cstr(jcomp *c, const char *p, size_t n) {
    jstr *s = ja_alloc(c->ar, sizeof *s + n + 1);
    if (!s) return NULL;
    char *d = (char *)(s + 1);
    if (n) memcpy(d, p, n);
    s->p = d;
    s->len = n;
    s->ncp = js_count_cp(d, n); /* set now: compiled templates are shared between threads */
    return s;
}

const jstr *jc_intern(jcomp *c, const char *p, size_t n) {
    for (size_t i = 0; i < c->nnames; i++)
        if (c->names[i]->len == n && memcmp(c->names[i]->p, p, n) == 0) return c->names[i];
    if (c->nnames == c->capnames) {
        size_t cap = c->capnames ? c->capnames * 2 : 64;
        const jstr **nn = ja_alloc(c->ar, cap * sizeof *nn);
        if (!nn) return NULL;
        if (c->nnames) memcpy(nn, c->names, c->nnames * sizeof *nn);
        c->names = nn;
        c->capnames = cap;
    }
    const jstr *s = cstr(c, p, n);
    if (s) c->names[c->nnames++] = s;
    return s;
}

static jtok *push(jcomp *c, int type, int line) {
    if (c->ntok == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 256;
        jtok *nt = ja_alloc(c->ar, cap * sizeof *nt);
        if (!nt) return NULL;
        if (c->ntok) memcpy(nt, c->tok, c->ntok * sizeof *nt);
        c->tok = nt;
        c->cap = cap;
    }
    jtok *t = &c->tok[c->ntok++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->line = line;
    return t;
}

static int nomem(jcomp *c, int line) {
    if (c->err->kind) return JE_FAIL;
    jc_fail(c, line, "out of memory");
    c->err->kind = TMPL_ERR_NOMEM;
    return JE_FAIL;
}

static int count_nl(const char *p, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += p[i] == '\n';
    return k;
}

/* Length of the Unicode whitespace run at s[pos..n). */
static size_t ws_run(const char *s, size_t pos, size_t n) {
    size_t i = pos;
    while (i < n) {
        size_t adv;
        uint32_t cp = ju_decode(s + i, n - i, &adv);
        if (!ju_isspace(cp)) break;
        i += adv;
    }
    return i - pos;
}

/* Length of text once trailing Unicode whitespace is removed (Python's str.rstrip()). */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        size_t adv;
        if (!ju_isspace(ju_decode(s + st, end - st, &adv))) break;
        end = st;
    }
    return end;
}

/* jinja2's OptionalLStrip: the data before a tag, after the tag's whitespace control. */
static size_t data_keep(const char *text, size_t n, char sign, int is_var, int line_starting) {
    if (sign == '-') return rstrip_len(text, n);
    if (sign == '+' || is_var) return n;
    size_t l_pos = 0;
    for (size_t i = n; i > 0; i--)
        if (text[i - 1] == '\n') {
            l_pos = i;
            break;
        }
    if (l_pos == 0 && !line_starting) return n;
    if (l_pos < n && ws_run(text, l_pos, n) == n - l_pos) return l_pos;
    return n;
}

static int emit_data(jcomp *c, const char *p, size_t n, int line) {
    if (n == 0) return 0;
    jtok *t = push(c, TK_DATA, line);
    if (!t || !(t->s = cstr(c, p, n))) return nomem(c, line);
    return 0;
}

static int starts(const char *s, size_t pos, size_t n, const char *lit) {
    size_t k = strlen(lit);
    return n - pos >= k && memcmp(s + pos, lit, k) == 0;
}

/* {% raw %} at pos (pointing at "{%"): returns the length of the opening tag or 0. */
static size_t raw_open(const char *s, size_t pos, size_t n) {
    size_t i = pos + 2;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    i += ws_run(s, i, n);
    if (!starts(s, i, n, "raw")) return 0;
    i += 3;
    i += ws_run(s, i, n);
    if (starts(s, i, n, "-%}")) return i + 3 + ws_run(s, i + 3, n) - pos;
    if (starts(s, i, n, "%}")) return i + 2 - pos;
    return 0;
}

/* Finds {% endraw %} from pos: sets *tag (start of "{%"), *sign and returns the end of the tag. */
static size_t raw_close(const char *s, size_t pos, size_t n, size_t *tag, char *sign) {
    for (size_t t = pos; t + 1 < n; t++) {
        if (s[t] != '{' || s[t + 1] != '%') continue;
        size_t i = t + 2;
        char sg = 0;
        if (i < n && (s[i] == '-' || s[i] == '+')) sg = s[i++];
        i += ws_run(s, i, n);
        if (!starts(s, i, n, "endraw")) continue;
        i += 6;
        i += ws_run(s, i, n);
        size_t end = 0;
        if (starts(s, i, n, "+%}")) end = i + 3;
        else if (starts(s, i, n, "-%}")) end = i + 3 + ws_run(s, i + 3, n);
        else if (starts(s, i, n, "%}")) end = i + 2 + (i + 2 < n && s[i + 2] == '\n');
        if (!end) continue;
        *tag = t;
        *sign = sg;
        return end;
    }
    return 0;
}

static int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* (\d+_)*\d+ at pos; returns its end or 0 when absent. */
static size_t match_digits(const char *s, size_t pos, size_t n) {
    size_t i = pos;
    if (i >= n || !is_digit(s[i])) return 0;
    for (;;) {
        while (i < n && is_digit(s[i])) i++;
        if (i + 1 < n && s[i] == '_' && is_digit(s[i + 1])) {
            i++;
            continue;
        }
        return i;
    }
}

static size_t match_float(const char *s, size_t pos, size_t n) {
    if (pos > 0 && s[pos - 1] == '.') return 0;
    size_t p1 = match_digits(s, pos, n);
    if (!p1) return 0;
    size_t q = p1, frac = 0;
    if (q < n && s[q] == '.') {
        frac = match_digits(s, q + 1, n);
        if (frac) q = frac;
    }
    if (q < n && (s[q] == 'e' || s[q] == 'E')) {
        size_t e = q + 1;
        if (e < n && (s[e] == '+' || s[e] == '-')) e++;
        size_t ee = match_digits(s, e, n);
        if (ee) return ee;
    }
    return frac ? frac : 0;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Integer literal (jinja2's integer_re) at pos; returns its end (0: none) and the value. */
static size_t match_int(jcomp *c, const char *s, size_t pos, size_t n, int line, int64_t *val, int *err) {
    int base = 10;
    size_t i = pos;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
        char b = (char)(s[i + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        size_t j = i + 2, end = 0;
        for (;;) {
            size_t k = j;
            if (k < n && s[k] == '_') k++;
            int h = k < n ? hexval(s[k]) : -1;
            if (h < 0 || h >= base) break;
            j = end = k + 1;
        }
        if (!end) {
            base = 10; /* "0" then a name, as the regex would do */
        } else {
            uint64_t v = 0;
            for (size_t k = i + 2; k < end; k++) {
                if (s[k] == '_') continue;
                if (v > (UINT64_MAX >> 4)) goto big;
                v = v * (uint64_t)base + (uint64_t)hexval(s[k]);
            }
            if (v > INT64_MAX) goto big;
            *val = (int64_t)v;
            return end;
        }
    }
    size_t end;
    if (s[i] == '0') {
        end = i + 1;
        while (end + 1 < n && s[end] == '_' && s[end + 1] == '0') end += 2;
        while (end < n && s[end] == '0') end++;
        *val = 0;
        return end;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    end = i + 1;
    uint64_t v = (uint64_t)(s[i] - '0');
    for (;;) {
        size_t k = end;
        if (k < n && s[k] == '_') k++;
        if (k >= n || !is_digit(s[k])) break;
        if (v > (UINT64_MAX - 9) / 10) goto big;
        v = v * 10 + (uint64_t)(s[k] - '0');
        end = k + 1;
    }
    if (v > INT64_MAX) goto big;
    *val = (int64_t)v;
    return end;
big:
    *err = jc_fail(c, line, "integer literal out of the 64-bit range");
    c->err->kind = TMPL_ERR_UNSUPPORTED;
    return 0;
}

static int is_name_start(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || k == UTF8PROC_CATEGORY_NL;
}

static int is_name_cont(uint32_t cp) {
    if (cp < 0x80) return is_name_start(cp) || (cp >= '0' && cp <= '9');
    if (is_name_start(cp)) return 1;
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ND ||
           k == UTF8PROC_CATEGORY_PC;
}

/* Decode a string literal body like Python's "unicode-escape" after backslashreplace. */
static int decode_string(jcomp *c, const char *p, size_t n, int line, const jstr **out) {
    char *d = ja_alloc(c->ar, n * 4 + 1);
    if (!d) return nomem(c, line);
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] != '\\') {
            d[o++] = p[i++];
            continue;
        }
        i++;
        unsigned char e = (unsigned char)p[i++];
        uint32_t cp = 0;
        int ndig = 0;
        switch (e) {
        case '\n': continue;
        case '\\': d[o++] = '\\'; continue;
        case '\'': d[o++] = '\''; continue;
        case '"': d[o++] = '"'; continue;
        case 'a': d[o++] = '\a'; continue;
        case 'b': d[o++] = '\b'; continue;
        case 'f': d[o++] = '\f'; continue;
        case 'n': d[o++] = '\n'; continue;
        case 'r': d[o++] = '\r'; continue;
        case 't': d[o++] = '\t'; continue;
        case 'v': d[o++] = '\v'; continue;
        case 'x': ndig = 2; break;
        case 'u': ndig = 4; break;
        case 'U': ndig = 8; break;
        case 'N': return jc_fail(c, line, "\\N{...} escapes are not supported");
        default:
            if (e >= '0' && e <= '7') {
                cp = e - '0';
                for (int k = 0; k < 2 && i < n && p[i] >= '0' && p[i] <= '7'; k++) cp = cp * 8 + (uint32_t)(p[i++] - '0');
                o += ju_encode(cp, d + o);
                continue;
            }
            d[o++] = '\\';
            if (e >= 0x80) { /* backslashreplace turned the character into an escape of itself */
                size_t adv;
                uint32_t u = ju_decode(p + i - 1, n - i + 1, &adv);
                o += (size_t)sprintf(d + o, u < 0x100 ? "x%02x" : u < 0x10000 ? "u%04x" : "U%08x", u);
                i += adv - 1;
            } else {
                d[o++] = (char)e;
            }
            continue;
        }
        for (int k = 0; k < ndig; k++) {
            int h = i < n ? hexval(p[i]) : -1;
            if (h < 0) return jc_fail(c, line, "truncated \\%c escape in string literal", e);
            cp = cp * 16 + (uint32_t)h;
            i++;
        }
        if (cp > 0x10FFFF) return jc_fail(c, line, "illegal Unicode character in string literal");
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        o += ju_encode(cp, d + o);
    }
    jstr *s = ja_alloc(c->ar, sizeof *s);
    if (!s) return nomem(c, line);
    s->p = d;
    s->len = o;
    s->ncp = js_count_cp(d, o);
    *out = s;
    return 0;
}

static const struct {
    const char *s;
    int op;
} ops2[] = {{"**", OP_POW}, {"//", OP_FLOORDIV}, {"==", OP_EQ}, {"!=", OP_NE}, {">=", OP_GE}, {"<=", OP_LE}},
  ops1[] = {{"+", OP_ADD},      {"-", OP_SUB},      {"/", OP_DIV},      {"*", OP_MUL},    {"%", OP_MOD},
            {"~", OP_TILDE},    {"[", OP_LBRACKET}, {"]", OP_RBRACKET}, {"(", OP_LPAREN}, {")", OP_RPAREN},
            {"{", OP_LBRACE},   {"}", OP_RBRACE},   {"<", OP_LT},       {">", OP_GT},     {"=", OP_ASSIGN},
            {".", OP_DOT},      {":", OP_COLON},    {"|", OP_PIPE},     {",", OP_COMMA},  {";", OP_SEMICOLON}};

/* Tokens inside {{ }} or {% %} from *pos (just after the opening tag); consumes the closing tag. */
static int lex_tag(jcomp *c, const char *s, size_t n, size_t *pos, int *line, int is_block, int *line_starting) {
    char stack[LEX_MAX_BRACKETS];
    int depth = 0;
    size_t i = *pos;
    for (;;) {
        if (i >= n)
            return jc_fail(c, *line, "unexpected end of template, expected '%s'", is_block ? "%}" : "}}");
        if (depth == 0) {
            size_t end = 0;
            if (is_block) {
                if (starts(s, i, n, "+%}")) end = i + 3;
                else if (starts(s, i, n, "-%}")) end = i + 3 + ws_run(s, i + 3, n);
                else if (starts(s, i, n, "%}")) end = i + 2 + (i + 2 < n && s[i + 2] == '\n');
            } else {
                if (starts(s, i, n, "-}}")) end = i + 3 + ws_run(s, i + 3, n);
                else if (starts(s, i, n, "}}")) end = i + 2;
            }
            if (end) {
                if (!push(c, is_block ? TK_BLOCK_END : TK_VAR_END, *line)) return nomem(c, *line);
                *line += count_nl(s + i, end - i);
                *line_starting = s[end - 1] == '\n';
                *pos = end;
                return 0;
            }
        }
        size_t w = ws_run(s, i, n);
        if (w) {
            *line += count_nl(s + i, w);
            i += w;
            continue;
        }
        size_t e;
        if ((e = match_float(s, i, n))) {
            char tmp[128];
            size_t k = 0;
            for (size_t j = i; j < e && k + 1 < sizeof tmp; j++)
                if (s[j] != '_') tmp[k++] = s[j];
            tmp[k] = 0;
            jtok *t = push(c, TK_FLOAT, *line);
            if (!t) return nomem(c, *line);
            t->f = strtod(tmp, NULL);
            i = e;
            continue;
        }
        if (is_digit(s[i])) {
            int err = 0;
            int64_t v = 0;
            e = match_int(c, s, i, n, *line, &v, &err);
            if (err) return JE_FAIL;
            jtok *t = push(c, TK_INT, *line);
            if (!t) return nomem(c, *line);
            t->i = v;
            i = e;
            continue;
        }
        size_t adv;
        uint32_t cp = ju_decode(s + i, n - i, &adv);
        if (is_name_start(cp)) {
            e = i + adv;
            while (e < n) {
                uint32_t c2 = ju_decode(s + e, n - e, &adv);
                if (!is_name_cont(c2)) break;
                e += adv;
            }
            jtok *t = push(c, TK_NAME, *line);
            if (!t || !(t->s = jc_intern(c, s + i, e - i))) return nomem(c, *line);
            i = e;
            continue;
        }
        if (s[i] == '\'' || s[i] == '"') {
            char q = s[i];
            size_t j = i + 1;
            while (j < n && s[j] != q) j += s[j] == '\\' && j + 1 < n ? 2 : 1;
            if (j < n) {
                jtok *t = push(c, TK_STRING, *line);
                if (!t) return nomem(c, *line);
                if (decode_string(c, s + i + 1, j - i - 1, *line, &t->s)) return JE_FAIL;
                *line += count_nl(s + i, j - i);
                i = j + 1;
                continue;
            }
        }
        int op = -1;
        size_t olen = 0;
        for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0] && op < 0; k++)
            if (starts(s, i, n, ops2[k].s)) op = ops2[k].op, olen = 2;
        for (size_t k = 0; k < sizeof ops1 / sizeof ops1[0] && op < 0; k++)
            if (s[i] == ops1[k].s[0]) op = ops1[k].op, olen = 1;
        if (op < 0) {
            if (s[i] == '\'' || s[i] == '"') return jc_fail(c, *line, "unterminated string literal");
            if ((unsigned char)s[i] < 0x80 && (unsigned char)s[i] >= 0x20)
                return jc_fail(c, *line, "unexpected char '%c'", s[i]);
            return jc_fail(c, *line, "unexpected char U+%04X", cp);
        }
        if (op == OP_LPAREN || op == OP_LBRACKET || op == OP_LBRACE) {
            if (depth == LEX_MAX_BRACKETS) return jc_fail(c, *line, "brackets nested too deeply");
            stack[depth++] = op == OP_LPAREN ? ')' : op == OP_LBRACKET ? ']' : '}';
        } else if (op == OP_RPAREN || op == OP_RBRACKET || op == OP_RBRACE) {
            if (depth == 0) return jc_fail(c, *line, "unexpected '%c'", s[i]);
            char want = stack[--depth];
            if (want != s[i]) return jc_fail(c, *line, "unexpected '%c', expected '%c'", s[i], want);
        }
        jtok *t = push(c, TK_OP, *line);
        if (!t) return nomem(c, *line);
        t->op = (uint8_t)op;
        i += olen;
    }
}

int jl_lex(jcomp *c, const char *src, size_t len) {
    /* newlines to \n, then drop one trailing newline */
    char *s = ja_alloc(c->ar, len + 1);
    if (!s) return nomem(c, 0);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    if (!ju_valid(s, n)) return jc_fail(c, 0, "template is not valid UTF-8");

    size_t pos = 0;
    int line = 1, line_starting = 1;
    while (pos < n) {
        size_t t = pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) {
            if (emit_data(c, s + pos, n - pos, line)) return JE_FAIL;
            break;
        }
        char kind = s[t + 1];
        char sign = t + 2 < n && (s[t + 2] == '-' || s[t + 2] == '+') ? s[t + 2] : 0;
        size_t keep = data_keep(s + pos, t - pos, sign, kind == '{', line_starting);
        if (emit_data(c, s + pos, keep, line)) return JE_FAIL;
        line += count_nl(s + pos, t - pos);
        size_t rlen = kind == '%' ? raw_open(s, t, n) : 0;
        if (rlen) {
            size_t body = t + rlen, tag = 0;
            char rsign = 0;
            line_starting = s[body - 1] == '\n';
            line += count_nl(s + t, rlen);
            size_t end = raw_close(s, body, n, &tag, &rsign);
            if (!end) return jc_fail(c, line, "missing end of raw directive");
            keep = data_keep(s + body, tag - body, rsign, 0, line_starting);
            if (emit_data(c, s + body, keep, line)) return JE_FAIL;
            line += count_nl(s + body, end - body);
            line_starting = s[end - 1] == '\n';
            pos = end;
            continue;
        }
        size_t i = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            size_t end = 0;
            for (size_t k = i; k + 1 < n && !end; k++) {
                if (k + 2 < n && (s[k] == '+' || s[k] == '-') && s[k + 1] == '#' && s[k + 2] == '}')
                    end = s[k] == '-' ? k + 3 + ws_run(s, k + 3, n) : k + 3;
                else if (s[k] == '#' && s[k + 1] == '}')
                    end = k + 2 + (k + 2 < n && s[k + 2] == '\n');
            }
            if (!end) return jc_fail(c, line, "missing end of comment tag");
            line += count_nl(s + t, end - t);
            line_starting = s[end - 1] == '\n';
            pos = end;
            continue;
        }
        if (!push(c, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, line)) return nomem(c, line);
        line += count_nl(s + t, i - t);
        pos = i;
        if (lex_tag(c, s, n, &pos, &line, kind == '%', &line_starting)) return JE_FAIL;
    }
    if (!push(c, TK_EOF, line)) return nomem(c, line);
    return 0;
}
