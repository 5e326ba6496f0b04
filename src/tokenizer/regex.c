/* regex: the patterns of Split / Replace components, and match iteration.
 *
 * HF tokenizers compiles {"Regex": ...} with Oniguruma. We translate the few
 * constructs whose meaning differs in PCRE2 and compile with UTF + UCP (and
 * JIT when available):
 *   \s \S  -> \p{White_Space} / \P{White_Space}  (PCRE2's \s also has U+180E)
 *   \w \W  -> Alphabetic | M | Nd | Pc            (Oniguruma's Word)
 *   \h \H  -> hex digit / not (Oniguruma), not horizontal space (PCRE2)
 *   \uHHHH -> \x{HHHH}
 *   ^ $    -> line anchors (PCRE2_MULTILINE; newline is LF only, like '.')
 * Everything else (\p{..}, (?i:..), (?!..), possessive/atomic groups, \x{..})
 * means the same in both. A pattern PCRE2 rejects is a load-time error.
 * {"String": s} patterns are literal and searched with memmem. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "tok_internal.h"

#define WORD_CLASS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}"

static int put(tok_buf *b, const char *s) { return tok_buf_put(b, s, strlen(s)); }

/* Oniguruma -> PCRE2 syntax (see the file comment). */
static int translate(const char *s, size_t n, tok_buf *o, const char *what, const char *where) {
    int in_class = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            const char *rep = NULL;
            if (in_class) in_class = 1;
            switch (e) {
            case 's': rep = "\\p{White_Space}"; break;
            case 'S': rep = "\\P{White_Space}"; break;
            case 'w': rep = in_class ? WORD_CLASS : "[" WORD_CLASS "]"; break;
            case 'W': rep = in_class ? "\\W" : "[^" WORD_CLASS "]"; break;
            case 'h': rep = in_class ? "0-9A-Fa-f" : "[0-9A-Fa-f]"; break;
            case 'H':
                if (in_class) return vc_errf(VC_EUNSUP, "%s: %s: \\H inside a character class is not supported", what, where);
                rep = "[^0-9A-Fa-f]";
                break;
            default: break;
            }
            if (rep) {
                if (put(o, rep)) return VC_ENOMEM;
                i += 2;
                continue;
            }
            if (e == 'u' && i + 6 <= n) {
                int ok = 1;
                for (int k = 2; k < 6; k++) {
                    char h = s[i + k];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F'))) ok = 0;
                }
                if (ok) {
                    if (put(o, "\\x{") || tok_buf_put(o, s + i + 2, 4) || put(o, "}")) return VC_ENOMEM;
                    i += 6;
                    continue;
                }
            }
            /* copy the escape and the whole (possibly multi-byte) escaped character */
            size_t k = tok_u8len((unsigned char)e);
            if (i + 1 + k > n) k = n - i - 1;
            if (tok_buf_put(o, s + i, 1 + k)) return VC_ENOMEM;
            i += 1 + k;
            continue;
        }
        if (in_class) {
            if (c == '[') {
                if (i + 1 < n && s[i + 1] == ':') {
                    /* POSIX bracket [:name:] */
                    const char *end = strstr(s + i + 2, ":]");
                    if (end && (size_t)(end - s) < n) {
                        size_t k = (size_t)(end - (s + i)) + 2;
                        if (tok_buf_put(o, s + i, k)) return VC_ENOMEM;
                        i += k;
                        in_class = 1;
                        continue;
                    }
                }
                return vc_errf(VC_EUNSUP, "%s: %s: nested character classes are not supported", what, where);
            }
            if (c == '&' && i + 1 < n && s[i + 1] == '&')
                return vc_errf(VC_EUNSUP, "%s: %s: character class intersection (&&) is not supported", what, where);
            if (c == ']' && in_class > 1) {
                in_class = 1; /* a ']' right after '[' or '[^' is literal */
            } else if (c == ']') {
                in_class = 0;
            } else {
                in_class = 1;
            }
            if (tok_buf_put(o, s + i, 1)) return VC_ENOMEM;
            i++;
            continue;
        }
        if (c == '[') {
            if (tok_buf_put(o, s + i, 1)) return VC_ENOMEM;
            i++;
            if (i < n && s[i] == '^') {
                if (tok_buf_put(o, s + i, 1)) return VC_ENOMEM;
                i++;
            }
            in_class = 2; /* first position */
            continue;
        }
        if (tok_buf_put(o, s + i, 1)) return VC_ENOMEM;
        i++;
    }
    if (!o->s && tok_buf_put(o, "", 0)) return VC_ENOMEM;
    return 0;
}

int tok_pattern_regex(tok_pattern *p, const char *onig, size_t len, const char *what, const char *where) {
    memset(p, 0, sizeof *p);
    p->is_regex = 1;
    tok_buf b = {0};
    int rc = translate(onig, len, &b, what, where);
    if (rc) {
        tok_buf_free(&b);
        return rc;
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        tok_buf_free(&b);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int err = 0;
    PCRE2_SIZE eoff = 0;
    p->re = pcre2_compile((PCRE2_SPTR)b.s, b.len, PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &err, &eoff, cc);
    pcre2_compile_context_free(cc);
    tok_buf_free(&b);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return vc_errf(VC_EUNSUP, "%s: %s: regex %.200s is not supported: %s", what, where, onig, (char *)msg);
    }
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    return 0;
}

int tok_pattern_from_json(tok_pattern *p, const tok_jv *v, const char *what, const char *where) {
    memset(p, 0, sizeof *p);
    const tok_jv *s = NULL, *r = NULL;
    if (v && v->type == TOK_J_STR) s = v;
    else if (v && v->type == TOK_J_OBJ) {
        s = tok_jget(v, "String");
        r = tok_jget(v, "Regex");
    }
    if (r && r->type == TOK_J_STR) return tok_pattern_regex(p, r->u.str, r->len, what, where);
    if (!s || s->type != TOK_J_STR)
        return vc_errf(VC_EFORMAT, "%s: %s: pattern must be {\"String\": ...} or {\"Regex\": ...}", what, where);
    p->lit = tok_strndup(s->u.str, s->len);
    if (!p->lit) return vc_errf(VC_ENOMEM, "out of memory");
    p->lit_len = s->len;
    return 0;
}

void tok_pattern_free(tok_pattern *p) {
    free(p->lit);
    if (p->re) pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

int tok_pattern_next(const tok_pattern *p, struct tok_ws *ws, const char *s, size_t n, tok_iter *it, size_t *ms,
                     size_t *me) {
    if (!p->is_regex) {
        if (!p->lit_len || it->last_end >= n) return 0;
        const char *f = memmem(s + it->last_end, n - it->last_end, p->lit, p->lit_len);
        if (!f) {
            it->last_end = n + 1;
            return 0;
        }
        *ms = (size_t)(f - s);
        *me = *ms + p->lit_len;
        it->last_end = *me;
        return 1;
    }
    for (;;) {
        if (it->last_end > n) return 0;
        int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, it->last_end, PCRE2_NO_UTF_CHECK, ws->md, ws->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) {
            it->last_end = n + 1;
            return 0;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return vc_errf(VC_ERR, "regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(ws->md);
        size_t a = ov[0], b = ov[1];
        if (b < a) b = a; /* \K can report end < start; treat as empty */
        if (a == b && it->have_last && it->last_match_end == b) {
            it->last_end += it->last_end < n ? tok_u8len((unsigned char)s[it->last_end]) : 1;
            continue;
        }
        it->last_end = b;
        it->last_match_end = b;
        it->have_last = 1;
        *ms = a;
        *me = b;
        return 1;
    }
}
