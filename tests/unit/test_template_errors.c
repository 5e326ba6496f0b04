/* test_template_errors: every error class of the chat-template interpreter (syntax, raise_exception,
 * undefined, type, sandbox security, limits, unsupported, bad input), each with its kind, its
 * template line and a message that says what went wrong; then the chat API around the language
 * (the variables transformers passes, JSON text vs cJSON input, strftime_now) and finding a model's
 * template and special tokens in its folder the way transformers does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "template/template.h"
#include "test.h"

/* Compile + render src with vars; returns the VC code and fills err/out. */
static int run(const char *src, const char *vars, const tmpl_limits *lim, tmpl_error *err, char **out) {
    tmpl_template *t = NULL;
    *out = NULL;
    memset(err, 0, sizeof *err);
    int rc = tmpl_compile(src, strlen(src), &t, err);
    if (rc) return rc;
    size_t n;
    rc = tmpl_render_json(t, vars, vars ? strlen(vars) : 0, lim, out, &n, err);
    tmpl_free(t);
    return rc;
}

static void expect_at(int tl, const char *src, const char *vars, const tmpl_limits *lim, int code, int kind,
                      int line, const char *msg) {
    tmpl_error e;
    char *out;
    int rc = run(src, vars, lim, &e, &out);
    CHECK_MSG(rc == code, "test line %d: rc %d, want %d (%s) for %s", tl, rc, code, vc_errmsg(), src);
    CHECK_MSG(e.kind == kind, "test line %d: kind %d, want %d (%s)", tl, e.kind, kind, e.message);
    CHECK_MSG(line < 0 || e.line == line, "test line %d: line %d, want %d (%s)", tl, e.line, line, e.message);
    CHECK_MSG(!msg || strstr(e.message, msg), "test line %d: message '%s' lacks '%s'", tl, e.message, msg);
    CHECK_MSG(!msg || strstr(vc_errmsg(), msg), "test line %d: vc_errmsg '%s' lacks '%s'", tl, vc_errmsg(), msg);
    if (line > 0) {
        char want[32];
        snprintf(want, sizeof want, "(line %d)", line);
        CHECK_MSG(strstr(vc_errmsg(), want), "test line %d: vc_errmsg '%s' lacks '%s'", tl, vc_errmsg(), want);
    }
    free(out);
}
#define EXPECT(src, vars, lim, code, kind, line, msg) expect_at(__LINE__, src, vars, lim, code, kind, line, msg)
#define SYNTAX(src, line, msg) EXPECT(src, NULL, NULL, VC_EFORMAT, TMPL_ERR_SYNTAX, line, msg)
#define RUNTIME(src, vars, kind, line, msg) EXPECT(src, vars, NULL, VC_EINVAL, kind, line, msg)

static void test_syntax(void) {
    SYNTAX("{% if x %}\nunclosed", 2, "looking for the following tags: 'elif' or 'else' or 'endif'");
    SYNTAX("a\n{% for x in y %}{% else %}\n\n", 3, "'endfor'");
    SYNTAX("{% endif %}", 1, "unknown tag 'endif'");
    SYNTAX("\n\n{% frobnicate %}", 3, "unknown tag 'frobnicate'");
    SYNTAX("{{ 1 + }}", 1, "unexpected token");
    SYNTAX("{{ }}", 1, "Expected an expression");
    SYNTAX("line1\n{{ 'unterminated }}", 2, "unterminated string");
    SYNTAX("{{ (1 }}", 1, "unexpected '}', expected ')'");
    SYNTAX("{{ 1) }}", 1, "unexpected ')'");
    SYNTAX("{{ x | nosuchfilter }}", 1, "No filter named 'nosuchfilter'");
    SYNTAX("{% if x is nosuchtest %}{% endif %}", 1, "No test named 'nosuchtest'");
    SYNTAX("{% break %}", 1, "'break' outside loop");
    SYNTAX("{% macro m() %}{% continue %}{% endmacro %}", 1, "'continue' outside loop");
    SYNTAX("{# never closed", 1, "missing end of comment tag");
    SYNTAX("{% raw %} never closed", 1, "missing end of raw directive");
    SYNTAX("{% set 1 = 2 %}", 1, "can't assign");
    SYNTAX("{{ x is defined is defined }}", 1, "cannot chain multiple tests");
    SYNTAX("{% macro m(a=1, b) %}{% endmacro %}", 1, "non-default argument follows default argument");
    SYNTAX("{{ f(a=1, 2) }}", 1, "invalid syntax for function call");
    SYNTAX("{{ 'a' ! 'b' }}", 1, "unexpected char '!'");
    SYNTAX("{{ \"\\x4\" }}", 1, "truncated \\x escape");
    SYNTAX("{% call m %}{% endcall %}", 1, "expected call");
    SYNTAX("ok\xff\xfe", 0, "not valid UTF-8");
    /* nesting is bounded: no stack overflow on hostile input */
    char deep[3000];
    memset(deep, '(', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    memcpy(deep, "{{ ", 3);
    SYNTAX(deep, 1, "nested too deeply");
    char deep2[2600] = "";
    for (int i = 0; i < 300; i++) strcat(deep2, "{%if 1%}");
    SYNTAX(deep2, 1, "nested too deeply");
}

static void test_runtime(void) {
    RUNTIME("a\n{{ raise_exception('Roles must alternate') }}", NULL, TMPL_ERR_RAISED, 2, "Roles must alternate");
    tmpl_error e;
    char *out;
    run("{% if true %}\n  {{- raise_exception('exact message: ' ~ 42) }}\n{% endif %}", NULL, NULL, &e, &out);
    CHECK_MSG(strcmp(e.message, "exact message: 42") == 0, "raise message: '%s'", e.message);
    CHECK(e.kind == TMPL_ERR_RAISED && e.line == 2);
    CHECK(strstr(vc_errmsg(), "raised an exception (line 2): exact message: 42"));
    /* undefined: a plain undefined prints as "", using it is an error */
    RUNTIME("{{ x.y }}", NULL, TMPL_ERR_UNDEFINED, 1, "'x' is undefined");
    RUNTIME("\n\n{{ msg.content.strip() }}", "{\"msg\": {}}", TMPL_ERR_UNDEFINED, 3, "'dict object' has no attribute 'content'");
    RUNTIME("{{ m[0].role }}", "{\"m\": []}", TMPL_ERR_UNDEFINED, 1, "list object has no element 0");
    RUNTIME("{{ u + 1 }}", NULL, TMPL_ERR_UNDEFINED, 1, "'u' is undefined");
    RUNTIME("{{ u() }}", NULL, TMPL_ERR_UNDEFINED, 1, "'u' is undefined");
    RUNTIME("{{ u|tojson }}", NULL, TMPL_ERR_TYPE, 1, "Object of type Undefined is not JSON serializable");
    RUNTIME("{{ [][0] if true else 1 }}{{ ([]|first).x }}", NULL, TMPL_ERR_UNDEFINED, 1, "No first item");
    EXPECT("{{ u }}{{ u|length }}{{ u is defined }}{% for x in u %}{% endfor %}", NULL, NULL, 0, 0, -1, NULL);
    /* type errors (Python's TypeError / ValueError) */
    RUNTIME("{{ 'a' + 1 }}", NULL, TMPL_ERR_TYPE, 1, "can only concatenate str (not \"int\") to str");
    RUNTIME("{% set x = 1 %}\n{{ x + none }}", NULL, TMPL_ERR_TYPE, 2, "unsupported operand type(s) for +: 'int' and 'NoneType'");
    RUNTIME("{{ 1 / 0 }}", NULL, TMPL_ERR_TYPE, 1, "division by zero");
    RUNTIME("{{ 1 < 'a' }}", NULL, TMPL_ERR_TYPE, 1, "'<' not supported between instances of 'int' and 'str'");
    RUNTIME("{{ 1 in 'abc' }}", NULL, TMPL_ERR_TYPE, 1, "'in <string>' requires string as left operand");
    RUNTIME("{{ [1, 'a']|sort }}", NULL, TMPL_ERR_TYPE, 1, "not supported between instances");
    RUNTIME("{% for a, b in [[1, 2, 3]] %}{% endfor %}", NULL, TMPL_ERR_TYPE, 1, "too many values to unpack");
    RUNTIME("{% for x in 5 %}{% endfor %}", NULL, TMPL_ERR_TYPE, 1, "'int' object is not iterable");
    RUNTIME("{{ 'x'() }}", NULL, TMPL_ERR_TYPE, 1, "'str' object is not callable");
    RUNTIME("{% set x = 5 %}{% set x.a = 1 %}", NULL, TMPL_ERR_TYPE, 1, "non-namespace object");
    RUNTIME("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", NULL, TMPL_ERR_TYPE, 1, "takes not more than 1 argument");
    RUNTIME("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}", NULL, TMPL_ERR_TYPE, 1, "no keyword argument 'b'");
    RUNTIME("{{ 'abc'.index('z') }}", NULL, TMPL_ERR_TYPE, 1, "substring not found");
    RUNTIME("{{ '%d' % 'x' }}", NULL, TMPL_ERR_TYPE, 1, "a real number is required");
    RUNTIME("{{ {}|tojson(indent=[]) }}", NULL, TMPL_ERR_TYPE, 1, "indent");
    RUNTIME("{{ [1]|select('nosuchtest')|list }}", NULL, TMPL_ERR_TYPE, 1, "No test named 'nosuchtest'");
    RUNTIME("{{ {[1]: 2} }}", NULL, TMPL_ERR_TYPE, 1, "unhashable type: 'list'");
    /* the sandbox refuses what transformers' ImmutableSandboxedEnvironment refuses */
    RUNTIME("{% set ns = namespace(l=[]) %}{{ ns.l.append(1) }}", NULL, TMPL_ERR_SECURITY, 1,
            "access to attribute 'append' of 'list' object is unsafe");
    RUNTIME("{{ {}.update({'a': 1}) }}", NULL, TMPL_ERR_SECURITY, 1, "'update'");
    RUNTIME("{{ ''.__class__.__mro__ }}", NULL, TMPL_ERR_SECURITY, 1, "'__class__'");
    EXPECT("{{ [].append }}", NULL, NULL, 0, 0, -1, NULL); /* only using it fails */
    /* not implemented, said so */
    EXPECT("{% include 'x.jinja' %}", NULL, NULL, VC_EUNSUP, TMPL_ERR_UNSUPPORTED, 1, "'include' tag is not supported");
    EXPECT("{% for x in y recursive %}{% endfor %}", NULL, NULL, VC_EUNSUP, TMPL_ERR_UNSUPPORTED, 1, "recursive");
    EXPECT("{{ 2 ** 64 }}", NULL, NULL, VC_EUNSUP, TMPL_ERR_UNSUPPORTED, 1, "integer overflow");
    EXPECT("{{ [1]|groupby('x') }}", NULL, NULL, VC_EUNSUP, TMPL_ERR_UNSUPPORTED, 1, "not supported");
}

static void test_limits(void) {
    tmpl_limits steps = {.max_steps = 100000};
    EXPECT("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL, &steps,
           VC_EINVAL, TMPL_ERR_LIMIT, 1, "step budget");
    tmpl_limits small_out = {.max_output = 1 << 16};
    EXPECT("a\n{% for i in range(100) %}{{ 'x' * 1000 }}{% endfor %}", NULL, &small_out, VC_EINVAL, TMPL_ERR_LIMIT, 2,
           "output exceeded the limit");
    EXPECT("{{ 'x' * 100000000 }}", NULL, &small_out, VC_EINVAL, TMPL_ERR_LIMIT, 1, "limit");
    tmpl_limits mem = {.max_memory = 4 << 20};
    EXPECT("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [[i, i, i, i, i, i, i, i]] %}"
           "{% endfor %}{{ ns.l|length }}", NULL, &mem, VC_EINVAL, TMPL_ERR_LIMIT, 1, "memory limit");
    RUNTIME("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}\n{{ f(0) }}", NULL, TMPL_ERR_LIMIT, 1,
            "maximum macro recursion depth (100)");
    tmpl_limits depth = {.max_depth = 5};
    EXPECT("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}x{% endmacro %}{{ f(10) }}", NULL, &depth, VC_EINVAL,
           TMPL_ERR_LIMIT, 1, "depth (5)");
    EXPECT("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{% endif %}x{% endmacro %}{{ f(4) }}", NULL, &depth, 0, 0, -1, NULL);
    RUNTIME("{{ range(100001)|length }}", NULL, TMPL_ERR_LIMIT, 1, "MAX_RANGE");
    /* linear, not quadratic: 20,000 appends to a namespace list and string within the default budget */
    EXPECT("{% set ns = namespace(l=[], s='') %}{% for i in range(20000) %}{% set ns.l = ns.l + [i] %}"
           "{% set ns.s = ns.s + 'ab' %}{% endfor %}{{ ns.l|length }}{{ ns.s|length }}", NULL, NULL, 0, 0, -1, NULL);
}

static void test_input(void) {
    EXPECT("{{ x }}", "{\"x\": ", NULL, VC_EFORMAT, TMPL_ERR_INPUT, 0, "invalid JSON input");
    EXPECT("{{ x }}", "[1]", NULL, VC_EFORMAT, TMPL_ERR_INPUT, 0, "must be a JSON object");
    EXPECT("{{ x }}", "{\"x\": \"\xc3\x28\"}", NULL, VC_EFORMAT, TMPL_ERR_INPUT, 0, "not valid UTF-8");
    EXPECT("{{ x }}", "{\"x\": 99999999999999999999}", NULL, VC_EFORMAT, TMPL_ERR_INPUT, 0, "64-bit");
    tmpl_template *t;
    CHECK(tmpl_compile("{{ messages|length }}", 21, &t, NULL) == 0);
    char *out = NULL;
    size_t n;
    tmpl_error e;
    tmpl_chat_args a = {.messages_json = "{\"role\": \"user\"}"};
    CHECK(tmpl_render_chat(t, &a, NULL, &out, &n, &e) == VC_EFORMAT && e.kind == TMPL_ERR_INPUT);
    CHECK(strstr(vc_errmsg(), "messages must be a JSON array"));
    a = (tmpl_chat_args){.messages_json = "[]", .kwargs_json = "[1]"};
    CHECK(tmpl_render_chat(t, &a, NULL, &out, &n, &e) == VC_EFORMAT && strstr(e.message, "chat_template_kwargs"));
    a = (tmpl_chat_args){.messages_json = "[]", .bos_token = "\xff"};
    CHECK(tmpl_render_chat(t, &a, NULL, &out, &n, &e) == VC_EFORMAT && strstr(e.message, "bos_token"));
    a = (tmpl_chat_args){.messages_json = "[1, 2,]"};
    CHECK(tmpl_render_chat(t, &a, NULL, &out, &n, &e) == VC_EFORMAT && strstr(e.message, "messages: invalid JSON"));
    tmpl_free(t);
}

static char *chat(const char *src, const tmpl_chat_args *a) {
    tmpl_template *t;
    char *out = NULL;
    size_t n;
    if (tmpl_compile(src, strlen(src), &t, NULL)) return NULL;
    if (tmpl_render_chat(t, a, NULL, &out, &n, NULL)) out = NULL;
    tmpl_free(t);
    return out;
}

#define CHAT_EQ(src, args, want)                                                              \
    do {                                                                                      \
        char *got_ = chat(src, args);                                                         \
        CHECK_MSG(got_ && strcmp(got_, want) == 0, "%s -> [%s], want [%s] (%s)", src,         \
                  got_ ? got_ : "(error)", want, vc_errmsg());                                \
        free(got_);                                                                           \
    } while (0)

static void test_chat_vars(void) {
    const char *probe = "{{ messages|length }}|{{ tools is none }}|{{ documents is none }}|{{ add_generation_prompt }}|"
                        "{{ bos_token is defined }}|{{ eos_token }}|{{ custom }}";
    tmpl_chat_args a = {.messages_json = "[{\"role\": \"user\", \"content\": \"hi\"}]", .eos_token = "</s>",
                        .kwargs_json = "{\"custom\": [1, 2.0]}"};
    CHAT_EQ(probe, &a, "1|True|True|False|False|</s>|[1, 2.0]");
    a.add_generation_prompt = 1;
    a.tools_json = "[{\"type\": \"function\"}]";
    a.bos_token = "<s>";
    CHAT_EQ(probe, &a, "1|False|True|True|True|</s>|[1, 2.0]");
    /* chat_template_kwargs override the other variables, as in transformers */
    a.kwargs_json = "{\"eos_token\": \"E\", \"custom\": null}";
    CHAT_EQ("{{ eos_token }}{{ custom }}", &a, "ENone");
    /* a request object: its fields fill what is not given on its own */
    tmpl_chat_args r = {.request_json = "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], "
                                        "\"tools\": [], \"add_generation_prompt\": true, "
                                        "\"chat_template_kwargs\": {\"enable_thinking\": false}}"};
    CHAT_EQ("{{ messages[0].content }}{{ tools }}{{ add_generation_prompt }}{{ enable_thinking }}", &r, "x[]TrueFalse");
    /* cJSON input: whole numbers become ints (text input keeps 2.0 a float) */
    cJSON *msgs = cJSON_Parse("[{\"role\": \"user\", \"content\": \"c\", \"n\": 2.0, \"f\": 2.5}]");
    cJSON *kw = cJSON_Parse("{\"flag\": true}");
    tmpl_chat_args c = {.messages = msgs, .kwargs = kw};
    CHAT_EQ("{{ messages[0].n }} {{ messages[0].f }} {{ flag }}", &c, "2 2.5 True");
    char *out = NULL;
    size_t n;
    const char *tpl = "{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}"
                      "{% if add_generation_prompt %}>{% endif %}";
    CHECK(tmpl_apply_chat_template(tpl, strlen(tpl), msgs, NULL, kw, 1, "<s>", "</s>", &out, &n) == 0);
    CHECK_MSG(out && strcmp(out, "<s>[user:c]>") == 0, "apply: %s", out ? out : vc_errmsg());
    free(out);
    cJSON_Delete(msgs);
    cJSON_Delete(kw);
    /* strftime_now follows the clock it is given (local time, like datetime.now()) */
    setenv("TZ", "UTC", 1);
    tzset();
    tmpl_chat_args s = {.messages_json = "[]", .now = 1721952000}; /* 2024-07-26 00:00:00 UTC */
    CHAT_EQ("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M') }}", &s, "26 Jul 2024|2024-07-26 00:00");
}

/* ---- tmpl_select_from_config and tmpl_model_load */

static void write_file(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_model_load(void) {
    const char *src;
    cJSON *cfg = cJSON_Parse("{\"chat_template\": [{\"name\": \"default\", \"template\": \"D\"}, "
                             "{\"name\": \"tool_use\", \"template\": \"T\"}, {\"name\": \"rag\", \"template\": \"R\"}]}");
    CHECK(tmpl_select_from_config(cfg, NULL, 0, &src) == 0 && strcmp(src, "D") == 0);
    CHECK(tmpl_select_from_config(cfg, NULL, 1, &src) == 0 && strcmp(src, "T") == 0);
    CHECK(tmpl_select_from_config(cfg, "rag", 1, &src) == 0 && strcmp(src, "R") == 0);
    CHECK(tmpl_select_from_config(cfg, "nope", 0, &src) == VC_EINVAL && strstr(vc_errmsg(), "'nope'"));
    cJSON_Delete(cfg);
    cfg = cJSON_Parse("{\"chat_template\": [{\"name\": \"x\", \"template\": \"X\"}]}");
    CHECK(tmpl_select_from_config(cfg, NULL, 0, &src) == VC_EINVAL && strstr(vc_errmsg(), "none is named 'default'"));
    cJSON_Delete(cfg);
    cfg = cJSON_Parse("{\"chat_template\": \"S\"}");
    CHECK(tmpl_select_from_config(cfg, NULL, 1, &src) == 0 && strcmp(src, "S") == 0);
    cJSON_Delete(cfg);

    char dir[] = "/tmp/vllmc-tmpl-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    tmpl_model m;
    CHECK(tmpl_model_load(dir, NULL, 0, 1, &m) == VC_EINVAL && strstr(vc_errmsg(), "no chat template"));
    CHECK(tmpl_model_load(dir, NULL, 0, 0, &m) == 0 && !m.source && !m.bos_token);
    tmpl_model_free(&m);
    write_file(dir, "tokenizer_config.json",
               "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<s>\", \"lstrip\": false}, "
               "\"eos_token\": \"</s>\", \"unk_token\": null, \"chat_template\": \"from config\"}");
    write_file(dir, "special_tokens_map.json", "{\"pad_token\": \"<pad>\", \"eos_token\": \"ignored\"}");
    CHECK(tmpl_model_load(dir, NULL, 0, 1, &m) == 0);
    CHECK(m.source && strcmp(m.source, "from config") == 0 && strstr(m.origin, "tokenizer_config.json"));
    CHECK(m.bos_token && strcmp(m.bos_token, "<s>") == 0 && m.eos_token && strcmp(m.eos_token, "</s>") == 0);
    CHECK(!m.unk_token && m.pad_token && strcmp(m.pad_token, "<pad>") == 0);
    tmpl_model_free(&m);
    write_file(dir, "chat_template.jinja", "from jinja file");
    CHECK(tmpl_model_load(dir, NULL, 0, 1, &m) == 0 && strcmp(m.source, "from jinja file") == 0);
    tmpl_model_free(&m);
    char path[512];
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    unlink(path);
    write_file(dir, "tokenizer_config.json", "{\"eos_token\": \"</s>\"}");
    write_file(dir, "chat_template.json", "{\"chat_template\": \"from processor file\"}");
    CHECK(tmpl_model_load(dir, NULL, 0, 1, &m) == 0 && strcmp(m.source, "from processor file") == 0);
    tmpl_model_free(&m);
    write_file(dir, "tokenizer_config.json", "{not json");
    CHECK(tmpl_model_load(dir, NULL, 0, 1, &m) == VC_EFORMAT && strstr(vc_errmsg(), "not valid JSON"));
    const char *files[] = {"tokenizer_config.json", "special_tokens_map.json", "chat_template.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    test_syntax();
    test_runtime();
    test_limits();
    test_input();
    test_chat_vars();
    test_model_load();
    TEST_END();
}
