/* grammar: the one representation that every structured-output front end
 * (JSON Schema, regular expressions, choice lists, GBNF grammars) compiles to,
 * and the matcher that constrains generation with it (step 7).
 *
 * A grammar is a context-free grammar over BYTES. It holds rules; a rule holds
 * alternatives; an alternative is a sequence of elements; an element is either
 * a byte class (a set of byte values: it matches exactly one byte) or a
 * reference to a rule. An empty alternative matches the empty string. Left
 * recursion and ambiguity are allowed (the matcher is an Earley recognizer).
 * UTF-8 is the front ends' business: a character class over code points
 * becomes alternatives of byte sequences (gram_utf8_class).
 *
 * Building is bounded: a builder refuses to grow past its element limit
 * (VC_EINVAL "grammar too large"), so a front end fed a hostile schema or
 * regex fails with a clear error instead of exhausting memory. A built grammar
 * is immutable and may be shared by any number of matchers on any threads.
 *
 * The matcher (gram_matcher) is a state machine fed bytes: it says whether the
 * bytes so far are a prefix of some sentence of the grammar, whether they are
 * a whole sentence (then EOS may be sampled), and, with a vocabulary
 * (gram_vocab: the tokens' byte strings in a trie), which tokens may come next
 * (the allowed-token mask). It can roll back bytes, so the mask walks the trie
 * feeding and rolling back instead of copying state. No I/O, no globals. */
#ifndef VLLMC_GRAMMAR_GRAMMAR_H
#define VLLMC_GRAMMAR_GRAMMAR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A set of byte values (bit b of w[b / 32] is byte b). */
typedef struct {
    uint32_t w[8];
} gram_bytes;

void gram_bytes_clear(gram_bytes *s);
void gram_bytes_add(gram_bytes *s, unsigned b);
void gram_bytes_add_range(gram_bytes *s, unsigned lo, unsigned hi); /* inclusive */
int gram_bytes_has(const gram_bytes *s, unsigned b);

/* ---- building ---- */

typedef struct gram_builder gram_builder;
typedef struct gram_grammar gram_grammar;
typedef struct gram_cache gram_cache;

/* A builder for at most max_elems elements in all (0: 1,000,000). */
int gram_builder_new(size_t max_elems, gram_builder **out);
void gram_builder_free(gram_builder *b);

/* A new rule (no alternatives yet); returns its index (>= 0) or a negative VC_E*.
 * name is for error messages and debugging (copied; may be NULL). */
int gram_rule(gram_builder *b, const char *name);
/* Start a new alternative of rule r; the elements added next go into it. */
int gram_alt(gram_builder *b, int r);
/* Append to the current alternative: one byte of a class / one exact byte /
 * the bytes of s in order / a reference to rule r (which may be defined later). */
int gram_add_class(gram_builder *b, const gram_bytes *set);
int gram_add_byte(gram_builder *b, unsigned char c);
int gram_add_bytes(gram_builder *b, const void *s, size_t n);
int gram_add_rule(gram_builder *b, int r);

/* Helpers that make rules (each returns the new rule's index or a negative VC_E*):
 * one UTF-8 encoded code point in the union of n inclusive ranges (or, with negate, any valid code
 * point outside them; surrogates never match); */
int gram_utf8_class(gram_builder *b, const uint32_t (*ranges)[2], int n, int negate);
/* r repeated min..max times (max < 0: unbounded), e.g. x* = (0, -1), x+ = (1, -1), x? = (0, 1). A bounded
 * count (min < max) is one rule of max references to r whose items may also end from the min-th on
 * (a counted repetition: an item's position is its count), so a run costs the matcher O(1) a byte. */
int gram_repeat(gram_builder *b, int r, int min, int max);

/* Finish with `root` as the start rule. Fails (VC_EINVAL, naming the rule) if a referenced rule has
 * no alternative. On success *out is the grammar (holding one reference) and b may be freed.
 * (Also: once any builder call failed for memory or the element limit, gram_build fails the same way,
 * so a grammar never silently lacks a part.) */
int gram_build(gram_builder *b, int root, gram_grammar **out);
/* A grammar is reference counted, so requests (and their n sequences) share one compiled grammar:
 * gram_retain adds a reference and returns g (NULL-safe); gram_free drops one and frees the grammar
 * with the last. Both are atomic: any thread may retain or release. */
gram_grammar *gram_retain(gram_grammar *g);
void gram_free(gram_grammar *g);
int gram_n_rules(const gram_grammar *g);

/* ---- matching ---- */

typedef struct gram_matcher gram_matcher;

int gram_matcher_new(const gram_grammar *g, gram_matcher **out);
void gram_matcher_free(gram_matcher *m);
/* Feed n bytes. 0: they keep the input a prefix of a sentence (consumed); 1: they do not (the matcher
 * is left as it was); negative VC_E* on allocation failure. */
int gram_matcher_feed(gram_matcher *m, const void *bytes, size_t n);
/* Whether the input so far is a whole sentence (generation may end here). */
int gram_matcher_accepting(const gram_matcher *m);
/* Whether any byte may follow (0 once the only way on is to end). */
int gram_matcher_can_continue(const gram_matcher *m);
/* Forget the last n consumed bytes. */
int gram_matcher_rollback(gram_matcher *m, size_t n);
size_t gram_matcher_consumed(const gram_matcher *m);
/* Back to the empty input. */
void gram_matcher_reset(gram_matcher *m);

/* ---- token masks ---- */

typedef struct gram_vocab gram_vocab;

/* The vocabulary as byte strings: token i is tok[i] (len[i] bytes). Tokens of length 0 (special tokens
 * that have no text) are never allowed by a mask. */
int gram_vocab_new(const unsigned char *const *tok, const size_t *len, int n, gram_vocab **out);
void gram_vocab_free(gram_vocab *v);
int gram_vocab_size(const gram_vocab *v);
/* The tokens allowed next: bit i of mask[i / 32] set when all of token i's bytes can be fed. mask holds
 * (n + 31) / 32 words. Returns the number of allowed tokens (the caller adds EOS when
 * gram_matcher_accepting), or a negative VC_E*. The matcher is left as it was. */
int gram_matcher_mask(gram_matcher *m, const gram_vocab *v, uint32_t *mask);

/* Masks are fast through the grammar's cache (cache.c), shared by every matcher of the grammar on any
 * thread (one lock, held for the length of one mask): each matcher state gets a name that captures
 * all it can still do (two states with one name accept the same futures), so a mask is computed once
 * per state and vocabulary, and the trie walk follows cached byte transitions between named states
 * (a lazy DFA) instead of feeding the Earley recognizer, which it only asks for transitions it has
 * not seen. The cache is bounded (GRAM_CACHE_BYTES); when full it is emptied and refilled.
 * gram_matcher_use_cache(m, 0) makes m's masks plain walks (the reference for tests and benchmarks). */
void gram_matcher_use_cache(gram_matcher *m, int on);
typedef struct {
    uint64_t masks, mask_hits;     /* masks asked for; of them, answered from the cache */
    uint64_t sliced;               /* masks made from a vocabulary slice and a walk of the rest */
    uint64_t floored;              /* masks made from the mask of a floored name (one for every context) */
    uint64_t memo_hits;            /* root subtrees taken from a first-byte memo instead of walked */
    uint64_t transitions, states;  /* byte transitions and states the cache holds now */
    uint64_t bytes, flushes;       /* its memory now; times it was emptied for being full */
} gram_cache_stats;
void gram_grammar_cache_stats(const gram_grammar *g, gram_cache_stats *out);
/* The cache's memory bound (default GRAM_CACHE_BYTES, 64 MiB; 0: the default); for tests of emptying. */
void gram_grammar_cache_limit(gram_grammar *g, size_t bytes);

/* ---- the frozen layout (read by matcher.c and vocab.c; front ends should not need it) ----
 *
 * gram_build lays every kept alternative out as a run of positions in pos[]: its elements in order,
 * then an end marker. An Earley item is then (position, origin): the dot sits before pos[p].
 * A position's value v: v >= 0 and !(v & GRAM_POS_CLASS): a reference to rule v;
 * v >= 0 and (v & GRAM_POS_CLASS): byte class v & GRAM_POS_INDEX; v < 0: the end of an alternative
 * of rule ~v. Alternatives that can never match (an empty byte class, a rule that derives no string)
 * are dropped at build, so every item the matcher holds can still reach a sentence.
 * A counted repetition x{m,n} (gram_repeat, m < n) is an alternative of n references to x whose positions
 * m..n-1 (1..n-1 when m is 0: an empty alternative stands for none) may also end it: rep_end[p] is then the
 * position of its end, and the closure adds the end item (rep_end[p], origin) beside the item at p. */
#define GRAM_POS_CLASS 0x40000000
#define GRAM_POS_INDEX 0x3fffffff

struct gram_grammar {
    int n_rules, root;
    int n_classes;
    gram_bytes *classes;  /* [n_classes] */
    int32_t *pos;         /* [n_pos] as above */
    size_t n_pos;
    int *alt_first;       /* [n_rules + 1]: rule r's alternatives are alt_start[alt_first[r] .. alt_first[r+1]) */
    uint32_t *alt_start;  /* [n_alts] the first position of each kept alternative */
    uint8_t *nullable;    /* [n_rules] 1 if the rule derives the empty string */
    uint32_t *rep_end;    /* NULL (no counted repetition) or [n_pos]: a counted repetition's end, for the
                           * positions where it may end early; else 0 */
    char **names;         /* [n_rules] NULL where unnamed */
    atomic_int refs;      /* references (gram_retain / gram_free) */
    gram_cache *cache;    /* the one mutable part, behind its own lock: matcher states, transitions, masks */
    uint8_t byte_class[256]; /* bytes every class of the grammar treats alike share a number here... */
    int n_byte_classes;      /* ...in [0, n_byte_classes): they lead any matcher state to the same state */
};

/* A byte-at-a-time feed for the mask walk: as gram_matcher_feed of one byte. */
int gram_matcher_feed_byte(gram_matcher *m, unsigned char c);
/* The most Earley items one input position may hold before feeding fails with VC_EINVAL
 * (default 1,000,000; 0: the default), and 16 times it the items that completions there may scan;
 * for tests of the bound. */
void gram_matcher_set_item_limit(gram_matcher *m, size_t limit);

#endif
