/* Fuzz target: a JSON Schema (the input, read by js_parse) compiled by the grammar engine's JSON
 * Schema front end; when it compiles, a few texts are fed to a matcher. Bounded: the builder's element
 * limit is kept small so a schema that would blow up fails fast. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "grammar/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *s = js_parse((const char *)data, size, NULL);
    if (!s) return 0;
    gram_schema_opts o = {.any_whitespace = size & 1, .strict = (size >> 1) & 1, .lim = {200000, 200}};
    gram_grammar *g = NULL;
    if (!gram_from_json_schema(s, &o, &g)) {
        static const char *const texts[] = {"{}", "[]", "\"a\"", "1", "null", "{\"a\":1}", "[1,\"x\",true]", "-12.5e3"};
        gram_matcher *m = NULL;
        if (!gram_matcher_new(g, &m)) {
            for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
                gram_matcher_reset(m);
                if (gram_matcher_feed(m, texts[i], strlen(texts[i])) == 0) (void)gram_matcher_accepting(m);
            }
            gram_matcher_free(m);
        }
        gram_free(g);
    }
    cJSON_Delete(s);
    return 0;
}
