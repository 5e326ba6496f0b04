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
    size_t *set_nwait;    /* [n_sets] SMALL_SET: not indexed; UNINDEXED: not yet; else its entries in wkey */
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
    /* and their floored names (cache.c, floor_name): fl_sig[j] for fl_f <= j < fl_f + n_fl is set j's name
     * with every origin below set fl_f made one empty set, valid while fl_gen equals the generation */
    int32_t *fl_sig;     /* [cap_sets] */
    size_t fl_f, n_fl;
    uint64_t fl_gen;
    int use_cache;       /* 0: gram_matcher_mask always walks the matcher (tests, benchmarks) */
};

/* The cache of a grammar (one per gram_grammar, created by gram_build, freed with it). */
int gram_cache_new(gram_cache **out);
void gram_cache_free(gram_cache *c);

/* Make dst a "floored" copy of src's sets f.. (f >= 1): their items with origins rebased so that src's
 * set f is dst's set 1, over an empty set 0 that stands for every set below f (the origin of the items
 * from there: completing one of them advances nothing). dst then behaves as src on every input that
 * completes no item from below the floor (cache.c, find_floor, says when that is). */
int gram_matcher_load_floor(gram_matcher *dst, const gram_matcher *src, size_t f);

/* The plain mask walk (vocab.c): the trie walked by feeding the matcher, no cache. */
int gram_mask_walk(gram_matcher *m, const gram_vocab *v, uint32_t *mask);

/* Vocabulary slices (vocab.c, after llguidance's): a token is "string text of l code points" when its
 * bytes are l - 1 whole code points of P, then a whole one or a proper prefix of one, where P is every
 * code point a JSON string holds unescaped (U+0020..U+10FFFF but '"', '\\' and the surrogates). For
 * l <= GRAM_SLICE_MAX, slice[(l - 1) * words ..] marks the tokens of 1..l code points; every other
 * token of length > 0 is in the trie `rest`. A state that accepts every string of P of up to l code
 * points and no longer one (cache.c, facts) allows exactly slice l of them, and walks only `rest`. */
#define GRAM_SLICE_MAX 32

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
    unsigned char *text; /* NULL (rest's) or every token's bytes: token i is text[text_off[i] .. text_off[i + 1]) */
    uint32_t *text_off;  /* [n_tokens + 1] */
    uint32_t *slice;     /* NULL (a vocabulary without slices: rest's own) or [GRAM_SLICE_MAX][(n_tokens + 31) / 32] */
    int slice_count[GRAM_SLICE_MAX]; /* tokens marked in each */
    struct gram_vocab *rest; /* the tokens in no slice, as a trie of the same ids (NULL with slice) */
    struct gram_vocab_runs *runs; /* NULL (rest's) or the runs made so far (gram_vocab_run) */
};

/* A vocabulary's tokens seen as runs of one set of ASCII bytes (one per character class that grammars'
 * states loop on, as cache.c finds them: an email's local part, a regex's [a-z0-9]): len[t] is l when token t
 * is l <= GRAM_SLICE_MAX bytes of the set, else 0; the tokens that begin with 1..GRAM_SLICE_MAX bytes of
 * the set and then leave it are grouped by the byte that leaves, tok[first[b] .. first[b + 1]) with
 * at[] the bytes before it; tok[first[256] .. first[257]) are those with more than GRAM_SLICE_MAX bytes
 * of the set first. (Tokens that begin outside the set are found through the trie's root.) */
typedef struct {
    uint32_t set[4];     /* the bytes (bit b of set[b / 32]; all below 0x80) */
    uint8_t *len;        /* [n_tokens] */
    uint32_t first[258];
    int32_t *tok;        /* [first[257]] */
    uint8_t *at;         /* [first[257]] */
    int n_len;           /* tokens with a len */
    size_t bytes;        /* memory held */
    uint32_t *slice[GRAM_SLICE_MAX]; /* slice[a - 1]: NULL or [(n_tokens + 31) / 32], the tokens of 1..a bytes of
                                      * the set as a bitset (gram_vocab_run_slice)... */
    int slice_count[GRAM_SLICE_MAX]; /* ...and how many */
} gram_run;
/* The run of set, with its index: made on first use and kept with the vocabulary (under its own lock)
 * for every grammar. Only the first GRAM_VOCAB_RUN_TABLES runs that at least `least` tokens are made of
 * keep their tables (len NULL: not worth them, or no room), of at most GRAM_VOCAB_RUNS sets (then
 * *out is NULL). */
#define GRAM_VOCAB_RUNS 64
#define GRAM_VOCAB_RUN_TABLES 16
#define GRAM_RUN_MIN_SHARE 150 /* a run that fewer than 1/150 of the tokens (1,000 of 150k) are made of is not
                                * worth its table: the walk is cheap */
int gram_vocab_run(const gram_vocab *v, const uint32_t set[4], int least, const gram_run **out, int *index);
/* The run of set when at least `least` tokens are made of its bytes and it has its table, else *out NULL:
 * what cache.c's run searches use. The count is made once per vocabulary, not per grammar: a set made
 * already is found by its key, and the first GRAM_VOCAB_FEW sets counted short of `least` are kept with
 * their counts (a name's mask is made once per grammar, so a count kept per name would not be read again,
 * and each fresh grammar's names counted the same sets anew, ~5-20 us each). */
#define GRAM_VOCAB_FEW 64
int gram_vocab_run_of(const gram_vocab *v, const uint32_t set[4], int least, const gram_run **out, int *index);
/* Write into mask (the whole of it) the tokens of 1..a bytes of run number index's set (a >= 1; from
 * GRAM_SLICE_MAX on, all of its len); returns how many. The bitset of each (run, a) is the same for every
 * grammar: made by a scan of len[] the first time (~180 k instructions for 150k tokens), then kept with
 * the run and copied, within GRAM_RUN_SLICE_BYTES per vocabulary. */
#define GRAM_RUN_SLICE_BYTES (4u << 20)
int gram_vocab_run_slice(const gram_vocab *v, int index, int a, uint32_t *mask);
/* (The runs of the JSON Schema email format, its local part's bytes and a domain label's with and without
 * '-', are made with the vocabulary: ~1 ms each for 150k tokens, where the first email of a process would
 * pay them.) */

/* The tokens that hold a byte of set before their last byte, as a trie of the same ids (cache.c's floored
 * masks walk them from the real state: set is what closes a floor's context, '"' for a JSON string). Made
 * on first use (the quote's with the vocabulary) and kept with it, for at most GRAM_VOCAB_EXITS sets;
 * *out NULL when more than n_tokens / GRAM_EXIT_SHARE tokens hold one (a byte of the set that many hold
 * is refused at once, without a look at the tokens), or no room is left. */
#define GRAM_VOCAB_EXITS 16
#define GRAM_EXIT_SHARE 32
int gram_vocab_exits(const gram_vocab *v, const uint32_t set[8], const gram_vocab **out);

/* Set the mask bits of the tokens that end at trie node i; returns how many. */
static inline int gram_vocab_mark(const gram_vocab *v, uint32_t i, uint32_t *mask) {
    for (uint32_t j = v->tok_first[i]; j < v->tok_first[i + 1]; j++) {
        int32_t t = v->tok_ids[j];
        mask[t >> 5] |= 1u << (t & 31);
    }
    return (int)(v->tok_first[i + 1] - v->tok_first[i]);
}

#endif
