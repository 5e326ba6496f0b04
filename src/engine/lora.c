/* engine/lora: the reference-counted adapter object (see lora.h). */
#include "engine/lora.h"

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
