/* vocab: the tokens' byte strings in a trie, and the allowed-token mask.
 *
 * The trie is one flat array of nodes in depth-first preorder (built from the tokens sorted by
 * their bytes), so a node's subtree is the range [i, end[i]) and its first child is i + 1: the mask
 * walk needs no stack, and skipping a rejected subtree is one jump. Node 0 is the root (the empty
 * string). A node ends the tokens tok_ids[tok_first[i] .. tok_first[i + 1]) (several when tokens
 * share their bytes).
 *
 * The plain mask walk (gram_mask_walk) visits the nodes in order from the matcher's state, feeding
 * each node's byte after rolling back to its parent's depth, and jumps over the subtree of a
 * rejected byte. gram_matcher_mask (cache.c) walks the same trie through the grammar's cache of
 * byte transitions instead, and keeps the masks it made. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "grammar/grammar.h"
#include "grammar/internal.h"

/* the vocabularies made in this process, for gram_vocab.uid */
static atomic_ullong vocab_uids;


typedef struct {
    const unsigned char *const *tok;
    const size_t *len;
} sort_ctx;

static int cmp_tok(const void *a, const void *b, void *arg) {
    const sort_ctx *c = arg;
    int x = *(const int32_t *)a, y = *(const int32_t *)b;
    size_t lx = c->len[x], ly = c->len[y], l = lx < ly ? lx : ly;
    int d = l ? memcmp(c->tok[x], c->tok[y], l) : 0;
    if (d) return d;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

void gram_vocab_free(gram_vocab *v) {
    if (!v) return;
    free(v->byte);
    free(v->depth);
    free(v->end);
    free(v->tok_first);
    free(v->tok_ids);
    free(v);
}

int gram_vocab_size(const gram_vocab *v) { return v->n_tokens; }

int gram_vocab_new(const unsigned char *const *tok, const size_t *len, int n, gram_vocab **out) {
    *out = NULL;
    if (n < 0) return vc_errf(VC_EINVAL, "grammar vocab: negative size");
    gram_vocab *v = calloc(1, sizeof *v);
    int32_t *ids = malloc(((size_t)n + 1) * sizeof *ids);
    uint32_t *stack = NULL;
    if (!v || !ids) goto oom;
    v->n_tokens = n;
    v->uid = atomic_fetch_add(&vocab_uids, 1) + 1;
    /* nodes: at most 1 + the total bytes of all tokens */
    size_t total = 1, maxlen = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!len[i]) continue;
        if (vc_ckd_add_size(total, len[i], &total) || total >= UINT32_MAX) {
            free(ids);
            gram_vocab_free(v);
            return vc_errf(VC_EINVAL, "grammar vocab: too many bytes");
        }
        if (len[i] > maxlen) maxlen = len[i];
        ids[m++] = i;
    }
    sort_ctx sc = {tok, len};
    qsort_r(ids, (size_t)m, sizeof *ids, cmp_tok, &sc);
    v->byte = malloc(total);
    v->depth = malloc(total * sizeof *v->depth);
    v->end = malloc(total * sizeof *v->end);
    v->tok_first = calloc(total + 1, sizeof *v->tok_first);
    stack = malloc((maxlen + 1) * sizeof *stack); /* the node at each depth of the current path */
    if (!v->byte || !v->depth || !v->end || !v->tok_first || !stack) goto oom;
    /* Insert in sorted order: a token shares with the current path its common prefix with the
     * previous token, and the rest become new nodes; a node's subtree ends where the next node at
     * its depth or above begins. */
    uint32_t nn = 1;
    v->byte[0] = 0;
    v->depth[0] = 0;
    stack[0] = 0;
    size_t path = 0; /* depth of the current path */
    const unsigned char *prev = NULL;
    for (int t = 0; t < m; t++) {
        const unsigned char *s = tok[ids[t]];
        size_t l = len[ids[t]], c = 0;
        while (prev && c < l && c < path && s[c] == prev[c]) c++;
        for (size_t d = path; d > c; d--) v->end[stack[d]] = nn;
        for (size_t d = c; d < l; d++) {
            v->byte[nn] = s[d];
            v->depth[nn] = (uint32_t)(d + 1);
            stack[d + 1] = nn++;
        }
        path = l;
        prev = s;
        v->tok_first[stack[l]]++; /* counted now, turned into offsets below */
    }
    for (size_t d = path + 1; d-- > 0;) v->end[stack[d]] = nn;
    v->n_nodes = nn;
    v->max_depth = (uint32_t)maxlen;
    /* token lists: counts to offsets; the sorted order puts a node's tokens consecutively */
    uint32_t acc = 0;
    for (uint32_t i = 0; i < nn; i++) {
        uint32_t c = v->tok_first[i];
        v->tok_first[i] = acc;
        acc += c;
    }
    v->tok_first[nn] = acc;
    v->tok_ids = ids; /* ids is in trie preorder already: equal strings adjacent, prefixes first */
    free(stack);
    *out = v;
    return 0;
oom:
    free(ids);
    free(stack);
    gram_vocab_free(v);
    return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
}

int gram_mask_walk(gram_matcher *m, const gram_vocab *v, uint32_t *mask) {
    memset(mask, 0, ((size_t)v->n_tokens + 31) / 32 * sizeof *mask);
    size_t base = gram_matcher_consumed(m), cur = 0; /* cur: bytes fed beyond base */
    int count = 0, rc = 0;
    for (uint32_t i = 1; i < v->n_nodes;) {
        size_t d = v->depth[i];
        if (cur >= d) {
            gram_matcher_rollback(m, cur - d + 1);
            cur = d - 1;
        }
        rc = gram_matcher_feed_byte(m, v->byte[i]);
        if (rc == 1) {
            i = v->end[i];
            continue;
        }
        if (rc < 0) break;
        cur = d;
        count += gram_vocab_mark(v, i, mask);
        i++;
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc < 0 ? rc : count;
}
