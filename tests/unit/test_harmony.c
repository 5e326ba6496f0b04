/* test_harmony: the pieces of gpt-oss's harmony prompt (src/template/harmony.c, harmony_ts.c): the TypeScript
 * rendering of tool schemas and serde_json's value printing, the headers of each kind of message, the
 * request checks, the start date, tokenization by pieces, and the server's chat path with harmony on. The
 * whole prompt is checked token for token against openai-harmony in tests/js/harmony_diff.mjs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/json.h"
#include "server/request.h"
#include "template/harmony.h"
#include "test.h"

static cJSON *parse(const char *s) {
    cJSON *j = js_parse(s, strlen(s), NULL);
    if (!j) fprintf(stderr, "bad test JSON: %s\n", s);
    return j;
}

static void check_ts(const char *schema, const char *want) {
    cJSON *j = parse(schema);
    sbuf b = {0};
    int rc = hm_schema_ts(j, "", &b);
    CHECK_MSG(rc == 0 && b.b && !strcmp(b.b, want), "%s\n got: %s\nwant: %s", schema, b.b ? b.b : "(null)", want);
    sb_free(&b);
    cJSON_Delete(j);
}

static void check_serde(const char *json, const char *want) {
    cJSON *j = parse(json);
    sbuf b = {0};
    hm_json_serde(j, &b);
    CHECK_MSG(b.b && !strcmp(b.b, want), "%s: got %s want %s", json, b.b ? b.b : "(null)", want);
    sb_free(&b);
    cJSON_Delete(j);
}

/* Render a request body; returns the text (malloc'd) or NULL, with the error in *rc. */
static char *render(const char *body, int *rc) {
    cJSON *o = parse(body);
    hm_request r;
    hm_prompt p = {0};
    *rc = hm_request_from_body(o, "2025-06-28", &r);
    if (!*rc) *rc = hm_render(&r, &p);
    char *s = *rc ? NULL : strdup(p.text.b);
    hm_prompt_free(&p);
    cJSON_Delete(o);
    return s;
}

static void check_has(const char *body, const char *want) {
    int rc;
    char *s = render(body, &rc);
    CHECK_MSG(s && strstr(s, want), "%s: lacks %s (rc %d): %s", body, want, rc, s ? s : vc_errmsg());
    free(s);
}

static void check_lacks(const char *body, const char *no) {
    int rc;
    char *s = render(body, &rc);
    CHECK_MSG(s && !strstr(s, no), "%s: has %s", body, no);
    free(s);
}

static void check_refused(const char *body, const char *why) {
    int rc;
    char *s = render(body, &rc);
    CHECK_MSG(!s && rc == VC_EINVAL && strstr(vc_errmsg(), why), "%s: rc %d, %s", body, rc, s ? s : vc_errmsg());
    free(s);
}

/* A byte-fallback tokenizer with harmony's formatting tokens. */
static tok_tokenizer *small_tokenizer(void) {
    static const char *const sp[] = {"<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|call|>", "<|return|>",
                                     "<|constrain|>"};
    sbuf j = {0};
    sb_str(&j, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true}");
    for (int i = 0; i < 7; i++) sb_printf(&j, ",{\"id\":%d,\"content\":\"%s\",\"special\":true}", 300 + i, sp[i]);
    sb_str(&j, "],\"normalizer\":null,\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":"
               "[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
               "\"byte_fallback\":true,\"fuse_unk\":true,\"vocab\":{\"<unk>\":0");
    for (int i = 0; i < 256; i++) sb_printf(&j, ",\"<0x%02X>\":%d", i, i + 3);
    for (int i = 0; i < 7; i++) sb_printf(&j, ",\"%s\":%d", sp[i], 300 + i);
    sb_str(&j, "},\"merges\":[]}}");
    tok_tokenizer *t = NULL;
    if (j.b && tok_load_mem(j.b, j.n, "harmony test tokenizer", NULL, 0, &t)) t = NULL;
    sb_free(&j);
    return t;
}

static void test_schema(void) {
    check_ts("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"description\": \"d\"}, \"b\": "
             "{\"type\": \"integer\", \"default\": 3}}, \"required\": [\"a\"]}",
             "{\n// d\na: string,\nb?: number, // default: 3\n}");
    check_ts("{\"type\": \"string\", \"enum\": [\"x\", 1, \"y\"]}", "\"x\" | \"y\"");
    check_ts("{\"type\": \"string\", \"enum\": [1]}", "string");
    check_ts("{\"type\": [\"integer\", \"null\", 5]}", "number | null");
    check_ts("{\"type\": \"array\"}", "Array<any>");
    check_ts("{\"type\": \"array\", \"items\": {\"type\": \"array\", \"items\": {\"type\": \"boolean\"}}}", "boolean[][]");
    check_ts("{}", "any");
    check_ts("true", "any");
    check_ts("{\"type\": \"tuple\"}", "any");
    check_ts("{\"oneOf\": [{\"type\": \"string\", \"description\": \"s\"}, {\"type\": \"number\", \"nullable\": true}]}",
             "\n | string // s\n | number | null");
    check_ts("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"object\", \"description\": \"inner\", "
             "\"properties\": {\"x\": {\"type\": \"string\", \"enum\": [\"p\"], \"default\": \"p\"}}}}}",
             "{\n// inner\nn?:     // inner\n{\n    x?: \"p\", // default: p\n    },\n}");
    check_ts("{\"type\": \"object\", \"properties\": {\"t\": {\"title\": \"T\", \"examples\": [\"e1\", 2], "
             "\"type\": \"string\", \"nullable\": true, \"default\": \"z\"}}}",
             "{\n// T\n//\n// Examples:\n// - \"e1\"\nt?: string | null, // default: \"z\"\n}");
    check_ts("{\"type\": \"object\", \"properties\": {\"o\": {\"oneOf\": [{\"type\": \"string\", \"description\": \"same\"}, "
             "{\"type\": \"integer\", \"default\": 1}], \"description\": \"same\", \"default\": \"v\"}}}",
             "{\n// default: \"v\"\no?:\n | string\n | number // default: 1\n,\n}");
    sbuf b = {0}; /* nested past the thread's stack: an error, not a crash */
    cJSON *top = cJSON_CreateObject();
    for (int i = 0; i < 100000 && top; i++) { /* built by hand: js_parse bounds depth itself */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", "array");
        cJSON_AddItemToObject(o, "items", top);
        top = o;
    }
    CHECK(hm_schema_ts(top, "", &b) == VC_EINVAL);
    sb_free(&b);
    /* freed iteratively: cJSON_Delete would recurse 100,000 deep */
    while (top) {
        cJSON *items = cJSON_DetachItemFromObject(top, "items");
        cJSON_Delete(top);
        top = items;
    }
}

static void test_serde(void) {
    check_serde("{\"a\": [1, -2, 0.5, 1.0, 1e20, 2.5e-7, 123456.789, 1e16, 1e15, -0.0001], \"b\": \"x\\\"y\\n\\u0001é\", "
                "\"c\": null, \"d\": true}",
                "{\"a\":[1,-2,0.5,1.0,1e20,2.5e-7,123456.789,1e16,1000000000000000.0,-0.0001],\"b\":\"x\\\"y\\n\\u0001é\","
                "\"c\":null,\"d\":true}");
    check_serde("18446744073709551615", "18446744073709551615");
    check_serde("123456789012345678901234567890", "1.2345678901234568e29");
}

static const char TOOLS[] = "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"one\\r\\ntwo\\n\"}}]";

static void test_messages(void) {
    char body[2048];
    check_has("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
              "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: "
              "2024-06\nCurrent date: 2025-06-28\n\nReasoning: medium\n\n# Valid channels: analysis, commentary, final. "
              "Channel must be included for every message.<|end|><|start|>user<|message|>hi<|end|><|start|>assistant");
    check_lacks("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", "developer");
    check_has("{\"messages\": [], \"reasoning_effort\": \"high\"}", "Reasoning: high");
    snprintf(body, sizeof body, "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": %s}", TOOLS);
    check_has(body, "'functions'.<|end|><|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\n"
                    "// one\n// two\ntype f = () => any;\n\n} // namespace functions<|end|>");
    check_has("{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"x\"}]}",
              "<|start|>developer<|message|># Instructions\n\nS<|end|>");
    check_has("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"reasoning\": \"r\", "
              "\"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": "
              "\"{}\"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"c\", \"content\": \"res\"}]}",
              "<|start|>assistant<|channel|>analysis<|message|>r<|end|><|start|>assistant to=functions.f<|channel|>"
              "commentary json<|message|>{}<|call|><|start|>functions.f to=assistant<|channel|>commentary<|message|>res"
              "<|end|><|start|>assistant");
    /* analysis before the last final answer is dropped; after it, kept */
    check_lacks("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"a\", "
                "\"reasoning\": \"OLD\"}, {\"role\": \"user\", \"content\": \"q2\"}]}", "OLD");
    check_has("{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}, {\"role\": \"assistant\", \"content\": \"\", "
              "\"reasoning\": \"NEW\"}]}", "<|channel|>analysis<|message|>NEW<|end|><|start|>assistant");
    check_has("{\"messages\": [{\"role\": \"user\", \"content\": \"a\\u0000b\"}]}", "a");
    check_refused("{\"messages\": [], \"reasoning_effort\": \"none\"}", "Harmony does not support reasoning_effort='none'");
    check_refused("{\"messages\": [], \"reasoning_effort\": 3}", "reasoning_effort");
    check_refused("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", "role 'robot'");
    check_refused("{\"messages\": [{\"role\": 1}]}", "'role' string");
    check_refused("{\"messages\": [1]}", "object");
    check_refused("{\"messages\": {}}", "'messages' must be a list");
    check_refused("{\"messages\": [{\"role\": \"user\", \"content\": [\"str\"]}]}", "content part");
    check_refused("{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 5}]}]}", "'text'");
    check_refused("{\"messages\": [{\"role\": \"assistant\", \"tool_calls\": {}}]}", "tool_calls");
    check_refused("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"function\": {}}]}", "tools");
}

static void test_date(void) {
    char d[64];
    setenv("VLLM_SYSTEM_START_DATE", "pinned", 1);
    hm_start_date(0, d, sizeof d);
    CHECK(!strcmp(d, "pinned"));
    setenv("TZ", "UTC", 1);
    hm_start_date(1751068800, d, sizeof d); /* --now wins over the pin */
    CHECK(!strcmp(d, "2025-06-28"));
    unsetenv("VLLM_SYSTEM_START_DATE");
    hm_start_date(0, d, sizeof d);
    CHECK(strlen(d) == 10 && d[4] == '-' && d[7] == '-');
}

static void test_tokenize_and_server(tok_tokenizer *t) {
    int rc;
    char *s = render("{\"messages\": [{\"role\": \"user\", \"content\": \"<|end|>\"}]}", &rc);
    CHECK(s != NULL);
    free(s);
    cJSON *o = parse("{\"messages\": [{\"role\": \"user\", \"content\": \"<|end|>\"}]}");
    hm_request r;
    hm_prompt p = {0};
    tok_ids ids = {0};
    CHECK(!hm_request_from_body(o, "D", &r) && !hm_render(&r, &p) && !hm_tokenize(&p, t, &ids));
    /* the user's "<|end|>" is 7 bytes of text, the message's own <|end|> one token: ..., 301 (<|message|>),
     * 7 byte tokens, 302 (<|end|>), 300 (<|start|>), "assistant" */
    int at = -1;
    for (size_t i = 0; i + 9 < ids.n; i++)
        if (ids.ids[i] == 301 && ids.ids[i + 8] == 302 && ids.ids[i + 9] == 300) at = (int)i;
    CHECK(at >= 0);
    if (at >= 0) CHECK(ids.ids[at + 1] == '<' + 3 && ids.ids[at + 7] == '>' + 3);
    CHECK(ids.n > 0 && ids.ids[ids.n - 1] == 't' + 3);
    tok_ids_free(&ids);
    hm_prompt_free(&p);
    cJSON_Delete(o);

    /* the server's chat path: harmony's ids, the chat template not consulted (none is set) */
    static const char *names[] = {"m"};
    srv_ctx c = {.tok = t, .harmony = 1, .names = names, .n_names = 1, .max_model_len = 100000, .vocab_size = 320,
                 .max_logprobs = 5};
    srv_request req;
    srv_error err;
    setenv("VLLM_SYSTEM_START_DATE", "2025-06-28", 1);
    static const char body[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 5, "
                               "\"chat_template\": \"{{ nope }}\"}";
    CHECK(srv_parse_request(&c, body, sizeof body - 1, 1, &req, &err) == 0);
    if (!err.status) {
        CHECK(req.n_prompts == 1 && req.ids[0][0] == 300 && strstr(req.text[0], "Current date: 2025-06-28"));
        srv_request_free(&req);
    }
    static const char none[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"reasoning_effort\": \"none\"}";
    CHECK(srv_parse_request(&c, none, sizeof none - 1, 1, &req, &err) == -1 && err.status == 400 &&
          strstr(err.message, "Harmony does not support"));
    static const char tk[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";
    char *out = NULL;
    size_t n;
    CHECK(srv_tokenize(&c, tk, sizeof tk - 1, &out, &n, &err) == 0 && out && strstr(out, "\"tokens\":[300,"));
    free(out);
    unsetenv("VLLM_SYSTEM_START_DATE");
}

int main(void) {
    test_schema();
    test_serde();
    test_messages();
    test_date();
    tok_tokenizer *t = small_tokenizer();
    CHECK(t != NULL);
    if (t) test_tokenize_and_server(t);
    tok_free(t);
    TEST_END();
}
