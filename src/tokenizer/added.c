/* added: the "added_tokens" of tokenizer.json (AddedVocabulary in Rust).
 *
 * Ids: as Rust's add_tokens, a token whose content is already an added token
 * or a model vocabulary entry keeps that id; a new one gets vocab_size (or
 * max added id + 1 once past it). The "id" field in the file is what Rust
 * would assign for every tokenizer it saved itself. A repeated content keeps
 * its first id; its flags are those of the last entry; special if any entry
 * is special. Empty contents are ignored.
 *
 * Matching: two byte tries, one over the raw text for non-normalized tokens
 * and one over normalized text for normalized tokens (whose patterns are the
 * normalized contents). Both are leftmost-longest and non-overlapping like
 * aho-corasick's LeftmostLongest find_iter; single_word, lstrip and rstrip are
 * then applied exactly as in AddedVocabulary::find_matches (a rejected
 * single_word match still consumes its text). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "tok_internal.h"

static int flag(const tok_jv *o, const char *k, int dflt) {
    const tok_jv *v = tok_jget(o, k);
    if (!v || (v->type != TOK_J_TRUE && v->type != TOK_J_FALSE)) return dflt;
    return v->type == TOK_J_TRUE;
}

int tok_added_add(tok_tokenizer *t, const char *c, size_t n, const tok_added *flags) {
    if (!n) return 0; /* Rust ignores empty contents */
    int rc;
    int32_t id = tok_smap_get(&t->added_map, t->pool.s, c, n);
    if (id >= 0) {
        /* known content: the new flags replace the old ones; special is sticky */
        for (size_t k = 0; k < t->n_added; k++) {
            if (t->added[k].id != id) continue;
            uint8_t was_special = t->added[k].special;
            tok_added a = *flags;
            a.off = t->added[k].off;
            a.len = t->added[k].len;
            a.id = id;
            a.special |= was_special;
            t->added[k] = a;
            if (a.special) t->id_flags[id] |= TOK_F_SPECIAL;
        }
        return 0;
    }
    id = tok_smap_get(&t->vocab, t->pool.s, c, n);
    if (id < 0) {
        /* AddedVocabulary::add_tokens: vocab_size, or past the largest added id */
        int32_t max = -1;
        for (size_t k = 0; k < t->n_added; k++)
            if (t->added[k].id > max) max = t->added[k].id;
        size_t vs = t->model_n;
        if (max < 0) id = (int32_t)vs;
        else if ((size_t)max >= vs || vs == 0) id = max + 1;
        else id = (int32_t)vs;
        if (id < 0 || id >= TOK_MAX_ID) return vc_errf(VC_EFORMAT, "%s: too many added tokens", t->what);
    }
    if (t->n_added == t->cap_added) {
        size_t nc = t->cap_added ? t->cap_added * 2 : 64;
        tok_added *na = realloc(t->added, nc * sizeof *na);
        if (!na) return vc_errf(VC_ENOMEM, "out of memory");
        t->added = na;
        t->cap_added = nc;
    }
    tok_added a = *flags;
    if ((rc = tok_pool_add(t, c, n, &a.off))) return rc;
    a.len = (uint32_t)n;
    a.id = id;
    if ((rc = tok_smap_put(&t->added_map, t->pool.s, a.off, a.len, id))) return rc;
    if ((rc = tok_set_id(t, id, a.off, (int32_t)a.len))) return rc;
    t->id_flags[id] |= (uint8_t)(TOK_F_ADDED | (a.special ? TOK_F_SPECIAL : 0));
    t->added[t->n_added++] = a;
    return 0;
}

int tok_added_flags(const tok_jv *o, tok_added *a) {
    memset(a, 0, sizeof *a);
    a->special = (uint8_t)flag(o, "special", 0);
    a->normalized = (uint8_t)flag(o, "normalized", !a->special);
    a->lstrip = (uint8_t)flag(o, "lstrip", 0);
    a->rstrip = (uint8_t)flag(o, "rstrip", 0);
    a->single_word = (uint8_t)flag(o, "single_word", 0);
    return 0;
}

int tok_added_load(tok_tokenizer *t, const tok_jv *arr) {
    if (tok_jnull(arr)) return 0;
    if (arr->type != TOK_J_ARR) return vc_errf(VC_EFORMAT, "%s: added_tokens must be a list, not %s", t->what, tok_jkind(arr));
    for (uint32_t i = 0; i < arr->len; i++) {
        const tok_jv *o = &arr->u.kids[i];
        const tok_jv *c = tok_jget(o, "content");
        if (o->type != TOK_J_OBJ || !c || c->type != TOK_J_STR)
            return vc_errf(VC_EFORMAT, "%s: added_tokens[%u] must be an object with a string \"content\"", t->what, i);
        /* The file's "id" is what Rust's add_tokens assigns to every file it saved;
         * like Rust we recompute ids rather than trust it. */
        tok_added a;
        tok_added_flags(o, &a);
        int rc = tok_added_add(t, c->u.str, c->len, &a);
        if (rc) return rc;
    }
    return 0;
}

/* ---- tries ---- */

static int trie_node(tok_trie *tr, unsigned char byte) {
    if (tr->n == tr->cap) {
        size_t nc = tr->cap ? tr->cap * 2 : 256;
        tok_tnode *nn = realloc(tr->nodes, nc * sizeof *nn);
        if (!nn) return -1;
        tr->nodes = nn;
        tr->cap = nc;
    }
    tr->nodes[tr->n] = (tok_tnode){-1, -1, -1, byte};
    return (int)tr->n++;
}

static int trie_insert(tok_trie *tr, const char *s, size_t n, int32_t idx) {
    if (!n) return 0;
    int32_t cur = tr->root[(unsigned char)s[0]];
    if (cur < 0) {
        if ((cur = trie_node(tr, (unsigned char)s[0])) < 0) return VC_ENOMEM;
        tr->root[(unsigned char)s[0]] = cur;
    }
    for (size_t i = 1; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        int32_t c = tr->nodes[cur].child;
        while (c >= 0 && tr->nodes[c].byte != b) c = tr->nodes[c].sibling;
        if (c < 0) {
            if ((c = trie_node(tr, b)) < 0) return VC_ENOMEM;
            tr->nodes[c].sibling = tr->nodes[cur].child;
            tr->nodes[cur].child = c;
        }
        cur = c;
    }
    /* the first token with this pattern wins (special tokens come first, like Rust) */
    if (tr->nodes[cur].match < 0) tr->nodes[cur].match = idx;
    return 0;
}

void tok_trie_free(tok_trie *tr) {
    free(tr->nodes);
    memset(tr, 0, sizeof *tr);
    for (int i = 0; i < 256; i++) tr->root[i] = -1;
}

int tok_added_build_tries(tok_tokenizer *t) {
    for (int i = 0; i < 256; i++) t->trie_raw.root[i] = t->trie_norm.root[i] = -1;
    tok_buf nb = {0};
    int rc = 0;
    tok_ws *ws = NULL;
    /* special tokens first, then the others (Rust chains special_tokens and added_tokens) */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < t->n_added; k++) {
            tok_added *a = &t->added[k];
            if ((pass == 0) != (a->special != 0)) continue;
            const char *s = t->pool.s + a->off;
            if (!a->normalized || !t->n_norms) {
                if ((rc = trie_insert(a->normalized ? &t->trie_norm : &t->trie_raw, s, a->len, (int32_t)k))) goto out;
                continue;
            }
            if (!ws && !(ws = tok_ws_acquire(t))) {
                rc = vc_errf(VC_ENOMEM, "out of memory");
                goto out;
            }
            int lead;
            if ((rc = tok_normalize(t, ws, s, a->len, &nb, &lead))) goto out;
            if ((rc = trie_insert(&t->trie_norm, nb.s, nb.len, (int32_t)k))) goto out;
        }
    }
out:
    if (rc == VC_ENOMEM) vc_errf(VC_ENOMEM, "out of memory");
    if (ws) tok_ws_release(t, ws);
    tok_buf_free(&nb);
    return rc;
}

/* ---- matching ---- */

static uint32_t last_char(const char *s, size_t end) {
    size_t i = end;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i > 0) i--;
    uint32_t cp;
    tok_u8dec(s + i, &cp);
    return cp;
}

int tok_added_split(const tok_tokenizer *t, const tok_trie *tr, const char *s, size_t n, tok_split_cb cb, void *ctx) {
    size_t start_offset = 0, i = 0;
    int rc;
    while (i < n) {
        int32_t node = tr->root[(unsigned char)s[i]];
        if (node < 0) {
            i++;
            continue;
        }
        /* longest match starting at i */
        int32_t best = -1;
        size_t best_end = 0, j = i + 1;
        for (;;) {
            if (tr->nodes[node].match >= 0) {
                best = tr->nodes[node].match;
                best_end = j;
            }
            if (j >= n) break;
            int32_t c = tr->nodes[node].child;
            unsigned char b = (unsigned char)s[j];
            while (c >= 0 && tr->nodes[c].byte != b) c = tr->nodes[c].sibling;
            if (c < 0) break;
            node = c;
            j++;
        }
        if (best < 0) {
            i++;
            continue;
        }
        const tok_added *a = &t->added[best];
        size_t start = i, stop = best_end;
        i = best_end; /* non-overlapping: the search resumes after this match */
        if (a->single_word) {
            int start_space = start == 0 || !tok_is_word(last_char(s, start));
            uint32_t next = 0;
            if (stop < n) tok_u8dec(s + stop, &next);
            int stop_space = stop == n || !tok_is_word(next);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t k = ns - 1;
                while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                uint32_t cp;
                tok_u8dec(s + k, &cp);
                if (!tok_is_space(cp)) break;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t cp;
                size_t k = tok_u8dec(s + stop, &cp);
                if (!tok_is_space(cp)) break;
                stop += k;
            }
        }
        if (start_offset < start && (rc = cb(ctx, start_offset, start, -1))) return rc;
        if ((rc = cb(ctx, start, stop, a->id))) return rc;
        start_offset = stop;
    }
    if (start_offset < n && (rc = cb(ctx, start_offset, n, -1))) return rc;
    return 0;
}
