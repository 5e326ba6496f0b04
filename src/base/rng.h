/* rng: the project's one pseudo-random generator: xoshiro256** seeded through
 * splitmix64. State lives with its user (a request, a weight generator), so a
 * seed reproduces a stream whatever else runs. Not for cryptography. */
#ifndef VLLMC_BASE_RNG_H
#define VLLMC_BASE_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} vc_rng;

/* splitmix64: advances *x and returns the next output (also a good seed mixer). */
static inline uint64_t vc_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void vc_rng_seed(vc_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = vc_splitmix64(&seed);
}

static inline uint64_t vc_rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static inline uint64_t vc_rng_next(vc_rng *r) {
    uint64_t *s = r->s;
    uint64_t res = vc_rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = vc_rng_rotl(s[3], 45);
    return res;
}

#endif
