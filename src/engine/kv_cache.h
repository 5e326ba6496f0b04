/* kv_cache: the block pool of the paged KV cache, with prefix caching.
 *
 * Only block ids live here; the K/V memory itself belongs to the runner. A
 * block has a reference count (sequences using it) and, once full and
 * committed, a chained hash of (parent block hash, its block_size tokens,
 * extra key) that makes it findable by later sequences with the same prefix.
 * Blocks with no references sit in a free queue in LRU order: allocation takes
 * the head, and a cached block found by a lookup leaves the queue. A cached
 * block is evicted (its hash forgotten) only when allocation reaches it.
 * Hash hits are verified against the stored tokens, parent and extra key, so a
 * 64-bit collision can never hand out the wrong K/V.
 *
 * Single-threaded: owned and used by the engine thread. */
#ifndef VLLMC_ENGINE_KV_CACHE_H
#define VLLMC_ENGINE_KV_CACHE_H

#include <stdint.h>

typedef struct kv_manager kv_manager;

#define KV_NO_HASH 0ull /* parent hash of a sequence's first block */

int kv_create(int num_blocks, int block_size, int enable_prefix_caching, kv_manager **out);
void kv_free(kv_manager *m);

int kv_num_blocks(const kv_manager *m);
int kv_block_size(const kv_manager *m);
/* Blocks that allocation could hand out now (unreferenced, cached or not). */
int kv_num_free(const kv_manager *m);
/* Fraction of blocks referenced by sequences, 0..1 (vllm:kv_cache_usage_perc). */
double kv_usage(const kv_manager *m);

/* Longest run of full cached blocks matching tokens[0 .. max_blocks*block_size),
 * in order. Takes a reference on each hit; writes their ids and chained hashes.
 * Returns the number of blocks hit. Counts `n_query_tokens` queried tokens
 * and the hit tokens for the prefix-cache counters. */
int kv_lookup(kv_manager *m, const int32_t *tokens, int max_blocks, uint64_t extra, int n_query_tokens,
              int32_t *blocks, uint64_t *hashes);
/* Take n fresh blocks (evicting cached ones in LRU order); all or nothing.
 * Returns 0, or -1 when fewer than n are free. */
int kv_alloc(kv_manager *m, int n, int32_t *out);
/* Drop one reference from each block, last block first, so that a sequence's
 * tail is evicted before its (more shareable) head. */
void kv_release(kv_manager *m, const int32_t *blocks, int n);
/* Register a full block: its hash chains parent, tokens[0..block_size) and
 * extra. Returns the hash (also when another block already holds it). */
uint64_t kv_commit(kv_manager *m, int32_t block, uint64_t parent, const int32_t *tokens, uint64_t extra);
/* Take back a kv_commit of this block whose K/V were never written (the step that was to compute
 * them failed): lookups no longer find it. */
void kv_uncommit(kv_manager *m, int32_t block);
/* Hash of a block's content without registering anything. */
uint64_t kv_hash(const kv_manager *m, uint64_t parent, const int32_t *tokens, uint64_t extra);
/* Forget every cached hash of unreferenced blocks (vLLM's reset_prefix_cache). */
void kv_reset_prefix_cache(kv_manager *m);

typedef struct {
    uint64_t queries;    /* prompt tokens looked up */
    uint64_t hits;       /* of those, served from cache */
    uint64_t evictions;  /* cached blocks reused for new content */
} kv_stats;
kv_stats kv_get_stats(const kv_manager *m);

/* Consistency check for tests: free queue, reference counts and hash map agree;
 * `referenced` is the expected number of blocks with refcount > 0 (or -1 to skip). */
int kv_check(const kv_manager *m, int referenced);

#endif
