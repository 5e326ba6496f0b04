/* models: /v1/models, runtime LoRA loading and the adapter names of the metrics (see models.h).
 * Shapes, statuses and messages follow vLLM's serving_models.py: a ModelCard per served name (root:
 * the model, parent null, max_model_len set) then per adapter (root: the path as given, parent: its
 * base_model_name when that is a served name, else the first served name, max_model_len null). */
#include "server/models.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "lora/registry.h"

/* One ModelCard; max_model_len < 0: null. */
static void card(sbuf *o, const srv_server *s, int index, const char *id, const char *root, const char *parent,
                 int max_model_len) {
    sb_str(o, index ? ",{\"id\":" : "{\"id\":");
    sb_jstrz(o, id);
    sb_printf(o, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"vllm\",\"root\":", s->created);
    sb_jstrz(o, root);
    sb_str(o, ",\"parent\":");
    sb_jstrz(o, parent);
    if (max_model_len >= 0) sb_printf(o, ",\"max_model_len\":%d", max_model_len);
    else sb_str(o, ",\"max_model_len\":null");
    sb_printf(o, ",\"permission\":[{\"id\":\"modelperm-%d\",\"object\":\"model_permission\",\"created\":%ld,"
                 "\"allow_create_engine\":false,\"allow_sampling\":true,\"allow_logprobs\":true,"
                 "\"allow_search_indices\":false,\"allow_view\":true,\"allow_fine_tuning\":false,"
                 "\"organization\":\"*\",\"group\":null,\"is_blocking\":false}]}",
              index, s->created);
}

typedef struct {
    sbuf *o;
    const srv_server *s;
    int index;
} cards_ctx;

static void adapter_card(void *arg, const char *name, const char *path, const char *base, int id) {
    (void)id;
    cards_ctx *x = arg;
    card(x->o, x->s, x->index++, name, path, base ? base : x->s->ctx.names[0], -1);
}

char *models_list(srv_server *s, size_t *len) {
    sbuf o = {0};
    sb_str(&o, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < s->ctx.n_names; i++) card(&o, s, i, s->ctx.names[i], s->model_root, NULL, s->ctx.max_model_len);
    if (s->cfg.loras) {
        cards_ctx x = {&o, s, s->ctx.n_names};
        lora_reg_each(s->cfg.loras, adapter_card, &x);
    }
    sb_str(&o, "]}");
    return sb_take(&o, len);
}

typedef struct {
    const char *name;
    int found;
} find_ctx;

static void find_name(void *arg, const char *name, const char *path, const char *base, int id) {
    (void)path, (void)base, (void)id;
    find_ctx *x = arg;
    x->found |= !strcmp(x->name, name);
}

int models_has(srv_server *s, const char *name) {
    for (int i = 0; i < s->ctx.n_names; i++)
        if (!strcmp(name, s->ctx.names[i])) return 1;
    find_ctx x = {name, 0};
    if (s->cfg.loras) lora_reg_each(s->cfg.loras, find_name, &x);
    return x.found;
}

/* ---- POST /v1/load_lora_adapter, /v1/unload_lora_adapter ---- */

/* The body as an object, and its string field k (*v NULL when absent): -1 with err on a wrong type,
 * as pydantic's validation answers (400 "Bad Request"). */
static cJSON *read_body(const char *body, size_t len, srv_error *err) {
    js_error je;
    cJSON *o = js_parse(body, len, &je);
    if (!o) {
        if (je.oom) srv_fail(err, 500, NULL, "out of memory");
        else srv_fail_parse(err, NULL, "JSON decode error: %s", je.message);
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        srv_fail_parse(err, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    return o;
}

static int str_field(const cJSON *o, const char *k, int required, const char **v, srv_error *err) {
    const cJSON *x = js_field(o, k);
    *v = NULL;
    if (!x) return required ? srv_fail_parse(err, k, "%s: Field required", k) : 0;
    if (!cJSON_IsString(x)) return srv_fail_parse(err, k, "%s: Input should be a valid string", k);
    *v = x->valuestring;
    return 0;
}

static int success(const char *fmt, const char *name, char **out, size_t *out_len, srv_error *err) {
    sbuf t = {0};
    sb_printf(&t, fmt, name);
    if (!(*out = sb_take(&t, out_len))) return srv_fail(err, 500, NULL, "out of memory");
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* vLLM answers 404 "No adapter found" when the adapter's files are not there at all (a folder without
 * adapter_config.json, a path that is neither a folder nor a Hub repo): FileNotFoundError in its loader. */
static int no_adapter_there(const char *path) {
    if (!is_dir(path)) return 1;
    char *cfg = vc_path_join(path, "adapter_config.json");
    int missing = cfg && !vc_file_exists(cfg);
    free(cfg);
    return missing;
}

int models_load(srv_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_error *err) {
    *out = NULL;
    cJSON *o = read_body(body, len, err);
    if (!o) return -1;
    const char *name, *path;
    int inplace = 0, rc = -1;
    const cJSON *li = js_field(o, "load_inplace");
    if (str_field(o, "lora_name", 1, &name, err) || str_field(o, "lora_path", 1, &path, err)) goto out;
    if (li && !cJSON_IsBool(li)) {
        srv_fail_parse(err, "load_inplace", "load_inplace: Input should be a valid boolean");
        goto out;
    }
    inplace = cJSON_IsTrue(li);
    if (!*name || !*path) {
        srv_fail(err, 400, NULL, "Both 'lora_name' and 'lora_path' must be provided.");
        err->type = "InvalidUserInput";
        goto out;
    }
    if (!s->cfg.loras) { /* vLLM: the engine refuses add_lora */
        srv_fail(err, 400, NULL, "LoRA is not enabled. Use --enable-lora to enable LoRA.");
        goto out;
    }
    if (inplace) { /* vLLM reloads the adapter under its id; vllmc's registry has no such operation */
        srv_fail(err, 400, "load_inplace", "load_inplace is not supported by vllmc: unload the adapter, then load it");
        goto out;
    }
    int lrc = lora_reg_add(s->cfg.loras, name, path, NULL);
    if (lrc == VC_EEXIST) {
        srv_fail(err, 400, NULL, "%s", vc_errmsg());
        err->type = "InvalidUserInput";
    } else if (lrc == VC_ENOMEM) {
        srv_fail(err, 500, NULL, "%s", vc_errmsg());
    } else if (lrc == VC_EIO && no_adapter_there(path)) {
        char prefix[600]; /* the registry's "LoRA adapter 'NAME' (PATH): ", said once already */
        snprintf(prefix, sizeof prefix, "LoRA adapter '%s' (%s): ", name, path);
        const char *why = vc_errmsg();
        if (!strncmp(why, prefix, strlen(prefix))) why += strlen(prefix);
        srv_fail(err, 404, NULL, "Loading lora %s failed: No adapter found for %s (%s)", name, path, why);
    } else if (lrc) {
        srv_fail(err, 400, NULL, "%s", vc_errmsg());
    } else {
        fprintf(stderr, "INFO vllmc: LoRA adapter '%s' loaded from '%s'\n", name, path);
        rc = success("Success: LoRA adapter '%s' added successfully.", name, out, out_len, err);
    }
out:
    cJSON_Delete(o);
    return rc;
}

int models_unload(srv_server *s, const char *body, size_t len, char **out, size_t *out_len, srv_error *err) {
    *out = NULL;
    cJSON *o = read_body(body, len, err);
    if (!o) return -1;
    const char *name;
    int rc = -1;
    if (str_field(o, "lora_name", 1, &name, err)) goto out;
    if (!*name) {
        srv_fail(err, 400, NULL, "'lora_name' needs to be provided to unload a LoRA adapter.");
        err->type = "InvalidUserInput";
        goto out;
    }
    /* requests running with it keep their references: they finish with it; new ones get a 404 */
    if (!s->cfg.loras || lora_reg_remove(s->cfg.loras, name)) {
        srv_fail(err, 404, NULL, "The lora adapter '%s' cannot be found.", name);
        goto out;
    }
    fprintf(stderr, "INFO vllmc: LoRA adapter '%s' removed\n", name);
    rc = success("Success: LoRA adapter '%s' removed successfully.", name, out, out_len, err);
out:
    cJSON_Delete(o);
    return rc;
}

/* ---- adapter names for vllm:lora_requests_info ---- */

void models_init(srv_server *s) { pthread_mutex_init(&s->lora_mu, NULL); }

void models_seen(srv_server *s, int id, const char *name) {
    pthread_mutex_lock(&s->lora_mu);
    int k = 0;
    while (k < s->n_lora_seen && s->lora_seen[k].id != id) k++;
    if (k == s->n_lora_seen) { /* one entry per adapter ever loaded: a few bytes each */
        if (s->n_lora_seen == s->cap_lora_seen) {
            int nc = s->cap_lora_seen ? 2 * s->cap_lora_seen : 16;
            struct srv_lora_name *ns = realloc(s->lora_seen, sizeof *ns * (size_t)nc);
            if (ns) s->lora_seen = ns, s->cap_lora_seen = nc;
        }
        char *copy = s->n_lora_seen < s->cap_lora_seen ? strdup(name) : NULL;
        if (copy) s->lora_seen[s->n_lora_seen++] = (struct srv_lora_name){id, copy};
        /* out of memory: the name is looked up in the registry instead */
    }
    pthread_mutex_unlock(&s->lora_mu);
}

char *models_names(srv_server *s, const int *ids, int n) {
    sbuf o = {0};
    sb_str(&o, "");
    for (int i = 0; i < n; i++) {
        char *reg = NULL;
        const char *name = NULL;
        pthread_mutex_lock(&s->lora_mu);
        for (int k = 0; k < s->n_lora_seen && !name; k++)
            if (s->lora_seen[k].id == ids[i]) name = s->lora_seen[k].name;
        if (name) sb_printf(&o, "%s%s", i ? "," : "", name);
        pthread_mutex_unlock(&s->lora_mu);
        if (name) continue;
        if (s->cfg.loras && (reg = lora_reg_name_of(s->cfg.loras, ids[i]))) sb_printf(&o, "%s%s", i ? "," : "", reg);
        else sb_printf(&o, "%s%d", i ? "," : "", ids[i]);
        free(reg);
    }
    return sb_take(&o, NULL);
}

void models_free(srv_server *s) {
    for (int k = 0; k < s->n_lora_seen; k++) free(s->lora_seen[k].name);
    free(s->lora_seen);
    s->lora_seen = NULL;
    s->n_lora_seen = s->cap_lora_seen = 0;
    pthread_mutex_destroy(&s->lora_mu);
}
