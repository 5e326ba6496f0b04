/* spec: a structured-output constraint -> a cached, compiled grammar (see spec.h). */
#include "grammar/spec.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/sbuf.h"
#include "grammar/compile.h"
#include "grammar/schema.h"

static int fail(gram_spec_error *e, int code, int shape, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(gram_spec_error *e, int code, int shape, const char *field, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    e->shape = shape;
    e->field = field;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}
#define FAIL_SHAPE(e, field, ...) fail(e, VC_EINVAL, 1, field, __VA_ARGS__)
#define FAIL_VALUE(e, field, ...) fail(e, VC_EINVAL, 0, field, __VA_ARGS__)
#define FAIL_NOMEM(e) fail(e, VC_ENOMEM, 0, NULL, "out of memory")

/* ---- reading ---- */

void gram_spec_init(gram_spec *s) {
    memset(s, 0, sizeof *s);
    s->any_ws = 1;
}

int gram_spec_set(gram_spec *s, gram_spec_kind kind, const cJSON *v, const char *f, gram_spec_error *err) {
    if (s->kind != GRAM_SPEC_NONE)
        return FAIL_VALUE(err, f, "You can only use one kind of structured outputs constraint but multiple are "
                                  "specified (%s and %s)", s->field, f);
    s->kind = kind, s->value = v, s->field = f;
    return 0;
}

static int read_response_format(const cJSON *rf, gram_spec *s, gram_spec_error *err) {
    const cJSON *t = js_field(rf, "type");
    if (!cJSON_IsObject(rf) || !cJSON_IsString(t))
        return FAIL_SHAPE(err, "response_format", "'response_format' must be an object with a 'type'");
    if (!strcmp(t->valuestring, "text")) {
        s->text = 1;
        return 0;
    }
    if (!strcmp(t->valuestring, "json_object"))
        return gram_spec_set(s, GRAM_SPEC_JSON_OBJECT, NULL, "response_format", err);
    if (strcmp(t->valuestring, "json_schema"))
        return FAIL_VALUE(err, "response_format", "response_format type '%.100s' is not supported (text, "
                                                  "json_object, json_schema)", t->valuestring);
    const cJSON *js = js_field(rf, "json_schema"), *schema = js ? js_field(js, "schema") : NULL, *strict;
    if (!cJSON_IsObject(js) || !schema)
        return FAIL_SHAPE(err, "response_format", "response_format json_schema needs 'json_schema': {'name', "
                                                  "'schema'}");
    if ((strict = js_field(js, "strict")) && !cJSON_IsBool(strict))
        return FAIL_SHAPE(err, "response_format", "'json_schema.strict' must be a boolean");
    s->strict = cJSON_IsTrue(strict);
    return gram_spec_set(s, GRAM_SPEC_JSON, schema, "response_format", err);
}

static int read_structured_outputs(const cJSON *so, gram_spec *s, gram_spec_error *err) {
    if (!cJSON_IsObject(so)) return FAIL_SHAPE(err, "structured_outputs", "'structured_outputs' must be an object");
    static const struct {
        const char *key;
        gram_spec_kind kind;
    } kinds[] = {{"json", GRAM_SPEC_JSON}, {"regex", GRAM_SPEC_REGEX}, {"choice", GRAM_SPEC_CHOICE},
                 {"grammar", GRAM_SPEC_GRAMMAR}};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const cJSON *v = js_field(so, kinds[i].key);
        if (v && gram_spec_set(s, kinds[i].kind, v, "structured_outputs", err)) return VC_EINVAL;
    }
    const cJSON *jo = js_field(so, "json_object"), *ws = js_field(so, "disable_any_whitespace");
    if (jo && !cJSON_IsBool(jo)) return FAIL_SHAPE(err, "structured_outputs", "'json_object' must be a boolean");
    if (cJSON_IsTrue(jo) && gram_spec_set(s, GRAM_SPEC_JSON_OBJECT, NULL, "structured_outputs", err))
        return VC_EINVAL;
    if (ws && !cJSON_IsBool(ws))
        return FAIL_SHAPE(err, "structured_outputs", "'disable_any_whitespace' must be a boolean");
    if (cJSON_IsTrue(ws)) s->any_ws = 0;
    const cJSON *wp = js_field(so, "whitespace_pattern");
    if (wp && !cJSON_IsNull(wp) && !cJSON_IsString(wp))
        return FAIL_SHAPE(err, "structured_outputs", "'whitespace_pattern' must be a string");
    if (cJSON_IsString(wp)) s->ws_pattern = wp->valuestring;
    if (js_field(so, "structural_tag"))
        return FAIL_VALUE(err, "structured_outputs", "'structural_tag' is not supported by this server");
    return 0;
}

int gram_spec_read(const cJSON *obj, gram_spec *s, gram_spec_error *err) {
    gram_spec_init(s);
    const cJSON *rf = js_field(obj, "response_format"), *so = js_field(obj, "structured_outputs");
    if (rf && read_response_format(rf, s, err)) return VC_EINVAL;
    if (so && read_structured_outputs(so, s, err)) return VC_EINVAL;
    static const struct {
        const char *key;
        gram_spec_kind kind;
    } old[] = {{"guided_json", GRAM_SPEC_JSON}, {"guided_regex", GRAM_SPEC_REGEX},
               {"guided_choice", GRAM_SPEC_CHOICE}, {"guided_grammar", GRAM_SPEC_GRAMMAR}};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++) {
        const cJSON *v = js_field(obj, old[i].key);
        if (v && gram_spec_set(s, old[i].kind, v, old[i].key, err)) return VC_EINVAL;
    }
    const cJSON *wp = js_field(obj, "guided_whitespace_pattern");
    if (wp && !cJSON_IsNull(wp) && !cJSON_IsString(wp))
        return FAIL_SHAPE(err, "guided_whitespace_pattern", "'guided_whitespace_pattern' must be a string");
    if (cJSON_IsString(wp) && !s->ws_pattern) s->ws_pattern = wp->valuestring;
    return 0;
}

/* ---- compiling ---- */

/* The cache key: kind, options, then the constraint's text (a schema as compact JSON). */
static char *spec_key(const gram_spec *s, size_t *n, gram_spec_error *err) {
    sbuf k = {0};
    sb_printf(&k, "%d %d %d", (int)s->kind, s->strict, s->any_ws);
    sb_raw(&k, "", 1);
    if (s->ws_pattern && (s->kind == GRAM_SPEC_JSON || s->kind == GRAM_SPEC_JSON_OBJECT)) {
        sb_str(&k, "ws:");
        sb_str(&k, s->ws_pattern);
    }
    sb_raw(&k, "", 1);
    if (s->kind == GRAM_SPEC_CHOICE) {
        const cJSON *e;
        cJSON_ArrayForEach(e, s->value) {
            if (!cJSON_IsString(e)) {
                sb_free(&k);
                FAIL_SHAPE(err, s->field, "the choices must be a list of strings");
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
    if (!key) FAIL_NOMEM(err);
    return key;
}

static int compile_json(const gram_spec *s, gram_grammar **g) {
    gram_schema_opts o = {.any_whitespace = s->any_ws, .strict = s->strict,
                          .lim = {GRAM_SPEC_MAX_ELEMS, GRAM_SPEC_MAX_REPEAT}, .ws_pattern = s->ws_pattern};
    if (s->kind == GRAM_SPEC_JSON_OBJECT) {
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

/* Errors through vc_errf, for gram_spec_compile to word. */
static int compile(const gram_spec *s, gram_grammar **g) {
    gram_limits lim = {GRAM_SPEC_MAX_ELEMS, GRAM_SPEC_MAX_REPEAT};
    const cJSON *v = s->value;
    switch (s->kind) {
    case GRAM_SPEC_REGEX:
        if (!cJSON_IsString(v)) return vc_errf(VC_EINVAL, "the regex must be a string");
        return gram_from_regex(v->valuestring, strlen(v->valuestring), &lim, g);
    case GRAM_SPEC_GRAMMAR:
        if (!cJSON_IsString(v)) return vc_errf(VC_EINVAL, "the grammar must be a string");
        return gram_from_gbnf(v->valuestring, strlen(v->valuestring), &lim, g);
    case GRAM_SPEC_CHOICE: {
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
    default: /* JSON, JSON_OBJECT */
        if (s->kind == GRAM_SPEC_JSON && !cJSON_IsObject(v) && !cJSON_IsBool(v) && !cJSON_IsString(v))
            return vc_errf(VC_EINVAL, "the JSON schema must be an object (or a string holding one)");
        return compile_json(s, g);
    }
}

/* ---- the cache ---- */

typedef struct {
    char *key;               /* kind, options and text, NUL-separated (key_len bytes) */
    size_t key_len;
    gram_grammar *g;         /* one reference held by the cache */
    unsigned long long used; /* LRU clock */
} spec_entry;

struct gram_spec_cache {
    pthread_mutex_t mu;
    spec_entry *e;           /* [cap], the first n used */
    int n, cap;
    unsigned long long clock;
};

int gram_spec_cache_new(int capacity, gram_spec_cache **out) {
    gram_spec_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc((size_t)(capacity > 0 ? capacity : 1), sizeof *c->e))) {
        free(c);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    c->cap = capacity > 0 ? capacity : 1;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return VC_OK;
}

void gram_spec_cache_free(gram_spec_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->e[i].key);
        gram_free(c->e[i].g);
    }
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static gram_grammar *lookup(gram_spec_cache *c, const char *key, size_t n) {
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
static void insert(gram_spec_cache *c, const char *key, size_t n, gram_grammar *g) {
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
    c->e[slot] = (spec_entry){k, n, gram_retain(g), ++c->clock};
    pthread_mutex_unlock(&c->mu);
}

int gram_spec_compile(gram_spec_cache *c, const gram_spec *s, gram_grammar **g, gram_spec_error *err) {
    *g = NULL;
    if (s->kind == GRAM_SPEC_NONE || !s->field) return FAIL_VALUE(err, NULL, "no constraint to compile");
    size_t n;
    char *key = spec_key(s, &n, err);
    if (!key) return err->code;
    if (c && (*g = lookup(c, key, n))) {
        free(key);
        return 0;
    }
    int rc = compile(s, g);
    if (rc) {
        free(key);
        *g = NULL;
        if (rc == VC_ENOMEM) return FAIL_NOMEM(err);
        return FAIL_VALUE(err, s->field, "%s: %s", s->field, vc_errmsg());
    }
    if (c) insert(c, key, n, *g);
    free(key);
    return 0;
}
