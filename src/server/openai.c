/* openai: completions and chat completions (see openai.h). Response shapes
 * follow vLLM's protocol.py: non-streaming bodies carry every field (vLLM
 * dumps them whole), completion stream chunks too, chat stream chunks only
 * the fields vLLM sets (it dumps them with exclude_unset). */
#include "server/openai.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/ckd.h"
#include "base/err.h"
#include "engine/detok.h"
#include "server/autotool.h"
#include "server/models.h"
#include "server/tools.h"

/* One token's logprobs as vLLM builds its dict: the sampled token first, then
 * the top entries best first, each id once. */
typedef struct {
    int n;
    int32_t *ids;
    float *vals;
} lp_dict;

typedef struct {
    dt_text dt;
    int n_tokens;
    int done;
    eng_finish finish;
    int32_t stop_token;
    const char *stop_str;
    /* logprobs of the tokens not yet reported (all of them when not streaming) */
    int32_t *tok;
    lp_dict *lp;
    int n_lp, cap_lp;
    size_t chars_sent;           /* streaming text_offset */
    int echoed;
    tool_scan ts;                /* tool_choice "required" / named: the calls read from the text */
    at_stream *as;               /* streaming through the output parsers (r.parse): the deltas so far */
    int auto_called;             /* the tool parser found calls: finish_reason "tool_calls" */
} comp_state;

struct oa_job {
    srv_server *s;
    srv_request r;
    srv_call *call;
    char id[48];
    long created;
    int total;                   /* n_prompts * n */
    int n_done;
    comp_state *c;
    int *n_cached;               /* per prompt */
    srv_event *plp;              /* per prompt: the event that carried prompt logprobs (owned) */
    int stream_started, stream_done;
    int failed;                  /* the call failed: fail_status, fail_msg */
    int fail_status;
    char fail_msg[448];
    int *touched;                /* streaming: completions that moved since the last chunks */
    int oom;                     /* something of the answer could not be made: it becomes a 500 */
};

char *oa_error_json(const srv_error *e, size_t *len) {
    sbuf s = {0};
    sb_str(&s, "{\"error\":{\"message\":");
    sb_jstrz(&s, e->message);
    sb_str(&s, ",\"type\":");
    sb_jstrz(&s, e->type ? e->type : "BadRequestError");
    sb_str(&s, ",\"param\":");
    sb_jstrz(&s, e->param);
    sb_printf(&s, ",\"code\":%d}}", e->status);
    return sb_take(&s, len);
}

/* A chat completion whose text goes through the output parsers (autotool.h). */
static int parsed(const oa_job *j) { return j->r.chat && (j->r.parse.tool || j->r.parse.reasoning); }

int oa_start(srv_server *s, const char *body, size_t len, int chat, oa_job **out, srv_error *err) {
    *out = NULL;
    oa_job *j = calloc(1, sizeof *j);
    if (!j) return srv_fail(err, 500, NULL, "out of memory");
    j->s = s;
    if (srv_parse_request(&s->ctx, body, len, chat, &j->r, err)) {
        free(j);
        return -1;
    }
    if (vc_ckd_mul_int(j->r.n_prompts, j->r.sp.n, &j->total)) { /* request.c bounds it; never trust that here */
        srv_request_free(&j->r);
        free(j);
        return srv_fail(err, 400, "n", "prompts x n is too large");
    }
    j->c = calloc((size_t)j->total, sizeof *j->c);
    j->n_cached = calloc((size_t)j->r.n_prompts, sizeof *j->n_cached);
    j->plp = calloc((size_t)j->r.n_prompts, sizeof *j->plp);
    j->touched = calloc((size_t)j->total, sizeof *j->touched);
    if (!j->c || !j->n_cached || !j->plp || !j->touched) {
        oa_free(j);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    for (int i = 0; i < j->total; i++) {
        int p = i / j->r.sp.n;
        if (dt_init(&j->c[i].dt, s->tok, &j->r.sp, j->r.ids[p], j->r.len[p])) {
            oa_free(j);
            return srv_fail(err, 500, NULL, "%s", vc_errmsg());
        }
        j->c[i].stop_token = -1;
        if ((j->r.tool_mode == TOOL_REQUIRED || j->r.tool_mode == TOOL_NAMED) &&
            tool_scan_init(&j->c[i].ts, j->r.tool_mode, j->r.tool_name)) {
            oa_free(j);
            return srv_fail(err, 500, NULL, "out of memory");
        }
        if (j->r.stream && parsed(j) && !(j->c[i].as = at_stream_new(&j->r.parse))) {
            oa_free(j);
            return srv_fail(err, 500, NULL, "out of memory");
        }
    }
    at_make_id(j->id, sizeof j->id, chat ? "chatcmpl-" : "cmpl-");
    j->created = (long)time(NULL);
    if (s->cfg.log_requests) {
        fprintf(stderr, "INFO vllmc: Received request %s: %d prompt(s), prompt_token_ids: [", j->id, j->r.n_prompts);
        for (int i = 0; i < j->r.len[0] && i < 64; i++) fprintf(stderr, "%s%d", i ? ", " : "", j->r.ids[0][i]);
        fprintf(stderr, "%s], n=%d, temperature=%g, top_p=%g, top_k=%d, max_tokens=%d, seed=%s\n",
                j->r.len[0] > 64 ? ", ..." : "", j->r.sp.n, j->r.sp.temperature, j->r.sp.top_p, j->r.sp.top_k,
                j->r.sp.max_tokens, j->r.sp.has_seed ? "set" : "None");
    }
    j->call = fe_submit(s, &j->r, j->id, err);
    if (!j->call) {
        oa_free(j);
        return -1;
    }
    if (j->r.lora) { /* the engine's sequences hold the adapter now */
        models_seen(s, eng_lora_id(j->r.lora), j->r.lora_name);
        eng_lora_unref(j->r.lora);
        j->r.lora = NULL;
    }
    *out = j;
    return 0;
}

int oa_is_stream(const oa_job *j) { return j->r.stream; }

static void completion_done(oa_job *j, int ci);

void oa_free(oa_job *j) {
    if (!j) return;
    if (j->call) {
        if (j->n_done < j->total) fe_abort(j->s, j->call, -1, -1, ENG_FINISH_ABORT);
        for (int i = 0; i < j->total; i++)
            if (!j->c[i].done) { /* the client went away: counted as aborted */
                j->c[i].finish = ENG_FINISH_ABORT;
                completion_done(j, i);
            }
        fe_release(j->s, j->call);
    }
    for (int i = 0; j->c && i < j->total; i++) {
        dt_free(&j->c[i].dt);
        tool_scan_free(&j->c[i].ts);
        at_stream_free(j->c[i].as);
        for (int k = 0; k < j->c[i].n_lp; k++) {
            free(j->c[i].lp[k].ids);
            free(j->c[i].lp[k].vals);
        }
        free(j->c[i].lp);
        free(j->c[i].tok);
    }
    for (int p = 0; j->plp && p < j->r.n_prompts; p++) srv_event_free(&j->plp[p]);
    free(j->plp);
    free(j->touched);
    free(j->c);
    free(j->n_cached);
    srv_request_free(&j->r);
    free(j);
}

/* ---- logprobs ---- */

static int push_lp(comp_state *c, const srv_event *ev) {
    if (c->n_lp == c->cap_lp) {
        int nc = c->cap_lp ? c->cap_lp * 2 : 16;
        lp_dict *nl = realloc(c->lp, sizeof *nl * (size_t)nc);
        if (nl) c->lp = nl;
        int32_t *nt = realloc(c->tok, sizeof *nt * (size_t)nc);
        if (nt) c->tok = nt;
        if (!nl || !nt) return -1;
        c->cap_lp = nc;
    }
    lp_dict *d = &c->lp[c->n_lp];
    d->ids = malloc(sizeof(int32_t) * (size_t)(ev->n_top + 1));
    d->vals = malloc(sizeof(float) * (size_t)(ev->n_top + 1));
    if (!d->ids || !d->vals) {
        free(d->ids);
        free(d->vals);
        return -1;
    }
    d->n = 0;
    d->ids[d->n] = ev->token;
    d->vals[d->n++] = ev->lp;
    for (int k = 0; k < ev->n_top; k++) {
        if (ev->top_ids[k] == ev->token) continue;
        d->ids[d->n] = ev->top_ids[k];
        d->vals[d->n++] = ev->top_vals[k];
    }
    c->tok[c->n_lp++] = ev->token;
    return 0;
}

static void clear_lp(comp_state *c) {
    for (int k = 0; k < c->n_lp; k++) {
        free(c->lp[k].ids);
        free(c->lp[k].vals);
    }
    c->n_lp = 0;
}

/* A token's text as vLLM shows it in logprobs: tokenizer.decode([id]). */
/* NULL when it cannot be made (out of memory): j->oom is set and the answer becomes a 500. */
static char *token_str(oa_job *j, int32_t id, size_t *len) {
    const srv_server *s = j->s;
    tok_text t = {0};
    char *z = NULL;
    *len = 0;
    if (j->r.tokens_as_ids) {
        if ((z = malloc(32))) *len = (size_t)snprintf(z, 32, "token_id:%d", id);
    } else if (s->tok) {
        if (!tok_decode(s->tok, &id, 1, 0, &t)) {
            z = t.s ? t.s : strdup("");
            *len = t.s ? t.len : 0;
            t.s = NULL;
        }
        tok_text_free(&t);
    } else if ((z = malloc(16))) {
        *len = (size_t)snprintf(z, 16, "%d", id);
    }
    if (!z) j->oom = 1;
    return z;
}

static size_t utf8_chars(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}

static uint64_t str_hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* A completions logprobs dict {token: logprob}, string keys merged as a Python
 * dict does: a later entry with the same text replaces the value, the first
 * position stays. Up to the whole vocabulary (--max-logprobs -1), so the
 * merge goes through a hash table. */
static void dict_json(oa_job *j, sbuf *o, const lp_dict *d) {
    int n = d->n, cap = 16;
    while (cap < 2 * n) cap *= 2;
    char **str = calloc((size_t)n + 1, sizeof *str);
    size_t *len = calloc((size_t)n + 1, sizeof *len);
    int *last = calloc((size_t)n + 1, sizeof *last), *slot = malloc(sizeof *slot * (size_t)cap);
    if (!str || !len || !last || !slot) {
        o->oom = 1;
        goto out;
    }
    memset(slot, -1, sizeof *slot * (size_t)cap);
    for (int i = 0; i < n; i++) {
        str[i] = token_str(j, d->ids[i], &len[i]);
        if (!str[i]) len[i] = 0;
        last[i] = i;
        size_t h = (size_t)str_hash(str[i] ? str[i] : "", len[i]) & (size_t)(cap - 1);
        for (;; h = (h + 1) & (size_t)(cap - 1)) {
            int k = slot[h];
            if (k < 0) {
                slot[h] = i;
                break;
            }
            if (len[k] == len[i] && !memcmp(str[k] ? str[k] : "", str[i] ? str[i] : "", len[i])) {
                last[k] = i; /* the first entry's position, the last entry's value */
                last[i] = -1;
                break;
            }
        }
    }
    sb_str(o, "{");
    for (int i = 0, w = 0; i < n; i++) {
        if (last[i] < 0) continue;
        if (w++) sb_str(o, ",");
        sb_jstr(o, str[i] ? str[i] : "", len[i]);
        sb_str(o, ":");
        sb_jfloat(o, d->vals[last[i]]);
    }
    sb_str(o, "}");
out:
    for (int i = 0; str && i < n; i++) free(str[i]);
    free(str);
    free(len);
    free(last);
    free(slot);
}

/* Completions: {"text_offset","token_logprobs","tokens","top_logprobs"} for
 * (echoed prompt tokens and) the pending output tokens. */
static void completion_logprobs(oa_job *j, sbuf *o, comp_state *c, int prompt, int with_prompt, size_t offset) {
    sbuf off = {0}, tlp = {0}, toks = {0}, top = {0};
    int w = 0;
    const srv_event *pe = with_prompt ? &j->plp[prompt] : NULL;
    int np = with_prompt ? j->r.len[prompt] : 0;
    for (int i = 0; i < np + c->n_lp; i++) {
        int32_t id = i < np ? j->r.ids[prompt][i] : c->tok[i - np];
        size_t l;
        char *t = token_str(j, id, &l);
        const char *sep = w++ ? "," : "";
        sb_printf(&off, "%s%zu", sep, offset);
        offset += utf8_chars(t ? t : "", t ? l : 0);
        sb_str(&toks, sep);
        sb_jstr(&toks, t ? t : "", t ? l : 0);
        free(t);
        sb_str(&tlp, sep);
        sb_str(&top, sep);
        if (i < np) {
            if (i == 0 || !pe || !pe->plp_tok) {
                sb_str(&tlp, "null");
                sb_str(&top, "null");
                continue;
            }
            int k = pe->plp_k > 0 ? pe->plp_k : 0;
            int32_t *ids = malloc(sizeof *ids * ((size_t)k + 1));
            float *vals = malloc(sizeof *vals * ((size_t)k + 1));
            lp_dict d = {0, ids, vals};
            if (!ids || !vals) {
                free(ids);
                free(vals);
                o->oom = 1;
                continue;
            }
            ids[d.n] = id;
            vals[d.n++] = pe->plp_tok[i];
            for (int q = 0; q < k; q++) {
                int32_t tid = pe->plp_ids[(size_t)i * k + q];
                if (tid < 0 || tid == id) continue;
                ids[d.n] = tid;
                vals[d.n++] = pe->plp_vals[(size_t)i * k + q];
            }
            sb_jfloat(&tlp, pe->plp_tok[i]);
            dict_json(j, &top, &d);
            free(ids);
            free(vals);
        } else {
            const lp_dict *d = &c->lp[i - np];
            sb_jfloat(&tlp, d->vals[0]);
            dict_json(j, &top, d);
        }
    }
    sb_str(o, "{\"text_offset\":[");
    sb_raw(o, off.b ? off.b : "", off.n);
    sb_str(o, "],\"token_logprobs\":[");
    sb_raw(o, tlp.b ? tlp.b : "", tlp.n);
    sb_str(o, "],\"tokens\":[");
    sb_raw(o, toks.b ? toks.b : "", toks.n);
    sb_str(o, "],\"top_logprobs\":[");
    sb_raw(o, top.b ? top.b : "", top.n);
    sb_str(o, "]}");
    if (off.oom || tlp.oom || toks.oom || top.oom) o->oom = 1;
    sb_free(&off);
    sb_free(&tlp);
    sb_free(&toks);
    sb_free(&top);
}

static void bytes_json(sbuf *o, const char *t, size_t l) {
    sb_str(o, "[");
    for (size_t i = 0; i < l; i++) sb_printf(o, "%s%u", i ? "," : "", (unsigned char)t[i]);
    sb_str(o, "]");
}

/* Chat: {"content":[{token, logprob, bytes, top_logprobs:[...]}]} for the pending tokens. */
static void chat_logprobs(oa_job *j, sbuf *o, comp_state *c) {
    int top = j->r.logprobs;
    sb_str(o, "{\"content\":[");
    for (int i = 0; i < c->n_lp; i++) {
        const lp_dict *d = &c->lp[i];
        size_t l;
        char *t = token_str(j, d->ids[0], &l);
        sb_str(o, i ? ",{\"token\":" : "{\"token\":");
        sb_jstr(o, t ? t : "", t ? l : 0);
        sb_str(o, ",\"logprob\":");
        sb_jfloat(o, d->vals[0]);
        sb_str(o, ",\"bytes\":");
        bytes_json(o, t ? t : "", t ? l : 0);
        free(t);
        sb_str(o, ",\"top_logprobs\":[");
        for (int k = 0; k < d->n && k < top; k++) {
            t = token_str(j, d->ids[k], &l);
            sb_str(o, k ? ",{\"token\":" : "{\"token\":");
            sb_jstr(o, t ? t : "", t ? l : 0);
            sb_str(o, ",\"logprob\":");
            sb_jfloat(o, d->vals[k]);
            sb_str(o, ",\"bytes\":");
            bytes_json(o, t ? t : "", t ? l : 0);
            sb_str(o, "}");
            free(t);
        }
        sb_str(o, "]}");
    }
    sb_str(o, "]}");
}

/* vLLM's prompt_logprobs: [null, {"id": {"logprob", "rank", "decoded_token"}, ...}, ...]. */
static void prompt_logprobs_json(oa_job *j, sbuf *o, int p) {
    const srv_event *pe = &j->plp[p];
    if (!pe->plp_tok) {
        sb_str(o, "null");
        return;
    }
    sb_str(o, "[null");
    int k = pe->plp_k > 0 ? pe->plp_k : 0;
    for (int i = 1; i < j->r.len[p]; i++) {
        int32_t id = j->r.ids[p][i];
        size_t l;
        char *t = token_str(j, id, &l);
        sb_printf(o, ",{\"%d\":{\"logprob\":", id);
        sb_jfloat(o, pe->plp_tok[i]);
        sb_printf(o, ",\"rank\":%d,\"decoded_token\":", pe->plp_rank[i]);
        sb_jstr(o, t ? t : "", t ? l : 0);
        sb_str(o, "}");
        free(t);
        for (int q = 0; q < k; q++) {
            int32_t tid = pe->plp_ids[(size_t)i * k + q];
            if (tid < 0 || tid == id) continue;
            t = token_str(j, tid, &l);
            sb_printf(o, ",\"%d\":{\"logprob\":", tid);
            sb_jfloat(o, pe->plp_vals[(size_t)i * k + q]);
            sb_printf(o, ",\"rank\":%d,\"decoded_token\":", q + 1);
            sb_jstr(o, t ? t : "", t ? l : 0);
            sb_str(o, "}");
            free(t);
        }
        sb_str(o, "}");
    }
    sb_str(o, "]");
}

/* ---- events ---- */

/* A completion is over as the client sees it: vLLM's request_success_total and
 * e2e / TPOT / length histograms count it with the reason the client gets. */
static void completion_done(oa_job *j, int ci) {
    comp_state *c = &j->c[ci];
    c->done = 1;
    j->n_done++;
    double now = fe_now(), t_first = j->call->t_first[ci];
    mt_finished(&j->s->metrics, c->finish, now - j->call->arrival, t_first > 0 ? t_first - j->call->arrival : 0,
                j->r.len[ci / j->r.sp.n], c->n_tokens);
}

/* Apply one engine event to its completion. Returns the completion index, or
 * -1 when the event changes nothing visible (a completion already stopped). */
static int apply(oa_job *j, srv_event *ev) {
    int ci = ev->prompt * j->r.sp.n + ev->index;
    if (ci < 0 || ci >= j->total) return -1;
    comp_state *c = &j->c[ci];
    if (ev->plp_tok && !j->plp[ev->prompt].plp_tok) { /* keep the prompt logprobs */
        j->plp[ev->prompt] = *ev;
        ev->plp_tok = NULL, ev->plp_ids = NULL, ev->plp_vals = NULL, ev->plp_rank = NULL;
        j->plp[ev->prompt].top_ids = NULL, j->plp[ev->prompt].top_vals = NULL;
    }
    if (ev->finish && ev->index == 0) j->n_cached[ev->prompt] = ev->n_cached;
    if (c->done) return -1;
    if (ev->has_token) {
        c->n_tokens++;
        if (j->r.logprobs >= 0 && push_lp(c, ev)) j->oom = 1;
        /* vLLM's detokenizer leaves out the token that stopped the sequence (EOS or a stop_token_ids
         * entry) unless include_stop_str_in_output */
        int stop_tok = ev->finish == ENG_FINISH_STOP && !j->r.sp.include_stop_str_in_output;
        int rc = stop_tok ? 0 : dt_push(&c->dt, ev->token);
        if (rc < 0) j->oom = 1;
        if (rc == 1) { /* a stop string: the output processor ends the request */
            c->finish = ENG_FINISH_STOP;
            c->stop_str = dt_stop_str(&c->dt);
            completion_done(j, ci);
            if (!ev->finish) fe_abort(j->s, j->call, ev->prompt, ev->index, ENG_FINISH_STOP);
            return ci;
        }
    }
    if (ev->finish) {
        c->finish = ev->finish;
        c->stop_token = ev->stop_token;
        int frc = dt_finish(&c->dt);
        if (frc < 0) j->oom = 1;
        if (frc == 1) {
            c->finish = ENG_FINISH_STOP;
            c->stop_str = dt_stop_str(&c->dt);
            c->stop_token = -1;
        }
        completion_done(j, ci);
    }
    return ci;
}

static const char *finish_name(eng_finish f) {
    return f == ENG_FINISH_STOP ? "stop" : f == ENG_FINISH_LENGTH ? "length" : "abort";
}

static void stop_reason_json(sbuf *o, const comp_state *c) {
    if (c->stop_str) sb_jstrz(o, c->stop_str);
    else if (c->stop_token >= 0) sb_printf(o, "%d", c->stop_token);
    else sb_str(o, "null");
}

static int prompt_tokens(const oa_job *j) {
    int t = 0;
    for (int p = 0; p < j->r.n_prompts; p++) t += j->r.len[p];
    return t;
}

static void usage_json(oa_job *j, sbuf *o, int prompt, int completion, int cached_known) {
    sb_printf(o, "{\"prompt_tokens\":%d,\"total_tokens\":%d,\"completion_tokens\":%d,\"prompt_tokens_details\":", prompt,
              prompt + completion, completion);
    int cached = 0;
    for (int p = 0; p < j->r.n_prompts; p++) cached += j->n_cached[p];
    if (j->s->cfg.prompt_tokens_details && cached_known && cached) sb_printf(o, "{\"cached_tokens\":%d}", cached);
    else sb_str(o, "null");
    sb_str(o, "}");
}

/* ---- tool calls (tool_choice "required" or a named function, tools.h) ---- */

/* As vLLM since its finish_reason was aligned with OpenAI's: "tool_calls" for "required" once the output
 * ended where the grammar lets it ("stop") with a call in it; a named function keeps "stop". */
static const char *choice_finish(const oa_job *j, const comp_state *c) {
    if (c->auto_called || (c->as && at_stream_called(c->as))) return "tool_calls"; /* vLLM: whatever ended it */
    if (j->r.tool_mode == TOOL_REQUIRED && c->finish == ENG_FINISH_STOP && c->ts.n_calls && c->ts.calls[0].name)
        return "tool_calls";
    return finish_name(c->finish);
}

/* One call as vLLM's ToolCall / DeltaToolCall dumps it: {"id","type","index"?,"function":{"name","arguments"}}
 * for the first piece (index < 0: none, the non-streaming form), {"index","function":{"arguments"}} after. */
static void tool_call_json(sbuf *o, const tool_call *t, int index, int head, size_t from) {
    char id[64];
    if (head) {
        at_make_id(id, sizeof id, "chatcmpl-tool-"); /* vLLM's make_tool_call_id: the prefix and a uuid4 in hex */
        sb_printf(o, "{\"id\":\"%s\",\"type\":\"function\",", id);
        if (index >= 0) sb_printf(o, "\"index\":%d,", index);
        sb_str(o, "\"function\":{\"name\":");
        sb_jstrz(o, t->name);
        sb_str(o, ",");
    } else {
        sb_printf(o, "{\"index\":%d,\"function\":{", index);
    }
    sb_str(o, "\"arguments\":");
    sb_jstr(o, t->args.b ? t->args.b + from : "", t->args.n - from);
    sb_str(o, "}}");
}

/* The message of a tool_choice completion: content "" (after any echo), the calls read from the text, each
 * call's arguments its JSON text as generated (vLLM re-serializes required calls' parameters with
 * json.dumps; the model's own text is what a stream sends too). */
static void tool_message(oa_job *j, sbuf *o, comp_state *c) {
    const char *d;
    size_t dn;
    dt_delta(&c->dt, &d, &dn); /* the whole text, once */
    tool_scan_feed(&c->ts, d, dn);
    if (c->ts.oom) j->oom = 1;
    sb_str(o, "\"message\":{\"role\":\"assistant\",\"content\":");
    sb_jstrz(o, j->r.echo_prefix ? j->r.echo_prefix : "");
    sb_str(o, ",\"refusal\":null,\"annotations\":null,\"audio\":null,\"function_call\":null,\"tool_calls\":[");
    for (int k = 0, w = 0; k < c->ts.n_calls; k++) {
        if (!c->ts.calls[k].name || (w && j->r.parse.first_call_only)) continue; /* parallel_tool_calls false */
        if (w++) sb_str(o, ",");
        tool_call_json(o, &c->ts.calls[k], -1, 1, 0);
    }
    sb_str(o, "],\"reasoning\":null,\"reasoning_content\":null}");
}

/* Apply the pending events, without waiting. */
static void pump(oa_job *j, int *touched) {
    srv_event *ev;
    int n;
    if (fe_take(j->call, &ev, &n, &j->fail_status, j->fail_msg, sizeof j->fail_msg)) {
        for (int i = 0; i < n; i++) srv_event_free(&ev[i]);
        free(ev);
        j->failed = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        int ci = apply(j, &ev[i]);
        if (ci >= 0 && touched) touched[ci] = 1;
        srv_event_free(&ev[i]);
    }
    free(ev);
}

void oa_attach(oa_job *j, srv_conn *w) { fe_attach(j->s, j->call, w); }

int oa_poll(oa_job *j, char **body, size_t *len, srv_error *err) {
    if (j->n_done < j->total && !j->failed) pump(j, NULL);
    if (j->failed) return srv_fail(err, j->fail_status, NULL, "%s", j->fail_msg);
    if (j->n_done < j->total) return 0;
    sbuf o = {0};
    int ptoks = prompt_tokens(j), ctoks = 0;
    sb_printf(&o, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->id,
              j->r.chat ? "chat.completion" : "text_completion", j->created);
    sb_jstrz(&o, j->r.lora_name ? j->r.lora_name : j->s->name); /* vLLM: an adapter's name, else the first */
    sb_str(&o, ",\"choices\":[");
    for (int i = 0; i < j->total; i++) {
        comp_state *c = &j->c[i];
        int p = i / j->r.sp.n;
        ctoks += c->n_tokens;
        sb_printf(&o, "%s{\"index\":%d,", i ? "," : "", i);
        if (parsed(j)) {
            sb_str(&o, "\"message\":{\"role\":\"assistant\",");
            int rc = at_message(&o, &j->r.parse, j->r.echo_prefix, dt_str(&c->dt), dt_len(&c->dt));
            if (rc < 0) j->oom = 1;
            c->auto_called = rc == 1;
            sb_str(&o, "},\"logprobs\":");
            if (j->r.logprobs >= 0) chat_logprobs(j, &o, c);
            else sb_str(&o, "null");
        } else if (j->r.chat && j->r.tool_mode) {
            tool_message(j, &o, c);
            sb_str(&o, ",\"logprobs\":");
            if (j->r.logprobs >= 0) chat_logprobs(j, &o, c);
            else sb_str(&o, "null");
        } else if (j->r.chat) {
            sb_str(&o, "\"message\":{\"role\":\"assistant\",\"content\":");
            sbuf t = {0};
            if (j->r.echo_prefix) sb_str(&t, j->r.echo_prefix);
            sb_raw(&t, dt_str(&c->dt), dt_len(&c->dt));
            sb_jstr(&o, t.b ? t.b : "", t.n);
            o.oom |= t.oom;
            sb_free(&t);
            sb_str(&o, ",\"refusal\":null,\"annotations\":null,\"audio\":null,\"function_call\":null,"
                       "\"tool_calls\":[],\"reasoning\":null,\"reasoning_content\":null},\"logprobs\":");
            if (j->r.logprobs >= 0) chat_logprobs(j, &o, c);
            else sb_str(&o, "null");
        } else {
            sb_str(&o, "\"text\":");
            sbuf t = {0};
            if (j->r.echo) sb_str(&t, j->r.text[p]);
            sb_raw(&t, dt_str(&c->dt), dt_len(&c->dt));
            sb_jstr(&o, t.b ? t.b : "", t.n);
            o.oom |= t.oom;
            sb_free(&t);
            sb_str(&o, ",\"logprobs\":");
            if (j->r.logprobs >= 0) completion_logprobs(j, &o, c, p, j->r.echo, 0);
            else sb_str(&o, "null");
        }
        sb_printf(&o, ",\"finish_reason\":\"%s\",\"stop_reason\":", choice_finish(j, c));
        stop_reason_json(&o, c);
        if (!j->r.chat) {
            sb_str(&o, ",\"prompt_logprobs\":");
            if (j->r.sp.prompt_logprobs >= 0) prompt_logprobs_json(j, &o, p);
            else sb_str(&o, "null");
        }
        sb_str(&o, "}");
    }
    sb_str(&o, "],\"service_tier\":null,\"system_fingerprint\":null,\"usage\":");
    usage_json(j, &o, ptoks, ctoks, 1);
    if (j->r.chat) {
        sb_str(&o, ",\"prompt_logprobs\":");
        if (j->r.sp.prompt_logprobs >= 0) prompt_logprobs_json(j, &o, 0);
        else sb_str(&o, "null");
    }
    sb_str(&o, ",\"kv_transfer_params\":null}");
    *body = sb_take(&o, len);
    if (!*body || j->oom) {
        free(*body);
        *body = NULL;
        return srv_fail(err, 500, NULL, "out of memory while building the response");
    }
    return 1;
}

/* ---- streaming ---- */

static void chunk_head(oa_job *j, sbuf *o) {
    sb_printf(o, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", j->id,
              j->r.chat ? "chat.completion.chunk" : "text_completion", j->created);
    sb_jstrz(o, j->r.lora_name ? j->r.lora_name : j->s->name);
}

static void chunk_usage(oa_job *j, sbuf *o, int ci) {
    if (!j->r.include_usage || !j->r.continuous_usage) {
        if (!j->r.chat) sb_str(o, ",\"usage\":null");
        return;
    }
    sb_str(o, ",\"usage\":");
    usage_json(j, o, j->r.len[ci / j->r.sp.n], j->c[ci].n_tokens, 0);
}

/* A stream choice's end: finish_reason (and stop_reason), then the chunk's usage. */
static void choice_end(oa_job *j, sbuf *o, comp_state *c, int ci) {
    if (c->done) {
        sb_printf(o, ",\"finish_reason\":\"%s\",\"stop_reason\":", choice_finish(j, c));
        stop_reason_json(o, c);
    } else {
        sb_str(o, ",\"finish_reason\":null");
        if (!j->r.chat) sb_str(o, ",\"stop_reason\":null");
    }
    sb_str(o, "}]");
    chunk_usage(j, o, ci);
    sb_str(o, "}\n\n");
}

static void stream_choice(oa_job *j, sbuf *o, int ci) {
    comp_state *c = &j->c[ci];
    int p = ci / j->r.sp.n;
    const char *d;
    size_t dn;
    dt_delta(&c->dt, &d, &dn);
    chunk_head(j, o);
    sb_printf(o, ",\"choices\":[{\"index\":%d,", ci);
    if (j->r.chat) {
        sb_str(o, "\"delta\":{\"content\":");
        sb_jstr(o, d, dn);
        sb_str(o, "},\"logprobs\":");
        if (j->r.logprobs >= 0) chat_logprobs(j, o, c);
        else sb_str(o, "null");
    } else {
        sbuf t = {0};
        int echo = j->r.echo && !c->echoed;
        if (echo) sb_str(&t, j->r.text[p]);
        sb_raw(&t, d, dn);
        sb_str(o, "\"text\":");
        sb_jstr(o, t.b ? t.b : "", t.n);
        o->oom |= t.oom;
        sb_str(o, ",\"logprobs\":");
        if (j->r.logprobs >= 0) {
            completion_logprobs(j, o, c, p, echo, c->chars_sent);
            c->chars_sent += utf8_chars(t.b ? t.b : "", t.n);
        } else {
            sb_str(o, "null");
        }
        c->echoed = 1;
        sb_free(&t);
    }
    clear_lp(c);
    choice_end(j, o, c, ci);
}

/* A tool_choice completion's chunk: "delta": {"tool_calls": [...]} with what is new of each call, a call's
 * first piece with its id, type and name (the openai client's stream helpers join the pieces by index).
 * Nothing new and not finished: no chunk; its logprobs wait for the next one. */
static void stream_tool_choice(oa_job *j, sbuf *o, int ci) {
    comp_state *c = &j->c[ci];
    const char *d;
    size_t dn;
    dt_delta(&c->dt, &d, &dn);
    tool_scan_feed(&c->ts, d, dn);
    if (c->ts.oom) j->oom = 1;
    sbuf calls = {0};
    int w = 0;
    for (int k = 0; k < c->ts.n_calls; k++) {
        tool_call *t = &c->ts.calls[k];
        if (!t->name || (k && j->r.parse.first_call_only)) break; /* announced in order */
        if (t->sent_head && t->sent_args == t->args.n) continue;
        if (w++) sb_str(&calls, ",");
        tool_call_json(&calls, t, k, !t->sent_head, t->sent_args);
        t->sent_head = 1;
        t->sent_args = t->args.n;
    }
    if (!w && !c->done) return;
    chunk_head(j, o);
    sb_printf(o, ",\"choices\":[{\"index\":%d,\"delta\":{", ci);
    if (w) {
        sb_str(o, "\"tool_calls\":[");
        sb_raw(o, calls.b, calls.n);
        sb_str(o, "]");
    }
    o->oom |= calls.oom;
    sb_free(&calls);
    sb_str(o, "},\"logprobs\":");
    if (j->r.logprobs >= 0) chat_logprobs(j, o, c);
    else sb_str(o, "null");
    clear_lp(c);
    choice_end(j, o, c, ci);
}

/* A chunk of a completion through the output parsers: its delta's fields as autotool decides them. Nothing
 * decided and not finished: no chunk; its logprobs wait for the next one. */
static void stream_parsed(oa_job *j, sbuf *o, int ci) {
    comp_state *c = &j->c[ci];
    const char *d;
    size_t dn;
    dt_delta(&c->dt, &d, &dn);
    sbuf f = {0};
    int any = at_stream_feed(c->as, d, dn, c->done, &f);
    if (any < 0) j->oom = 1;
    if (any <= 0 && !c->done) {
        sb_free(&f);
        return;
    }
    chunk_head(j, o);
    sb_printf(o, ",\"choices\":[{\"index\":%d,\"delta\":{", ci);
    if (any > 0 && f.n) sb_raw(o, f.b + 1, f.n - 1); /* without the leading comma */
    sb_free(&f);
    sb_str(o, "},\"logprobs\":");
    if (j->r.logprobs >= 0) chat_logprobs(j, o, c);
    else sb_str(o, "null");
    clear_lp(c);
    choice_end(j, o, c, ci);
}

int oa_stream(oa_job *j, sbuf *out, int *done) {
    *done = 0;
    if (j->stream_done) {
        *done = 1;
        return 0;
    }
    if (!j->stream_started && j->r.chat) { /* the role first, then any echo, for every choice */
        for (int i = 0; i < j->total; i++) {
            chunk_head(j, out);
            sb_printf(out, ",\"choices\":[{\"index\":%d,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
                           "\"logprobs\":null,\"finish_reason\":null}]", i);
            chunk_usage(j, out, i);
            sb_str(out, "}\n\n");
            if (j->r.echo_prefix) {
                chunk_head(j, out);
                sb_printf(out, ",\"choices\":[{\"index\":%d,\"delta\":{\"content\":", i);
                sb_jstrz(out, j->r.echo_prefix);
                sb_str(out, "},\"logprobs\":null,\"finish_reason\":null}]");
                chunk_usage(j, out, i);
                sb_str(out, "}\n\n");
            }
        }
    }
    j->stream_started = 1;
    int *touched = j->touched;
    if (j->n_done < j->total && !j->failed) {
        size_t before = out->n;
        pump(j, touched); /* then one chunk per completion that moved, in index order */
        for (int i = 0; i < j->total; i++)
            if (touched[i]) {
                if (parsed(j)) stream_parsed(j, out, i);
                else if (j->r.chat && j->r.tool_mode) stream_tool_choice(j, out, i);
                else stream_choice(j, out, i);
                touched[i] = 0;
            }
        if (j->oom) { /* a chunk could not be made whole: the stream ends with an error instead */
            out->n = before;
            j->failed = 1;
            j->fail_status = 500;
            snprintf(j->fail_msg, sizeof j->fail_msg, "out of memory while building the response");
            fe_abort(j->s, j->call, -1, -1, ENG_FINISH_ABORT);
        }
    }
    if (j->failed) { /* an error event, then the end */
        srv_error err = {0};
        srv_fail(&err, j->fail_status, NULL, "%s", j->fail_msg);
        size_t n;
        char *e = oa_error_json(&err, &n);
        sb_str(out, "data: ");
        if (e) sb_raw(out, e, n);
        sb_str(out, "\n\n");
        free(e);
    } else if (j->n_done < j->total) {
        return 0;
    }
    if (!j->failed && j->r.include_usage) {
        int ctoks = 0;
        for (int i = 0; i < j->total; i++) ctoks += j->c[i].n_tokens;
        chunk_head(j, out);
        sb_str(out, ",\"choices\":[],\"usage\":");
        usage_json(j, out, prompt_tokens(j), ctoks, 1);
        sb_str(out, "}\n\n");
    }
    sb_str(out, "data: [DONE]\n\n");
    j->stream_done = 1;
    *done = 1;
    return 0;
}
