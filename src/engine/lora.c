/* engine/lora: the reference-counted adapter object (see lora.h). */
#include "engine/lora.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "base/err.h"

struct eng_lora {
    atomic_int refs;
    int id, n_layers, max_rank;
    const rn_lora_weight *w;
    void *owner;
    void (*free_owner)(void *);
};

int eng_lora_new(int id, const rn_lora_weight *w, int n_layers, void *owner, void (*free_owner)(void *),
                 eng_lora **out) {
    *out = NULL;
    if (id <= 0 || !w || n_layers <= 0) return vc_errf(VC_EINVAL, "LoRA adapter: bad id or weights");
    eng_lora *l = calloc(1, sizeof *l);
    if (!l) return vc_errf(VC_ENOMEM, "out of memory");
    atomic_init(&l->refs, 1);
    l->id = id, l->n_layers = n_layers, l->w = w, l->owner = owner, l->free_owner = free_owner;
    for (int i = 0; i < n_layers * RN_LORA_MODULES; i++)
        if (w[i].rank > l->max_rank) l->max_rank = w[i].rank;
    *out = l;
    return VC_OK;
}

eng_lora *eng_lora_ref(eng_lora *l) {
    if (l) atomic_fetch_add(&l->refs, 1);
    return l;
}

void eng_lora_unref(eng_lora *l) {
    if (!l || atomic_fetch_sub(&l->refs, 1) != 1) return;
    if (l->free_owner) l->free_owner(l->owner);
    free(l);
}

int eng_lora_id(const eng_lora *l) { return l->id; }
int eng_lora_refs(const eng_lora *l) { return atomic_load(&((eng_lora *)l)->refs); }
const rn_lora_weight *eng_lora_weights(const eng_lora *l) { return l->w; }
int eng_lora_max_rank(const eng_lora *l) { return l->max_rank; }

typedef struct {
    rn_lora_weight *w;
    void *data;
} random_adapter;

static void random_free(void *p) {
    random_adapter *ra = p;
    free(ra->w);
    free(ra->data);
    free(ra);
}

static float uniform(uint64_t *x, float div) {
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return ((float)(*x % 2001) - 1000.0f) / div;
}

int eng_lora_random(const model_config *c, be_dtype wdt, int id, unsigned mask, int rank, int zero_b, uint64_t seed,
                    eng_lora **out) {
    *out = NULL;
    size_t total = 0;
    for (int k = 0; k < RN_LORA_MODULES; k++) {
        int64_t in, o;
        rn_lora_dims(c, k, &in, &o);
        total += (size_t)rank * (size_t)(in + o);
    }
    random_adapter *ra = calloc(1, sizeof *ra);
    if (ra) ra->w = calloc((size_t)c->n_layers * RN_LORA_MODULES, sizeof *ra->w);
    if (ra && ra->w) ra->data = malloc(total * (size_t)c->n_layers * sizeof(float));
    if (!ra || !ra->w || !ra->data) {
        if (ra) random_free(ra);
        return vc_errf(VC_ENOMEM, "out of memory for a random LoRA adapter");
    }
    float *p = ra->data;
    uint64_t x = seed;
    for (int l = 0; l < c->n_layers; l++)
        for (int k = 0; k < RN_LORA_MODULES; k++) {
            if (!(mask >> k & 1)) continue;
            int64_t in, o;
            rn_lora_dims(c, k, &in, &o);
            rn_lora_weight *w = &ra->w[l * RN_LORA_MODULES + k];
            *w = (rn_lora_weight){rank, 2.0f, p, p + (size_t)rank * (size_t)in, BE_F32};
            for (int64_t i = 0; i < rank * in; i++) *p++ = uniform(&x, 1000.0f) / sqrtf((float)in);
            for (int64_t i = 0; i < rank * o; i++) {
                float v = uniform(&x, 2000.0f) / sqrtf((float)rank);
                *p++ = zero_b ? 0.0f : v;
            }
        }
    /* in the model's dtype, as the registry keeps a loaded adapter */
    rn_lora_weight *pw;
    void *pd;
    int rc = rn_lora_prepare(c, wdt, ra->w, &pw, &pd);
    if (rc) {
        random_free(ra);
        return rc;
    }
    free(ra->w);
    free(ra->data);
    ra->w = pw, ra->data = pd;
    rc = eng_lora_new(id, ra->w, c->n_layers, ra, random_free, out);
    if (rc) random_free(ra);
    return rc;
}
