/* vllmc bench structured: what structured output costs (issue #13, step 7), each figure next to a
 * reference measured in the same run.
 *
 * - compile: each constraint (a JSON schema, a regex, a GBNF grammar: built-in or the user's) and every
 *   schema of the corpus tests/data/schema_cases.json, through the public front ends (compile.h,
 *   schema.h); per schema the median of a few compiles.
 * - masks: the engine generates constrained outputs (temperature 1, the model's random or real
 *   weights, batch 1 and batch B); each output is then replayed through a matcher on this thread (one
 *   core), timing gram_matcher_mask before every token and gram_matcher_feed of it: a "cold" pass on a
 *   freshly compiled grammar object, then a "warm" pass on the same object again (a per-grammar cache
 *   of masks makes the second one cheaper). Reference: one pass of the mask over the logits, as the
 *   engine applies it (the least any mask costs per token), and the unconstrained decode step.
 * - decode: engine decode time per output token without a constraint (first), with it, and without it
 *   again on the constrained run's exact schedule (each sequence as many tokens as it had constrained:
 *   constrained sequences end when their grammar completes, so only the same schedule compares fairly).
 *   The slowdown is constrained over that matched run.
 *
 * Only the public headers of src/grammar and src/engine are used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "base/sbuf.h"
#include "cli/cli.h"
#include "engine/engine.h"
#include "grammar/spec.h"
#include "stack.h"

static const char usage[] =
    "usage: vllmc bench structured [MODEL_DIR | --random-weights CONFIG.json --tokenizer DIR]\n"
    "       [--json-schema FILE] [--regex R] [--grammar FILE]   (default: a built-in schema, regex and grammar)\n"
    "       [--schema-corpus FILE] (default tests/data/schema_cases.json when present)\n"
    "       [--input-len 32] [--output-len 48] [--batch-size 16] [--dtype D] [--device D] [--json]\n"
    "  Prints the compile time, the mask time per token (cold and warm replay, median / p99 / max) and the\n"
    "  decode slowdown against unconstrained decoding at batch 1 and --batch-size.\n";

/* A nested object with arrays, strings, enums, integers and a format: what tool calls look like. */
static const char default_schema[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"id\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":999999},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":24},"
    "\"status\":{\"enum\":[\"active\",\"suspended\",\"deleted\"]},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"address\":{\"type\":\"object\",\"properties\":{"
    "\"street\":{\"type\":\"string\",\"maxLength\":32},\"city\":{\"type\":\"string\",\"maxLength\":20},"
    "\"zip\":{\"type\":\"string\",\"pattern\":\"[0-9]{5}\"}},"
    "\"required\":[\"street\",\"city\",\"zip\"],\"additionalProperties\":false},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":12},\"maxItems\":4},"
    "\"scores\":{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":100},\"maxItems\":5},"
    "\"verified\":{\"type\":\"boolean\"}},"
    "\"required\":[\"id\",\"name\",\"status\",\"email\",\"address\",\"tags\",\"scores\",\"verified\"],"
    "\"additionalProperties\":false}";
static const char default_regex[] = "[a-z0-9._+-]{1,20}@[a-z0-9-]{1,16}\\.(com|org|net|io)";
static const char default_grammar[] = "root   ::= expr\n"
                                      "expr   ::= term ((\"+\" | \"-\") term)*\n"
                                      "term   ::= factor ((\"*\" | \"/\") factor)*\n"
                                      "factor ::= num | \"(\" expr \")\"\n"
                                      "num    ::= [0-9]{1,4}\n";

enum { SB_SCHEMA, SB_REGEX, SB_GBNF, SB_MAX_CONSTRAINTS = 3, SB_COMPILES = 5 };
static const char *const kind_name[] = {"json_schema", "regex", "grammar"};

typedef struct {
    int n;
    double med, p99, max, mean; /* microseconds */
} sb_stats;

typedef struct {
    double step_us;       /* decode wall time per output token (steps after every sequence had its first) */
    double matched_us;    /* the same without the constraint, on the constrained run's schedule */
    double slowdown;      /* step_us / matched_us - 1; NAN when no decode step ran */
    long long tokens;     /* output tokens of the constrained run */
    int n_stop, n_length, n_abort;
} sb_decode;

typedef struct {
    int kind;
    const char *source;   /* "built-in" or the file / the regex */
    cJSON *value;         /* the constraint as a request carries it: the parsed schema, or the text */
    double compile_ms;    /* median of SB_COMPILES */
    sb_stats mask[2], feed[2]; /* [0] cold, [1] warm */
    double allowed_mean;  /* tokens a mask allowed, on average */
    int masks_per_pass;
    sb_decode dec[2];     /* [0] batch 1, [1] batch B */
    char error[256];      /* the first sequence the engine ended with an error */
} sb_constraint;

typedef struct {
    stk_params st;
    const char *random_cfg, *corpus;
    const char *schema_file, *regex, *grammar_file;
    long long in_len, out_len, batch;
    int json;
} sb_args;

/* The tokenizer's token bytes as the grammar vocabulary: a view of the stack's (stk_grammar_vocab). */
typedef struct {
    const gram_vocab *v;
    unsigned char *const *tok; /* [n] */
    const size_t *len;         /* [n] */
    int n;
} sb_vocab;

/* One engine run's per-sequence outputs and decode timing. */
typedef struct {
    int batch;            /* sequences (out and n_out are allocated for this many) */
    int32_t **out;        /* [batch][max_tokens] */
    int *n_out;           /* [batch] */
    double decode_s;
    long long decode_tokens;
    int n_stop, n_length, n_abort;
    char error[256];
} sb_run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v. p99 by nearest rank. */
static sb_stats stats_of(double *v, int n) {
    sb_stats s = {n, 0, 0, 0, 0};
    if (n <= 0) return s;
    for (int i = 0; i < n; i++) s.mean += v[i] / n;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    s.med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    int k = (int)ceil(0.99 * n) - 1;
    s.p99 = v[k < 0 ? 0 : k];
    s.max = v[n - 1];
    return s;
}

static int parse(int argc, char **argv, sb_args *b) {
    const char *dir = NULL;
    cli_args a = {argc, 0, argv, NULL};
    while (a.i < argc) {
        const char *v;
        long long iv;
        int k;
        CLI_INT_FLAG("--input-len", b->in_len, 1, 1 << 16)
        CLI_INT_FLAG("--output-len", b->out_len, 1, 1 << 16)
        CLI_INT_FLAG("--batch-size", b->batch, 1, 1024)
        CLI_STR_FLAG("--random-weights", b->random_cfg)
        CLI_STR_FLAG("--tokenizer", b->st.tokenizer_dir)
        CLI_STR_FLAG("--schema-corpus", b->corpus)
        CLI_STR_FLAG("--json-schema", b->schema_file)
        CLI_STR_FLAG("--regex", b->regex)
        CLI_STR_FLAG("--grammar", b->grammar_file)
        if ((k = cli_stack_flag(&a, &b->st))) {
            if (k < 0) return 2;
        } else if (cli_flag(&a, "--json")) {
            b->json = 1;
        } else if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(usage, stdout);
            return 1;
        } else if (argv[a.i][0] == '-') {
            cli_error("bench structured: unknown option '%s'", argv[a.i]);
            return 2;
        } else if (!dir) {
            dir = argv[a.i++];
        } else {
            cli_error("bench structured: unexpected argument '%s'", argv[a.i]);
            return 2;
        }
    }
    if (!dir == !b->random_cfg) {
        cli_error("bench structured: give either MODEL_DIR or --random-weights CONFIG.json (with --tokenizer DIR)");
        fputs(usage, stderr);
        return 2;
    }
    if (b->random_cfg && !b->st.tokenizer_dir) {
        cli_error("bench structured: --random-weights needs --tokenizer DIR (a folder with tokenizer.json)");
        return 2;
    }
    b->st.model = dir ? dir : b->random_cfg;
    b->st.load_dummy = b->random_cfg != NULL;
    return cli_stack_check(&b->st) ? 2 : 0;
}

/* ---- constraints ---- */

static int add_constraint(sb_constraint *c, int kind, const char *source, const char *text, size_t len) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->source = source;
    c->dec[0].slowdown = c->dec[1].slowdown = NAN;
    if (kind != SB_SCHEMA) {
        char *z = strndup(text, len);
        c->value = z ? cJSON_CreateString(z) : NULL;
        free(z);
        return c->value ? VC_OK : vc_errf(VC_ENOMEM, "out of memory");
    }
    js_error je;
    if (!(c->value = js_parse(text, len, &je))) return vc_errf(VC_EINVAL, "%s: %s", source, je.message);
    return VC_OK;
}

static int add_file(sb_constraint *c, int kind, const char *path) {
    char *text = NULL;
    size_t len;
    memset(c, 0, sizeof *c);
    int rc = vc_read_file(path, (size_t)16 << 20, &text, &len);
    if (!rc) rc = add_constraint(c, kind, path, text, len);
    free(text);
    return rc;
}

/* The user's constraints, or the built-in set when none is given, into c[0 .. *n) (counted as they
 * start, so that free_constraints(c, *n) also cleans up after a failure). */
static int load_constraints(const sb_args *b, sb_constraint *c, int *n) {
    int rc = VC_OK;
    *n = 0;
    if (b->schema_file) rc = add_file(&c[(*n)++], SB_SCHEMA, b->schema_file);
    if (!rc && b->regex) rc = add_constraint(&c[(*n)++], SB_REGEX, b->regex, b->regex, strlen(b->regex));
    if (!rc && b->grammar_file) rc = add_file(&c[(*n)++], SB_GBNF, b->grammar_file);
    if (!rc && *n == 0) {
        rc = add_constraint(&c[(*n)++], SB_SCHEMA, "built-in", default_schema, strlen(default_schema));
        if (!rc) rc = add_constraint(&c[(*n)++], SB_REGEX, "built-in", default_regex, strlen(default_regex));
        if (!rc) rc = add_constraint(&c[(*n)++], SB_GBNF, "built-in", default_grammar, strlen(default_grammar));
    }
    return rc;
}

static void free_constraints(sb_constraint *c, int n) {
    for (int i = 0; i < n; i++) {
        cJSON_Delete(c[i].value);
    }
}

/* As the server compiles a request's constraint (grammar/spec.c: its limits, whitespace allowed between
 * JSON tokens), without its cache. */
static int compile_value(int kind, const cJSON *value, const char *field, gram_grammar **g) {
    static const gram_spec_kind spec_kind[] = {GRAM_SPEC_JSON, GRAM_SPEC_REGEX, GRAM_SPEC_GRAMMAR};
    gram_spec s;
    gram_spec_error e;
    gram_spec_init(&s);
    if (gram_spec_set(&s, spec_kind[kind], value, field, &e) || gram_spec_compile(NULL, &s, g, &e))
        return vc_errf(e.code, "%s", e.message);
    return VC_OK;
}

static int compile(const sb_constraint *c, gram_grammar **g, double *ms) {
    char field[256]; /* what an error names: "regex (SOURCE)" */
    snprintf(field, sizeof field, "%s (%s)", kind_name[c->kind], c->source);
    double t0 = now_s();
    int rc = compile_value(c->kind, c->value, field, g);
    if (ms) *ms = (now_s() - t0) * 1e3;
    return rc;
}

static int compile_median(sb_constraint *c) {
    double ms[SB_COMPILES];
    for (int i = 0; i < SB_COMPILES; i++) {
        gram_grammar *g = NULL;
        int rc = compile(c, &g, &ms[i]);
        gram_free(g);
        if (rc) return rc;
    }
    c->compile_ms = stats_of(ms, SB_COMPILES).med;
    return VC_OK;
}

/* The schema corpus: every distinct schema compiled 3 times (median kept); refused ones counted. */
typedef struct {
    int n_cases, n_schemas, n_refused;
    sb_stats ms; /* milliseconds, over the compiled schemas */
} sb_corpus;

static int bench_corpus(const char *path, sb_corpus *out) {
    char *text = NULL;
    cJSON *cases = NULL;
    char **seen = NULL;
    double *ms = NULL;
    size_t len;
    int rc = vc_read_file(path, (size_t)64 << 20, &text, &len);
    memset(out, 0, sizeof *out);
    if (rc) return rc;
    js_error je;
    if (!(cases = js_parse(text, len, &je))) {
        rc = vc_errf(VC_EFORMAT, "%s: %s", path, je.message);
        goto done;
    }
    int n = cJSON_GetArraySize(cases);
    seen = calloc((size_t)(n > 0 ? n : 1), sizeof *seen);
    ms = calloc((size_t)(n > 0 ? n : 1), sizeof *ms);
    if (!seen || !ms) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    int n_ok = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cases) {
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(it, "schema");
        if (!schema) continue;
        out->n_cases++;
        char *key = cJSON_PrintUnformatted(schema);
        if (!key) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto done;
        }
        int dup = 0;
        for (int i = 0; i < out->n_schemas && !dup; i++) dup = !strcmp(seen[i], key);
        if (dup) {
            free(key);
            continue;
        }
        seen[out->n_schemas++] = key;
        double t[3];
        int bad = 0;
        for (int r = 0; r < 3 && !bad; r++) {
            gram_grammar *g = NULL;
            double t0 = now_s();
            bad = compile_value(SB_SCHEMA, schema, "schema corpus", &g) != VC_OK;
            t[r] = (now_s() - t0) * 1e3;
            gram_free(g);
        }
        if (bad) out->n_refused++;
        else ms[n_ok++] = stats_of(t, 3).med;
    }
    out->ms = stats_of(ms, n_ok);
done:
    if (seen)
        for (int i = 0; i < out->n_schemas; i++) free(seen[i]);
    free(seen);
    free(ms);
    cJSON_Delete(cases);
    free(text);
    return rc;
}

/* ---- engine runs ---- */

static void run_free(sb_run *r) {
    if (r->out)
        for (int i = 0; i < r->batch; i++) free(r->out[i]);
    free(r->out);
    free(r->n_out);
    memset(r, 0, sizeof *r);
}

/* `batch` sequences (seeds 1000 + i) of the prompts through e, each at most max_tokens[i] (or
 * sp->max_tokens); every step timed. Decode time: the steps after every sequence had its first token. */
static int run_engine(eng_engine *e, const int32_t *prompts, int in_len, int batch, const eng_sampling_params *sp,
                      const int *max_tokens, sb_run *r) {
    memset(r, 0, sizeof *r);
    r->out = calloc((size_t)batch, sizeof *r->out);
    r->n_out = calloc((size_t)batch, sizeof *r->n_out);
    if (!r->out || !r->n_out) return vc_errf(VC_ENOMEM, "out of memory");
    r->batch = batch;
    int rc = VC_OK, started = 0;
    for (int i = 0; i < batch && !rc; i++) {
        eng_sampling_params p = *sp; /* eng_add copies it (the grammar gets its own reference) */
        p.has_seed = 1;
        p.seed = 1000 + i;
        if (max_tokens) p.max_tokens = max_tokens[i];
        char id[24];
        snprintf(id, sizeof id, "%d", i);
        if (!(r->out[i] = malloc(sizeof(int32_t) * (size_t)p.max_tokens))) rc = vc_errf(VC_ENOMEM, "out of memory");
        if (!rc) rc = eng_add(e, id, prompts + (size_t)i * (size_t)in_len, in_len, &p, 0);
    }
    while (!rc && eng_has_unfinished(e)) {
        const eng_output *o;
        int no, was_started = started;
        double t0 = now_s();
        if ((rc = eng_step(e, &o, &no))) break;
        double dt = now_s() - t0;
        long long toks = 0;
        for (int k = 0; k < no; k++) {
            int i = atoi(o[k].request_id);
            if (i < 0 || i >= batch) continue;
            int cap = max_tokens ? max_tokens[i] : sp->max_tokens;
            if (o[k].has_token && r->n_out[i] < cap) {
                if (r->n_out[i] == 0) started++;
                r->out[i][r->n_out[i]++] = o[k].token;
                toks++;
            }
            if (o[k].finish == ENG_FINISH_STOP) r->n_stop++;
            else if (o[k].finish == ENG_FINISH_LENGTH) r->n_length++;
            else if (o[k].finish == ENG_FINISH_ABORT) {
                if (!r->n_abort++ && o[k].error) snprintf(r->error, sizeof r->error, "%s", o[k].error);
            }
        }
        if (was_started == batch) {
            r->decode_s += dt;
            r->decode_tokens += toks;
        }
    }
    return rc;
}

static double us_per_token(const sb_run *r) {
    return r->decode_tokens > 0 ? r->decode_s / (double)r->decode_tokens * 1e6 : NAN;
}

/* ---- mask replay ---- */

/* Replay every output through a fresh matcher on g: before each token the mask (when anything may
 * follow: else the engine allows only EOS and walks nothing), then the token's bytes (EOS and other
 * tokens without text feed nothing). Times in microseconds appended to mask_us / feed_us. */
static int replay(const gram_grammar *g, const sb_vocab *v, sb_run *const *runs, const int *batches, int n_runs,
                  uint32_t *mask, double *mask_us, int *n_mask, double *feed_us, int *n_feed, double *allowed) {
    gram_matcher *m = NULL;
    int rc = VC_OK;
    *n_mask = *n_feed = 0;
    *allowed = 0;
    for (int r = 0; r < n_runs && !rc; r++)
        for (int s = 0; s < batches[r] && !rc; s++) {
            gram_matcher_free(m);
            m = NULL;
            if ((rc = gram_matcher_new(g, &m))) break;
            for (int i = 0; i < runs[r]->n_out[s] && !rc; i++) {
                int32_t t = runs[r]->out[s][i];
                if (gram_matcher_can_continue(m)) {
                    double t0 = now_s();
                    int c = gram_matcher_mask(m, v->v, mask);
                    mask_us[(*n_mask)++] = (now_s() - t0) * 1e6;
                    if (c < 0) rc = c;
                    else *allowed += c;
                }
                if (rc || t < 0 || t >= v->n || !v->len[t]) continue;
                double t0 = now_s();
                int f = gram_matcher_feed(m, v->tok[t], v->len[t]);
                feed_us[(*n_feed)++] = (now_s() - t0) * 1e6;
                if (f < 0) rc = f;
                else if (f == 1) rc = vc_errf(VC_ERR, "replay: token %d at %d of an engine output does not continue "
                                                      "the grammar (a matcher that disagrees with itself)", (int)t, i);
            }
        }
    gram_matcher_free(m);
    if (*n_mask) *allowed /= *n_mask;
    return rc;
}

/* The reference for a mask: applying one to a row of logits (every refused token to -inf) a word of
 * the bitmap at a time, visiting only the refused bits, as the engine does: one pass over the bitmap
 * and the refused part of the row, the least a per-token mask costs the sampler. */
static double apply_us(const uint32_t *mask, float *logits, int V) {
    double t[51];
    for (int r = 0; r < 51; r++) {
        for (int i = 0; i < V; i++) logits[i] = (float)(i & 7);
        double t0 = now_s();
        for (int w = 0; w * 32 < V; w++) {
            uint32_t refused = ~mask[w];
            if ((w + 1) * 32 > V) refused &= (1u << (V - w * 32)) - 1;
            while (refused) {
                logits[w * 32 + __builtin_ctz(refused)] = -INFINITY;
                refused &= refused - 1;
            }
        }
        t[r] = (now_s() - t0) * 1e6;
    }
    volatile float sink = logits[V - 1];
    (void)sink;
    return stats_of(t, 51).med;
}

/* ---- the benchmark ---- */

typedef struct {
    stk_stack *st;
    eng_engine *e;
    sb_vocab voc;
    int32_t *prompts;   /* [batch * in_len] */
    uint32_t *mask;     /* [(V + 31) / 32] */
    float *logits;      /* [V] */
    double base_us[2];  /* unconstrained decode per token, full output length: batch 1, batch B */
    double base_tps[2];
    double apply_us;
} sb_bench;

/* Constrained runs at batch 1 and B, their matched unconstrained runs, then the replays. */
static int bench_one(sb_args *b, sb_bench *x, sb_constraint *c) {
    int batches[2] = {1, (int)b->batch}, rc;
    sb_run run[2] = {{0}}, matched = {0};
    gram_grammar *g = NULL, *fresh = NULL;
    double *mask_us = NULL, *feed_us = NULL;
    if ((rc = compile_median(c)) || (rc = compile(c, &g, NULL))) goto done;
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 1;
    sp.max_tokens = (int)b->out_len;
    for (int k = 0; k < 2; k++) {
        sp.grammar = g;
        sp.ignore_eos = 0;
        if ((rc = run_engine(x->e, x->prompts, (int)b->in_len, batches[k], &sp, NULL, &run[k]))) goto done;
        /* without the constraint on the same schedule: each sequence as long as it was (at least 1) */
        int *len = malloc(sizeof(int) * (size_t)batches[k]);
        if (!len) {
            rc = vc_errf(VC_ENOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < batches[k]; i++) len[i] = run[k].n_out[i] > 0 ? run[k].n_out[i] : 1;
        sp.grammar = NULL;
        sp.ignore_eos = 1;
        rc = run_engine(x->e, x->prompts, (int)b->in_len, batches[k], &sp, len, &matched);
        free(len);
        if (rc) goto done;
        sb_decode *d = &c->dec[k];
        d->step_us = us_per_token(&run[k]);
        d->matched_us = us_per_token(&matched);
        d->slowdown = d->step_us / d->matched_us - 1;
        for (int i = 0; i < batches[k]; i++) d->tokens += run[k].n_out[i];
        d->n_stop = run[k].n_stop, d->n_length = run[k].n_length, d->n_abort = run[k].n_abort;
        if (run[k].n_abort && !c->error[0]) snprintf(c->error, sizeof c->error, "%s", run[k].error);
        run_free(&matched);
        if (!b->json)
            fprintf(stderr, "  %s batch %d: %lld tokens, %.0f us/token constrained, %.0f unconstrained (same "
                            "schedule)\n", kind_name[c->kind], batches[k], d->tokens, d->step_us, d->matched_us);
    }
    /* replay: cold on a fresh grammar object, then warm on the same object */
    size_t total = (size_t)(c->dec[0].tokens + c->dec[1].tokens) + 1;
    mask_us = malloc(sizeof *mask_us * total);
    feed_us = malloc(sizeof *feed_us * total);
    if (!mask_us || !feed_us) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = compile(c, &fresh, NULL))) goto done;
    sb_run *rp[2] = {&run[0], &run[1]};
    for (int pass = 0; pass < 2; pass++) {
        int nm, nf;
        if ((rc = replay(fresh, &x->voc, rp, batches, 2, x->mask, mask_us, &nm, feed_us, &nf, &c->allowed_mean)))
            goto done;
        c->masks_per_pass = nm;
        c->mask[pass] = stats_of(mask_us, nm);
        c->feed[pass] = stats_of(feed_us, nf);
        if (!b->json)
            fprintf(stderr, "  %s replay %s: %d masks, median %.1f us, p99 %.1f us\n", kind_name[c->kind],
                    pass ? "warm" : "cold", nm, c->mask[pass].med, c->mask[pass].p99);
    }
done:
    run_free(&run[0]);
    run_free(&run[1]);
    run_free(&matched);
    gram_free(g);
    gram_free(fresh);
    free(mask_us);
    free(feed_us);
    return rc;
}

/* Unconstrained decode at batch 1 and B, full output length: the reference printed first. */
static int bench_baseline(sb_args *b, sb_bench *x) {
    int batches[2] = {1, (int)b->batch};
    eng_sampling_params sp;
    eng_params_default(&sp);
    sp.temperature = 1;
    sp.max_tokens = (int)b->out_len;
    sp.ignore_eos = 1;
    for (int k = 0; k < 2; k++) {
        sb_run r;
        int rc = run_engine(x->e, x->prompts, (int)b->in_len, batches[k], &sp, NULL, &r);
        x->base_us[k] = us_per_token(&r);
        x->base_tps[k] = 1e6 / x->base_us[k];
        run_free(&r);
        if (rc) return rc;
    }
    return VC_OK;
}

static void print_stats(sbuf *s, const char *name, const sb_stats *st) {
    sb_printf(s, "\"%s\":{\"count\":%d,\"median_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,\"mean_us\":%.3f}", name,
              st->n, st->med, st->p99, st->max, st->mean);
}

static void print_num(sbuf *s, const char *name, double v) {
    if (isfinite(v)) sb_printf(s, "\"%s\":%.4f", name, v);
    else sb_printf(s, "\"%s\":null", name);
}

static void print_json(const sb_args *b, const sb_bench *x, const sb_constraint *c, int n, const sb_corpus *co,
                       const char *corpus) {
    sbuf s = {0};
    const model_config *mc = &x->st->m->cfg;
    sb_str(&s, "{\"model\":");
    sb_jstrz(&s, mc->arch);
    sb_printf(&s, ",\"vocab_size\":%d,\"input_len\":%lld,\"output_len\":%lld,\"batch_size\":%lld,", mc->vocab_size,
              b->in_len, b->out_len, b->batch);
    print_num(&s, "mask_apply_us", x->apply_us);
    sb_raw(&s, ",", 1);
    print_num(&s, "unconstrained_us_per_token_batch1", x->base_us[0]);
    sb_raw(&s, ",", 1);
    print_num(&s, "unconstrained_us_per_token_batchN", x->base_us[1]);
    sb_str(&s, ",\"constraints\":[");
    for (int i = 0; i < n; i++) {
        sb_printf(&s, "%s{\"kind\":\"%s\",\"source\":", i ? "," : "", kind_name[c[i].kind]);
        sb_jstrz(&s, c[i].source);
        sb_printf(&s, ",\"compile_ms\":%.4f,\"masks_per_pass\":%d,\"allowed_tokens_mean\":%.1f,", c[i].compile_ms,
                  c[i].masks_per_pass, c[i].allowed_mean);
        print_stats(&s, "mask_cold", &c[i].mask[0]);
        sb_raw(&s, ",", 1);
        print_stats(&s, "mask_warm", &c[i].mask[1]);
        sb_raw(&s, ",", 1);
        print_stats(&s, "feed_cold", &c[i].feed[0]);
        sb_raw(&s, ",", 1);
        print_stats(&s, "feed_warm", &c[i].feed[1]);
        for (int k = 0; k < 2; k++) {
            const sb_decode *d = &c[i].dec[k];
            sb_printf(&s, ",\"decode_batch%s\":{\"tokens\":%lld,\"stop\":%d,\"length\":%d,\"abort\":%d,", k ? "N" : "1",
                      d->tokens, d->n_stop, d->n_length, d->n_abort);
            print_num(&s, "constrained_us_per_token", d->step_us);
            sb_raw(&s, ",", 1);
            print_num(&s, "unconstrained_us_per_token", d->matched_us);
            sb_raw(&s, ",", 1);
            print_num(&s, "slowdown", d->slowdown);
            sb_raw(&s, "}", 1);
        }
        sb_str(&s, ",\"error\":");
        sb_jstrz(&s, c[i].error[0] ? c[i].error : NULL);
        sb_raw(&s, "}", 1);
    }
    sb_raw(&s, "]", 1);
    if (corpus) {
        sb_str(&s, ",\"corpus\":{\"file\":");
        sb_jstrz(&s, corpus);
        sb_printf(&s, ",\"cases\":%d,\"schemas\":%d,\"refused\":%d,\"compile_median_ms\":%.4f,\"compile_max_ms\":%.4f}",
                  co->n_cases, co->n_schemas, co->n_refused, co->ms.med, co->ms.max);
    }
    sb_raw(&s, "}", 1);
    size_t len;
    char *out = sb_take(&s, &len);
    if (out) puts(out);
    free(out);
}

static void print_text(const sb_args *b, const sb_bench *x, const sb_constraint *c, int n, const sb_corpus *co,
                       const char *corpus) {
    const model_config *mc = &x->st->m->cfg;
    printf("model: %s, vocab %d; prompts of %lld tokens, at most %lld output tokens, temperature 1\n", mc->arch,
           mc->vocab_size, b->in_len, b->out_len);
    printf("reference: unconstrained decode %.0f us/token at batch 1 (%.1f tokens/s), %.0f us/token at batch %lld "
           "(%.1f tokens/s); applying one mask to the logits %.1f us\n",
           x->base_us[0], x->base_tps[0], x->base_us[1], b->batch, x->base_tps[1], x->apply_us);
    for (int i = 0; i < n; i++) {
        const sb_constraint *k = &c[i];
        printf("%s (%s): compile %.3f ms\n", kind_name[k->kind], k->source, k->compile_ms);
        for (int p = 0; p < 2; p++)
            printf("  mask %s: %d masks, median %.1f us, p99 %.1f us, max %.1f us, mean %.1f us (%.0f tokens allowed on "
                   "average); feed median %.2f us, p99 %.2f us\n",
                   p ? "warm (same grammar again)" : "cold (fresh grammar)", k->mask[p].n, k->mask[p].med,
                   k->mask[p].p99, k->mask[p].max, k->mask[p].mean, k->allowed_mean, k->feed[p].med, k->feed[p].p99);
        for (int d = 0; d < 2; d++) {
            const sb_decode *e = &k->dec[d];
            printf("  decode batch %d: %.0f us/token constrained vs %.0f unconstrained on the same schedule: slowdown "
                   "%.1f%% (%lld tokens; %d stop, %d length, %d ended by the engine)\n",
                   d ? (int)b->batch : 1, e->step_us, e->matched_us, 100 * e->slowdown, e->tokens, e->n_stop,
                   e->n_length, e->n_abort);
        }
        if (k->error[0]) printf("  engine error: %s\n", k->error);
    }
    if (corpus)
        printf("schema corpus %s: %d schemas (%d cases), %d refused; compile median %.3f ms, max %.3f ms\n", corpus,
               co->n_schemas, co->n_cases, co->n_refused, co->ms.med, co->ms.max);
}

static int run(sb_args *b) {
    sb_bench x = {0};
    sb_constraint c[SB_MAX_CONSTRAINTS];
    sb_corpus co = {0};
    int n = 0, status = 1;
    if (load_constraints(b, c, &n)) goto fail;
    for (int i = 0; i < n; i++) { /* a bad constraint fails before the model loads */
        gram_grammar *g = NULL;
        int rc = compile(&c[i], &g, NULL);
        gram_free(g);
        if (rc) goto fail;
    }
    const char *corpus = b->corpus;
    if (!corpus && vc_file_exists("tests/data/schema_cases.json")) corpus = "tests/data/schema_cases.json";
    if (corpus && bench_corpus(corpus, &co)) goto fail;
    if (stk_open(&b->st, &x.st)) goto fail;
    if (!x.st->tok) {
        vc_errf(VC_EINVAL, "bench structured: the model folder has no tokenizer.json (give --tokenizer DIR)");
        goto fail;
    }
    if (stk_grammar_vocab(x.st)) goto fail;
    int V = x.st->m->cfg.vocab_size;
    x.voc = (sb_vocab){x.st->gvocab, x.st->gtok, x.st->gtok_len, V};
    eng_config ec = b->st.ec;
    ec.max_num_seqs = (int)b->batch;
    ec.max_model_len = (int)(b->in_len + b->out_len);
    ec.max_num_batched_tokens = (int)(b->in_len * b->batch) > 2048 ? (int)(b->in_len * b->batch) : 2048;
    ec.enable_prefix_caching = 0;
    ec.quiet = 1;
    ec.grammar_vocab = x.voc.v;
    ec.grammar_tok = (const unsigned char *const *)x.voc.tok;
    ec.grammar_tok_len = x.voc.len;
    if (ec.max_model_len > x.st->m->cfg.max_position_embeddings) {
        vc_errf(VC_EINVAL, "--input-len + --output-len exceeds the model's context length %d",
                x.st->m->cfg.max_position_embeddings);
        goto fail;
    }
    if (eng_create(x.st->m, &ec, &x.e)) goto fail;
    x.prompts = malloc(sizeof *x.prompts * (size_t)(b->batch * b->in_len));
    x.mask = calloc(((size_t)V + 31) / 32, sizeof *x.mask);
    x.logits = malloc(sizeof *x.logits * (size_t)V);
    if (!x.prompts || !x.mask || !x.logits) {
        vc_errf(VC_ENOMEM, "out of memory");
        goto fail;
    }
    uint64_t r = 88172645463325252ull; /* random prompt tokens, as bench latency */
    for (long long i = 0; i < b->batch * b->in_len; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        x.prompts[i] = (int32_t)(r % (uint64_t)V);
    }
    if (!b->json) fprintf(stderr, "unconstrained decode at batch 1 and %lld...\n", b->batch);
    if (bench_baseline(b, &x)) goto fail;
    for (int i = 0; i < n; i++) {
        if (!b->json) fprintf(stderr, "%s (%s)...\n", kind_name[c[i].kind], c[i].source);
        if (bench_one(b, &x, &c[i])) goto fail;
    }
    /* the reference mask: 3/4 of the vocabulary allowed (whole words and half words), as in a string */
    for (int w = 0; w < (V + 31) / 32; w++) x.mask[w] = w & 1 ? 0xffffffffu : 0x0f0f0f0fu;
    x.apply_us = apply_us(x.mask, x.logits, V);
    if (b->json) print_json(b, &x, c, n, &co, corpus);
    else print_text(b, &x, c, n, &co, corpus);
    status = 0;
    goto done;
fail:
    cli_error("%s", vc_errmsg());
done:
    eng_free(x.e);
    free(x.prompts);
    free(x.mask);
    free(x.logits);
    stk_free(x.st);
    free_constraints(c, n);
    return status;
}

int cli_bench_structured(int argc, char **argv) {
    sb_args b = {.in_len = 32, .out_len = 48, .batch = 16};
    stk_params_default(&b.st);
    b.st.engine = 0; /* its own engine (its batch and lengths), with the stack's grammar vocabulary */
    b.st.quiet = 1;
    int rc = parse(argc, argv, &b);
    if (rc) return rc == 1 ? 0 : rc;
    return run(&b);
}
