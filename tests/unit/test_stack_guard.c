/* test_stack_guard: every recursive parser and evaluator is bounded by the stack its thread really
 * has (base/stack.h), not only by a count. Hostile templates, template values, JSON inputs and
 * tokenizer.json files run on threads of 128 KiB, 512 KiB (the server's connection threads) and
 * 8 MiB, and on the main thread; each must end in a result or an error, never a crash. Shallow
 * work must still succeed on the smallest thread. TEST_STACK_VERBOSE=1 prints every outcome. */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/file.h"
#include "base/stack.h"
#include "template/template.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static int verbose;

/* ---------------------------------------------------------------- building inputs */

typedef struct {
    char *s;
    size_t n, cap;
} str;

static void add(str *b, const char *s) {
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

static void addn(str *b, const char *s, int times) {
    for (int i = 0; i < times; i++) add(b, s);
}

/* ---------------------------------------------------------------- running on a given stack */

/* stack 0: the main thread (its bounds come from RLIMIT_STACK) */
typedef void (*case_fn)(size_t stack);
static const size_t STACKS[] = {(size_t)128 << 10, (size_t)512 << 10, (size_t)8 << 20, 0};

typedef struct {
    case_fn fn;
    size_t stack;
} job;

static void *job_main(void *p) {
    job *j = p;
    j->fn(j->stack);
    return NULL;
}

static void on_stack(case_fn fn, size_t stack) {
    job j = {fn, stack};
    if (!stack) {
        fn(0);
        return;
    }
    pthread_attr_t a;
    pthread_t th;
    pthread_attr_init(&a);
    CHECK(pthread_attr_setstacksize(&a, stack) == 0);
    int rc = pthread_create(&th, &a, job_main, &j);
    pthread_attr_destroy(&a);
    CHECK_MSG(rc == 0, "pthread_create with a %zu KiB stack", stack >> 10);
    if (!rc) pthread_join(th, NULL);
}

static void on_all_stacks(case_fn fn) {
    for (size_t i = 0; i < sizeof STACKS / sizeof STACKS[0]; i++) on_stack(fn, STACKS[i]);
}

/* ---------------------------------------------------------------- templates */

/* Compile and render; rc is the VC code, *out the output (NULL on error). */
static int render(const char *src, const char *vars, const tmpl_limits *lim, tmpl_error *e, char **out) {
    tmpl_template *t = NULL;
    *out = NULL;
    memset(e, 0, sizeof *e);
    int rc = tmpl_compile(src, strlen(src), &t, e);
    if (rc) return rc;
    size_t n;
    rc = tmpl_render_json(t, vars, vars ? strlen(vars) : 0, lim, out, &n, e);
    tmpl_free(t);
    return rc;
}

/* A hostile case ended in a result or in an error of one of the expected kinds. */
static void outcome(const char *what, size_t stack, int rc, const tmpl_error *e, const char *out, int kind1,
                    int kind2) {
    if (verbose)
        printf("  %4zu KiB  %-34s %s\n", stack >> 10, what, rc ? e->message : "(rendered)");
    if (!rc) {
        CHECK_MSG(out != NULL, "%s on %zu KiB: no output", what, stack >> 10);
        return;
    }
    CHECK_MSG(e->kind == kind1 || e->kind == kind2, "%s on %zu KiB: kind %d (%s)", what, stack >> 10, e->kind,
              e->message);
    CHECK_MSG(e->message[0] && vc_errmsg()[0], "%s on %zu KiB: no message", what, stack >> 10);
}

static void hostile(const char *what, size_t stack, const char *src, const char *vars, const tmpl_limits *lim,
                    int kind1, int kind2) {
    tmpl_error e;
    char *out;
    int rc = render(src, vars, lim, &e, &out);
    outcome(what, stack, rc, &e, out, kind1, kind2);
    free(out);
}

/* The reported crash: a recursive macro inside 16 nested ifs. */
static char *macro_repro(int k) {
    str b = {0};
    char call[64];
    snprintf(call, sizeof call, "{%% endmacro %%}{{ m(%d) }}", k);
    add(&b, "{% macro m(k) %}");
    addn(&b, "{% if true %}", 16);
    add(&b, "{% if k > 0 %}{{ m(k - 1) }}{% endif %}");
    addn(&b, "{% endif %}", 16);
    add(&b, call);
    return b.s;
}

static void case_macro(size_t stack) {
    static const int ks[] = {99, 1999};
    tmpl_limits deep = {.max_depth = 100000}; /* no macro-call limit: only the stack and eval depth */
    for (int i = 0; i < 2; i++) {
        char *src = macro_repro(ks[i]), what[64];
        tmpl_error e;
        char *out;
        snprintf(what, sizeof what, "macro m(%d)", ks[i]);
        int rc = render(src, NULL, NULL, &e, &out);
        outcome(what, stack, rc, &e, out, TMPL_ERR_LIMIT, TMPL_ERR_LIMIT);
        if (!rc) CHECK(strcmp(out, "") == 0);
        if (ks[i] == 99 && stack >= ((size_t)8 << 20)) /* the template is fine where the stack is */
            CHECK_MSG(rc == 0, "m(99) on %zu KiB: %s", stack >> 10, e.message);
        free(out);
        snprintf(what, sizeof what, "macro m(%d), no call limit", ks[i]);
        hostile(what, stack, src, NULL, &deep, TMPL_ERR_LIMIT, TMPL_ERR_LIMIT);
        free(src);
    }
}

/* Deeply nested syntax: the parser's recursion. */
static void case_parse(size_t stack) {
    static const struct {
        const char *what, *pre, *open, *mid, *close, *post;
    } shapes[] = {
        {"((((1))))", "{{ ", "(", "1", ")", " }}"},
        {"[[[[1]]]]", "{{ ", "[", "1", "]", " }}"},
        {"{'a': {'a': ...}}", "{{ ", "{'a': ", "1", "}", " }}"},
        {"not not ... 1", "{{ ", "not ", "1", "", " }}"},
        {"- - ... 1", "{{ ", "-", "1", "", " }}"},
        {"f(f(f(1)))", "{{ ", "range(", "1", ")", " }}"},
        {"x[x[x[0]]]", "{{ ", "x[", "0", "]", " }}"},
        {"{% if %} nested", "", "{% if true %}", "x", "{% endif %}", ""},
        {"{% for %} nested", "", "{% for i in [1] %}", "x", "{% endfor %}", ""},
        {"{% macro %} nested", "", "{% macro m() %}", "x", "{% endmacro %}", ""},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        str b = {0};
        add(&b, shapes[i].pre);
        addn(&b, shapes[i].open, 5000);
        add(&b, shapes[i].mid);
        addn(&b, shapes[i].close, 5000);
        add(&b, shapes[i].post);
        hostile(shapes[i].what, stack, b.s, "{\"x\": [0]}", NULL, TMPL_ERR_SYNTAX, TMPL_ERR_LIMIT);
        free(b.s);
    }
}

/* Trees the parser builds without recursing (left-deep operators, filter chains) that the
 * evaluator then walks recursively. */
static void case_eval_chains(size_t stack) {
    static const struct {
        const char *what, *pre, *rep, *post;
    } shapes[] = {
        {"1 + 1 + ... (left-deep)", "{{ 1", " + 1", " }}"},
        {"'a'|upper|upper|...", "{{ 'a'", "|upper", " }}"},
        {"{% filter upper|upper|... %}", "{% filter upper", "|upper", " %}x{% endfilter %}"},
        {"{% set x | upper|... %}", "{% set x | upper", "|upper", " %}x{% endset %}{{ x }}"},
        {"map('map', 'map', ...)", "{{ ['ab']|map(", "'map', ", "'upper')|list }}"},
        {"x.a.a.a...", "{{ x", ".a", " }}"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        str b = {0};
        add(&b, shapes[i].pre);
        addn(&b, shapes[i].rep, 5000);
        add(&b, shapes[i].post);
        hostile(shapes[i].what, stack, b.s, "{\"x\": {}}", NULL, TMPL_ERR_LIMIT, TMPL_ERR_UNDEFINED);
        free(b.s);
    }
}

/* Values nested thousands deep, built by a loop (no deep recursion to build them), then printed,
 * dumped, compared and hashed: format.c and value.c's recursion. */
static void case_values(size_t stack) {
    static const char *const build[] = {
        "{% set ns = namespace(x=1, y=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
        "{% set ns.y = [ns.y] %}{% endfor %}",
        "{% set ns = namespace(x=1, y=1) %}{% for i in range(5000) %}{% set ns.x = {'k': ns.x} %}"
        "{% set ns.y = {'k': ns.y} %}{% endfor %}",
        "{% set ns = namespace(x=1, y=1) %}{% for i in range(5000) %}{% set ns.x = (ns.x,) %}"
        "{% set ns.y = (ns.y,) %}{% endfor %}",
    };
    static const struct {
        const char *what, *use;
    } uses[] = {
        {"tojson", "{{ ns.x|tojson }}"},
        {"tojson(indent=2)", "{{ ns.x|tojson(indent=2) }}"},
        {"pprint", "{{ ns.x|pprint }}"},
        {"str()", "{{ ns.x }}"},
        {"repr in a list", "{{ [ns.x]|string }}"},
        {"==", "{{ ns.x == ns.y }}"},
        {"<", "{{ ns.x < ns.y }}"},
        {"sort", "{{ [ns.x, ns.y]|sort|length }}"},
        {"unique", "{{ [ns.x, ns.y]|unique|list|length }}"},
        {"in", "{{ ns.x in [ns.y] }}"},
        {"dict key", "{{ {ns.x: 1}|length }}"},
        {"'%s' %", "{{ '%s' % [ns.x] }}"},
        {"format()", "{{ '{}'.format(ns.x) }}"},
    };
    for (size_t i = 0; i < sizeof build / sizeof build[0]; i++)
        for (size_t j = 0; j < sizeof uses / sizeof uses[0]; j++) {
            str b = {0};
            char what[64];
            add(&b, build[i]);
            add(&b, uses[j].use);
            snprintf(what, sizeof what, "deep %s: %s", i == 0 ? "list" : i == 1 ? "dict" : "tuple", uses[j].what);
            hostile(what, stack, b.s, NULL, NULL, TMPL_ERR_LIMIT, TMPL_ERR_TYPE);
            free(b.s);
        }
}

/* ---------------------------------------------------------------- JSON inputs */

static char *deep_json(const char *pre, int depth, const char *post) {
    str b = {0};
    add(&b, pre);
    addn(&b, "[", depth);
    addn(&b, "]", depth);
    add(&b, post);
    return b.s;
}

static const cJSON *g_deep_cjson; /* built on the main thread: cJSON's own parser recurses */

static void case_json(size_t stack) {
    static const int depths[] = {100, 400, 100000};
    for (int i = 0; i < 3; i++) {
        char *vars = deep_json("{\"x\": ", depths[i], "}"), what[64];
        snprintf(what, sizeof what, "JSON vars %d deep, length", depths[i]);
        hostile(what, stack, "{{ x|length }}", vars, NULL, TMPL_ERR_INPUT, TMPL_ERR_INPUT);
        snprintf(what, sizeof what, "JSON vars %d deep, tojson", depths[i]);
        hostile(what, stack, "{{ x|tojson }}", vars, NULL, TMPL_ERR_INPUT, TMPL_ERR_LIMIT);
        free(vars);
        /* the chat path: messages as JSON text, and as cJSON */
        char *msgs = deep_json("[", depths[i], "]");
        tmpl_template *t = NULL;
        tmpl_error e;
        char *out = NULL;
        size_t n;
        CHECK(tmpl_compile("{{ messages|length }}", strlen("{{ messages|length }}"), &t, NULL) == 0);
        tmpl_chat_args a = {.messages_json = msgs};
        snprintf(what, sizeof what, "messages text %d deep", depths[i]);
        int rc = tmpl_render_chat(t, &a, NULL, &out, &n, &e);
        outcome(what, stack, rc, &e, out, TMPL_ERR_INPUT, TMPL_ERR_INPUT);
        free(out);
        out = NULL;
        if (g_deep_cjson) {
            tmpl_chat_args c = {.messages = g_deep_cjson};
            rc = tmpl_render_chat(t, &c, NULL, &out, &n, &e);
            outcome("messages cJSON 900 deep", stack, rc, &e, out, TMPL_ERR_INPUT, TMPL_ERR_INPUT);
            free(out);
        }
        tmpl_free(t);
        free(msgs);
    }
}

/* ---------------------------------------------------------------- tokenizer.json */

/* A BPE tokenizer whose normalizer, pre-tokenizer and decoder are each `depth` Sequences deep. */
static char *nested_tokenizer(int depth) {
    str b = {0};
    add(&b, "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]},");
    add(&b, "\"normalizer\":");
    addn(&b, "{\"type\":\"Sequence\",\"normalizers\":[", depth);
    add(&b, "{\"type\":\"Lowercase\"}");
    addn(&b, "]}", depth);
    add(&b, ",\"pre_tokenizer\":");
    addn(&b, "{\"type\":\"Sequence\",\"pretokenizers\":[", depth);
    add(&b, "{\"type\":\"WhitespaceSplit\"}");
    addn(&b, "]}", depth);
    add(&b, ",\"decoder\":");
    addn(&b, "{\"type\":\"Sequence\",\"decoders\":[", depth);
    add(&b, "{\"type\":\"Fuse\"}");
    addn(&b, "]}", depth);
    add(&b, "}");
    return b.s;
}

static void case_tokenizer(size_t stack) {
    static const int depths[] = {3, 9, 10, 150, 5000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        char *j = nested_tokenizer(depths[i]);
        tok_tokenizer *t = NULL;
        int rc = tok_load_mem(j, strlen(j), "deep/tokenizer.json", NULL, 0, &t);
        if (verbose)
            printf("  %4zu KiB  tokenizer.json Sequences %-9d %s\n", stack >> 10, depths[i], rc ? vc_errmsg() : "(loaded)");
        if (rc) {
            CHECK_MSG(!t && strstr(vc_errmsg(), "deep/tokenizer.json"), "depth %d: %s", depths[i], vc_errmsg());
        } else {
            tok_ids ids = {0};
            tok_text txt = {0};
            CHECK(tok_encode(t, "AB ab", 5, 0, &ids) == 0 && ids.n == 2 && ids.ids[0] == 2 && ids.ids[1] == 2);
            int32_t in[] = {0, 1, 2};
            CHECK(tok_decode(t, in, 3, 0, &txt) == 0 && strcmp(txt.s, "abab") == 0);
            tok_ids_free(&ids);
            tok_text_free(&txt);
            tok_free(t);
        }
        if (depths[i] == 3) CHECK_MSG(rc == 0, "3 nested Sequences on %zu KiB: %s", stack >> 10, vc_errmsg());
        free(j);
    }
}

/* ---------------------------------------------------------------- shallow work on a small stack */

static char *g_qwen3_src, *g_qwen3_want;
static const char *CONV =
    "{\"messages\":[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"Hi \\u00e9\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>\\nhmm\\n</think>\\n\\nHello\"},{\"role\":\"user\",\"content\":"
    "\"Q?\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
    "\"add_generation_prompt\":true}";

static char *render_qwen3(void) {
    tmpl_template *t;
    if (tmpl_compile(g_qwen3_src, strlen(g_qwen3_src), &t, NULL)) return NULL;
    tmpl_chat_args a = {.request_json = CONV, .eos_token = "<|im_end|>"};
    char *out = NULL;
    size_t n;
    if (tmpl_render_chat(t, &a, NULL, &out, &n, NULL)) out = NULL;
    tmpl_free(t);
    return out;
}

static void case_shallow(size_t stack) {
    tmpl_error e;
    char *out;
    int rc = render("{% for m in messages %}{{ m.role }}:{{ m.content|upper }}|{% endfor %}{{ x|tojson }}",
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"x\": [[1, {\"a\": [2]}]]}", NULL,
                    &e, &out);
    CHECK_MSG(rc == 0 && !strcmp(out, "user:HI|[[1, {\"a\": [2]}]]"), "%zu KiB: %s", stack >> 10,
              rc ? e.message : out);
    free(out);
    /* some nesting and a recursive macro, as real templates have */
    str b = {0};
    add(&b, "{{ ");
    addn(&b, "(", 8);
    add(&b, "1");
    addn(&b, " + 1)", 8);
    add(&b, " }}{% macro m(k) %}{% if k > 0 %}{{ m(k - 1) }}{% endif %}{{ k }}{% endmacro %}{{ m(5) }}");
    rc = render(b.s, NULL, NULL, &e, &out);
    CHECK_MSG(rc == 0 && !strcmp(out, "9012345"), "%zu KiB: %s", stack >> 10, rc ? e.message : out);
    free(out);
    free(b.s);
    if (g_qwen3_want) {
        char *got = render_qwen3();
        CHECK_MSG(got && !strcmp(got, g_qwen3_want), "qwen3 on %zu KiB differs", stack >> 10);
        free(got);
    }
}

/* ---------------------------------------------------------------- the check itself */

/* Recurse, a few hundred bytes a frame, until the check says low: the depth reached. */
__attribute__((noinline)) static int dive(int d, size_t *left) {
    volatile char pad[200];
    pad[0] = 0;
    if (vc_stack_low()) {
        *left = vc_stack_left();
        return d;
    }
    int r = dive(d + 1, left);
    return r + pad[0]; /* read after the call: each frame stays live, no tail call */
}

static void case_primitive(size_t stack) {
    size_t left = vc_stack_left();
    CHECK_MSG(left != SIZE_MAX, "no stack bounds found on %zu KiB", stack >> 10);
    CHECK_MSG(!stack || left <= stack, "%zu KiB: %zu bytes left", stack >> 10, left);
    CHECK_MSG(!vc_stack_low(), "%zu KiB: low at the top of the thread (%zu left)", stack >> 10, left);
    size_t at = 0;
    int d = dive(0, &at);
    if (verbose)
        printf("  %4zu KiB  %zu KiB left at the top, low after %d frames with %zu KiB left\n", stack >> 10, left >> 10,
               d, at >> 10);
    CHECK(d > 0 && at > 0 && at < left);
    CHECK(at <= ((size_t)256 << 10)); /* never more than the largest reserve */
}

static void check_cost(void) {
    struct timespec t0, t1;
    int low = 0;
    const int n = 10000000;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) low += vc_stack_low();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
    printf("vc_stack_low: %.2f ns per call\n", ns);
    CHECK(low == 0);
    CHECK_MSG(ns < 100, "vc_stack_low costs %.1f ns", ns); /* a few ns; generous for sanitizers */
}

int main(void) {
    verbose = getenv("TEST_STACK_VERBOSE") != NULL;
    size_t len;
    if (vc_read_file("tests/data/chat_templates/qwen3_0.6b.jinja", 1 << 20, &g_qwen3_src, &len))
        CHECK_MSG(0, "%s", vc_errmsg());
    else
        CHECK((g_qwen3_want = render_qwen3()) != NULL);
    char *deep = deep_json("[", 899, "]");
    cJSON *cj = cJSON_Parse(deep);
    CHECK(cj != NULL);
    g_deep_cjson = cj;
    free(deep);

    static const struct {
        const char *name;
        case_fn fn;
    } cases[] = {
        {"stack bounds", case_primitive},  {"shallow templates", case_shallow},
        {"recursive macro", case_macro},   {"deep syntax", case_parse},
        {"long chains", case_eval_chains}, {"deep values", case_values},
        {"deep JSON input", case_json},    {"nested tokenizer.json", case_tokenizer},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (verbose) printf("%s\n", cases[i].name);
        on_all_stacks(cases[i].fn);
    }
    check_cost();
    cJSON_Delete(cj);
    free(g_qwen3_src);
    free(g_qwen3_want);
    TEST_END();
}
