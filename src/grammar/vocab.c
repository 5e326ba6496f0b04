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
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "base/ckd.h"
#include "base/err.h"
#include "grammar/grammar.h"
#include "grammar/internal.h"

struct gram_vocab_runs {
    pthread_mutex_t mu;
    gram_run *run[GRAM_VOCAB_RUNS];
    int n, tables;
    uint32_t exit_set[GRAM_VOCAB_EXITS][8]; /* gram_vocab_exits: the byte sets asked for... */
    gram_vocab *exits[GRAM_VOCAB_EXITS];    /* ...and their tries (NULL: too many tokens) */
    int n_exits;
    int held[256]; /* the tokens that hold byte b before their last byte */
    uint32_t few_set[GRAM_VOCAB_FEW][4]; /* gram_vocab_run_of: sets that too few tokens are made of for a run... */
    int few_n[GRAM_VOCAB_FEW];           /* ...and how many are (exact: below the least they were counted to) */
    int n_few;
    size_t slice_bytes; /* held by the runs' slice bitsets (at most GRAM_RUN_SLICE_BYTES) */
};

static void run_free(gram_run *r) {
    if (!r) return;
    free(r->len);
    free(r->tok);
    free(r->at);
    for (int a = 0; a < GRAM_SLICE_MAX; a++) free(r->slice[a]);
    free(r);
}

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
    gram_vocab_free(v->rest);
    if (v->runs) {
        for (int i = 0; i < v->runs->n; i++) run_free(v->runs->run[i]);
        for (int i = 0; i < v->runs->n_exits; i++) gram_vocab_free(v->runs->exits[i]);
        pthread_mutex_destroy(&v->runs->mu);
        free(v->runs);
    }
    free(v->slice);
    free(v->text);
    free(v->text_off);
    free(v->byte);
    free(v->depth);
    free(v->end);
    free(v->tok_first);
    free(v->tok_ids);
    free(v);
}

int gram_vocab_size(const gram_vocab *v) { return v->n_tokens; }

/* The code points of P (internal.h) that s[0..n) begins, a last partial one included
 * (GRAM_SLICE_MAX + 1: more), or 0 when s is not text of P. */
static int text_points(const unsigned char *s, size_t n) {
    int l = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i++], need, lo = 0x80, hi = 0xBF; /* lo, hi: the first continuation byte's range */
        if (c < 0x80) {
            if (c < 0x20 || c == '"' || c == '\\') return 0;
            need = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80;
            hi = c == 0xED ? 0x9F : 0xBF; /* not a surrogate */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            lo = c == 0xF0 ? 0x90 : 0x80;
            hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            return 0;
        }
        for (unsigned j = 0; j < need && i < n; j++, i++)
            if (s[i] < (j ? 0x80 : lo) || s[i] > (j ? 0xBF : hi)) return 0;
        if (++l > GRAM_SLICE_MAX) return GRAM_SLICE_MAX + 1;
    }
    return l;
}

static int vocab_build(const unsigned char *const *tok, const size_t *len, int n, gram_vocab **out);

/* The slices and the trie of the rest (internal.h). */
static int build_slices(gram_vocab *v, const unsigned char *const *tok, const size_t *len, int n) {
    size_t words = ((size_t)n + 31) / 32;
    size_t *rest_len = malloc(((size_t)n + 1) * sizeof *rest_len);
    v->slice = calloc(GRAM_SLICE_MAX * words + 1, sizeof *v->slice);
    if (!rest_len || !v->slice) {
        free(rest_len);
        return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
    }
    for (int i = 0; i < n; i++) { /* first each token in the slice of exactly its count... */
        int l = len[i] ? text_points(tok[i], len[i]) : 0;
        rest_len[i] = l >= 1 && l <= GRAM_SLICE_MAX ? 0 : len[i];
        if (!rest_len[i] && len[i]) {
            v->slice[(size_t)(l - 1) * words + (size_t)i / 32] |= 1u << (i & 31);
            v->slice_count[l - 1]++;
        }
    }
    for (int l = 1; l < GRAM_SLICE_MAX; l++) { /* ...then each slice takes in the shorter ones */
        uint32_t *a = v->slice + (size_t)(l - 1) * words, *b = a + words;
        for (size_t w = 0; w < words; w++) b[w] |= a[w];
        v->slice_count[l] += v->slice_count[l - 1];
    }
    int rc = vocab_build(tok, rest_len, n, &v->rest);
    free(rest_len);
    if (rc) return rc;
    size_t total = 0; /* < UINT32_MAX: vocab_build checked */
    for (int i = 0; i < n; i++) total += len[i];
    v->text = malloc(total + 1);
    v->text_off = malloc(((size_t)n + 1) * sizeof *v->text_off);
    if (!v->text || !v->text_off) return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
    if (!(v->runs = calloc(1, sizeof *v->runs))) return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
    if (pthread_mutex_init(&v->runs->mu, NULL)) {
        free(v->runs);
        v->runs = NULL;
        return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
    }
    v->text_off[0] = 0;
    for (int i = 0; i < n; i++) {
        if (len[i]) memcpy(v->text + v->text_off[i], tok[i], len[i]);
        v->text_off[i + 1] = v->text_off[i] + (uint32_t)len[i];
    }
    return 0;
}

static int in_run(const uint32_t set[4], unsigned b) { return b < 0x80 && (set[b >> 5] >> (b & 31) & 1); }

/* One pass over the trie for the run of r->set, following only the set's bytes: len[] of the tokens made of
 * them, and each token that leaves them counted in its group (first[g + 1]) or, with fill, put there. A
 * subtree entered by a byte outside the set (or past GRAM_SLICE_MAX bytes of it) is one range of tok_ids,
 * as the trie is in preorder. */
static void run_scan(const gram_vocab *v, gram_run *r, uint32_t *fill) {
    for (uint32_t i = 1; i < v->n_nodes;) {
        uint32_t d = v->depth[i], e = v->end[i];
        if (in_run(r->set, v->byte[i]) && d <= GRAM_SLICE_MAX) {
            for (uint32_t k = v->tok_first[i]; !fill && k < v->tok_first[i + 1]; k++)
                r->len[v->tok_ids[k]] = (uint8_t)d;
            r->n_len += fill ? 0 : (int)(v->tok_first[i + 1] - v->tok_first[i]);
            i++;
            continue;
        }
        if (d > 1) { /* tokens of d - 1 bytes of the set, then byte[i] (or more than GRAM_SLICE_MAX of them) */
            int g = d > GRAM_SLICE_MAX + 1 || (d > GRAM_SLICE_MAX && in_run(r->set, v->byte[i])) ? 256 : v->byte[i];
            uint32_t lo = v->tok_first[i], hi = v->tok_first[e];
            if (!fill) {
                r->first[g + 1] += hi - lo;
            } else {
                memcpy(r->tok + fill[g], v->tok_ids + lo, (hi - lo) * sizeof *r->tok);
                memset(r->at + fill[g], g == 256 ? GRAM_SLICE_MAX + 1 : (int)d - 1, hi - lo);
                fill[g] += hi - lo;
            }
        }
        i = e;
    }
}

static int run_new(const gram_vocab *v, const uint32_t set[4], gram_run **out) {
    *out = NULL;
    gram_run *r = calloc(1, sizeof *r);
    int n = v->n_tokens;
    if (!r || !(r->len = calloc((size_t)n + 1, 1))) goto oom;
    memcpy(r->set, set, sizeof r->set);
    run_scan(v, r, NULL);
    for (int b = 0; b < 257; b++) r->first[b + 1] += r->first[b]; /* group g counted in first[g + 1]: now offsets */
    uint32_t fill[257];
    memcpy(fill, r->first, sizeof fill);
    r->tok = malloc(((size_t)r->first[257] + 1) * sizeof *r->tok);
    r->at = malloc((size_t)r->first[257] + 1);
    if (!r->tok || !r->at) goto oom;
    run_scan(v, r, fill);
    r->bytes = sizeof *r + (size_t)n + (size_t)r->first[257] * (sizeof *r->tok + 1);
    *out = r;
    return 0;
oom:
    run_free(r);
    return vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
}

int gram_vocab_run(const gram_vocab *v, const uint32_t set[4], int least, const gram_run **out, int *index) {
    struct gram_vocab_runs *rs = v->runs;
    int rc = 0;
    *out = NULL;
    *index = -1;
    if (!rs) return 0;
    pthread_mutex_lock(&rs->mu);
    for (int i = 0; i < rs->n && !*out; i++)
        if (!memcmp(rs->run[i]->set, set, sizeof rs->run[i]->set)) *out = rs->run[i], *index = i;
    if (!*out && rs->n < GRAM_VOCAB_RUNS && !(rc = run_new(v, set, &rs->run[rs->n]))) {
        gram_run *r = rs->run[rs->n];
        if (r->n_len < least || rs->tables == GRAM_VOCAB_RUN_TABLES) { /* keep only the answer */
            free(r->len), free(r->tok), free(r->at);
            r->len = NULL, r->tok = NULL, r->at = NULL;
            r->bytes = sizeof *r;
        } else {
            rs->tables++;
        }
        *index = rs->n;
        *out = rs->run[rs->n++];
    }
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

/* How many tokens are made of at most GRAM_SLICE_MAX bytes of set, counted on the trie following only the
 * set's bytes until least are seen (the count of run_scan's n_len, exact below least). */
static int run_count(const gram_vocab *v, const uint32_t set[4], int least) {
    int n = 0;
    for (uint32_t i = 1; i < v->n_nodes && n < least;) {
        if (!in_run(set, v->byte[i]) || v->depth[i] > GRAM_SLICE_MAX) {
            i = v->end[i];
            continue;
        }
        n += (int)(v->tok_first[i + 1] - v->tok_first[i]);
        i++;
    }
    return n;
}

int gram_vocab_run_of(const gram_vocab *v, const uint32_t set[4], int least, const gram_run **out, int *index) {
    struct gram_vocab_runs *rs = v->runs;
    int known = 0, rc = 0;
    *out = NULL;
    *index = -1;
    if (!rs) return 0;
    pthread_mutex_lock(&rs->mu);
    for (int i = 0; i < rs->n && !known; i++)
        if (!memcmp(rs->run[i]->set, set, sizeof rs->run[i]->set)) {
            known = 1; /* (a run without its table, or of fewer than least tokens, is no run here) */
            if (rs->run[i]->len && rs->run[i]->n_len >= least) *out = rs->run[i], *index = i;
        }
    for (int i = 0; i < rs->n_few && !known; i++)
        if (!memcmp(rs->few_set[i], set, sizeof rs->few_set[i]) && rs->few_n[i] < least) known = 1;
    pthread_mutex_unlock(&rs->mu);
    if (known) return 0;
    int n = run_count(v, set, least); /* (the trie never changes: counted outside the lock) */
    if (n >= least) {
        if (!(rc = gram_vocab_run(v, set, least, out, index)) && *out && !(*out)->len) *out = NULL, *index = -1;
        return rc;
    }
    pthread_mutex_lock(&rs->mu);
    int i = 0;
    while (i < rs->n_few && memcmp(rs->few_set[i], set, sizeof rs->few_set[i])) i++;
    if (i == rs->n_few && i < GRAM_VOCAB_FEW) {
        memcpy(rs->few_set[i], set, sizeof rs->few_set[i]);
        rs->few_n[i] = n;
        rs->n_few++;
    }
    pthread_mutex_unlock(&rs->mu);
    return 0;
}

/* Mark the tokens of up to a bytes of the run in mask (zeroed); returns how many. */
static int run_scan_slice(const gram_run *r, int n, int a, uint32_t *mask) {
    int count = 0, t = 0;
#ifdef __SSE2__
    const __m128i one = _mm_set1_epi8(1), top = _mm_set1_epi8((char)(a - 1));
    for (; t + 32 <= n; t += 32) { /* len - 1 <= a - 1, unsigned: a len of 0 wraps to 255 */
        __m128i v0 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(r->len + t)), one);
        __m128i v1 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(r->len + t + 16)), one);
        uint32_t w = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v0, top), v0)) |
                     (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v1, top), v1)) << 16;
        mask[t >> 5] = w;
        count += __builtin_popcount(w);
    }
#endif
    for (; t < n; t++)
        if ((unsigned)r->len[t] - 1 < (unsigned)a) {
            mask[t >> 5] |= 1u << (t & 31);
            count++;
        }
    return count;
}

int gram_vocab_run_slice(const gram_vocab *v, int index, int a, uint32_t *mask) {
    struct gram_vocab_runs *rs = v->runs;
    size_t words = ((size_t)v->n_tokens + 31) / 32;
    a = a > GRAM_SLICE_MAX ? GRAM_SLICE_MAX : a;
    pthread_mutex_lock(&rs->mu);
    gram_run *r = rs->run[index];
    const uint32_t *kept = r->slice[a - 1]; /* (kept bitsets never change nor go until the vocabulary does) */
    int count = r->slice_count[a - 1];
    pthread_mutex_unlock(&rs->mu);
    if (kept) {
        memcpy(mask, kept, words * sizeof *mask);
        return count;
    }
    memset(mask, 0, words * sizeof *mask);
    count = run_scan_slice(r, v->n_tokens, a, mask);
    pthread_mutex_lock(&rs->mu);
    uint32_t *q = !r->slice[a - 1] && rs->slice_bytes + words * sizeof *q <= GRAM_RUN_SLICE_BYTES
                      ? malloc(words * sizeof *q) : NULL; /* (no room, or no memory: scanned again next time) */
    if (q) {
        memcpy(q, mask, words * sizeof *q);
        r->slice[a - 1] = q;
        r->slice_count[a - 1] = count;
        r->bytes += words * sizeof *q;
        rs->slice_bytes += words * sizeof *q;
    }
    pthread_mutex_unlock(&rs->mu);
    return count;
}

/* Set len[t] (its length) for each token t that holds byte b before its last byte and has none yet;
 * returns how many. */
static int holders(const gram_vocab *v, unsigned char b, size_t *len) {
    const unsigned char *text = v->text, *end = text + v->text_off[v->n_tokens];
    int count = 0;
    for (const unsigned char *p = memchr(text, b, (size_t)(end - text)); p;
         p = p + 1 < end ? memchr(p + 1, b, (size_t)(end - p - 1)) : NULL) {
        uint32_t off = (uint32_t)(p - text);
        int lo = 0, hi = v->n_tokens - 1; /* the token that holds off: the last to begin at or before it */
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (v->text_off[mid] <= off) lo = mid;
            else hi = mid - 1;
        }
        if (off + 1 < v->text_off[lo + 1] && !len[lo]) len[lo] = v->text_off[lo + 1] - v->text_off[lo], count++;
    }
    return count;
}

/* The trie of the tokens that hold a byte of set before their last byte, or NULL when more than
 * n_tokens / GRAM_EXIT_SHARE do. */
static int exits_new(const gram_vocab *v, const uint32_t set[8], gram_vocab **out) {
    int n = v->n_tokens, count = 0, rc = 0;
    size_t *len = calloc((size_t)n + 1, sizeof *len);
    const unsigned char **tp = malloc(((size_t)n + 1) * sizeof *tp);
    *out = NULL;
    if (!len || !tp) {
        rc = vc_errf(VC_ENOMEM, "grammar vocab: out of memory");
        goto done;
    }
    int bytes = 0;
    for (int w = 0; w < 8; w++) bytes += __builtin_popcount(set[w]);
    for (int t = 0; t < n; t++) tp[t] = v->text + v->text_off[t];
    for (unsigned b = 0; b < 256 && bytes <= 4; b++) /* a few bytes: found in the text at once */
        if (set[b >> 5] >> (b & 31) & 1) count += holders(v, (unsigned char)b, len);
    for (int t = 0; t < n && bytes > 4; t++) {
        uint32_t l = v->text_off[t + 1] - v->text_off[t];
        for (uint32_t j = 0; j + 1 < l && !len[t]; j++)
            if (set[tp[t][j] >> 5] >> (tp[t][j] & 31) & 1) len[t] = l, count++;
    }
    if (count <= n / GRAM_EXIT_SHARE) rc = vocab_build(tp, len, n, out);
done:
    free(len);
    free(tp);
    return rc;
}

/* Count the tokens that hold each byte before their last (rs->held). */
static void count_held(const gram_vocab *v, struct gram_vocab_runs *rs) {
    int last[256]; /* the last token counted for each byte */
    memset(last, 0xff, sizeof last);
    for (int t = 0; t < v->n_tokens; t++) {
        const unsigned char *c = v->text + v->text_off[t];
        for (uint32_t j = 0, l = v->text_off[t + 1] - v->text_off[t]; j + 1 < l; j++)
            if (last[c[j]] != t) last[c[j]] = t, rs->held[c[j]]++;
    }
}

int gram_vocab_exits(const gram_vocab *v, const uint32_t set[8], const gram_vocab **out) {
    struct gram_vocab_runs *rs = v->runs;
    int rc = 0, i = 0;
    *out = NULL;
    if (!rs) return 0;
    for (int b = 0; b < 256; b++) /* (held is written once, before the vocabulary is shared) */
        if ((set[b >> 5] >> (b & 31) & 1) && rs->held[b] > v->n_tokens / GRAM_EXIT_SHARE) return 0;
    pthread_mutex_lock(&rs->mu);
    while (i < rs->n_exits && memcmp(rs->exit_set[i], set, sizeof rs->exit_set[i])) i++;
    if (i == rs->n_exits && i < GRAM_VOCAB_EXITS && !(rc = exits_new(v, set, &rs->exits[i]))) {
        memcpy(rs->exit_set[i], set, sizeof rs->exit_set[i]);
        rs->n_exits++;
    }
    if (i < rs->n_exits) *out = rs->exits[i];
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

/* The byte set of a character class given as ranges ("azAZ09" and single bytes). */
static void ascii_set(const char *ranges, const char *singles, uint32_t set[4]) {
    memset(set, 0, 4 * sizeof *set);
    for (const char *r = ranges; r[0] && r[1]; r += 2)
        for (unsigned b = (unsigned char)r[0]; b <= (unsigned char)r[1]; b++) set[b >> 5] |= 1u << (b & 31);
    for (const char *c = singles; *c; c++) set[(unsigned char)*c >> 5] |= 1u << ((unsigned char)*c & 31);
}

/* The email format's runs (internal.h): its local part, a domain label, a label's first byte. */
static int email_runs(const gram_vocab *v) {
    static const char *const singles[] = {"._%+-", "-", ""};
    const gram_run *r;
    int rc = 0, index;
    for (int i = 0; i < 3 && !rc; i++) {
        uint32_t set[4];
        ascii_set("azAZ09", singles[i], set);
        rc = gram_vocab_run(v, set, v->n_tokens / GRAM_RUN_MIN_SHARE, &r, &index);
    }
    return rc;
}

int gram_vocab_new(const unsigned char *const *tok, const size_t *len, int n, gram_vocab **out) {
    /* made now, as most grammars hold strings: what closes a JSON string, and an email's local part */
    static const uint32_t quote[8] = {0, 1u << ('"' - 32)}, at[8] = {0, 0, 1u << ('@' - 64)};
    const gram_vocab *q;
    int rc = vocab_build(tok, len, n, out);
    if (!rc) rc = build_slices(*out, tok, len, n);
    if (!rc) count_held(*out, (*out)->runs);
    if (!rc) rc = gram_vocab_exits(*out, quote, &q);
    if (!rc) rc = gram_vocab_exits(*out, at, &q);
    if (!rc) rc = email_runs(*out);
    if (rc) {
        gram_vocab_free(*out);
        *out = NULL;
    }
    return rc;
}

static int vocab_build(const unsigned char *const *tok, const size_t *len, int n, gram_vocab **out) {
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
