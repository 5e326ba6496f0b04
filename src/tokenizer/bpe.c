/* bpe: the BPE model of tokenizer.json ("model": {"type": "BPE", ...}).
 *
 * Mirrors Rust tokenizers' models/bpe: a word is split into characters, each
 * looked up in the vocabulary (with continuing_subword_prefix /
 * end_of_word_suffix); a missing character becomes its <0xXX> byte tokens
 * (byte_fallback, all bytes or none) or the unk token (consecutive unks fused
 * with fuse_unk). Then pairs are merged lowest rank first, leftmost first
 * among equal ranks, with a binary heap over a linked list of symbols
 * (Word::merge_all), so long words cost O(n log n). With ignore_merges a word
 * that is itself in the vocabulary is emitted directly.
 *
 * SentencePiece-style tokenizers often have no pre-tokenizer, so a whole
 * paragraph is one word. At load we collect the last characters of every
 * merge's left part whose right part starts with U+2581; before any other
 * U+2581 no pair can ever merge across, so cutting the word there and merging
 * the pieces separately gives the same ids (each piece's merges happen in the
 * same relative order), and the pieces hit the word cache. Not done with
 * ignore_merges or subword prefixes/suffixes.
 *
 * The merge map holds (left id, right id) -> (rank, merged id); a merge whose
 * parts or result are not in the vocabulary is a load error, as in Rust.
 * Results of words shorter than 256 bytes are cached per workspace (the cache
 * never changes results: it maps a word to exactly what merging gives). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "tok_internal.h"

#define CACHE_MAX_WORD 256
#define CACHE_SLOTS 65536
#define CACHE_MAX_BYTES ((size_t)8 << 20)

static int opt_string(tok_tokenizer *t, const tok_jv *m, const char *key, char **out, size_t *len) {
    const tok_jv *v = tok_jget(m, key);
    *out = NULL;
    *len = 0;
    if (tok_jnull(v)) return 0;
    if (v->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: model.%s must be a string, not %s", t->what, key, tok_jkind(v));
    if (!v->len) return 0;
    if (!(*out = tok_strndup(v->u.str, v->len))) return vc_errf(VC_ENOMEM, "out of memory");
    *len = v->len;
    return 0;
}

static int opt_bool(tok_tokenizer *t, const tok_jv *m, const char *key, int *out) {
    const tok_jv *v = tok_jget(m, key);
    *out = 0;
    if (tok_jnull(v)) return 0;
    if (v->type != TOK_J_TRUE && v->type != TOK_J_FALSE)
        return vc_errf(VC_EFORMAT, "%s: model.%s must be a boolean, not %s", t->what, key, tok_jkind(v));
    *out = v->type == TOK_J_TRUE;
    return 0;
}

/* Looks a merge part up; error names the merge. */
static int merge_part(tok_tokenizer *t, const char *s, size_t n, size_t rank, int32_t *id) {
    *id = tok_smap_get(&t->vocab, t->pool.s, s, n);
    if (*id < 0)
        return vc_errf(VC_EFORMAT, "%s: merge #%zu uses token '%.*s' that is not in the vocabulary", t->what, rank,
                       (int)(n > 100 ? 100 : n), s);
    return 0;
}

static int load_merges(tok_tokenizer *t, const tok_jv *merges) {
    if (tok_jnull(merges)) return 0;
    if (merges->type != TOK_J_ARR)
        return vc_errf(VC_EFORMAT, "%s: model.merges must be a list, not %s", t->what, tok_jkind(merges));
    int rc = tok_pmap_init(&t->merges, merges->len);
    if (rc) return rc;
    tok_buf cat = {0};
    for (uint32_t i = 0; i < merges->len; i++) {
        const tok_jv *m = &merges->u.kids[i];
        const char *a, *b;
        size_t al, bl;
        if (m->type == TOK_J_STR) {
            /* "a b": exactly one space, as Rust's convert_merges_to_hashmap requires */
            const char *sp = memchr(m->u.str, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->u.str))) {
                rc = vc_errf(VC_EFORMAT, "%s: merge #%u '%.100s' is not two tokens separated by one space", t->what, i,
                             m->u.str);
                goto out;
            }
            a = m->u.str;
            al = (size_t)(sp - a);
            b = sp + 1;
            bl = m->len - al - 1;
        } else if (m->type == TOK_J_ARR && m->len == 2 && m->u.kids[0].type == TOK_J_STR &&
                   m->u.kids[1].type == TOK_J_STR) {
            a = m->u.kids[0].u.str;
            al = m->u.kids[0].len;
            b = m->u.kids[1].u.str;
            bl = m->u.kids[1].len;
        } else {
            rc = vc_errf(VC_EFORMAT, "%s: merge #%u must be \"a b\" or [\"a\", \"b\"], not %s", t->what, i, tok_jkind(m));
            goto out;
        }
        int32_t ida, idb, idn;
        if ((rc = merge_part(t, a, al, i, &ida)) || (rc = merge_part(t, b, bl, i, &idb))) goto out;
        if (bl < t->cs_prefix_len) {
            rc = vc_errf(VC_EFORMAT, "%s: merge #%u: '%.*s' is shorter than continuing_subword_prefix", t->what, i,
                         (int)bl, b);
            goto out;
        }
        cat.len = 0;
        if ((rc = tok_buf_put(&cat, a, al)) || (rc = tok_buf_put(&cat, b + t->cs_prefix_len, bl - t->cs_prefix_len)))
            goto out;
        if ((rc = merge_part(t, cat.s, cat.len, i, &idn))) goto out;
        if ((rc = tok_pmap_put(&t->merges, (uint32_t)ida, (uint32_t)idb, i, idn))) goto out;
        if (t->cut_ok && bl >= 3 && memcmp(b, "\xE2\x96\x81", 3) == 0 && al) {
            size_t k = al - 1;
            while (k > 0 && ((unsigned char)a[k] & 0xC0) == 0x80) k--;
            uint32_t last;
            tok_u8dec(a + k, &last);
            int seen = 0;
            for (int j = 0; j < t->n_cut_not; j++) seen |= t->cut_not[j] == last;
            if (!seen && t->n_cut_not == 8) t->cut_ok = 0;
            else if (!seen) t->cut_not[t->n_cut_not++] = last;
        }
    }
out:
    tok_buf_free(&cat);
    return rc;
}

int tok_bpe_load(tok_tokenizer *t, const tok_jv *m) {
    if (!m || m->type != TOK_J_OBJ) return vc_errf(VC_EFORMAT, "%s: \"model\" must be an object, not %s", t->what, tok_jkind(m));
    const tok_jv *type = tok_jget(m, "type");
    if (!type || type->type != TOK_J_STR)
        return vc_errf(VC_EFORMAT, "%s: model.type is missing (only BPE models are supported)", t->what);
    if (strcmp(type->u.str, "BPE") != 0)
        return vc_errf(VC_EUNSUP, "%s: unsupported model type '%s' (only BPE is supported)", t->what, type->u.str);
    const tok_jv *dropout = tok_jget(m, "dropout");
    if (!tok_jnull(dropout) && !(dropout->type == TOK_J_NUM && dropout->u.num == 0.0))
        return vc_errf(VC_EUNSUP, "%s: BPE dropout is not supported (it makes encoding random)", t->what);
    int rc;
    if ((rc = opt_string(t, m, "continuing_subword_prefix", &t->cs_prefix, &t->cs_prefix_len)) ||
        (rc = opt_string(t, m, "end_of_word_suffix", &t->eow_suffix, &t->eow_len)) ||
        (rc = opt_bool(t, m, "fuse_unk", &t->fuse_unk)) || (rc = opt_bool(t, m, "byte_fallback", &t->byte_fallback)) ||
        (rc = opt_bool(t, m, "ignore_merges", &t->ignore_merges)))
        return rc;

    const tok_jv *vocab = tok_jget(m, "vocab");
    if (!vocab || vocab->type != TOK_J_OBJ)
        return vc_errf(VC_EFORMAT, "%s: model.vocab must be an object, not %s", t->what, tok_jkind(vocab));
    if ((rc = tok_smap_init(&t->vocab, vocab->len))) return rc;
    int32_t max_id = -1;
    for (uint32_t i = 0; i < vocab->len; i++) {
        long long id;
        if (!tok_jint(&vocab->u.kids[i], 0, TOK_MAX_ID - 1, &id))
            return vc_errf(VC_EFORMAT, "%s: model.vocab['%.100s'] must be an integer id below 2^24", t->what,
                           vocab->u.kids[i].key);
        if (id > max_id) max_id = (int32_t)id;
    }
    size_t nm = (size_t)max_id + 1;
        t->mid_off = malloc((nm ? nm : 1) * sizeof *t->mid_off);
    t->mid_len = malloc((nm ? nm : 1) * sizeof *t->mid_len);
    if (!t->mid_off || !t->mid_len) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i < nm; i++) t->mid_len[i] = -1;
    for (uint32_t i = 0; i < vocab->len; i++) {
        const tok_jv *e = &vocab->u.kids[i];
        int32_t id = (int32_t)e->u.num;
        uint32_t off;
        if ((rc = tok_pool_add(t, e->key, e->klen, &off))) return rc;
        if ((rc = tok_smap_put(&t->vocab, t->pool.s, off, e->klen, id))) return rc;
        t->mid_off[id] = off;
        t->mid_len[id] = (int32_t)e->klen;
        if ((rc = tok_set_id(t, id, off, (int32_t)e->klen))) return rc;
    }
    t->model_n = t->vocab.n;

    t->unk_id = -1;
    const tok_jv *unk = tok_jget(m, "unk_token");
    if (!tok_jnull(unk)) {
        if (unk->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: model.unk_token must be a string", t->what);
        t->unk_id = tok_smap_get(&t->vocab, t->pool.s, unk->u.str, unk->len);
        /* Rust only fails when an unknown character actually needs the unk token;
         * we fail at load, which is the same for every tokenizer HF can use. */
        if (t->unk_id < 0)
            return vc_errf(VC_EFORMAT, "%s: model.unk_token '%.100s' is not in the vocabulary", t->what, unk->u.str);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        static const char hx[] = "0123456789ABCDEF";
        name[0] = '<', name[1] = '0', name[2] = 'x', name[3] = hx[b >> 4], name[4] = hx[b & 15], name[5] = '>';
        t->byte_id[b] = tok_smap_get(&t->vocab, t->pool.s, name, 6);
    }
    if (!t->cs_prefix && !t->eow_suffix) {
        t->char_id = malloc(TOK_CHAR_TABLE * sizeof *t->char_id);
        if (!t->char_id) return vc_errf(VC_ENOMEM, "out of memory");
        for (size_t i = 0; i < TOK_CHAR_TABLE; i++) t->char_id[i] = -1;
        for (size_t i = 0; i < nm; i++) {
            if (t->mid_len[i] <= 0 || t->mid_len[i] > 4) continue;
            const char *s = t->pool.s + t->mid_off[i];
            uint32_t cp;
            if (tok_u8len((unsigned char)s[0]) != (size_t)t->mid_len[i]) continue;
            tok_u8dec(s, &cp);
            /* the vocabulary's own id for this string (a duplicate id keeps the map's choice) */
            if (cp < TOK_CHAR_TABLE && tok_smap_get(&t->vocab, t->pool.s, s, (size_t)t->mid_len[i]) == (int32_t)i)
                t->char_id[cp] = (int32_t)i;
        }
    }
    t->cut_ok = !t->ignore_merges && !t->cs_prefix && !t->eow_suffix && t->char_id && t->char_id[0x2581] >= 0;
    return load_merges(t, tok_jget(m, "merges"));
}

/* ---- encoding ---- */

static int32_t lookup_piece(const tok_tokenizer *t, tok_buf *tmp, const char *c, size_t cl, int first, int last) {
    if (t->char_id && !(!first && t->cs_prefix) && !(last && t->eow_suffix)) {
        uint32_t cp;
        tok_u8dec(c, &cp);
        if (cp < TOK_CHAR_TABLE) return t->char_id[cp];
        return tok_smap_get(&t->vocab, t->pool.s, c, cl);
    }
    if ((first || !t->cs_prefix) && (!last || !t->eow_suffix)) return tok_smap_get(&t->vocab, t->pool.s, c, cl);
    tmp->len = 0;
    if (!first && t->cs_prefix && tok_buf_put(tmp, t->cs_prefix, t->cs_prefix_len)) return INT32_MIN;
    if (tok_buf_put(tmp, c, cl)) return INT32_MIN;
    if (last && t->eow_suffix && tok_buf_put(tmp, t->eow_suffix, t->eow_len)) return INT32_MIN;
    return tok_smap_get(&t->vocab, t->pool.s, tmp->s, tmp->len);
}

static inline int mless(const tok_merge *a, const tok_merge *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(tok_merge *h, size_t *n, tok_merge m) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!mless(&m, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = m;
}

static tok_merge heap_pop(tok_merge *h, size_t *n) {
    tok_merge top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        const tok_merge *best = &last;
        if (l < m && mless(&h[l], best)) s = l, best = &h[l];
        if (r < m && mless(&h[r], best)) s = r;
        if (s == i) break;
        h[i] = h[s];
        i = s;
    }
    if (m) h[i] = last;
    return top;
}

/* Word::add */
static int sym_add(tok_ws *ws, size_t *ns, int32_t id, uint32_t len) {
    if (vc_grow((void **)&ws->syms, &ws->syms_cap, *ns + 1, sizeof *ws->syms)) return VC_ENOMEM;
    tok_sym *s = &ws->syms[*ns];
    s->id = id;
    s->len = len;
    s->prev = *ns ? (int32_t)*ns - 1 : -1;
    s->next = -1;
    if (*ns) ws->syms[*ns - 1].next = (int32_t)*ns;
    (*ns)++;
    return 0;
}

static int merge_word(const tok_tokenizer *t, tok_ws *ws, const char *w, size_t n, size_t *nsyms) {
    size_t ns = 0;
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    tok_buf tmp = {0};
    int rc = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = tok_u8len((unsigned char)w[i]);
        int first = i == 0, last = i + cl >= n;
        int32_t id = lookup_piece(t, &tmp, w + i, cl, first, last);
        if (id == INT32_MIN) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto out;
        }
        if (id >= 0) {
            if (unk_id >= 0) {
                if ((rc = sym_add(ws, &ns, unk_id, unk_len))) goto out;
                unk_id = -1;
            }
            if ((rc = sym_add(ws, &ns, id, (uint32_t)cl))) goto out;
            i += cl;
            continue;
        }
        if (t->byte_fallback) {
            /* the bytes of the looked-up string (with prefix/suffix), all or none */
            const char *s = w + i;
            size_t sl = cl;
            if ((!first && t->cs_prefix) || (last && t->eow_suffix)) {
                s = tmp.s;
                sl = tmp.len;
            }
            int all = 1;
            for (size_t k = 0; k < sl; k++)
                if (t->byte_id[(unsigned char)s[k]] < 0) all = 0;
            if (all) {
                /* Rust does not flush a pending unk here; neither do we */
                for (size_t k = 0; k < sl; k++)
                    if ((rc = sym_add(ws, &ns, t->byte_id[(unsigned char)s[k]], 1))) goto out;
                i += cl;
                continue;
            }
        }
        if (t->unk_id >= 0) {
            if (unk_id >= 0 && t->fuse_unk) {
                unk_len += (uint32_t)cl;
            } else {
                if (unk_id >= 0 && (rc = sym_add(ws, &ns, unk_id, unk_len))) goto out;
                unk_id = t->unk_id;
                unk_len = (uint32_t)cl;
            }
        }
        i += cl;
    }
    if (unk_id >= 0 && (rc = sym_add(ws, &ns, unk_id, unk_len))) goto out;

    /* merge_all */
    if (ns > 1 && t->merges.n) {
        if ((rc = vc_grow((void **)&ws->heap, &ws->heap_cap, 2 * ns + 8, sizeof *ws->heap))) goto out;
        tok_sym *sy = ws->syms;
        size_t hn = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            const tok_pslot *p = tok_pmap_get(&t->merges, (uint32_t)sy[i].id, (uint32_t)sy[i + 1].id);
            if (p) heap_push(ws->heap, &hn, (tok_merge){p->rank, (uint32_t)i, p->id});
        }
        while (hn) {
            tok_merge top = heap_pop(ws->heap, &hn);
            tok_sym *cur = &sy[top.pos];
            if (cur->len == 0 || cur->next < 0) continue;
            tok_sym *right = &sy[cur->next];
            const tok_pslot *p = tok_pmap_get(&t->merges, (uint32_t)cur->id, (uint32_t)right->id);
            if (!p || p->id != top.id) continue; /* stale entry */
            cur->id = top.id;
            cur->len += right->len;
            cur->next = right->next;
            right->len = 0;
            if (cur->next >= 0) sy[cur->next].prev = (int32_t)top.pos;
            /* each merge removes a symbol and adds at most two entries: 2*ns bounds the heap */
            if (hn + 2 > ws->heap_cap) {
                if ((rc = vc_grow((void **)&ws->heap, &ws->heap_cap, hn + 2, sizeof *ws->heap))) goto out;
            }
            if (cur->prev >= 0) {
                const tok_pslot *q = tok_pmap_get(&t->merges, (uint32_t)sy[cur->prev].id, (uint32_t)cur->id);
                if (q) heap_push(ws->heap, &hn, (tok_merge){q->rank, (uint32_t)cur->prev, q->id});
            }
            if (cur->next >= 0) {
                const tok_pslot *q = tok_pmap_get(&t->merges, (uint32_t)cur->id, (uint32_t)sy[cur->next].id);
                if (q) heap_push(ws->heap, &hn, (tok_merge){q->rank, top.pos, q->id});
            }
        }
    }
    *nsyms = ns;
out:
    tok_buf_free(&tmp);
    return rc;
}

/* ---- cache ---- */

static void cache_clear(tok_ws *ws) {
    for (size_t i = 0; i < ws->cache_cap; i++) ws->cache[i].nids = UINT32_MAX;
    ws->cache_n = 0;
    ws->cache_keys.len = 0;
    ws->cache_ids_n = 0;
}

static const tok_cslot *cache_get(tok_ws *ws, const char *w, size_t n, uint64_t h) {
    if (!ws->cache) return NULL;
    size_t j = h & (ws->cache_cap - 1);
    while (ws->cache[j].nids != UINT32_MAX) {
        const tok_cslot *c = &ws->cache[j];
        if (c->h == h && c->klen == n && memcmp(ws->cache_keys.s + c->koff, w, n) == 0) return c;
        j = (j + 1) & (ws->cache_cap - 1);
    }
    return NULL;
}

static void cache_put(tok_ws *ws, const char *w, size_t n, uint64_t h, const int32_t *ids, size_t nids) {
    if (!ws->cache) {
        ws->cache = malloc(CACHE_SLOTS * sizeof *ws->cache);
        if (!ws->cache) return; /* the cache is optional */
        ws->cache_cap = CACHE_SLOTS;
        cache_clear(ws);
    }
    if ((ws->cache_n + 1) * 2 > ws->cache_cap || ws->cache_keys.len + n > CACHE_MAX_BYTES) cache_clear(ws);
    if (ws->cache_ids_n + nids > ws->cache_ids_cap &&
        vc_grow((void **)&ws->cache_ids, &ws->cache_ids_cap, ws->cache_ids_n + nids, sizeof *ws->cache_ids))
        return;
    size_t koff = ws->cache_keys.len;
    if (tok_buf_put(&ws->cache_keys, w, n)) return;
    memcpy(ws->cache_ids + ws->cache_ids_n, ids, nids * sizeof *ids);
    size_t j = h & (ws->cache_cap - 1);
    while (ws->cache[j].nids != UINT32_MAX) j = (j + 1) & (ws->cache_cap - 1);
    ws->cache[j] = (tok_cslot){h, (uint32_t)koff, (uint32_t)n, (uint32_t)ws->cache_ids_n, (uint32_t)nids};
    ws->cache_ids_n += nids;
    ws->cache_n++;
}

static int bpe_piece(const tok_tokenizer *t, tok_ws *ws, const char *w, size_t n, tok_ids *out) {
    uint64_t h = 0;
    if (n < CACHE_MAX_WORD) {
        h = tok_hash(w, n);
        const tok_cslot *c = cache_get(ws, w, n, h);
        if (c) return tok_ids_append(out, ws->cache_ids + c->ioff, c->nids);
    }
    size_t ns = 0;
    int rc = merge_word(t, ws, w, n, &ns);
    if (rc) return rc;
    size_t start = out->n;
    for (int32_t i = ns ? 0 : -1; i >= 0; i = ws->syms[i].next)
        if ((rc = tok_ids_push(out, ws->syms[i].id))) return rc;
    if (n < CACHE_MAX_WORD) cache_put(ws, w, n, h, out->ids + start, out->n - start);
    return 0;
}

/* May the word be cut before the U+2581 at byte p (see the file comment)? */
static int cut_before(const tok_tokenizer *t, const char *w, size_t p) {
    size_t k = p - 1;
    while (k > 0 && ((unsigned char)w[k] & 0xC0) == 0x80) k--;
    uint32_t prev;
    tok_u8dec(w + k, &prev);
    if (prev >= TOK_CHAR_TABLE || t->char_id[prev] < 0) return 0;
    for (int j = 0; j < t->n_cut_not; j++)
        if (t->cut_not[j] == prev) return 0;
    return 1;
}

int tok_bpe_word(const tok_tokenizer *t, tok_ws *ws, const char *w, size_t n, tok_ids *out) {
    if (!n) return 0;
    if (t->ignore_merges) {
        int32_t id = tok_smap_get(&t->vocab, t->pool.s, w, n);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (!t->cut_ok || n < 4) return bpe_piece(t, ws, w, n, out);
    size_t start = 0, p = 1;
    while (p + 3 <= n) {
        const char *f = memmem(w + p, n - p, "\xE2\x96\x81", 3);
        if (!f) break;
        p = (size_t)(f - w);
        if (cut_before(t, w, p)) {
            int rc = bpe_piece(t, ws, w + start, p - start, out);
            if (rc) return rc;
            start = p;
        }
        p += 3;
    }
    return bpe_piece(t, ws, w + start, n - start, out);
}
