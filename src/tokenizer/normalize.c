/* normalize: the "normalizer" of tokenizer.json.
 *
 * Supported: NFC, NFD, NFKC, NFKD (utf8proc), Lowercase (Rust
 * char::to_lowercase: simple mappings plus U+0130 -> "i̇"; no final-sigma
 * context), Strip (White_Space), StripAccents (drops Mn), Prepend (only to a
 * non-empty string), Replace (literal or regex, non-overlapping, left to
 * right) and Sequence (flattened into the tokenizer's step list). Anything
 * else is a load error.
 *
 * Unicode normalization only runs on the parts of the text that can change:
 * a character below U+0300 (NFC) or below U+0080 (the other forms) never
 * changes and never combines with what precedes it, so the text is copied
 * through in such runs and utf8proc sees only the segments in between (each
 * extended by the starter just before it). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/err.h"
#include "tok_internal.h"

static int unicode_form(int type, const char *in, size_t n, tok_buf *out) {
    int opts = UTF8PROC_STABLE;
    uint32_t safe = 0x80;
    switch (type) {
    case TN_NFC: opts |= UTF8PROC_COMPOSE; safe = 0x300; break;
    case TN_NFD: opts |= UTF8PROC_DECOMPOSE; break;
    case TN_NFKC: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    out->len = 0;
    size_t i = 0;
    while (i < n) {
        /* copy a run of safe characters, remembering where the last one starts */
        size_t run = i, last_start = (size_t)-1;
        while (i < n) {
            unsigned char c = (unsigned char)in[i];
            if (c < 0x80) {
                last_start = i;
                i++;
                continue;
            }
            uint32_t cp;
            size_t k = tok_u8dec(in + i, &cp);
            if (cp >= safe) break;
            last_start = i;
            i += k;
        }
        if (i >= n) {
            if (tok_buf_put(out, in + run, n - run)) return VC_ENOMEM;
            break;
        }
        /* the unsafe segment starts at the last safe starter (it may compose) */
        size_t seg = last_start != (size_t)-1 ? last_start : i;
        if (tok_buf_put(out, in + run, seg - run)) return VC_ENOMEM;
        size_t end = i;
        while (end < n) {
            uint32_t cp;
            size_t k = tok_u8dec(in + end, &cp);
            if (cp < safe && end > i) break;
            end += k;
        }
        utf8proc_uint8_t *dst = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)in + seg, (utf8proc_ssize_t)(end - seg), &dst,
                                          (utf8proc_option_t)opts);
        if (r < 0) {
            free(dst);
            return vc_errf(VC_EINVAL, "Unicode normalization failed: %s", utf8proc_errmsg(r));
        }
        int rc = tok_buf_put(out, dst, (size_t)r);
        free(dst);
        if (rc) return rc;
        i = end;
    }
    if (!out->s && tok_buf_put(out, "", 0)) return VC_ENOMEM;
    return 0;
}

static int lowercase(const char *in, size_t n, tok_buf *out) {
    out->len = 0;
    if (tok_buf_grow(out, n + 8)) return VC_ENOMEM;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = tok_u8dec(in + i, &cp);
        char enc[8];
        size_t el;
        if (cp < 0x80) {
            enc[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            el = 1;
        } else if (cp == 0x130) {
            el = tok_u8enc('i', enc);
            el += tok_u8enc(0x307, enc + el);
        } else {
            el = tok_u8enc((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        }
        if (tok_buf_put(out, enc, el)) return VC_ENOMEM;
        i += k;
    }
    return 0;
}

static int replace(const tok_tokenizer *t, tok_ws *ws, const tok_norm *st, const char *in, size_t n, tok_buf *out,
                   int *lead_removed) {
    (void)t;
    out->len = 0;
    if (tok_buf_put(out, "", 0)) return VC_ENOMEM;
    tok_iter it = {0};
    size_t prev = 0, a, b;
    int rc;
    while ((rc = tok_pattern_next(&st->pat, ws, in, n, &it, &a, &b)) == 1) {
        if (a == 0 && b > 0 && st->str_len == 0) *lead_removed = 1;
        if (tok_buf_put(out, in + prev, a - prev) || tok_buf_put(out, st->str, st->str_len)) return VC_ENOMEM;
        prev = b;
    }
    if (rc < 0) return rc;
    return tok_buf_put(out, in + prev, n - prev);
}

static int apply(const tok_tokenizer *t, tok_ws *ws, const tok_norm *st, const char *in, size_t n, tok_buf *out,
                 int *lead_removed) {
    out->len = 0;
    switch (st->type) {
    case TN_NFC:
    case TN_NFD:
    case TN_NFKC:
    case TN_NFKD: return unicode_form(st->type, in, n, out);
    case TN_LOWER: return lowercase(in, n, out);
    case TN_STRIP: {
        size_t a = 0, b = n;
        if (st->left) {
            while (a < b) {
                uint32_t cp;
                size_t k = tok_u8dec(in + a, &cp);
                if (!tok_is_space(cp)) break;
                a += k;
            }
            if (a > 0) *lead_removed = 1;
        }
        if (st->right) {
            while (b > a) {
                size_t k = b - 1;
                while (k > a && ((unsigned char)in[k] & 0xC0) == 0x80) k--;
                uint32_t cp;
                tok_u8dec(in + k, &cp);
                if (!tok_is_space(cp)) break;
                b = k;
            }
        }
        return tok_buf_put(out, in + a, b - a);
    }
    case TN_STRIP_ACCENTS: {
        if (tok_buf_put(out, "", 0)) return VC_ENOMEM;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t k = tok_u8dec(in + i, &cp);
            if (!tok_is_mn(cp)) {
                if (tok_buf_put(out, in + i, k)) return VC_ENOMEM;
            } else if (i == 0) {
                *lead_removed = 1;
            }
            i += k;
        }
        return 0;
    }
    case TN_PREPEND:
        if (n && tok_buf_put(out, st->str, st->str_len)) return VC_ENOMEM;
        return tok_buf_put(out, in, n);
    case TN_REPLACE: return replace(t, ws, st, in, n, out, lead_removed);
    default: return vc_errf(VC_ERR, "bad normalizer step");
    }
}

int tok_normalize(const tok_tokenizer *t, tok_ws *ws, const char *in, size_t n, tok_buf *out, int *lead_removed) {
    *lead_removed = 0;
    if (!t->n_norms) {
        out->len = 0;
        return tok_buf_put(out, in, n);
    }
    const char *cur = in;
    size_t cn = n;
    int rc;
    for (size_t k = 0; k < t->n_norms; k++) {
        tok_buf *dst = k + 1 == t->n_norms ? out : &ws->nbuf[k & 1];
        if ((rc = apply(t, ws, &t->norms[k], cur, cn, dst, lead_removed))) return rc;
        cur = dst->s;
        cn = dst->len;
    }
    return 0;
}

/* ---- loading ---- */

static int load_one(tok_tokenizer *t, const tok_jv *v, const char *where, int depth) {
    if (tok_jnull(v)) return 0;
    const tok_jv *type = tok_jget(v, "type");
    if (!type || type->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s has no \"type\"", t->what, where);
    const char *ty = type->u.str;
    if (strcmp(ty, "Sequence") == 0) return tok_load_sequence(t, v, "normalizers", where, depth, load_one);
    if (t->n_norms == TOK_MAX_STEPS) return vc_errf(VC_EUNSUP, "%s: %s: too many steps", t->what, where);
    tok_norm *st = &t->norms[t->n_norms];
    memset(st, 0, sizeof *st);
    if (strcmp(ty, "NFC") == 0) st->type = TN_NFC;
    else if (strcmp(ty, "NFD") == 0) st->type = TN_NFD;
    else if (strcmp(ty, "NFKC") == 0) st->type = TN_NFKC;
    else if (strcmp(ty, "NFKD") == 0) st->type = TN_NFKD;
    else if (strcmp(ty, "Lowercase") == 0) st->type = TN_LOWER;
    else if (strcmp(ty, "StripAccents") == 0) st->type = TN_STRIP_ACCENTS;
    else if (strcmp(ty, "Strip") == 0) {
        st->type = TN_STRIP;
        const tok_jv *l = tok_jget(v, "strip_left"), *r = tok_jget(v, "strip_right");
        st->left = !l || l->type == TOK_J_TRUE;
        st->right = !r || r->type == TOK_J_TRUE;
    } else if (strcmp(ty, "Prepend") == 0) {
        const tok_jv *p = tok_jget(v, "prepend");
        if (!p || p->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s: Prepend needs a string \"prepend\"", t->what, where);
        st->type = TN_PREPEND;
        if (!(st->str = tok_strndup(p->u.str, p->len))) return vc_errf(VC_ENOMEM, "out of memory");
        st->str_len = p->len;
    } else if (strcmp(ty, "Replace") == 0) {
        const tok_jv *c = tok_jget(v, "content");
        if (!c || c->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s: Replace needs a string \"content\"", t->what, where);
        st->type = TN_REPLACE;
        int rc = tok_pattern_from_json(&st->pat, tok_jget(v, "pattern"), t->what, where);
        if (rc) return rc;
        if (!(st->str = tok_strndup(c->u.str, c->len))) {
            tok_pattern_free(&st->pat);
            return vc_errf(VC_ENOMEM, "out of memory");
        }
        st->str_len = c->len;
    } else {
        return vc_errf(VC_EUNSUP, "%s: unsupported %s type '%s'", t->what, where, ty);
    }
    t->n_norms++;
    return 0;
}

int tok_norm_load(tok_tokenizer *t, const tok_jv *v, const char *where) { return load_one(t, v, where, 0); }

void tok_norm_free(tok_norm *n) {
    free(n->str);
    tok_pattern_free(&n->pat);
    memset(n, 0, sizeof *n);
}
