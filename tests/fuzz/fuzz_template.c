/* fuzz_template: arbitrary bytes as a chat template, compiled and rendered with a realistic
 * conversation (system/user/assistant/tool messages, tool calls, tools, kwargs) under small
 * limits, so each input runs fast. If the input contains "\n#VARS#\n", the bytes after it are
 * parsed as the JSON variables instead (fuzzing the JSON input too). Invariants checked: a render
 * either fails with a message or returns a NUL-terminated, valid UTF-8 string of the stated length;
 * a compiled template renders the same twice. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "template/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char CONV[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"You are helpful.\"},"
    " {\"role\": \"user\", \"content\": \"Hi \\u00e9\\ud83d\\ude00\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"id\": \"call12345\", \"type\": \"function\","
    "   \"function\": {\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3, \"x\": 1.5}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"call12345\", \"content\": \"22\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>\\nok\\n</think>\\n\\nIt is 22.\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"more\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\","
    "   \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}}],"
    " \"documents\": null, \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\","
    " \"enable_thinking\": false, \"date_string\": \"26 Jul 2024\"}";

static int valid_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        if (k == 9 || n - i <= k) return 0;
        for (size_t j = 1; j <= k; j++)
            if ((p[i + j] & 0xC0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *src = (const char *)data, *vars = CONV;
    size_t srclen = size, varslen = sizeof CONV - 1;
    const char *sep = memmem(data, size, "\n#VARS#\n", 8);
    if (sep) {
        srclen = (size_t)(sep - src);
        vars = sep + 8;
        varslen = size - srclen - 8;
    }
    tmpl_template *t;
    tmpl_error e;
    if (tmpl_compile(src, srclen, &t, &e)) {
        if (!e.kind || !e.message[0]) abort();
        return 0;
    }
    tmpl_limits lim = {.max_steps = 200000, .max_output = 1 << 20, .max_memory = 64 << 20, .max_depth = 20};
    char *out1 = NULL, *out2 = NULL;
    size_t n1 = 0, n2 = 0;
    int rc1 = tmpl_render_json(t, vars, varslen, &lim, &out1, &n1, &e);
    if (rc1 && (!e.kind || !e.message[0] || out1)) abort();
    if (!rc1 && (!out1 || out1[n1] != 0 || strlen(out1) > n1 || !valid_utf8((const unsigned char *)out1, n1))) abort();
    int rc2 = tmpl_render_json(t, vars, varslen, &lim, &out2, &n2, &e);
    /* strftime_now may cross a second between the two renders; everything else is deterministic */
    if (rc1 != rc2 || (!rc1 && (n1 != n2 || memcmp(out1, out2, n1) != 0) && !memmem(src, srclen, "strftime", 8)))
        abort();
    free(out1);
    free(out2);
    tmpl_free(t);
    return 0;
}
