/* tok_internal: the tokenizer's internal types, shared by the src/tokenizer sources.
 *
 * Pipeline of tok_encode (mirrors Rust tokenizers' TokenizerImpl::encode):
 *   1. added tokens that are not `normalized` are cut out of the raw text
 *      (leftmost-longest trie, then single_word / lstrip / rstrip as in
 *      AddedVocabulary::find_matches);
 *   2. each remaining segment is normalized (tok_norm steps), then the
 *      `normalized` added tokens are cut out of the normalized text;
 *   3. each remaining piece runs through the pre-tokenizer steps depth-first
 *      (a Sequence is flattened: step k splits/transforms a piece, each child
 *      goes to step k+1), and every final piece is one BPE "word";
 *   4. BPE (tok_bpe_word) turns a word into ids; the post-processor templates
 *      wrap the ids when add_special is set.
 * Decoding runs the decoder steps as streaming transformers (decode.c), so a
 * full decode and a stream are the same code.
 *
 * Invariants: every string in `pool` is valid UTF-8 (it comes from the JSON
 * reader); id tables have n_ids entries; an id with no token has
 * id_len[id] < 0. All regexes are compiled once at load (PCRE2, UTF+UCP, JIT
 * when available) and only read afterwards; per-call mutable state (match
 * data, scratch buffers, the BPE word cache) lives in a tok_ws. */
#ifndef VLLMC_TOK_INTERNAL_H
#define VLLMC_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "tokenizer.h"

#define TOK_MAX_STEPS 32        /* pipeline steps after flattening Sequences */
#define TOK_CHAR_TABLE 0x3100   /* direct code point -> id table for BPE initial symbols */
#define TOK_MAX_ID (1 << 24)     /* ids must be below this (real vocabularies are < 2^20) */

/* ---- buffers and maps (util.c) ---- */

typedef struct {
    char *s;
    size_t len, cap;
} tok_buf;

int tok_buf_grow(tok_buf *b, size_t extra); /* cap >= len + extra + 1 */
int tok_buf_put(tok_buf *b, const void *p, size_t n);
void tok_buf_free(tok_buf *b);

uint64_t tok_hash(const void *p, size_t n);

/* string -> int32; keys are (offset, length) into a caller-owned pool. */
typedef struct {
    uint32_t off, len;
    int32_t val;
    uint32_t h;
} tok_smap_slot;
typedef struct {
    tok_smap_slot *slots; /* cap slots, val == INT32_MIN marks empty */
    size_t cap, n;
} tok_smap;
int tok_smap_init(tok_smap *m, size_t expected);
/* Insert or overwrite. */
int tok_smap_put(tok_smap *m, const char *pool, uint32_t off, uint32_t len, int32_t val);
int32_t tok_smap_get(const tok_smap *m, const char *pool, const char *key, size_t len); /* -1 absent */
void tok_smap_free(tok_smap *m);

/* (id, id) -> (rank, merged id) */
typedef struct {
    uint64_t key; /* UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
} tok_pslot;
typedef struct {
    tok_pslot *slots;
    size_t cap, n;
} tok_pmap;
int tok_pmap_init(tok_pmap *m, size_t expected);
int tok_pmap_put(tok_pmap *m, uint32_t a, uint32_t b, uint32_t rank, int32_t id);
const tok_pslot *tok_pmap_get(const tok_pmap *m, uint32_t a, uint32_t b);
void tok_pmap_free(tok_pmap *m);

/* ---- component loading (load.c) ---- */

/* A pipeline component loader: load v (one component, or null) into t. */
typedef int (*tok_load_fn)(tok_tokenizer *t, const tok_jv *v, const char *where, int depth);
/* {"type": "Sequence", <list_key>: [...]}: load each element with fn (nesting
 * at most 8 deep). The shared part of every component family's loader. */
int tok_load_sequence(tok_tokenizer *t, const tok_jv *v, const char *list_key, const char *where, int depth,
                      tok_load_fn fn);

/* ---- UTF-8 and Unicode classes (util.c) ---- */

/* Length of the character whose lead byte is c (valid UTF-8 assumed). */
static inline size_t tok_u8len(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }
size_t tok_u8dec(const char *s, uint32_t *cp); /* valid UTF-8 assumed */
size_t tok_u8enc(uint32_t cp, char *out);
size_t tok_u8check(const char *s, size_t n);   /* offset of the first invalid byte, or n */
int tok_is_space(uint32_t cp);   /* Unicode White_Space (Rust char::is_whitespace, regex \s) */
int tok_is_word(uint32_t cp);    /* Rust regex \w: Alphabetic, M, Nd, Pc, Join_Control */
int tok_is_numeric(uint32_t cp); /* Rust char::is_numeric: Nd, Nl, No */
int tok_is_punct(uint32_t cp);   /* tokenizers' is_punc: ASCII punctuation or P* */
int tok_is_mn(uint32_t cp);      /* nonspacing mark */

/* ---- patterns (regex.c) ---- */

/* A Split / Replace pattern: a literal string or an Oniguruma-style regex
 * (translated to PCRE2). */
typedef struct {
    int is_regex;
    char *lit; /* literal (owned), lit_len bytes; empty never matches */
    size_t lit_len;
    pcre2_code *re;
} tok_pattern;

struct tok_ws;
/* Compiles {"String": s} / {"Regex": r} (or a bare string = literal). */
int tok_pattern_from_json(tok_pattern *p, const tok_jv *v, const char *what, const char *where);
int tok_pattern_regex(tok_pattern *p, const char *onig, size_t len, const char *what, const char *where);
void tok_pattern_free(tok_pattern *p);

/* Match iteration with Oniguruma's FindMatches semantics (an empty match right
 * after the previous match is skipped). */
typedef struct {
    size_t last_end, last_match_end;
    int have_last;
} tok_iter;
/* 1: next match in s[0..n) stored in *ms and *me; 0: no more; <0: error. */
int tok_pattern_next(const tok_pattern *p, struct tok_ws *ws, const char *s, size_t n, tok_iter *it, size_t *ms,
                     size_t *me);

/* ---- pipeline components ---- */

enum { TN_NFC, TN_NFD, TN_NFKC, TN_NFKD, TN_LOWER, TN_STRIP, TN_STRIP_ACCENTS, TN_PREPEND, TN_REPLACE };
typedef struct {
    int type;
    int left, right;   /* Strip */
    char *str;         /* Prepend text / Replace content (owned) */
    size_t str_len;
    tok_pattern pat;   /* Replace */
} tok_norm;

enum { TB_REMOVED, TB_ISOLATED, TB_MERGED_PREV, TB_MERGED_NEXT, TB_CONTIGUOUS };
enum { TM_ALWAYS, TM_FIRST, TM_NEVER };
enum { TP_BYTELEVEL, TP_SPLIT, TP_METASPACE, TP_DIGITS, TP_PUNCT, TP_WHITESPACE, TP_WSSPLIT, TP_CHARDELIM };
typedef struct {
    int type;
    int behavior, invert;          /* Split, Punctuation */
    int add_prefix_space, use_regex; /* ByteLevel */
    int individual;                /* Digits */
    int scheme, split;             /* Metaspace */
    uint32_t ch;                   /* Metaspace replacement, CharDelimiterSplit delimiter */
    char ch_s[4];
    int ch_len;
    tok_pattern pat;               /* Split, ByteLevel regex, Whitespace */
} tok_pretok;

enum { TD_BYTELEVEL, TD_METASPACE, TD_BYTEFALLBACK, TD_FUSE, TD_STRIP, TD_REPLACE };
typedef struct {
    int type;
    tok_pattern pat;  /* Replace */
    char *content;    /* Replace content (owned) */
    size_t content_len;
    uint32_t ch;      /* Strip content char, Metaspace replacement */
    int start, stop;  /* Strip */
    int scheme;       /* Metaspace */
} tok_dec;

/* A post-processor as a list of items: an id run or the sequence ($A). */
typedef struct {
    int is_seq;
    int32_t *ids;
    size_t n;
} tok_titem;
typedef struct {
    tok_titem *items;
    size_t n;
} tok_tmpl;

typedef struct {
    uint32_t off, len; /* content in pool */
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} tok_added;

/* Byte trie of added-token contents for leftmost-longest matching. */
typedef struct {
    int32_t child, sibling, match; /* match: index into tok->added or -1 */
    unsigned char byte;
} tok_tnode;
typedef struct {
    tok_tnode *nodes;
    size_t n, cap;
    int32_t root[256]; /* first byte -> node, -1 */
} tok_trie;

enum { TOK_F_ADDED = 1, TOK_F_SPECIAL = 2 };

typedef struct {
    char *bos, *eos, *pad, *unk; /* owned, NULL if absent */
    int add_bos, add_eos;        /* -1 unknown */
    long long max_len;           /* -1 unknown / huge */
    int cleanup;
    size_t n_tmpl;
    char **tmpl_names, **tmpls;
    size_t n_kv; /* other top-level string fields */
    char **keys, **vals;
    char *tokenizer_class;
} tok_config;

struct tok_ws;

struct tok_tokenizer {
    char *what; /* file name for messages */
    tok_buf pool;
    /* id -> token string (added tokens override the model vocabulary) */
    size_t n_ids;
    uint32_t *id_off;
    int32_t *id_len;
    uint8_t *id_flags;
    /* BPE model */
    size_t model_n;          /* number of model vocabulary entries (Rust's get_vocab_size) */
    uint32_t *mid_off;       /* model id -> string (for ignore_merges / token_to_id) */
    int32_t *mid_len;
    tok_smap vocab;
    tok_pmap merges;
    int32_t unk_id;          /* -1: no unk token */
    int byte_fallback, fuse_unk, ignore_merges;
    char *cs_prefix, *eow_suffix; /* NULL or owned */
    size_t cs_prefix_len, eow_len;
    int32_t byte_id[256];    /* ids of "<0xXX>" (-1 missing) */
    int32_t *char_id;        /* TOK_CHAR_TABLE entries, or NULL when prefix/suffix are set */
    /* Exact word cuts (bpe.c): a word may be cut before a U+2581 whose preceding
     * char is in the vocabulary and not in cut_not (no merge can join across). */
    int cut_ok;
    uint32_t cut_not[8];
    int n_cut_not;
    /* added tokens */
    tok_added *added;
    size_t n_added, cap_added;
    tok_smap added_map;
    tok_trie trie_raw, trie_norm;
    /* pipeline */
    tok_norm norms[TOK_MAX_STEPS];
    size_t n_norms;
    tok_pretok pretoks[TOK_MAX_STEPS];
    size_t n_pretoks;
    tok_tmpl posts[TOK_MAX_STEPS];
    size_t n_posts;
    tok_dec decs[TOK_MAX_STEPS];
    size_t n_decs;
    int has_decoder;
    int has_post; /* tokenizer.json has a post_processor (even one that adds nothing) */
    size_t vocab_size; /* max id + 1 */
    tok_config cfg;
    int32_t bos_id, eos_id;
    /* byte-level alphabet (GPT-2 bytes_to_unicode): byte -> UTF-8 of its char, char -> byte */
    char bl_enc[256][2];
    uint8_t bl_len[256];
    int16_t bl_dec[0x144];
    /* one cached workspace, taken with ws_busy */
    atomic_flag ws_busy;
    struct tok_ws *ws;
};

/* ---- workspace (tokenizer.c) ---- */

typedef struct {
    const char *p;
    size_t len;
    int at_start; /* begins at offset 0 of the original input (Metaspace "first") */
} tok_piece;

typedef struct {
    size_t a, b;
    int is_match;
} tok_span;

typedef struct {
    int32_t id, prev, next;
    uint32_t len;
} tok_sym;
typedef struct {
    uint32_t rank, pos;
    int32_t id;
} tok_merge;

typedef struct {
    uint64_t h;
    uint32_t koff, klen, ioff, nids;
} tok_cslot;

typedef struct tok_ws {
    int shared;                 /* the tokenizer's own workspace (tok_ws_acquire), not a one-off */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    tok_buf nbuf[2];            /* normalizer ping-pong */
    tok_buf seg;                /* the normalized segment being pre-tokenized */
    tok_ids tmp_ids;            /* encoding before a multi-part post-processor */
    tok_buf sbuf[TOK_MAX_STEPS + 1][2]; /* per pre-tokenizer depth: transformed text */
    tok_span *spans[TOK_MAX_STEPS + 1];
    size_t spans_cap[TOK_MAX_STEPS + 1];
    tok_sym *syms;
    size_t syms_cap;
    tok_merge *heap;
    size_t heap_cap;
    int32_t *wids; /* one word's ids */
    size_t wids_cap;
    /* BPE word cache */
    tok_cslot *cache;
    size_t cache_cap, cache_n;
    tok_buf cache_keys;
    int32_t *cache_ids;
    size_t cache_ids_n, cache_ids_cap;
} tok_ws;

tok_ws *tok_ws_acquire(const tok_tokenizer *t);
void tok_ws_release(const tok_tokenizer *t, tok_ws *ws);
void tok_ws_free(tok_ws *ws);
int tok_spans_reserve(tok_ws *ws, int depth, size_t n);

/* ---- components ---- */

/* load.c */
int tok_load_components(tok_tokenizer *t, const tok_jv *root);
/* config.c */
int tok_config_load(tok_tokenizer *t, const tok_jv *root, const char *what);
void tok_config_free(tok_config *c);
/* added.c */
int tok_added_load(tok_tokenizer *t, const tok_jv *arr);
/* Rust's add_tokens for one token: a known content keeps its id and takes the
 * new flags (special is sticky); a new one gets the next id. */
int tok_added_add(tok_tokenizer *t, const char *c, size_t n, const tok_added *flags);
/* Flags of an AddedToken object (special, normalized = !special by default, ...). */
int tok_added_flags(const tok_jv *o, tok_added *a);
int tok_added_build_tries(tok_tokenizer *t);
/* Splits text into added-token matches and gaps (AddedVocabulary::find_matches).
 * Calls cb(ctx, start, end, id) for each span in order; id = -1 for a gap. */
typedef int (*tok_split_cb)(void *ctx, size_t a, size_t b, int32_t id);
int tok_added_split(const tok_tokenizer *t, const tok_trie *tr, const char *s, size_t n, tok_split_cb cb, void *ctx);
void tok_trie_free(tok_trie *tr);
/* normalize.c: in -> out (replacing out's contents); *lead_removed set when
 * the first input character was deleted (affects Metaspace "first"). */
int tok_normalize(const tok_tokenizer *t, tok_ws *ws, const char *in, size_t n, tok_buf *out, int *lead_removed);
int tok_norm_load(tok_tokenizer *t, const tok_jv *v, const char *where);
void tok_norm_free(tok_norm *n);
/* pretok.c: runs pre-tokenizer steps from `step` on piece; each final word
 * goes to tok_bpe_word, ids appended to out. */
int tok_pretok_run(const tok_tokenizer *t, tok_ws *ws, size_t step, tok_piece pc, tok_ids *out);
int tok_pretok_load(tok_tokenizer *t, const tok_jv *v, const char *where);
void tok_pretok_free(tok_pretok *p);
/* bpe.c */
int tok_bpe_load(tok_tokenizer *t, const tok_jv *model);
int tok_bpe_word(const tok_tokenizer *t, tok_ws *ws, const char *w, size_t n, tok_ids *out);
int tok_ids_push(tok_ids *v, int32_t id);
int tok_ids_append(tok_ids *v, const int32_t *ids, size_t n);
/* decode.c */
int tok_dec_load(tok_tokenizer *t, const tok_jv *v, const char *where);
void tok_dec_free(tok_dec *d);
/* A Strip decoder step on one text p[0..n): the kept bytes are [*start, *end) (decode.c; tok_token_bytes). */
void tok_strip_span(const tok_dec *d, const char *p, size_t n, size_t *start, size_t *end);

/* ---- decoder chain (decode.c) ----
 *
 * The decoder steps as streaming transformers. A step before any fusing step
 * (Fuse, ByteLevel) sees whole tokens; after one it sees fragments of the
 * single fused token. Each step holds back only what a later token can still
 * change; tok_chain_end releases everything. */
typedef struct {
    tok_buf pend, scratch;
    size_t count;       /* Metaspace: tokens seen; Strip: leading chars stripped */
    size_t hold;        /* Strip: trailing content chars held */
    int started, passthru;
    unsigned char u8[4]; /* ByteLevel: pending incomplete UTF-8 sequence */
    int u8n, u8need;
} tok_dstate;
typedef struct {
    const tok_tokenizer *t;
    tok_dstate st[TOK_MAX_STEPS];
    tok_buf *out; /* text is appended here */
    struct tok_ws *ws; /* match data for regex Replace steps, made on first use */
    size_t ntok;
} tok_chain;
int tok_chain_token(tok_chain *c, const char *p, size_t n);
int tok_chain_end(tok_chain *c);
void tok_chain_reset(tok_chain *c);
void tok_chain_free(tok_chain *c);
tok_ws *tok_ws_new(void);

/* Register a token string for an id (grows the id tables). */
int tok_set_id(tok_tokenizer *t, int32_t id, uint32_t off, int32_t len);
/* Copies s into the pool; *off receives its offset. NUL-terminated there. */
int tok_pool_add(tok_tokenizer *t, const char *s, size_t n, uint32_t *off);
char *tok_strndup(const char *s, size_t n);

#endif
