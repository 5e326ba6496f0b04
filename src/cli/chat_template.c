/* vllmc chat-template (usage in cli_tmpl.h): renders a model's chat template the way
 * transformers' apply_chat_template(tokenize=False) does, and prints exactly the rendered text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/sbuf.h"
#include "base/file.h"
#include "base/json.h"
#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "template/harmony.h"
#include "template/template.h"
#include "tokenizer/tokenizer.h"

#define INPUT_MAX ((size_t)1 << 30)

static const char usage[] =
    "usage: vllmc chat-template MODEL_DIR --messages FILE.json [--add-generation-prompt]\n"
    "           [--chat-template FILE] [--tools FILE.json] [--documents FILE.json]\n"
    "           [--chat-template-kwargs JSON] [--chat-template-name NAME]\n"
    "       vllmc chat-template MODEL_DIR --jsonl [--chat-template FILE]   (requests on stdin)\n"
    "       --now EPOCH_SECONDS: the clock strftime_now() reads (default: the current time)\n"
    "       gpt-oss (config.json model_type gpt_oss): the harmony prompt vLLM sends, not a template;\n"
    "       --token-ids adds its token ids ({\"text\", \"ids\"} per line with --jsonl, else the ids only)\n";

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = cap < INPUT_MAX ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* A JSON input file ("-" = stdin), NUL-terminated. */
static char *read_input(const char *path, size_t *len) {
    if (strcmp(path, "-") == 0) {
        char *b = read_all(stdin, len);
        if (!b) cli_error("cannot read stdin");
        return b;
    }
    char *b;
    if (vc_read_file(path, INPUT_MAX, &b, len)) {
        cli_error("%s", vc_errmsg());
        return NULL;
    }
    return b;
}

/* Does a request/tools JSON text carry a non-empty "tools"? (HF picks "tool_use" templates then.) */
static int has_tools(const char *json, int is_request) {
    cJSON *j = js_parse(json, strlen(json), NULL);
    const cJSON *t = is_request ? cJSON_GetObjectItemCaseSensitive(j, "tools") : j;
    int yes = t && !cJSON_IsNull(t);
    cJSON_Delete(j);
    return yes;
}

typedef struct {
    const char *dir, *tmpl_arg, *name;
    tmpl_model model; /* special tokens (and the model's template when no --chat-template) */
    char *override;   /* --chat-template text */
    size_t override_len;
    tmpl_template *compiled[2]; /* [with_tools] */
    int64_t now;                /* --now: strftime_now's clock (0: the current time) */
} tmpl_ctx;

static int load_override(tmpl_ctx *c) {
    const char *arg = c->tmpl_arg;
    if (vc_file_exists(arg)) {
        if (vc_read_file(arg, INPUT_MAX, &c->override, &c->override_len)) {
            cli_error("%s", vc_errmsg());
            return -1;
        }
        return 0;
    }
    if (strstr(arg, "{{") || strstr(arg, "{%")) { /* vLLM accepts the template text itself */
        c->override_len = strlen(arg);
        c->override = malloc(c->override_len + 1);
        if (!c->override) return -1;
        memcpy(c->override, arg, c->override_len + 1);
        return 0;
    }
    cli_error("--chat-template: no such file: %s", arg);
    return -1;
}

static tmpl_template *get_template(tmpl_ctx *c, int with_tools) {
    if (c->compiled[with_tools]) return c->compiled[with_tools];
    const char *src;
    size_t len;
    tmpl_model m = {0};
    if (c->override) {
        src = c->override;
        len = c->override_len;
    } else {
        if (tmpl_model_load(c->dir, c->name, with_tools, 1, &m)) {
            cli_error("%s", vc_errmsg());
            return NULL;
        }
        src = m.source;
        len = m.len;
    }
    if (tmpl_compile(src, len, &c->compiled[with_tools], NULL)) {
        cli_error("%s", vc_errmsg());
        c->compiled[with_tools] = NULL;
    }
    tmpl_model_free(&m);
    return c->compiled[with_tools];
}

/* One request object (text) -> the harmony prompt and, with tok, its ids; 0 or a VC_E* (vc_errmsg). */
static int harmony_one(const char *json, const cJSON *tools, const char *date, const tok_tokenizer *tok,
                       hm_prompt *p, tok_ids *ids) {
    js_error je = {0};
    cJSON *o = js_parse(json, strlen(json), &je), *wrap = NULL;
    if (!o) return vc_errf(je.oom ? VC_ENOMEM : VC_EFORMAT, "not JSON: %s", je.message);
    if (cJSON_IsArray(o)) { /* a bare list of messages */
        wrap = cJSON_CreateObject();
        if (!wrap || !cJSON_AddItemToObject(wrap, "messages", o)) {
            cJSON_Delete(wrap);
            cJSON_Delete(o);
            return vc_errf(VC_ENOMEM, "out of memory");
        }
        o = wrap;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return vc_errf(VC_EFORMAT, "a request must be a JSON object or a list of messages");
    }
    hm_request r;
    int rc = hm_request_from_body(o, date, &r);
    if (tools) r.tools = tools;
    if (!rc) rc = hm_render(&r, p);
    if (!rc && tok) rc = hm_tokenize(p, tok, ids);
    cJSON_Delete(o);
    return rc;
}

/* gpt-oss: harmony prompts (template/harmony.h), one request or --jsonl lines. */
static int run_harmony(tmpl_ctx *c, const char *messages, const char *tools_file, int jsonl, int want_ids) {
    char date[64], *text = NULL, *tools_text = NULL;
    size_t len;
    int rc = 1;
    cJSON *tools = NULL;
    tok_tokenizer *tok = NULL;
    hm_start_date(c->now, date, sizeof date);
    if (c->tmpl_arg) fprintf(stderr, "WARNING vllmc: --chat-template is not used for gpt-oss (harmony), as in vLLM\n");
    if (want_ids && tok_load_dir(c->dir, &tok)) {
        cli_error("%s", vc_errmsg());
        return 1;
    }
    if (tools_file) {
        if (!(tools_text = read_input(tools_file, &len))) goto done;
        if (!(tools = js_parse(tools_text, len, NULL))) {
            cli_error("%s: not JSON", tools_file);
            goto done;
        }
    }
    if (!(text = jsonl ? read_all(stdin, &len) : read_input(messages, &len))) goto done;
    rc = 0;
    for (char *line = text; line < text + len || (!jsonl && line == text);) {
        char *nl = jsonl ? memchr(line, '\n', (size_t)(text + len - line)) : NULL;
        char *end = nl ? nl : text + len;
        *end = 0;
        hm_prompt p = {0};
        tok_ids ids = {0};
        if (end > line || !jsonl) {
            int hrc = harmony_one(line, tools, date, tok, &p, &ids);
            if (!jsonl) {
                if (hrc) {
                    cli_error("%s", vc_errmsg());
                    rc = 1;
                } else if (want_ids) {
                    for (size_t i = 0; i < ids.n; i++) printf("%s%d", i ? "," : "[", ids.ids[i]);
                    puts(ids.n ? "]" : "[]");
                } else if (fwrite(p.text.b, 1, p.text.n, stdout) != p.text.n) {
                    rc = 1;
                }
            } else if (hrc) {
                const char *msg = vc_errmsg();
                fputs("{\"error\":", stdout);
                sb_fput_jstr(stdout, msg, strlen(msg));
                fputs("}\n", stdout);
            } else {
                fputs("{\"text\":", stdout);
                sb_fput_jstr(stdout, p.text.b, p.text.n);
                if (want_ids) {
                    fputs(",\"ids\":[", stdout);
                    for (size_t i = 0; i < ids.n; i++) printf("%s%d", i ? "," : "", ids.ids[i]);
                    fputs("]", stdout);
                }
                fputs("}\n", stdout);
            }
        }
        hm_prompt_free(&p);
        tok_ids_free(&ids);
        if (!jsonl) break;
        line = end + 1;
    }
    if (fflush(stdout)) rc = 1;
done:
    free(text);
    free(tools_text);
    cJSON_Delete(tools);
    tok_free(tok);
    return rc;
}

static int run_jsonl(tmpl_ctx *c) {
    size_t len;
    char *all = read_all(stdin, &len);
    if (!all) {
        cli_error("cannot read stdin");
        return 1;
    }
    int rc = 0;
    for (char *line = all; line < all + len;) {
        char *nl = memchr(line, '\n', (size_t)(all + len - line));
        char *end = nl ? nl : all + len;
        *end = 0;
        if (end > line) {
            tmpl_template *t = get_template(c, has_tools(line, 1));
            if (!t) {
                rc = 1;
                break;
            }
            tmpl_chat_args a = {.request_json = line,
                                .bos_token = c->model.bos_token, .eos_token = c->model.eos_token,
                                .unk_token = c->model.unk_token, .pad_token = c->model.pad_token, .now = c->now};
            char *out;
            size_t olen;
            if (tmpl_render_chat(t, &a, NULL, &out, &olen, NULL)) {
                const char *msg = vc_errmsg();
                fputs("{\"error\":", stdout);
                sb_fput_jstr(stdout, msg, strlen(msg));
            } else {
                fputs("{\"text\":", stdout);
                sb_fput_jstr(stdout, out, olen);
                free(out);
            }
            fputs("}\n", stdout);
        }
        line = end + 1;
    }
    free(all);
    return rc;
}

int cli_chat_template(int argc, char **argv) {
    tmpl_ctx c = {0};
    const char *messages = NULL, *tools = NULL, *documents = NULL, *kwargs = NULL;
    int agp = 0, jsonl = 0, want_ids = 0, rc = 1;
    cli_args a = {.argc = argc, .i = 0, .argv = argv};
    while (a.i < argc) {
        const char *s = argv[a.i];
        if (cli_flag(&a, "--messages")) {
            if (!(messages = cli_value(&a, "--messages"))) return 2;
        } else if (cli_flag(&a, "--add-generation-prompt")) {
            agp = 1;
        } else if (cli_flag(&a, "--chat-template")) {
            if (!(c.tmpl_arg = cli_value(&a, "--chat-template"))) return 2;
        } else if (cli_flag(&a, "--tools")) {
            if (!(tools = cli_value(&a, "--tools"))) return 2;
        } else if (cli_flag(&a, "--documents")) {
            if (!(documents = cli_value(&a, "--documents"))) return 2;
        } else if (cli_flag(&a, "--chat-template-kwargs")) {
            if (!(kwargs = cli_value(&a, "--chat-template-kwargs"))) return 2;
        } else if (cli_flag(&a, "--chat-template-name")) {
            if (!(c.name = cli_value(&a, "--chat-template-name"))) return 2;
        } else if (cli_flag(&a, "--jsonl")) {
            jsonl = 1;
        } else if (cli_flag(&a, "--token-ids")) {
            want_ids = 1;
        } else if (cli_flag(&a, "--now")) {
            const char *v = cli_value(&a, "--now");
            long long t;
            if (!v || cli_parse_int(v, "--now", 1, (long long)1 << 40, &t)) return 2;
            c.now = t;
        } else if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (s[0] == '-' && s[1]) {
            cli_error("chat-template: unknown option '%s'", s);
            fputs(usage, stderr);
            return 2;
        } else if (!c.dir) {
            c.dir = s;
            a.i++;
        } else {
            cli_error("chat-template: unexpected argument '%s'", s);
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!c.dir || (!messages && !jsonl)) {
        cli_error("chat-template needs MODEL_DIR and --messages FILE.json");
        fputs(usage, stderr);
        return 2;
    }
    char *msg_text = NULL, *tools_text = NULL, *docs_text = NULL, *out = NULL;
    size_t len;
    struct stat st;
    if (stat(c.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("%s: no such model directory", c.dir);
        goto done;
    }
    if (hm_dir_is_gpt_oss(c.dir)) {
        rc = run_harmony(&c, messages, tools, jsonl, want_ids);
        goto done;
    }
    if (want_ids) {
        cli_error("--token-ids is for gpt-oss (harmony) models");
        rc = 2;
        goto done;
    }
    if (c.tmpl_arg && load_override(&c)) goto done;
    if (tmpl_model_load(c.dir, c.name, 0, 0, &c.model)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    if (jsonl) {
        rc = run_jsonl(&c);
        goto done;
    }
    if (!(msg_text = read_input(messages, &len))) goto done;
    if (tools && !(tools_text = read_input(tools, &len))) goto done;
    if (documents && !(docs_text = read_input(documents, &len))) goto done;
    const char *p = msg_text;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    int is_request = *p == '{';
    int with_tools = tools_text ? has_tools(tools_text, 0) : is_request && has_tools(msg_text, 1);
    tmpl_template *t = get_template(&c, with_tools);
    if (!t) goto done;
    tmpl_chat_args ca = {.messages_json = is_request ? NULL : msg_text,
                         .request_json = is_request ? msg_text : NULL,
                         .tools_json = tools_text, .documents_json = docs_text, .kwargs_json = kwargs,
                         .add_generation_prompt = agp,
                         .bos_token = c.model.bos_token, .eos_token = c.model.eos_token,
                         .unk_token = c.model.unk_token, .pad_token = c.model.pad_token, .now = c.now};
    size_t olen;
    if (tmpl_render_chat(t, &ca, NULL, &out, &olen, NULL)) {
        cli_error("%s", vc_errmsg());
        goto done;
    }
    if (fwrite(out, 1, olen, stdout) != olen || fflush(stdout)) {
        cli_error("cannot write the output");
        goto done;
    }
    rc = 0;
done:
    free(msg_text);
    free(tools_text);
    free(docs_text);
    free(out);
    free(c.override);
    tmpl_free(c.compiled[0]);
    tmpl_free(c.compiled[1]);
    tmpl_model_free(&c.model);
    return rc;
}
