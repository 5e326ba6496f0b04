/* chat.c: the public API of template.h: compile, render with JSON variables, render a chat the
 * way transformers' apply_chat_template calls the template (messages, tools, documents,
 * add_generation_prompt, special tokens, chat_template_kwargs), and find a model's template and
 * special tokens in its folder. Errors become VC_E* codes with a vc_errf() message that names the
 * template line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/file.h"
#include "base/json.h"
#include "template/jinja.h"

struct tmpl_template {
    jarena ar;
    jnode **body;
    uint32_t n;
};

#define DEF_STEPS 20000000ULL
#define DEF_OUTPUT ((size_t)64 << 20)
#define DEF_MEMORY ((size_t)256 << 20)
#define DEF_CALLS 100
#define MAX_EVAL_DEPTH 2000

static int report(tmpl_error *err) {
    int code = err->kind == TMPL_ERR_NOMEM         ? VC_ENOMEM
               : err->kind == TMPL_ERR_UNSUPPORTED ? VC_EUNSUP
               : (err->kind == TMPL_ERR_SYNTAX || err->kind == TMPL_ERR_INPUT) ? VC_EFORMAT
                                                                                : VC_EINVAL;
    static const char *const what[] = {"error", "syntax error", "raised an exception", "undefined value",
                                       "type error", "security error", "limit exceeded", "unsupported feature",
                                       "bad input", "out of memory"};
    const char *w = err->kind >= 0 && err->kind <= TMPL_ERR_NOMEM ? what[err->kind] : "error";
    if (err->line > 0) return vc_errf(code, "chat template %s (line %d): %s", w, err->line, err->message);
    return vc_errf(code, "chat template %s: %s", w, err->message);
}

int tmpl_compile(const char *src, size_t len, tmpl_template **out, tmpl_error *err) {
    tmpl_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof *err);
    *out = NULL;
    tmpl_template *t = calloc(1, sizeof *t);
    if (!t) {
        err->kind = TMPL_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    t->ar.limit = (size_t)256 << 20;
    jcomp c = {.ar = &t->ar, .err = err};
    if (jl_lex(&c, src ? src : "", src ? len : 0) || jp_parse(&c, &t->body, &t->n)) {
        if (!err->kind) err->kind = TMPL_ERR_SYNTAX;
        tmpl_free(t);
        return report(err);
    }
    *out = t;
    return 0;
}

void tmpl_free(tmpl_template *t) {
    if (!t) return;
    ja_free_all(&t->ar);
    free(t);
}

static void rt_init(jrt *r, jarena *ar, const tmpl_limits *lim, tmpl_error *err) {
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    r->ar = ar;
    r->err = err;
    r->max_steps = lim && lim->max_steps ? lim->max_steps : DEF_STEPS;
    r->max_output = lim && lim->max_output ? lim->max_output : DEF_OUTPUT;
    ar->limit = lim && lim->max_memory ? lim->max_memory : DEF_MEMORY;
    r->max_calls = lim && lim->max_depth > 0 ? lim->max_depth : DEF_CALLS;
    r->max_depth = MAX_EVAL_DEPTH;
    r->root = NULL;
}

/* Render with the variables of dict `vars`; output copied to a malloc'd NUL-terminated string. */
static int render_vars(const tmpl_template *t, jrt *r, const jdict *vars, char **out, size_t *out_len) {
    jscope *root = jr_alloc(r, sizeof *root);
    if (!root) return JE_FAIL;
    root->names = jr_alloc(r, (vars->n + 1) * sizeof *root->names);
    root->vals = jr_alloc(r, (vars->n + 1) * sizeof *root->vals);
    if (!root->names || !root->vals) return JE_FAIL;
    for (size_t i = 0; i < vars->n; i++) {
        if (vars->k[i].t != JT_STR) continue;
        root->names[root->n] = vars->k[i].u.s;
        root->vals[root->n++] = vars->v[i];
    }
    root->cap = vars->n + 1;
    r->root = root;
    jbuf *b = jb_new(r, 4096);
    if (!b || je_render(r, t->body, t->n, b)) return JE_FAIL;
    char *s = malloc(b->used + 1);
    if (!s) return jr_fail(r, TMPL_ERR_NOMEM, "out of memory");
    memcpy(s, b->data, b->used);
    s[b->used] = 0;
    *out = s;
    if (out_len) *out_len = b->used;
    return 0;
}

int tmpl_render_json(const tmpl_template *t, const char *vars_json, size_t vars_len, const tmpl_limits *lim,
                     char **out, size_t *out_len, tmpl_error *err) {
    tmpl_error local;
    if (!err) err = &local;
    jarena ar = {0};
    jrt r;
    rt_init(&r, &ar, lim, err);
    *out = NULL;
    jv vars = {.t = JT_NONE};
    int rc = 0;
    if (vars_json && vars_len) {
        if (jv_from_json_text(&r, vars_json, vars_len, &vars)) rc = JE_FAIL;
        else if (vars.t != JT_DICT) rc = jr_fail(&r, TMPL_ERR_INPUT, "template variables must be a JSON object");
    } else {
        jdict *d = jdict_new(&r, 4);
        if (!d) rc = JE_FAIL;
        vars.t = JT_DICT;
        vars.u.d = d;
    }
    if (!rc) rc = render_vars(t, &r, vars.u.d, out, out_len);
    ja_free_all(&ar);
    return rc ? report(err) : 0;
}

static int put_var(jrt *r, jdict *d, const char *name, jv v) {
    const jstr *k = js_lit(r, name);
    return k ? jdict_set(r, d, jv_str(k), v) : JE_FAIL;
}

/* One JSON input: text (exact) or cJSON; *given = 0 when neither is set. */
static int input(jrt *r, const char *text, const cJSON *j, const char *what, jv *out, int *given) {
    *given = 1;
    if (text) {
        if (jv_from_json_text(r, text, strlen(text), out)) {
            char msg[sizeof r->err->message + 64];
            snprintf(msg, sizeof msg, "%s: %s", what, r->err->message);
            size_t n = strlen(msg);
            if (n >= sizeof r->err->message) n = sizeof r->err->message - 1;
            memcpy(r->err->message, msg, n);
            r->err->message[n] = 0;
            return JE_FAIL;
        }
        return 0;
    }
    if (j) return jv_from_cjson(r, j, out);
    *given = 0;
    return 0;
}

static int token_var(jrt *r, jdict *d, const char *name, const char *tok) {
    if (!tok) return 0;
    size_t n = strlen(tok);
    if (!ju_valid(tok, n)) return jr_fail(r, TMPL_ERR_INPUT, "%s is not valid UTF-8", name);
    const jstr *s = js_new(r, tok, n);
    return s ? put_var(r, d, name, jv_str(s)) : JE_FAIL;
}

/* A field of the request object, when the caller did not pass it on its own. */
static void from_request(const jdict *req, const char *key, jv *v, int *given) {
    if (*given || !req) return;
    const jv *x = jdict_get_str(req, key, strlen(key));
    if (x) {
        *v = *x;
        *given = 1;
    }
}

static int chat_vars(jrt *r, const tmpl_chat_args *a, jdict **out) {
    jdict *d = jdict_new(r, 16), *req = NULL;
    if (!d) return JE_FAIL;
    jv v;
    int given;
    if (a->request_json) {
        if (input(r, a->request_json, NULL, "request", &v, &given)) return JE_FAIL;
        if (v.t != JT_DICT) return jr_fail(r, TMPL_ERR_INPUT, "the request must be a JSON object");
        req = v.u.d;
    }
    if (input(r, a->messages_json, a->messages, "messages", &v, &given)) return JE_FAIL;
    from_request(req, "messages", &v, &given);
    if (!given || v.t != JT_LIST) return jr_fail(r, TMPL_ERR_INPUT, "messages must be a JSON array");
    if (put_var(r, d, "messages", v)) return JE_FAIL;
    if (input(r, a->tools_json, a->tools, "tools", &v, &given)) return JE_FAIL;
    from_request(req, "tools", &v, &given);
    if (put_var(r, d, "tools", given ? v : jv_none())) return JE_FAIL;
    if (input(r, a->documents_json, a->documents, "documents", &v, &given)) return JE_FAIL;
    from_request(req, "documents", &v, &given);
    if (put_var(r, d, "documents", given ? v : jv_none())) return JE_FAIL;
    int agp = a->add_generation_prompt;
    const jv *x = req ? jdict_get_str(req, "add_generation_prompt", 21) : NULL;
    if (x && !a->add_generation_prompt) agp = jv_truthy(*x);
    if (put_var(r, d, "add_generation_prompt", jv_bool(agp))) return JE_FAIL;
    if (token_var(r, d, "bos_token", a->bos_token) || token_var(r, d, "eos_token", a->eos_token) ||
        token_var(r, d, "unk_token", a->unk_token) || token_var(r, d, "pad_token", a->pad_token))
        return JE_FAIL;
    if (input(r, a->kwargs_json, a->kwargs, "chat_template_kwargs", &v, &given)) return JE_FAIL;
    from_request(req, "chat_template_kwargs", &v, &given);
    if (given && v.t != JT_NONE) {
        if (v.t != JT_DICT) return jr_fail(r, TMPL_ERR_INPUT, "chat_template_kwargs must be a JSON object");
        for (size_t i = 0; i < v.u.d->n; i++)
            if (jdict_set(r, d, v.u.d->k[i], v.u.d->v[i])) return JE_FAIL;
    }
    *out = d;
    return 0;
}

int tmpl_render_chat(const tmpl_template *t, const tmpl_chat_args *a, const tmpl_limits *lim, char **out,
                     size_t *out_len, tmpl_error *err) {
    tmpl_error local;
    if (!err) err = &local;
    jarena ar = {0};
    jrt r;
    rt_init(&r, &ar, lim, err);
    r.now = a->now;
    *out = NULL;
    jdict *vars = NULL;
    int rc = chat_vars(&r, a, &vars);
    if (!rc) rc = render_vars(t, &r, vars, out, out_len);
    ja_free_all(&ar);
    return rc ? report(err) : 0;
}

int tmpl_apply_chat_template(const char *tmpl, size_t len, const cJSON *messages, const cJSON *tools,
                             const cJSON *extra_kwargs, int add_generation_prompt, const char *bos_token,
                             const char *eos_token, char **out, size_t *out_len) {
    tmpl_template *t;
    int rc = tmpl_compile(tmpl, len, &t, NULL);
    if (rc) return rc;
    tmpl_chat_args a = {.messages = messages, .tools = tools, .kwargs = extra_kwargs,
                        .add_generation_prompt = add_generation_prompt, .bos_token = bos_token, .eos_token = eos_token};
    rc = tmpl_render_chat(t, &a, NULL, out, out_len, NULL);
    tmpl_free(t);
    return rc;
}

/* ---------------------------------------------------------------- finding a model's template */

#define CFG_MAX ((size_t)256 << 20)

int tmpl_select_from_config(const cJSON *cfg, const char *name, int with_tools, const char **src) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    *src = NULL;
    if (cJSON_IsString(ct)) {
        if (name && strcmp(name, "default") != 0)
            return vc_errf(VC_EINVAL, "the model has a single chat template, not one named '%s'", name);
        *src = ct->valuestring;
        return 0;
    }
    if (cJSON_IsArray(ct)) {
        const char *want = name ? name : NULL;
        const cJSON *e, *dflt = NULL, *tool = NULL, *named = NULL;
        cJSON_ArrayForEach(e, ct) {
            const cJSON *n = cJSON_GetObjectItemCaseSensitive(e, "name"), *t = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (!cJSON_IsString(n) || !cJSON_IsString(t)) continue;
            if (want && strcmp(n->valuestring, want) == 0) named = t;
            if (strcmp(n->valuestring, "default") == 0) dflt = t;
            if (strcmp(n->valuestring, "tool_use") == 0) tool = t;
        }
        if (want) {
            if (!named) return vc_errf(VC_EINVAL, "the model has no chat template named '%s'", want);
            *src = named->valuestring;
        } else if (with_tools && tool) {
            *src = tool->valuestring;
        } else if (dflt) {
            *src = dflt->valuestring;
        } else {
            return vc_errf(VC_EINVAL, "the model has several chat templates and none is named 'default'");
        }
        return 0;
    }
    return vc_errf(VC_EINVAL, "no chat_template in the tokenizer config");
}

/* NULL when unreadable or not JSON; e->message says why when it is not JSON (else it is ""). */
static cJSON *load_json(const char *path, js_error *e) {
    char *text;
    size_t len;
    e->message[0] = 0;
    if (vc_read_file(path, CFG_MAX, &text, &len)) return NULL;
    cJSON *j = js_parse(text, len, e);
    free(text);
    return j;
}

static int not_json(const char *path, const js_error *e) {
    return vc_errf(VC_EFORMAT, "%s: not valid JSON%s%s", path, e->message[0] ? ": " : "", e->message);
}

static char *dup_str(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *file) {
    int n = snprintf(buf, cap, "%s/%s", dir, file);
    return n < 0 || (size_t)n >= cap ? vc_errf(VC_EINVAL, "path too long: %s/%s", dir, file) : 0;
}

/* A special token: a string, or an AddedToken dict with "content". */
static int take_token(const cJSON *cfg, const char *key, char **out) {
    if (*out || !cfg) return 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(t)) t = cJSON_GetObjectItemCaseSensitive(t, "content");
    if (cJSON_IsString(t)) {
        *out = dup_str(t->valuestring, strlen(t->valuestring));
        if (!*out) return vc_errf(VC_ENOMEM, "out of memory");
    }
    return 0;
}

void tmpl_model_free(tmpl_model *m) {
    if (!m) return;
    free(m->source);
    free(m->origin);
    free(m->bos_token);
    free(m->eos_token);
    free(m->unk_token);
    free(m->pad_token);
    memset(m, 0, sizeof *m);
}

static int set_source(tmpl_model *m, const char *src, size_t len, const char *origin) {
    m->source = dup_str(src, len);
    m->len = len;
    m->origin = dup_str(origin, strlen(origin));
    return m->source && m->origin ? 0 : vc_errf(VC_ENOMEM, "out of memory");
}

int tmpl_model_load(const char *dir, const char *name, int with_tools, int need_template, tmpl_model *m) {
    char path[4096];
    memset(m, 0, sizeof *m);
    int rc = 0;
    cJSON *cfg = NULL, *stm = NULL;
    js_error e;
    if (path_join(path, sizeof path, dir, "tokenizer_config.json")) return VC_EINVAL;
    if (vc_file_exists(path) && !(cfg = load_json(path, &e))) {
        rc = not_json(path, &e);
        goto done;
    }
    /* 1. chat_template.jinja (or a named additional template) */
    if (name && strcmp(name, "default") != 0) {
        char rel[512];
        snprintf(rel, sizeof rel, "additional_chat_templates/%s.jinja", name);
        if ((rc = path_join(path, sizeof path, dir, rel))) goto done;
    } else if ((rc = path_join(path, sizeof path, dir, "chat_template.jinja"))) {
        goto done;
    }
    if (vc_file_exists(path)) {
        char *text;
        size_t len;
        if ((rc = vc_read_file(path, CFG_MAX, &text, &len))) goto done;
        rc = set_source(m, text, len, path);
        free(text);
        if (rc) goto done;
    }
    /* 2. tokenizer_config.json */
    if (!m->source && cfg && cJSON_GetObjectItemCaseSensitive(cfg, "chat_template")) {
        const char *src;
        if ((rc = tmpl_select_from_config(cfg, name, with_tools, &src))) goto done;
        if ((rc = path_join(path, sizeof path, dir, "tokenizer_config.json")) ||
            (rc = set_source(m, src, strlen(src), path)))
            goto done;
    }
    /* 3. chat_template.json (processor layout) */
    if (!m->source) {
        if ((rc = path_join(path, sizeof path, dir, "chat_template.json"))) goto done;
        if (vc_file_exists(path)) {
            cJSON *pj = load_json(path, &e);
            const char *src = NULL;
            if (!pj) {
                rc = not_json(path, &e);
                goto done;
            }
            rc = tmpl_select_from_config(pj, name, with_tools, &src);
            if (!rc) rc = set_source(m, src, strlen(src), path);
            cJSON_Delete(pj);
            if (rc) goto done;
        }
    }
    if (!m->source && need_template) {
        rc = vc_errf(VC_EINVAL, "%s: no chat template (no chat_template.jinja, no chat_template in "
                                "tokenizer_config.json, no chat_template.json); pass --chat-template FILE", dir);
        goto done;
    }
    if ((rc = path_join(path, sizeof path, dir, "special_tokens_map.json"))) goto done;
    if (vc_file_exists(path)) stm = load_json(path, &e);
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    char **dst[] = {&m->bos_token, &m->eos_token, &m->unk_token, &m->pad_token};
    for (int i = 0; i < 4 && !rc; i++) {
        rc = take_token(cfg, keys[i], dst[i]);
        if (!rc) rc = take_token(stm, keys[i], dst[i]);
    }
done:
    cJSON_Delete(cfg);
    cJSON_Delete(stm);
    if (rc) tmpl_model_free(m);
    return rc;
}
