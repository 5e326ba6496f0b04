/* lora/registry: named LoRA adapters, loaded on demand within --max-cpu-loras (see registry.h). */
#include "lora/registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "hub/hub.h"
#include "lora/adapter.h"

_Static_assert((int)LORA_Q == (int)RN_LORA_Q && (int)LORA_O == (int)RN_LORA_O && (int)LORA_DOWN == (int)RN_LORA_DOWN &&
                   (int)LORA_N_MODULES == (int)RN_LORA_MODULES,
               "the adapter's module order is the runner's");

typedef struct {
    char *name, *path, *base, *dir; /* dir: the local folder path resolves to */
    int id;
    eng_lora *lora;   /* loaded: the registry's reference; NULL when dropped from memory */
    uint64_t used;    /* LRU stamp */
} entry;

struct lora_registry {
    pthread_mutex_t mu;
    lora_reg_opts o;
    char *download_dir, *revision;
    lora_shape shape;
    entry *e;
    int n, cap, next_id, n_loaded;
    uint64_t clock;
};

/* what an eng_lora owns: its weights as the runner reads them, in the model's dtype (rn_lora_prepare) */
typedef struct {
    rn_lora_weight *w;
    void *data;
} owned;

static void free_owned(void *p) {
    owned *o = p;
    free(o->w);
    free(o->data);
    free(o);
}

int lora_reg_new(const lora_reg_opts *o, lora_registry **out) {
    *out = NULL;
    if (!o->m || o->max_lora_rank < 1 || o->max_cpu_loras < 1)
        return vc_errf(VC_EINVAL, "LoRA: --max-lora-rank and --max-cpu-loras must be at least 1");
    lora_registry *r = calloc(1, sizeof *r);
    if (!r) return vc_errf(VC_ENOMEM, "out of memory");
    r->o = *o;
    r->download_dir = o->download_dir ? strdup(o->download_dir) : NULL;
    r->revision = o->revision ? strdup(o->revision) : NULL;
    if ((o->download_dir && !r->download_dir) || (o->revision && !r->revision)) {
        free(r->download_dir);
        free(r);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    r->o.download_dir = r->download_dir, r->o.revision = r->revision;
    const model_config *c = &o->m->cfg;
    r->shape = (lora_shape){c->n_layers, c->hidden_size, c->n_heads * c->head_dim, c->n_kv_heads * c->head_dim,
                            c->intermediate_size};
    r->next_id = 1;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return VC_OK;
}

static void entry_free(entry *x) {
    eng_lora_unref(x->lora);
    free(x->name);
    free(x->path);
    free(x->base);
    free(x->dir);
}

void lora_reg_free(lora_registry *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) entry_free(&r->e[i]);
    free(r->e);
    free(r->download_dir);
    free(r->revision);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static entry *find(lora_registry *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->e[i].name, name)) return &r->e[i];
    return NULL;
}

/* Read x's adapter from its folder into an eng_lora (the registry's reference). */
static int load(lora_registry *r, entry *x) {
    lora_adapter *a = NULL;
    int rc = lora_adapter_load(x->dir, &r->shape, r->o.max_lora_rank, &a);
    if (rc) return rc;
    size_t n = (size_t)a->n_layers * LORA_N_MODULES;
    owned *ow = calloc(1, sizeof *ow);
    rn_lora_weight *w = calloc(n, sizeof *w);
    if (!ow || !w) {
        free(ow);
        free(w);
        lora_adapter_free(a);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) /* the module order is the runner's (RN_LORA_Q .. RN_LORA_DOWN) */
        w[i] = (rn_lora_weight){a->w[i].rank, a->w[i].scale, a->w[i].a, a->w[i].b, BE_F32};
    /* converted once here (the adapter's dtype to the model's, PEFT's scale into B), not at each slot load */
    rc = rn_lora_prepare(&r->o.m->cfg, r->o.m->wdtype, w, &ow->w, &ow->data);
    int n_layers = a->n_layers;
    free(w);
    lora_adapter_free(a);
    if (rc) {
        free(ow);
        return rc;
    }
    if ((rc = eng_lora_new(x->id, ow->w, n_layers, ow, free_owned, &x->lora))) {
        free_owned(ow);
        return rc;
    }
    return VC_OK;
}

/* Keep at most max_cpu_loras adapters in memory: drop the least recently used others. */
static void trim(lora_registry *r, const entry *keep) {
    while (r->n_loaded > r->o.max_cpu_loras) {
        entry *lru = NULL;
        for (int i = 0; i < r->n; i++)
            if (r->e[i].lora && &r->e[i] != keep && (!lru || r->e[i].used < lru->used)) lru = &r->e[i];
        if (!lru) return;
        eng_lora_unref(lru->lora);
        lru->lora = NULL;
        r->n_loaded--;
    }
}

/* The adapter's folder is resolved (a Hub id may download) and read without the lock, so that requests
 * naming other adapters do not wait for it; the name is checked again when the entry goes in. */
int lora_reg_add(lora_registry *r, const char *name, const char *path, const char *base) {
    if (!name || !*name || !path || !*path) return vc_errf(VC_EINVAL, "a LoRA adapter needs a name and a path");
    pthread_mutex_lock(&r->mu);
    int taken = find(r, name) != NULL, id = r->next_id++;
    pthread_mutex_unlock(&r->mu);
    if (taken) return vc_errf(VC_EEXIST, "The lora adapter '%s' has already been loaded.", name);
    entry x = {.name = strdup(name), .path = strdup(path), .base = base ? strdup(base) : NULL, .id = id};
    int rc = VC_OK;
    if (!x.name || !x.path || (base && !x.base)) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
    } else {
        hub_opts ho = {r->o.revision, r->o.download_dir, -1};
        rc = hub_resolve(path, &ho, &x.dir);
        if (rc) vc_err_prefix(rc, "LoRA adapter '%s'", name);
    }
    if (!rc && (rc = load(r, &x))) vc_err_prefix(rc, "LoRA adapter '%s' (%s)", name, path);
    if (rc) {
        entry_free(&x);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    if (find(r, name)) {
        rc = vc_errf(VC_EEXIST, "The lora adapter '%s' has already been loaded.", name);
    } else if (r->n == r->cap) {
        int nc = r->cap ? 2 * r->cap : 8;
        entry *ne = realloc(r->e, (size_t)nc * sizeof *ne);
        if (!ne) rc = vc_errf(VC_ENOMEM, "out of memory");
        else r->e = ne, r->cap = nc;
    }
    if (!rc) {
        r->n_loaded++; /* load() counted nothing: x was not in the table yet */
        x.used = ++r->clock;
        r->e[r->n++] = x;
        trim(r, &r->e[r->n - 1]);
    }
    pthread_mutex_unlock(&r->mu);
    if (rc) entry_free(&x);
    return rc;
}

int lora_reg_remove(lora_registry *r, const char *name) {
    pthread_mutex_lock(&r->mu);
    entry *x = find(r, name);
    int rc = VC_OK;
    if (!x) {
        rc = vc_errf(VC_ENOENT, "The lora adapter '%s' cannot be found.", name);
    } else {
        if (x->lora) r->n_loaded--;
        entry_free(x);
        memmove(x, x + 1, (size_t)(r->e + r->n - (x + 1)) * sizeof *x);
        r->n--;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int lora_reg_get(lora_registry *r, const char *name, eng_lora **out) {
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    entry *x = find(r, name);
    int rc = VC_OK;
    if (!x) {
        rc = vc_errf(VC_ENOENT, "The model `%s` does not exist.", name);
    } else if (!x->lora) { /* dropped from memory past --max-cpu-loras: read it again */
        if ((rc = load(r, x))) vc_err_prefix(rc, "LoRA adapter '%s' (%s)", name, x->path);
        else r->n_loaded++;
    }
    if (!rc) {
        x->used = ++r->clock;
        *out = eng_lora_ref(x->lora);
        trim(r, x);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void lora_reg_each(lora_registry *r, void (*fn)(void *arg, const char *name, const char *path, const char *base, int id),
                   void *arg) {
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) fn(arg, r->e[i].name, r->e[i].path, r->e[i].base, r->e[i].id);
    pthread_mutex_unlock(&r->mu);
}

char *lora_reg_name_of(lora_registry *r, int id) {
    char *s = NULL;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n && !s; i++)
        if (r->e[i].id == id) s = strdup(r->e[i].name);
    pthread_mutex_unlock(&r->mu);
    return s;
}
