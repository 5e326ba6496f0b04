/* test_toolparse: vLLM's tool-call and reasoning parsers (src/toolparse) on outputs written as the
 * models write them, malformed ones, and the streaming invariants: every recorded output is fed
 * whole, cut at every byte, one and two bytes at a time and at random cuts, and the events must
 * add up to toolp_parse's result without splitting a UTF-8 character. Expected values follow vLLM's
 * parsers (see the comments in the src/toolparse/ files) and Python's json.dumps. */
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/sbuf.h"
#include "test.h"
#include "toolparse/toolparse.h"

#define ALL "\x01" /* expected content: the whole text */
#define MAX_CALLS 8

typedef struct {
    const char *parser;
    const char *text;
    const char *content;   /* NULL: None; ALL: the text */
    const char *reasoning; /* NULL: None */
    const char *calls[2 * MAX_CALLS + 1]; /* name, arguments, ..., NULL */
    int tools_called;      /* -1: as n_calls > 0 says */
} tcase;

/* "NAME/r": the reasoning parser NAME where a tool parser has the same name ("openai"). */
static const toolp_parser *parser(const char *name) {
    size_t l = strlen(name);
    if (l > 2 && !strcmp(name + l - 2, "/r")) {
        char base[32];
        snprintf(base, sizeof base, "%.*s", (int)(l - 2), name);
        return toolp_parser_by_name(TOOLP_KIND_REASONING, base);
    }
    const toolp_parser *p = toolp_parser_by_name(TOOLP_KIND_TOOL, name);
    return p ? p : toolp_parser_by_name(TOOLP_KIND_REASONING, name);
}

static int eq(const char *a, size_t an, const char *b) {
    return (!a && !b) || (a && b && an == strlen(b) && !memcmp(a, b, an));
}

/* Valid UTF-8 made of whole characters. */
static int whole_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

/* ---- streaming: feed `text` in the pieces that `cuts` (sorted offsets) make, check against r ---- */

typedef struct {
    sbuf content, reasoning, name[MAX_CALLS], args[MAX_CALLS];
    int n_calls, bad_order, split_char;
} collected;

static void collect(collected *c, const toolp_event *ev, int n, int utf8) {
    for (int i = 0; i < n; i++) {
        const toolp_event *e = &ev[i];
        if (utf8 && e->kind != TOOLP_EV_CALL && !whole_utf8((const unsigned char *)e->text, e->len)) c->split_char++;
        if (e->kind == TOOLP_EV_CONTENT) sb_raw(&c->content, e->text, e->len);
        else if (e->kind == TOOLP_EV_REASONING) sb_raw(&c->reasoning, e->text, e->len);
        else if (e->kind == TOOLP_EV_CALL) {
            if (e->index != c->n_calls || c->n_calls >= MAX_CALLS) c->bad_order++;
            else sb_raw(&c->name[c->n_calls++], e->text, e->len);
        } else if (e->kind == TOOLP_EV_ARGS) {
            if (e->index >= c->n_calls) c->bad_order++;
            else sb_raw(&c->args[e->index], e->text, e->len);
        }
    }
}

static void collected_free(collected *c) {
    sb_free(&c->content);
    sb_free(&c->reasoning);
    for (int i = 0; i < MAX_CALLS; i++) sb_free(&c->name[i]), sb_free(&c->args[i]);
}

static int same_text(const sbuf *got, const char *want, size_t want_len) {
    return got->n == want_len && (!want_len || !memcmp(got->b, want, want_len));
}

/* 0 when the events add up to r; prints what differs under `how`. */
static int stream_once(const toolp_parser *p, const cJSON *tools, const char *text, size_t n, const size_t *cuts,
                       int n_cuts, const toolp_result *r, const char *how) {
    toolp_stream *s = toolp_stream_new_tools(p, tools);
    collected c;
    memset(&c, 0, sizeof c);
    int utf8 = whole_utf8((const unsigned char *)text, n), fails = 0;
    toolp_event *ev;
    int n_ev;
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        if (toolp_stream_feed(s, text + at, end - at, &ev, &n_ev)) fails++;
        collect(&c, ev, n_ev, utf8);
        at = end;
    }
    if (toolp_stream_finish(s, &ev, &n_ev)) fails++;
    collect(&c, ev, n_ev, utf8);
    if (!same_text(&c.content, r->content, r->content_len)) fails++, fprintf(stderr, "  content differs\n");
    if (!same_text(&c.reasoning, r->reasoning, r->reasoning_len)) fails++, fprintf(stderr, "  reasoning differs\n");
    if (c.n_calls != r->n_calls) fails++, fprintf(stderr, "  %d calls streamed, %d parsed\n", c.n_calls, r->n_calls);
    for (int i = 0; i < c.n_calls && i < r->n_calls; i++) {
        if (!same_text(&c.name[i], r->calls[i].name, r->calls[i].name_len)) fails++, fprintf(stderr, "  name %d\n", i);
        if (!same_text(&c.args[i], r->calls[i].args, r->calls[i].args_len)) fails++, fprintf(stderr, "  args %d\n", i);
    }
    if (c.bad_order) fails++, fprintf(stderr, "  events out of order\n");
    if (c.split_char) fails++, fprintf(stderr, "  a UTF-8 character split\n");
    if (fails) fprintf(stderr, "  (%s: %s streamed %s)\n", p ? toolp_parser_name(p) : "?", how, text);
    collected_free(&c);
    toolp_stream_free(s);
    return fails;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

/* Whole, at every single cut, byte by byte, two bytes at a time, and at random cuts. */
static void check_streaming(const toolp_parser *p, const cJSON *tools, const char *text, size_t n, const toolp_result *r) {
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    int bad = stream_once(p, tools, text, n, NULL, 0, r, "whole");
    for (size_t k = 0; k <= n && !bad; k++) bad += stream_once(p, tools, text, n, &k, 1, r, "in two");
    for (int step = 1; step <= 2 && !bad; step++) {
        int m = 0;
        for (size_t k = (size_t)step; k < n; k += (size_t)step) cuts[m++] = k;
        bad += stream_once(p, tools, text, n, cuts, m, r, step == 1 ? "byte by byte" : "two bytes at a time");
    }
    for (int trial = 0; trial < 20 && !bad && n > 1; trial++) {
        int m = 0;
        for (size_t k = 1; k < n; k++)
            if (rnd() % 5 == 0) cuts[m++] = k;
        bad += stream_once(p, tools, text, n, cuts, m, r, "at random cuts");
    }
    CHECK_MSG(!bad, "streaming %s", text);
    free(cuts);
}

/* tools: the request's tools (JSON) for the parser, NULL: none. */
static void run_case_tools(const tcase *c, const char *tools_json) {
    const toolp_parser *p = parser(c->parser);
    CHECK_MSG(p, "no parser %s", c->parser);
    if (!p) return;
    size_t n = strlen(c->text);
    cJSON *tools = tools_json ? cJSON_Parse(tools_json) : NULL;
    CHECK_MSG(!tools_json || tools, "bad tools JSON: %s", tools_json);
    toolp_result r;
    CHECK(toolp_parse_tools(p, c->text, n, tools, &r) == 0);
    const char *want_content = c->content && !strcmp(c->content, ALL) ? c->text : c->content;
    CHECK_MSG(eq(r.content, r.content_len, want_content), "%s: content [%s] want [%s] for: %s", c->parser,
              r.content ? r.content : "(None)", want_content ? want_content : "(None)", c->text);
    CHECK_MSG(eq(r.reasoning, r.reasoning_len, c->reasoning), "%s: reasoning [%s] want [%s] for: %s", c->parser,
              r.reasoning ? r.reasoning : "(None)", c->reasoning ? c->reasoning : "(None)", c->text);
    int want_calls = 0;
    while (c->calls[2 * want_calls]) want_calls++;
    CHECK_MSG(r.n_calls == want_calls, "%s: %d calls, want %d: %s", c->parser, r.n_calls, want_calls, c->text);
    for (int i = 0; i < r.n_calls && i < want_calls; i++) {
        CHECK_MSG(eq(r.calls[i].name, r.calls[i].name_len, c->calls[2 * i]), "%s: name [%s] want [%s]", c->parser,
                  r.calls[i].name, c->calls[2 * i]);
        CHECK_MSG(eq(r.calls[i].args, r.calls[i].args_len, c->calls[2 * i + 1]), "%s: args [%s] want [%s]",
                  c->parser, r.calls[i].args, c->calls[2 * i + 1]);
    }
    int want_called = c->tools_called >= 0 ? c->tools_called : want_calls > 0;
    CHECK_MSG(r.tools_called == want_called, "%s: tools_called %d: %s", c->parser, r.tools_called, c->text);
    check_streaming(p, tools, c->text, n, &r);
    toolp_result_free(&r);
    cJSON_Delete(tools);
}

static void run_case(const tcase *c) { run_case_tools(c, NULL); }

/* ---- recorded outputs ---- */

static const tcase HERMES[] = {
    /* Qwen2.5-7B-Instruct */
    {"hermes",
     "<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": \"San Francisco, CA, USA\", "
     "\"unit\": \"celsius\"}}\n</tool_call>",
     NULL, NULL, {"get_current_temperature", "{\"location\": \"San Francisco, CA, USA\", \"unit\": \"celsius\"}"}, -1},
    /* text before and between calls, unicode arguments, a float written 1.50 */
    {"hermes",
     "I'll check both cities for you.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"東京\", "
     "\"days\": 3}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", "
     "\"days\": 1.50}}\n</tool_call>",
     "I'll check both cities for you.\n", NULL,
     {"get_weather", "{\"city\": \"東京\", \"days\": 3}", "get_weather", "{\"city\": \"Zürich\", \"days\": 1.5}"}, -1},
    /* compact JSON with escapes: json.dumps re-spaces it and unescapes non-ASCII */
    {"hermes",
     "<tool_call>\n{\"name\":\"send\",\"arguments\":{\"text\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n\",\"n\":-0,"
     "\"x\":1e2,\"ok\":true,\"none\":null,\"nested\":{\"a\":[1,2,{\"b\":\"c\\/d\"}],\"e\":{}}}}\n</tool_call>",
     NULL, NULL,
     {"send", "{\"text\": \"café 😀 \\\"q\\\"\\n\", \"n\": 0, \"x\": 100.0, \"ok\": true, \"none\": null, \"nested\": "
              "{\"a\": [1, 2, {\"b\": \"c/d\"}], \"e\": {}}}"},
     -1},
    /* numbers as Python prints them */
    {"hermes",
     "<tool_call>{\"name\": \"n\", \"arguments\": [1.0, 1e16, 1E15, 1e-5, 0.0001, -0.0, 2.5e-3, 0.30000000000000004, "
     "5e-324, 123456789012345678901234567890, -17, 1E400, -1e400, 9007199254740993, 1.7976931348623157e308]}</tool_call>",
     NULL, NULL,
     {"n", "[1.0, 1e+16, 1000000000000000.0, 1e-05, 0.0001, -0.0, 0.0025, 0.30000000000000004, 5e-324, "
           "123456789012345678901234567890, -17, Infinity, -Infinity, 9007199254740993, 1.7976931348623157e+308]"},
     -1},
    /* text after the calls is dropped; a duplicate key keeps its place and takes the last value */
    {"hermes",
     "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": 1, \"y\": 2, \"x\": 3}, \"name\": \"b\"}\n</tool_call>\n"
     "Let me know if you need anything else.",
     NULL, NULL, {"b", "{\"x\": 3, \"y\": 2}"}, -1},
    /* the last call unclosed at the end of the output still counts */
    {"hermes", "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}", NULL, NULL, {"f", "{}"}, -1},
    /* arguments double-encoded as a string: json.dumps of the string */
    {"hermes", "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}\n</tool_call>", NULL, NULL,
     {"f", "\"{\\\"a\\\": 1}\""}, -1},
    /* nested <tool_call> inside a region: the region runs to the first </tool_call> */
    {"hermes", "x<tool_call>{\"name\": \"f\", \"arguments\": {\"s\": \"<tool_call>\"}}</tool_call>", "x", NULL,
     {"f", "{\"s\": \"<tool_call>\"}"}, -1},
    /* plain answers, markers that never complete */
    {"hermes", "The capital of France is Paris.", ALL, NULL, {NULL}, -1},
    {"hermes", "a <tool_call", ALL, NULL, {NULL}, -1},
    {"hermes", "", ALL, NULL, {NULL}, -1},
    {"hermes", "Ünïcödé ✓ 😀 <tool_", ALL, NULL, {NULL}, -1},
    /* malformed: all of it is content */
    {"hermes", "Sure.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": ", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>\n{\"name\": \"f\", \"arguments\": {a: 1}}\n</tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>\n{\"name\": 7, \"arguments\": {}}\n</tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>\n{\"name\": \"f\"}\n</tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>\n{\"arguments\": {}}\n</tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>\n[{\"name\": \"f\", \"arguments\": {}}]\n</tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call></tool_call>", ALL, NULL, {NULL}, -1},
    {"hermes", "<tool_call>{\"name\": \"f\", \"arguments\": {}} extra</tool_call>", ALL, NULL, {NULL}, -1},
    /* Python's json.loads reads NaN (vLLM would make a call); js_parse refuses it, so content here */
    {"hermes", "<tool_call>{\"name\": \"f\", \"arguments\": NaN}</tool_call>", ALL, NULL, {NULL}, -1},
    /* one good call and one bad: vLLM's all-or-nothing */
    {"hermes",
     "ok <tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"g\", "
     "\"arguments\": {]}\n</tool_call>",
     ALL, NULL, {NULL}, -1},
};

static const tcase LLAMA[] = {
    /* Llama 3.1-8B-Instruct with the JSON tool template */
    {"llama3_json", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}", NULL,
     NULL, {"get_weather", "{\"city\": \"Paris\", \"unit\": \"celsius\"}"}, -1},
    {"llama3_json", "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"query\": \"vLLM tool calling\"}}", NULL,
     NULL, {"search", "{\"query\": \"vLLM tool calling\"}"}, -1},
    {"llama3_json",
     "{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"arguments\": {\"y\": [1, 2], \"z\": "
     "{\"w\": \"ß\"}}}",
     NULL, NULL, {"a", "{\"x\": 1}", "b", "{\"y\": [1, 2], \"z\": {\"w\": \"ß\"}}"}, -1},
    {"llama3_json", "\n\n{\"name\":\"f\",\"parameters\":{\"v\":1.0e0}} trailing words", NULL, NULL, {"f", "{\"v\": 1.0}"},
     -1},
    /* "arguments" wins over "parameters"; null arguments are json.dumps'd as null */
    {"llama3_json", "{\"name\": \"f\", \"parameters\": {\"p\": 1}, \"arguments\": null}", NULL, NULL, {"f", "null"}, -1},
    /* a '{' right after an object is skipped (vLLM's inclusive end index), so the next one read is
     * b's inner {}, which has no name: all content, as in vLLM */
    {"llama3_json", "{\"name\": \"a\", \"parameters\": {}}{\"name\": \"b\", \"parameters\": {}}", ALL, NULL,
     {NULL}, -1},
    {"llama3_json", "{\"name\": \"a\", \"parameters\": {}}{\"name\": \"b\", \"parameters\": 1}", NULL, NULL,
     {"a", "{}"}, -1},
    /* plain answers; text before the JSON keeps it content (see toolp_jsoncalls.c) */
    {"llama3_json", "The weather in Paris is sunny.", ALL, NULL, {NULL}, -1},
    {"llama3_json", "Here you go: {\"name\": \"f\", \"parameters\": {}}", ALL, NULL, {NULL}, -1},
    {"llama3_json", "<|python_tag|>brave_search.call(query=\"weather\")", ALL, NULL, {NULL}, -1},
    {"llama3_json", "<|python_ta", ALL, NULL, {NULL}, -1},
    {"llama3_json", "  ", ALL, NULL, {NULL}, -1},
    /* malformed */
    {"llama3_json", "{\"name\": \"f\", \"parameters\": {\"x\": }", ALL, NULL, {NULL}, -1},
    {"llama3_json", "{\"parameters\": {}}", ALL, NULL, {NULL}, -1},
    {"llama3_json", "{\"name\": \"f\"}", ALL, NULL, {NULL}, -1},
    {"llama3_json", "{\"name\": [\"f\"], \"parameters\": {}}", ALL, NULL, {NULL}, -1},
    {"llama3_json", "{\"name\": \"f\", \"parameters\": {}} and {oops}", ALL, NULL, {NULL}, -1},
    {"llama3_json", "{\"name\": \"f\", \"parameters\": {\"s\": \"unterminated}}", ALL, NULL, {NULL}, -1},
};

static const tcase MISTRAL[] = {
    /* Mistral-7B-Instruct-v0.3 */
    {"mistral",
     "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", "
     "\"format\": \"celsius\"}}]",
     NULL, NULL, {"get_current_weather", "{\"location\": \"Paris, France\", \"format\": \"celsius\"}"}, -1},
    {"mistral",
     "Let me check.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]",
     "Let me check.", NULL, {"a", "{\"x\": 1}", "b", "{}"}, -1},
    /* trailing text: json.loads fails, the "[{...}]" span is read */
    {"mistral", "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"k\": [1]}}] hope that helps", NULL, NULL,
     {"f", "{\"k\": [1]}"}, -1},
    {"mistral", "[TOOL_CALLS] []", NULL, NULL, {NULL}, 1},
    /* Mistral-Small-3.2 / Magistral through a Hugging Face tokenizer: [ARGS] is visible */
    {"mistral",
     "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{\"tz\": \"Europe/Zürich\"}", NULL,
     NULL, {"get_weather", "{\"city\": \"Paris\"}", "get_time", "{\"tz\": \"Europe/Zürich\"}"}, -1},
    {"mistral", "Sure![TOOL_CALLS]get_weather[CALL_ID]abcDEF123[ARGS]{\"city\": \"Zürich\"}", "Sure!", NULL,
     {"get_weather", "{\"city\": \"Zürich\"}"}, -1},
    /* as mistral_common decodes it (no [ARGS]): the name ends at '{'; arguments are verbatim */
    {"mistral", "[TOOL_CALLS]get_weather{\"city\":\"Paris\"}", NULL, NULL, {"get_weather", "{\"city\":\"Paris\"}"}, -1},
    {"mistral", "[TOOL_CALLS]noargs[TOOL_CALLS]f[ARGS]{bad json", NULL, NULL, {"f", "{bad json"}, -1},
    /* plain answers and malformed arrays */
    {"mistral", "Bonjour ! Comment puis-je vous aider ?", ALL, NULL, {NULL}, -1},
    {"mistral", "almost [TOOL_CAL", ALL, NULL, {NULL}, -1},
    {"mistral", "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"a\": 1}", "[{\"name\": \"f\", \"arguments\": {\"a\": 1}",
     NULL, {NULL}, -1},
    {"mistral", "Hm [TOOL_CALLS] [{\"name\": 1, \"arguments\": {}}] ", "Hm [{\"name\": 1, \"arguments\": {}}]", NULL,
     {NULL}, -1},
    {"mistral", "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}][TOOL_CALLS] [{\"name\": \"g\", \"arguments\": {}}]",
     "[{\"name\": \"f\", \"arguments\": {}}][TOOL_CALLS] [{\"name\": \"g\", \"arguments\": {}}]", NULL, {NULL}, -1},
    {"mistral", "[TOOL_CALLS] {\"name\": \"f\", \"arguments\": {}}", "{\"name\": \"f\", \"arguments\": {}}", NULL,
     {NULL}, -1},
};

static const tcase PYTHONIC[] = {
    /* Llama-3.2-3B-Instruct */
    {"pythonic", "[get_weather(city=\"San Francisco\", metric=\"celsius\")]", NULL, NULL,
     {"get_weather", "{\"city\": \"San Francisco\", \"metric\": \"celsius\"}"}, -1},
    {"pythonic",
     "[search(query='vLLM \"paged\" attention', filters={'year': 2023, 'tags': ['llm', \"serving\"], 'exact': True}, "
     "limit=10), get_time(tz=None)]",
     NULL, NULL,
     {"search", "{\"query\": \"vLLM \\\"paged\\\" attention\", \"filters\": {\"year\": 2023, \"tags\": [\"llm\", "
                "\"serving\"], \"exact\": true}, \"limit\": 10}",
      "get_time", "{\"tz\": null}"},
     -1},
    /* strings with escapes, raw and triple-quoted strings, numbers in Python's spellings */
    {"pythonic",
     "[write(path=\"C:\\\\temp\\\\a.txt\", text='line1\\nline2\\t\\u00e9\\x41\\101\\d', raw=r\"\\d+\\.\\w\", "
     "multi=\"\"\"a\\r\nb\"\"\", cat=\"a\" 'b'\n \"\"\"c\"\"\", empty={}, lst=[], f=1.5e3, g=.5, h=0x1F, o=0o17, "
     "b=0b101, big=123456789012345678901234567890, u=1_000, z=000, e=1e-7, p=(\"paren\"))]",
     NULL, NULL,
     {"write", "{\"path\": \"C:\\\\temp\\\\a.txt\", \"text\": \"line1\\nline2\\téAA\\\\d\", \"raw\": "
               "\"\\\\d+\\\\.\\\\w\", \"multi\": \"a\\r\\nb\", \"cat\": \"abc\", \"empty\": {}, \"lst\": [], \"f\": "
               "1500.0, \"g\": 0.5, \"h\": 31, \"o\": 15, \"b\": 5, \"big\": 123456789012345678901234567890, \"u\": "
               "1000, \"z\": 0, \"e\": 1e-07, \"p\": \"paren\"}"},
     -1},
    {"pythonic", "[get_time()]", NULL, NULL, {"get_time", "{}"}, -1},
    {"pythonic", "[a(), b(), c(x=1)]\n", NULL, NULL, {"a", "{}", "b", "{}", "c", "{\"x\": 1}"}, -1},
    {"pythonic", "[f(a=1,  # the first\n  b=[1,\n 2],), g()]  # done\n", NULL, NULL,
     {"f", "{\"a\": 1, \"b\": [1, 2]}", "g", "{}"}, -1},
    {"pythonic", "[f(d={'a': 1, 'b': 2, 'a': 3}, k={1: 'x', 2.5: 'y', None: 'z', False: 'w'})]", NULL, NULL,
     {"f", "{\"d\": {\"a\": 3, \"b\": 2}, \"k\": {\"1\": \"x\", \"2.5\": \"y\", \"null\": \"z\", \"false\": \"w\"}}"}, -1},
    {"pythonic", "[f(s='日本語 ✓', t=\"\\U0001F600\\0\")]", NULL, NULL,
     {"f", "{\"s\": \"日本語 ✓\", \"t\": \"😀\\u0000\"}"}, -1},
    {"pythonic", "[f(big=0x" "ffffffffffffffffffffffffffffffff)]", NULL, NULL,
     {"f", "{\"big\": 340282366920938463463374607431768211455}"}, -1},
    /* vLLM's content: not a list of calls of literals */
    {"pythonic", "I will call [f(a=1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(x=-1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=1)]\nDone.", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=1)", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=g())]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=b\"x\")]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=f\"x\")]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=1j)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=...)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=(1, 2))]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a={1, 2})]", ALL, NULL, {NULL}, -1},
    /* ast.parse accepts a repeated keyword (only the compiler refuses it): a dict's last value */
    {"pythonic", "[f(a=1, b=2, a=3)]", NULL, NULL, {"f", "{\"a\": 3, \"b\": 2}"}, -1},
    /* positional arguments are ignored */
    {"pythonic", "[f(a=1), g(x, 'y', *z, b=[2])]", NULL, NULL, {"f", "{\"a\": 1}", "g", "{\"b\": [2]}"}, -1},
    {"pythonic", "[f(a=1), g(h(1))]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=1, 2)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(if=1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=01)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a='unterminated)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a='\\N{BULLET}')]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a='\\ud800')]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=x)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f(a=1), 2]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[obj.f(a=1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[]", ALL, NULL, {NULL}, -1},
    /* the regex's own shape: a space after '(' or before '=' in the first call */
    {"pythonic", "[f( a=1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[\n f(a=1)]", ALL, NULL, {NULL}, -1},
    {"pythonic", "[f() , g()]", ALL, NULL, {NULL}, -1},
};

static const tcase REASONING[] = {
    /* DeepSeek-R1 with <think> in the output, and the newer template's output without it */
    {"deepseek_r1", "<think>\nThe user asks 2+2. That's 4.\n</think>\n\nThe answer is **4**.", "\n\nThe answer is **4**.",
     "\nThe user asks 2+2. That's 4.\n", {NULL}, 0},
    {"deepseek_r1", "Okay, let me think… 日本語で考える。</think>Final: 42", "Final: 42", "Okay, let me think… 日本語で考える。",
     {NULL}, 0},
    {"deepseek_r1", "Just an answer.", NULL, "Just an answer.", {NULL}, 0},
    {"deepseek_r1", "<think>abc</think>", NULL, "abc", {NULL}, 0},
    {"deepseek_r1", "<think>still thinking <thi", NULL, "still thinking <thi", {NULL}, 0},
    {"deepseek_r1", "x<think>r</think>c", "c", "xr", {NULL}, 0},
    {"deepseek_r1", "a</think>b<think>c</think>", "b<think>c</think>", "a", {NULL}, 0},
    {"deepseek_r1", "", NULL, "", {NULL}, 0},
    {"deepseek_r1", "<think></think>", NULL, "", {NULL}, 0},
    /* Qwen3 with thinking, with enable_thinking=False (the template holds the empty pair), unfinished */
    {"qwen3", "<think>\nLet me compute 6*7.\n</think>\n\n42", "\n\n42", "\nLet me compute 6*7.\n", {NULL}, 0},
    {"qwen3", "Hello! How can I help?", ALL, NULL, {NULL}, 0},
    {"qwen3", "<think>\n\n</think>\n\nHello!", "\n\nHello!", "\n\n", {NULL}, 0},
    {"qwen3", "reasoning without a start</think>answer", ALL, NULL, {NULL}, 0},
    {"qwen3", "<think>cut by max_tokens — ünïcode", NULL, "cut by max_tokens — ünïcode", {NULL}, 0},
    {"qwen3", "pre<think>r</think>post", "prepost", "r", {NULL}, 0},
    {"qwen3", "<think>r</think>", NULL, "r", {NULL}, 0},
    {"qwen3", "a <thin", ALL, NULL, {NULL}, 0},
    {"qwen3", "", ALL, NULL, {NULL}, 0},
};

/* gpt-oss's harmony format (toolp_harmony.c): "openai" the tool parser, "openai/r" the reasoning parser.
 * The outputs are the model's text with the special tokens kept, as the server decodes them for these
 * parsers; the last stop token (<|call|>, <|return|>) is not in the text. The reasoning-parser cases
 * are vLLM's own tests of parse_chat_output (tests/entrypoints/test_harmony_utils.py). */
#define H_A "<|channel|>analysis<|message|>"
#define H_NEXT "<|end|><|start|>assistant"
static const tcase HARMONY[] = {
    {"openai", H_A "Need the weather in Paris." H_NEXT "<|channel|>commentary to=functions.get_weather <|constrain|>json"
               "<|message|>{\"city\":\"Paris\",\"unit\":\"c\"}",
     NULL, "Need the weather in Paris.", {"get_weather", "{\"city\": \"Paris\", \"unit\": \"c\"}"}, -1},
    {"openai", H_A "2+2 is 4." H_NEXT "<|channel|>final<|message|>The answer is 4.", "The answer is 4.", "2+2 is 4.",
     {NULL}, -1},
    /* the recipient before the channel, the content type as a bare word, non-ASCII escaped as Python's json.dumps */
    {"openai", "<|start|>assistant to=functions.f<|channel|>commentary json<|message|>{\"a\": \"\u00e9\xf0\x9f\x98\x80\", \"n\": [1.50, 2e3]}",
     NULL, NULL, {"f", "{\"a\": \"\\u00e9\\ud83d\\ude00\", \"n\": [1.5, 2000.0]}"}, -1},
    /* arguments that are not JSON pass as written; a non-JSON content type too */
    {"openai", "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{not json", NULL, NULL,
     {"f", "{not json"}, -1},
    {"openai", "<|channel|>commentary to=functions.run code<|message|>print(1)", NULL, NULL, {"run", "print(1)"}, -1},
    /* a preamble: dropped by the tool parser (vLLM keeps only "final"); two calls */
    {"openai", "<|channel|>commentary<|message|>Let me check." H_NEXT " to=functions.a<|channel|>commentary<|message|>{}"
               "<|call|><|start|>assistant to=functions.b<|channel|>commentary<|message|>{\"x\":true}",
     NULL, NULL, {"a", "{}", "b", "{\"x\": true}"}, -1},
    {"openai", H_A "a" H_NEXT "<|channel|>analysis<|message|>b" H_NEXT "<|channel|>final<|message|>c<|return|>", "c",
     "a\nb", {NULL}, -1},
    /* a built-in tool (not functions.*) is dropped; an unfinished header counts nothing */
    {"openai", "<|channel|>analysis to=browser.search<|message|>{\"q\": 1}" H_NEXT "<|channel|>final<|message|>x", "x",
     NULL, {NULL}, -1},
    {"openai", H_A "r" H_NEXT "<|chan", NULL, "r", {NULL}, -1},
    {"openai", H_A "\xc3\xa9t\xc3\xa9 <|en", NULL, "\xc3\xa9t\xc3\xa9 <|en", {NULL}, -1},
    {"openai", "Just text, no harmony.", ALL, NULL, {NULL}, -1},
    {"openai", "", ALL, NULL, {NULL}, -1},
    {"openai/r", "<|channel|>final<|message|>I'm in the middle of answering", "I'm in the middle of answering", NULL,
     {NULL}, 0},
    {"openai/r", H_A "I'm in the middle of thinking", NULL, "I'm in the middle of thinking", {NULL}, 0},
    {"openai/r", H_A "I'm thinking." H_NEXT "<|channel|>final<|message|>I'm in the middle of answering",
     "I'm in the middle of answering", "I'm thinking.", {NULL}, 0},
    {"openai/r", "<|channel|>commentary<|message|>I need to call some tools.<|end|>", "I need to call some tools.", NULL,
     {NULL}, 0},
    {"openai/r", "<|channel|>commentary<|message|>Let me check the weather." H_NEXT
                 " to=functions.get_weather<|channel|>commentary<|message|>{\"location\": \"SF\"}<|end|>",
     "Let me check the weather.", NULL, {NULL}, 0},
    {"openai/r", "<|channel|>commentary<|message|>Let me look that up." H_NEXT "<|channel|>final<|message|>The answer is 42.<|end|>",
     "Let me look that up.\nThe answer is 42.", NULL, {NULL}, 0},
};

/* Qwen3-Coder (qwen3_coder, qwen3_xml): values typed by the request's tool schema */
#define Q_TOOLS                                                                                                     \
    "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\", "      \
    "\"properties\": {\"city\": {\"type\": \"string\"}, \"days\": {\"type\": \"integer\"}, \"temp\": {\"type\": "      \
    "\"number\"}, \"metric\": {\"type\": \"boolean\"}, \"opts\": {\"type\": \"object\"}, \"tags\": {\"type\": "       \
    "\"array\"}, \"when\": {\"type\": \"custom\"}, \"note\": {\"description\": \"no type\"}}}}}, "                      \
    "{\"type\": \"function\", \"function\": {\"name\": \"write_file\", \"parameters\": {\"type\": \"object\", "        \
    "\"properties\": {\"path\": {\"type\": \"string\"}, \"content\": {\"type\": \"string\"}}}}}]"
#define Q_PARAM(k, v) "<parameter=" k ">\n" v "\n</parameter>\n"
#define Q_CALL(f, params) "<tool_call>\n<function=" f ">\n" params "</function>\n</tool_call>"

static const tcase QWEN3_CODER[] = {
    /* Qwen3-Coder-30B-A3B-Instruct's shape: text, then the call */
    {"qwen3_coder", "I'll check the weather in Paris for you.\n" Q_CALL("get_weather", Q_PARAM("city", "Paris") Q_PARAM("days", "3")),
     "I'll check the weather in Paris for you.\n", NULL, {"get_weather", "{\"city\": \"Paris\", \"days\": 3}", NULL}, -1},
    /* two calls; a value with newlines, quotes, code and non-ASCII text kept as written */
    {"qwen3_coder",
     Q_CALL("write_file", Q_PARAM("path", "src/main.py") Q_PARAM("content", "def main():\n    print(\"héllo ✓\")\n\n"))
         "\n" Q_CALL("get_weather", Q_PARAM("city", "São Paulo")),
     NULL, NULL,
     {"write_file", "{\"path\": \"src/main.py\", \"content\": \"def main():\\n    print(\\\"héllo ✓\\\")\\n\\n\"}",
      "get_weather", "{\"city\": \"São Paulo\"}", NULL}, -1},
    /* every conversion: int (whitespace, '_'), number (an int when integral, exponents), bool, null for
     * any type, object by json.loads, array by ast.literal_eval, a custom type by literal_eval, no type
     * and an unknown parameter as strings */
    {"qwen3_coder",
     Q_CALL("get_weather", Q_PARAM("days", " 1_000 ") Q_PARAM("temp", "21.5") Q_PARAM("metric", "True")
            Q_PARAM("opts", "{\"unit\": \"c\", \"hours\": [6, 12.0]}") Q_PARAM("tags", "['rain', (1, None)]")
            Q_PARAM("when", "-3") Q_PARAM("note", "7") Q_PARAM("extra", "[1]") Q_PARAM("city", "NULL")),
     NULL, NULL,
     {"get_weather", "{\"days\": 1000, \"temp\": 21.5, \"metric\": true, \"opts\": {\"unit\": \"c\", \"hours\": [6, 12.0]}, "
                     "\"tags\": [\"rain\", [1, null]], \"when\": -3, \"note\": \"7\", \"extra\": \"[1]\", \"city\": null}", NULL},
     -1},
    {"qwen3_coder",
     Q_CALL("get_weather", Q_PARAM("temp", "20.0") Q_PARAM("days", "three") Q_PARAM("metric", "yes")
            Q_PARAM("temp", "1e22") Q_PARAM("opts", "{'a': 1}") Q_PARAM("tags", "not a list")),
     NULL, NULL,
     {"get_weather", "{\"temp\": 10000000000000000000000, \"days\": \"three\", \"metric\": false, \"opts\": {\"a\": 1}, "
                     "\"tags\": \"not a list\"}", NULL}, -1},
    /* float() gives inf or nan: int() of it raises, the string stays; a float that is not integral */
    {"qwen3_coder", Q_CALL("get_weather", Q_PARAM("temp", "inf") Q_PARAM("days", "-0") Q_PARAM("when", "1e400")
                                              Q_PARAM("metric", "false")),
     NULL, NULL, {"get_weather", "{\"temp\": \"inf\", \"days\": 0, \"when\": Infinity, \"metric\": false}", NULL}, -1},
    {"qwen3_coder", Q_CALL("get_weather", Q_PARAM("temp", " -2.5e-3")), NULL, NULL, {"get_weather", "{\"temp\": -0.0025}", NULL}, -1},
    /* without the <tool_call> wrapper; content then ends at "<function=" */
    {"qwen3_coder", "Here:\n<function=get_weather>\n<parameter=city>\nRome\n</parameter>\n</function>", "Here:\n", NULL,
     {"get_weather", "{\"city\": \"Rome\"}", NULL}, -1},
    /* cut mid-call (max_tokens): the open call to the end, its value to the end less a final "\n" */
    {"qwen3_coder", "Sure. <tool_call>\n<function=get_weather>\n<parameter=city>\nPar\n", "Sure. ", NULL,
     {"get_weather", "{\"city\": \"Par\"}", NULL}, -1},
    /* a parameter without </parameter> ends at the next one; text between calls is dropped */
    {"qwen3_coder",
     "<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n<parameter=days>\n2\n</function>\n</tool_call>\nthen\n" Q_CALL("get_weather", ""),
     NULL, NULL, {"get_weather", "{\"city\": \"Oslo\", \"days\": 2}", "get_weather", "{}", NULL}, -1},
    /* malformed: a function name without '>' makes the whole output content */
    {"qwen3_coder", "Let me call it.\n<tool_call>\n<function=get_weather\n</function>\n</tool_call>", ALL, NULL, {NULL}, 0},
    {"qwen3_coder", Q_CALL("get_weather", "<parameter=city\nParis\n</parameter>\n"), ALL, NULL, {NULL}, 0},
    /* a set (or bytes) json.dumps refuses: the whole output is content */
    {"qwen3_coder", "x" Q_CALL("get_weather", Q_PARAM("tags", "{1, 2}")), ALL, NULL, {NULL}, 0},
    /* no "<function=": content, even with <tool_call> */
    {"qwen3_coder", "<tool_call>\n{\"name\": \"get_weather\"}\n</tool_call>", ALL, NULL, {NULL}, 0},
    {"qwen3_coder", "Just an answer: 1 < 2 and <tool ok. Voilà ✓", ALL, NULL, {NULL}, 0},
    /* UTF-8 before the call streams whole characters */
    {"qwen3_coder", "Météo ✓ 🌧" Q_CALL("get_weather", Q_PARAM("city", "Zürich")), "Météo ✓ 🌧", NULL,
     {"get_weather", "{\"city\": \"Zürich\"}", NULL}, -1},
    /* qwen3_xml: the same parser */
    {"qwen3_xml", "ok" Q_CALL("get_weather", Q_PARAM("days", "4")), "ok", NULL, {"get_weather", "{\"days\": 4}", NULL}, -1},
};

static const tcase QWEN3_CODER_NO_TOOLS[] = {
    /* no tools in the request: every value a string */
    {"qwen3_coder", Q_CALL("get_weather", Q_PARAM("days", "3") Q_PARAM("city", "null")), NULL, NULL,
     {"get_weather", "{\"days\": \"3\", \"city\": null}", NULL}, -1},
};

#define RUN(table)                                                        \
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) run_case(&table[i])

static void test_names(void) {
    CHECK(parser("hermes") && toolp_parser_kind(parser("hermes")) == TOOLP_KIND_TOOL);
    CHECK(toolp_parser_by_name(TOOLP_KIND_TOOL, "llama4_json") != NULL);
    CHECK(parser("qwen3_coder") && parser("qwen3_xml") && strstr(toolp_parser_names(TOOLP_KIND_TOOL), "qwen3_coder"));
    CHECK(toolp_parser_by_name(TOOLP_KIND_TOOL, "qwen3") == NULL);
    CHECK(toolp_parser_by_name(TOOLP_KIND_TOOL, "openai") != toolp_parser_by_name(TOOLP_KIND_REASONING, "openai"));
    CHECK(toolp_parser_splits_reasoning(parser("openai")) && !toolp_parser_splits_reasoning(parser("openai/r")) &&
          !toolp_parser_splits_reasoning(parser("hermes")));
    CHECK(toolp_parser_by_name(TOOLP_KIND_REASONING, "qwen3") && !strcmp(toolp_parser_name(parser("qwen3")), "qwen3"));
    CHECK(toolp_parser_by_name(TOOLP_KIND_TOOL, "nope") == NULL && toolp_parser_by_name(TOOLP_KIND_TOOL, NULL) == NULL);
    CHECK(strstr(toolp_parser_names(TOOLP_KIND_TOOL), "pythonic") && strstr(toolp_parser_names(TOOLP_KIND_REASONING), "deepseek_r1"));
}

/* Inputs built rather than written: limits of Python that vLLM hits (int digits, nesting). */
static void test_limits(void) {
    sbuf b = {0};
    /* 4300 digits print; 4301 make Python raise, so the call is content */
    for (int digits = 4300; digits <= 4301; digits++) {
        b.n = 0;
        sb_str(&b, "<tool_call>{\"name\": \"f\", \"arguments\": [");
        for (int i = 0; i < digits; i++) sb_raw(&b, i ? "7" : "1", 1);
        sb_str(&b, "]}</tool_call>");
        toolp_result r;
        CHECK(toolp_parse(parser("hermes"), b.b, b.n, &r) == 0);
        CHECK(r.n_calls == (digits == 4300));
        toolp_result_free(&r);
    }
    toolp_result r;
    /* pythonic: 199 nested lists inside the call's 2 brackets parse; one more is Python's limit */
    for (int depth = 198; depth <= 199; depth++) {
        b.n = 0;
        sb_str(&b, "[f(a=");
        for (int i = 0; i < depth; i++) sb_raw(&b, "[", 1);
        for (int i = 0; i < depth; i++) sb_raw(&b, "]", 1);
        sb_str(&b, ")]");
        CHECK(toolp_parse(parser("pythonic"), b.b, b.n, &r) == 0);
        CHECK_MSG(r.n_calls == (depth == 198), "depth %d: %d calls", depth, r.n_calls);
        toolp_result_free(&r);
    }
    /* Python refuses source with a NUL byte: content */
    CHECK(toolp_parse(parser("pythonic"), "[f(a=1)]\0", 9, &r) == 0 && r.n_calls == 0 && r.content_len == 9);
    toolp_result_free(&r);
    /* JSON nested past js_parse's limit is content, not a crash */
    b.n = 0;
    sb_str(&b, "<tool_call>{\"name\": \"f\", \"arguments\": ");
    for (int i = 0; i < 100000; i++) sb_raw(&b, "[", 1);
    CHECK(toolp_parse(parser("hermes"), b.b, b.n, &r) == 0 && r.n_calls == 0 && r.content_len == b.n);
    toolp_result_free(&r);
    /* a long output streamed in tokens of 3 bytes: linear, and equal */
    b.n = 0;
    sb_str(&b, "<think>");
    for (int i = 0; i < 20000; i++) sb_str(&b, "thinking ✓ ");
    sb_str(&b, "</think>done");
    const toolp_parser *p = parser("deepseek_r1");
    CHECK(toolp_parse(p, b.b, b.n, &r) == 0);
    size_t m = 0, *cuts = malloc(b.n / 3 * sizeof *cuts);
    for (size_t k = 3; k < b.n; k += 3) cuts[m++] = k;
    CHECK(stream_once(p, NULL, b.b, b.n, cuts, (int)m, &r, "in 3-byte pieces") == 0);
    free(cuts);
    toolp_result_free(&r);
    sb_free(&b);
}

static void test_stream_api(void) {
    toolp_stream *s = toolp_stream_new(parser("hermes"));
    toolp_event *ev;
    int n;
    CHECK(toolp_stream_feed(s, "Hi <tool", 8, &ev, &n) == 0 && n == 1 && ev[0].kind == TOOLP_EV_CONTENT && ev[0].len == 3);
    CHECK(toolp_stream_feed(s, "_call>{\"name\": \"f\", \"arguments\": {}}", 36, &ev, &n) == 0 && n == 0);
    CHECK(toolp_stream_finish(s, &ev, &n) == 0 && n == 2 && ev[0].kind == TOOLP_EV_CALL && ev[0].index == 0 &&
          ev[1].kind == TOOLP_EV_ARGS && ev[1].len == 2);
    CHECK(toolp_stream_feed(s, "x", 1, &ev, &n) == VC_EINVAL);
    toolp_stream_free(s);
    toolp_stream_free(NULL);
    toolp_result r = {0};
    toolp_result_free(&r);
}

int main(void) {
    test_names();
    RUN(HERMES);
    RUN(LLAMA);
    RUN(MISTRAL);
    RUN(PYTHONIC);
    RUN(REASONING);
    RUN(HARMONY);
    for (size_t i = 0; i < sizeof QWEN3_CODER / sizeof *QWEN3_CODER; i++) run_case_tools(&QWEN3_CODER[i], Q_TOOLS);
    RUN(QWEN3_CODER_NO_TOOLS);
    test_limits();
    test_stream_api();
    TEST_END();
}
