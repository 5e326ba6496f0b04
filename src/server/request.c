/* request: OpenAI request bodies -> validated, tokenized requests (see request.h).
 * Field handling follows vLLM's protocol.py (CompletionRequest,
 * ChatCompletionRequest) and serving_engine.py (_validate_input). */
#include "server/request.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "base/json.h"
#include "engine/detok.h"
#include "engine/params_json.h"
#include "lora/registry.h"
#include "server/messages.h"
#include "server/structured.h"
#include "server/tools.h"
#include "base/sbuf.h"
#include "template/harmony.h"

static void vfail(srv_error *e, int status, const char *type, const char *param, const char *fmt, va_list ap) {
    e->status = status;
    e->type = type;
    e->param = param;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(e, status,
          status == 404 ? "NotFoundError" : status == 401 ? "Unauthorized" : status >= 500 ? "InternalServerError"
                                                                                         : "BadRequestError",
          param, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_fail_parse(srv_error *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(e, 400, "Bad Request", param, fmt, ap);
    va_end(ap);
    return -1;
}

static int utf8_valid(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t l = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + l > n) return 0;
        unsigned cp = c & (0x3F >> (l - 1));
        for (size_t k = 1; k < l; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((l == 3 && cp < 0x800) || (l == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += l;
    }
    return 1;
}

/* The body as a JSON object, or a 400. */
static cJSON *parse_body(const char *body, size_t len, srv_error *err) {
    if (!utf8_valid((const unsigned char *)body, len)) {
        srv_fail_parse(err, NULL, "The request body is not valid UTF-8.");
        return NULL;
    }
    js_error je;
    cJSON *j = js_parse(body, len, &je);
    if (!j) {
        if (je.oom) srv_fail(err, 500, NULL, "out of memory");
        else srv_fail_parse(err, NULL, "JSON decode error: %s", je.message);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        srv_fail_parse(err, NULL, "The request body must be a JSON object.");
        return NULL;
    }
    return j;
}

/* `model`: absent or a served name is the base model; with LoRA on, an adapter's name gives r (when
 * not NULL) a reference to the adapter and its name; anything else is vLLM's 404. */
static int check_model(const srv_ctx *c, const cJSON *o, srv_request *r, srv_error *err) {
    const char *m = NULL;
    int rc = srv_opt_string(o, "model", &m, err);
    if (rc <= 0) return rc;
    for (int i = 0; i < c->n_names; i++)
        if (!strcmp(c->names[i], m)) return 0;
    if (c->loras) {
        eng_lora *l = NULL;
        int lrc = lora_reg_get(c->loras, m, &l);
        if (!lrc && !r) {
            eng_lora_unref(l);
            return 0;
        }
        if (!lrc) {
            r->lora = l;
            if (!(r->lora_name = strdup(m))) return srv_fail(err, 500, NULL, "out of memory");
            return 0;
        }
        /* the adapter's folder went bad since it was loaded (it is read again when dropped from memory) */
        if (lrc != VC_ENOENT) return srv_fail(err, lrc == VC_ENOMEM ? 500 : 400, "model", "%s", vc_errmsg());
    }
    return srv_fail(err, 404, "model", "The model `%s` does not exist.", m);
}

/* Takes ids and text (text NULL: it could not be made: a 500). */
static int add_prompt(srv_request *r, int32_t *ids, int n, char *text, srv_error *err) {
    int k = r->n_prompts;
    if (!text) {
        free(ids);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    int32_t **ni = realloc(r->ids, sizeof *ni * (size_t)(k + 1));
    if (ni) r->ids = ni;
    int *nl = realloc(r->len, sizeof *nl * (size_t)(k + 1));
    if (nl) r->len = nl;
    char **nt = realloc(r->text, sizeof *nt * (size_t)(k + 1));
    if (nt) r->text = nt;
    if (!ni || !nl || !nt) {
        free(ids);
        free(text);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    r->ids[k] = ids;
    r->len[k] = n;
    r->text[k] = text;
    r->n_prompts++;
    return 0;
}

static int encode(const srv_ctx *c, const char *s, size_t n, int add_special, int32_t **ids, int *len,
                  srv_error *err) {
    if (!c->tok) return srv_fail(err, 400, "prompt", "text prompts need a tokenizer; this model has none");
    tok_ids v = {0};
    char *copy = NULL;
    if (memchr(s, 0xC0, n)) { /* js_parse keeps U+0000 as C0 80: the tokenizer gets the real byte */
        if (!(copy = malloc(n + 1))) return srv_fail(err, 500, NULL, "out of memory");
        memcpy(copy, s, n);
        n = js_unmask_nul(copy, n);
        s = copy;
    }
    int rc = tok_encode(c->tok, s, n, add_special, &v);
    free(copy);
    if (rc) {
        tok_ids_free(&v);
        return srv_fail(err, rc == VC_ENOMEM ? 500 : 400, "prompt", "tokenization failed: %s", vc_errmsg());
    }
    *ids = v.ids;
    *len = (int)v.n;
    if (!*ids) *ids = malloc(sizeof(int32_t));
    return *ids ? 0 : srv_fail(err, 500, NULL, "out of memory");
}

/* The text of ids (NULL: out of memory, or the tokenizer failed: vc_errmsg says). */
static char *decode_ids(const srv_ctx *c, const int32_t *ids, int n) {
    if (!c->tok) return strdup("");
    tok_text t = {0};
    if (tok_decode(c->tok, ids, (size_t)n, 0, &t)) {
        tok_text_free(&t);
        return NULL;
    }
    char *s = malloc(t.len + 1);
    if (s) {
        memcpy(s, t.s, t.len);
        s[t.len] = 0;
    }
    tok_text_free(&t);
    return s;
}

/* A list of token ids, each in the vocabulary. */
static int read_ids(const srv_ctx *c, const cJSON *a, const char *param, int32_t **out, int *n, srv_error *err) {
    int m = cJSON_GetArraySize(a);
    int32_t *v = malloc(sizeof *v * (size_t)(m ? m : 1));
    if (!v) return srv_fail(err, 500, NULL, "out of memory");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble)) {
            free(v);
            if (strcmp(param, "prompt"))
                return srv_fail_parse(err, param, "'%s' must be a list of integer token ids", param);
            return srv_fail_parse(err, "prompt", "'prompt' must be a string, a list of strings, a list of token ids "
                                                  "or a list of lists of token ids");
        }
        if (e->valuedouble < 0 || e->valuedouble >= c->vocab_size) {
            free(v);
            return srv_fail(err, 400, param, "Token id %.17g is out of vocabulary", e->valuedouble);
        }
        v[i++] = (int32_t)e->valuedouble;
    }
    *out = v;
    *n = m;
    return 0;
}

/* The work one request may ask for: prompts x n sequences (checked before any
 * prompt is tokenized), and prompt tokens over all prompts. */
static int check_seqs(const srv_ctx *c, int prompts, int n, srv_error *err) {
    int seqs;
    if (c->max_seqs_per_request > 0 && (vc_ckd_mul_int(prompts, n, &seqs) || seqs > c->max_seqs_per_request))
        return srv_fail(err, 400, "n",
                        "This request asks for %d prompt(s) x n=%d sequences; at most %d per request are allowed.",
                        prompts, n, c->max_seqs_per_request);
    return 0;
}

static int check_tokens(const srv_ctx *c, const srv_request *r, srv_error *err) {
    long long t = 0;
    for (int i = 0; i < r->n_prompts; i++) t += r->len[i];
    if (c->max_prompt_tokens_per_request > 0 && t > c->max_prompt_tokens_per_request)
        return srv_fail(err, 400, "prompt", "This request has %lld prompt tokens; at most %lld per request are allowed.",
                        t, c->max_prompt_tokens_per_request);
    return 0;
}

static int completion_prompts(const srv_ctx *c, const cJSON *o, int add_special, srv_request *r, srv_error *err) {
    const cJSON *p = js_field(o, "prompt");
    static const char shape[] =
        "'prompt' must be a string, a list of strings, a list of token ids or a list of lists of token ids";
    if (!p || (cJSON_IsString(p) && !p->valuestring[0]))
        return srv_fail_parse(err, "prompt", "Either prompt or prompt_embeds must be provided and non-empty.");
    if (cJSON_IsString(p)) {
        int32_t *ids;
        int n;
        if (encode(c, p->valuestring, strlen(p->valuestring), add_special, &ids, &n, err)) return -1;
        return add_prompt(r, ids, n, strdup(p->valuestring), err);
    }
    if (!cJSON_IsArray(p)) return srv_fail_parse(err, "prompt", shape);
    int m = cJSON_GetArraySize(p);
    if (m == 0) return srv_fail_parse(err, "prompt", "Either prompt or prompt_embeds must be provided and non-empty.");
    const cJSON *first = p->child;
    if (!cJSON_IsNumber(first) && check_seqs(c, m, r->sp.n, err)) return -1;
    if (cJSON_IsNumber(first)) { /* one prompt of token ids */
        int32_t *ids;
        int n;
        if (read_ids(c, p, "prompt", &ids, &n, err)) return -1;
        return add_prompt(r, ids, n, decode_ids(c, ids, n), err);
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, p) {
        int32_t *ids;
        int n;
        if (cJSON_IsString(e) && cJSON_IsString(first)) {
            if (encode(c, e->valuestring, strlen(e->valuestring), add_special, &ids, &n, err) ||
                add_prompt(r, ids, n, strdup(e->valuestring), err))
                return -1;
        } else if (cJSON_IsArray(e) && cJSON_IsArray(first)) {
            if (cJSON_GetArraySize(e) == 0)
                return srv_fail_parse(err, "prompt", "Either prompt or prompt_embeds must be provided and non-empty.");
            if (read_ids(c, e, "prompt", &ids, &n, err) || add_prompt(r, ids, n, decode_ids(c, ids, n), err))
                return -1;
        } else {
            return srv_fail_parse(err, "prompt", shape);
        }
    }
    return 0;
}

/* The output parsers of a chat request (autotool.h). vLLM's hermes and mistral parsers keep special tokens in
 * the text when tools may be called (their adjust_request): some models mark <tool_call> or [TOOL_CALLS]
 * special, and skipping them would hide the calls from the parser. */
static void set_parsers(const srv_ctx *c, srv_request *r, int parallel, int include_reasoning) {
    at_opts *p = &r->parse;
    p->tool = r->tool_mode == TOOL_AUTO ? c->tool_parser : NULL;
    p->reasoning = r->tool_mode == TOOL_REQUIRED || r->tool_mode == TOOL_NAMED ? NULL : c->reasoning_parser;
    p->include_reasoning = include_reasoning;
    p->first_call_only = !parallel;
    const char *tn = p->tool ? toolp_parser_name(p->tool) : "";
    if (!strcmp(tn, "hermes") || !strcmp(tn, "mistral")) r->sp.skip_special_tokens = 0;
    /* with a <think> reasoning parser, structured output constrains only what follows the reasoning (vLLM's
     * structured output with a reasoner): when "</think>" is one token of the vocabulary */
    const char *rn = p->reasoning ? toolp_parser_name(p->reasoning) : "";
    if (r->sp.grammar && c->tok && (!strcmp(rn, "qwen3") || !strcmp(rn, "deepseek_r1"))) {
        int32_t end = tok_token_to_id(c->tok, "</think>", 8);
        if (end >= 0) {
            r->sp.grammar_after_reasoning = 1;
            r->sp.reasoning_end_id = end;
            r->sp.reasoning_start_id = tok_token_to_id(c->tok, "<think>", 7);
        }
    }
    /* harmony's markers are special tokens: its parsers read them in the text (vLLM reads the token ids) */
    if (!strcmp(tn, "openai") || (p->reasoning && !strcmp(toolp_parser_name(p->reasoning), "openai")))
        r->sp.skip_special_tokens = 0;
}

/* Render the chat template for a chat request (or a /tokenize messages body). */
static int render_chat(const srv_ctx *c, const cJSON *o, char **text, size_t *len, srv_error *err) {
    int add_gen = 1, cont = 0;
    if (srv_opt_bool(o, "add_generation_prompt", &add_gen, err) || srv_opt_bool(o, "continue_final_message", &cont, err))
        return -1;
    if (add_gen && cont)
        return srv_fail_parse(err, NULL, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.");
    const cJSON *tools = js_field(o, "tools"), *docs = js_field(o, "documents"), *kw = js_field(o, "chat_template_kwargs");
    if (srv_check_tools(tools, err) || srv_check_documents(docs, err)) return -1;
    if (kw && !cJSON_IsObject(kw))
        return srv_fail_parse(err, "chat_template_kwargs", "'chat_template_kwargs' must be an object");
    const char *own = NULL;
    if (srv_opt_string(o, "chat_template", &own, err) < 0) return -1;
    if ((own || (kw && js_field(kw, "chat_template"))) && !c->trust_request_chat_template)
        return srv_fail(err, 400, "chat_template",
                        "Chat template is passed with request, but --trust-request-chat-template is not set. "
                        "Refused request with untrusted chat template.");
    const tmpl_template *t = c->tmpl;
    tmpl_template *compiled = NULL;
    tmpl_error te = {0};
    if (own) {
        int crc = tmpl_compile(own, strlen(own), &compiled, &te);
        if (crc == VC_ENOMEM || (crc && te.kind == TMPL_ERR_NOMEM)) return srv_fail(err, 500, NULL, "out of memory");
        if (crc) return srv_fail(err, 400, "chat_template", "chat_template: %s", te.message);
        t = compiled;
    }
    if (!t) {
        return srv_fail(err, 400, NULL,
                        "As of transformers v4.44, default chat template is no longer allowed, so you must provide a "
                        "chat template if the tokenizer does not define one.");
    }
    int format = c->content_format != SRV_CONTENT_AUTO ? c->content_format
                 : own                                  ? srv_content_format_of(own, strlen(own))
                                                        : c->tmpl_content_format;
    cJSON *msgs = srv_normalize_messages(js_field(o, "messages"), format, err);
    if (!msgs) {
        tmpl_free(compiled);
        return err->status ? -1 : srv_fail_parse(err, "messages", "'messages' is required");
    }
    tmpl_chat_args a = {.messages = msgs, .tools = tools, .documents = docs, .kwargs = kw,
                        .add_generation_prompt = add_gen, .bos_token = c->bos_token, .eos_token = c->eos_token,
                        .unk_token = c->unk_token, .pad_token = c->pad_token};
    int rc = tmpl_render_chat(t, &a, NULL, text, len, &te);
    tmpl_free(compiled);
    if (rc) {
        cJSON_Delete(msgs);
        if (rc == VC_ENOMEM || te.kind == TMPL_ERR_NOMEM) return srv_fail(err, 500, NULL, "out of memory");
        return srv_fail(err, 400, NULL, "chat template error%s%.0d: %s", te.line ? " at line " : "", te.line,
                        te.message);
    }
    if (cont) { /* transformers: cut right after the final message's content */
        const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        const cJSON *fc = last ? js_field(last, "content") : NULL;
        if (cJSON_IsArray(fc)) /* transformers: the last text part of a list content */
            fc = js_field(cJSON_GetArrayItem(fc, cJSON_GetArraySize(fc) - 1), "text");
        const char *fm = cJSON_IsString(fc) ? fc->valuestring : "";
        size_t fl = strlen(fm);
        const char *hit = NULL;
        for (int pass = 0; pass < 2 && !hit; pass++) {
            const char *s = fm;
            size_t l = fl;
            if (pass) { /* then the stripped content */
                while (l && strchr(" \t\n\r", *s)) s++, l--;
                while (l && strchr(" \t\n\r", s[l - 1])) l--;
            }
            if (!l) continue;
            for (const char *q = *text; (q = memmem(q, *len - (size_t)(q - *text), s, l)); q++) hit = q;
            if (hit) *len = (size_t)(hit - *text) + l;
        }
        if (!hit) {
            cJSON_Delete(msgs);
            free(*text);
            *text = NULL;
            return srv_fail(err, 400, NULL, "continue_final_message is set but the final message does not appear in "
                                            "the chat after applying the chat template!");
        }
        (*text)[*len] = 0;
    }
    cJSON_Delete(msgs);
    return 0;
}

/* gpt-oss: the harmony prompt (template/harmony.h) where other models render their chat template, as vLLM's
 * harmony path does: the request's chat_template, chat_template_kwargs and add_generation_prompt play no part
 * (the prompt always ends with "<|start|>assistant"); special tokens are placed by id, so text that spells
 * "<|end|>" stays text. */
static int harmony_prompt(const srv_ctx *c, const cJSON *o, int32_t **ids, int *n, char **text, srv_error *err) {
    int add_gen = 1, cont = 0;
    if (srv_opt_bool(o, "add_generation_prompt", &add_gen, err) || srv_opt_bool(o, "continue_final_message", &cont, err))
        return -1;
    if (add_gen && cont)
        return srv_fail_parse(err, NULL, "Cannot set both `continue_final_message` and `add_generation_prompt` to True.");
    if (srv_check_tools(js_field(o, "tools"), err)) return -1;
    char date[64];
    hm_start_date(0, date, sizeof date);
    hm_request hr;
    hm_prompt p = {0};
    tok_ids v = {0};
    int rc = hm_request_from_body(o, date, &hr);
    if (!rc) rc = hm_render(&hr, &p);
    if (!rc) rc = hm_tokenize(&p, c->tok, &v);
    if (rc) {
        hm_prompt_free(&p);
        tok_ids_free(&v);
        return srv_fail(err, rc == VC_ENOMEM ? 500 : 400, NULL, "%s", vc_errmsg());
    }
    *text = sb_take(&p.text, NULL);
    hm_prompt_free(&p);
    *ids = v.ids ? v.ids : malloc(sizeof(int32_t));
    *n = (int)v.n;
    if (!*text || !*ids) {
        free(*text);
        free(*ids);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    return 0;
}

static int chat_prompt(const srv_ctx *c, const cJSON *o, srv_request *r, srv_error *err) {
    if (!c->tok) return srv_fail(err, 400, NULL, "chat completions need a tokenizer; this model has none");
    if (c->harmony) {
        int32_t *ids;
        int n;
        char *text;
        return harmony_prompt(c, o, &ids, &n, &text, err) ? -1 : add_prompt(r, ids, n, text, err);
    }
    char *text = NULL;
    size_t len = 0;
    if (render_chat(c, o, &text, &len, err)) return -1;
    int add_special = 0;
    int32_t *ids;
    int n;
    if (srv_opt_bool(o, "add_special_tokens", &add_special, err) || encode(c, text, len, add_special, &ids, &n, err)) {
        free(text);
        return -1;
    }
    return add_prompt(r, ids, n, text, err);
}

/* Sampling defaults of generation_config.json, where the request leaves a field out. */
static void apply_defaults(const srv_ctx *c, eng_sampling_params *sp) {
    if (c->has_temperature) sp->temperature = c->temperature;
    if (c->has_top_p) sp->top_p = c->top_p;
    if (c->has_top_k) sp->top_k = c->top_k;
    if (c->has_min_p) sp->min_p = c->min_p;
    if (c->has_repetition_penalty) sp->repetition_penalty = c->repetition_penalty;
}

static int unsupported(const cJSON *o, srv_error *err) {
    if (js_field(o, "suffix")) return srv_fail(err, 400, "suffix", "suffix is not currently supported");
    long long best_of = 0;
    if (srv_opt_int(o, "best_of", 0, 1 << 20, &best_of, err) < 0) return -1;
    if (best_of > 1) return srv_fail(err, 400, "best_of", "best_of is not supported (vLLM V1 removed it)");
    const char *user;
    if (srv_opt_string(o, "user", &user, err) < 0) return -1;
    return 0;
}

int srv_parse_request(const srv_ctx *c, const char *body, size_t len, int chat, srv_request *r, srv_error *err) {
    memset(r, 0, sizeof *r);
    memset(err, 0, sizeof *err);
    r->chat = chat;
    r->logprobs = -1;
    eng_params_default(&r->sp);
    cJSON *o = parse_body(body, len, err);
    if (!o) return -1;
    int rc = -1;
    long long v;
    const char *param = NULL;
    /* OpenAI's own fields first (their types differ from vLLM's SamplingParams) */
    if (srv_opt_bool(o, "stream", &r->stream, err) || unsupported(o, err)) goto out;
    const cJSON *so = js_field(o, "stream_options");
    if (so) {
        if (!r->stream)
            srv_fail_parse(err, "stream_options", "Stream options can only be defined when `stream=True`.");
        else if (!cJSON_IsObject(so))
            srv_fail_parse(err, "stream_options", "'stream_options' must be an object");
        if (err->status || srv_opt_bool(so, "include_usage", &r->include_usage, err) ||
            srv_opt_bool(so, "continuous_usage_stats", &r->continuous_usage, err))
            goto out;
    }
    int has_max = 0;
    long long max_tokens = chat ? -1 : 16; /* vLLM: CompletionRequest.max_tokens = 16, chat: None */
    if (chat) {
        int lp = 0;
        long long top = -1;
        if (srv_opt_bool(o, "logprobs", &lp, err) || srv_opt_int(o, "top_logprobs", 0, 1 << 20, &top, err) < 0) goto out;
        if (top > 0 && !lp) {
            srv_fail_parse(err, "top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true.");
            goto out;
        }
        if (lp) r->logprobs = top > 0 ? (int)top : 0;
        int h = srv_opt_int(o, "max_completion_tokens", -(1LL << 31), (1LL << 31) - 1, &v, err);
        if (h < 0) goto out;
        if (!h) h = srv_opt_int(o, "max_tokens", -(1LL << 31), (1LL << 31) - 1, &v, err);
        if (h < 0) goto out;
        if (h) max_tokens = v, has_max = 1;
        if (has_max && max_tokens < 1) {
            srv_fail(err, 400, "max_tokens", "max_tokens must be at least 1, got %lld.", max_tokens);
            goto out;
        }
        cJSON_DeleteItemFromObjectCaseSensitive(o, "logprobs"); /* a bool here; SamplingParams' is an int */
        if (r->logprobs >= 0) cJSON_AddNumberToObject(o, "logprobs", r->logprobs);
    } else {
        int h = srv_opt_int(o, "logprobs", 0, 1 << 20, &v, err);
        if (h < 0) goto out;
        if (h) r->logprobs = (int)v;
        if (srv_opt_bool(o, "echo", &r->echo, err)) goto out;
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(o, "max_tokens");
        if (mt && cJSON_IsNull(mt)) max_tokens = -1;
        h = srv_opt_int(o, "max_tokens", -(1LL << 31), (1LL << 31) - 1, &v, err);
        if (h < 0) goto out;
        if (h) max_tokens = v, has_max = 1;
        if (has_max && max_tokens < 1) {
            srv_fail(err, 400, "max_tokens", "max_tokens must be at least 1, got %lld.", max_tokens);
            goto out;
        }
    }
    int hp = srv_opt_int(o, "priority", -(1LL << 31), (1LL << 31) - 1, &v, err);
    if (hp < 0) goto out;
    r->priority = hp ? (int)v : 0;
    if (r->priority && !c->priority_scheduling) {
        srv_fail(err, 400, "priority", "Got priority %d but Priority scheduling is not enabled.", r->priority);
        goto out;
    }
    int ptc = 1, inc_reasoning = 1; /* vLLM's defaults: parallel_tool_calls True, include_reasoning True */
    if (srv_opt_bool(o, "parallel_tool_calls", &ptc, err) || srv_opt_bool(o, "include_reasoning", &inc_reasoning, err))
        goto out;
    apply_defaults(c, &r->sp);
    int prc = eng_params_from_json(o, &r->sp);
    if (prc) {
        if (prc == VC_ENOMEM) srv_fail(err, 500, NULL, "out of memory");
        else srv_fail_parse(err, NULL, "%s", vc_errmsg());
        goto out;
    }
    if (check_seqs(c, 1, r->sp.n, err)) goto out;
    /* structured output: the grammar the sampling params carry (one reference, released with them); with
     * tool_choice "required" or a named function it is the tools' schema, which replaces any other (tools.c) */
    if (chat && (srv_check_tools(js_field(o, "tools"), err) ||
                 tool_from_request(c->so_cache, o, c->tool_parser != NULL, &r->tool_mode, &r->tool_name,
                                   &r->sp.grammar, err)))
        goto out;
    int constrained = r->tool_mode == TOOL_REQUIRED || r->tool_mode == TOOL_NAMED;
    if (!constrained && so_from_request(c->so_cache, o, &r->sp.grammar, err)) goto out;
    if (chat) set_parsers(c, r, ptc, inc_reasoning);
    /* the tool parser may read the tools' parameter types (qwen3_coder): a copy that lives with the request */
    if (r->parse.tool && !(r->parse.tools = r->tools = cJSON_Duplicate(js_field(o, "tools"), 1))) {
        srv_fail(err, 500, NULL, "out of memory");
        goto out;
    }
    const cJSON *bw = js_field(o, "bad_words");
    int brc = bw ? dt_add_bad_words(c->tok, bw, &r->sp) : 0;
    if (brc) {
        srv_fail(err, brc == VC_ENOMEM ? 500 : 400, "bad_words", "%s", vc_errmsg());
        goto out;
    }
    if (check_model(c, o, r, err)) goto out;
    if (chat) {
        if (chat_prompt(c, o, r, err)) goto out;
        if (srv_opt_bool(o, "echo", &r->echo, err)) goto out;
        const cJSON *msgs = js_field(o, "messages");
        const cJSON *last = cJSON_GetArrayItem(msgs, cJSON_GetArraySize(msgs) - 1);
        const char *role = NULL;
        const cJSON *lc = last ? js_field(last, "content") : NULL;
        if (r->echo && lc && srv_opt_string(last, "role", &role, err) > 0 && !strcmp(role, "assistant")) {
            sbuf s = {0};
            if (srv_content_text(lc, &s, err)) {
                sb_free(&s);
                goto out;
            }
            if (!(r->echo_prefix = sb_take(&s, NULL))) {
                srv_fail(err, 500, NULL, "out of memory");
                goto out;
            }
        }
    } else {
        int add_special = 1;
        if (srv_opt_bool(o, "add_special_tokens", &add_special, err) || completion_prompts(c, o, add_special, r, err))
            goto out;
        if (r->echo && r->logprobs >= 0 && r->sp.prompt_logprobs < 0) r->sp.prompt_logprobs = r->logprobs;
    }
    if (check_tokens(c, r, err)) goto out;
    /* truncate_prompt_tokens: keep the last N tokens of each prompt (-1: max_model_len) */
    long long trunc = 0;
    int ht = srv_opt_int(o, "truncate_prompt_tokens", -1, 1LL << 31, &trunc, err);
    if (ht < 0 || srv_opt_bool(o, "return_tokens_as_token_ids", &r->tokens_as_ids, err)) goto out;
    if (ht) {
        if (trunc == -1) trunc = c->max_model_len;
        if (trunc > c->max_model_len) {
            srv_fail(err, 400, "truncate_prompt_tokens",
                     "truncate_prompt_tokens value (%lld) is greater than max_model_len (%d). Please, select a smaller "
                     "truncation size.", trunc, c->max_model_len);
            goto out;
        }
        for (int i = 0; i < r->n_prompts; i++)
            if (trunc > 0 && r->len[i] > trunc) {
                memmove(r->ids[i], r->ids[i] + (r->len[i] - trunc), sizeof(int32_t) * (size_t)trunc);
                r->len[i] = (int)trunc;
                char *t = decode_ids(c, r->ids[i], r->len[i]);
                if (!t) {
                    srv_fail(err, 500, NULL, "out of memory");
                    goto out;
                }
                free(r->text[i]);
                r->text[i] = t;
            }
    }
    /* vLLM's _validate_input and get_max_tokens, per prompt */
    r->max_tokens = calloc(r->n_prompts > 0 ? (size_t)r->n_prompts : 1, sizeof *r->max_tokens);
    if (!r->max_tokens) {
        srv_fail(err, 500, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < r->n_prompts; i++) {
        long long n = r->len[i], L = c->max_model_len;
        if (max_tokens < 0 && n >= L) {
            srv_fail(err, 400, NULL,
                     "This model's maximum context length is %lld tokens. However, you requested %lld tokens in the "
                     "messages, Please reduce the length of the messages.", L, n);
            goto out;
        }
        if (max_tokens >= 0 && n + max_tokens > L) {
            srv_fail(err, 400, NULL,
                     "This model's maximum context length is %lld tokens. However, you requested %lld tokens (%lld in "
                     "the messages, %lld in the completion). Please reduce the length of the messages or completion.",
                     L, n + max_tokens, n, max_tokens);
            goto out;
        }
        long long mt = max_tokens >= 0 ? max_tokens : L - n;
        /* vLLM: "minimum of context window, user request & server limit" */
        if (c->has_max_new_tokens && c->max_new_tokens < mt) mt = c->max_new_tokens;
        r->max_tokens[i] = (int)mt;
    }
    r->sp.max_tokens = r->max_tokens[0];
    for (int i = 0; i < r->n_prompts; i++) /* every prompt's value must pass the checks */
        if (r->max_tokens[i] < r->sp.max_tokens) r->sp.max_tokens = r->max_tokens[i];
    if (eng_params_validate(&r->sp, c->vocab_size) ||
        eng_params_check_max_logprobs(&r->sp, c->max_logprobs, c->vocab_size)) {
        srv_fail(err, 400, param, "%s", vc_errmsg());
        goto out;
    }
    eng_params_normalize(&r->sp);
    rc = 0;
out:
    cJSON_Delete(o);
    if (rc) srv_request_free(r);
    return rc;
}

void srv_request_free(srv_request *r) {
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->ids[i]);
        free(r->text[i]);
    }
    free(r->ids);
    free(r->len);
    free(r->text);
    free(r->max_tokens);
    free(r->echo_prefix);
    free(r->tool_name);
    cJSON_Delete(r->tools);
    eng_lora_unref(r->lora);
    free(r->lora_name);
    eng_params_free(&r->sp);
    memset(r, 0, sizeof *r);
}

int srv_tokenize(const srv_ctx *c, const char *body, size_t len, char **out, size_t *out_len, srv_error *err) {
    memset(err, 0, sizeof *err);
    cJSON *o = parse_body(body, len, err);
    if (!o) return -1;
    int rc = -1, n = 0, strs = 0;
    int32_t *ids = NULL;
    char *text = NULL;
    size_t tl = 0;
    if (check_model(c, o, NULL, err) || srv_opt_bool(o, "return_token_strs", &strs, err)) goto done;
    if (!c->tok) {
        srv_fail(err, 400, NULL, "this model has no tokenizer");
        goto done;
    }
    if (js_field(o, "messages") && c->harmony) {
        if (harmony_prompt(c, o, &ids, &n, &text, err)) goto done;
    } else if (js_field(o, "messages")) {
        int add_special = 0;
        if (render_chat(c, o, &text, &tl, err) || srv_opt_bool(o, "add_special_tokens", &add_special, err) ||
            encode(c, text, tl, add_special, &ids, &n, err))
            goto done;
    } else {
        const char *p = NULL;
        int add_special = 1;
        if (srv_opt_string(o, "prompt", &p, err) <= 0) {
            if (!err->status) srv_fail_parse(err, "prompt", "'prompt' (a string) or 'messages' is required");
            goto done;
        }
        if (srv_opt_bool(o, "add_special_tokens", &add_special, err) || encode(c, p, strlen(p), add_special, &ids, &n, err))
            goto done;
    }
    sbuf s = {0};
    sb_printf(&s, "{\"count\":%d,\"max_model_len\":%d,\"tokens\":[", n, c->max_model_len);
    for (int i = 0; i < n; i++) sb_printf(&s, "%s%d", i ? "," : "", ids[i]);
    sb_str(&s, "],\"token_strs\":");
    if (strs) {
        sb_str(&s, "[");
        for (int i = 0; i < n; i++) {
            size_t tl2 = 0;
            const char *t = tok_id_to_token(c->tok, ids[i], &tl2);
            if (i) sb_str(&s, ",");
            sb_jstr(&s, t ? t : "", t ? tl2 : 0);
        }
        sb_str(&s, "]");
    } else {
        sb_str(&s, "null");
    }
    sb_str(&s, "}");
    *out = sb_take(&s, out_len);
    rc = *out ? 0 : srv_fail(err, 500, NULL, "out of memory");
done:
    free(ids);
    free(text);
    cJSON_Delete(o);
    return rc;
}

int srv_detokenize(const srv_ctx *c, const char *body, size_t len, char **out, size_t *out_len, srv_error *err) {
    memset(err, 0, sizeof *err);
    cJSON *o = parse_body(body, len, err);
    if (!o) return -1;
    int rc = -1, n = 0;
    int32_t *ids = NULL;
    const cJSON *t = js_field(o, "tokens");
    if (check_model(c, o, NULL, err)) goto done;
    if (!c->tok) {
        srv_fail(err, 400, NULL, "this model has no tokenizer");
        goto done;
    }
    if (!t || !cJSON_IsArray(t)) {
        srv_fail_parse(err, "tokens", "'tokens' must be a list of token ids");
        goto done;
    }
    if (read_ids(c, t, "tokens", &ids, &n, err)) goto done;
    char *text = decode_ids(c, ids, n);
    if (!text) {
        srv_fail(err, 500, NULL, "out of memory");
        goto done;
    }
    sbuf s = {0};
    sb_str(&s, "{\"prompt\":");
    sb_jstrz(&s, text);
    sb_str(&s, "}");
    free(text);
    *out = sb_take(&s, out_len);
    rc = *out ? 0 : srv_fail(err, 500, NULL, "out of memory");
done:
    free(ids);
    cJSON_Delete(o);
    return rc;
}
