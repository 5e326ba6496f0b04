/* vllmc generate: offline generation through the engine (vLLM's LLM.generate):
 * every prompt is queued at once and the engine batches them continuously.
 * One JSON line per prompt, in prompt order. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/err.h"
#include "base/sbuf.h"
#include "base/file.h"
#include "cli/cli.h"
#include "engine/detok.h"
#include "engine/offline.h"
#include "engine/params_json.h"
#include "hub/hub.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: vllmc generate MODEL_DIR (--prompt-token-ids 1,5,9 | --prompt TEXT)... [--prompts-file FILE.jsonl]\n"
    "       [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p M] [--seed S] [--n N]\n"
    "       [--presence-penalty X] [--frequency-penalty X] [--repetition-penalty X] [--min-tokens N]\n"
    "       [--stop STR]... [--stop-token-ids 1,2] [--logprobs K] [--prompt-logprobs K] [--ignore-eos]\n"
    "       [--dtype D] [--device auto|cpu] [--block-size B] [--max-model-len L] [--max-num-seqs S]\n"
    "       [--max-num-batched-tokens T] [--max-logprobs N (default: vocab)] [--no-enable-prefix-caching]\n"
    "       [--scheduling-policy fcfs|priority] [--revision REV] [--download-dir DIR] --json\n"
    "MODEL_DIR may be a Hugging Face repo id ORG/NAME instead (downloaded into the Hugging Face cache:\n"
    "--download-dir, else HF_HUB_CACHE, else HF_HOME/hub; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured).\n"
    "Without --temperature decoding is greedy. A --prompts-file line is a JSON object with \"prompt\" (text) or\n"
    "\"prompt_token_ids\", plus optional sampling fields (vLLM names) and \"priority\".\n";

typedef struct {
    int32_t *ids;
    int n;
    eng_sampling_params sp;
    int priority;
} prompt_in;

typedef struct {
    const tok_tokenizer *tok;
    prompt_in *p;
    int *first;                /* completion index of each prompt's first completion */
    dt_text *t;
} gen_ctx;

/* Per sampled token: detokenize incrementally and look for stop strings. */
static int on_token(void *vctx, int r, int index, const off_completion *c) {
    gen_ctx *g = vctx;
    dt_text *t = &g->t[g->first[r] + index];
    if (!g->tok || !t->st) return 0;
    /* as vLLM's detokenizer: the EOS / stop_token_ids token that ended it adds no text */
    if (c->finish == ENG_FINISH_STOP && !g->p[r].sp.include_stop_str_in_output) return 0;
    return dt_push(t, c->tokens[c->n_tokens - 1]) == 1;
}

static void print_completion_fields(const off_completion *c, const dt_text *t, int has_tok) {
    printf("\"token_ids\":[");
    for (int j = 0; j < c->n_tokens; j++) printf("%s%d", j ? "," : "", c->tokens[j]);
    printf("]");
    if (has_tok) {
        printf(",\"text\":");
        sb_fput_jstr(stdout, dt_str(t), dt_len(t));
    }
    printf(",\"logprobs\":");
    if (c->lp_k > 0 && c->lp_ids) {
        printf("[");
        for (int j = 0; j < c->n_tokens; j++) {
            printf("%s{", j ? "," : "");
            int w = 0;
            for (int q = 0; q < c->lp_k; q++) {
                int32_t id = c->lp_ids[(size_t)j * c->lp_k + q];
                if (id < 0) continue;
                printf("%s\"%d\":%.9g", w++ ? "," : "", id, c->lp_vals[(size_t)j * c->lp_k + q]);
            }
            printf("}");
        }
        printf("]");
    } else {
        printf("null");
    }
    const char *fr = c->finish == ENG_FINISH_STOP ? "stop" : c->finish == ENG_FINISH_LENGTH ? "length" : "abort";
    printf(",\"finish_reason\":\"%s\",\"stop_reason\":", fr);
    if (dt_stop_str(t)) sb_fput_jstr(stdout, dt_stop_str(t), strlen(dt_stop_str(t)));
    else if (c->stop_token >= 0) printf("%d", c->stop_token);
    else printf("null");
}

static int add_prompt(prompt_in **ps, int *np, int *cap, int32_t *ids, int n, const eng_sampling_params *sp,
                      int priority) {
    if (*np == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        prompt_in *x = realloc(*ps, sizeof *x * (size_t)nc);
        if (!x) return -1;
        *ps = x;
        *cap = nc;
    }
    prompt_in *p = &(*ps)[(*np)++];
    memset(p, 0, sizeof *p);
    p->ids = ids;
    p->n = n;
    p->priority = priority;
    return eng_params_copy(&p->sp, sp);
}

static int encode(const tok_tokenizer *tok, const char *text, int32_t **ids, int *n) {
    if (!tok) {
        cli_error("text prompts need tokenizer.json in the model folder (or use --prompt-token-ids)");
        return -1;
    }
    tok_ids v = {0};
    if (tok_encode(tok, text, strlen(text), 1, &v)) {
        cli_error("%s", vc_errmsg());
        tok_ids_free(&v);
        return -1;
    }
    *ids = v.ids;
    *n = (int)v.n;
    return 0;
}

/* One JSON object per line: prompt or prompt_token_ids, sampling fields, priority. */
static int read_prompts_file(const char *path, const tok_tokenizer *tok, const eng_sampling_params *base,
                             prompt_in **ps, int *np, int *cap) {
    char *text;
    size_t len;
    if (vc_read_file(path, (size_t)1 << 30, &text, &len)) {
        cli_error("%s", vc_errmsg());
        return -1;
    }
    int line = 0, rc = 0;
    for (char *s = text, *nl; s && *s && !rc; s = nl ? nl + 1 : NULL) {
        nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        const char *q = s;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (!*q) continue;
        cJSON *o = cJSON_Parse(s);
        eng_sampling_params sp;
        int32_t *ids = NULL;
        int n = 0;
        long long prio = 0;
        if (!o || !cJSON_IsObject(o)) {
            cli_error("%s:%d: not a JSON object", path, line);
            rc = -1;
        } else if (eng_params_copy(&sp, base) == 0) {
            const cJSON *bw = cJSON_GetObjectItemCaseSensitive(o, "bad_words");
            if (eng_params_from_json(o, &sp) || (bw && !cJSON_IsNull(bw) && dt_add_bad_words(tok, bw, &sp))) {
                cli_error("%s:%d: %s", path, line, vc_errmsg());
                rc = -1;
            }
            const cJSON *pt = cJSON_GetObjectItemCaseSensitive(o, "prompt_token_ids");
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "prompt");
            const cJSON *pp = cJSON_GetObjectItemCaseSensitive(o, "priority");
            if (!rc && pp && !cJSON_IsNumber(pp)) {
                cli_error("%s:%d: 'priority' must be an integer", path, line);
                rc = -1;
            } else if (pp) {
                prio = (long long)pp->valuedouble;
            }
            if (!rc && cJSON_IsArray(pt)) {
                n = cJSON_GetArraySize(pt);
                ids = malloc(sizeof *ids * (size_t)(n ? n : 1));
                int i = 0;
                const cJSON *e;
                cJSON_ArrayForEach(e, pt) {
                    if (!cJSON_IsNumber(e)) rc = -1;
                    else if (ids) ids[i++] = (int32_t)e->valuedouble;
                }
                if (rc || !ids) cli_error("%s:%d: 'prompt_token_ids' must be a list of integers", path, line);
                if (!ids) rc = -1;
            } else if (!rc && cJSON_IsString(pr)) {
                if (encode(tok, pr->valuestring, &ids, &n)) rc = -1;
            } else if (!rc) {
                cli_error("%s:%d: needs \"prompt\" (a string) or \"prompt_token_ids\" (a list)", path, line);
                rc = -1;
            }
            if (!rc && add_prompt(ps, np, cap, ids, n, &sp, (int)prio)) rc = -1;
            else if (rc) free(ids);
            eng_params_free(&sp);
        }
        cJSON_Delete(o);
    }
    free(text);
    return rc;
}

int cli_generate(int argc, char **argv) {
    const char *dir = NULL, *dtype = NULL, *device = NULL, *revision = NULL, *download_dir = NULL;
    char *local_dir = NULL;
    int json = 0, np = 0, cap = 0, status = 2, has_temp = 0;
    prompt_in *ps = NULL;
    const char **files = calloc((size_t)argc + 1, sizeof *files), **texts = calloc((size_t)argc + 1, sizeof *texts);
    int nfiles = 0, ntexts = 0;
    eng_config ec;
    eng_config_default(&ec);
    /* generate's contract (issue #2) allows --logprobs up to the vocabulary, e.g. to
     * compare whole distributions with a reference; the server keeps vLLM's 20 */
    ec.max_logprobs = -1;
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 0;
    be_backend *be = NULL;
    mdl_model *m = NULL;
    tok_tokenizer *tok = NULL;
    eng_engine *e = NULL;
    off_request *rq = NULL;
    off_completion *outs = NULL;
    dt_text *txt = NULL;
    int *first = NULL, total = 0;
    int32_t **tok_args = calloc((size_t)argc + 1, sizeof *tok_args);
    int *tok_len = calloc((size_t)argc + 1, sizeof *tok_len), ntok = 0;
    if (!files || !texts || !tok_args || !tok_len) goto done;
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        double fv;
#define FLOAT_FLAG(name, field)                                                              \
    if (cli_flag(&a, name)) {                                                                \
        if (!(v = cli_value(&a, name)) || cli_parse_float(v, name, &fv)) goto done;          \
        field = (float)fv;                                                                   \
        continue;                                                                            \
    }
#define INT_FLAG(name, field, lo, hi)                                                        \
    if (cli_flag(&a, name)) {                                                                \
        if (!(v = cli_value(&a, name)) || cli_parse_int(v, name, lo, hi, &iv)) goto done;    \
        field = (int)iv;                                                                     \
        continue;                                                                            \
    }
        if (cli_flag(&a, "--temperature")) {
            if (!(v = cli_value(&a, "--temperature")) || cli_parse_float(v, "--temperature", &fv)) goto done;
            sp.temperature = (float)fv;
            has_temp = 1;
            continue;
        }
        FLOAT_FLAG("--top-p", sp.top_p)
        FLOAT_FLAG("--min-p", sp.min_p)
        FLOAT_FLAG("--presence-penalty", sp.presence_penalty)
        FLOAT_FLAG("--frequency-penalty", sp.frequency_penalty)
        FLOAT_FLAG("--repetition-penalty", sp.repetition_penalty)
        INT_FLAG("--top-k", sp.top_k, -1, 1 << 30)
        INT_FLAG("--max-tokens", sp.max_tokens, 1, 1 << 24)
        INT_FLAG("--min-tokens", sp.min_tokens, 0, 1 << 24)
        INT_FLAG("--n", sp.n, 1, 1 << 16)
        INT_FLAG("--logprobs", sp.logprobs, 0, 1 << 20)
        INT_FLAG("--prompt-logprobs", sp.prompt_logprobs, 0, 1 << 20)
        INT_FLAG("--block-size", ec.block_size, 1, 1024)
        INT_FLAG("--max-model-len", ec.max_model_len, 1, 1 << 30)
        INT_FLAG("--max-num-seqs", ec.max_num_seqs, 1, 1 << 20)
        INT_FLAG("--max-num-batched-tokens", ec.max_num_batched_tokens, 1, 1 << 24)
        INT_FLAG("--max-logprobs", ec.max_logprobs, -1, 1 << 24)
#undef FLOAT_FLAG
#undef INT_FLAG
        if (cli_flag(&a, "--seed")) {
            if (!(v = cli_value(&a, "--seed")) || cli_parse_int(v, "--seed", INT64_MIN / 2, INT64_MAX / 2, &iv)) goto done;
            sp.has_seed = 1;
            sp.seed = iv;
        } else if (cli_flag(&a, "--prompt-token-ids")) {
            if (!(v = cli_value(&a, "--prompt-token-ids")) || cli_parse_ids(v, &tok_args[ntok], &tok_len[ntok])) goto done;
            ntok++;
        } else if (cli_flag(&a, "--prompt")) {
            if (!(texts[ntexts++] = cli_value(&a, "--prompt"))) goto done;
        } else if (cli_flag(&a, "--prompts-file")) {
            if (!(files[nfiles++] = cli_value(&a, "--prompts-file"))) goto done;
        } else if (cli_flag(&a, "--stop")) {
            if (!(v = cli_value(&a, "--stop"))) goto done;
            char **ns = realloc(sp.stop, sizeof *ns * (size_t)(sp.n_stop + 1));
            if (!ns) goto done;
            sp.stop = ns;
            if (!(sp.stop[sp.n_stop] = strdup(v))) goto done;
            sp.n_stop++;
        } else if (cli_flag(&a, "--stop-token-ids")) {
            int32_t *ids;
            int n;
            if (!(v = cli_value(&a, "--stop-token-ids")) || cli_parse_ids(v, &ids, &n)) goto done;
            free(sp.stop_token_ids);
            sp.stop_token_ids = ids;
            sp.n_stop_token_ids = n;
        } else if (cli_flag(&a, "--scheduling-policy")) {
            if (!(v = cli_value(&a, "--scheduling-policy"))) goto done;
            if (!strcmp(v, "fcfs")) ec.policy = ENG_FCFS;
            else if (!strcmp(v, "priority")) ec.policy = ENG_PRIORITY;
            else {
                cli_error("--scheduling-policy must be fcfs or priority, got '%s'", v);
                goto done;
            }
        } else if (cli_flag(&a, "--dtype")) {
            if (!(dtype = cli_value(&a, "--dtype"))) goto done;
        } else if (cli_flag(&a, "--device")) {
            if (!(device = cli_value(&a, "--device"))) goto done;
        } else if (cli_flag(&a, "--revision")) {
            if (!(revision = cli_value(&a, "--revision"))) goto done;
        } else if (cli_flag(&a, "--download-dir")) {
            if (!(download_dir = cli_value(&a, "--download-dir"))) goto done;
        } else if (cli_flag(&a, "--no-enable-prefix-caching")) {
            ec.enable_prefix_caching = 0;
        } else if (cli_flag(&a, "--enable-prefix-caching")) {
            ec.enable_prefix_caching = 1;
        } else if (cli_flag(&a, "--ignore-eos")) {
            sp.ignore_eos = 1;
        } else if (cli_flag(&a, "--json")) {
            json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            status = 0;
            goto done;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] == '-') {
            cli_error("generate: unknown option '%s'", argv[a.i]);
            goto done;
        } else if (!dir) {
            dir = argv[a.i++];
        } else {
            cli_error("generate: unexpected argument '%s'", argv[a.i]);
            goto done;
        }
    }
    if (!dir || ntok + ntexts + nfiles == 0) {
        cli_error("generate: a MODEL_DIR and at least one --prompt-token-ids, --prompt or --prompts-file are required");
        fputs(usage, stderr);
        goto done;
    }
    if (!json) {
        cli_error("generate: only --json output is supported; pass --json");
        goto done;
    }
    if (!has_temp) sp.temperature = 0; /* greedy unless asked */
    status = 1;
    hub_opts ho = {revision, download_dir, -1};
    if (hub_resolve(dir, &ho, &local_dir)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    dir = local_dir;
    if (cli_open_backend(device, &be)) goto done;
    char tj[4096];
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    if (vc_file_exists(tj) && tok_load_dir(dir, &tok)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    /* prompts in command-line order of kind: token ids, texts, files */
    for (int i = 0; i < ntok; i++) {
        if (add_prompt(&ps, &np, &cap, tok_args[i], tok_len[i], &sp, 0)) goto done;
        tok_args[i] = NULL;
    }
    for (int i = 0; i < ntexts; i++) {
        int32_t *ids;
        int n;
        if (encode(tok, texts[i], &ids, &n) || add_prompt(&ps, &np, &cap, ids, n, &sp, 0)) goto done;
    }
    for (int i = 0; i < nfiles; i++)
        if (read_prompts_file(files[i], tok, &sp, &ps, &np, &cap)) goto done;
    if (mdl_load(dir, dtype, be, &m) || eng_create(m, &ec, &e)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    rq = calloc((size_t)np, sizeof *rq);
    first = calloc((size_t)np + 1, sizeof *first);
    if (!rq || !first) goto done;
    for (int i = 0; i < np; i++) {
        rq[i] = (off_request){ps[i].ids, ps[i].n, &ps[i].sp, ps[i].priority};
        first[i + 1] = first[i] + ps[i].sp.n;
    }
    total = first[np];
    outs = calloc((size_t)total, sizeof *outs);
    txt = calloc((size_t)total, sizeof *txt);
    if (!outs || !txt) goto done;
    for (int i = 0; i < np && tok; i++)
        for (int j = 0; j < ps[i].sp.n; j++)
            if (dt_init(&txt[first[i] + j], tok, &ps[i].sp, ps[i].ids, ps[i].n)) {
                cli_error("%s", vc_errmsg());
                goto done;
            }
    gen_ctx g = {tok, ps, first, txt};
    if (off_run(e, rq, np, outs, tok ? on_token : NULL, &g, NULL)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    for (int i = 0; i < np; i++) {
        for (int j = 0; j < ps[i].sp.n && tok; j++) /* release what the stream still holds */
            if (txt[first[i] + j].st) dt_finish(&txt[first[i] + j]);
        const off_completion *c0 = &outs[first[i]];
        printf("{\"prompt_token_ids\":[");
        for (int j = 0; j < ps[i].n; j++) printf("%s%d", j ? "," : "", ps[i].ids[j]);
        printf("],");
        print_completion_fields(c0, &txt[first[i]], tok != NULL);
        printf(",\"num_cached_tokens\":%d", c0->n_cached);
        if (c0->plp_tok) { /* vLLM: None for the first token, then top-K plus the prompt token itself */
            printf(",\"prompt_logprobs\":[null");
            for (int p = 1; p < ps[i].n; p++) {
                printf(",{\"%d\":%.9g", ps[i].ids[p], c0->plp_tok[p]);
                for (int q = 0; q < c0->plp_k; q++) {
                    int32_t id = c0->plp_ids[(size_t)p * c0->plp_k + q];
                    if (id >= 0 && id != ps[i].ids[p]) printf(",\"%d\":%.9g", id, c0->plp_vals[(size_t)p * c0->plp_k + q]);
                }
                printf("}");
            }
            printf("]");
        }
        if (ps[i].sp.n > 1) {
            printf(",\"outputs\":[");
            for (int j = 0; j < ps[i].sp.n; j++) {
                printf("%s{\"index\":%d,", j ? "," : "", j);
                print_completion_fields(&outs[first[i] + j], &txt[first[i] + j], tok != NULL);
                printf("}");
            }
            printf("]");
        }
        printf("}\n");
    }
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    if (outs) off_free(outs, total);
    for (int i = 0; txt && i < total; i++) dt_free(&txt[i]);
    free(txt);
    free(outs);
    free(rq);
    free(first);
    for (int i = 0; i < np; i++) {
        free(ps[i].ids);
        eng_params_free(&ps[i].sp);
    }
    free(ps);
    for (int i = 0; i < ntok; i++) free(tok_args[i]);
    free(tok_args);
    free(tok_len);
    free(files);
    free(texts);
    eng_params_free(&sp);
    eng_free(e);
    tok_free(tok);
    mdl_free(m);
    be_free(be);
    free(local_dir);
    return status;
}
