/* util: growable buffers, hashing, the string and pair hash maps, UTF-8 and
 * the Unicode character classes the tokenizer components need.
 *
 * Maps use open addressing with linear probing at load factor <= 1/2; they
 * only grow. Character classes follow Rust's definitions (char::is_whitespace,
 * regex's \w, char::is_numeric), built on utf8proc's general categories. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/err.h"
#include "tok_internal.h"

int tok_buf_grow(tok_buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len) return vc_errf(VC_ENOMEM, "buffer too large");
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < need) nc *= 2;
    char *ns = realloc(b->s, nc);
    if (!ns) return vc_errf(VC_ENOMEM, "out of memory");
    b->s = ns;
    b->cap = nc;
    return 0;
}

int tok_buf_put(tok_buf *b, const void *p, size_t n) {
    if (b->cap - b->len <= n || !b->s) {
        int rc = tok_buf_grow(b, n);
        if (rc) return rc;
    }
    if (n) memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

void tok_buf_free(tok_buf *b) {
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

uint64_t tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
    }
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

/* ---- string map ---- */

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

int tok_smap_init(tok_smap *m, size_t expected) {
    m->n = 0;
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->cap; i++) m->slots[i].val = INT32_MIN;
    return 0;
}

static int smap_grow(tok_smap *m) {
    size_t nc = m->cap * 2;
    tok_smap_slot *ns = malloc(nc * sizeof *ns);
    if (!ns) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i < nc; i++) ns[i].val = INT32_MIN;
    for (size_t i = 0; i < m->cap; i++) {
        tok_smap_slot *s = &m->slots[i];
        if (s->val == INT32_MIN) continue;
        size_t j = s->h & (nc - 1);
        while (ns[j].val != INT32_MIN) j = (j + 1) & (nc - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = nc;
    return 0;
}

int tok_smap_put(tok_smap *m, const char *pool, uint32_t off, uint32_t len, int32_t val) {
    if (!m->slots && tok_smap_init(m, 16)) return VC_ENOMEM;
    if ((m->n + 1) * 2 > m->cap && smap_grow(m)) return VC_ENOMEM;
    uint32_t h = (uint32_t)tok_hash(pool + off, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].val != INT32_MIN) {
        tok_smap_slot *s = &m->slots[j];
        if (s->h == h && s->len == len && memcmp(pool + s->off, pool + off, len) == 0) {
            s->val = val;
            s->off = off;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (tok_smap_slot){off, len, val, h};
    m->n++;
    return 0;
}

int32_t tok_smap_get(const tok_smap *m, const char *pool, const char *key, size_t len) {
    if (!m->slots) return -1;
    uint32_t h = (uint32_t)tok_hash(key, len);
    size_t j = h & (m->cap - 1);
    while (m->slots[j].val != INT32_MIN) {
        const tok_smap_slot *s = &m->slots[j];
        if (s->h == h && s->len == len && memcmp(pool + s->off, key, len) == 0) return s->val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

void tok_smap_free(tok_smap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ---- pair map ---- */

static inline uint64_t pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

int tok_pmap_init(tok_pmap *m, size_t expected) {
    m->n = 0;
    m->cap = pow2_at_least(expected * 2 + 1);
    m->slots = malloc(m->cap * sizeof *m->slots);
    if (!m->slots) return vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->cap; i++) m->slots[i].key = UINT64_MAX;
    return 0;
}

int tok_pmap_put(tok_pmap *m, uint32_t a, uint32_t b, uint32_t rank, int32_t id) {
    if (!m->slots && tok_pmap_init(m, 16)) return VC_ENOMEM;
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap * 2;
        tok_pslot *ns = malloc(nc * sizeof *ns);
        if (!ns) return vc_errf(VC_ENOMEM, "out of memory");
        for (size_t i = 0; i < nc; i++) ns[i].key = UINT64_MAX;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].key == UINT64_MAX) continue;
            size_t j = pair_hash(m->slots[i].key) & (nc - 1);
            while (ns[j].key != UINT64_MAX) j = (j + 1) & (nc - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = nc;
    }
    uint64_t k = (uint64_t)a << 32 | b;
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) {
            /* a repeated merge: the later one wins, as in Rust's HashMap collect */
            m->slots[j].rank = rank;
            m->slots[j].id = id;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (tok_pslot){k, rank, id};
    m->n++;
    return 0;
}

const tok_pslot *tok_pmap_get(const tok_pmap *m, uint32_t a, uint32_t b) {
    if (!m->slots) return NULL;
    uint64_t k = (uint64_t)a << 32 | b;
    size_t j = pair_hash(k) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == k) return &m->slots[j];
        j = (j + 1) & (m->cap - 1);
    }
    return NULL;
}

void tok_pmap_free(tok_pmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

/* ---- UTF-8 ---- */

size_t tok_u8dec(const char *s, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if (u[0] < 0xE0) {
        *cp = (uint32_t)(u[0] & 0x1F) << 6 | (u[1] & 0x3F);
        return 2;
    }
    if (u[0] < 0xF0) {
        *cp = (uint32_t)(u[0] & 0x0F) << 12 | (uint32_t)(u[1] & 0x3F) << 6 | (u[2] & 0x3F);
        return 3;
    }
    *cp = (uint32_t)(u[0] & 0x07) << 18 | (uint32_t)(u[1] & 0x3F) << 12 | (uint32_t)(u[2] & 0x3F) << 6 |
          (u[3] & 0x3F);
    return 4;
}

size_t tok_u8enc(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 63));
        o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63));
    o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

size_t tok_u8check(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) k = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else return i;
        if (n - i < k || s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t j = 2; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80) return i;
        i += k;
    }
    return n;
}

/* ---- Unicode classes ---- */

int tok_is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int cat(uint32_t c) { return (int)utf8proc_category((utf8proc_int32_t)c); }

int tok_is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == 0x200C || c == 0x200D) return 1; /* Join_Control */
    /* Other_Alphabetic symbols (So): circled / squared / negative Latin letters */
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return 1;
    switch (cat(c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_PC: return 1;
    default: return 0;
    }
}

int tok_is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

int tok_is_punct(uint32_t c) {
    if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                         (c >= 0x7B && c <= 0x7E);
    int k = cat(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

int tok_is_mn(uint32_t c) { return c >= 0x300 && cat(c) == UTF8PROC_CATEGORY_MN; }

char *tok_strndup(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void tok_ids_free(tok_ids *v) {
    free(v->ids);
    v->ids = NULL;
    v->n = v->cap = 0;
}

void tok_text_free(tok_text *t) {
    free(t->s);
    t->s = NULL;
    t->len = t->cap = 0;
}

int tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        int32_t *ni = realloc(v->ids, nc * sizeof *ni);
        if (!ni) return vc_errf(VC_ENOMEM, "out of memory");
        v->ids = ni;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return 0;
}

int tok_ids_append(tok_ids *v, const int32_t *ids, size_t n) {
    if (v->cap - v->n < n) {
        size_t nc = v->cap ? v->cap : 64;
        while (nc - v->n < n) nc *= 2;
        int32_t *ni = realloc(v->ids, nc * sizeof *ni);
        if (!ni) return vc_errf(VC_ENOMEM, "out of memory");
        v->ids = ni;
        v->cap = nc;
    }
    if (n) memcpy(v->ids + v->n, ids, n * sizeof *ids);
    v->n += n;
    return 0;
}
