/* test_faults: allocation number N fails, swept over N, for every operation below HTTP (SQLite's
 * fault injection; see src/base/fault.h). Built and run by `make test-faults` only.
 *
 * For each operation and each mode (one-shot: only allocation N fails; persistent: N and every
 * later one fail), for N = 1, 2, ...: arm N, run it, disarm. It must fail with an error and a
 * message (srv_error: a 4xx/5xx status and a message), or succeed with the clean run's result
 * (a failure absorbed by a fallback must not change the result); the first N that is never
 * reached ends the sweep. After each failure:
 *   - an operation with state that outlives it (the engine) is resumed unarmed: a failed
 *     eng_step must have changed nothing, so stepping on gives exactly the clean run's tokens and
 *     logprobs; a failure elsewhere (text, stop strings) aborts the request and drains it;
 *   - the operation runs once more unarmed and must give the clean run's result (nothing left
 *     poisoned: the tokenizer's cached workspace, a compiled template, the engine, its KV cache);
 * ASan/UBSan stop the run at a crash; LeakSanitizer reports leaks at exit (-leak: a leak check
 * after each operation's sweep as well, to name the operation).
 *
 * Options: -v (print every distinct error message), -only NAME (operations whose name contains
 * NAME), -n N (only that N, one-shot; with VLLMC_FAULT_TRACE=1 the failing allocation's stack),
 * -leak. A message about an allocation failure that does not say so ("out of memory",
 * "allocate", ...) and an srv_error below 500 for one are printed as NOTE lines (misleading, not
 * wrong: the test does not fail on them). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fault.h"
#include "engine/detok.h"
#include "engine/engine.h"
#include "engine/offline.h"
#include "server/request.h"
#include "stack.h"
#include "template/template.h"
#include "test.h"
#include "tokenizer/tokenizer.h"
#include "vllmc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
int __lsan_do_recoverable_leak_check(void);
#endif

static int verbose, leak_each;
static const char *only;
static long only_n; /* -n N: that N only, one-shot (with VLLMC_FAULT_TRACE=1: where it fails) */
static char model_dir[256];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- results: fixed buffers, so the harness itself allocates nothing ---- */

typedef struct {
    char s[16384];
    size_t n;
    int err_status;      /* srv_error status of a failed request operation, else 0 */
    char err_msg[1024];  /* its message */
} res;

static void res_reset(res *r) {
    r->n = 0;
    r->s[0] = 0;
    r->err_status = 0;
    r->err_msg[0] = 0;
}

__attribute__((format(printf, 2, 3))) static void res_add(res *r, const char *fmt, ...) {
    if (r->n >= sizeof r->s - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->s + r->n, sizeof r->s - r->n, fmt, ap);
    va_end(ap);
    if (k > 0) r->n = r->n + (size_t)k < sizeof r->s ? r->n + (size_t)k : sizeof r->s - 1;
}

static void res_bytes(res *r, const char *p, size_t n) {
    res_add(r, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') res_add(r, "%c", c);
        else res_add(r, "\\x%02x", c);
    }
    res_add(r, "\"");
}

/* ---- the sweep ---- */

typedef struct {
    const char *name;
    /* 0 or a negative code; a request operation also fills out->err_status/err_msg */
    int (*run)(void *ctx, res *out);
    /* (optional) after a failed run, unarmed: finish or withdraw what the run left behind.
     * Returns 1 when out then holds the whole operation's result (compared with the clean run),
     * 0 when the work was only withdrawn, negative on failure. */
    int (*resume)(void *ctx, res *out);
    /* (optional) unarmed, after every attempt: a consistency check (0 ok). */
    int (*check)(void *ctx);
    void *ctx;
    /* (optional) unarmed, before each run (its allocations are not counted) and after it (and its
     * resume and check): e.g. a fresh engine per attempt, so that every attempt makes the first
     * step's allocations */
    int (*setup)(void *ctx);
    void (*teardown)(void *ctx);
} op;

static int op_begin(const op *o) {
    int rc = o->setup ? o->setup(o->ctx) : 0;
    CHECK_MSG(rc == 0, "%s: setup fails: %s", o->name, vc_errmsg());
    return rc;
}
static void op_end(const op *o) {
    if (o->teardown) o->teardown(o->ctx);
}

enum { MAX_MSGS = 24 };

static int says_memory(const char *m) {
    static const char *const words[] = {"memory", "alloc", "ENOMEM", "Cannot allocate"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strstr(m, words[i])) return 1;
    return 0;
}

/* Messages compare with their digits dropped ("line 3 column 7" is one kind of message). */
static void squash(char *dst, size_t size, const char *src) {
    size_t n = 0;
    for (; *src && n + 1 < size; src++)
        if (*src < '0' || *src > '9') dst[n++] = *src;
    dst[n] = 0;
}

static int same(const res *a, const res *b) { return a->n == b->n && memcmp(a->s, b->s, a->n) == 0; }

static void show_diff(const char *what, const res *want, const res *got) {
    fprintf(stderr, "    %s:\n      want %.600s\n      got  %.600s\n", what, want->s, got->s);
}

static void sweep_mode(const op *o, int persistent) {
    static res clean, got, again;
    static char msgs[MAX_MSGS][256];
    int n_msgs = 0, wrong = 0;
    double t0 = now_s();
    res_reset(&clean);
    if (op_begin(o)) return;
    vc_fault_arm(0);
    int rc = o->run(o->ctx, &clean);
    vc_fault_disarm();
    long total = vc_fault_count();
    if (!rc && o->check) CHECK_MSG(o->check(o->ctx) == 0, "%s: after the clean run: %s", o->name, vc_errmsg());
    op_end(o);
    if (rc) {
        CHECK_MSG(0, "%s: the clean run fails: %s", o->name, clean.err_msg[0] ? clean.err_msg : vc_errmsg());
        return;
    }
    long failed = 0, survived = 0, resumed = 0, n;
    for (n = only_n > 0 ? only_n : 1;; n++) {
        res_reset(&got);
        if (op_begin(o)) break;
        vc_errf(VC_OK, "%s", "");
        if (persistent) vc_fault_arm_persistent(n);
        else vc_fault_arm(n);
        rc = o->run(o->ctx, &got);
        vc_fault_disarm();
        int hit = vc_fault_hit();
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", got.err_msg[0] ? got.err_msg : vc_errmsg());
        if (!hit) {
            CHECK_MSG(rc == 0, "%s: N=%ld not reached, yet it fails: %s", o->name, n, msg);
            if (rc == 0 && !same(&clean, &got)) {
                CHECK_MSG(0, "%s: N=%ld not reached, yet the result differs", o->name, n);
                show_diff("result", &clean, &got);
            }
            if (o->check) CHECK_MSG(o->check(o->ctx) == 0, "%s: N=%ld: after the run: %s", o->name, n, vc_errmsg());
            op_end(o);
            break;
        }
        if (rc == 0) {
            /* the failure was absorbed (a fallback, a retry): the result must still be right */
            survived++;
            if (!same(&clean, &got) && verbose) printf("    [%s N=%ld] absorbed, another result\n", o->name, n);
            if (!same(&clean, &got) && wrong++ < 2) {
                CHECK_MSG(0, "%s (%s): N=%ld: an allocation failed, the run succeeded, with another result", o->name,
                          persistent ? "persistent" : "one-shot", n);
                show_diff("result", &clean, &got);
            }
        } else {
            failed++;
            CHECK_MSG(msg[0] != 0, "%s: N=%ld: failed (rc %d) without a message", o->name, n, rc);
            if (got.err_status)
                CHECK_MSG(got.err_status >= 400 && got.err_status < 600, "%s: N=%ld: status %d", o->name, n,
                          got.err_status);
            char sq[256];
            squash(sq, sizeof sq, msg);
            int known = 0;
            for (int i = 0; i < n_msgs && !known; i++) known = !strcmp(msgs[i], sq);
            if (!known && n_msgs < MAX_MSGS) {
                snprintf(msgs[n_msgs++], sizeof msgs[0], "%s", sq);
                if (verbose) printf("    [%s N=%ld] %d %s\n", o->name, n, got.err_status, msg);
                if (!says_memory(msg) || (got.err_status && got.err_status < 500))
                    printf("    NOTE %s: N=%ld: an allocation failure reported as %s%d'%s'\n", o->name, n,
                           got.err_status ? "status " : "", got.err_status, msg);
            }
            if (o->resume) {
                res_reset(&again);
                int r = o->resume(o->ctx, &again);
                CHECK_MSG(r >= 0, "%s: N=%ld: resuming after the failure fails: %s", o->name, n, vc_errmsg());
                resumed += r == 1;
                if (r == 1 && !same(&clean, &again)) {
                    CHECK_MSG(0, "%s (%s): N=%ld: resumed after the failure ('%s'), the result differs", o->name,
                              persistent ? "persistent" : "one-shot", n, msg);
                    show_diff("result", &clean, &again);
                }
            }
        }
        if (o->check) CHECK_MSG(o->check(o->ctx) == 0, "%s: N=%ld: after the attempt: %s", o->name, n, vc_errmsg());
        /* the same operation again, unarmed: nothing may be left poisoned (with a setup, what
         * it made is made afresh) */
        if (o->setup) {
            op_end(o);
            if (op_begin(o)) break;
        }
        res_reset(&again);
        rc = o->run(o->ctx, &again);
        if (rc || !same(&clean, &again)) {
            CHECK_MSG(0, "%s (%s): N=%ld: the next clean run %s (after '%s')", o->name,
                      persistent ? "persistent" : "one-shot", n, rc ? "fails" : "differs", msg);
            if (rc) fprintf(stderr, "    %s\n", again.err_msg[0] ? again.err_msg : vc_errmsg());
            else show_diff("result", &clean, &again);
            op_end(o);
            break;
        }
        if (o->check) CHECK_MSG(o->check(o->ctx) == 0, "%s: N=%ld: after the rerun: %s", o->name, n, vc_errmsg());
        op_end(o);
        if (only_n > 0) break;
        if (n > 4 * total + 1000) {
            CHECK_MSG(0, "%s: still failing at N=%ld (a clean run makes %ld allocations)", o->name, n, total);
            break;
        }
    }
    if (wrong > 2) CHECK_MSG(0, "%s: %d more runs with another result", o->name, wrong - 2);
    printf("  %-36s %-10s %5ld allocations, %5ld failed cleanly (%ld resumed), %3ld absorbed, %5.1f s\n", o->name,
           persistent ? "persistent" : "one-shot", total, failed, resumed, survived, now_s() - t0);
    fflush(stdout);
}

static void sweep(const op *o) {
    if (only && !strstr(o->name, only)) return;
    sweep_mode(o, 0);
    if (!only_n) sweep_mode(o, 1);
#ifdef HAVE_LSAN
    if (leak_each && __lsan_do_recoverable_leak_check()) CHECK_MSG(0, "%s: leaks (above)", o->name);
#endif
}

/* ---- the counters themselves ---- */

static void *alloc_in_thread(void *arg) {
    void *(*volatile f)(size_t) = malloc;
    (void)arg;
    return f(8);
}

/* malloc in a new thread: whether it succeeded (the block is freed) */
static int thread_alloc_ok(void) {
    pthread_t th;
    void *p = NULL;
    if (pthread_create(&th, NULL, alloc_in_thread, NULL)) return -1;
    pthread_join(th, &p);
    free(p);
    return p != NULL;
}

/* through pointers, so that the compiler cannot fold an allocation whose result only meets a NULL test
 * (the linker still sends them to the wrappers) */
static void *(*volatile xmalloc)(size_t) = malloc;
static void *(*volatile xcalloc)(size_t, size_t) = calloc;
static void *(*volatile xrealloc)(void *, size_t) = realloc;
static char *(*volatile xstrdup)(const char *) = strdup;
static char *(*volatile xstrndup)(const char *, size_t) = strndup;

static void test_api(void) {
    void *a, *b, *c;
    vc_fault_arm(2); /* one-shot: only the second fails */
    a = xmalloc(8), b = xmalloc(8), c = xmalloc(8);
    vc_fault_disarm();
    CHECK(a && !b && c && vc_fault_hit() && vc_fault_count() == 3 && vc_fault_failures() == 1);
    free(a), free(c);
    vc_fault_arm_persistent(2); /* the second and every later one */
    a = xmalloc(8), b = xcalloc(1, 8);
    char *d = xstrdup("x"), *e = xstrndup("xy", 1);
    vc_fault_disarm();
    CHECK(a && !b && !d && !e && vc_fault_hit() && vc_fault_failures() == 3);
    ((char *)a)[0] = 'q';
    vc_fault_arm(1); /* a failed realloc leaves the block as it was (ASan: still allocated) */
    b = xrealloc(a, 1 << 20);
    vc_fault_disarm();
    CHECK(!b && ((char *)a)[0] == 'q');
    free(a);
    vc_fault_arm(5);
    a = xmalloc(8);
    vc_fault_disarm();
    b = xmalloc(8); /* disarmed: neither fails nor counts */
    CHECK(a && b && !vc_fault_hit() && vc_fault_count() == 1);
    free(a), free(b);
    /* threads: count only the marked ones (this one), then only the others */
    vc_fault_thread_mark();
    vc_fault_thread_only(VC_FAULT_MARKED);
    vc_fault_arm(1);
    CHECK(thread_alloc_ok() == 1 && vc_fault_count() == 0);
    a = xmalloc(8);
    CHECK(!a && vc_fault_hit());
    vc_fault_thread_only(VC_FAULT_UNMARKED);
    vc_fault_arm(1);
    a = xmalloc(8);
    CHECK(a && vc_fault_count() == 0);
    free(a);
    CHECK(thread_alloc_ok() == 0 && vc_fault_hit());
    vc_fault_disarm();
    vc_fault_thread_only(VC_FAULT_ALL_THREADS);
    vc_fault_thread_unmark();
    /* cJSON allocates through the counters too */
    vc_fault_arm(1);
    cJSON *j = cJSON_CreateObject();
    vc_fault_disarm();
    CHECK(!j && vc_fault_hit());
}

/* ---- model load: the whole stack (backend, tokenizer, weights, engine) ---- */

typedef struct {
    const char *dtype;
    int engine;
} load_ctx;

static int run_load(void *vctx, res *out) {
    load_ctx *c = vctx;
    stk_params p;
    stk_params_default(&p);
    p.model = model_dir;
    p.device = "cpu";
    p.dtype = c->dtype;
    p.quiet = 1;
    p.ec.quiet = 1;
    p.ec.kv_cache_gib = 0.002;
    p.ec.max_num_seqs = 4;
    p.engine = c->engine;
    stk_stack *s = NULL;
    int rc = stk_open(&p, &s);
    if (rc) {
        if (s) CHECK_MSG(0, "stk_open failed and left *out set");
        return rc;
    }
    res_add(out, "dir %s vocab %d layers %d dtype %d weights %llu in place %llu loaded %llu tok %zu engine %d",
            s->model_dir ? s->model_dir : "-", s->m->cfg.vocab_size, s->m->cfg.n_layers, (int)s->m->wdtype,
            (unsigned long long)s->m->weight_bytes, (unsigned long long)s->m->bytes_in_place,
            (unsigned long long)s->m->bytes_loaded, s->tok ? tok_vocab_size(s->tok) : 0, s->e != NULL);
    if (s->e) res_add(out, " max_model_len %d blocks %d", eng_max_model_len(s->e), eng_get_stats(s->e).num_blocks);
    stk_free(s);
    return VC_OK;
}

static int run_api_create(void *vctx, res *out) {
    (void)vctx;
    vllmc_engine_args a;
    vllmc_engine_args_default(&a);
    a.model = model_dir;
    a.device = "cpu";
    a.dtype = "float32";
    a.kv_cache_gib = 0.002;
    a.max_num_seqs = 4;
    vllmc_engine *e = NULL;
    int rc = vllmc_engine_create(&a, &e);
    if (rc) {
        CHECK(e == NULL);
        return rc;
    }
    res_add(out, "vocab %d", vllmc_vocab_size(e));
    vllmc_engine_free(e);
    return VC_OK;
}

/* ---- tokenizer ---- */

/* A byte-level BPE in GPT-2 style (the 256-byte alphabet, merges, a Split regex then ByteLevel,
 * added tokens), as tests/fuzz/fuzz_tokenizer.c builds it. */
static char bytelevel_json[16384];
static const char bytelevel_config[] =
    "{\"tokenizer_class\":\"GPT2Tokenizer\",\"bos_token\":\"<|s|>\",\"eos_token\":{\"content\":\"<x>\"},"
    "\"clean_up_tokenization_spaces\":true,\"chat_template\":[{\"name\":\"default\",\"template\":\"x\"}]}";

static void json_char(char *out, size_t size, unsigned cp) {
    if (cp == '"' || cp == '\\') snprintf(out, size, "\"\\%c\"", cp);
    else if (cp < 0x80) snprintf(out, size, "\"%c\"", cp);
    else snprintf(out, size, "\"%c%c\"", 0xC0 | (cp >> 6), 0x80 | (cp & 63));
}

static void make_bytelevel(void) {
    res r;
    res_reset(&r);
    res_add(&r, "%s",
            "{\"added_tokens\":[{\"id\":300,\"content\":\"<|s|>\",\"special\":true},"
            "{\"id\":301,\"content\":\"<x>\",\"special\":false,\"lstrip\":true,\"rstrip\":true,\"single_word\":true}],"
            "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
            "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|"
            "\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
            "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
            "\"use_regex\":false}]},\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
            "{\"SpecialToken\":{\"id\":\"<|s|>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
            "\"special_tokens\":{\"<|s|>\":{\"id\":\"<|s|>\",\"ids\":[300],\"tokens\":[\"<|s|>\"]}}},"
            "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{");
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n++;
        char s[16];
        json_char(s, sizeof s, cp);
        res_add(&r, "%s%s:%d", b ? "," : "", s, b);
    }
    res_add(&r, "%s",
            ",\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258,\"\xC4\xA0\xC4\xA0\":259},\"merges\":["
            "\"\xC4\xA0 t\",[\"h\",\"e\"],\"\xC4\xA0t he\",\"\xC4\xA0 \xC4\xA0\"]}}");
    CHECK(r.n < sizeof bytelevel_json - 1);
    memcpy(bytelevel_json, r.s, r.n + 1);
}

static void describe_tok(const tok_tokenizer *t, res *out) {
    res_add(out, "vocab %zu bos %d eos %d", tok_vocab_size(t), tok_bos_id(t), tok_eos_id(t));
}

static int run_tok_load_dir(void *vctx, res *out) {
    (void)vctx;
    tok_tokenizer *t = NULL;
    int rc = tok_load_dir(model_dir, &t);
    if (rc) return rc;
    describe_tok(t, out);
    tok_free(t);
    return VC_OK;
}

static int run_tok_load_mem(void *vctx, res *out) {
    (void)vctx;
    tok_tokenizer *t = NULL;
    int rc = tok_load_mem(bytelevel_json, strlen(bytelevel_json), "bytelevel.json", bytelevel_config,
                          strlen(bytelevel_config), &t);
    if (rc) return rc;
    describe_tok(t, out);
    tok_free(t);
    return VC_OK;
}

typedef struct {
    const tok_tokenizer *tok;
    const char *text;
} tok_use_ctx;

/* encode, decode (two flag sets) and stream the ids back */
static int run_tok_use(void *vctx, res *out) {
    tok_use_ctx *c = vctx;
    tok_ids ids = {0};
    tok_text txt = {0};
    tok_stream *st = NULL;
    int rc = tok_encode(c->tok, c->text, strlen(c->text), 1, &ids);
    if (rc) goto out;
    res_add(out, "ids");
    for (size_t i = 0; i < ids.n; i++) res_add(out, " %d", ids.ids[i]);
    if ((rc = tok_decode(c->tok, ids.ids, ids.n, 0, &txt))) goto out;
    res_add(out, " text ");
    res_bytes(out, txt.s, txt.len);
    if ((rc = tok_decode(c->tok, ids.ids, ids.n, TOK_DECODE_SKIP_SPECIAL | TOK_DECODE_CLEANUP, &txt))) goto out;
    res_add(out, " skip ");
    res_bytes(out, txt.s, txt.len);
    if ((rc = tok_stream_init(c->tok, TOK_DECODE_SKIP_SPECIAL, &st))) goto out;
    size_t half = ids.n / 2;
    if ((rc = tok_stream_prime(st, ids.ids, half))) goto out;
    res_add(out, " stream");
    for (size_t i = half; i < ids.n; i++) {
        const char *piece;
        size_t n;
        if ((rc = tok_stream_push(st, ids.ids[i], &piece, &n))) goto out;
        res_add(out, " ");
        res_bytes(out, piece, n);
    }
    const char *piece;
    size_t n;
    if ((rc = tok_stream_flush(st, &piece, &n))) goto out;
    res_add(out, " flush ");
    res_bytes(out, piece, n);
out:
    tok_stream_free(st);
    tok_ids_free(&ids);
    tok_text_free(&txt);
    return rc;
}

/* ---- chat templates ---- */

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *s = malloc(n + 1);
    if (s) memcpy(s, buf, n + 1);
    *len = n;
    return s;
}

typedef struct {
    const char *src;
    size_t len;
    const tmpl_template *compiled; /* render only (the shared, compiled template) when set */
} tmpl_ctx;

static const char chat_request[] =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},"
    "{\"role\":\"user\",\"content\":\"What is 2+2? Say it in words, \\u00e9t\\u00e9.\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>\\nadd\\n</think>\\n\\nfour\","
    "\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"calc\",\"arguments\":{\"x\":[1,2.5,null]}}}]},"
    "{\"role\":\"tool\",\"content\":\"4\"},{\"role\":\"user\",\"content\":\"and 3+3?\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"calc\",\"description\":\"adds\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"array\"}}}}}],"
    "\"add_generation_prompt\":true,\"chat_template_kwargs\":{\"enable_thinking\":false}}";

static int run_tmpl(void *vctx, res *out) {
    tmpl_ctx *c = vctx;
    tmpl_template *t = NULL;
    tmpl_error te = {0};
    int rc = 0;
    if (!c->compiled && (rc = tmpl_compile(c->src, c->len, &t, &te))) return rc;
    char *text = NULL;
    size_t n = 0;
    tmpl_chat_args a = {.request_json = chat_request, .bos_token = "<s>", .eos_token = "</s>", .now = 1700000000};
    rc = tmpl_render_chat(c->compiled ? c->compiled : t, &a, NULL, &text, &n, &te);
    if (!rc) res_bytes(out, text, n);
    free(text);
    tmpl_free(t);
    return rc;
}

/* ---- request parsing (src/server/request.h) ---- */

typedef struct {
    const srv_ctx *sc;
    const char *body;
    int kind; /* 0 completion, 1 chat, 2 tokenize, 3 detokenize */
} req_ctx;

static void describe_request(const srv_request *r, res *out) {
    res_add(out, "chat %d prompts %d", r->chat, r->n_prompts);
    for (int i = 0; i < r->n_prompts; i++) {
        res_add(out, " [");
        for (int j = 0; j < r->len[i]; j++) res_add(out, "%s%d", j ? " " : "", r->ids[i][j]);
        res_add(out, "] max %d text ", r->max_tokens[i]);
        if (r->text && r->text[i]) res_bytes(out, r->text[i], strlen(r->text[i]));
    }
    const eng_sampling_params *p = &r->sp;
    res_add(out, " n %d temp %g top_p %g top_k %d seed %d/%lld max %d min %d logprobs %d plp %d stream %d echo %d",
            p->n, p->temperature, p->top_p, p->top_k, p->has_seed, (long long)p->seed, p->max_tokens,
            p->min_tokens, r->logprobs, p->prompt_logprobs, r->stream, r->echo);
    for (int i = 0; i < p->n_stop; i++) res_add(out, " stop '%s'", p->stop[i]);
    for (int i = 0; i < p->n_stop_token_ids; i++) res_add(out, " stop_id %d", p->stop_token_ids[i]);
    for (int i = 0; i < p->n_logit_bias; i++)
        res_add(out, " bias %d:%g", p->logit_bias[i].token, p->logit_bias[i].bias);
    for (int i = 0; i < p->n_allowed; i++) res_add(out, " allow %d", p->allowed_token_ids[i]);
    for (int i = 0; i < p->n_bad_words; i++) res_add(out, " bad_words %d", p->bad_words_len[i]);
    if (r->echo_prefix) res_add(out, " echo_prefix '%s'", r->echo_prefix);
}

static int run_request(void *vctx, res *out) {
    req_ctx *c = vctx;
    srv_error err = {0};
    int rc;
    if (c->kind <= 1) {
        srv_request r;
        memset(&r, 0xa5, sizeof r); /* garbage in: the parser must initialise what it frees */
        rc = srv_parse_request(c->sc, c->body, strlen(c->body), c->kind, &r, &err);
        if (!rc) describe_request(&r, out);
        srv_request_free(&r);
    } else {
        char *json = NULL;
        size_t n = 0;
        rc = (c->kind == 2 ? srv_tokenize : srv_detokenize)(c->sc, c->body, strlen(c->body), &json, &n, &err);
        if (!rc) res_bytes(out, json, n);
        free(json);
    }
    if (rc) {
        out->err_status = err.status;
        snprintf(out->err_msg, sizeof out->err_msg, "%s", err.message);
        if (!err.status || !err.message[0]) CHECK_MSG(0, "an srv_error without status or message (rc %d)", rc);
        return rc < 0 ? rc : VC_ERR;
    }
    return VC_OK;
}

/* ---- the engine ---- */

enum { MAX_IDX = 4, MAX_TOK = 64 };

typedef struct {
    eng_engine *e;             /* or through the public API: */
    vllmc_engine *api;
    /* fresh: a new engine for every attempt (setup_eng), from these */
    int fresh;
    mdl_model *m;
    eng_config cfg;
    const vllmc_engine_args *api_args;
    const tok_tokenizer *tok;  /* stream: text through engine/detok.c with stop strings */
    const int32_t *prompt;
    int n_prompt;
    eng_sampling_params sp;
    int stream;
    /* the attempt in progress */
    long serial;
    char id[32];
    int added, step_failed;
    int ntok[MAX_IDX], done[MAX_IDX], finish[MAX_IDX], stopped[MAX_IDX];
    int32_t toks[MAX_IDX][MAX_TOK];
    float lp[MAX_IDX][MAX_TOK];
    int rank[MAX_IDX][MAX_TOK];
    float plp_sum[MAX_IDX];
    dt_text dt[MAX_IDX];
    int dt_live;
    char delta[MAX_IDX][512];  /* the streamed deltas, concatenated */
    size_t n_delta[MAX_IDX];
} eng_ctx;

static int ctx_add(eng_ctx *c) {
    if (c->api) return vllmc_add_request(c->api, c->id, c->prompt, c->n_prompt, &c->sp, 0);
    return eng_add(c->e, c->id, c->prompt, c->n_prompt, &c->sp, 0);
}
static int ctx_step(eng_ctx *c, const eng_output **o, int *n) {
    return c->api ? vllmc_step(c->api, o, n) : eng_step(c->e, o, n);
}
static int ctx_abort(eng_ctx *c, int index) {
    if (c->api) return vllmc_abort(c->api, c->id);
    return eng_abort(c->e, c->id, index, index < 0 ? ENG_FINISH_ABORT : ENG_FINISH_STOP);
}
static int ctx_unfinished(eng_ctx *c) { return c->api ? vllmc_has_unfinished(c->api) : eng_has_unfinished(c->e); }

static void eng_release(eng_ctx *c) {
    if (c->dt_live)
        for (int i = 0; i < c->sp.n; i++) dt_free(&c->dt[i]);
    c->dt_live = 0;
}

static void describe_eng(const eng_ctx *c, res *out) {
    for (int i = 0; i < c->sp.n; i++) {
        res_add(out, "[%d] finish %d:", i, c->finish[i]);
        for (int j = 0; j < c->ntok[i]; j++) res_add(out, " %d(%.4f,%d)", c->toks[i][j], c->lp[i][j], c->rank[i][j]);
        res_add(out, " plp %.4f", c->plp_sum[i]);
        if (c->stream) {
            res_add(out, " text ");
            res_bytes(out, dt_str(&c->dt[i]), dt_len(&c->dt[i]));
            res_add(out, " deltas ");
            res_bytes(out, c->delta[i], c->n_delta[i]);
            res_add(out, " stopped %d", c->stopped[i]);
        }
        res_add(out, "\n");
    }
}

/* Step until every completion of the request has finished. A failed eng_step sets step_failed. */
static int eng_drive(eng_ctx *c) {
    int all = 0;
    for (int guard = 0; !all && guard < 10000; guard++) {
        const eng_output *o;
        int no, rc = ctx_step(c, &o, &no);
        if (rc) {
            c->step_failed = 1;
            return rc;
        }
        for (int k = 0; k < no; k++) {
            if (strcmp(o[k].request_id, c->id) != 0 || o[k].index < 0 || o[k].index >= c->sp.n) continue;
            int i = o[k].index;
            if (o[k].has_token && c->ntok[i] < MAX_TOK) {
                int j = c->ntok[i]++;
                c->toks[i][j] = o[k].token;
                c->lp[i][j] = c->sp.logprobs >= 0 ? o[k].token_logprob : 0;
                c->rank[i][j] = c->sp.logprobs >= 0 ? o[k].token_rank : 0;
                if (c->sp.logprobs > 0)
                    for (int q = 0; q < o[k].n_top; q++) c->lp[i][j] += 0.001f * (float)o[k].top_ids[q];
                if (o[k].prompt_token_logprob)
                    for (int p = 1; p < o[k].n_prompt; p++) c->plp_sum[i] += o[k].prompt_token_logprob[p];
                if (c->stream && !c->stopped[i]) {
                    int s = dt_push(&c->dt[i], o[k].token);
                    if (s < 0) return s;
                    if (s == 1 && !o[k].finish) {
                        c->stopped[i] = 1;
                        if ((rc = ctx_abort(c, i))) return rc;
                    }
                }
            }
            if (o[k].finish && !c->done[i]) {
                c->done[i] = 1;
                c->finish[i] = o[k].finish;
                if (c->stream && (rc = dt_finish(&c->dt[i])) < 0) return rc;
            }
            if (c->stream) {
                const char *p;
                size_t n;
                dt_delta(&c->dt[i], &p, &n);
                if (c->n_delta[i] + n < sizeof c->delta[i]) {
                    memcpy(c->delta[i] + c->n_delta[i], p, n);
                    c->n_delta[i] += n;
                }
            }
        }
        all = 1;
        for (int i = 0; i < c->sp.n; i++) all &= c->done[i];
    }
    return all ? VC_OK : vc_errf(VC_ERR, "the request did not finish");
}

static int run_eng(void *vctx, res *out) {
    eng_ctx *c = vctx;
    memset(c->ntok, 0, sizeof c->ntok);
    memset(c->done, 0, sizeof c->done);
    memset(c->finish, 0, sizeof c->finish);
    memset(c->stopped, 0, sizeof c->stopped);
    memset(c->plp_sum, 0, sizeof c->plp_sum);
    memset(c->n_delta, 0, sizeof c->n_delta);
    c->added = c->step_failed = 0;
    snprintf(c->id, sizeof c->id, "f%ld", c->serial++);
    int rc = 0;
    if (c->stream) {
        for (int i = 0; i < c->sp.n && !rc; i++)
            if ((rc = dt_init(&c->dt[i], c->tok, &c->sp, c->prompt, c->n_prompt)))
                for (int j = 0; j < i; j++) dt_free(&c->dt[j]);
        if (rc) return rc;
        c->dt_live = 1;
    }
    if ((rc = ctx_add(c))) {
        eng_release(c);
        return rc;
    }
    c->added = 1;
    if ((rc = eng_drive(c))) return rc; /* resume() releases */
    describe_eng(c, out);
    eng_release(c);
    return VC_OK;
}

/* After a failed run: a failed step changed nothing, so stepping on must give the clean result;
 * any other failure (text, an abort that could not be queued) withdraws the request. */
static int resume_eng(void *vctx, res *out) {
    eng_ctx *c = vctx;
    if (!c->added) return 0;
    if (c->step_failed) {
        c->step_failed = 0;
        int rc = eng_drive(c);
        if (!rc) describe_eng(c, out);
        eng_release(c);
        return rc ? rc : 1;
    }
    eng_release(c);
    int rc = ctx_abort(c, -1);
    for (int guard = 0; !rc && ctx_unfinished(c) && guard < 10000; guard++) {
        const eng_output *o;
        int no;
        rc = ctx_step(c, &o, &no);
    }
    return rc ? rc : 0;
}

/* Sequences stay counted until the step after their last output (which points into them). */
static int check_eng(void *vctx) {
    eng_ctx *c = vctx;
    for (int guard = 0; ctx_unfinished(c) && guard < 3; guard++) {
        const eng_output *o;
        int no, rc = ctx_step(c, &o, &no);
        if (rc) return rc;
        if (no) return vc_errf(VC_ERR, "an idle engine gave %d outputs ('%s')", no, o[0].request_id);
    }
    if (ctx_unfinished(c)) return vc_errf(VC_ERR, "the engine still has unfinished requests");
    return c->e ? eng_check_kv(c->e, 0) : VC_OK;
}

static int setup_eng(void *vctx) {
    eng_ctx *c = vctx;
    if (!c->fresh) return VC_OK;
    if (c->api_args) return vllmc_engine_create(c->api_args, &c->api);
    return eng_create(c->m, &c->cfg, &c->e);
}

static void teardown_eng(void *vctx) {
    eng_ctx *c = vctx;
    if (!c->fresh) return;
    eng_free(c->e);
    vllmc_engine_free(c->api);
    c->e = NULL;
    c->api = NULL;
}

static void sweep_eng(const char *name, eng_ctx *c) {
    sweep(&(op){.name = name, .run = run_eng, .resume = resume_eng, .check = check_eng, .ctx = c,
                .setup = c->fresh ? setup_eng : NULL, .teardown = c->fresh ? teardown_eng : NULL});
}

/* ---- offline (vllmc generate, benchmarks) ---- */

typedef struct {
    eng_engine *e;
    off_request rq[2];
} off_ctx;

static int run_offline(void *vctx, res *out) {
    off_ctx *c = vctx;
    off_completion oc[8];
    int total = off_count(c->rq, 2);
    int rc = off_run(c->e, c->rq, 2, oc, NULL, NULL, NULL);
    if (rc) return rc;
    for (int i = 0; i < total; i++) {
        res_add(out, "[%d] finish %d:", i, oc[i].finish);
        for (int j = 0; j < oc[i].n_tokens; j++)
            res_add(out, " %d(%.4f)", oc[i].tokens[j], oc[i].tok_lp ? oc[i].tok_lp[j] : 0.0f);
        res_add(out, "\n");
    }
    off_free(oc, total);
    return VC_OK;
}

static int check_offline(void *vctx) {
    off_ctx *c = vctx;
    if (eng_has_unfinished(c->e)) return vc_errf(VC_ERR, "off_run left unfinished requests in the engine");
    return eng_check_kv(c->e, 0);
}

/* ---- main ---- */

static void stack_params(stk_params *p_, int tokenizer) {
    stk_params p;
    stk_params_default(&p);
    p.model = model_dir;
    p.device = "cpu";
    p.dtype = "float32";
    p.kv_cache_dtype = "float32";
    p.quiet = 1;
    p.tokenizer = tokenizer;
    p.ec.quiet = 1;
    p.ec.kv_cache_gib = 0.004;
    p.ec.max_num_seqs = 4;
    p.ec.max_num_batched_tokens = 64; /* a 40-token prompt in one chunk, two when it shares a step */
    p.ec.seed = 7;
    *p_ = p;
}

static stk_stack *open_stack(int tokenizer) {
    stk_params p;
    stack_params(&p, tokenizer);
    stk_stack *s = NULL;
    int rc = stk_open(&p, &s);
    CHECK_MSG(rc == 0, "%s", vc_errmsg());
    return rc ? NULL : s;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "-leak")) leak_each = 1;
        else if (!strcmp(argv[i], "-only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) only_n = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: test_faults [-v] [-leak] [-only NAME] [-n N]\n");
            return 2;
        }
    }
    if (!vc_fault_enabled()) {
        printf("skipped: not a -DVLLMC_FAULTS build (make test-faults)\n");
        return 0;
    }
    vc_fault_init();
    double t0 = now_s();
    test_api();

    /* the tiny chat model (golden llama-f32 weights, a byte-fallback BPE, a ChatML template) */
    snprintf(model_dir, sizeof model_dir, "/tmp/vllmc-faults-XXXXXX");
    if (!mkdtemp(model_dir)) {
        perror("mkdtemp");
        return 1;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash tests/fixtures/make_chat_model.sh %s", model_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot make the chat model in %s\n", model_dir);
        return 1;
    }
    make_bytelevel();

    /* model load */
    load_ctx l32 = {"float32", 1}, l16 = {"half", 0};
    sweep(&(op){.name = "load stack f32 + engine", .run = run_load, .ctx = &l32});
    sweep(&(op){.name = "load stack f16 (convert)", .run = run_load, .ctx = &l16});
    sweep(&(op){.name = "vllmc_engine_create", .run = run_api_create});

    /* tokenizers */
    sweep(&(op){.name = "tok_load_dir (chat model)", .run = run_tok_load_dir});
    sweep(&(op){.name = "tok_load_mem (byte-level)", .run = run_tok_load_mem});
    tok_tokenizer *chat_tok = NULL, *bl_tok = NULL;
    CHECK(tok_load_dir(model_dir, &chat_tok) == 0);
    CHECK(tok_load_mem(bytelevel_json, strlen(bytelevel_json), "bytelevel.json", bytelevel_config,
                       strlen(bytelevel_config), &bl_tok) == 0);
    if (!chat_tok || !bl_tok) TEST_END();
    tok_use_ctx tu1 = {chat_tok, "<|im_start|>user\nhello world \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80<|im_end|>"};
    tok_use_ctx tu2 = {bl_tok, "The cat's hat <x> is  the\n\n123456 \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80 <|s|>the end"};
    sweep(&(op){.name = "tok encode/decode/stream (chat)", .run = run_tok_use, .ctx = &tu1});
    sweep(&(op){.name = "tok encode/decode/stream (byte-level)", .run = run_tok_use, .ctx = &tu2});

    /* chat templates: the model's (ChatML) and a large real one, compiled + rendered, and rendered
     * from one compiled template shared across attempts */
    tmpl_model tm = {0};
    CHECK_MSG(tmpl_model_load(model_dir, NULL, 0, 1, &tm) == 0, "%s", vc_errmsg());
    size_t qlen = 0;
    char *qwen3 = read_text("tests/fuzz/corpus/fuzz_template/qwen3.jinja", &qlen);
    CHECK(qwen3 != NULL);
    if (!tm.source || !qwen3) TEST_END();
    tmpl_ctx tc1 = {tm.source, tm.len, NULL}, tc2 = {qwen3, qlen, NULL};
    sweep(&(op){.name = "template compile+render (chatml)", .run = run_tmpl, .ctx = &tc1});
    sweep(&(op){.name = "template compile+render (qwen3)", .run = run_tmpl, .ctx = &tc2});
    tmpl_template *q3 = NULL, *chatml = NULL;
    CHECK(tmpl_compile(qwen3, qlen, &q3, NULL) == 0);
    CHECK(tmpl_compile(tm.source, tm.len, &chatml, NULL) == 0);
    tmpl_ctx tc3 = {qwen3, qlen, q3};
    sweep(&(op){.name = "template render (qwen3, shared)", .run = run_tmpl, .ctx = &tc3});

    /* request bodies (the server's parser, with the model's tokenizer and template) */
    static const char *const names[] = {"m"};
    srv_ctx sc = {.tok = chat_tok, .tmpl = chatml, .bos_token = tm.bos_token, .eos_token = tm.eos_token,
                  .names = names, .n_names = 1, .max_model_len = 512, .vocab_size = 512, .max_logprobs = 20,
                  .priority_scheduling = 1, .trust_request_chat_template = 1,
                  .has_temperature = 1, .temperature = 0.7f};
    static const struct {
        const char *name;
        int kind;
        const char *body;
    } bodies[] = {
        {"request completion", 0,
         "{\"model\":\"m\",\"prompt\":\"hello\",\"max_tokens\":5,\"temperature\":0.5,\"stop\":[\"x\",\"yz\"],"
         "\"logprobs\":2,\"echo\":true,\"n\":2,\"seed\":3,\"stop_token_ids\":[2,7],\"min_tokens\":1}"},
        {"request completion batch", 0,
         "{\"prompt\":[\"ab\",\"cd\"],\"max_tokens\":null,\"bad_words\":[\"a\",\"bc\"],\"logit_bias\":{\"5\":1.5,"
         "\"9\":-2},\"allowed_token_ids\":[259,260,261],\"prompt_logprobs\":1}"},
        {"request completion ids", 0,
         "{\"prompt\":[[1,2,3],[4,5]],\"n\":2,\"seed\":3,\"stream\":true,\"stream_options\":{\"include_usage\":"
         "true,\"continuous_usage_stats\":true},\"best_of\":1,\"priority\":1}"},
        {"request chat", 1,
         "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\","
         "\"content\":\"hi\"}],\"logprobs\":true,\"top_logprobs\":3,\"max_completion_tokens\":4,\"stop\":\"q\","
         "\"n\":2,\"stream\":true}"},
        {"request chat parts + echo", 1,
         "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"text\","
         "\"text\":\"there\"}]},{\"role\":\"assistant\",\"content\":\"ok\"}],\"continue_final_message\":true,"
         "\"add_generation_prompt\":false,\"echo\":true}"},
        {"request chat own template", 1,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"u\"}],\"chat_template\":\"{% for m in messages %}"
         "{{ m.role | upper }}:{{ m.content }}{% endfor %}\",\"chat_template_kwargs\":{\"x\":1}}"},
        {"srv_tokenize prompt", 2,
         "{\"model\":\"m\",\"prompt\":\"hello <|im_start|>\",\"add_special_tokens\":true,\"return_token_strs\":true}"},
        {"srv_tokenize chat", 2,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"add_generation_prompt\":true}"},
        {"srv_detokenize", 3, "{\"model\":\"m\",\"tokens\":[1,259,260,285,286,300]}"},
    };
    static req_ctx rc_[sizeof bodies / sizeof *bodies];
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        rc_[i] = (req_ctx){&sc, bodies[i].body, bodies[i].kind};
        sweep(&(op){.name = bodies[i].name, .run = run_request, .ctx = &rc_[i]});
    }

    /* the engine: one stack, used by every attempt */
    stk_stack *st = open_stack(1);
    if (!st) TEST_END();
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 259 + (i * 7) % 26;
    static eng_ctx ec[4];
    for (int i = 0; i < 4; i++) {
        eng_ctx *c = &ec[i];
        c->e = st->e;
        c->tok = st->tok;
        c->prompt = prompt;
        c->n_prompt = 40;
        eng_params_default(&c->sp);
        c->sp.max_tokens = 6;
        c->sp.ignore_eos = 1;
    }
    /* greedy, logprobs, prompt_logprobs (no prefix-cache hits), penalties */
    ec[0].sp.temperature = 0;
    ec[0].sp.logprobs = 2;
    ec[0].sp.prompt_logprobs = 1;
    ec[0].sp.repetition_penalty = 1.3f;
    ec[0].sp.frequency_penalty = 0.5f;
    ec[0].sp.presence_penalty = 0.2f;
    /* n = 2, seeded sampling, prefix-cache hits, top-k, min_tokens, bad words */
    static int32_t bw0[] = {262}, bw1[] = {263, 264};
    static int32_t *bws[] = {bw0, bw1};
    static int bwl[] = {1, 2};
    ec[1].sp.n = 2;
    ec[1].sp.temperature = 0.9f;
    ec[1].sp.has_seed = 1;
    ec[1].sp.seed = 11;
    ec[1].sp.top_k = 20;
    ec[1].sp.min_tokens = 2;
    ec[1].sp.bad_words = bws;
    ec[1].sp.bad_words_len = bwl;
    ec[1].sp.n_bad_words = 2;
    /* streaming: text through detok, a stop string, letters only */
    static char *stops[] = {"q", "zz"};
    static int32_t letters[26];
    for (int i = 0; i < 26; i++) letters[i] = 259 + i;
    ec[2].stream = 1;
    ec[2].sp.n = 2;
    ec[2].sp.max_tokens = 24;
    ec[2].sp.temperature = 1.0f;
    ec[2].sp.has_seed = 1;
    ec[2].sp.seed = 5;
    ec[2].sp.stop = stops;
    ec[2].sp.n_stop = 2;
    ec[2].sp.allowed_token_ids = letters;
    ec[2].sp.n_allowed = 26;
    /* one engine for every attempt: nothing may be left poisoned for the next request */
    sweep_eng("engine greedy+logprobs", &ec[0]);
    sweep_eng("engine n=2 seeded", &ec[1]);
    sweep_eng("engine streaming+stop", &ec[2]);
    /* a fresh engine per attempt (on the same model): the first steps' allocations fail too, and a
     * failed step must have changed nothing (stepping on gives the clean run's tokens) */
    stk_params sp;
    stack_params(&sp, 1);
    CHECK(stk_check(&sp) == 0);
    static eng_ctx fresh[3];
    static const char *const fresh_names[] = {"fresh engine greedy+logprobs", "fresh engine n=2 seeded",
                                              "fresh engine streaming+stop"};
    for (int i = 0; i < 3; i++) {
        fresh[i] = ec[i];
        fresh[i].e = NULL;
        fresh[i].fresh = 1;
        fresh[i].m = st->m;
        fresh[i].cfg = sp.ec;
        sweep_eng(fresh_names[i], &fresh[i]);
    }

    off_ctx oc = {.e = st->e};
    eng_sampling_params osp[2];
    eng_params_default(&osp[0]);
    osp[0].temperature = 0;
    osp[0].max_tokens = 5;
    osp[0].logprobs = 1;
    osp[0].ignore_eos = 1;
    osp[1] = osp[0];
    osp[1].n = 2;
    osp[1].temperature = 0.8f;
    osp[1].has_seed = 1;
    osp[1].seed = 3;
    oc.rq[0] = (off_request){prompt, 40, &osp[0], 0, NULL};
    oc.rq[1] = (off_request){prompt + 10, 20, &osp[1], 0, NULL};
    sweep(&(op){.name = "offline off_run", .run = run_offline, .check = check_offline, .ctx = &oc});

    /* the public API: an engine (backend and all) made for every attempt, so that the first
     * forward pass's allocations (the CPU attention scratch) fail too */
    vllmc_engine_args a;
    vllmc_engine_args_default(&a);
    a.model = model_dir;
    a.device = "cpu";
    a.dtype = "float32";
    a.kv_cache_gib = 0.004;
    a.max_num_seqs = 4;
    a.seed = 9;
    {
        ec[3].e = NULL;
        ec[3].fresh = 1;
        ec[3].api_args = &a;
        ec[3].tok = NULL;
        ec[3].sp.n = 2;
        ec[3].sp.temperature = 0.7f;
        ec[3].sp.has_seed = 1;
        ec[3].sp.seed = 21;
        ec[3].sp.logprobs = 0;
        sweep_eng("vllmc_add_request + vllmc_step", &ec[3]);
    }

    stk_free(st);
    tmpl_free(q3);
    tmpl_free(chatml);
    free(qwen3);
    tmpl_model_free(&tm);
    tok_free(chat_tok);
    tok_free(bl_tok);
    snprintf(cmd, sizeof cmd, "rm -rf %s", model_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", model_dir);
    printf("  total %.1f s\n", now_s() - t0);
    TEST_END();
}
