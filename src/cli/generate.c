/* vllmc generate: offline generation through the engine (vLLM's LLM.generate):
 * every prompt is queued at once and the engine batches them continuously.
 * One JSON line per prompt, in prompt order. Structured output: one constraint
 * from the flags for every prompt, or a --prompts-file line's own (the server's
 * fields), both through grammar/spec.h. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/sbuf.h"
#include "base/file.h"
#include "base/json.h"
#include "cli/cli.h"
#include "engine/detok.h"
#include "engine/offline.h"
#include "engine/params_json.h"
#include "grammar/spec.h"
#include "stack.h"
#include "tokenizer/tokenizer.h"

static const char usage[] =
    "usage: vllmc generate MODEL_DIR (--prompt-token-ids 1,5,9 | --prompt TEXT)... [--prompts-file FILE.jsonl]\n"
    "       [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p M] [--seed S] [--n N]\n"
    "       [--presence-penalty X] [--frequency-penalty X] [--repetition-penalty X] [--min-tokens N]\n"
    "       [--stop STR]... [--stop-token-ids 1,2] [--logprobs K] [--prompt-logprobs K] [--ignore-eos]\n"
    "       [--dtype D] [--kv-cache-dtype auto|bfloat16|float16|float32] [--device auto|cpu|gpu]\n"
    "       [--gpu-memory-utilization F] [--block-size B] [--max-model-len L] [--max-num-seqs S]\n"
    "       [--max-num-batched-tokens T] [--max-logprobs N (default: vocab)] [--no-enable-prefix-caching]\n"
    "       [--scheduling-policy fcfs|priority] [--revision REV] [--download-dir DIR]\n"
    "       [--json-schema FILE | --regex R | --choice A,B,... | --grammar FILE | --json-object]\n"
    "       [--disable-any-whitespace] [--lora NAME=PATH]... [--lora-name NAME] [--max-loras N]\n"
    "       [--max-lora-rank R] [--max-cpu-loras N] --json\n"
    "MODEL_DIR may be a Hugging Face repo id ORG/NAME instead (downloaded into the Hugging Face cache:\n"
    "--download-dir, else HF_HUB_CACHE, else HF_HOME/hub; HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE honoured).\n"
    "Without --temperature decoding is greedy. A --prompts-file line is a JSON object with \"prompt\" (text) or\n"
    "\"prompt_token_ids\", plus optional sampling fields (vLLM names) and \"priority\".\n"
    "Structured output (at most one constraint, for every prompt): --json-schema FILE (a JSON Schema),\n"
    "--regex R (the whole output matches R), --choice A,B,... (exactly one of them; write \\, for a comma\n"
    "inside a choice, \\\\ for a backslash), --grammar FILE (GBNF), --json-object (any JSON object);\n"
    "--disable-any-whitespace: no whitespace between JSON tokens. A --prompts-file line may carry its own,\n"
    "as a server request does (\"structured_outputs\", \"response_format\", \"guided_json\"/_regex/_choice/\n"
    "_grammar), which replaces the command line's for that line (\"response_format\": {\"type\": \"text\"}: none).\n"
    "LoRA: --lora NAME=PATH (repeatable; PATH a PEFT adapter folder or a Hub repo id; also the JSON form of\n"
    "serve's --lora-modules) loads an adapter and turns LoRA on (--enable-lora, --max-loras default 1,\n"
    "--max-lora-rank default 16, --max-cpu-loras default --max-loras, as vLLM). --lora-name NAME runs the\n"
    "command line's prompts with that adapter (default: the base model); a --prompts-file line's \"lora\":\n"
    "\"NAME\" picks its own (\"\": the base model), else it takes --lora-name's.\n";

typedef struct {
    int32_t *ids;
    int n;
    eng_sampling_params sp;
    int priority;
    eng_lora *lora;            /* a reference to its LoRA adapter, or NULL: the base model */
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
    if (c->error) {
        printf(",\"error\":");
        sb_fput_jstr(stdout, c->error, strlen(c->error));
    }
}

/* Takes ids and the lora reference (also on failure). */
static int add_prompt(prompt_in **ps, int *np, int *cap, int32_t *ids, int n, const eng_sampling_params *sp,
                      int priority, eng_lora *lora) {
    if (*np == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        prompt_in *x = realloc(*ps, sizeof *x * (size_t)nc);
        if (!x) {
            free(ids);
            eng_lora_unref(lora);
            return -1;
        }
        *ps = x;
        *cap = nc;
    }
    prompt_in *p = &(*ps)[(*np)++];
    memset(p, 0, sizeof *p);
    p->ids = ids;
    p->n = n;
    p->priority = priority;
    p->lora = lora;
    return eng_params_copy(&p->sp, sp);
}

static int encode(const tok_tokenizer *tok, const char *text, size_t len, int32_t **ids, int *n) {
    if (!tok) {
        cli_error("text prompts need tokenizer.json in the model folder (or use --prompt-token-ids)");
        return -1;
    }
    tok_ids v = {0};
    if (tok_encode(tok, text, len, 1, &v)) {
        cli_error("%s", vc_errmsg());
        tok_ids_free(&v);
        return -1;
    }
    *ids = v.ids;
    *n = (int)v.n;
    return 0;
}

/* A prompts-file line's own constraint (the server's fields, read by grammar/spec.c) replaces the
 * command line's in sp; "response_format": {"type": "text"} removes it. */
static int line_constraint(const cJSON *o, gram_spec_cache *cache, eng_sampling_params *sp, gram_spec_error *e) {
    gram_spec s;
    gram_grammar *gr = NULL;
    if (gram_spec_read(o, &s, e)) return -1;
    if (s.kind == GRAM_SPEC_NONE && !s.text) return 0;
    if (s.kind != GRAM_SPEC_NONE && gram_spec_compile(cache, &s, &gr, e)) return -1;
    gram_free(sp->grammar);
    sp->grammar = gr;
    return 0;
}

/* A line's "lora": a reference to the adapter it names ("": none), else to def (NULL: none). 0, or -1
 * with a message naming the line. */
static int line_lora(const cJSON *o, lora_registry *reg, eng_lora *def, const char *path, int line, eng_lora **out) {
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(o, "lora");
    *out = NULL;
    if (!lo || cJSON_IsNull(lo)) {
        *out = def ? eng_lora_ref(def) : NULL;
        return 0;
    }
    if (!cJSON_IsString(lo)) {
        cli_error("%s:%d: 'lora' must be a string (the name given with --lora NAME=PATH)", path, line);
        return -1;
    }
    if (!lo->valuestring[0]) return 0;
    int rc = reg ? lora_reg_get(reg, lo->valuestring, out) : VC_ENOENT;
    if (rc == VC_ENOENT)
        cli_error("%s:%d: unknown LoRA adapter '%s' (load it with --lora %s=PATH)", path, line, lo->valuestring,
                  lo->valuestring);
    else if (rc)
        cli_error("%s:%d: %s", path, line, vc_errmsg());
    return rc ? -1 : 0;
}

/* One JSON object per line: prompt or prompt_token_ids, sampling fields, priority, a constraint, lora. */
static int read_prompts_file(const char *path, const tok_tokenizer *tok, const eng_sampling_params *base,
                             gram_spec_cache *cache, lora_registry *reg, eng_lora *def, prompt_in **ps, int *np,
                             int *cap) {
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
        js_error e;
        cJSON *o = js_parse(s, strlen(s), &e);
        eng_sampling_params sp;
        int32_t *ids = NULL;
        int n = 0;
        long long prio = 0;
        eng_lora *lora = NULL;
        if (!o) {
            cli_error("%s:%d: not valid JSON: %s", path, line, e.message);
            rc = -1;
        } else if (!cJSON_IsObject(o)) {
            cli_error("%s:%d: not a JSON object", path, line);
            rc = -1;
        } else if (eng_params_copy(&sp, base) == 0) {
            const cJSON *bw = cJSON_GetObjectItemCaseSensitive(o, "bad_words");
            if (eng_params_from_json(o, &sp) || (bw && !cJSON_IsNull(bw) && dt_add_bad_words(tok, bw, &sp))) {
                cli_error("%s:%d: %s", path, line, vc_errmsg());
                rc = -1;
            }
            gram_spec_error se;
            if (!rc && line_constraint(o, cache, &sp, &se)) {
                cli_error("%s:%d: %s", path, line, se.message);
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
                size_t plen = js_unmask_nul(pr->valuestring, strlen(pr->valuestring)); /* U+0000 as 0 */
                if (encode(tok, pr->valuestring, plen, &ids, &n)) rc = -1;
            } else if (!rc) {
                cli_error("%s:%d: needs \"prompt\" (a string) or \"prompt_token_ids\" (a list)", path, line);
                rc = -1;
            }
            if (!rc && line_lora(o, reg, def, path, line, &lora)) rc = -1;
            if (!rc && add_prompt(ps, np, cap, ids, n, &sp, (int)prio, lora)) rc = -1;
            else if (rc) free(ids);
            eng_params_free(&sp);
        }
        cJSON_Delete(o);
    }
    free(text);
    return rc;
}

/* The structured-output flags: at most one is given. */
typedef struct {
    const char *flag;
    gram_spec_kind kind;
    int arg;                   /* 0: takes no value; 1: the value is the constraint; 2: a file holding it */
} so_flag_def;

static const so_flag_def so_flags[] = {
    {"--json-schema", GRAM_SPEC_JSON, 2}, {"--regex", GRAM_SPEC_REGEX, 1}, {"--choice", GRAM_SPEC_CHOICE, 1},
    {"--grammar", GRAM_SPEC_GRAMMAR, 2},  {"--json-object", GRAM_SPEC_JSON_OBJECT, 0},
};

/* The command line, parsed before anything is loaded. */
typedef struct {
    stk_params st;             /* model, --dtype, --device, ..., engine config */
    eng_sampling_params sp;    /* the sampling flags: every prompt's defaults */
    int32_t **tok_args;        /* [ntok] --prompt-token-ids lists, with lengths tok_len */
    int *tok_len, ntok;
    const char **texts;        /* [ntexts] --prompt */
    int ntexts;
    const char **files;        /* [nfiles] --prompts-file */
    int nfiles;
    const so_flag_def *so;     /* the structured-output flag given; NULL: none */
    const char *so_arg;        /* its value */
    int so_no_ws;              /* --disable-any-whitespace */
    cli_lora lora;             /* --lora NAME=PATH..., --max-loras, ... */
    const char *lora_name;     /* --lora-name: the command line's prompts' adapter */
    int json;
} gen_args;

static void gen_args_free(gen_args *g) {
    for (int i = 0; i < g->ntok; i++) free(g->tok_args[i]);
    free(g->tok_args);
    free(g->tok_len);
    free(g->files);
    free(g->texts);
    eng_params_free(&g->sp);
    cli_lora_free(&g->lora);
}

/* The index in so_flags of argv's current flag (consumed), or -1. */
static int so_flag_match(cli_args *a) {
    for (int i = 0; i < (int)(sizeof so_flags / sizeof *so_flags); i++)
        if (cli_flag(a, so_flags[i].flag)) return i;
    return -1;
}

/* --choice A,B,...: the choices split at commas; inside a choice \, is a comma and \\ a backslash
 * (any other backslash is an error, so nothing is guessed). 0 or 2 (message printed). */
static int parse_choice(const char *arg, cJSON **out) {
    size_t n = strlen(arg), k = 0;
    cJSON *list = cJSON_CreateArray();
    char *buf = malloc(n + 1);
    int rc = list && buf ? 0 : 2;
    for (size_t i = 0; !rc; i++) {
        char c = arg[i];
        if (c == '\\') {
            c = arg[++i];
            if (c != ',' && c != '\\') {
                cli_error("generate: --choice: a backslash at byte %zu escapes neither ',' nor '\\' (write \\, for a "
                          "comma inside a choice, \\\\ for a backslash)", i - 1);
                rc = 2;
                break;
            }
        } else if (c == ',' || c == 0) {
            buf[k] = 0;
            k = 0;
            cJSON *str = cJSON_CreateString(buf);
            if (!str || !cJSON_AddItemToArray(list, str)) {
                cJSON_Delete(str);
                cli_error("out of memory");
                rc = 2;
            }
            if (!c) break;
            continue;
        }
        buf[k++] = c;
    }
    if (!list || !buf) cli_error("out of memory");
    free(buf);
    if (rc) cJSON_Delete(list);
    else *out = list;
    return rc;
}

/* The command line's constraint, compiled before the model loads, into g->sp.grammar: every prompt's,
 * unless its --prompts-file line has its own. 0 or 2 (message printed). */
static int gen_constraint(gen_args *g) {
    if (g->so_no_ws && (!g->so || (g->so->kind != GRAM_SPEC_JSON && g->so->kind != GRAM_SPEC_JSON_OBJECT))) {
        cli_error("generate: --disable-any-whitespace applies to --json-schema or --json-object");
        return 2;
    }
    if (!g->so) return 0;
    const so_flag_def *f = g->so;
    cJSON *value = NULL;
    char *text = NULL, *where = NULL;
    size_t len = 0;
    int rc = 2;
    sbuf w = {0}; /* what messages name: the flag, and the file */
    sb_str(&w, f->flag);
    if (f->arg == 2) sb_printf(&w, " %s", g->so_arg);
    if (!(where = sb_take(&w, NULL))) goto oom;
    if (f->arg == 2) {
        if (vc_read_file(g->so_arg, (size_t)64 << 20, &text, &len)) {
            cli_error("generate: %s: %s", f->flag, vc_errmsg());
            goto out;
        }
        if (memchr(text, 0, len)) {
            cli_error("generate: %s: the file holds a NUL byte", where);
            goto out;
        }
    }
    if (f->kind == GRAM_SPEC_JSON) {
        js_error je;
        if (!(value = js_parse(text, len, &je))) {
            if (je.oom) goto oom;
            cli_error("generate: %s: not valid JSON: %s", where, je.message);
            goto out;
        }
    } else if (f->kind == GRAM_SPEC_CHOICE) {
        if (parse_choice(g->so_arg, &value)) goto out;
    } else if (f->kind != GRAM_SPEC_JSON_OBJECT) { /* the regex, or the grammar file's text */
        if (!(value = cJSON_CreateString(text ? text : g->so_arg))) goto oom;
    }
    gram_spec s;
    gram_spec_error e;
    gram_spec_init(&s);
    s.any_ws = !g->so_no_ws;
    if (gram_spec_set(&s, f->kind, value, where, &e) || gram_spec_compile(NULL, &s, &g->sp.grammar, &e)) {
        cli_error("generate: %s", e.message);
        goto out;
    }
    rc = 0;
    goto out;
oom:
    cli_error("out of memory");
out:
    cJSON_Delete(value);
    free(text);
    free(where);
    return rc;
}

/* 0: parsed; 1: --help printed; 2: bad usage (message printed). */
static int gen_parse(int argc, char **argv, gen_args *g) {
    memset(g, 0, sizeof *g);
    stk_params_default(&g->st);
    cli_lora_init(&g->lora);
    /* generate's contract (issue #2) allows --logprobs up to the vocabulary, e.g. to
     * compare whole distributions with a reference; the server keeps vLLM's 20 */
    g->st.ec.max_logprobs = -1;
    eng_params_default(&g->sp);
    g->sp.temperature = 0; /* greedy unless asked */
    eng_sampling_params *sp = &g->sp;
    eng_config *ec = &g->st.ec;
    g->files = calloc((size_t)argc + 1, sizeof *g->files);
    g->texts = calloc((size_t)argc + 1, sizeof *g->texts);
    g->tok_args = calloc((size_t)argc + 1, sizeof *g->tok_args);
    g->tok_len = calloc((size_t)argc + 1, sizeof *g->tok_len);
    if (!g->files || !g->texts || !g->tok_args || !g->tok_len) {
        cli_error("out of memory");
        return 2;
    }
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        double fv;
        int k;
#define FLOAT_FLAG(name, field)                                                              \
    if (cli_flag(&a, name)) {                                                                \
        if (!(v = cli_value(&a, name)) || cli_parse_float(v, name, &fv)) return 2;           \
        field = (float)fv;                                                                   \
        continue;                                                                            \
    }
        FLOAT_FLAG("--temperature", sp->temperature)
        FLOAT_FLAG("--top-p", sp->top_p)
        FLOAT_FLAG("--min-p", sp->min_p)
        FLOAT_FLAG("--presence-penalty", sp->presence_penalty)
        FLOAT_FLAG("--frequency-penalty", sp->frequency_penalty)
        FLOAT_FLAG("--repetition-penalty", sp->repetition_penalty)
#undef FLOAT_FLAG
        CLI_INT_FLAG("--top-k", sp->top_k, -1, 1 << 30)
        CLI_INT_FLAG("--max-tokens", sp->max_tokens, 1, 1 << 24)
        CLI_INT_FLAG("--min-tokens", sp->min_tokens, 0, 1 << 24)
        CLI_INT_FLAG("--n", sp->n, 1, 1 << 16)
        CLI_INT_FLAG("--logprobs", sp->logprobs, 0, 1 << 20)
        CLI_INT_FLAG("--prompt-logprobs", sp->prompt_logprobs, 0, 1 << 20)
        CLI_INT_FLAG("--block-size", ec->block_size, 1, 1024)
        CLI_INT_FLAG("--max-model-len", ec->max_model_len, 1, 1 << 30)
        CLI_INT_FLAG("--max-num-seqs", ec->max_num_seqs, 1, 1 << 20)
        CLI_INT_FLAG("--max-num-batched-tokens", ec->max_num_batched_tokens, 1, 1 << 24)
        CLI_INT_FLAG("--max-logprobs", ec->max_logprobs, -1, 1 << 24)
        if ((k = cli_stack_flag(&a, &g->st))) {
            if (k < 0) return 2;
        } else if ((k = cli_lora_flag(&a, &g->lora, "--lora"))) {
            if (k < 0) return 2;
        } else if (cli_flag(&a, "--lora-name")) {
            if (!(g->lora_name = cli_value(&a, "--lora-name"))) return 2;
        } else if (cli_flag(&a, "--seed")) {
            if (!(v = cli_value(&a, "--seed")) || cli_parse_int(v, "--seed", INT64_MIN / 2, INT64_MAX / 2, &iv))
                return 2;
            sp->has_seed = 1;
            sp->seed = iv;
        } else if (cli_flag(&a, "--prompt-token-ids")) {
            if (!(v = cli_value(&a, "--prompt-token-ids")) || cli_parse_ids(v, &g->tok_args[g->ntok], &g->tok_len[g->ntok]))
                return 2;
            g->ntok++;
        } else if (cli_flag(&a, "--prompt")) {
            if (!(g->texts[g->ntexts++] = cli_value(&a, "--prompt"))) return 2;
        } else if (cli_flag(&a, "--prompts-file")) {
            if (!(g->files[g->nfiles++] = cli_value(&a, "--prompts-file"))) return 2;
        } else if (cli_flag(&a, "--stop")) {
            if (!(v = cli_value(&a, "--stop"))) return 2;
            char **ns = realloc(sp->stop, sizeof *ns * (size_t)(sp->n_stop + 1));
            if (!ns) return 2;
            sp->stop = ns;
            if (!(sp->stop[sp->n_stop] = strdup(v))) return 2;
            sp->n_stop++;
        } else if (cli_flag(&a, "--stop-token-ids")) {
            int32_t *ids;
            int n;
            if (!(v = cli_value(&a, "--stop-token-ids")) || cli_parse_ids(v, &ids, &n)) return 2;
            free(sp->stop_token_ids);
            sp->stop_token_ids = ids;
            sp->n_stop_token_ids = n;
        } else if (cli_flag(&a, "--scheduling-policy")) {
            if (!(v = cli_value(&a, "--scheduling-policy"))) return 2;
            if (!strcmp(v, "fcfs")) ec->policy = ENG_FCFS;
            else if (!strcmp(v, "priority")) ec->policy = ENG_PRIORITY;
            else {
                cli_error("--scheduling-policy must be fcfs or priority, got '%s'", v);
                return 2;
            }
        } else if (cli_flag(&a, "--no-enable-prefix-caching")) {
            ec->enable_prefix_caching = 0;
        } else if (cli_flag(&a, "--enable-prefix-caching")) {
            ec->enable_prefix_caching = 1;
        } else if (cli_flag(&a, "--ignore-eos")) {
            sp->ignore_eos = 1;
        } else if ((k = so_flag_match(&a)) >= 0) {
            if (g->so == &so_flags[k]) {
                cli_error("generate: %s given twice", g->so->flag);
                return 2;
            }
            if (g->so) {
                cli_error("generate: give at most one of --json-schema, --regex, --choice, --grammar, --json-object "
                          "(got %s and %s)", g->so->flag, so_flags[k].flag);
                return 2;
            }
            g->so = &so_flags[k];
            if (g->so->arg && !(g->so_arg = cli_value(&a, g->so->flag))) return 2;
        } else if (cli_flag(&a, "--disable-any-whitespace")) {
            g->so_no_ws = 1;
        } else if (cli_flag(&a, "--json")) {
            g->json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            return 1;
        } else if (argv[a.i][0] == '-' && argv[a.i][1] == '-') {
            cli_error("generate: unknown option '%s'", argv[a.i]);
            return 2;
        } else if (!g->st.model) {
            g->st.model = argv[a.i++];
        } else {
            cli_error("generate: unexpected argument '%s'", argv[a.i]);
            return 2;
        }
    }
    if (!g->st.model || g->ntok + g->ntexts + g->nfiles == 0) {
        cli_error("generate: a MODEL_DIR and at least one --prompt-token-ids, --prompt or --prompts-file are required");
        fputs(usage, stderr);
        return 2;
    }
    if (!g->json) {
        cli_error("generate: only --json output is supported; pass --json");
        return 2;
    }
    if (g->lora.n_mods) g->lora.enable = 1; /* --lora implies --enable-lora */
    if (g->lora_name && *g->lora_name && !g->lora.n_mods) {
        cli_error("generate: --lora-name %s: no adapter of that name (load it with --lora %s=PATH)", g->lora_name,
                  g->lora_name);
        return 2;
    }
    if (cli_stack_check(&g->st) || cli_lora_check(&g->lora, &g->st.ec)) return 2;
    return gen_constraint(g);
}

static void print_result(const prompt_in *p, const off_completion *outs, const dt_text *txt, int has_tok) {
    const off_completion *c0 = &outs[0];
    printf("{\"prompt_token_ids\":[");
    for (int j = 0; j < p->n; j++) printf("%s%d", j ? "," : "", p->ids[j]);
    printf("],");
    print_completion_fields(c0, &txt[0], has_tok);
    printf(",\"num_cached_tokens\":%d", c0->n_cached);
    if (c0->plp_tok) { /* vLLM: None for the first token, then top-K plus the prompt token itself */
        printf(",\"prompt_logprobs\":[null");
        for (int q = 1; q < p->n; q++) {
            printf(",{\"%d\":%.9g", p->ids[q], c0->plp_tok[q]);
            for (int k = 0; k < c0->plp_k; k++) {
                int32_t id = c0->plp_ids[(size_t)q * c0->plp_k + k];
                if (id >= 0 && id != p->ids[q]) printf(",\"%d\":%.9g", id, c0->plp_vals[(size_t)q * c0->plp_k + k]);
            }
            printf("}");
        }
        printf("]");
    }
    if (p->sp.n > 1) {
        printf(",\"outputs\":[");
        for (int j = 0; j < p->sp.n; j++) {
            printf("%s{\"index\":%d,", j ? "," : "", j);
            print_completion_fields(&outs[j], &txt[j], has_tok);
            printf("}");
        }
        printf("]");
    }
    printf("}\n");
}

static int gen_run(gen_args *g) {
    int status = 1, np = 0, cap = 0, total = 0;
    stk_stack *st = NULL;
    prompt_in *ps = NULL;
    off_request *rq = NULL;
    off_completion *outs = NULL;
    dt_text *txt = NULL;
    int *first = NULL;
    gram_spec_cache *cache = NULL; /* the prompts files' constraints: equal ones compiled once */
    lora_registry *reg = NULL;
    eng_lora *def = NULL;          /* --lora-name's adapter */
    if (g->nfiles && gram_spec_cache_new(64, &cache)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    if (stk_open(&g->st, &st)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    const tok_tokenizer *tok = st->tok;
    if (cli_lora_open(&g->lora, &g->st, st, NULL, 0, &reg)) goto done;
    int lrc = g->lora_name && *g->lora_name ? lora_reg_get(reg, g->lora_name, &def) : 0;
    if (lrc) {
        if (lrc == VC_ENOENT)
            cli_error("generate: --lora-name %s: no adapter of that name (load it with --lora %s=PATH)", g->lora_name,
                      g->lora_name);
        else
            cli_error("generate: --lora-name %s: %s", g->lora_name, vc_errmsg());
        status = 2;
        goto done;
    }
    /* prompts in command-line order of kind: token ids, texts, files */
    for (int i = 0; i < g->ntok; i++) {
        int32_t *ids = g->tok_args[i];
        g->tok_args[i] = NULL;
        if (add_prompt(&ps, &np, &cap, ids, g->tok_len[i], &g->sp, 0, def ? eng_lora_ref(def) : NULL)) goto done;
    }
    for (int i = 0; i < g->ntexts; i++) {
        int32_t *ids;
        int n;
        if (encode(tok, g->texts[i], strlen(g->texts[i]), &ids, &n) ||
            add_prompt(&ps, &np, &cap, ids, n, &g->sp, 0, def ? eng_lora_ref(def) : NULL))
            goto done;
    }
    for (int i = 0; i < g->nfiles; i++)
        if (read_prompts_file(g->files[i], tok, &g->sp, cache, reg, def, &ps, &np, &cap)) {
            status = 2; /* the file's content is bad input, as a bad flag is */
            goto done;
        }
    rq = calloc((size_t)np, sizeof *rq);
    first = calloc((size_t)np + 1, sizeof *first);
    if (!rq || !first) goto done;
    for (int i = 0; i < np; i++) {
        rq[i] = (off_request){ps[i].ids, ps[i].n, &ps[i].sp, ps[i].priority, ps[i].lora};
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
    gen_ctx gc = {tok, ps, first, txt};
    if (off_run(st->e, rq, np, outs, tok ? on_token : NULL, &gc, NULL)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    for (int i = 0; i < np; i++) {
        for (int j = 0; j < ps[i].sp.n && tok; j++) /* release what the stream still holds */
            if (txt[first[i] + j].st) dt_finish(&txt[first[i] + j]);
        print_result(&ps[i], &outs[first[i]], &txt[first[i]], tok != NULL);
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
        eng_lora_unref(ps[i].lora);
    }
    free(ps);
    eng_lora_unref(def);
    lora_reg_free(reg);
    stk_free(st);
    gram_spec_cache_free(cache);
    return status;
}

int cli_generate(int argc, char **argv) {
    gen_args g;
    int rc = gen_parse(argc, argv, &g);
    if (rc == 0) rc = gen_run(&g);
    else if (rc == 1) rc = 0;
    gen_args_free(&g);
    return rc;
}
