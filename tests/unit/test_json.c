/* test_json: js_parse against Python's json.loads rules (messages and places included), duplicate
 * keys, U+0000 through sbuf and back, exact integers, the depth limit and huge inputs, every
 * truncation of a few documents, allocation failure at every allocation, and the same trees as cJSON
 * on valid documents (hand-written and random). Run under ASan it also checks that nothing leaks. */
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/json.h"
#include "base/sbuf.h"
#include "test.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static cJSON *parse_z(const char *z, js_error *e) { return js_parse(z, strlen(z), e); }

/* Parsing `z` fails with a message that starts with `msg` (when not NULL). */
static void expect_fail(const char *z, size_t len, const char *msg, int line) {
    js_error e;
    cJSON *j = js_parse(z, len, &e);
    CHECK_MSG(!j, "line %d: parsed", line);
    CHECK_MSG(!msg || strncmp(e.message, msg, strlen(msg)) == 0, "line %d: message '%s', want '%s'", line,
              e.message, msg);
    cJSON_Delete(j);
}
#define FAIL(z, msg) expect_fail(z, strlen(z), msg, __LINE__)

static void test_python_messages(void) {
    static const struct {
        const char *in, *msg;
    } cases[] = {
        {"", "Expecting value: line 1 column 1 (char 0)"},
        {"  ", "Expecting value: line 1 column 3 (char 2)"},
        {"[1,]", "Expecting value: line 1 column 4 (char 3)"},
        {"[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"},
        {"[1,\n 2 x]", "Expecting ',' delimiter: line 2 column 4 (char 7)"},
        {"[\"\xC3\xA9\" x]", "Expecting ',' delimiter: line 1 column 6 (char 5)"},
        {"{\"a\" 1}", "Expecting ':' delimiter: line 1 column 6 (char 5)"},
        {"{\"a\":1,}", "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"},
        {"{1:2}", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"},
        {"{\"a\":1 \"b\":2}", "Expecting ',' delimiter: line 1 column 8 (char 7)"},
        {"\"abc", "Unterminated string starting at: line 1 column 1 (char 0)"},
        {"[\"abc\\", "Unterminated string starting at: line 1 column 2 (char 1)"},
        {"\"a\\x\"", "Invalid \\escape: line 1 column 3 (char 2)"},
        {"\"a\tb\"", "Invalid control character at: line 1 column 3 (char 2)"},
        {"\"\\u12\"", "Invalid \\uXXXX escape"},
        {"\"\\u12G4\"", "Invalid \\uXXXX escape"},
        {"[1] x", "Extra data: line 1 column 5 (char 4)"},
        {"{} {}", "Extra data"},
        {"01", "Extra data"},
        {"1.", "Extra data"},
        {"1e", "Extra data"},
        {"1e+", "Extra data"},
        {"-", "Expecting value"},
        {"+1", "Expecting value"},
        {".5", "Expecting value"},
        {"[-x]", "Expecting value"},
        {"tru", "Expecting value"},
        {"nul", "Expecting value"},
        {"True", "Expecting value"},
        {"NaN", "Expecting value (NaN and Infinity are not JSON)"},
        {"[Infinity]", "Expecting value (NaN and Infinity are not JSON)"},
        {"-Infinity", "Expecting value (NaN and Infinity are not JSON)"},
        {"\xEF\xBB\xBF{}", "Unexpected UTF-8 BOM"},
        {"\f1", "Expecting value"},
        {"\v1", "Expecting value"},
        {"'a'", "Expecting value"},
        {"[1]//", "Extra data"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_fail(cases[i].in, strlen(cases[i].in), cases[i].msg, (int)(1000 + i));
    expect_fail("1\0", 2, "Extra data", __LINE__);
    js_error e;
    CHECK(!js_parse("[1,\n  x]", 8, &e) && e.offset == 6 && e.line == 2 && e.column == 3 && !e.oom);
    CHECK(!js_parse("x", 1, NULL)); /* err may be NULL */
}

static void test_values(void) {
    js_error e;
    cJSON *j = parse_z(" \t\r\n{\"a\": [1, -2.5e3, true, false, null, \"s\\/\\\"\\\\\\b\\f\\n\\r\\t\"], "
                       "\"b\": {}} \n", &e);
    CHECK_MSG(j != NULL, "%s", e.message);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "a");
    CHECK(cJSON_GetArraySize(a) == 6 && cJSON_GetArrayItem(a, 0)->valueint == 1);
    CHECK(cJSON_GetArrayItem(a, 1)->valuedouble == -2500.0 && cJSON_IsTrue(cJSON_GetArrayItem(a, 2)));
    CHECK(cJSON_IsFalse(cJSON_GetArrayItem(a, 3)) && cJSON_IsNull(cJSON_GetArrayItem(a, 4)));
    CHECK(strcmp(cJSON_GetArrayItem(a, 5)->valuestring, "s/\"\\\b\f\n\r\t") == 0);
    CHECK(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "b")));
    cJSON_Delete(j);
    /* len bytes are read, no terminator needed */
    j = js_parse("[1,2]garbage", 5, &e);
    CHECK(cJSON_GetArraySize(j) == 2);
    cJSON_Delete(j);
    j = js_parse(NULL, 0, &e);
    CHECK(!j && strncmp(e.message, "Expecting value", 15) == 0);
    /* DEL and non-ASCII pass; valueint saturates as cJSON's does */
    j = parse_z("[\"\x7f\xE2\x82\xAC\xF0\x9F\x98\x80\", 1e10, -1e10, 3.9]", &e);
    CHECK(j && strcmp(cJSON_GetArrayItem(j, 0)->valuestring, "\x7f\xE2\x82\xAC\xF0\x9F\x98\x80") == 0);
    CHECK(j && cJSON_GetArrayItem(j, 1)->valueint == INT_MAX && cJSON_GetArrayItem(j, 2)->valueint == INT_MIN);
    CHECK(j && cJSON_GetArrayItem(j, 3)->valueint == 3);
    cJSON_Delete(j);
    j = parse_z("[1e400, -1e400, 1e-400]", &e); /* as Python: inf, -inf, 0.0 */
    CHECK(j && isinf(cJSON_GetArrayItem(j, 0)->valuedouble) && cJSON_GetArrayItem(j, 1)->valuedouble < 0);
    CHECK(j && cJSON_GetArrayItem(j, 2)->valuedouble == 0.0);
    cJSON_Delete(j);
}

static void test_strings(void) {
    js_error e;
    cJSON *j = parse_z("\"\\ud83d\\ude00 \\u00e9\\u20AC\\u0041\"", &e);
    CHECK(j && strcmp(j->valuestring, "\xF0\x9F\x98\x80 \xC3\xA9\xE2\x82\xAC" "A") == 0);
    cJSON_Delete(j);
    for (int c = 0; c < 0x20; c++) {
        char in[8] = {'"', 'a', (char)c, 'b', '"'};
        expect_fail(in, 5, "Invalid control character at: line 1 column 3 (char 2)", 2000 + c);
    }
    FAIL("\"\\ud800\"", "Invalid \\uXXXX escape: lone surrogate \\ud800");
    FAIL("\"\\udc00\"", "Invalid \\uXXXX escape: lone surrogate \\udc00");
    FAIL("\"\\uDBFF\\u0041\"", "Invalid \\uXXXX escape: lone surrogate \\udbff");
    FAIL("\"\\ud800x\"", "Invalid \\uXXXX escape: lone surrogate");
    FAIL("\"\\ud800\\ud800\"", "Invalid \\uXXXX escape: lone surrogate");
    FAIL("\"\\udc00\\ud800\"", "Invalid \\uXXXX escape: lone surrogate \\udc00");
    FAIL("\"\\ud800", "Invalid \\uXXXX escape: lone surrogate");
    FAIL("\"\xff\"", "Invalid UTF-8 (byte 0xff) in string at: line 1 column 2 (char 1)");
    FAIL("\"\xC0\x80\"", "Invalid UTF-8 (byte 0xc0)"); /* the mask itself is refused as input */
    FAIL("\"\xED\xA0\x80\"", "Invalid UTF-8");         /* an encoded surrogate */
    FAIL("\"\xE2\x82\"", "Invalid UTF-8");
    FAIL("\"\xF4\x90\x80\x80\"", "Invalid UTF-8");
    FAIL("{\"k\xff\": 1}", "Invalid UTF-8");
}

static void test_nul(void) {
    js_error e;
    cJSON *j = parse_z("{\"k\\u0000ey\": \"a\\u0000b\\u0000\"}", &e);
    CHECK_MSG(j != NULL, "%s", e.message);
    const cJSON *v = j ? j->child : NULL;
    CHECK(v && strcmp(v->string, "k\xC0\x80" "ey") == 0);
    CHECK(v && strcmp(v->valuestring, "a\xC0\x80" "b\xC0\x80") == 0);
    sbuf s = {0};
    if (v) sb_jstr(&s, v->valuestring, strlen(v->valuestring));
    CHECK(s.b && strcmp(s.b, "\"a\\u0000b\\u0000\"") == 0);
    sb_free(&s);
    sb_jstr(&s, "\xC0" "A\xC0", 3); /* a lone C0 is still invalid */
    CHECK(s.b && strcmp(s.b, "\"\xEF\xBF\xBD" "A\xEF\xBF\xBD\"") == 0);
    sb_free(&s);
    if (v) {
        size_t n = js_unmask_nul(v->valuestring, strlen(v->valuestring));
        CHECK(n == 4 && memcmp(v->valuestring, "a\0b\0", 5) == 0);
    }
    char buf[] = "\xC0\x80\xC0\x80x\xC0";
    CHECK(js_unmask_nul(buf, 6) == 4 && memcmp(buf, "\0\0x\xC0\0", 5) == 0);
    CHECK(js_unmask_nul(buf, 0) == 0);
    cJSON_Delete(j);
}

static void test_duplicates(void) {
    js_error e;
    cJSON *j = parse_z("{\"a\": 1, \"b\": 2, \"a\": 3}", &e);
    CHECK(cJSON_GetArraySize(j) == 2 && j && !strcmp(j->child->string, "a") && j->child->valueint == 3);
    CHECK(j && j->child->next && !strcmp(j->child->next->string, "b") && j->child->prev == j->child->next);
    cJSON_Delete(j);
    j = parse_z("{\"x\": {\"k\": 1}, \"y\": 0, \"x\": [2], \"z\": 9, \"x\": \"last\", "
                "\"y\": {\"a\": 1, \"a\": 2}}", &e);
    char *txt = cJSON_PrintUnformatted(j);
    CHECK_MSG(txt && !strcmp(txt, "{\"x\":\"last\",\"y\":{\"a\":2},\"z\":9}"), "%s", txt ? txt : "(null)");
    free(txt);
    cJSON_Delete(j);
    j = parse_z("{\"a\":1,\"a\":2,\"a\":3,\"a\":4}", &e); /* the last of many, and the list stays linked */
    CHECK(cJSON_GetArraySize(j) == 1 && j->child->valueint == 4 && j->child->prev == j->child);
    CHECK(cJSON_AddNumberToObject(j, "b", 5) && cJSON_GetArraySize(j) == 2);
    cJSON_Delete(j);
    j = parse_z("[{\"a\":1},{\"a\":2,\"b\":3,\"b\":4}]", &e); /* equal keys in sibling objects are not duplicates */
    CHECK(cJSON_GetArraySize(cJSON_GetArrayItem(j, 0)) == 1 && cJSON_GetArrayItem(j, 1)->child->next->valueint == 4);
    cJSON_Delete(j);
}

static void test_int64(void) {
    static const struct {
        const char *lit;
        int rc;
        long long v;
    } cases[] = {
        {"9223372036854775807", 0, LLONG_MAX}, {"-9223372036854775807", 0, -LLONG_MAX},
        {"-9223372036854775808", 0, LLONG_MIN}, {"9223372036854775808", -1, 0},
        {"-9223372036854775809", -1, 0}, {"123456789012345678901234567890", -1, 0},
        {"0", 0, 0}, {"-0", 0, 0}, {"1e2", 0, 100}, {"1.0", 0, 1}, {"-2E0", 0, -2}, {"1.5", -1, 0},
        {"1e-1", -1, 0}, {"9007199254740992.0", 0, 9007199254740992LL}, {"-9007199254740992e0", 0, -9007199254740992LL},
        {"9007199254740994.0", -1, 0}, {"1e300", -1, 0}, {"1e400", -1, 0}, {"0.0000", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        js_error e;
        cJSON *j = parse_z(cases[i].lit, &e);
        long long v = 42;
        int rc = js_int64(j, &v);
        CHECK_MSG(j && rc == cases[i].rc && (rc || v == cases[i].v), "%s: rc %d v %lld", cases[i].lit, rc, v);
        cJSON_Delete(j);
    }
    long long v;
    cJSON *s = cJSON_CreateString("1"), *n = cJSON_CreateNumber(-7), *t = cJSON_CreateTrue();
    CHECK(js_int64(s, &v) == -1 && js_int64(t, &v) == -1 && js_int64(NULL, &v) == -1);
    CHECK(js_int64(n, &v) == 0 && v == -7); /* no literal: judged by the double */
    cJSON_Delete(s), cJSON_Delete(n), cJSON_Delete(t);
    cJSON *j = parse_z("9223372036854775807", NULL);
    cJSON_SetNumberValue(j, 5); /* the literal is stale now */
    CHECK(js_int64(j, &v) == 0 && v == 5);
    cJSON_Delete(j);
}

/* cJSON's own behaviour that js_parse relies on: Delete frees and Duplicate copies valuestring of
 * any type (a number's literal); ASan reports a leak or double free if not. */
static void test_cjson_contract(void) {
    cJSON *j = parse_z("[12.50]", NULL), *d = cJSON_Duplicate(j, 1);
    const cJSON *a = cJSON_GetArrayItem(j, 0), *b = cJSON_GetArrayItem(d, 0);
    CHECK(a && b && a->valuestring && b->valuestring && a->valuestring != b->valuestring);
    CHECK(a && b && !strcmp(b->valuestring, "12.50") && b->valuedouble == 12.5 && cJSON_Compare(j, d, 1));
    cJSON_Delete(j);
    cJSON_Delete(d);
}

/* Same shape, order, keys, strings and numbers (valueint too), unlike cJSON_Compare, which ignores
 * member order, compares numbers to an epsilon, and takes time exponential in the depth of nested
 * objects (it compares each member both ways, at every level). */
static int same(const cJSON *a, const cJSON *b) {
    if (!a || !b || a->type != b->type) return a == b;
    if ((a->string || b->string) && (!a->string || !b->string || strcmp(a->string, b->string))) return 0;
    if (cJSON_IsNumber(a) && (a->valueint != b->valueint || memcmp(&a->valuedouble, &b->valuedouble, 8)))
        return 0;
    if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring)) return 0;
    for (a = a->child, b = b->child; a || b; a = a->next, b = b->next)
        if (!same(a, b)) return 0;
    return 1;
}

static char *nested(size_t depth, int objects, size_t *len) {
    char *b = malloc(depth * 6 + 8), *o = b;
    for (size_t i = 0; i < depth; i++) o += objects ? (size_t)sprintf(o, "{\"a\":") : (size_t)sprintf(o, "[");
    o += sprintf(o, "7");
    for (size_t i = 0; i < depth; i++) *o++ = objects ? '}' : ']';
    *len = (size_t)(o - b);
    return b;
}

static void test_depth(void) {
    for (int obj = 0; obj < 2; obj++) {
        size_t len;
        char *b = nested(JS_MAX_DEPTH, obj, &len);
        js_error e;
        cJSON *j = js_parse(b, len, &e);
        CHECK_MSG(j != NULL, "%s", e.message);
        cJSON *d = cJSON_Duplicate(j, 1); /* cJSON's recursion at the limit */
        char *txt = cJSON_PrintUnformatted(d);
        CHECK(d && same(j, d) && txt && strlen(txt) == len && !memcmp(txt, b, len));
        free(txt);
        cJSON_Delete(d);
        cJSON_Delete(j);
        free(b);
        b = nested(JS_MAX_DEPTH + 1, obj, &len);
        expect_fail(b, len, "nested too deeply (more than 512 levels)", __LINE__);
        free(b);
    }
    /* a tree at the limit built by a loop, freed by cJSON's recursion */
    cJSON *root = cJSON_CreateArray(), *cur = root;
    for (int i = 1; i < JS_MAX_DEPTH; i++) {
        cJSON *c = i % 2 ? cJSON_CreateObject() : cJSON_CreateArray();
        if (cJSON_IsObject(cur)) cJSON_AddItemToObject(cur, "k", c);
        else cJSON_AddItemToArray(cur, c);
        cur = c;
    }
    char *txt = cJSON_PrintUnformatted(root);
    cJSON *back = txt ? parse_z(txt, NULL) : NULL;
    CHECK(back && same(root, back));
    free(txt);
    cJSON_Delete(back);
    cJSON_Delete(root);
    /* 10 million '[' : refused at the 513th, at once */
    size_t big = 10u << 20;
    char *b = malloc(big);
    memset(b, '[', big);
    double t0 = now_s();
    js_error e;
    CHECK(!js_parse(b, big, &e) && e.offset == JS_MAX_DEPTH);
    CHECK_MSG(now_s() - t0 < 0.5, "deep input took %.3f s", now_s() - t0);
    free(b);
}

static void test_big_object(void) {
    enum { N = 200000 };
    sbuf s = {0};
    sb_str(&s, "{");
    for (int i = 0; i < N; i++) sb_printf(&s, "%s\"key%d\": %d", i ? ", " : "", i, i);
    sb_str(&s, ", \"key0\": -1}"); /* one duplicate, of the first key, at the very end */
    double t0 = now_s();
    js_error e;
    cJSON *j = js_parse(s.b, s.n, &e);
    double dt = now_s() - t0;
    CHECK_MSG(dt < 0.5, "200,000 keys took %.3f s", dt);
    CHECK(cJSON_GetArraySize(j) == N && j && !strcmp(j->child->string, "key0") && j->child->valueint == -1);
    CHECK(j && j->child->prev && !strcmp(j->child->prev->string, "key199999"));
    cJSON_Delete(j);
    sb_free(&s);
    /* the same key 200,000 times */
    sb_str(&s, "[{");
    for (int i = 0; i < N; i++) sb_printf(&s, "%s\"k\":%d", i ? "," : "", i);
    sb_str(&s, "}]");
    t0 = now_s();
    j = js_parse(s.b, s.n, &e);
    dt = now_s() - t0;
    CHECK_MSG(dt < 0.5, "200,000 duplicates took %.3f s", dt);
    CHECK(j && cJSON_GetArraySize(j->child) == 1 && j->child->child->valueint == N - 1);
    cJSON_Delete(j);
    sb_free(&s);
}

static const char *const docs[] = {
    "{\"a\":[1,2.5,-3e-2,true,false,null],\"b\":{\"c\":\"d\\u00e9\\n\\ud83d\\ude00\"},\"e\":[]}",
    "[\"x\",{\"k\":[{}, [[]], \"\\\\\"]},0,-0,1E+2]",
    "{\"key\\u0000\":\"v\\u0000\",\"key\":{\"key\":\"\xE2\x82\xAC\"},\"key\":7}",
    "\"\\u0041\\t\xF0\x9F\x98\x80\"",
};

static void test_truncations(void) {
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len = strlen(docs[d]);
        cJSON *whole = js_parse(docs[d], len, NULL);
        CHECK_MSG(whole != NULL, "doc %zu", d);
        cJSON_Delete(whole);
        for (size_t k = 0; k < len; k++) {
            char *b = malloc(k ? k : 1); /* exactly k bytes: ASan sees any read past them */
            memcpy(b, docs[d], k);
            js_error e;
            cJSON *j = js_parse(b, k, &e);
            CHECK_MSG(!j && e.message[0] && e.offset <= k, "doc %zu cut at %zu", d, k);
            cJSON_Delete(j);
            free(b);
        }
    }
}

/* ---- allocation failure at every allocation ---- */

static long alloc_left;
static void *failing_malloc(size_t n) { return alloc_left-- > 0 ? malloc(n) : NULL; }

static void test_oom(void) {
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        int ok = 0;
        for (long k = 0; k < 1000 && !ok; k++) {
            cJSON_Hooks h = {failing_malloc, free};
            cJSON_InitHooks(&h);
            alloc_left = k;
            js_error e;
            cJSON *j = js_parse(docs[d], strlen(docs[d]), &e);
            ok = j != NULL;
            CHECK_MSG(ok || (e.oom && !strcmp(e.message, "out of memory")), "doc %zu alloc %ld: %s", d, k, e.message);
            cJSON_Delete(j);
            cJSON_InitHooks(NULL);
        }
        CHECK_MSG(ok, "doc %zu never parsed", d);
    }
}

/* ---- the same trees as cJSON on valid documents ---- */

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void gen_string(sbuf *s) {
    static const char *const bits[] = {"a", "Z", " ", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t",
                                       "\\u00e9", "\\u20AC", "\\ud83d\\ude00", "\xC3\xA9", "\xE2\x82\xAC",
                                       "\xF0\x9F\x98\x80", "\\u001f", "\x7f", "\\uFFFF", "\xEF\xBF\xBF"};
    sb_str(s, "\"");
    for (unsigned k = rnd(6); k--;) sb_str(s, bits[rnd(sizeof bits / sizeof bits[0])]);
    sb_str(s, "\"");
}

static void gen_number(sbuf *s) {
    switch (rnd(5)) {
    case 0: sb_printf(s, "%d", (int)rnd(2000) - 1000); break;
    case 1: sb_printf(s, "%lld", (long long)(rng >> 1) * (rnd(2) ? 1 : -1)); break;
    case 2: sb_printf(s, "%.17g", ((double)rnd(1u << 30) - (1 << 29)) / (1 + rnd(1000))); break;
    /* finite: cJSON_Compare says inf != inf */
    case 3: sb_printf(s, "%u.%03ue%s%u", rnd(100), rnd(1000), rnd(2) ? "-" : "+", rnd(300)); break;
    default: sb_printf(s, "%sE%u", rnd(2) ? "-0" : "5", rnd(30)); break;
    }
}

static void gen_value(sbuf *s, int depth) {
    unsigned kind = rnd(depth > 5 ? 5 : 7);
    const char *ws = rnd(4) ? "" : " \n\t\r";
    sb_str(s, ws);
    if (kind == 0) sb_str(s, rnd(2) ? "true" : rnd(2) ? "false" : "null");
    else if (kind <= 2) gen_number(s);
    else if (kind <= 4) gen_string(s);
    else {
        int obj = kind == 6;
        sb_str(s, obj ? "{" : "[");
        for (unsigned i = 0, n = rnd(5); i < n; i++) {
            if (i) sb_str(s, ",");
            if (obj) sb_printf(s, "\"k%u\xC3\xA9\\u00e9\":", i); /* unique keys */
            gen_value(s, depth + 1);
        }
        sb_str(s, obj ? "}" : "]");
    }
    sb_str(s, ws);
}

static void differential(const char *txt, size_t len) {
    js_error e;
    cJSON *a = js_parse(txt, len, &e), *b = cJSON_ParseWithLength(txt, len);
    CHECK_MSG(a && b && same(a, b) && cJSON_Compare(a, b, 1), "differs from cJSON (%s): %.300s",
              a ? "" : e.message, txt);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_differential(void) {
    static const char *const fixed[] = {
        "0", "-0", "1.5e-300", "123456789012345678", "\"\"", "[]", "{}", "[[],{},[{}]]", "true", " null ",
        "{\"a\":{\"b\":{\"c\":[1,{\"d\":\"e\"}]}}}", "\"\\ud800\\udc00\\udbff\\udfff\"",
        "[0.1,0.2,0.30000000000000004]",
        "{\"\":\"\",\" \":[\" \"]}", "[1e22,1e-7,-2.2250738585072014e-308,1.7976931348623157e308]",
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) differential(fixed[i], strlen(fixed[i]));
    for (int i = 0; i < 3000; i++) {
        sbuf s = {0};
        gen_value(&s, 0);
        differential(s.b, s.n);
        sb_free(&s);
    }
}

int main(void) {
    test_python_messages();
    test_values();
    test_strings();
    test_nul();
    test_duplicates();
    test_int64();
    test_cjson_contract();
    test_depth();
    test_big_object();
    test_truncations();
    test_oom();
    test_differential();
    TEST_END();
}
