#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

typedef struct {
    int32_t ref;
    int32_t prev, next;   /* free queue links (-1: none) */
    int in_free;
    int hashed;
    uint64_t hash, parent, extra;
} kv_block;

struct kv_manager {
    int n, bs, caching;
    kv_block *b;
    int32_t *tokens;      /* [n * bs]: content of hashed blocks, for verification */
    int32_t head, tail;   /* free queue */
    int n_free, n_ref;
    int32_t *map;         /* open addressing, linear probing: block id or -1 */
    uint64_t map_mask;
    kv_stats st;
};

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
    return h;
}

uint64_t kv_hash(const kv_manager *m, uint64_t parent, const int32_t *tokens, uint64_t extra) {
    uint64_t h = mix(0x6a09e667f3bcc909ull, parent);
    h = mix(h, extra);
    for (int i = 0; i < m->bs; i++) h = mix(h, (uint32_t)tokens[i]);
    return h == KV_NO_HASH ? 1 : h;
}

int kv_create(int num_blocks, int block_size, int enable_prefix_caching, kv_manager **out) {
    *out = NULL;
    if (num_blocks < 1 || block_size < 1) return vc_errf(VC_EINVAL, "kv cache: need at least one block of one token");
    kv_manager *m = calloc(1, sizeof *m);
    if (!m) return vc_errf(VC_ENOMEM, "out of memory");
    m->n = num_blocks;
    m->bs = block_size;
    m->caching = enable_prefix_caching;
    uint64_t cap = 16;
    while (cap < 2ull * (uint64_t)num_blocks) cap <<= 1;
    m->map_mask = cap - 1;
    m->b = calloc((size_t)num_blocks, sizeof *m->b);
    m->tokens = enable_prefix_caching ? malloc(sizeof(int32_t) * (size_t)num_blocks * (size_t)block_size) : NULL;
    m->map = malloc(sizeof(int32_t) * (size_t)cap);
    if (!m->b || !m->map || (enable_prefix_caching && !m->tokens)) {
        kv_free(m);
        return vc_errf(VC_ENOMEM, "kv cache: out of memory for %d blocks", num_blocks);
    }
    memset(m->map, 0xff, sizeof(int32_t) * (size_t)cap);
    for (int i = 0; i < num_blocks; i++) {
        m->b[i].prev = i - 1;
        m->b[i].next = i + 1 < num_blocks ? i + 1 : -1;
        m->b[i].in_free = 1;
    }
    m->head = 0;
    m->tail = num_blocks - 1;
    m->n_free = num_blocks;
    *out = m;
    return VC_OK;
}

void kv_free(kv_manager *m) {
    if (!m) return;
    free(m->b);
    free(m->tokens);
    free(m->map);
    free(m);
}

int kv_num_blocks(const kv_manager *m) { return m->n; }
int kv_block_size(const kv_manager *m) { return m->bs; }
int kv_num_free(const kv_manager *m) { return m->n_free; }
double kv_usage(const kv_manager *m) { return (double)m->n_ref / (double)m->n; }
kv_stats kv_get_stats(const kv_manager *m) { return m->st; }

static void q_remove(kv_manager *m, int32_t i) {
    kv_block *b = &m->b[i];
    if (b->prev >= 0) m->b[b->prev].next = b->next;
    else m->head = b->next;
    if (b->next >= 0) m->b[b->next].prev = b->prev;
    else m->tail = b->prev;
    b->prev = b->next = -1;
    b->in_free = 0;
    m->n_free--;
}

static void q_push_tail(kv_manager *m, int32_t i) {
    kv_block *b = &m->b[i];
    b->prev = m->tail;
    b->next = -1;
    if (m->tail >= 0) m->b[m->tail].next = i;
    else m->head = i;
    m->tail = i;
    b->in_free = 1;
    m->n_free++;
}

static int32_t map_find(const kv_manager *m, uint64_t h) {
    for (uint64_t i = h & m->map_mask;; i = (i + 1) & m->map_mask) {
        int32_t id = m->map[i];
        if (id < 0) return -1;
        if (m->b[id].hash == h) return id;
    }
}

static void map_insert(kv_manager *m, int32_t id) {
    uint64_t i = m->b[id].hash & m->map_mask;
    while (m->map[i] >= 0) i = (i + 1) & m->map_mask;
    m->map[i] = id;
}

/* Backward-shift deletion keeps probe chains intact without tombstones. */
static void map_delete(kv_manager *m, int32_t id) {
    uint64_t i = m->b[id].hash & m->map_mask;
    while (m->map[i] != id) i = (i + 1) & m->map_mask;
    uint64_t j = i;
    for (;;) {
        j = (j + 1) & m->map_mask;
        int32_t e = m->map[j];
        if (e < 0) break;
        uint64_t home = m->b[e].hash & m->map_mask;
        /* e may move to i if its home is not in (i, j] cyclically */
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->map[i] = e;
            i = j;
        }
    }
    m->map[i] = -1;
}

static void unhash(kv_manager *m, int32_t id) {
    if (!m->b[id].hashed) return;
    map_delete(m, id);
    m->b[id].hashed = 0;
}

int kv_lookup(kv_manager *m, const int32_t *tokens, int max_blocks, uint64_t extra, int n_query_tokens,
              int32_t *blocks, uint64_t *hashes) {
    m->st.queries += (uint64_t)(n_query_tokens > 0 ? n_query_tokens : 0);
    if (!m->caching) return 0;
    uint64_t parent = KV_NO_HASH;
    int hit = 0;
    for (; hit < max_blocks; hit++) {
        const int32_t *t = tokens + (size_t)hit * m->bs;
        uint64_t h = kv_hash(m, parent, t, extra);
        int32_t id = map_find(m, h);
        if (id < 0) break;
        kv_block *b = &m->b[id];
        if (b->parent != parent || b->extra != extra ||
            memcmp(m->tokens + (size_t)id * m->bs, t, sizeof(int32_t) * (size_t)m->bs) != 0)
            break; /* a 64-bit collision: treat as a miss */
        if (b->ref == 0) {
            q_remove(m, id);
            m->n_ref++;
        }
        b->ref++;
        blocks[hit] = id;
        hashes[hit] = h;
        parent = h;
    }
    m->st.hits += (uint64_t)hit * (uint64_t)m->bs;
    return hit;
}

int kv_alloc(kv_manager *m, int n, int32_t *out) {
    if (n > m->n_free) return -1;
    for (int i = 0; i < n; i++) {
        int32_t id = m->head;
        q_remove(m, id);
        if (m->b[id].hashed) {
            unhash(m, id);
            m->st.evictions++;
        }
        m->b[id].ref = 1;
        m->n_ref++;
        out[i] = id;
    }
    return 0;
}

void kv_release(kv_manager *m, const int32_t *blocks, int n) {
    for (int i = n - 1; i >= 0; i--) {
        kv_block *b = &m->b[blocks[i]];
        if (b->ref <= 0) continue; /* defensive: never underflow */
        if (--b->ref == 0) {
            m->n_ref--;
            q_push_tail(m, blocks[i]);
        }
    }
}

uint64_t kv_commit(kv_manager *m, int32_t block, uint64_t parent, const int32_t *tokens, uint64_t extra) {
    uint64_t h = kv_hash(m, parent, tokens, extra);
    if (!m->caching) return h;
    kv_block *b = &m->b[block];
    if (b->hashed) return h; /* already registered (a block found by lookup) */
    if (map_find(m, h) >= 0) return h;          /* same content held by another block */
    b->hash = h;
    b->parent = parent;
    b->extra = extra;
    b->hashed = 1;
    memcpy(m->tokens + (size_t)block * m->bs, tokens, sizeof(int32_t) * (size_t)m->bs);
    map_insert(m, block);
    return h;
}

void kv_uncommit(kv_manager *m, int32_t block) { unhash(m, block); }

void kv_reset_prefix_cache(kv_manager *m) {
    for (int i = 0; i < m->n; i++)
        if (m->b[i].ref == 0) unhash(m, i);
}

int kv_check(const kv_manager *m, int referenced) {
    int nfree = 0, nref = 0, nhashed = 0, inmap = 0;
    for (int32_t i = m->head, prev = -1; i >= 0; prev = i, i = m->b[i].next) {
        if (m->b[i].prev != prev || !m->b[i].in_free || m->b[i].ref != 0)
            return vc_errf(VC_ERR, "kv: free queue broken at block %d", i);
        if (++nfree > m->n) return vc_errf(VC_ERR, "kv: free queue loops");
    }
    for (int i = 0; i < m->n; i++) {
        if (m->b[i].ref < 0) return vc_errf(VC_ERR, "kv: block %d has refcount %d", i, m->b[i].ref);
        if (m->b[i].ref > 0) nref++;
        if ((m->b[i].ref == 0) != m->b[i].in_free) return vc_errf(VC_ERR, "kv: block %d free flag wrong", i);
        if (m->b[i].hashed) {
            nhashed++;
            if (map_find(m, m->b[i].hash) != i) return vc_errf(VC_ERR, "kv: block %d not found by its hash", i);
        }
    }
    for (uint64_t i = 0; i <= m->map_mask; i++) inmap += m->map[i] >= 0;
    if (nfree != m->n_free || nref != m->n_ref || nfree + nref != m->n)
        return vc_errf(VC_ERR, "kv: %d free + %d referenced != %d blocks", nfree, nref, m->n);
    if (inmap != nhashed) return vc_errf(VC_ERR, "kv: map holds %d entries, %d blocks hashed", inmap, nhashed);
    if (referenced >= 0 && nref != referenced)
        return vc_errf(VC_ERR, "kv: %d blocks referenced, expected %d", nref, referenced);
    return VC_OK;
}
