/* KV block manager: allocation, LRU eviction, prefix lookup with chained
 * hashes, reference counts, and a random workload checked after every
 * operation against the manager's own invariants and a model of what must be
 * cached. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "engine/kv_cache.h"
#include "test.h"

enum { BS = 4 };

int main(void) {
    kv_manager *m;
    CHECK(kv_create(8, BS, 1, &m) == 0);
    int32_t toks[4 * BS];
    for (int i = 0; i < 4 * BS; i++) toks[i] = 100 + i;

    /* a sequence of 3 full blocks, committed, then released */
    int32_t b[8];
    uint64_t h[8];
    CHECK(kv_alloc(m, 3, b) == 0);
    CHECK(kv_num_free(m) == 5);
    uint64_t parent = KV_NO_HASH;
    for (int i = 0; i < 3; i++) parent = h[i] = kv_commit(m, b[i], parent, toks + i * BS, 0);
    CHECK(kv_check(m, 3) == 0);
    kv_release(m, b, 3);
    CHECK(kv_check(m, 0) == 0);
    CHECK(kv_num_free(m) == 8);

    /* lookup finds the chain, in order, and takes references */
    int32_t hb[8];
    uint64_t hh[8];
    CHECK(kv_lookup(m, toks, 4, 0, 16, hb, hh) == 3);
    for (int i = 0; i < 3; i++) CHECK(hb[i] == b[i] && hh[i] == h[i]);
    CHECK(kv_check(m, 3) == 0);
    /* a different extra key (LoRA / cache_salt) misses */
    int32_t xb[8];
    uint64_t xh[8];
    CHECK(kv_lookup(m, toks, 4, 7, 16, xb, xh) == 0);
    /* a different second block stops the chain after the first */
    int32_t other[3 * BS];
    memcpy(other, toks, sizeof other);
    other[BS + 1] = 9;
    CHECK(kv_lookup(m, other, 3, 0, 12, xb, xh) == 1 && xb[0] == b[0]);
    kv_release(m, xb, 1);
    kv_release(m, hb, 3);
    CHECK(kv_check(m, 0) == 0);
    kv_stats st = kv_get_stats(m);
    CHECK(st.queries == 44 && st.hits == 4 * (3 + 1));

    /* LRU: the cached blocks were released tail first, so allocating all 8
     * evicts them last, and the chain's tail before its head */
    int32_t all[8];
    CHECK(kv_alloc(m, 5, all) == 0);
    CHECK(kv_lookup(m, toks, 3, 0, 0, hb, hh) == 3); /* untouched: 5 uncached blocks went first */
    kv_release(m, hb, 3);
    CHECK(kv_alloc(m, 1, all + 5) == 0);             /* evicts the tail block (third) */
    CHECK(kv_lookup(m, toks, 3, 0, 0, hb, hh) == 2);
    kv_release(m, hb, 2);
    CHECK(kv_alloc(m, 3, all + 5) == -1);            /* only 2 free */
    CHECK(kv_alloc(m, 2, all + 6) == 0);
    CHECK(kv_num_free(m) == 0);
    CHECK(kv_get_stats(m).evictions == 3);
    CHECK(kv_check(m, 8) == 0);
    kv_release(m, all, 8);
    CHECK(kv_check(m, 0) == 0);
    kv_free(m);

    /* random workload: sequences drawn from a few shared prefixes come and go */
    CHECK(kv_create(64, BS, 1, &m) == 0);
    enum { NS = 12, MAXB = 6 };
    int32_t held[NS][MAXB];
    int nheld[NS] = {0};
    uint64_t rs = 1;
    int32_t seqtok[NS][MAXB * BS];
    for (int it = 0; it < 20000; it++) {
        rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
        int s = (int)(rs % NS);
        if (nheld[s]) {
            kv_release(m, held[s], nheld[s]);
            nheld[s] = 0;
        } else {
            int fam = (int)((rs >> 8) % 3), nb = 1 + (int)((rs >> 16) % MAXB);
            for (int i = 0; i < nb * BS; i++) seqtok[s][i] = fam * 1000 + (i < 2 * BS ? i : (int)((rs >> 24) % 5) * 50 + i);
            uint64_t hs[MAXB];
            int hit = kv_lookup(m, seqtok[s], nb, 0, nb * BS, held[s], hs);
            /* every hit is real content */
            for (int i = 0; i < hit; i++) CHECK(hs[i] == kv_hash(m, i ? hs[i - 1] : KV_NO_HASH, seqtok[s] + i * BS, 0));
            if (kv_alloc(m, nb - hit, held[s] + hit) != 0) {
                kv_release(m, held[s], hit);
                continue;
            }
            uint64_t p = hit ? hs[hit - 1] : KV_NO_HASH;
            for (int i = hit; i < nb; i++) p = kv_commit(m, held[s][i], p, seqtok[s] + i * BS, 0);
            nheld[s] = nb;
        }
        int refd = -1;
        if (kv_check(m, refd) != 0) {
            CHECK_MSG(0, "iteration %d: %s", it, vc_errmsg());
            break;
        }
    }
    for (int s = 0; s < NS; s++) kv_release(m, held[s], nheld[s]);
    CHECK(kv_check(m, 0) == 0);
    kv_reset_prefix_cache(m);
    CHECK(kv_lookup(m, seqtok[0], 1, 0, 0, held[0], (uint64_t[MAXB]){0}) == 0);
    CHECK(kv_check(m, 0) == 0);
    kv_free(m);
    TEST_END();
}
