/* cache internals: what cache.c (names, transitions, walks, the mask cache), facts.c (how a name treats
 * strings of one byte set; floors) and slices.c (masks made from the vocabulary's slices, runs and floors)
 * share. One gram_cache per grammar, behind its mutex: every function here runs with it held, and the
 * names it deals in mean something only within one generation of the cache (gen). */
#ifndef VLLMC_GRAMMAR_CACHE_H
#define VLLMC_GRAMMAR_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "grammar/grammar.h"
#include "grammar/internal.h"

#define GRAM_CACHE_BYTES ((size_t)64 << 20)
#define SIG_MAX_ITEMS 4096
#define SELF_CODE 0xffffffffu
#define T_UNKNOWN (-2) /* trans[] entries besides a state id */
#define T_REJECT (-3)

#define KEY_BLOCK 65536 /* key entries per block (more than SIG_MAX_ITEMS + 1) */
#define ST_BLOCK 4096   /* names per block */
#define UTF8_RANGES 36 /* facts.c's ranges of UTF-8 bytes: 4 per form (the lead byte, its continuations) */

typedef struct {
    uint64_t hash;
    size_t key_off;
    uint32_t key_len;
    int32_t mask_count;
    int32_t *trans; /* NULL or [the grammar's n_byte_classes], by byte class (group follows it in one block) */
    uint16_t *group; /* NULL or [n_byte_classes]: byte classes this state's items cannot tell apart share
                      * a group (the lowest such class): one transition found is the transition of all */
    uint32_t *mask; /* NULL or [mask_words] for vocab_uid */
    uint8_t pf_a;   /* with PF_KNOWN: every string of P (internal.h) of up to pf_a code points is accepted */
    uint8_t pf;     /* PF_* */
} cstate;

#define PF_KNOWN 1 /* pf_a holds (a lower bound of the longest such length, capped, or PF_INF) */
#define PF_EXACT 2 /* pf_a is that length itself (some string of P of pf_a + 1 code points is refused) */
#define PF_B 4     /* with PF_EXACT: every string of P of pf_a + 1 code points, and every prefix of one that
                    * begins its last code point, is refused */
#define PF_BUSY 8  /* being found (a cycle of names) */
#define PF_INF 255 /* every string of P is accepted */

/* The facts of a name for the strings of one run's bytes (facts.c). */
typedef struct {
    int32_t x;       /* the name, -1: an empty slot */
    uint8_t run, a, pf, cap; /* a, pf as cstate's pf_a and pf (PF_*); cap: the depth they were found to */
    uint32_t e[8];   /* the bytes outside the run that some name within cap bytes of the run accepts */
} runfact;

/* A first-byte memo (cache.c): which tokens of one subtree of a trie's root (the tokens that begin with
 * its byte) name y, reached by that byte, accepts. */
typedef struct {
    int32_t y;       /* -1: an empty slot */
    uint32_t node;   /* the subtree's root, a child of the trie's root */
    uint64_t trie;   /* the trie's uid */
    uint32_t *bits;  /* bit j: the token tok_ids[tok_first[node] + j] */
} memo;

struct gram_cache {
    pthread_mutex_t mu;
    uint64_t gen; /* emptying the cache starts a new generation: names from before mean nothing */
    cstate **st_block;     /* [n_st_blocks] of ST_BLOCK: the names (cache_st; made, they never move) */
    uint32_t n_st, n_st_blocks, cap_st_blocks;
    uint64_t **key_block;  /* [n_key_blocks] of KEY_BLOCK: the names' keys (a key never spans two blocks, so
                            * the keys already made never move) */
    size_t n_key_blocks, cap_key_blocks, n_keys; /* n_keys: the next free offset (block * KEY_BLOCK + i) */
    int32_t *tab; /* open addressing over state ids, -1 empty; tab_cap a power of two (or 0) */
    size_t tab_cap;
    uint64_t vocab_uid;
    size_t mask_words;
    size_t bytes, limit;
    uint64_t *scratch;
    size_t cap_scratch;
    int32_t *pname; /* the walk's path: the name and byte at each depth */
    unsigned char *pbyte;
    size_t cap_path;
    uint64_t n_trans, masks, hits, flushes, sliced, floored, memo_hits;
    uint64_t n_items;      /* Earley items made by the cache's feeds (step_matcher), for searches' budgets */
    gram_matcher *floor_m; /* NULL or the floored copy of a matcher (slices.c), to make floored masks with */
    runfact *rf;           /* facts per (name, run): open addressing on rf_cap (a power of two, or 0) */
    size_t rf_n, rf_cap;
    int32_t *lhs;          /* NULL or [the grammar's n_pos]: the rule each position belongs to; with it... */
    uint8_t rep[256];      /* ...a byte of each byte class, */
    uint64_t (*cls_bc)[4]; /* [n_classes] the byte classes of each class (bit bc), */
    uint8_t (*form_rep)[256]; /* [UTF8_RANGES] per range of utf8_form (facts.c): a byte of each byte class in it, */
    uint8_t form_n[UTF8_RANGES]; /* how many (less '"' and '\') */
    int32_t *sub;          /* sub-names (cache.c): [sub_cap][3] (name, rule, sub-name), name -1 empty */
    size_t sub_n, sub_cap;
    uint64_t *sub_key;     /* [cap_sub_key] a sub-name's key being made */
    size_t cap_sub_key;
    memo *memo;            /* first-byte memos: open addressing on memo_cap (a power of two, or 0) */
    size_t memo_n, memo_cap;
};

/* Name x (a state, or a sub-name: cache.c). */
static inline cstate *cache_st(const gram_cache *c, int32_t x) {
    return &c->st_block[(uint32_t)x / ST_BLOCK][(uint32_t)x % ST_BLOCK];
}

/* The key of name x: key[0] (whether it accepts, or 2 for a sub-name), then its sorted (position, origin) pairs. */
static inline const uint64_t *cache_key(const gram_cache *c, int32_t x) {
    size_t off = cache_st(c, x)->key_off;
    return c->key_block[off / KEY_BLOCK] + off % KEY_BLOCK;
}

static inline int popcount32(uint32_t w) { /* (no popcnt instruction assumed) */
    w -= (w >> 1) & 0x55555555u;
    w = (w & 0x33333333u) + ((w >> 2) & 0x33333333u);
    return (int)((((w + (w >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
}

int cache_oom(void);
/* Room in the walk's path for depth bytes beyond the matcher's base. */
int cache_path_room(gram_cache *c, size_t depth);
/* Where byte b leads from the name at depth d - 1 of the path when the DFA does not know yet (cache.c). */
int cache_learn_name(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y);

/* Where byte b leads from the name at depth d - 1 of the path (pname; the bytes pbyte[1 .. d - 1] lead
 * there from the matcher's base, and the matcher holds *cur of them): the cached transition, or the
 * matcher's answer (recorded). *y: T_REJECT, a name, or GRAM_SIG_NONE. */
static inline int cache_next_name(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b,
                                  int32_t *y) {
    if (*cur >= d) {
        gram_matcher_rollback(m, *cur - d + 1);
        *cur = d - 1;
    }
    int32_t x = c->pname[d - 1];
    *y = x >= 0 && cache_st(c, x)->trans ? cache_st(c, x)->trans[m->g->byte_class[b]] : T_UNKNOWN;
    return *y != T_UNKNOWN ? 0 : cache_learn_name(c, m, cur, d, b, y); /* the walk's hot path is the lookup */
}

/* Mark in mask the tokens of trie t (the vocabulary or one of its parts) that name s0, m's top set,
 * accepts (cache.c): its root's subtrees one by one, each through its first-byte memo when it has one.
 * Returns how many tokens it marked that were not marked yet. walk_child: the subtree of root child u. */
int cache_walk(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t *mask);
int cache_walk_child(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t u, uint32_t *mask);
/* Name m's sets (after a new generation, from the bottom). */
int cache_name_sets(gram_cache *c, gram_matcher *m);
/* The floored name of m's top set for floor f (every origin below set f one empty set), through m's
 * memo of floored names; *below: the name of that empty set. */
int cache_floor_name(gram_cache *c, gram_matcher *m, size_t f, int32_t *out, int32_t *below);
/* Keep the mask made for name s (when there is room). */
int cache_keep_mask(gram_cache *c, int32_t s, const uint32_t *mask, int count);

/* facts.c */
/* The ranges of utf8_form for form_rep (in c once grammar tables are made, cache.c). */
void facts_form_ranges(gram_cache *c, const gram_grammar *g);
typedef struct {
    int a, exact, b; /* A (a lower bound unless exact), B (meaningful when exact) */
} pfacts;
typedef struct {
    int a, exact, b;
    uint32_t e[8];
} rfacts;
/* The facts of name s0 (m's top set) for strings of P, and for strings of the ASCII bytes of set (the
 * vocabulary's run number run): searched over the DFA, GRAM_FACT_DEPTH deep, and kept per name. */
#define GRAM_FACT_DEPTH (2 * GRAM_SLICE_MAX)
int facts_text(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, pfacts *out);
int facts_run(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, const uint32_t *set, int run,
              rfacts *out);
/* Where name s0 takes the ASCII bytes. *acc: it accepts some byte of ASCII text of P; *mixed: and
 * refuses others; major: the ASCII bytes that lead to the one name most of them lead to; cls: the ASCII
 * bytes of the widest character class s0's items scan, all of them accepted (a run that may leave
 * through several names: a domain label's letters and its '-'), or empty. */
int facts_ascii_scan(gram_cache *c, gram_matcher *m, int32_t s0, int *acc, int *mixed, uint32_t major[8],
                     uint32_t cls[8]);
/* The floor of m's top set (0: none) and the bytes that the items from below it may scan: feeding other
 * bytes, the floored copy accepts what m accepts, and the same single byte after them (facts.c). */
size_t facts_floor(const gram_matcher *m, uint32_t exits[8]);
void facts_drop_runs(gram_cache *c);

/* slices.c: the mask of name s0 (m's top set, not cached) without the whole walk where a slice, a run or
 * a floor allows, else the walk; returns the count of allowed tokens. */
int slices_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask);

#endif
