/* structured: structured-output request fields -> a cached, compiled grammar (see structured.h). */
#include "server/structured.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/sbuf.h"
#include "grammar/compile.h"
#include "grammar/schema.h"

/* Bounds of one compilation: a schema or regex that would expand beyond them is a 400. */
#define SO_MAX_ELEMS 400000
#define SO_MAX_REPEAT 1000

typedef struct {
    char *key;               /* kind, options and text, NUL-separated (key_len bytes) */
    size_t key_len;
    gram_grammar *g;         /* one reference held by the cache */
    unsigned long long used; /* LRU clock */
} so_entry;

struct so_cache {
    pthread_mutex_t mu;
    so_entry *e;
    int n, cap;
    unsigned long long clock;
};

int so_cache_new(int capacity, so_cache **out) {
    so_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc((size_t)(capacity > 0 ? capacity : 1), sizeof *c->e))) {
        free(c);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    c->cap = capacity > 0 ? capacity : 1;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return VC_OK;
}

void so_cache_free(so_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].key);
        gram_free(c->e[i].g);
    }
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static gram_grammar *lookup(so_cache *c, const char *key, size_t n) {
    gram_grammar *g = NULL;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->n && !g; i++)
        if (c->e[i].key_len == n && !memcmp(c->e[i].key, key, n)) {
            c->e[i].used = ++c->clock;
            g = gram_retain(c->e[i].g);
        }
    pthread_mutex_unlock(&c->mu);
    return g;
}

/* Keep g under key (the cache takes its own reference); the least recently used entry makes room. */
static void insert(so_cache *c, const char *key, size_t n, gram_grammar *g) {
    char *k = malloc(n);
    if (!k) return; /* not cached: compiled again next time */
    memcpy(k, key, n);
    pthread_mutex_lock(&c->mu);
    int slot = c->n < c->cap ? c->n++ : 0;
    if (slot == 0 && c->n == c->cap) {
        for (int i = 1; i < c->n; i++)
            if (c->e[i].used < c->e[slot].used) slot = i;
        free(c->e[slot].key);
        gram_free(c->e[slot].g);
    }
    c->e[slot] = (so_entry){k, n, gram_retain(g), ++c->clock};
    pthread_mutex_unlock(&c->mu);
}

/* ---- the request's constraint ---- */

enum { SO_NONE, SO_JSON, SO_REGEX, SO_CHOICE, SO_GRAMMAR, SO_JSON_OBJECT };

typedef struct {
    int kind;
    const cJSON *value;      /* the schema (object, or a string holding one), regex, choice list, grammar */
    const char *field;       /* where it came from, for messages */
    int strict, any_ws;
} so_spec;

static const cJSON *field(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return x && !cJSON_IsNull(x) ? x : NULL;
}

static int set(so_spec *s, int kind, const cJSON *v, const char *f, srv_error *err) {
    if (s->kind != SO_NONE)
        return srv_fail(err, 400, f, "You can only use one kind of structured outputs constraint but multiple are "
                                     "specified (%s and %s)", s->field, f);
    s->kind = kind, s->value = v, s->field = f;
    return 0;
}

static int read_response_format(const cJSON *rf, so_spec *s, srv_error *err) {
    const cJSON *t = field(rf, "type");
    if (!cJSON_IsObject(rf) || !cJSON_IsString(t))
        return srv_fail_parse(err, "response_format", "'response_format' must be an object with a 'type'");
    if (!strcmp(t->valuestring, "text")) return 0;
    if (!strcmp(t->valuestring, "json_object")) return set(s, SO_JSON_OBJECT, NULL, "response_format", err);
    if (strcmp(t->valuestring, "json_schema"))
        return srv_fail(err, 400, "response_format", "response_format type '%.100s' is not supported (text, "
                                                     "json_object, json_schema)", t->valuestring);
    const cJSON *js = field(rf, "json_schema"), *schema = js ? field(js, "schema") : NULL, *strict;
    if (!cJSON_IsObject(js) || !schema)
        return srv_fail_parse(err, "response_format", "response_format json_schema needs 'json_schema': {'name', "
                                                      "'schema'}");
    if ((strict = field(js, "strict")) && !cJSON_IsBool(strict))
        return srv_fail_parse(err, "response_format", "'json_schema.strict' must be a boolean");
    s->strict = cJSON_IsTrue(strict);
    return set(s, SO_JSON, schema, "response_format", err);
}

static int read_structured_outputs(const cJSON *so, so_spec *s, srv_error *err) {
    if (!cJSON_IsObject(so)) return srv_fail_parse(err, "structured_outputs", "'structured_outputs' must be an object");
    static const struct {
        const char *key;
        int kind;
    } kinds[] = {{"json", SO_JSON}, {"regex", SO_REGEX}, {"choice", SO_CHOICE}, {"grammar", SO_GRAMMAR}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const cJSON *v = field(so, kinds[i].key);
        if (v && set(s, kinds[i].kind, v, "structured_outputs", err)) return -1;
    }
    const cJSON *jo = field(so, "json_object"), *ws = field(so, "disable_any_whitespace");
    if (jo && !cJSON_IsBool(jo)) return srv_fail_parse(err, "structured_outputs", "'json_object' must be a boolean");
    if (cJSON_IsTrue(jo) && set(s, SO_JSON_OBJECT, NULL, "structured_outputs", err)) return -1;
    if (ws && !cJSON_IsBool(ws))
        return srv_fail_parse(err, "structured_outputs", "'disable_any_whitespace' must be a boolean");
    if (cJSON_IsTrue(ws)) s->any_ws = 0;
    if (field(so, "whitespace_pattern"))
        return srv_fail(err, 400, "structured_outputs", "'whitespace_pattern' is not supported by this server");
    if (field(so, "structural_tag"))
        return srv_fail(err, 400, "structured_outputs", "'structural_tag' is not supported by this server");
    return 0;
}

static int read_spec(const cJSON *body, so_spec *s, srv_error *err) {
    memset(s, 0, sizeof *s);
    s->any_ws = 1;
    const cJSON *rf = field(body, "response_format"), *so = field(body, "structured_outputs");
    if (rf && read_response_format(rf, s, err)) return -1;
    if (so && read_structured_outputs(so, s, err)) return -1;
    static const struct {
        const char *key;
        int kind;
    } old[] = {{"guided_json", SO_JSON}, {"guided_regex", SO_REGEX}, {"guided_choice", SO_CHOICE},
               {"guided_grammar", SO_GRAMMAR}};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) {
        const cJSON *v = field(body, old[i].key);
        if (v && set(s, old[i].kind, v, old[i].key, err)) return -1;
    }
    if (field(body, "guided_whitespace_pattern"))
        return srv_fail(err, 400, "guided_whitespace_pattern", "'guided_whitespace_pattern' is not supported by this "
                                                               "server");
    return 0;
}

/* The cache key: kind, options, then the constraint's text (a schema as compact JSON). */
static char *spec_key(const so_spec *s, size_t *n, srv_error *err) {
    sbuf k = {0};
    sb_printf(&k, "%d %d %d", s->kind, s->strict, s->any_ws);
    sb_raw(&k, "", 1);
    if (s->kind == SO_CHOICE) {
        const cJSON *e;
        cJSON_ArrayForEach(e, s->value) {
            if (!cJSON_IsString(e)) {
                sb_free(&k);
                srv_fail_parse(err, s->field, "the choices must be a list of strings");
                return NULL;
            }
            sb_str(&k, e->valuestring);
            sb_raw(&k, "", 1);
        }
    } else if (cJSON_IsString(s->value)) {
        sb_str(&k, s->value->valuestring);
    } else if (s->value) {
        char *t = cJSON_PrintUnformatted(s->value);
        if (t) sb_str(&k, t);
        else k.oom = 1;
        free(t);
    }
    char *key = sb_take(&k, n);
    if (!key) srv_fail(err, 500, NULL, "out of memory");
    return key;
}

static int compile_json(const so_spec *s, gram_grammar **g) {
    gram_schema_opts o = {.any_whitespace = s->any_ws, .strict = s->strict, .lim = {SO_MAX_ELEMS, SO_MAX_REPEAT}};
    if (s->kind == SO_JSON_OBJECT) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *t = obj ? cJSON_AddStringToObject(obj, "type", "object") : NULL;
        int rc = t ? gram_from_json_schema(obj, &o, g) : vc_errf(VC_ENOMEM, "out of memory");
        cJSON_Delete(obj);
        return rc;
    }
    if (!cJSON_IsString(s->value)) return gram_from_json_schema(s->value, &o, g);
    js_error je;
    cJSON *schema = js_parse(s->value->valuestring, strlen(s->value->valuestring), &je);
    if (!schema) return vc_errf(je.oom ? VC_ENOMEM : VC_EINVAL, "the schema is not valid JSON: %s", je.message);
    int rc = gram_from_json_schema(schema, &o, g);
    cJSON_Delete(schema);
    return rc;
}

static int compile(const so_spec *s, gram_grammar **g) {
    gram_limits lim = {SO_MAX_ELEMS, SO_MAX_REPEAT};
    const cJSON *v = s->value;
    switch (s->kind) {
    case SO_REGEX:
        if (!cJSON_IsString(v)) return vc_errf(VC_EINVAL, "the regex must be a string");
        return gram_from_regex(v->valuestring, strlen(v->valuestring), &lim, g);
    case SO_GRAMMAR:
        if (!cJSON_IsString(v)) return vc_errf(VC_EINVAL, "the grammar must be a string");
        return gram_from_gbnf(v->valuestring, strlen(v->valuestring), &lim, g);
    case SO_CHOICE: {
        int n = cJSON_GetArraySize(v), i = 0;
        if (!cJSON_IsArray(v) || n == 0) return vc_errf(VC_EINVAL, "the choices must be a non-empty list of strings");
        const char **str = calloc((size_t)n, sizeof *str);
        size_t *len = calloc((size_t)n, sizeof *len);
        int rc = str && len ? 0 : vc_errf(VC_ENOMEM, "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            if (rc) break;
            str[i] = e->valuestring;
            len[i++] = strlen(e->valuestring);
        }
        if (!rc) rc = gram_from_choice(str, len, n, g);
        free(str);
        free(len);
        return rc;
    }
    default:
        if (s->kind == SO_JSON && !cJSON_IsObject(v) && !cJSON_IsBool(v) && !cJSON_IsString(v))
            return vc_errf(VC_EINVAL, "the JSON schema must be an object (or a string holding one)");
        return compile_json(s, g);
    }
}

int so_from_request(so_cache *c, const cJSON *body, gram_grammar **g, srv_error *err) {
    *g = NULL;
    so_spec s;
    if (read_spec(body, &s, err)) return -1;
    if (s.kind == SO_NONE) return 0;
    size_t n;
    char *key = spec_key(&s, &n, err);
    if (!key) return -1;
    if (c && (*g = lookup(c, key, n))) {
        free(key);
        return 0;
    }
    int rc = compile(&s, g);
    if (rc) {
        free(key);
        *g = NULL;
        if (rc == VC_ENOMEM) return srv_fail(err, 500, NULL, "out of memory");
        return srv_fail(err, 400, s.field, "%s: %s", s.field, vc_errmsg());
    }
    if (c) insert(c, key, n, *g);
    free(key);
    return 0;
}
