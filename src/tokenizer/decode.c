/* decode: the "decoder" of tokenizer.json, as a chain of streaming steps.
 *
 * Rust's Decoder::decode(tokens) is decode_chain(tokens).join(""), each step
 * mapping a list of strings to a list of strings. Here each step consumes one
 * item at a time and forwards items to the next, so that feeding tokens one
 * by one and then ending gives exactly the same text as the whole list at
 * once (tok_decode is implemented as such a stream). Steps and what they hold
 * back until a later item or the end decides it:
 *   ByteLevel     chars -> bytes (a token with any char outside the byte-level
 *                 alphabet contributes its raw UTF-8), then String::from_utf8_lossy
 *                 over the concatenation: an incomplete trailing sequence (<= 3 bytes)
 *   ByteFallback  a run of <0xXX> tokens becomes its string if valid UTF-8,
 *                 else one U+FFFD per byte (Rust; the JS port differs): the open run
 *   Fuse          joins everything into one token (nothing)
 *   Metaspace     replacement -> ' ', dropped in the first token unless
 *                 prepend_scheme is never (nothing)
 *   Strip         up to `start` leading / `stop` trailing content chars of each
 *                 token: after a fuse, up to `stop` trailing content chars
 *   Replace       literal or regex replace in each token: after a fuse, a suffix
 *                 that may begin a literal match (a regex waits for the end)
 * Output of every step is valid UTF-8 at character boundaries. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/stack.h"
#include "tok_internal.h"

#define FFFD "\xEF\xBF\xBD"

/* ---- loading ---- */

static int load_one(tok_tokenizer *t, const tok_jv *v, const char *where, int depth) {
    if (tok_jnull(v)) return 0;
    const tok_jv *type = tok_jget(v, "type");
    if (!type || type->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s has no \"type\"", t->what, where);
    const char *ty = type->u.str;
    if (strcmp(ty, "Sequence") == 0) return tok_load_sequence(t, v, "decoders", where, depth, load_one);
    if (t->n_decs == TOK_MAX_STEPS) return vc_errf(VC_EUNSUP, "%s: %s: too many steps", t->what, where);
    tok_dec *d = &t->decs[t->n_decs];
    memset(d, 0, sizeof *d);
    if (strcmp(ty, "ByteLevel") == 0) {
        d->type = TD_BYTELEVEL;
    } else if (strcmp(ty, "ByteFallback") == 0) {
        d->type = TD_BYTEFALLBACK;
    } else if (strcmp(ty, "Fuse") == 0) {
        d->type = TD_FUSE;
    } else if (strcmp(ty, "Metaspace") == 0) {
        d->type = TD_METASPACE;
        const tok_jv *r = tok_jget(v, "replacement");
        const char *rs = "\xE2\x96\x81";
        size_t rl = 3;
        if (r && r->type == TOK_J_STR) {
            rs = r->u.str;
            rl = r->len;
        }
        if (!rl || tok_u8len((unsigned char)rs[0]) != rl)
            return vc_errf(VC_EFORMAT, "%s: %s: Metaspace replacement must be one character", t->what, where);
        tok_u8dec(rs, &d->ch);
        d->scheme = TM_ALWAYS;
        const tok_jv *ps = tok_jget(v, "prepend_scheme");
        if (ps && ps->type == TOK_J_STR) {
            if (strcmp(ps->u.str, "first") == 0) d->scheme = TM_FIRST;
            else if (strcmp(ps->u.str, "never") == 0) d->scheme = TM_NEVER;
            else if (strcmp(ps->u.str, "always") != 0)
                return vc_errf(VC_EFORMAT, "%s: %s: unknown prepend_scheme '%s'", t->what, where, ps->u.str);
        }
        const tok_jv *aps = tok_jget(v, "add_prefix_space");
        if (aps && aps->type == TOK_J_FALSE) d->scheme = TM_NEVER;
    } else if (strcmp(ty, "Strip") == 0) {
        d->type = TD_STRIP;
        const tok_jv *c = tok_jget(v, "content");
        long long a = 0, b = 0;
        if (!c || c->type != TOK_J_STR || !c->len || tok_u8len((unsigned char)c->u.str[0]) != c->len)
            return vc_errf(VC_EFORMAT, "%s: %s: Strip content must be one character", t->what, where);
        tok_u8dec(c->u.str, &d->ch);
        if ((tok_jget(v, "start") && !tok_jint(tok_jget(v, "start"), 0, 1 << 20, &a)) ||
            (tok_jget(v, "stop") && !tok_jint(tok_jget(v, "stop"), 0, 1 << 20, &b)))
            return vc_errf(VC_EFORMAT, "%s: %s: Strip start/stop must be small non-negative integers", t->what, where);
        d->start = (int)a;
        d->stop = (int)b;
    } else if (strcmp(ty, "Replace") == 0) {
        d->type = TD_REPLACE;
        const tok_jv *c = tok_jget(v, "content");
        if (!c || c->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s: Replace needs a string \"content\"", t->what, where);
        int rc = tok_pattern_from_json(&d->pat, tok_jget(v, "pattern"), t->what, where);
        if (rc) return rc;
        if (!(d->content = tok_strndup(c->u.str, c->len))) {
            tok_pattern_free(&d->pat);
            return vc_errf(VC_ENOMEM, "out of memory");
        }
        d->content_len = c->len;
    } else {
        return vc_errf(VC_EUNSUP, "%s: unsupported %s type '%s'", t->what, where, ty);
    }
    t->n_decs++;
    return 0;
}

int tok_dec_load(tok_tokenizer *t, const tok_jv *v, const char *where) {
    t->has_decoder = !tok_jnull(v);
    return load_one(t, v, where, 0);
}

void tok_dec_free(tok_dec *d) {
    tok_pattern_free(&d->pat);
    free(d->content);
    memset(d, 0, sizeof *d);
}

/* ---- the chain ---- */

static int feed(tok_chain *c, size_t k, const char *p, size_t n);
static int end(tok_chain *c, size_t k);

/* Steps after a Fuse or ByteLevel receive fragments of one token. */
static int frag_mode(const tok_tokenizer *t, size_t k) {
    for (size_t j = 0; j < k; j++)
        if (t->decs[j].type == TD_FUSE || t->decs[j].type == TD_BYTELEVEL) return 1;
    return 0;
}

static int emit(tok_chain *c, size_t k, const char *p, size_t n) { return feed(c, k + 1, p, n); }

/* u8::from_str_radix(&token[3..5], 16) on a 6-byte "<0x..>" token */
static int byte_token(const char *p, size_t n, unsigned char *out) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return 0;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char h = p[i];
        int d;
        if (i == 3 && h == '+') continue; /* Rust's from_str_radix accepts a leading '+' */
        if (h >= '0' && h <= '9') d = h - '0';
        else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
        else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = (unsigned char)v;
    return 1;
}

/* ByteLevel: one byte through String::from_utf8_lossy's state machine. */
static int lossy_byte(tok_dstate *s, tok_buf *o, unsigned char b) {
    for (;;) {
        if (s->u8n == 0) {
            if (b < 0x80) return tok_buf_put(o, &b, 1);
            if (b >= 0xC2 && b <= 0xF4) {
                s->u8[0] = b;
                s->u8n = 1;
                s->u8need = b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
                return 0;
            }
            return tok_buf_put(o, FFFD, 3);
        }
        unsigned lo = 0x80, hi = 0xBF;
        if (s->u8n == 1) {
            if (s->u8[0] == 0xE0) lo = 0xA0;
            else if (s->u8[0] == 0xED) hi = 0x9F;
            else if (s->u8[0] == 0xF0) lo = 0x90;
            else if (s->u8[0] == 0xF4) hi = 0x8F;
        }
        if (b >= lo && b <= hi) {
            s->u8[s->u8n++] = b;
            if (s->u8n == s->u8need) {
                s->u8n = 0;
                return tok_buf_put(o, s->u8, (size_t)s->u8need);
            }
            return 0;
        }
        /* the maximal subpart so far is one U+FFFD; b starts over */
        s->u8n = 0;
        if (tok_buf_put(o, FFFD, 3)) return VC_ENOMEM;
    }
}

static int bytelevel_token(tok_chain *c, size_t k, const char *p, size_t n) {
    const tok_tokenizer *t = c->t;
    tok_dstate *s = &c->st[k];
    int mapped = 1;
    for (size_t i = 0; i < n && mapped;) {
        uint32_t cp;
        i += tok_u8dec(p + i, &cp);
        if (cp >= 0x144 || t->bl_dec[cp] < 0) mapped = 0;
    }
    s->scratch.len = 0;
    if (tok_buf_grow(&s->scratch, n + 8)) return VC_ENOMEM;
    for (size_t i = 0; i < n;) {
        unsigned char b;
        if (mapped) {
            uint32_t cp;
            i += tok_u8dec(p + i, &cp);
            b = (unsigned char)t->bl_dec[cp];
        } else {
            b = (unsigned char)p[i++];
        }
        if (lossy_byte(s, &s->scratch, b)) return VC_ENOMEM;
    }
    return s->scratch.len ? emit(c, k, s->scratch.s, s->scratch.len) : 0;
}

static int bytefallback_flush(tok_chain *c, size_t k) {
    tok_dstate *s = &c->st[k];
    if (!s->pend.len) return 0;
    size_t n = s->pend.len;
    int rc = 0;
    if (tok_u8check(s->pend.s, n) == n) {
        /* emit from a copy: pend is reused while downstream runs */
        s->scratch.len = 0;
        if (tok_buf_put(&s->scratch, s->pend.s, n)) return VC_ENOMEM;
        s->pend.len = 0;
        return emit(c, k, s->scratch.s, n);
    }
    s->pend.len = 0;
    for (size_t i = 0; i < n && !rc; i++) rc = emit(c, k, FFFD, 3);
    return rc;
}

void tok_strip_span(const tok_dec *d, const char *p, size_t n, size_t *start, size_t *end) {
    size_t a = 0, b = n;
    for (int i = 0; i < d->start && a < n; i++) {
        uint32_t cp;
        size_t l = tok_u8dec(p + a, &cp);
        if (cp != d->ch) break;
        a += l;
    }
    for (int i = 0; i < d->stop && b > a; i++) {
        size_t q = b - 1;
        while (q > 0 && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
        uint32_t cp;
        tok_u8dec(p + q, &cp);
        if (cp != d->ch) break;
        b = q;
    }
    *start = a;
    *end = b;
}

static int strip_token(tok_chain *c, size_t k, const char *p, size_t n) {
    size_t a, b;
    tok_strip_span(&c->t->decs[k], p, n, &a, &b);
    return emit(c, k, p + a, b - a);
}

static int strip_frag(tok_chain *c, size_t k, const char *p, size_t n) {
    const tok_dec *d = &c->t->decs[k];
    tok_dstate *s = &c->st[k];
    char enc[4];
    size_t el = tok_u8enc(d->ch, enc);
    s->scratch.len = 0;
    if (tok_buf_put(&s->scratch, "", 0)) return VC_ENOMEM;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_u8dec(p + i, &cp);
        if (!s->started) {
            if (cp == d->ch && s->count < (size_t)d->start) {
                s->count++;
                i += l;
                continue;
            }
            s->started = 1;
        }
        if (cp == d->ch && d->stop > 0) {
            s->hold++;
            if (s->hold > (size_t)d->stop) {
                if (tok_buf_put(&s->scratch, enc, el)) return VC_ENOMEM;
                s->hold--;
            }
        } else {
            for (; s->hold; s->hold--)
                if (tok_buf_put(&s->scratch, enc, el)) return VC_ENOMEM;
            if (tok_buf_put(&s->scratch, p + i, l)) return VC_ENOMEM;
        }
        i += l;
    }
    return s->scratch.len ? emit(c, k, s->scratch.s, s->scratch.len) : 0;
}

static int metaspace(tok_chain *c, size_t k, const char *p, size_t n, int frag) {
    const tok_dec *d = &c->t->decs[k];
    tok_dstate *s = &c->st[k];
    int first = frag || s->count == 0;
    if (!frag) s->count++;
    int drop = first && d->scheme != TM_NEVER;
    s->scratch.len = 0;
    if (tok_buf_put(&s->scratch, "", 0)) return VC_ENOMEM;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_u8dec(p + i, &cp);
        if (cp == d->ch) {
            if (!drop && tok_buf_put(&s->scratch, " ", 1)) return VC_ENOMEM;
        } else if (tok_buf_put(&s->scratch, p + i, l)) {
            return VC_ENOMEM;
        }
        i += l;
    }
    return (!frag || s->scratch.len) ? emit(c, k, s->scratch.s, s->scratch.len) : 0;
}

/* Replace all matches of the step's pattern in p[0..n) into o (a literal
 * stops at a suffix that may still become a match when `partial`; the
 * consumed length goes to *used). */
static int replace_into(tok_chain *c, const tok_dec *d, const char *p, size_t n, tok_buf *o, int partial, size_t *used) {
    o->len = 0;
    if (tok_buf_put(o, "", 0)) return VC_ENOMEM;
    if (d->pat.is_regex) {
        if (!c->ws && !(c->ws = tok_ws_new())) return vc_errf(VC_ENOMEM, "out of memory");
        tok_iter it = {0};
        size_t prev = 0, a, b;
        int rc;
        while ((rc = tok_pattern_next(&d->pat, c->ws, p, n, &it, &a, &b)) == 1) {
            if (tok_buf_put(o, p + prev, a - prev) || tok_buf_put(o, d->content, d->content_len)) return VC_ENOMEM;
            prev = b;
        }
        if (rc < 0) return rc;
        *used = n;
        return tok_buf_put(o, p + prev, n - prev);
    }
    const char *pat = d->pat.lit;
    size_t pl = d->pat.lit_len, i = 0;
    while (i < n) {
        if (pl && n - i >= pl && memcmp(p + i, pat, pl) == 0) {
            if (tok_buf_put(o, d->content, d->content_len)) return VC_ENOMEM;
            i += pl;
            continue;
        }
        if (partial && pl && n - i < pl && memcmp(p + i, pat, n - i) == 0) break;
        size_t l = tok_u8len((unsigned char)p[i]);
        if (tok_buf_put(o, p + i, l)) return VC_ENOMEM;
        i += l;
    }
    *used = i;
    return 0;
}

/* feed and end recurse once per step (at most TOK_MAX_STEPS), on whatever stack the caller has. */
static int too_deep(const tok_tokenizer *t) {
    return vc_errf(VC_ERR, "%s: decoder steps nested too deeply for this thread's stack", t->what);
}

static int feed(tok_chain *c, size_t k, const char *p, size_t n) {
    const tok_tokenizer *t = c->t;
    if (k == t->n_decs) return tok_buf_put(c->out, p, n);
    if (vc_stack_low()) return too_deep(t);
    const tok_dec *d = &t->decs[k];
    tok_dstate *s = &c->st[k];
    int frag = frag_mode(t, k);
    int rc;
    size_t used;
    switch (d->type) {
    case TD_FUSE: return n ? emit(c, k, p, n) : 0;
    case TD_BYTELEVEL:
        if (frag) return tok_buf_put(&s->pend, p, n);
        return bytelevel_token(c, k, p, n);
    case TD_METASPACE: return metaspace(c, k, p, n, frag);
    case TD_STRIP: return frag ? strip_frag(c, k, p, n) : strip_token(c, k, p, n);
    case TD_BYTEFALLBACK:
        if (frag) {
            if (s->passthru) return emit(c, k, p, n);
            if (tok_buf_put(&s->pend, p, n)) return VC_ENOMEM;
            if (s->pend.len <= 6) return 0;
            s->passthru = 1;
            s->scratch.len = 0;
            if (tok_buf_put(&s->scratch, s->pend.s, s->pend.len)) return VC_ENOMEM;
            s->pend.len = 0;
            return emit(c, k, s->scratch.s, s->scratch.len);
        } else {
            unsigned char b;
            if (byte_token(p, n, &b)) return tok_buf_put(&s->pend, &b, 1);
            if ((rc = bytefallback_flush(c, k))) return rc;
            return emit(c, k, p, n);
        }
    case TD_REPLACE:
        if (!frag) {
            if ((rc = replace_into(c, d, p, n, &s->scratch, 0, &used))) return rc;
            return emit(c, k, s->scratch.s, s->scratch.len);
        }
        if (tok_buf_put(&s->pend, p, n)) return VC_ENOMEM;
        if (d->pat.is_regex) return 0; /* a regex match may span fragments: wait for the end */
        if ((rc = replace_into(c, d, s->pend.s, s->pend.len, &s->scratch, 1, &used))) return rc;
        memmove(s->pend.s, s->pend.s + used, s->pend.len - used);
        s->pend.len -= used;
        return s->scratch.len ? emit(c, k, s->scratch.s, s->scratch.len) : 0;
    default: return vc_errf(VC_ERR, "bad decoder step");
    }
}

static int end(tok_chain *c, size_t k) {
    const tok_tokenizer *t = c->t;
    if (k == t->n_decs) return 0;
    if (vc_stack_low()) return too_deep(t);
    const tok_dec *d = &t->decs[k];
    tok_dstate *s = &c->st[k];
    int frag = frag_mode(t, k);
    int rc = 0;
    size_t used;
    switch (d->type) {
    case TD_BYTELEVEL:
        if (frag) {
            /* the fused token is complete now */
            tok_buf whole = s->pend;
            s->pend = (tok_buf){0};
            rc = bytelevel_token(c, k, whole.s ? whole.s : "", whole.len);
            tok_buf_free(&whole);
            if (rc) return rc;
        }
        if (s->u8n) {
            s->u8n = 0;
            if ((rc = emit(c, k, FFFD, 3))) return rc;
        }
        break;
    case TD_BYTEFALLBACK:
        if (!frag) {
            if ((rc = bytefallback_flush(c, k))) return rc;
        } else if (!s->passthru) {
            unsigned char b;
            if (byte_token(s->pend.s, s->pend.len, &b)) {
                char ch = (char)b;
                if ((rc = b < 0x80 ? emit(c, k, &ch, 1) : emit(c, k, FFFD, 3))) return rc;
            } else if (s->pend.len) {
                s->scratch.len = 0;
                if (tok_buf_put(&s->scratch, s->pend.s, s->pend.len)) return VC_ENOMEM;
                if ((rc = emit(c, k, s->scratch.s, s->scratch.len))) return rc;
            }
            s->pend.len = 0;
        }
        break;
    case TD_REPLACE:
        if (frag && s->pend.len) {
            if ((rc = replace_into(c, d, s->pend.s, s->pend.len, &s->scratch, 0, &used))) return rc;
            s->pend.len = 0;
            if ((rc = emit(c, k, s->scratch.s, s->scratch.len))) return rc;
        }
        break;
    default: break; /* Strip drops its held trailing chars; Fuse/Metaspace hold nothing */
    }
    return end(c, k + 1);
}

int tok_chain_token(tok_chain *c, const char *p, size_t n) {
    if (!c->t->has_decoder) {
        /* no decoder: tokens.join(" ") */
        if (c->ntok++ && tok_buf_put(c->out, " ", 1)) return VC_ENOMEM;
        return tok_buf_put(c->out, p, n);
    }
    c->ntok++;
    return feed(c, 0, p, n);
}

int tok_chain_end(tok_chain *c) {
    int rc = c->t->has_decoder ? end(c, 0) : 0;
    tok_chain_reset(c);
    return rc;
}

void tok_chain_reset(tok_chain *c) {
    for (size_t k = 0; k < TOK_MAX_STEPS; k++) {
        tok_dstate *s = &c->st[k];
        s->pend.len = s->scratch.len = 0;
        s->count = s->hold = 0;
        s->started = s->passthru = 0;
        s->u8n = s->u8need = 0;
    }
    c->ntok = 0;
}

void tok_chain_free(tok_chain *c) {
    for (size_t k = 0; k < TOK_MAX_STEPS; k++) {
        tok_buf_free(&c->st[k].pend);
        tok_buf_free(&c->st[k].scratch);
    }
    if (c->ws) tok_ws_free(c->ws);
    c->ws = NULL;
}
