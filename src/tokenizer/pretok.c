/* pretok: the "pre_tokenizer" of tokenizer.json.
 *
 * Supported (Rust semantics): ByteLevel (add_prefix_space per piece, the
 * GPT-2 regex when use_regex, then bytes -> the byte-level alphabet), Split
 * (literal or regex pattern, invert, every SplitDelimiterBehavior), Metaspace
 * (replacement, prepend_scheme always/first/never, split = MergedWithNext on
 * the replacement), Digits (char::is_numeric, Isolated or Contiguous),
 * Punctuation, Whitespace (\w+|[^\w\s]+), WhitespaceSplit, CharDelimiterSplit
 * and Sequence (flattened). Anything else is a load error.
 *
 * Pieces are processed depth-first: step k turns one piece into a list of
 * spans (each with is_match, as Pattern::find_matches), merges them according
 * to the behavior (NormalizedString::split), and hands every non-empty span to
 * step k+1. Text a step rewrites goes to the workspace buffers of its depth,
 * which stay untouched until all of its children are done. Metaspace's
 * "first" scheme looks at at_start: the piece begins at offset 0 of the
 * original input (what Rust reads from offsets_original). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/stack.h"
#include "tok_internal.h"

static const char gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int run_span(const tok_tokenizer *t, tok_ws *ws, size_t step, tok_piece pc, size_t a, size_t b, tok_ids *out) {
    if (b <= a) return 0;
    tok_piece c = {pc.p + a, b - a, pc.at_start && a == 0};
    return tok_pretok_run(t, ws, step + 1, c, out);
}

/* Apply a SplitDelimiterBehavior to spans[0..n) (which cover the piece) and recurse. */
static int apply_behavior(const tok_tokenizer *t, tok_ws *ws, size_t step, tok_piece pc, tok_span *sp, size_t n,
                          int behavior, tok_ids *out) {
    size_t m = 0;
    int prev = 0;
    switch (behavior) {
    case TB_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!sp[i].is_match) sp[m++] = sp[i];
        break;
    case TB_ISOLATED: m = n; break;
    case TB_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            if (m && sp[i].is_match == prev) sp[m - 1].b = sp[i].b;
            else sp[m++] = sp[i];
            prev = sp[i].is_match;
        }
        break;
    case TB_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int im = sp[i].is_match;
            if (im && !prev && m) sp[m - 1].b = sp[i].b;
            else sp[m++] = sp[i];
            prev = im;
        }
        break;
    case TB_MERGED_NEXT: {
        /* right to left, then reversed: a match joins the piece after it */
        size_t w = n;
        for (size_t i = n; i-- > 0;) {
            int im = sp[i].is_match;
            if (im && !prev && w < n) sp[w].a = sp[i].a;
            else sp[--w] = sp[i];
            prev = im;
        }
        memmove(sp, sp + w, (n - w) * sizeof *sp);
        m = n - w;
        break;
    }
    default: return vc_errf(VC_ERR, "bad split behavior");
    }
    for (size_t i = 0; i < m; i++) {
        int rc = run_span(t, ws, step, pc, sp[i].a, sp[i].b, out);
        if (rc) return rc;
    }
    return 0;
}

static int add_span(tok_ws *ws, size_t depth, size_t *n, size_t a, size_t b, int is_match) {
    if (tok_spans_reserve(ws, (int)depth, *n + 1)) return VC_ENOMEM;
    ws->spans[depth][(*n)++] = (tok_span){a, b, is_match};
    return 0;
}

/* Pattern::find_matches for a regex / literal (matches and the gaps between). */
static int pattern_spans(tok_ws *ws, size_t depth, const tok_pattern *p, tok_piece pc, int invert, size_t *n) {
    tok_iter it = {0};
    size_t prev = 0, a, b;
    int rc;
    *n = 0;
    while ((rc = tok_pattern_next(p, ws, pc.p, pc.len, &it, &a, &b)) == 1) {
        if (prev != a && add_span(ws, depth, n, prev, a, invert)) return VC_ENOMEM;
        if (add_span(ws, depth, n, a, b, !invert)) return VC_ENOMEM;
        prev = b;
    }
    if (rc < 0) return rc;
    if (prev != pc.len && add_span(ws, depth, n, prev, pc.len, invert)) return VC_ENOMEM;
    return 0;
}

/* Pattern::find_matches for a char predicate: every matching char is its own match. */
enum { PRED_NUMERIC, PRED_PUNCT, PRED_SPACE, PRED_CHAR };
static int char_spans(tok_ws *ws, size_t depth, tok_piece pc, int pred, uint32_t ch, size_t *n) {
    size_t last = 0;
    *n = 0;
    for (size_t i = 0; i < pc.len;) {
        uint32_t cp;
        size_t k = tok_u8dec(pc.p + i, &cp);
        int m = pred == PRED_NUMERIC ? tok_is_numeric(cp)
                : pred == PRED_PUNCT ? tok_is_punct(cp)
                : pred == PRED_SPACE ? tok_is_space(cp)
                                     : cp == ch;
        if (m) {
            if (last < i && add_span(ws, depth, n, last, i, 0)) return VC_ENOMEM;
            if (add_span(ws, depth, n, i, i + k, 1)) return VC_ENOMEM;
            last = i + k;
        }
        i += k;
    }
    if (last < pc.len && add_span(ws, depth, n, last, pc.len, 0)) return VC_ENOMEM;
    return 0;
}

static int bytelevel(const tok_tokenizer *t, tok_ws *ws, size_t step, const tok_pretok *st, tok_piece pc, tok_ids *out) {
    tok_buf *pre = &ws->sbuf[step][0], *map = &ws->sbuf[step][1];
    if (st->add_prefix_space && pc.p[0] != ' ') {
        pre->len = 0;
        if (tok_buf_put(pre, " ", 1) || tok_buf_put(pre, pc.p, pc.len)) return VC_ENOMEM;
        pc.p = pre->s;
        pc.len = pre->len;
    }
    size_t n = 0;
    int rc;
    if (st->use_regex) {
        if ((rc = pattern_spans(ws, step, &st->pat, pc, 0, &n))) return rc;
    } else {
        if (add_span(ws, step, &n, 0, pc.len, 0)) return VC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        tok_span s = ws->spans[step][i];
        if (s.b <= s.a) continue;
        map->len = 0;
        if (tok_buf_grow(map, 2 * (s.b - s.a))) return VC_ENOMEM;
        char *o = map->s;
        for (size_t k = s.a; k < s.b; k++) {
            unsigned char c = (unsigned char)pc.p[k];
            o[0] = t->bl_enc[c][0];
            o[1] = t->bl_enc[c][1];
            o += t->bl_len[c];
        }
        map->len = (size_t)(o - map->s);
        tok_piece c = {map->s, map->len, pc.at_start && s.a == 0};
        if ((rc = tok_pretok_run(t, ws, step + 1, c, out))) return rc;
    }
    return 0;
}

static int metaspace(const tok_tokenizer *t, tok_ws *ws, size_t step, const tok_pretok *st, tok_piece pc, tok_ids *out) {
    tok_buf *b = &ws->sbuf[step][0];
    b->len = 0;
    if (tok_buf_grow(b, pc.len * 4 + 8)) return VC_ENOMEM;
    /* normalized.replace(' ', str_rep) */
    for (size_t i = 0; i < pc.len; i++) {
        if (pc.p[i] == ' ') {
            memcpy(b->s + b->len, st->ch_s, (size_t)st->ch_len);
            b->len += (size_t)st->ch_len;
        } else {
            b->s[b->len++] = pc.p[i];
        }
    }
    int starts = b->len >= (size_t)st->ch_len && memcmp(b->s, st->ch_s, (size_t)st->ch_len) == 0;
    int prepend = !starts && (st->scheme == TM_ALWAYS || (st->scheme == TM_FIRST && pc.at_start));
    if (prepend) {
        memmove(b->s + st->ch_len, b->s, b->len);
        memcpy(b->s, st->ch_s, (size_t)st->ch_len);
        b->len += (size_t)st->ch_len;
    }
    tok_piece c = {b->s, b->len, pc.at_start};
    if (!st->split) return tok_pretok_run(t, ws, step + 1, c, out);
    size_t n;
    int rc = char_spans(ws, step, c, PRED_CHAR, st->ch, &n);
    if (rc) return rc;
    return apply_behavior(t, ws, step, c, ws->spans[step], n, TB_MERGED_NEXT, out);
}

static int whitespace(const tok_tokenizer *t, tok_ws *ws, size_t step, tok_piece pc, tok_ids *out) {
    /* keep the matches of \w+|[^\w\s]+, drop the rest */
    size_t i = 0;
    while (i < pc.len) {
        uint32_t cp;
        size_t k = tok_u8dec(pc.p + i, &cp);
        int word = tok_is_word(cp);
        if (!word && tok_is_space(cp)) {
            i += k;
            continue;
        }
        size_t a = i;
        i += k;
        while (i < pc.len) {
            k = tok_u8dec(pc.p + i, &cp);
            int w2 = tok_is_word(cp);
            if (word ? !w2 : (w2 || tok_is_space(cp))) break;
            i += k;
        }
        int rc = run_span(t, ws, step, pc, a, i, out);
        if (rc) return rc;
    }
    return 0;
}

int tok_pretok_run(const tok_tokenizer *t, tok_ws *ws, size_t step, tok_piece pc, tok_ids *out) {
    if (!pc.len) return 0; /* empty splits are dropped (PreTokenizedString::split) */
    /* one level per step (at most TOK_MAX_STEPS), but on whatever stack the caller's thread has */
    if (vc_stack_low())
        return vc_errf(VC_ERR, "%s: pre-tokenizer steps nested too deeply for this thread's stack", t->what);
    if (step == t->n_pretoks) return tok_bpe_word(t, ws, pc.p, pc.len, out);
    const tok_pretok *st = &t->pretoks[step];
    size_t n = 0;
    int rc;
    switch (st->type) {
    case TP_BYTELEVEL: return bytelevel(t, ws, step, st, pc, out);
    case TP_METASPACE: return metaspace(t, ws, step, st, pc, out);
    case TP_WHITESPACE: return whitespace(t, ws, step, pc, out);
    case TP_SPLIT:
        if ((rc = pattern_spans(ws, step, &st->pat, pc, st->invert, &n))) return rc;
        return apply_behavior(t, ws, step, pc, ws->spans[step], n, st->behavior, out);
    case TP_DIGITS:
        if ((rc = char_spans(ws, step, pc, PRED_NUMERIC, 0, &n))) return rc;
        return apply_behavior(t, ws, step, pc, ws->spans[step], n, st->individual ? TB_ISOLATED : TB_CONTIGUOUS, out);
    case TP_PUNCT:
        if ((rc = char_spans(ws, step, pc, PRED_PUNCT, 0, &n))) return rc;
        return apply_behavior(t, ws, step, pc, ws->spans[step], n, st->behavior, out);
    case TP_WSSPLIT:
        if ((rc = char_spans(ws, step, pc, PRED_SPACE, 0, &n))) return rc;
        return apply_behavior(t, ws, step, pc, ws->spans[step], n, TB_REMOVED, out);
    case TP_CHARDELIM:
        if ((rc = char_spans(ws, step, pc, PRED_CHAR, st->ch, &n))) return rc;
        return apply_behavior(t, ws, step, pc, ws->spans[step], n, TB_REMOVED, out);
    default: return vc_errf(VC_ERR, "bad pre-tokenizer step");
    }
}

/* ---- loading ---- */

static int behavior_of(const tok_tokenizer *t, const tok_jv *v, const char *where, int dflt, int *out) {
    *out = dflt;
    if (tok_jnull(v)) return 0;
    if (v->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s: \"behavior\" must be a string", t->what, where);
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (strcmp(v->u.str, names[i]) == 0) {
            *out = i;
            return 0;
        }
    return vc_errf(VC_EUNSUP, "%s: %s: unknown split behavior '%s'", t->what, where, v->u.str);
}

static int get_bool(const tok_jv *o, const char *k, int dflt) {
    const tok_jv *v = tok_jget(o, k);
    if (!v || (v->type != TOK_J_TRUE && v->type != TOK_J_FALSE)) return dflt;
    return v->type == TOK_J_TRUE;
}

static int one_char(const tok_tokenizer *t, const tok_jv *v, const char *where, const char *key, const char *dflt,
                    tok_pretok *st) {
    const char *s = dflt;
    size_t n = strlen(dflt);
    if (v && v->type == TOK_J_STR) {
        s = v->u.str;
        n = v->len;
    } else if (!tok_jnull(v)) {
        return vc_errf(VC_EFORMAT, "%s: %s: \"%s\" must be a string", t->what, where, key);
    }
    if (!n || tok_u8len((unsigned char)s[0]) != n)
        return vc_errf(VC_EFORMAT, "%s: %s: \"%s\" must be exactly one character", t->what, where, key);
    tok_u8dec(s, &st->ch);
    memcpy(st->ch_s, s, n);
    st->ch_len = (int)n;
    return 0;
}

static int load_one(tok_tokenizer *t, const tok_jv *v, const char *where, int depth) {
    if (tok_jnull(v)) return 0;
    const tok_jv *type = tok_jget(v, "type");
    if (!type || type->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s has no \"type\"", t->what, where);
    const char *ty = type->u.str;
    if (strcmp(ty, "Sequence") == 0) return tok_load_sequence(t, v, "pretokenizers", where, depth, load_one);
    if (t->n_pretoks == TOK_MAX_STEPS) return vc_errf(VC_EUNSUP, "%s: %s: too many steps", t->what, where);
    tok_pretok *st = &t->pretoks[t->n_pretoks];
    memset(st, 0, sizeof *st);
    int rc = 0;
    if (strcmp(ty, "ByteLevel") == 0) {
        st->type = TP_BYTELEVEL;
        st->add_prefix_space = get_bool(v, "add_prefix_space", 1);
        st->use_regex = get_bool(v, "use_regex", 1);
        if (st->use_regex) rc = tok_pattern_regex(&st->pat, gpt2_pattern, sizeof gpt2_pattern - 1, t->what, where);
    } else if (strcmp(ty, "Split") == 0) {
        st->type = TP_SPLIT;
        st->invert = get_bool(v, "invert", 0);
        if (!(rc = behavior_of(t, tok_jget(v, "behavior"), where, TB_REMOVED, &st->behavior)))
            rc = tok_pattern_from_json(&st->pat, tok_jget(v, "pattern"), t->what, where);
    } else if (strcmp(ty, "Metaspace") == 0) {
        st->type = TP_METASPACE;
        if ((rc = one_char(t, tok_jget(v, "replacement"), where, "replacement", "\xE2\x96\x81", st))) return rc;
        st->split = get_bool(v, "split", 1);
        st->scheme = TM_ALWAYS;
        const tok_jv *ps = tok_jget(v, "prepend_scheme");
        if (ps && ps->type == TOK_J_STR) {
            if (strcmp(ps->u.str, "always") == 0) st->scheme = TM_ALWAYS;
            else if (strcmp(ps->u.str, "first") == 0) st->scheme = TM_FIRST;
            else if (strcmp(ps->u.str, "never") == 0) st->scheme = TM_NEVER;
            else return vc_errf(VC_EFORMAT, "%s: %s: unknown prepend_scheme '%s'", t->what, where, ps->u.str);
        }
        const tok_jv *aps = tok_jget(v, "add_prefix_space");
        if (aps && aps->type == TOK_J_FALSE) {
            if (ps && ps->type == TOK_J_STR && st->scheme != TM_NEVER)
                return vc_errf(VC_EFORMAT, "%s: %s: add_prefix_space does not match declared prepend_scheme", t->what, where);
            st->scheme = TM_NEVER;
        }
    } else if (strcmp(ty, "Digits") == 0) {
        st->type = TP_DIGITS;
        st->individual = get_bool(v, "individual_digits", 0);
    } else if (strcmp(ty, "Punctuation") == 0) {
        st->type = TP_PUNCT;
        rc = behavior_of(t, tok_jget(v, "behavior"), where, TB_ISOLATED, &st->behavior);
    } else if (strcmp(ty, "Whitespace") == 0) {
        st->type = TP_WHITESPACE;
    } else if (strcmp(ty, "WhitespaceSplit") == 0) {
        st->type = TP_WSSPLIT;
    } else if (strcmp(ty, "CharDelimiterSplit") == 0) {
        st->type = TP_CHARDELIM;
        rc = one_char(t, tok_jget(v, "delimiter"), where, "delimiter", "", st);
    } else {
        return vc_errf(VC_EUNSUP, "%s: unsupported %s type '%s'", t->what, where, ty);
    }
    if (rc) {
        tok_pattern_free(&st->pat);
        return rc;
    }
    t->n_pretoks++;
    return 0;
}

int tok_pretok_load(tok_tokenizer *t, const tok_jv *v, const char *where) { return load_one(t, v, where, 0); }

void tok_pretok_free(tok_pretok *p) {
    tok_pattern_free(&p->pat);
    memset(p, 0, sizeof *p);
}
