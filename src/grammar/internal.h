/* grammar internals shared by matcher.c (the Earley recognizer) and cache.c (the per-grammar cache of
 * matcher states, byte transitions and token masks). Front ends and the engine use grammar.h only. */
#ifndef VLLMC_GRAMMAR_INTERNAL_H
#define VLLMC_GRAMMAR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "grammar/grammar.h"

typedef struct {
    uint32_t pos;    /* the dot: before g->pos[pos] */
    uint32_t origin; /* the set where this alternative started */
} gitem;

/* set_sig values (besides a state id >= 0) */
#define GRAM_SIG_NONE (-1) /* a set too large (or a cache too full) to name: masks from it are walked */

struct gram_matcher {
    const gram_grammar *g;
    gitem *items;
    size_t n_items, cap_items;
    size_t *set_start; /* [n_sets + 1] */
    gram_bytes *set_next; /* [n_sets] the bytes some item of the set can scan: a rejected byte costs O(1) */
    size_t *set_nwait;    /* [n_sets] SMALL_SET: not indexed; else the count of its entries in wkey */
    uint64_t *wkey;       /* [cap_wkey] for an indexed set k, from set_start[k]: (rule << 32 | item
                           * offset) of each item that waits on a rule, sorted */
    size_t cap_wkey;
    size_t n_sets, cap_sets;
    uint32_t *h_stamp;   /* [h_cap] the set stamp that wrote the slot */
    uint32_t *h_idx;     /* [h_cap] item index relative to the set's start */
    size_t h_cap;        /* a power of two */
    uint32_t *pred;      /* [n_rules] the stamp of the last set in which the rule was predicted */
    uint32_t stamp;
    size_t limit;        /* items per set; 16 times this bounds the completion work per set */
    /* the cache's names of the sets (cache.c): set_sig[k] for k < n_sig is set k's state id (or
     * GRAM_SIG_NONE), valid while sig_gen equals the cache's generation */
    int32_t *set_sig;    /* [cap_sets] */
    size_t n_sig;
    uint64_t sig_gen;
    int use_cache;       /* 0: gram_matcher_mask always walks the matcher (tests, benchmarks) */
};

/* The cache of a grammar (one per gram_grammar, created by gram_build, freed with it). */
int gram_cache_new(gram_cache **out);
void gram_cache_free(gram_cache *c);

/* The plain mask walk (vocab.c): the trie walked by feeding the matcher, no cache. */
int gram_mask_walk(gram_matcher *m, const gram_vocab *v, uint32_t *mask);

/* The vocabulary's trie, for cache.c's walk (vocab.c owns it). */
struct gram_vocab {
    int n_tokens;
    uint64_t uid;        /* unique per vocabulary made in this process: masks cached for it say so */
    uint32_t n_nodes;
    unsigned char *byte; /* [n_nodes] the edge byte into the node (0 for the root) */
    uint32_t *depth;     /* [n_nodes] bytes from the root */
    uint32_t *end;       /* [n_nodes] one past the node's subtree */
    uint32_t *tok_first; /* [n_nodes + 1] */
    int32_t *tok_ids;    /* [tokens of length > 0] */
    uint32_t max_depth;
};

/* Set the mask bits of the tokens that end at trie node i; returns how many. */
static inline int gram_vocab_mark(const gram_vocab *v, uint32_t i, uint32_t *mask) {
    for (uint32_t j = v->tok_first[i]; j < v->tok_first[i + 1]; j++) {
        int32_t t = v->tok_ids[j];
        mask[t >> 5] |= 1u << (t & 31);
    }
    return (int)(v->tok_first[i + 1] - v->tok_first[i]);
}

#endif
