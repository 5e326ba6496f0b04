/* test_grammar_schema: the JSON Schema front end (src/grammar/schema.h) against
 * ajv. tests/data/schema_cases.json (made by tools/make_schema_cases.mjs with
 * ajv in draft 2020-12 mode and ajv-formats) holds schemas with candidate
 * outputs and ajv's verdict on each: the grammar must refuse every text ajv
 * refuses, and accept every "canonical" text (written as the grammar writes
 * JSON) that ajv accepts. Then the schemas the compiler must refuse, each with
 * a message naming the problem, and the whitespace switch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"
#include "grammar/schema.h"
#include "test.h"

static int accepts(const gram_grammar *g, const char *text, size_t n) {
    gram_matcher *m = NULL;
    if (gram_matcher_new(g, &m)) return -1;
    int ok = gram_matcher_feed(m, text, n) == 0 && gram_matcher_accepting(m);
    gram_matcher_free(m);
    return ok;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_ajv_cases(void) {
    char *text = NULL;
    size_t len = 0;
    CHECK(vc_read_file("tests/data/schema_cases.json", (size_t)16 << 20, &text, &len) == 0);
    cJSON *cases = text ? js_parse(text, len, NULL) : NULL;
    CHECK(cJSON_IsArray(cases));
    int n = 0, sound = 0, complete = 0, n_schemas = 0;
    double compile_ms = 0, worst_ms = 0;
    char *last = NULL;
    gram_grammar *g = NULL;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const cJSON *schema = cJSON_GetObjectItem(c, "schema"), *t = cJSON_GetObjectItem(c, "text");
        int valid = cJSON_IsTrue(cJSON_GetObjectItem(c, "valid"));
        int canonical = cJSON_IsTrue(cJSON_GetObjectItem(c, "canonical"));
        char *key = cJSON_PrintUnformatted(schema);
        if (!last || strcmp(key, last)) {
            gram_free(g);
            g = NULL;
            double t0 = now_ms();
            int rc = gram_from_json_schema(schema, NULL, &g);
            double ms = now_ms() - t0;
            compile_ms += ms;
            if (ms > worst_ms) worst_ms = ms;
            n_schemas++;
            CHECK_MSG(rc == 0, "schema %s: %s", key, vc_errmsg());
            free(last);
            last = key;
        } else {
            free(key);
        }
        if (!g) continue;
        /* the text as bytes (js_parse kept any U+0000 as C0 80) */
        size_t tn = strlen(t->valuestring);
        char *bytes = malloc(tn + 1);
        memcpy(bytes, t->valuestring, tn + 1);
        tn = js_unmask_nul(bytes, tn);
        int a = accepts(g, bytes, tn);
        free(bytes);
        n++;
        if (a && !valid) CHECK_MSG(0, "schema %s: the grammar accepts %s, which ajv refuses", last, t->valuestring);
        else sound++;
        if (canonical && valid) {
            CHECK_MSG(a == 1, "schema %s: the grammar refuses %s, which ajv accepts", last, t->valuestring);
            complete += a == 1;
        }
    }
    gram_free(g);
    free(last);
    cJSON_Delete(cases);
    free(text);
    printf("  %d cases over %d schemas: every refusal of ajv kept (%d), %d canonical valid outputs accepted; "
           "compile %.2f ms in all, %.2f ms at worst\n", n, n_schemas, sound, complete, compile_ms, worst_ms);
    CHECK(n > 100);
}

static void refused(const char *schema, const char *want) {
    cJSON *s = js_parse(schema, strlen(schema), NULL);
    gram_grammar *g = NULL;
    int rc = gram_from_json_schema(s, NULL, &g);
    CHECK_MSG(rc < 0 && strstr(vc_errmsg(), want), "%s: rc %d, message '%s', want '%s'", schema, rc, vc_errmsg(), want);
    gram_free(g);
    cJSON_Delete(s);
}

static void test_refused(void) {
    refused("{\"type\":\"integer\",\"minimum\":5,\"maximum\":1}", "no integer lies between");
    refused("{\"type\":\"strnig\"}", "unknown type 'strnig'");
    refused("{\"$ref\":\"#/$defs/missing\"}", "does not point into this schema");
    refused("{\"type\":\"string\",\"pattern\":\"(a\"}", "pattern");
    refused("{\"not\":{\"type\":\"string\"}}", "'not' is not supported");
    refused("{\"type\":\"array\",\"uniqueItems\":true}", "'uniqueItems' is not supported");
    refused("{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", "'minLength' 5 is above 'maxLength' 2");
    refused("{\"type\":\"number\",\"minimum\":0.5}", "'minimum' on a number is not supported");
    refused("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\",\"minItems\":-1}}}",
            "schema.properties.a: 'minItems' must be a non-negative integer");
    refused("false", "matches no value");
    refused("{\"anyOf\":[]}", "non-empty list");
    /* a schema nested far beyond the limit fails cleanly */
    char deep[20000] = "";
    size_t k = 0;
    for (int i = 0; i < 400; i++) k += (size_t)sprintf(deep + k, "{\"items\":"); /* JSON allows 512 levels */
    k += (size_t)sprintf(deep + k, "{}");
    for (int i = 0; i < 400; i++) deep[k++] = '}';
    deep[k] = 0;
    refused(deep, "nested too deeply");
}

static void test_whitespace_switch(void) {
    const char *schema = "{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}";
    cJSON *s = js_parse(schema, strlen(schema), NULL);
    gram_schema_opts o = {.any_whitespace = 0};
    gram_grammar *tight = NULL, *loose = NULL;
    CHECK(gram_from_json_schema(s, &o, &tight) == 0);
    CHECK(gram_from_json_schema(s, NULL, &loose) == 0);
    CHECK(accepts(tight, "[1,2]", 5) == 1);
    CHECK(accepts(tight, "[1, 2]", 6) == 0);
    CHECK(accepts(loose, "[1, 2]", 6) == 1);
    CHECK(accepts(loose, "[1,  2]", 7) == 0); /* one whitespace run, not two spaces */
    CHECK(accepts(loose, "[\n    1,\n    2\n]", 16) == 1);
    gram_free(tight);
    gram_free(loose);
    cJSON_Delete(s);
}

int main(void) {
    test_ajv_cases();
    test_refused();
    test_whitespace_switch();
    TEST_END();
}
